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
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeAlias

from callgate.errors import SchemaError
from callgate.tools import ToolSpec

__all__ = [
    "GEMINI_SCHEMA_KEYWORDS",
    "OPENAI_STRICT_FORMATS",
    "Dialect",
    "check_shape",
    "export_tools",
    "inline_refs",
    "restore_strict_nulls",
    "strict_compatible",
    "strict_schema",
    "to_anthropic",
    "to_gemini",
    "to_openai_chat",
    "to_openai_responses",
]

JsonSchema: TypeAlias = dict[str, Any]
Dialect = Literal["openai_chat", "openai_responses", "anthropic", "gemini"]
StrictMode = bool | Literal["auto"]

#: String formats OpenAI strict mode accepts (structured outputs guide, "Supported properties").
OPENAI_STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
#: Documented strict-mode size limits.
OPENAI_STRICT_MAX_PROPERTIES = 5000
OPENAI_STRICT_MAX_NESTING = 10
OPENAI_STRICT_MAX_ENUM_VALUES = 1000

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

# Output key order: the keys a reader looks for first, then the rest in input order.
_KEY_ORDER = (
    "$ref",
    "type",
    "title",
    "description",
    "nullable",
    "enum",
    "const",
    "format",
    "pattern",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "items",
    "minItems",
    "maxItems",
    "properties",
    "required",
    "additionalProperties",
    "anyOf",
    "default",
    "$defs",
)
_KEY_RANK = {k: i for i, k in enumerate(_KEY_ORDER)}

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


# --- public: tool formats ------------------------------------------------------------------


def to_openai_chat(spec: ToolSpec, *, strict: StrictMode = False) -> dict[str, Any]:
    """Chat Completions tool: `{"type": "function", "function": {...}}`.

    `strict=True` rewrites the parameters with `strict_schema` (raising `SchemaError` when that is
    impossible); `strict="auto"` uses strict mode only when the schema allows it.
    """
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
    params, is_strict = _openai_parameters(spec, strict)
    out: dict[str, Any] = {"type": "function", "name": spec.name}
    if spec.description:
        out["description"] = spec.description
    out["parameters"] = params
    out["strict"] = is_strict
    return out


def to_anthropic(spec: ToolSpec) -> dict[str, Any]:
    """Anthropic Messages tool: `{"name", "description", "input_schema"}` (full JSON Schema)."""
    check_shape(spec.parameters)
    out: dict[str, Any] = {"name": spec.name}
    if spec.description:
        out["description"] = spec.description
    schema = copy.deepcopy(spec.parameters)
    schema.setdefault("type", "object")
    out["input_schema"] = schema
    return out


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


# --- memo ----------------------------------------------------------------------------------
#
# Provider adapters export every tool on every request; a tool's schema rarely changes. The
# converted schema is kept as JSON text keyed by the input's JSON text, and each call gets a
# fresh parse, so callers may mutate what they get. Schemas that are not plain JSON (a Python
# object as a default) are converted every time.

_MEMO_SIZE = 1024
_memo_store: dict[tuple[str, str], tuple[bool, str]] = {}
_memo_lock = threading.Lock()


def _memo(kind: str, schema: JsonSchema, convert: Callable[[JsonSchema], JsonSchema]) -> JsonSchema:
    try:
        key = (kind, json.dumps(schema, ensure_ascii=False, allow_nan=False))
    except (TypeError, ValueError):
        return convert(schema)
    with _memo_lock:
        hit = _memo_store.get(key)
    if hit is None:
        try:
            result = convert(schema)
            hit = (True, json.dumps(result, ensure_ascii=False))
        except SchemaError as e:
            hit = (False, str(e))
        with _memo_lock:
            if len(_memo_store) >= _MEMO_SIZE:
                _memo_store.pop(next(iter(_memo_store)))
            _memo_store[key] = hit
    ok, text = hit
    if not ok:
        raise SchemaError(text)
    out: JsonSchema = json.loads(text)
    return out


