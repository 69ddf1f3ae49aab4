"""What the model reads when a call fails, and how tool return values become text.

One voice everywhere, kept short because small models repeat what they read: a label
("Error:", "Denied:", "Not run:", "Waiting for approval:"), the tool and whether anything ran,
why, then one sentence of advice, never two that disagree. Argument problems list each field path
with what was expected, what was given (truncated, secrets masked), allowed values and "did you
mean" suggestions. Messages never contain stack traces, file paths or secret values.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic_core import to_json

from callgate.redaction import is_secret_key, redact_text
from callgate.tools.schema import FieldIssue, did_you_mean

MASK = "***"
_MAX_GIVEN = 80
#: how much of a value is scanned for secrets before it is cut to `_MAX_GIVEN` characters (a
#: secret straddling the cut must still be recognised whole)
_MAX_SCANNED = 4 * _MAX_GIVEN


def show_value(value: Any, *, sensitive: bool = False) -> str:
    """A short, safe rendering of a value the model sent: values under sensitive or
    secret-looking names are masked whole, and secret-looking values (API keys, bearer tokens,
    cloud keys, card numbers) are masked wherever they appear, with the audit log's detector."""
    if sensitive:
        return MASK
    try:
        text = json.dumps(_mask_nested(value, 0), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _MAX_GIVEN:
        # a secret straddling the cut would no longer be recognised: mask before cutting
        text = redact_text(text[:_MAX_SCANNED])
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
    head = f"Error: {tool} was not run because {n} argument{' is' if n == 1 else 's are'} invalid:"
    plist = list(params)
    lines = [_issue_line(i, sensitive, plist, descriptions) for i in issues[:12]]
    if n > 12:
        lines.append(f"- … and {n - 12} more.")
    advice = f"Fix {'it' if n == 1 else 'them'} and call {tool} again."
    return "\n".join([head, *lines, _advice(tool, advice, budget_left)])


def mask_secrets(issues: list[FieldIssue]) -> list[FieldIssue]:
    """The issues with secret-looking text (API keys, tokens, cloud keys in names, messages or
    given values) masked, with the audit log's detector. One scan of all their text decides;
    only when it finds something is each piece masked on its own (masking whole lines would
    also hide innocent words after a name like "password:")."""
    parts: list[str] = []
    for i in issues:
        parts.append(i.location)
        parts.append(i.message)
        if i.has_given:
            _texts(i.given, parts, 0)
    blob = "\n".join(parts)
    if redact_text(blob) == blob:
        return issues
    return [_masked(i) for i in issues]


def _texts(value: Any, out: list[str], depth: int) -> None:
    """The strings (and keys) of a value as far as the model is shown it, for the secret scan."""
    if isinstance(value, str):
        out.append(value[:_MAX_SCANNED])
    elif depth > 8:
        return
    elif isinstance(value, dict):
        for k, v in itertools.islice(value.items(), 20):
            out.append(str(k)[:_MAX_SCANNED])
            _texts(v, out, depth + 1)
    elif isinstance(value, list):
        for v in value[:20]:
            _texts(v, out, depth + 1)


def _masked(issue: FieldIssue) -> FieldIssue:
    """The issue with secret-looking text masked in its path, message and given value."""
    path = tuple(redact_text(p) if isinstance(p, str) else p for p in issue.path)
    given = issue.given
    if issue.has_given:
        given = _redact_value(given)
    return dataclasses.replace(issue, path=path, message=redact_text(issue.message), given=given)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            redact_text(str(k)): _redact_value(v) for k, v in itertools.islice(value.items(), 20)
        }
    if isinstance(value, list):
        return [_redact_value(v) for v in value[:20]]
    return value


