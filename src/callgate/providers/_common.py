"""Small helpers every provider adapter shares: stop reasons, usage, argument and content
shapes. Failures and retries live in `callgate.providers._retry`, the stream loop in
`callgate.providers._stream`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from callgate.messages import StopReason, Usage

__all__ = ["ensure_text", "make_usage", "map_stop_reason"]


def map_stop_reason(
    raw: str | None, table: Mapping[str, StopReason], *, has_tool_calls: bool
) -> StopReason:
    """Normalise a provider's stop/finish reason.

    Unknown values become "other". A turn that carries tool calls is "tool_calls" even when the
    provider said a plain "stop" (several OpenAI-compatible servers do), unless it was cut short
    ("max_tokens") or filtered: then the calls may be truncated and the caller should know.
    """
    reason: StopReason = table.get(raw, "other") if raw is not None else "end_turn"
    if has_tool_calls and reason in ("end_turn", "other"):
        return "tool_calls"
    return reason


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, float) and value == value:
        return max(0, int(value))
    return 0


def make_usage(
    input_tokens: Any = None, output_tokens: Any = None, cache_read_tokens: Any = None
) -> Usage:
    """A one-request `Usage`, tolerant of the None / missing counts some servers send."""
    return Usage(
        input_tokens=_as_int(input_tokens),
        output_tokens=_as_int(output_tokens),
        cache_read_tokens=_as_int(cache_read_tokens),
        requests=1,
    )


def ensure_text(value: Any) -> str:
    """Message content as a string: the gate renders tool output already, but guard anyway."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)
