"""Gemini: reduce a canonical JSON Schema to the OpenAPI 3.0 subset a `FunctionDeclaration`
accepts.

`to_gemini` inlines references (`inline_refs`, cutting recursion at a depth), turns
`anyOf [X, null]` into ``nullable``, upper-cases type names, keeps only
`GEMINI_SCHEMA_KEYWORDS` and moves every constraint it cannot carry into the description. No
other dialect needs any of this, so it has a module of its own; see `callgate.dialects.export` for the
overview. Every public name is re-exported by `callgate.dialects.export`.
"""

from __future__ import annotations

from typing import Any

from callgate.errors import SchemaError
from callgate.jsonschema import (
    JsonSchema,
    _format_note,
    _join,
    _json_type,
    _memo,
    _ordered,
    _Refs,
    _show,
    check_shape,
)
from callgate.tools.definition import ToolSpec

__all__ = ["GEMINI_SCHEMA_KEYWORDS", "inline_refs", "to_gemini"]

#: Keywords a Gemini `FunctionDeclaration.parameters` schema may contain. Anything else (most
#: notably `additionalProperties`, `$ref`, `$defs`, `const`, `exclusiveMinimum`, `default`,
#: `title`, `examples`, `$schema`) has been seen to fail the request with "Unknown name".
GEMINI_SCHEMA_KEYWORDS = frozenset(
    {
        "type",
        "format",
        "description",
        "nullable",
        "enum",
        "properties",
        "required",
        "items",
        "anyOf",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "minProperties",
        "maxProperties",
    }
)
#: Per-type `format` values the Gemini API accepts; other formats move to the description.
_GEMINI_FORMATS = {
    "string": frozenset({"date-time", "enum"}),
    "integer": frozenset({"int32", "int64"}),
    "number": frozenset({"float", "double"}),
}
_GEMINI_CUT_DEPTH = 3
_INLINE_BUDGET = 2000


def to_gemini(spec: ToolSpec, *, max_depth: int = _GEMINI_CUT_DEPTH) -> dict[str, Any]:
    """Gemini `FunctionDeclaration` as a dict: `{"name", "description", "parameters"?}`.

    `parameters` is left out for a tool without parameters: Gemini rejects an OBJECT whose
    `properties` is empty. Recursive definitions are expanded `max_depth` times.
    """
    check_shape(spec.parameters)
    out: dict[str, Any] = {"name": spec.name}
    if spec.description:
        out["description"] = spec.description
    if spec.parameters.get("properties"):
        out["parameters"] = _memo(
            f"gemini/{max_depth}",
            spec.parameters,
            lambda s: _gemini_node(inline_refs(s, max_depth=max_depth), "parameters"),
        )
    return out


