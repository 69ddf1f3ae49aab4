"""The one place callgate reads JSON Schema: shape check, `$ref` resolution, `allows_null`, the
subschema walker, closing objects, and the helpers the provider dialects share.

Validation (`callgate.tools.schema`), the dialects (`callgate.dialects.*`), the local grammar
compiler and lint all resolve references here, so a schema means the same thing to each of them.

The reference rule (one rule, tested once in tests/test_schema.py):

- Only references inside the same document are followed: `#` (the root) or a JSON pointer
  `#/a/b` (`#/$defs/X`, `#/definitions/X`, or any other place). Each pointer token is
  percent-decoded (it is a URI fragment), then `~1` becomes `/` and `~0` becomes `~`; a decimal
  token indexes a list. Anything else (`other.json#/X`, `#anchor`, `https://...`) is a
  `SchemaError`: callgate never fetches a schema.
- The target must be a schema: an object, or a boolean (`true` reads as `{}`, `false` as
  `{"not": {}}`). A pointer to nothing is a `SchemaError` naming the reference.
- Keywords next to a `$ref` win over the target's when the two are merged for reading
  (`Refs.deref`): a field's own description beats the model's.
- Recursion through structure (a tree whose children are trees) is allowed. A chain of bare
  references that comes back to itself (`A -> B -> A` with nothing in between) describes no value
  and is refused, as is a chain longer than `MAX_REF_HOPS`. Walkers stop at `MAX_DEPTH` levels.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeAlias
from urllib.parse import unquote

from callgate.errors import SchemaError

JsonSchema: TypeAlias = dict[str, Any]

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


# --- the walker ----------------------------------------------------------------------------

_JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
#: keywords whose value is a list of subschemas, a map of name -> subschema, or one subschema
SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
SCHEMA_ONE = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
)
_DEFS_KEYS = ("$defs", "definitions")
_NUMBERS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_STRINGS = ("$ref", "format", "pattern", "description", "title")

#: longest chain of `$ref`s followed before giving up
MAX_REF_HOPS = 32
#: deepest nesting a walker descends into
MAX_DEPTH = 64


def children(node: Any) -> Iterator[tuple[str, str, Any]]:
    """The direct subschemas of `node` as (keyword, location suffix, subschema), in order.

    Only keywords that hold schemas are followed, so `enum`, `const`, `default` and `examples`
    values are never mistaken for schemas."""
    if not isinstance(node, dict):
        return
    for kw in SCHEMA_LISTS:
        subs = node.get(kw)
        if isinstance(subs, list):
            for i, sub in enumerate(subs):
                yield kw, f".{kw}[{i}]", sub
    for kw in SCHEMA_MAPS:
        subs = node.get(kw)
        if isinstance(subs, dict):
            for name, sub in subs.items():
                yield kw, f".{kw}.{name}", sub
    for kw in SCHEMA_ONE:
        if kw in node and isinstance(node[kw], dict | bool):
            yield kw, f".{kw}", node[kw]


def walk(schema: Any, where: str = "(root)") -> Iterator[tuple[str, JsonSchema]]:
    """Every object subschema of `schema` (itself first) with its location, depth first,
    without following references. Deeper than `MAX_DEPTH` is a `SchemaError`."""
    todo: list[tuple[str, Any, int]] = [(where, schema, 0)]
    while todo:
        at, node, depth = todo.pop()
        if not isinstance(node, dict):
            continue
        if depth > MAX_DEPTH:
            raise SchemaError(f"{at}: nested deeper than {MAX_DEPTH} levels")
        yield at, node
        subs = [(at + suffix, sub, depth + 1) for _, suffix, sub in children(node)]
        todo.extend(reversed(subs))


# --- shape check ---------------------------------------------------------------------------


def check_shape(schema: Any, where: str = "(root)") -> None:
    """Refuse a malformed schema with a `SchemaError` naming the spot, so that every reader
    can trust the type of each keyword it reads. Much cheaper than a metaschema check, and only
    about the keywords callgate interprets."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise SchemaError(f"{where}: a schema must be an object or a boolean, got {schema!r}")
    for at, node in walk(schema, where):
        _check_node(node, at)


def _check_node(node: JsonSchema, where: str) -> None:
    typ = node.get("type")
    if typ is not None:
        kinds = typ if isinstance(typ, list) else [typ]
        if not kinds or not all(isinstance(k, str) and k in _JSON_TYPES for k in kinds):
            raise SchemaError(f"{where}: 'type' must name JSON types, got {typ!r}")
    for kw in _STRINGS:
        if kw in node and not isinstance(node[kw], str):
            raise SchemaError(f"{where}: '{kw}' must be a string")
    for kw in _NUMBERS:
        v = node.get(kw)
        if kw in node and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise SchemaError(f"{where}: '{kw}' must be a number")
    for kw in _COUNTS:
        v = node.get(kw)
        if kw in node and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise SchemaError(f"{where}: '{kw}' must be a non-negative integer")
    req = node.get("required")
    if "required" in node and not (isinstance(req, list) and all(isinstance(r, str) for r in req)):
        raise SchemaError(f"{where}: 'required' must be a list of property names")
    if "enum" in node and not isinstance(node["enum"], list):
        raise SchemaError(f"{where}: 'enum' must be a list")
    if isinstance(node.get("items"), list):
        raise SchemaError(f"{where}: 'items' must be one schema; use prefixItems for tuples")
    for kw in SCHEMA_LISTS:
        if kw in node and (not isinstance(node[kw], list) or not node[kw]):
            raise SchemaError(f"{where}: '{kw}' must be a non-empty list of schemas")
    for kw in SCHEMA_MAPS:
        if kw in node and not isinstance(node[kw], dict):
            raise SchemaError(f"{where}: '{kw}' must map names to schemas")
    for kw in SCHEMA_ONE:
        if kw in node and not isinstance(node[kw], dict | bool):
            raise SchemaError(f"{where}.{kw}: a schema must be an object or a boolean")
    for _, suffix, sub in children(node):
        if not isinstance(sub, dict | bool):
            raise SchemaError(f"{where}{suffix}: a schema must be an object or a boolean")


