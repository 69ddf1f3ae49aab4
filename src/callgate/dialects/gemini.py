"""Gemini: reduce a canonical JSON Schema to the OpenAPI 3.0 subset a `FunctionDeclaration`
accepts.

`to_gemini` inlines references (`inline_refs`, cutting recursion at a depth), turns
`anyOf [X, null]` into ``nullable``, upper-cases type names, keeps only
`GEMINI_SCHEMA_KEYWORDS` and moves every constraint it cannot carry into the description. No
other dialect needs any of this, so it has a module of its own; see `callgate.dialects.export`
for the overview. Its functions are public as `callgate.dialects`.
"""

from __future__ import annotations

from typing import Any

from callgate.errors import SchemaError
from callgate.jsonschema import (
    JsonSchema,
    Refs,
    _format_note,
    _join,
    _json_type,
    _memo,
    _ordered,
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
    out = _Inliner(Refs(schema), max_depth).expand(schema, ())
    assert isinstance(out, dict)
    return out


class _Inliner:
    """One `inline_refs` run: the references of one root, the depth limit, the budget left."""

    def __init__(self, refs: Refs, max_depth: int) -> None:
        self.refs = refs
        self.max_depth = max_depth
        self.budget = _INLINE_BUDGET

    def expand(self, node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [self.expand(v, stack) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            return self._expand_ref(node, ref, stack)
        return {
            k: self.expand(v, stack) for k, v in node.items() if k not in ("$defs", "definitions")
        }

    def _expand_ref(self, node: JsonSchema, ref: str, stack: tuple[str, ...]) -> Any:
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        target = self.refs.resolve(ref)
        self.budget -= 1
        if self.budget < 0:
            raise SchemaError(
                f"inlining references makes the schema too large (over {_INLINE_BUDGET} "
                "expansions); lower max_depth"
            )
        if stack.count(ref) >= self.max_depth:
            body = self._cut(target, ref, (*stack, ref))
            cut = {**body, **siblings}
            if "description" in siblings and "description" in body:
                cut["description"] = _join(siblings["description"], body["description"])
            return self.expand(cut, (*stack, ref))
        merged = {k: v for k, v in target.items() if k not in ("$defs", "definitions")}
        merged.update(siblings)
        return self.expand(merged, (*stack, ref))

    def _cut(self, target: JsonSchema, ref: str, stack: tuple[str, ...]) -> JsonSchema:
        """`target` with the properties that lead back into the recursion left out."""
        on_stack = set(stack)
        props = target.get("properties")
        kept: dict[str, Any] = {}
        dropped: list[str] = []
        if isinstance(props, dict):
            for name, sub in props.items():
                if any(on_stack & self.refs.reach(r) for r in self.refs.refs_in(sub)):
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


# --- Gemini --------------------------------------------------------------------------------


def _gemini_node(node: Any, where: str) -> JsonSchema:
    if not isinstance(node, dict):
        return {"description": "Any JSON value."}
    node = _flatten(node)
    notes: list[str] = []
    out: JsonSchema = {}
    description = node.get("description")
    title = node.get("title")
    if not description and isinstance(title, str):
        description = title

    node, typ, nullable = _split_type_list(node)
    branches = node.get("anyOf")
    if isinstance(branches, list):
        real = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
        nullable = nullable or len(real) != len(branches)
        if len(real) == 1 and isinstance(real[0], dict):
            outer = {k: v for k, v in node.items() if k not in ("anyOf", "description", "title")}
            inner = _gemini_node({**real[0], **outer}, where)
            inner_desc = inner.pop("description", None)
            inner.pop("nullable", None)
            out.update(inner)
            if inner_desc != description:
                description = _join(description, inner_desc)
        elif real:
            out["anyOf"] = [_gemini_node(b, f"{where}.anyOf[{i}]") for i, b in enumerate(real)]
        typ = None
    elif typ is not None:
        out["type"] = str(typ).upper() if typ != "null" else "NULL"

    nullable = _values(node, out, notes) or nullable
    base = typ if isinstance(typ, str) else None
    _bounds(node, base, out, notes)
    _object(node, out, notes, where)
    _array(node, base, out, notes, where)
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


def _flatten(node: JsonSchema) -> JsonSchema:
    """`allOf` parts merged in (the node's own keywords win) and `oneOf` read as `anyOf`."""
    node = dict(node)
    all_of = node.pop("allOf", None)
    if isinstance(all_of, list) and all_of:
        for part in all_of:
            if isinstance(part, dict):
                for k, v in part.items():
                    node.setdefault(k, v)
    if "oneOf" in node:
        node.setdefault("anyOf", node.pop("oneOf"))
    return node


def _split_type_list(node: JsonSchema) -> tuple[JsonSchema, Any, bool]:
    """A `type` list becomes one type plus `nullable`, or an `anyOf` of one node per type."""
    typ = node.get("type")
    if not isinstance(typ, list):
        return node, typ, False
    non_null = [t for t in typ if t != "null"]
    nullable = len(non_null) != len(typ)
    if len(non_null) == 1:
        return node, non_null[0], nullable
    if non_null:
        rest = {k: v for k, v in node.items() if k not in ("type", "description", "title")}
        return {"anyOf": [{**rest, "type": t} for t in non_null]}, None, nullable
    return node, None, nullable


def _values(node: JsonSchema, out: JsonSchema, notes: list[str]) -> bool:
    """`const` and `enum`: Gemini's enums hold strings only, others become a note. Returns
    whether null was one of the values."""
    nullable = False
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
    return nullable


_KEPT_BOUNDS = (
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
    "minProperties",
    "maxProperties",
)


def _bounds(node: JsonSchema, base: str | None, out: JsonSchema, notes: list[str]) -> None:
    """Formats and numeric/length bounds: kept where Gemini has them, noted where not."""
    fmt = node.get("format")
    if isinstance(fmt, str):
        if fmt in _GEMINI_FORMATS.get(base or "", frozenset()):
            out["format"] = fmt
        else:
            notes.append(_format_note(fmt))
    for kw in _KEPT_BOUNDS:
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


def _object(node: JsonSchema, out: JsonSchema, notes: list[str], where: str) -> None:
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


def _array(
    node: JsonSchema, base: str | None, out: JsonSchema, notes: list[str], where: str
) -> None:
    """`items`, and tuples (`prefixItems`) as an array of their item shapes with a fixed size."""
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
