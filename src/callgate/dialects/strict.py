"""OpenAI strict mode: rewrite a parameters schema into the subset strict decoding accepts,
and undo its "optional means nullable" on the arguments a model sends back.

`strict_schema` / `strict_compatible` and `restore_strict_nulls` belong together (what one
rewrites, the other reverses), so they live here, apart from the other dialects; see
`callgate.dialects.export` for the overview. Its functions are public as
`callgate.dialects`.
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
    allows_null,
    check_shape,
)

__all__ = [
    "OPENAI_STRICT_FORMATS",
    "OPENAI_STRICT_MAX_ENUM_VALUES",
    "OPENAI_STRICT_MAX_NESTING",
    "OPENAI_STRICT_MAX_PROPERTIES",
    "restore_strict_nulls",
    "strict_compatible",
    "strict_schema",
]

#: String formats OpenAI strict mode accepts (structured outputs guide, "Supported properties").
OPENAI_STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
#: Documented strict-mode size limits.
OPENAI_STRICT_MAX_PROPERTIES = 5000
OPENAI_STRICT_MAX_NESTING = 10
OPENAI_STRICT_MAX_ENUM_VALUES = 1000

# Keywords that only carry metadata for humans or tooling.
_META_KEYWORDS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$anchor",
        "readOnly",
        "writeOnly",
        "deprecated",
        "discriminator",
    }
)
# Keywords that make the schema depend on the value in ways no provider subset can express.
_CONDITIONAL_KEYWORDS = (
    "not",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "patternProperties",
    "unevaluatedItems",
    "contains",
    "$dynamicRef",
)


# --- OpenAI strict mode --------------------------------------------------------------------


def strict_compatible(schema: JsonSchema) -> str | None:
    """None when `schema` can be used in OpenAI strict mode, else the reason it cannot."""
    try:
        strict_schema(schema)
    except SchemaError as e:
        return str(e)
    return None


def strict_schema(schema: JsonSchema) -> JsonSchema:
    """Rewrite a parameters schema into OpenAI's strict-mode subset.

    Every object gets `additionalProperties: false` and lists all its properties in `required`;
    optional properties accept null instead (`restore_strict_nulls` undoes that on the way
    back). `default` goes (a non-null default is named in the description), `oneOf` becomes
    `anyOf`, a `$ref` with sibling keywords is inlined once, unsupported formats and length
    constraints move to the description. Raises `SchemaError` naming the offending location when
    the schema needs something strict mode cannot express: open maps (`dict[str, X]`), untyped
    values (`Any`), tuples, conditional keywords, or a root that is not an object.
    """
    if not isinstance(schema, dict):
        raise SchemaError("the parameters schema must be a JSON object")
    return _memo("strict", schema, _strict_schema)


def _strict_schema(schema: JsonSchema) -> JsonSchema:
    check_shape(schema)
    if schema.get("type", "object") != "object" or "anyOf" in schema or "oneOf" in schema:
        raise SchemaError("the root of a strict schema must be a plain object (no anyOf/oneOf)")
    conv = _StrictConverter(schema)
    body = {k: v for k, v in schema.items() if k not in ("$defs", "definitions")}
    out = conv.node(body, "(root)", depth=0)
    defs_key = (
        "$defs" if "$defs" in schema else ("definitions" if "definitions" in schema else None)
    )
    if defs_key is not None:
        defs = schema[defs_key]
        if not isinstance(defs, dict):
            raise SchemaError(f"{defs_key} must be an object")
        converted = {name: conv.node(d, f"{defs_key}.{name}", depth=0) for name, d in defs.items()}
        # Definitions inlined everywhere they were used are dead weight in the prompt.
        used = _used_defs(out, converted, defs_key)
        if used:
            out[defs_key] = {name: d for name, d in converted.items() if name in used}
    if conv.n_properties > OPENAI_STRICT_MAX_PROPERTIES:
        raise SchemaError(
            f"{conv.n_properties} properties in total; strict mode allows "
            f"{OPENAI_STRICT_MAX_PROPERTIES}"
        )
    if conv.n_enum > OPENAI_STRICT_MAX_ENUM_VALUES:
        raise SchemaError(
            f"{conv.n_enum} enum values in total; "
            f"strict mode allows {OPENAI_STRICT_MAX_ENUM_VALUES}"
        )
    return _ordered(out)


class _StrictConverter:
    def __init__(self, root: JsonSchema) -> None:
        self.refs = Refs(root)
        self.n_properties = 0
        self.n_enum = 0

    def node(self, node: Any, where: str, depth: int) -> JsonSchema:
        _refuse_unexpressible(node, where, depth)
        node = {k: v for k, v in node.items() if k not in _META_KEYWORDS and k != "default"}

        ref = node.get("$ref")
        if isinstance(ref, str):
            siblings = {k: v for k, v in node.items() if k not in ("$ref", "title")}
            if not siblings:
                return {"$ref": ref}
            # strict mode refuses "$ref cannot have keywords {...}": inline one level.
            target = {
                k: v for k, v in self.refs.resolve(ref).items() if k not in ("$defs", "definitions")
            }
            target.update(siblings)
            return self.node(target, where, depth)

        all_of = node.pop("allOf", None)
        if all_of is not None:
            if not isinstance(all_of, list) or len(all_of) != 1:
                raise SchemaError(f"{where}: allOf with several schemas is not supported")
            merged = dict(all_of[0]) if isinstance(all_of[0], dict) else {}
            merged.update(node)
            return self.node(merged, where, depth)

        if "oneOf" in node:
            node["anyOf"] = node.pop("oneOf")
        if "anyOf" in node:
            node["anyOf"] = [
                self.node(b, f"{where}.anyOf[{i}]", depth) for i, b in enumerate(node["anyOf"])
            ]
        notes = _move_to_notes(node)
        if isinstance(node.get("enum"), list):
            self.n_enum += len(node["enum"])
        _infer_type(node)
        self._structure(node, where, depth)
        if notes:
            node["description"] = _join(node.get("description"), " ".join(notes))
        return _ordered(node)

    def _structure(self, node: JsonSchema, where: str, depth: int) -> None:
        """Convert an object's properties and an array's items in place."""
        typ = node.get("type")
        types = set(typ) if isinstance(typ, list) else {typ}
        if "object" in types or "properties" in node:
            self._object(node, where, depth)
        if "array" in types or "items" in node:
            items = node.get("items")
            if items is None or items is True or items == {}:
                raise SchemaError(
                    f"{where}: an array needs an item schema in strict mode (e.g. list[str])"
                )
            node["items"] = self.node(items, f"{where}[]", depth + 1)
        if typ is None and not any(
            k in node for k in ("anyOf", "enum", "const", "properties", "items")
        ):
            raise SchemaError(f"{where}: has no type, so it accepts any value")

    def _object(self, node: JsonSchema, where: str, depth: int) -> None:
        extra = node.get("additionalProperties", None)
        props = node.get("properties")
        if props is None or props == {}:
            if extra is False:
                node["properties"] = {}
                node["required"] = []
                return
            raise SchemaError(
                f"{where}: a free-form object (dict) cannot be expressed in strict mode; "
                "declare its keys with a model"
            )
        if extra not in (None, False):
            raise SchemaError(
                f"{where}: additionalProperties (an open map) cannot be expressed in strict mode"
            )
        if not isinstance(props, dict):
            raise SchemaError(f"{where}: properties must be an object")
        required = set(node.get("required", []))
        new_props: dict[str, Any] = {}
        for name, sub in props.items():
            self.n_properties += 1
            sub_where = name if where == "(root)" else f"{where}.{name}"
            converted = self.node(sub, sub_where, depth + 1)
            if name not in required:
                default = sub.get("default") if isinstance(sub, dict) else None
                converted = self._nullable(converted, sub, default)
            new_props[name] = converted
        node["properties"] = new_props
        node["required"] = list(new_props)
        node["additionalProperties"] = False

    def _nullable(self, converted: JsonSchema, original: Any, default: Any) -> JsonSchema:
        """Let an optional property be null (strict mode's way of saying "not given")."""
        if allows_null(original, self.refs):
            if default is not None:
                converted = dict(converted)
                hint = f"Default: {_show(default)}."
                converted["description"] = _join(converted.get("description"), hint)
            return _ordered(converted)
        note = f"Default: {_show(default)} (send null to use it)." if default is not None else None
        desc = _join(converted.get("description"), note) if note else converted.get("description")
        typ = converted.get("type")
        if isinstance(typ, str) and set(converted) <= _SCALAR_KEYS and typ != "object":
            out = dict(converted, type=[typ, "null"])
            if desc:
                out["description"] = desc
            return _ordered(out)
        inner = {k: v for k, v in converted.items() if k != "description"}
        if set(inner) == {"anyOf"}:
            wrapped: JsonSchema = {"anyOf": [*inner["anyOf"], {"type": "null"}]}
        else:
            wrapped = {"anyOf": [inner, {"type": "null"}]}
        if desc:
            wrapped["description"] = desc
        return _ordered(wrapped)


def _refuse_unexpressible(node: Any, where: str, depth: int) -> None:
    """Raise for what strict mode cannot express at all, whatever else the node says."""
    if node is True or node == {}:
        raise SchemaError(f"{where}: accepts any value, which strict mode cannot express")
    if not isinstance(node, dict):
        raise SchemaError(f"{where}: expected a schema object, got {node!r}")
    if depth > OPENAI_STRICT_MAX_NESTING:
        raise SchemaError(
            f"{where}: nested deeper than the {OPENAI_STRICT_MAX_NESTING} levels strict mode allows"
        )
    for kw in _CONDITIONAL_KEYWORDS:
        if kw in node:
            raise SchemaError(f"{where}: '{kw}' is not supported in strict mode")
    if "prefixItems" in node:
        raise SchemaError(f"{where}: tuples (prefixItems) are not supported in strict mode")


# keyword -> the note that replaces it ("" drops it silently)
_NOTED_KEYWORDS = (
    ("minLength", "At least {} characters."),
    ("maxLength", "At most {} characters."),
    ("uniqueItems", "Items must be unique."),
    ("minProperties", "At least {} entries."),
    ("maxProperties", "At most {} entries."),
    ("minContains", ""),
    ("maxContains", ""),
    ("propertyNames", ""),  # only restricts keys of open maps, which strict mode refuses anyway
    ("examples", "Examples: {}."),
)


def _move_to_notes(node: JsonSchema) -> list[str]:
    """Remove the keywords strict mode refuses but a model should still read (an unsupported
    format, length and count limits, examples) and return them as description notes."""
    notes: list[str] = []
    fmt = node.get("format")
    if fmt is not None and fmt not in OPENAI_STRICT_FORMATS:
        node.pop("format")
        notes.append(_format_note(fmt))
    for kw, text in _NOTED_KEYWORDS:
        if kw not in node:
            continue
        value = node.pop(kw)
        if not text or (kw == "uniqueItems" and value is not True):
            continue
        shown = ", ".join(_show(v) for v in value) if kw == "examples" else value
        notes.append(text.format(shown))
    return notes


def _infer_type(node: JsonSchema) -> None:
    """Give an untyped enum or const the type its values share (strict mode wants a type)."""
    if "type" in node or "anyOf" in node:
        return
    values = node["enum"] if isinstance(node.get("enum"), list) else None
    if "const" in node:
        values = [node["const"]]
    kinds = {_json_type(v) for v in values or []}
    if len(kinds) == 1:
        node["type"] = kinds.pop()


# Keywords of a scalar schema that stay meaningful when its type becomes [T, "null"].
_SCALAR_KEYS = frozenset(
    {
        "type",
        "title",
        "description",
        "format",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
    }
)


# --- strict nulls back to omissions --------------------------------------------------------


def restore_strict_nulls(arguments: dict[str, Any], original_schema: JsonSchema) -> dict[str, Any]:
    """Undo strict mode's "optional means nullable" on arguments a model sent.

    A `null` for a property that is optional and does not accept null in `original_schema` is
    removed, so the property takes its default. Nested objects and arrays are followed
    (through `$ref`s, and through `anyOf` when exactly one object branch fits). A null the
    original schema allows is always kept; when in doubt, nothing is removed.
    Returns a new dict; `arguments` is not modified.
    """
    if not isinstance(arguments, dict):
        return arguments
    check_shape(original_schema)
    refs = Refs(original_schema)
    out = _restore(arguments, original_schema, refs, 0)
    assert isinstance(out, dict)
    return out


_MAX_RESTORE_DEPTH = 64


def _restore(value: Any, schema: Any, refs: Refs, depth: int) -> Any:
    if depth > _MAX_RESTORE_DEPTH or not isinstance(schema, dict):
        return value
    schema = _deref(schema, refs)
    if schema is None:
        return value
    if isinstance(value, dict):
        obj = _object_branch(value, schema, refs)
        if obj is None:
            return dict(value)
        props = obj.get("properties")
        props = props if isinstance(props, dict) else {}
        required = set(obj.get("required", []))
        extra = obj.get("additionalProperties")
        out: dict[str, Any] = {}
        for key, v in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if (
                v is None
                and key in props
                and key not in required
                and not allows_null(props[key], refs)
            ):
                continue
            out[key] = _restore(v, sub, refs, depth + 1) if sub is not None else v
        return out
    if isinstance(value, list):
        arr = _array_branch(schema, refs)
        if arr is None:
            return list(value)
        prefix = arr.get("prefixItems")
        items = arr.get("items")
        result: list[Any] = []
        for i, v in enumerate(value):
            item_schema = prefix[i] if isinstance(prefix, list) and i < len(prefix) else items
            result.append(
                _restore(v, item_schema, refs, depth + 1) if isinstance(item_schema, dict) else v
            )
        return result
    return value


def _deref(schema: JsonSchema, refs: Refs) -> JsonSchema | None:
    """Follow `$ref`s and single-element `allOf`s to the schema that holds the keywords; None
    when a reference cannot be followed (then nothing is removed)."""
    for _ in range(_MAX_RESTORE_DEPTH):
        try:
            schema = refs.deref(schema)
        except SchemaError:
            return None
        all_of = schema.get("allOf")
        if not (isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict)):
            return schema
        schema = {**all_of[0], **{k: v for k, v in schema.items() if k != "allOf"}}
    return None