# --- references ----------------------------------------------------------------------------


class Refs:
    """Resolves the local `$ref`s of one root schema by the rule in the module notes."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self._reach: dict[str, frozenset[str]] = {}

    def resolve(self, ref: str) -> JsonSchema:
        """The schema `ref` points to; `SchemaError` when it is not local or points to nothing."""
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            raise SchemaError(f"$ref {ref!r}: only local references (#/$defs/Name) are supported")
        node: Any = self.root
        for raw in ref[2:].split("/") if ref != "#" else ():
            part = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise SchemaError(f"$ref {ref!r} points to nothing in this schema")
        if node is True:
            return {}
        if node is False:
            return {"not": {}}
        if not isinstance(node, dict):
            raise SchemaError(f"$ref {ref!r} does not point to a schema")
        return node

    def deref(self, node: Any) -> Any:
        """`node` with its `$ref` chain followed: the target's keywords, with the referring
        node's own keywords winning. A node without `$ref` comes back as it is."""
        chain: list[str] = []
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in chain:
                raise SchemaError(f"$ref cycle: {' -> '.join([*chain, ref])} describes no value")
            if len(chain) >= MAX_REF_HOPS:
                raise SchemaError(f"$ref chain longer than {MAX_REF_HOPS} at {ref!r}")
            chain.append(ref)
            target = self.resolve(ref)
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            if siblings:
                node = {k: v for k, v in target.items() if k not in _DEFS_KEYS} | siblings
            else:
                node = target
        return node

    def refs_in(self, node: Any) -> set[str]:
        """Every `$ref` inside `node` (not following them, not looking into `$defs`)."""
        found: set[str] = set()
        todo = [node]
        while todo:
            n = todo.pop()
            if isinstance(n, dict):
                r = n.get("$ref")
                if isinstance(r, str):
                    found.add(r)
                todo.extend(sub for kw, _, sub in children(n) if kw not in _DEFS_KEYS)
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


def check_refs(schema: Any) -> None:
    """Refuse a schema any of whose `$ref`s cannot be followed (points to nothing, is not
    local, or starts a cycle of bare references), naming where the reference is."""
    refs = Refs(schema)
    for where, node in walk(schema):
        if "$ref" in node:
            try:
                refs.deref(node)
            except SchemaError as e:
                raise SchemaError(f"{where}: {e}") from None


def allows_null(schema: Any, refs: Refs | None = None, _depth: int = 0) -> bool:
    """Whether `null` is valid for `schema`. Answers True whenever it cannot be sure (an
    unresolvable reference, recursion deeper than `MAX_DEPTH`), so a caller that drops nulls
    it thinks are not allowed never drops one that is."""
    if _depth > MAX_DEPTH or schema is True or schema == {}:
        return True
    if not isinstance(schema, dict):
        return schema is not False
    ref = schema.get("$ref")
    if isinstance(ref, str):
        try:
            target = (refs or Refs(schema)).resolve(ref)
        except SchemaError:
            return True
        if not allows_null(target, refs, _depth + 1):
            return False
    if schema.get("nullable") is True:
        return True
    typ = schema.get("type")
    if typ is not None and not (typ == "null" or (isinstance(typ, list) and "null" in typ)):
        return False
    if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
        return False
    if "const" in schema and schema["const"] is not None:
        return False
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and not any(
            allows_null(b, refs, _depth + 1) for b in branches
        ):
            return False
    all_of = schema.get("allOf")
    return not (
        isinstance(all_of, list) and any(not allows_null(b, refs, _depth + 1) for b in all_of)
    )


# Keywords whose subschemas describe (part of) the value itself, so closing an object there
# refuses exactly the keys it does not name. Others (not, if, contains, propertyNames...) test
# the value, and closing them would change what the test means.
_CLOSE_INTO = frozenset(
    {"properties", "items", "prefixItems", "additionalProperties", "patternProperties"}
    | {"anyOf", "oneOf", "$defs", "definitions"}
)
_OPEN_KEYS = ("additionalProperties", "patternProperties", "unevaluatedProperties")


def close_objects(schema: JsonSchema) -> JsonSchema:
    """A copy of `schema` in which every object that lists `properties` refuses other keys
    (`additionalProperties: false`), unless it says what to do with them itself
    (`additionalProperties`, `patternProperties`, `unevaluatedProperties`).

    Left open, because closing would refuse keys another part of the schema allows: an object
    combined with others (`allOf`, `then`/`else`), and the members of a union whose parent lists
    properties of its own."""
    out = copy.deepcopy(schema)
    todo: list[tuple[Any, bool]] = [(out, False)]
    while todo:
        node, combined = todo.pop()
        if not isinstance(node, dict):
            continue
        has_props = isinstance(node.get("properties"), dict)
        mixes = any(k in node for k in ("allOf", "then", "else"))
        if has_props and not combined and not mixes and not any(k in node for k in _OPEN_KEYS):
            node["additionalProperties"] = False
        for kw, _, sub in children(node):
            if kw in ("allOf", "then", "else"):  # a part: open itself, closed inside
                todo.append((sub, True))
            elif kw in _CLOSE_INTO:
                todo.append((sub, kw in ("anyOf", "oneOf") and has_props))
    return out


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