def export_tools(
    specs: Iterable[ToolSpec], dialect: Dialect, *, strict: StrictMode = False
) -> list[dict[str, Any]]:
    """Every spec in one provider's format, in the given order.

    `strict` applies to the OpenAI dialects only (the others have no strict schema mode).
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
            out.append(to_gemini(spec))
        else:
            raise ValueError(
                f"unknown dialect {dialect!r}; "
                "use openai_chat, openai_responses, anthropic or gemini"
            )
    return out


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


# --- shape check ---------------------------------------------------------------------------

_JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains")
_NUMBERS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_STRINGS = ("$ref", "format", "pattern", "description", "title")


def check_shape(schema: Any, where: str = "(root)") -> None:
    """Refuse a malformed schema with a `SchemaError` naming the spot, so that the converters
    below can trust the type of every keyword they read. Much cheaper than a metaschema check,
    and only about the keywords callgate interprets."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise SchemaError(f"{where}: a schema must be an object or a boolean, got {schema!r}")
    typ = schema.get("type")
    if typ is not None:
        kinds = typ if isinstance(typ, list) else [typ]
        if not kinds or not all(isinstance(k, str) and k in _JSON_TYPES for k in kinds):
            raise SchemaError(f"{where}: 'type' must name JSON types, got {typ!r}")
    for kw in _STRINGS:
        if kw in schema and not isinstance(schema[kw], str):
            raise SchemaError(f"{where}: '{kw}' must be a string")
    for kw in _NUMBERS:
        v = schema.get(kw)
        if kw in schema and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise SchemaError(f"{where}: '{kw}' must be a number")
    for kw in _COUNTS:
        v = schema.get(kw)
        if kw in schema and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise SchemaError(f"{where}: '{kw}' must be a non-negative integer")
    req = schema.get("required")
    if req is not None and not (isinstance(req, list) and all(isinstance(r, str) for r in req)):
        raise SchemaError(f"{where}: 'required' must be a list of property names")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise SchemaError(f"{where}: 'enum' must be a list")
    if isinstance(schema.get("items"), list):
        raise SchemaError(f"{where}: 'items' must be one schema; use prefixItems for tuples")
    for kw in _SCHEMA_LISTS:
        if kw in schema:
            subs = schema[kw]
            if not isinstance(subs, list) or not subs:
                raise SchemaError(f"{where}: '{kw}' must be a non-empty list of schemas")
            for i, sub in enumerate(subs):
                check_shape(sub, f"{where}.{kw}[{i}]")
    for kw in _SCHEMA_MAPS:
        if kw in schema:
            subs = schema[kw]
            if not isinstance(subs, dict):
                raise SchemaError(f"{where}: '{kw}' must map names to schemas")
            for name, sub in subs.items():
                check_shape(sub, f"{where}.{kw}.{name}")
    for kw in _SCHEMA_ONE:
        if kw in schema:
            check_shape(schema[kw], f"{where}.{kw}")


# --- references ----------------------------------------------------------------------------


