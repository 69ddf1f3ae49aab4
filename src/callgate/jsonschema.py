"""Schema plumbing shared by the provider dialects (`callgate.dialects.export`,
`callgate.dialects.strict`, `callgate.dialects.gemini`).

The shape check every converter trusts, local `$ref` resolution, the conversion memo, the fixed
output key order and a few text helpers. It exists so the dialect modules can each own one
provider's rules without importing one another; nothing here knows about any provider.
`check_shape` is public as `callgate.dialects.export.check_shape`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

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
