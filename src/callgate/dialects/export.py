"""Provider dialects: one canonical JSON Schema in, each provider's tool format out.

A tool's schema is written once, as Pydantic emits it (draft 2020-12: `$defs`/`$ref`, `anyOf`
with null for optionals, `const`, `default`, `format`, numeric and string constraints). Providers
each accept a different subset, and a keyword one of them does not know fails the *whole*
request, not just that tool. So every translation lives here, as pure functions:

- OpenAI (Chat Completions and Responses) and Anthropic take JSON Schema as it is.
- OpenAI *strict* mode constrains decoding to the schema, but only for a documented subset: every
  object closed (`additionalProperties: false`), every property required, no open maps, a short
  list of string formats, no `default`, and `$ref` without sibling keywords. `strict_schema`
  rewrites a schema into that subset or says precisely why it cannot (`strict_compatible`).
  Because optional properties become required-but-nullable, a model in strict mode sends `null`
  for "not given"; `restore_strict_nulls` turns those nulls back into omissions before
  validation, and never touches a null the original schema allowed.
- Gemini takes a subset of the OpenAPI 3.0 schema object: no `$ref`/`$defs` (references are
  inlined; recursion is cut at a depth), no `additionalProperties`, `const`, `exclusiveMinimum`,
  `title`, `default` or `examples`; `anyOf [X, null]` becomes X with `nullable: true`, type names
  are upper-case, and `enum` holds strings only.

Constraints a dialect cannot carry are not silently dropped: they are appended to the node's
`description` ("At most 50 characters."), so the model still learns them, and the gate still
enforces them because arguments are always validated against the canonical schema.

Nothing here mutates its input; output key order is fixed, so exports are byte-for-byte stable
(golden files, prompt caching).

Strict mode lives in `callgate.dialects.strict`, the Gemini conversion in
`callgate.dialects.gemini`, and the helpers they share (shape check, `$ref` resolution, memo,
key order) in `callgate.jsonschema`; `callgate.dialects` is the one place that lists every
public name.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any, Literal

from callgate.dialects.gemini import to_gemini
from callgate.dialects.strict import restore_strict_nulls, strict_compatible, strict_schema
from callgate.errors import SchemaError
from callgate.jsonschema import JsonSchema, check_shape
from callgate.tools.definition import ToolSpec

# check_shape, restore_strict_nulls and strict_compatible are still imported from here by
# callgate.gate.stages and callgate.tools.lint; their public homes are callgate.dialects and
# callgate.jsonschema
__all__ = [
    "Dialect",
    "StrictMode",
    "check_shape",
    "export_tools",
    "restore_strict_nulls",
    "strict_compatible",
    "to_anthropic",
    "to_openai_chat",
    "to_openai_responses",
]

Dialect = Literal["openai_chat", "openai_responses", "anthropic", "gemini"]
StrictMode = bool | Literal["auto"]


# --- public: tool formats ------------------------------------------------------------------


def to_openai_chat(spec: ToolSpec, *, strict: StrictMode = False) -> dict[str, Any]:
    """Chat Completions tool: `{"type": "function", "function": {...}}`.

    `strict=True` rewrites the parameters with `strict_schema` (raising `SchemaError` when that is
    impossible); `strict="auto"` uses strict mode only when the schema allows it.

    Like every export here, the result is memoised per spec object (see `_memoised`): treat it
    as read-only and copy it before changing it.
    """
    return _memoised(spec, "openai_chat", strict, _openai_chat)


def _openai_chat(spec: ToolSpec, strict: StrictMode) -> dict[str, Any]:
    params, is_strict = _openai_parameters(spec, strict)
    fn: dict[str, Any] = {"name": spec.name}
    if spec.description:
        fn["description"] = spec.description
    fn["parameters"] = params
    if is_strict:
        fn["strict"] = True
    return {"type": "function", "function": fn}


def to_openai_responses(spec: ToolSpec, *, strict: StrictMode = False) -> dict[str, Any]:
    """Responses API tool: a flat `{"type": "function", "name", ..., "strict"}`.

    `strict` is always sent: the Responses API treats a function without it as strict, which a
    non-strict schema would fail.
    """
    return _memoised(spec, "openai_responses", strict, _openai_responses)


def _openai_responses(spec: ToolSpec, strict: StrictMode) -> dict[str, Any]:
    params, is_strict = _openai_parameters(spec, strict)
    out: dict[str, Any] = {"type": "function", "name": spec.name}
    if spec.description:
        out["description"] = spec.description
    out["parameters"] = params
    out["strict"] = is_strict
    return out


def to_anthropic(spec: ToolSpec) -> dict[str, Any]:
    """Anthropic Messages tool: `{"name", "description", "input_schema"}` (full JSON Schema)."""
    return _memoised(spec, "anthropic", False, _anthropic)


def _anthropic(spec: ToolSpec, strict: StrictMode) -> dict[str, Any]:
    check_shape(spec.parameters)
    out: dict[str, Any] = {"name": spec.name}
    if spec.description:
        out["description"] = spec.description
    schema = copy.deepcopy(spec.parameters)
    schema.setdefault("type", "object")
    out["input_schema"] = schema
    return out


def export_tools(
    specs: Iterable[ToolSpec], dialect: Dialect, *, strict: StrictMode = False
) -> list[dict[str, Any]]:
    """Every spec in one provider's format, in the given order.

    `strict` applies to the OpenAI dialects only (the others have no strict schema mode). An
    unchanged spec costs one dictionary lookup (the conversions are memoised), so exporting
    the same tool list every turn is cheap; the dicts returned are shared and read-only.
    """
    out: list[dict[str, Any]] = []
    for spec in specs:
        if dialect == "openai_chat":
            out.append(to_openai_chat(spec, strict=strict))
        elif dialect == "openai_responses":
            out.append(to_openai_responses(spec, strict=strict))
        elif dialect == "anthropic":
            out.append(to_anthropic(spec))
        elif dialect == "gemini":
            out.append(_memoised(spec, "gemini", False, _gemini))
        else:
            raise ValueError(
                f"unknown dialect {dialect!r}; "
                "use openai_chat, openai_responses, anthropic or gemini"
            )
    return out


# --- memo ------------------------------------------------------------------------------------

#: exports kept at most (4 dialects x 10,000 tools fit); past it the memo starts afresh
_MEMO_MAX = 65_536
_Build = Callable[[ToolSpec, StrictMode], dict[str, Any]]
_memo: dict[tuple[int, str, StrictMode], tuple[ToolSpec, dict[str, Any]]] = {}


def _memoised(spec: ToolSpec, dialect: str, strict: StrictMode, build: _Build) -> dict[str, Any]:
    """One conversion per spec object and dialect: a `ToolSpec` is frozen and its schema is
    never edited after construction, so the provider sees the same export every turn and the
    cost of a turn's tool list is a lookup per tool, not a deep copy and rewrite of every
    schema. The entry holds the spec itself, so its id cannot be reused while memoised; a
    failed conversion (strict mode impossible) is not memoised and raises every time."""
    key = (id(spec), dialect, strict)
    hit = _memo.get(key)
    if hit is not None and hit[0] is spec:
        return hit[1]
    out = build(spec, strict)
    if len(_memo) >= _MEMO_MAX:
        _memo.clear()
    _memo[key] = (spec, out)
    return out


def _gemini(spec: ToolSpec, strict: StrictMode) -> dict[str, Any]:
    return to_gemini(spec)


def _openai_parameters(spec: ToolSpec, strict: StrictMode) -> tuple[JsonSchema, bool]:
    if strict is True:
        try:
            return strict_schema(spec.parameters), True
        except SchemaError as e:
            raise SchemaError(f"tool {spec.name!r} cannot use strict mode: {e}") from None
    if strict == "auto":
        try:
            return strict_schema(spec.parameters), True
        except SchemaError:
            pass
    check_shape(spec.parameters)
    schema = copy.deepcopy(spec.parameters)
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema, False