class _Refs:
    """Resolves local `$ref`s (`#`, `#/$defs/X`, `#/definitions/X`) against one root schema."""

    def __init__(self, root: JsonSchema) -> None:
        self.root = root
        self._reach: dict[str, frozenset[str]] = {}

    def resolve(self, ref: str) -> JsonSchema:
        if ref == "#":
            return self.root
        if not ref.startswith("#/"):
            raise SchemaError(f"only local references are supported, got $ref {ref!r}")
        node: Any = self.root
        for raw in ref[2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise SchemaError(f"$ref {ref!r} points to nothing in this schema")
            node = node[part]
        if not isinstance(node, dict):
            raise SchemaError(f"$ref {ref!r} does not point to a schema object")
        return node

    def refs_in(self, node: Any) -> set[str]:
        """Every `$ref` directly inside `node` (not following them)."""
        found: set[str] = set()

        def walk(n: Any) -> None:
            if isinstance(n, dict):
                r = n.get("$ref")
                if isinstance(r, str):
                    found.add(r)
                for k, v in n.items():
                    if k not in ("$defs", "definitions"):
                        walk(v)
            elif isinstance(n, list):
                for v in n:
                    walk(v)

        walk(node)
        return found

    def reach(self, ref: str) -> frozenset[str]:
        """Every reference reachable from `ref`, itself included."""
        if ref in self._reach:
            return self._reach[ref]
        seen: set[str] = set()
        todo = [ref]
        while todo:
            r = todo.pop()
            if r in seen:
                continue
            seen.add(r)
            todo.extend(self.refs_in(self.resolve(r)) - seen)
        self._reach[ref] = frozenset(seen)
        return self._reach[ref]


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
        self.refs = _Refs(root)
        self.n_properties = 0
        self.n_enum = 0

    def node(self, node: Any, where: str, depth: int) -> JsonSchema:
        if node is True or node == {}:
            raise SchemaError(f"{where}: accepts any value, which strict mode cannot express")
        if not isinstance(node, dict):
            raise SchemaError(f"{where}: expected a schema object, got {node!r}")
        if depth > OPENAI_STRICT_MAX_NESTING:
            raise SchemaError(
                f"{where}: nested deeper than the {OPENAI_STRICT_MAX_NESTING} levels "
                "strict mode allows"
            )
        for kw in _CONDITIONAL_KEYWORDS:
            if kw in node:
                raise SchemaError(f"{where}: '{kw}' is not supported in strict mode")
        if "prefixItems" in node:
            raise SchemaError(f"{where}: tuples (prefixItems) are not supported in strict mode")

        node = dict(node)
        for k in _META_KEYWORDS:
            node.pop(k, None)
        node.pop("default", None)

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
            branches = node["anyOf"]
            if not isinstance(branches, list) or not branches:
                raise SchemaError(f"{where}: anyOf must be a non-empty list")
            node["anyOf"] = [
                self.node(b, f"{where}.anyOf[{i}]", depth) for i, b in enumerate(branches)
            ]

        notes: list[str] = []
        fmt = node.get("format")
        if fmt is not None and fmt not in OPENAI_STRICT_FORMATS:
            node.pop("format")
            notes.append(_format_note(fmt))
        for kw, text in (
            ("minLength", "At least {} characters."),
            ("maxLength", "At most {} characters."),
            ("uniqueItems", "Items must be unique."),
            ("minProperties", "At least {} entries."),
            ("maxProperties", "At most {} entries."),
            ("minContains", ""),
            ("maxContains", ""),
            ("propertyNames", ""),
            ("examples", "Examples: {}."),
        ):
            if kw in node:
                value = node.pop(kw)
                if kw == "uniqueItems" and value is not True:
                    continue
                if kw == "propertyNames":
                    continue  # only restricts keys of open maps, which strict mode refuses anyway
                if text:
                    shown = ", ".join(_show(v) for v in value) if kw == "examples" else value
                    notes.append(text.format(shown))
        if "enum" in node and isinstance(node["enum"], list):
            self.n_enum += len(node["enum"])
        if "type" not in node and "anyOf" not in node:
            values = node["enum"] if isinstance(node.get("enum"), list) else None
            if "const" in node:
                values = [node["const"]]
            kinds = {_json_type(v) for v in values or []}
            if len(kinds) == 1:
                node["type"] = kinds.pop()

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
        if notes:
            node["description"] = _join(node.get("description"), " ".join(notes))
        return _ordered(node)

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
        if _allows_null(original, self.refs):
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
    refs = _Refs(original_schema)
    out = _restore(arguments, original_schema, refs, 0)
    assert isinstance(out, dict)
    return out


_MAX_RESTORE_DEPTH = 64


def _restore(value: Any, schema: Any, refs: _Refs, depth: int) -> Any:
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
                and not _allows_null(props[key], refs)
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


def _deref(schema: JsonSchema, refs: _Refs) -> JsonSchema | None:
    """Follow `$ref`s and single-element `allOf`s to the schema that holds the keywords."""
    seen: set[str] = set()
    while True:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if ref in seen:
                return None
            seen.add(ref)
            try:
                target = refs.resolve(ref)
            except SchemaError:
                return None
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            continue
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
            schema = {**all_of[0], **{k: v for k, v in schema.items() if k != "allOf"}}
            continue
        return schema


def _branches(schema: JsonSchema) -> list[Any] | None:
    for key in ("anyOf", "oneOf"):
        b = schema.get(key)
        if isinstance(b, list):
            return b
    return None


def _object_branch(value: dict[str, Any], schema: JsonSchema, refs: _Refs) -> JsonSchema | None:
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


def _array_branch(schema: JsonSchema, refs: _Refs) -> JsonSchema | None:
    branches = _branches(schema)
    if branches is None:
        return schema if ("items" in schema or "prefixItems" in schema) else None
    arrays = []
    for b in branches:
        d = _deref(b, refs) if isinstance(b, dict) else None
        if d is not None and ("items" in d or "prefixItems" in d):
            arrays.append(d)
    return arrays[0] if len(arrays) == 1 else None


def _allows_null(schema: Any, refs: _Refs, _depth: int = 0) -> bool:
    """Whether null is valid for `schema`. Answers True whenever it cannot be sure."""
    if _depth > _MAX_RESTORE_DEPTH:
        return True
    if schema is True or schema == {}:
        return True
    if not isinstance(schema, dict):
        return schema is not False
    ref = schema.get("$ref")
    if isinstance(ref, str):
        try:
            target = refs.resolve(ref)
        except SchemaError:
            return True
        if not _allows_null(target, refs, _depth + 1):
            return False
    if schema.get("nullable") is True:
        return True
    typ = schema.get("type")
    if typ is not None and not (typ == "null" or (isinstance(typ, list) and "null" in typ)):
        return False
    if "enum" in schema and isinstance(schema["enum"], list) and None not in schema["enum"]:
        return False
    if "const" in schema and schema["const"] is not None:
        return False
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and not any(
            _allows_null(b, refs, _depth + 1) for b in branches
        ):
            return False
    all_of = schema.get("allOf")
    return not (
        isinstance(all_of, list) and any(not _allows_null(b, refs, _depth + 1) for b in all_of)
    )


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


# --- small helpers -------------------------------------------------------------------------


def _ordered(node: Mapping[str, Any]) -> JsonSchema:
    position = {k: i for i, k in enumerate(node)}
    keys = sorted(node, key=lambda k: (_KEY_RANK.get(k, len(_KEY_RANK)), position[k]))
    return {k: node[k] for k in keys}


def _join(first: str | None, second: str | None) -> str:
    a = (first or "").strip()
    b = (second or "").strip()
    if not a:
        return b
    if not b:
        return a
    if a[-1] not in ".!?:;":
        a += "."
    return f"{a} {b}"


_FORMAT_HINTS = {
    "date": "date (YYYY-MM-DD)",
    "time": "time (HH:MM:SS)",
    "date-time": "date-time (ISO 8601, e.g. 2025-01-31T09:30:00Z)",
    "duration": "duration (ISO 8601, e.g. P3DT4H)",
    "uri": "URI",
    "url": "URL",
}


def _format_note(fmt: str) -> str:
    return f"Format: {_FORMAT_HINTS.get(fmt, fmt)}."


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


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
