"""What the model reads when a call fails, and how tool return values become text.

Every message names the tool, says whether anything ran, and says what to do next. Argument
problems list each field path with what was expected, what was given (truncated, sensitive values
masked), allowed values and "did you mean" suggestions. Messages never contain stack traces, file
paths or secret values.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic_core import to_json

from callgate.redaction import is_secret_key
from callgate.tools.schema import FieldIssue, did_you_mean

MASK = "***"
_MAX_GIVEN = 80


def show_value(value: Any, *, sensitive: bool = False) -> str:
    """A short, safe rendering of a value the model sent."""
    if sensitive:
        return MASK
    try:
        text = json.dumps(_mask_nested(value, 0), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _MAX_GIVEN:
        text = text[: _MAX_GIVEN - 1] + "…"
    kind = {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        list: "array",
        dict: "object",
        type(None): "null",
    }.get(type(value))
    return f"{text} ({kind})" if kind and kind != "null" else text


def _mask_nested(value: Any, depth: int) -> Any:
    """Mask values under secret-looking keys inside an object the model sent where a scalar was
    expected: the rendering is logged and audited too, so it must not carry secrets."""
    if depth > 8:
        return "…"
    if isinstance(value, dict):
        return {
            k: MASK if isinstance(k, str) and is_secret_key(k) else _mask_nested(v, depth + 1)
            for k, v in itertools.islice(value.items(), 20)
        }
    if isinstance(value, list):
        return [_mask_nested(v, depth + 1) for v in value[:20]]
    return value


def _issue_line(
    issue: FieldIssue,
    sensitive: frozenset[str],
    params: Iterable[str],
    descriptions: Mapping[str, str] | None = None,
) -> str:
    top = str(issue.path[0]) if issue.path else ""
    secret = top in sensitive or any(isinstance(p, str) and is_secret_key(p) for p in issue.path)
    loc = issue.location
    if issue.kind == "unknown":
        line = f"- {loc}: unknown parameter; it was not used"
        if issue.suggestion:
            line += f" (did you mean {issue.suggestion!r}?)"
        names = sorted(params)
        if names and len(issue.path) == 1:
            line += f". Valid parameters: {', '.join(names)}"
        return line + "."
    # a top-level parameter's own description often holds the fix ("e.g. P-101")
    about = (descriptions or {}).get(top, "") if len(issue.path) == 1 else ""
    hint = f" ({top}: {about.rstrip('.')})" if about else ""
    if issue.kind == "missing":
        return f"- {loc}: required, but missing{hint}."
    line = f"- {loc}: {issue.message}"
    if issue.has_given:
        line += f"; got {show_value(issue.given, sensitive=secret)}"
    if issue.allowed:
        shown = ", ".join(
            json.dumps(a, ensure_ascii=False, default=str) for a in issue.allowed[:20]
        )
        more = f" (and {len(issue.allowed) - 20} more)" if len(issue.allowed) > 20 else ""
        line += f". Allowed values: {shown}{more}"
        if issue.has_given and isinstance(issue.given, str):
            sugg = did_you_mean(issue.given, [str(a) for a in issue.allowed])
            if sugg is not None:
                line += f" (did you mean {sugg!r}?)"
    elif hint:
        line += hint
    return line + "."


def render_invalid_arguments(
    tool: str,
    issues: list[FieldIssue],
    *,
    sensitive: frozenset[str] = frozenset(),
    params: Iterable[str] = (),
    budget_left: int | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> str:
    n = len(issues)
    head = (
        f"Error: the call to {tool} was not run because its arguments are invalid "
        f"({n} problem{'s' if n != 1 else ''}). Fix {'them' if n != 1 else 'it'} and call "
        f"{tool} again:"
    )
    plist = list(params)
    lines = [head, *(_issue_line(i, sensitive, plist, descriptions) for i in issues[:12])]
    if n > 12:
        lines.append(f"- … and {n - 12} more.")
    lines.append(_budget_line(budget_left))
    return "\n".join(line for line in lines if line)


def _budget_line(budget_left: int | None) -> str:
    if budget_left is None:
        return ""
    if budget_left <= 0:
        return "No more corrections are allowed for this tool in this run."
    return f"({budget_left} correction{'s' if budget_left != 1 else ''} left for this tool.)"


def render_format_error(tool: str, message: str, budget_left: int | None = None) -> str:
    return "\n".join(
        x
        for x in (
            f"Error: the call to {tool} was not run: {message}. Call {tool} again with one JSON "
            "object of named parameters.",
            _budget_line(budget_left),
        )
        if x
    )


def render_unknown_tool(name: str, available: list[str]) -> str:
    sugg = did_you_mean(name, available)
    out = f"Error: there is no tool named {name[:64]!r}; nothing was run."
    if sugg:
        out += f" Did you mean {sugg!r}?"
    if available:
        shown = ", ".join(sorted(available)[:30])
        out += f" Available tools: {shown}."
    else:
        out += " No tools are available: answer without tools."
    return out


def render_disabled(name: str, note: str | None = None) -> str:
    out = f"Error: the tool {name!r} is disabled right now; nothing was run."
    if note:
        out += f" {note}"
    return out + " Do not call it again in this conversation; continue without it."


def render_denied(name: str, message: str) -> str:
    return f"Denied: the call to {name} was not run. {message} Do not retry this call as it is."


def render_transient(name: str, message: str, attempts: int) -> str:
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    return (
        f"Error: {name} failed temporarily{tries} ({message}). It may work later; continue "
        "without it or try once more later."
    )


def render_terminal(name: str, message: str | None = None) -> str:
    if message:
        return f"Error: {name} failed: {message} Do not retry it with the same arguments."
    return (
        f"Error: {name} failed with an internal error; the cause was logged for the operators. "
        "Do not retry it with the same arguments."
    )


def render_correctable(name: str, message: str, budget_left: int | None = None) -> str:
    return "\n".join(x for x in (f"Error from {name}: {message}", _budget_line(budget_left)) if x)


def render_pending(name: str, approval_id: str, message: str) -> str:
    return (
        f"Waiting for approval: the call to {name} needs a person's approval and has not run "
        f"yet (approval {approval_id}). {message}"
    )


def render_value(value: Any, max_chars: int) -> str:
    """A tool's return value as text for the model (JSON for structured values)."""
    if isinstance(value, str):
        text = value
    elif value.__class__ is int:
        text = str(value)
    elif value is None:
        text = "null"
    else:
        try:
            text = to_json(value, serialize_unknown=True).decode()
        except Exception:  # noqa: BLE001 - any serialisation failure falls back to str()
            text = str(value)
    if len(text) > max_chars:
        extra = len(text) - max_chars
        text = text[:max_chars] + f"\n[truncated: {extra} more characters not shown]"
    return text