def inline_refs(schema: JsonSchema, max_depth: int = _GEMINI_CUT_DEPTH) -> JsonSchema:
    """Replace every local `$ref` by the schema it names and drop `$defs`.

    Keywords next to a `$ref` (a field's description) win over the definition's. A recursive
    definition is expanded at most `max_depth` times along any path; below that, the object is
    kept with its non-recursive properties only and a description saying deeper levels were
    left out (the validator still accepts deeper values; the model is just not shown them).
    Raises `SchemaError` for references outside the schema.
    """
    if max_depth < 1:
        raise ValueError("max_depth must be at least 1")
    check_shape(schema)
    refs = _Refs(schema)
    budget = [_INLINE_BUDGET]

    def expand(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [expand(v, stack) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            target = refs.resolve(ref)
            budget[0] -= 1
            if budget[0] < 0:
                raise SchemaError(
                    f"inlining references makes the schema too large (over {_INLINE_BUDGET} "
                    "expansions); lower max_depth"
                )
            if stack.count(ref) >= max_depth:
                body = _cut(target, ref, (*stack, ref))
                cut = {**body, **siblings}
                if "description" in siblings and "description" in body:
                    cut["description"] = _join(siblings["description"], body["description"])
                return expand(cut, (*stack, ref))
            merged = {k: v for k, v in target.items() if k not in ("$defs", "definitions")}
            merged.update(siblings)
            return expand(merged, (*stack, ref))
        return {k: expand(v, stack) for k, v in node.items() if k not in ("$defs", "definitions")}

    def _cut(target: JsonSchema, ref: str, stack: tuple[str, ...]) -> JsonSchema:
        on_stack = set(stack)
        props = target.get("properties")
        kept: dict[str, Any] = {}
        dropped: list[str] = []
        if isinstance(props, dict):
            for name, sub in props.items():
                if any(on_stack & refs.reach(r) for r in refs.refs_in(sub)):
                    dropped.append(name)
                else:
                    kept[name] = sub
        label = ref.rsplit("/", 1)[-1] if ref != "#" else "object"
        note = f"Nested {label}: deeper levels are not shown."
        if dropped:
            note = f"Nested {label}; {', '.join(dropped)} not shown at this depth."
        if not kept:
            stub: JsonSchema = {"description": _join(target.get("description"), note)}
            if target.get("type") == "object" or isinstance(props, dict):
                stub["type"] = "object"
            return stub
        body = {k: v for k, v in target.items() if k not in ("$defs", "definitions")}
        body["properties"] = kept
        req = [r for r in target.get("required", []) if r in kept]
        if req:
            body["required"] = req
        else:
            body.pop("required", None)
        body["description"] = _join(target.get("description"), note)
        return body

    out = expand(schema, ())
    assert isinstance(out, dict)
    return out


# --- Gemini --------------------------------------------------------------------------------


def _gemini_node(node: Any, where: str) -> JsonSchema:
    if not isinstance(node, dict):
        return {"description": "Any JSON value."}
    node = dict(node)
    all_of = node.pop("allOf", None)
    if isinstance(all_of, list) and all_of:
        for part in all_of:
            if isinstance(part, dict):
                for k, v in part.items():
                    node.setdefault(k, v)
    if "oneOf" in node:
        node.setdefault("anyOf", node.pop("oneOf"))

    notes: list[str] = []
    out: JsonSchema = {}
    description = node.get("description")
    title = node.get("title")
    if not description and isinstance(title, str):
        description = title

    nullable = False
    typ = node.get("type")
    if isinstance(typ, list):
        non_null = [t for t in typ if t != "null"]
        nullable = len(non_null) != len(typ)
        if len(non_null) == 1:
            typ = non_null[0]
        elif non_null:
            rest = {k: v for k, v in node.items() if k not in ("type", "description", "title")}
            node = {"anyOf": [{**rest, "type": t} for t in non_null]}
            typ = None
        else:
            typ = None

    branches = node.get("anyOf")
    if isinstance(branches, list):
        real = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
        nullable = nullable or len(real) != len(branches)
        outer = {k: v for k, v in node.items() if k not in ("anyOf", "description", "title")}
        if len(real) == 1 and isinstance(real[0], dict):
            merged = {**real[0], **outer}
            inner = _gemini_node(merged, where)
            inner_desc = inner.pop("description", None)
            inner.pop("nullable", None)
            out.update(inner)
            description = (
                _join(description, inner_desc) if inner_desc != description else description
            )
        elif real:
            out["anyOf"] = [_gemini_node(b, f"{where}.anyOf[{i}]") for i, b in enumerate(real)]
        typ = None
    elif typ is not None:
        out["type"] = str(typ).upper() if typ != "null" else "NULL"

    if "const" in node:
        const = node["const"]
        if isinstance(const, str):
            out["type"] = "STRING"
            out["enum"] = [const]
        else:
            notes.append(f"Must be {_show(const)}.")
    if isinstance(node.get("enum"), list):
        values = node["enum"]
        if None in values:
            nullable = True
            values = [v for v in values if v is not None]
        if values and all(isinstance(v, str) for v in values):
            out.setdefault("type", "STRING")
            out["enum"] = list(values)
        elif values:
            notes.append(f"One of: {', '.join(_show(v) for v in values)}.")
            if "type" not in out:
                kinds = {_json_type(v) for v in values}
                if len(kinds) == 1:
                    out["type"] = kinds.pop().upper()

    base = typ if isinstance(typ, str) else None
    fmt = node.get("format")
    if isinstance(fmt, str):
        if fmt in _GEMINI_FORMATS.get(base or "", frozenset()):
            out["format"] = fmt
        else:
            notes.append(_format_note(fmt))

    for kw in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "pattern"):
        if kw in node:
            out[kw] = node[kw]
    for kw in ("minProperties", "maxProperties"):
        if kw in node:
            out[kw] = node[kw]
    for kw, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if kw not in node or isinstance(node[kw], bool):
            continue
        limit = node[kw]
        step = 1 if kw == "exclusiveMinimum" else -1
        if base == "integer" and isinstance(limit, int):
            out[bound] = limit + step
        else:
            out.setdefault(bound, limit)
            word = "greater" if step == 1 else "less"
            notes.append(f"Must be {word} than {_show(limit)}.")
    if "multipleOf" in node:
        notes.append(f"Multiple of {_show(node['multipleOf'])}.")
    if node.get("uniqueItems") is True:
        notes.append("Items must be unique.")

    props = node.get("properties")
    if isinstance(props, dict) and props:
        out.setdefault("type", "OBJECT")
        out["properties"] = {
            name: _gemini_node(sub, f"{where}.{name}") for name, sub in props.items()
        }
        req = [r for r in node.get("required", []) if r in props]
        if req:
            out["required"] = req
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and not props:
        value_kind = extra.get("type")
        shown = value_kind if isinstance(value_kind, str) else "any"
        notes.append(f"An object with any keys; values: {shown}.")
    elif extra is True and not props:
        notes.append("An object with any keys.")

    items = node.get("items")
    prefix = node.get("prefixItems")
    if isinstance(prefix, list) and prefix:
        shapes = [_gemini_node(p, f"{where}[{i}]") for i, p in enumerate(prefix)]
        unique = [s for i, s in enumerate(shapes) if s not in shapes[:i]]
        out["items"] = unique[0] if len(unique) == 1 else {"anyOf": unique}
        out.setdefault("minItems", len(prefix))
        out.setdefault("maxItems", len(prefix))
        if len(unique) > 1:
            notes.append(f"Exactly {len(prefix)} items, in this order of types.")
        out["type"] = "ARRAY"
    elif isinstance(items, dict):
        out["items"] = _gemini_node(items, f"{where}[]")
        out.setdefault("type", "ARRAY")
    elif base == "array":
        out["items"] = {"description": "Any JSON value."}

    if node.get("default") is not None:
        notes.append(f"Default: {_show(node['default'])}.")
    examples = node.get("examples")
    if isinstance(examples, list) and examples:
        notes.append(f"Examples: {', '.join(_show(v) for v in examples)}.")
    if not out.get("type") and "anyOf" not in out and not notes and base is None:
        notes.append("Any JSON value.")

    desc = _join(description if isinstance(description, str) else None, " ".join(notes))
    if desc:
        out["description"] = desc
    if nullable:
        out["nullable"] = True
    return _ordered({k: v for k, v in out.items() if k in GEMINI_SCHEMA_KEYWORDS})