def _advice(tool: str, advice: str, budget_left: int | None) -> str:
    """One sentence of advice; when no correction is left, the only advice is to stop."""
    if budget_left is None:
        return advice
    if budget_left <= 0:
        return (
            f"No corrections are left for {tool}: do not call it again; answer with what you have."
        )
    return (
        f"{advice} ({budget_left} correction{'s' if budget_left != 1 else ''} left for this tool.)"
    )


def render_format_error(tool: str, message: str, budget_left: int | None = None) -> str:
    advice = f"Call {tool} again with one JSON object of named parameters."
    return f"Error: {tool} was not run: {_clause(message)}. {_advice(tool, advice, budget_left)}"


def render_unknown_tool(name: str, available: list[str]) -> str:
    out = f"Error: there is no tool named {_shown_name(name)}; nothing was run."
    if not available:
        return out + " No tools are available: answer without them."
    sugg = did_you_mean(name, available)
    if sugg:
        out += f" Did you mean {sugg!r}?"
    return out + f" Available tools: {', '.join(sorted(available)[:30])}."


def render_disabled(name: str, note: str | None = None) -> str:
    out = f"Error: {name} is disabled right now; nothing was run."
    if note:
        out += f" {sentence(note)}"
    return out + " Continue without it."


#: the advice of a refusal whose reason gives none (a policy rule's reason is a reason)
DENIED_ADVICE = "Do not call it again with the same arguments."


def render_denied(name: str, message: str, advice: str = "") -> str:
    """A refusal: what was refused and why (`message`, which may carry its own advice, e.g. a
    rate limit's "try again in 60 s"), and `advice` only when the reason has none."""
    out = f"Denied: {name} was not run: {sentence(message)}"
    return f"{out} {advice}" if advice else out


def render_needs_approval(name: str, reason: str = "") -> str:
    why = f" ({_clause(reason)})" if reason else ""
    return (
        f"Not run: {name} needs a person's approval{why}, and no one can approve it here. "
        "Tell the user what you wanted to do."
    )


def render_transient(
    name: str, message: str, attempts: int, retry_after: float | None = None
) -> str:
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    when = f"in {max(1, math.ceil(retry_after))} s" if retry_after else "later"
    return (
        f"Error: {name} failed temporarily{tries} ({_clause(message)}). Try again {when}, or "
        "continue without it."
    )


def render_unknown_effect(name: str, message: str) -> str:
    return (
        f"Error: {name} {_clause(message)}. Check whether it took effect before calling it again."
    )


def render_terminal(name: str, message: str | None = None) -> str:
    if message:
        return f"Error: {name} failed: {sentence(message)} {DENIED_ADVICE}"
    return (
        f"Error: {name} failed with an internal error (logged for the operators). {DENIED_ADVICE}"
    )


def render_correctable(name: str, message: str, budget_left: int | None = None) -> str:
    text = f"Error from {name}: {sentence(message)}"
    if budget_left is not None and budget_left <= 0:
        return f"{text} {_advice(name, '', budget_left)}"
    if budget_left is None:
        return text
    return f"{text} ({budget_left} correction{'s' if budget_left != 1 else ''} left for this tool.)"


def render_pending(name: str, approval_id: str, message: str = "") -> str:
    """The call waits for a person; `message` (what will run, from the approver) is kept."""
    what = f" {sentence(message)}" if message else ""
    return (
        f"Waiting for approval: {name} needs a person's approval and has not run yet "
        f"(approval {approval_id}).{what} Tell the user it is waiting for approval."
    )


def sentence(text: str) -> str:
    """`text` (a tool's or a rule's own words) closed with a full stop, wording and case kept
    and secret-looking values masked: a tool may quote an upstream error that carries a key."""
    text = redact_text(text.strip())
    if not text:
        return ""
    return text if text[-1] in ".!?" else text + "."


def _clause(text: str) -> str:
    """`text` to be embedded in a sentence: no closing full stop, secrets masked."""
    return redact_text(text.strip()).rstrip(".")


def _shown_name(name: str) -> str:
    return repr(redact_text(name[:64]))


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
