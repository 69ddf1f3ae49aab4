"""Tool calls that a model wrote into its text instead of the structured field.

Small local models served through an OpenAI-compatible endpoint often have no tool-call parser on
the server side, so the call arrives as text. Three shapes are common:

- Hermes / Qwen tags: ``<tool_call>{"name": "f", "arguments": {...}}</tool_call>``, possibly
  several, the last one sometimes unterminated because generation stopped at the closing tag.
- A bare JSON object, or array of objects, with ``name`` and ``arguments`` (or ``parameters``);
  an OpenAI-style ``{"type": "function", "function": {...}}`` wrapper is accepted too.
- The same JSON inside a fenced code block (```json ... ```).

`parse_text_tool_calls` returns the text with the recognised calls removed and the calls
themselves, their arguments as JSON text like a structured OpenAI call (a string the model wrote
is kept as is; an object is encoded). Anything it cannot read as a call is left in the text
untouched, so nothing the model wrote is lost silently; the gate validates names and arguments
afterwards as for any other call.
Small models also write Python-style literals (single quotes, True/None); those are accepted via
`ast.literal_eval`, which evaluates literals only and never runs code.

Ids are derived from `id_seed` (pass something unique per response, e.g. the provider's response
id), the position and the call itself, so the same input always yields the same ids.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any, Literal, NamedTuple

from callgate.messages import ToolCall

__all__ = ["TextCallMode", "TextCalls", "parse_text_tool_calls"]

TextCallMode = Literal["hermes", "json", "auto"]

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
_TAG_RE = re.compile(r"<tool_call>(.*?)(?:</tool_call>|(?=<tool_call>)|\Z)", re.DOTALL)
_FENCE_RE = re.compile(r"```[ \t]*(?:json|JSON|tool_call|tool_code)?[ \t]*\n(.*?)```", re.DOTALL)
_MAX_SCAN = 200_000  # characters; longer text is not scanned for bare JSON
_MAX_ATTEMPTS = 200  # JSON decodes per text when looking for bare calls
_CALL_START_RE = re.compile(r"\{(?=\s*\")|\[(?=\s*\{)")


class TextCalls(NamedTuple):
    """Result of `parse_text_tool_calls`: unpacks as ``(text, calls)``."""

    text: str
    calls: list[ToolCall]


def parse_text_tool_calls(
    text: str, mode: TextCallMode = "auto", *, id_seed: str = ""
) -> TextCalls:
    """Extract tool calls written as text; see the module docstring for the accepted shapes.

    `mode` "hermes" reads only ``<tool_call>`` tags, "json" only bare or fenced JSON, "auto" tags
    first and, when there are none, JSON.
    """
    if mode not in ("hermes", "json", "auto"):
        raise ValueError(f"unknown text tool-call mode {mode!r}; use 'hermes', 'json' or 'auto'")
    if not text:
        return TextCalls(text, [])
    spans: list[tuple[int, int, list[tuple[str, str]]]] = []
    if mode in ("hermes", "auto"):
        spans = list(_tag_spans(text))
    if mode == "json" or (mode == "auto" and not spans):
        spans = list(_fence_spans(text))
        taken = [(s, e) for s, e, _ in spans]
        spans.extend(_bare_spans(text, taken))
        spans.sort(key=lambda s: s[0])
    if not spans:
        return TextCalls(text, [])
    calls: list[ToolCall] = []
    pieces: list[str] = []
    cursor = 0
    for start, end, found in spans:
        pieces.append(text[cursor:start])
        cursor = end
        for name, arguments in found:
            calls.append(ToolCall(_make_id(id_seed, len(calls), name, arguments), name, arguments))
    pieces.append(text[cursor:])
    remaining = _stitch(pieces).strip()
    return TextCalls(remaining, calls)


def _stitch(pieces: list[str]) -> str:
    """Join the text around removed calls, tidying whitespace only at the cuts.

    The whitespace on both sides of a cut becomes one separator: a blank line if either side
    had one, a newline if either had a newline, a space if there was any whitespace, else
    nothing. The model's own text is otherwise left exactly as written.
    """
    out = pieces[0]
    for piece in pieces[1:]:
        left = out[len(out.rstrip()) :]
        right = piece[: len(piece) - len(piece.lstrip())]
        breaks = max(left.count("\n"), right.count("\n"))
        sep = "\n" * min(breaks, 2) if breaks else (" " if left or right else "")
        out = out.rstrip() + sep + piece.lstrip()
    return out


# --- shapes -----------------------------------------------------------------------------------


def _tag_spans(text: str) -> Iterator[tuple[int, int, list[tuple[str, str]]]]:
    for m in _TAG_RE.finditer(text):
        found = _calls_from_payload(m.group(1))
        if found:
            yield m.start(), m.end(), found


def _fence_spans(text: str) -> Iterator[tuple[int, int, list[tuple[str, str]]]]:
    for m in _FENCE_RE.finditer(text):
        found = _calls_from_payload(m.group(1))
        if found:
            yield m.start(), m.end(), found


def _bare_spans(
    text: str, taken: list[tuple[int, int]]
) -> Iterator[tuple[int, int, list[tuple[str, str]]]]:
    """JSON objects/arrays anywhere in the text (outside `taken` spans) that read as calls.

    Decoding is only attempted where a call can start (``{"`` or ``[{``, whitespace allowed)
    and at most `_MAX_ATTEMPTS` times, so adversarial text cannot make the scan quadratic.
    """
    if len(text) > _MAX_SCAN:
        return
    decoder = json.JSONDecoder()
    attempts = 0
    for m in _CALL_START_RE.finditer(text):
        start = m.start()
        if any(s <= start < e for s, e in taken):
            continue
        attempts += 1
        if attempts > _MAX_ATTEMPTS:
            return
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        found = _calls_from_value(value)
        if found:
            taken.append((start, end))
            yield start, end, found


# --- payload decoding -------------------------------------------------------------------------


def _load(payload: str) -> Any:
    payload = payload.strip()
    if not payload:
        return None
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        pass
    if len(payload) > 100_000:
        return None
    try:
        # Python-style dicts from small models: literals only, never code execution.
        return ast.literal_eval(payload)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _calls_from_payload(payload: str) -> list[tuple[str, str]]:
    value = _load(payload)
    if value is None:
        # Several objects written one after another inside one tag or fence.
        values = _json_sequence(payload)
        found: list[tuple[str, str]] = []
        for v in values:
            calls = _calls_from_value(v)
            if not calls:
                return []
            found.extend(calls)
        return found
    return _calls_from_value(value)


def _json_sequence(payload: str) -> list[Any]:
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos = 0
    payload = payload.strip()
    while pos < len(payload):
        while pos < len(payload) and payload[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(payload):
            break
        try:
            value, pos = decoder.raw_decode(payload, pos)
        except (ValueError, RecursionError):
            return []
        values.append(value)
    return values


def _calls_from_value(value: Any) -> list[tuple[str, str]]:
    """A call or a non-empty list of calls; [] if any element is not a call."""
    if isinstance(value, dict):
        one = _call_from_object(value)
        return [one] if one is not None else []
    if isinstance(value, list) and value:
        found = [_call_from_object(v) if isinstance(v, dict) else None for v in value]
        if all(f is not None for f in found):
            return [f for f in found if f is not None]
    return []


def _call_from_object(obj: dict[str, Any]) -> tuple[str, str] | None:
    if isinstance(obj.get("function"), dict) and "name" not in obj:
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        return None
    present = [k for k in ("arguments", "parameters") if k in obj]
    if not present:
        return None
    arguments = obj[present[0]]
    if arguments is None:
        return name, "{}"
    if isinstance(arguments, str):
        # Some models JSON-encode the arguments twice, as OpenAI's wire format does.
        return name, arguments if arguments.strip() else "{}"
    # Re-encoded as JSON text, the form OpenAI-style providers deliver: a streamed turn and a
    # plain one then carry identical calls. A list or scalar is passed on too; the gate reports
    # that it is not an arguments object.
    return name, json.dumps(arguments, ensure_ascii=False, default=str)


def _make_id(seed: str, index: int, name: str, arguments: str) -> str:
    digest = hashlib.sha256(f"{seed}\x00{index}\x00{name}\x00{arguments}".encode()).hexdigest()
    return f"call_{digest[:24]}"
