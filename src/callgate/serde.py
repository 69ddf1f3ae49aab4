"""JSON forms of conversation types, for paused runs, audit records and replay."""

from __future__ import annotations

import json
from typing import Any

from callgate.context import RunContext
from callgate.messages import Message, ToolCall, ToolResult, Usage


def canonical_json(value: Any) -> str:
    """The one serialisation that is hashed (audit chain, approval binding): sorted keys, no
    spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def call_to_dict(c: ToolCall) -> dict[str, Any]:
    d: dict[str, Any] = {"id": c.id, "name": c.name, "arguments": c.arguments}
    if c.provider_data:
        d["provider_data"] = c.provider_data
    return d


def call_from_dict(d: dict[str, Any]) -> ToolCall:
    return ToolCall(str(d["id"]), str(d["name"]), d.get("arguments", "{}"), d.get("provider_data"))


def result_to_dict(r: ToolResult) -> dict[str, Any]:
    d: dict[str, Any] = {
        "call_id": r.call_id,
        "name": r.name,
        "content": r.content,
        "error_kind": r.error_kind,
        "duration_s": r.duration_s,
        "attempts": r.attempts,
    }
    # the application-facing facts that are set (never `data`: it may not be JSON)
    for key in ("rule", "approval_id", "error_class", "deprecated"):
        value = getattr(r, key)
        if value is not None:
            d[key] = value
    if r.correction_budget_exhausted:
        d["correction_budget_exhausted"] = True
    return d


def result_from_dict(d: dict[str, Any]) -> ToolResult:
    return ToolResult(
        d["call_id"],
        d["name"],
        d["content"],
        d.get("error_kind"),
        duration_s=d.get("duration_s", 0.0),
        attempts=d.get("attempts", 1),
        rule=d.get("rule"),
        approval_id=d.get("approval_id"),
        error_class=d.get("error_class"),
        deprecated=d.get("deprecated"),
        correction_budget_exhausted=bool(d.get("correction_budget_exhausted", False)),
    )


def message_to_dict(m: Message) -> dict[str, Any]:
    d: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        d["tool_calls"] = [call_to_dict(c) for c in m.tool_calls]
    if m.tool_result is not None:
        d["tool_result"] = result_to_dict(m.tool_result)
    if m.provider_data:
        d["provider_data"] = m.provider_data
    return d


def message_from_dict(d: dict[str, Any]) -> Message:
    return Message(
        d["role"],
        d.get("content", ""),
        [call_from_dict(c) for c in d.get("tool_calls", [])],
        result_from_dict(d["tool_result"]) if d.get("tool_result") else None,
        d.get("provider_data"),
    )


def usage_to_dict(u: Usage) -> dict[str, Any]:
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_tokens": u.cache_read_tokens,
        "requests": u.requests,
        "cost_usd": u.cost_usd,
    }


def usage_from_dict(d: dict[str, Any]) -> Usage:
    return Usage(**{k: d.get(k, 0) for k in usage_to_dict(Usage())})


def context_to_dict(c: RunContext) -> dict[str, Any]:
    """The identity part of a context; `deps` is application state and is not persisted."""
    return {
        "user_id": c.user_id,
        "roles": sorted(c.roles),
        "tenant": c.tenant,
        "request": c.request,
        "conversation_id": c.conversation_id,
        "run_id": c.run_id,
        "turn": c.turn,
        "metadata": c.metadata,
        "corrections": c.corrections,
    }


def context_from_dict(d: dict[str, Any], deps: Any = None) -> RunContext:
    return RunContext(
        user_id=d.get("user_id"),
        roles=frozenset(d.get("roles", ())),
        tenant=d.get("tenant"),
        request=d.get("request"),
        conversation_id=d["conversation_id"],
        run_id=d["run_id"],
        turn=d.get("turn", 0),
        deps=deps,
        metadata=dict(d.get("metadata", {})),
        corrections=dict(d.get("corrections", {})),
    )


def arguments_object(arguments: str | dict[str, Any]) -> dict[str, Any]:
    """A call's arguments as a JSON object, read leniently: what providers with object-typed
    arguments send back (Anthropic `tool_use.input`, Gemini `functionCall.args`) and what the
    provenance check reads from history; `{}` when they are not one (the gate has already told
    the model its JSON was broken)."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