def _branches(schema: JsonSchema) -> list[Any] | None:
    for key in ("anyOf", "oneOf"):
        b = schema.get(key)
        if isinstance(b, list):
            return b
    return None


def _object_branch(value: dict[str, Any], schema: JsonSchema, refs: Refs) -> JsonSchema | None:
    branches = _branches(schema)
    if branches is None:
        return schema if isinstance(schema.get("properties"), dict) else None
    fits: list[JsonSchema] = []
    for b in branches:
        if not isinstance(b, dict):
            continue
        d = _deref(b, refs)
        if d is None:
            continue
        if _branches(d) is not None:
            inner = _object_branch(value, d, refs)
            if inner is not None:
                fits.append(inner)
            continue
        props = d.get("properties")
        if isinstance(props, dict) and set(value) <= set(props):
            fits.append(d)
    return fits[0] if len(fits) == 1 else None


def _array_branch(schema: JsonSchema, refs: Refs) -> JsonSchema | None:
    branches = _branches(schema)
    if branches is None:
        return schema if ("items" in schema or "prefixItems" in schema) else None
    arrays = []
    for b in branches:
        d = _deref(b, refs) if isinstance(b, dict) else None
        if d is not None and ("items" in d or "prefixItems" in d):
            arrays.append(d)
    return arrays[0] if len(arrays) == 1 else None


def _used_defs(root: JsonSchema, defs: dict[str, Any], defs_key: str) -> set[str]:
    """Names of the definitions reachable from `root` through `#/<defs_key>/...` references."""
    prefix = f"#/{defs_key}/"
    used: set[str] = set()
    todo: list[Any] = [root]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix):
                name = ref[len(prefix) :]
                if name not in used and name in defs:
                    used.add(name)
                    todo.append(defs[name])
            todo.extend(v for k, v in node.items() if k != defs_key)
        elif isinstance(node, list):
            todo.extend(node)
    return used
