"""The independent judge: what the gate must do with a call, decided without the gate's code.

- Decoding: the standard library's `json` (not the gate's pydantic-core parser), with the
  documented limits re-implemented here: size in UTF-8 bytes, depth, item count, duplicate keys,
  NaN/Infinity (also spelled as an overflowing number), lone surrogates, object root.
- Validation: `jsonschema` (Draft 2020-12) against the tool's exported schema
  (`tool.spec.parameters`), closed at every object level that lists properties without saying
  what extras may be (what the gate promises: unknown keys are reported at any depth).
- The documented normalisation first: a null sent for an optional parameter whose schema does
  not accept null means "omitted" (OpenAI strict mode makes every optional nullable).
- Documented refusals of arguments the schema accepts: an empty required identifier
  (`id`, `*_id`), and a policy that denies the tool.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from tests.adversarial.generator import MAX_BYTES, MAX_DEPTH, MAX_ITEMS

_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "not", "if", "then", "else", "contains")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")


def closed(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `schema` where every object schema that lists properties and says nothing about
    extras refuses them. An explicit `additionalProperties` (true, false or a schema) is kept.
    Local `$ref`s that are not recursive are inlined (the same meaning, validated faster)."""
    out: dict[str, Any] = _inline(copy.deepcopy(schema), schema, ())
    _close(out)
    return out


def _inline(node: Any, root: dict[str, Any], stack: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(x, root, stack) for x in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/") and ref not in stack:
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        body = _inline(copy.deepcopy(target), root, (*stack, ref))
        rest = {k: v for k, v in node.items() if k != "$ref"}
        if isinstance(body, dict) and not set(rest) & set(body):
            return {**body, **rest}
        return {"allOf": [body], **rest}
    if isinstance(ref, str):
        return node  # recursive: left to the validator's resolver
    return {k: _inline(v, root, stack) for k, v in node.items()}


def _close(s: Any) -> None:
    if not isinstance(s, dict):
        return
    if "properties" in s and not any(
        k in s for k in ("additionalProperties", "patternProperties", "unevaluatedProperties")
    ):
        s["additionalProperties"] = False
    for k in _SUBSCHEMA_LISTS:
        for sub in s.get(k, []) if isinstance(s.get(k), list) else []:
            _close(sub)
    for k in _SUBSCHEMA_ONE:
        _close(s.get(k))
    if isinstance(s.get("additionalProperties"), dict):
        _close(s["additionalProperties"])
    for k in _SUBSCHEMA_MAPS:
        if isinstance(s.get(k), dict):
            for sub in s[k].values():
                _close(sub)


# --- decoding ------------------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Refused("duplicate-key")
        out[k] = v
    return out


def _constant(name: str) -> Any:
    raise _Refused("non-finite")


def decode(raw: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(arguments, None) or (None, why the gate must refuse them before validation)."""
    try:
        if isinstance(raw, dict):
            value: Any = raw
            if _text_size(raw) > MAX_BYTES:
                raise _Refused("size")
        elif isinstance(raw, str):
            if len(raw.encode("utf-8", "surrogatepass")) > MAX_BYTES:
                raise _Refused("size")
            text = raw.strip()
            value = (
                {}
                if not text
                else json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
            )
        else:
            raise _Refused("not-object")
    except _Refused as r:
        return None, r.reason
    except RecursionError:
        return None, "depth"
    except ValueError:
        return None, "malformed"
    if not isinstance(value, dict):
        return None, "not-object"
    problem = _shape_problem(value)
    return (None, problem) if problem else (value, None)


def _text_size(v: Any) -> int:
    """Size of decoded arguments as the gate documents it for objects: the text of the strings."""
    if isinstance(v, str):
        return len(v)
    if isinstance(v, dict):
        return sum(len(k) + _text_size(x) for k, x in v.items() if isinstance(k, str))
    if isinstance(v, list):
        return sum(_text_size(x) for x in v)
    return 0


def _shape_problem(value: dict[str, Any]) -> str | None:
    counts = {"items": 0, "depth": 0}
    bad: list[str] = []

    def walk(v: Any, depth: int) -> None:
        if isinstance(v, dict | list):
            counts["depth"] = max(counts["depth"], depth)
            counts["items"] += len(v)
            for k in v if isinstance(v, dict) else ():
                if not isinstance(k, str):
                    bad.append("not-object")
                elif not _encodable(k):
                    bad.append("surrogate")
            for x in v.values() if isinstance(v, dict) else v:
                walk(x, depth + 1)
        elif isinstance(v, str) and not _encodable(v):
            bad.append("surrogate")
        elif isinstance(v, float) and not math.isfinite(v):
            bad.append("non-finite")

    try:
        walk(value, 1)
    except RecursionError:
        return "depth"
    if counts["depth"] > MAX_DEPTH:
        return "depth"
    if counts["items"] > MAX_ITEMS:
        return "items"
    return bad[0] if bad else None


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- the verdict on one call ----------------------------------------------------------------

_MISSING = object()


@dataclass(slots=True)
class Verdict:
    """What must happen to one call.

    `must_run`: the body must run and the result must be a success. Otherwise `why` names the
    reason it must not run ("schema", a decoding reason, "policy", "empty-id"), and `args` is the
    decoded, normalised arguments when there are any (what a body that ran must have received).
    """

    must_run: bool
    why: str
    args: dict[str, Any] | None = None
    schema_ok: bool = False
    #: the error kinds a refusal may have: the model can fix its arguments ("correctable"); a
    #: tool the policy refuses may be refused before or after its arguments are checked
    refusals: frozenset[str] = frozenset({"correctable"})
    #: neither running nor refusing is wrong (see `_imprecise_integer`)
    may_run: bool = False


class Judge:
    """The oracle for one tool."""

    def __init__(
        self, schema: dict[str, Any], *, always_denied: bool = False, raw: bool = False
    ) -> None:
        self.schema = schema
        #: declared by a raw JSON Schema (not a Python signature): findings are grouped by it
        self.raw = raw
        self.closed = closed(schema)
        self.validator = jsonschema.Draft202012Validator(self.closed)
        self.always_denied = always_denied
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        self.required_ids = tuple(
            k
            for k, v in props.items()
            if k in required
            and (k == "id" or k.endswith("_id") or k.endswith("Id"))
            and isinstance(v, dict)
            and v.get("type") == "string"
        )

    def verdict(self, raw: Any) -> Verdict:
        kinds = frozenset({"correctable", "denied"} if self.always_denied else {"correctable"})
        args, problem = decode(raw)
        if args is None:
            return Verdict(False, problem or "malformed", refusals=kinds)
        args = self.normalise(args)
        if not self.validator.is_valid(args):
            return Verdict(False, "schema", args, False, kinds)
        if any(isinstance(args.get(k), str) and not args[k].strip() for k in self.required_ids):
            return Verdict(False, "empty-id", args, True, kinds)
        if self.always_denied:
            return Verdict(False, "policy", args, True, frozenset({"denied"}))
        if _imprecise_integer(args):
            return Verdict(False, "imprecise-integer", args, True, may_run=True)
        return Verdict(True, "valid", args, True)

    def classify(self, args: dict[str, Any]) -> tuple[str, ...]:
        """Names for why the schema refuses `args` (used to group what the gate let through)."""
        return tuple(sorted(_fold(self.validator.iter_errors(args))))

    def unknown_keys(self, args: dict[str, Any]) -> list[str]:
        """Keys the schema does not define, where that is the only thing wrong with `args`."""
        errors = list(self.validator.iter_errors(args))
        if not errors or any(e.validator != "additionalProperties" for e in errors):
            return []
        out: list[str] = []
        for e in errors:
            known = e.schema.get("properties", {}) if isinstance(e.schema, dict) else {}
            out += [k for k in e.instance if k not in known]
        return out

    # the documented normalisation ------------------------------------------------------------

    def resolve(self, s: Any) -> Any:
        for _ in range(32):
            if not (isinstance(s, dict) and isinstance(s.get("$ref"), str)):
                break
            node: Any = self.schema
            for part in s["$ref"][2:].split("/"):
                node = node.get(part, {}) if isinstance(node, dict) else {}
            s = node
        return s

    def allows_null(self, s: Any) -> bool:
        s = self.resolve(s)
        if not isinstance(s, dict):
            return True
        t = s.get("type")
        if t == "null" or (isinstance(t, list) and "null" in t):
            return True
        if None in s.get("enum", ()) or ("const" in s and s["const"] is None):
            return True
        if any(self.allows_null(x) for k in ("anyOf", "oneOf") for x in s.get(k, ())):
            return True
        constrained = ("type", "anyOf", "oneOf", "allOf", "enum", "const", "not")
        return not any(k in s for k in constrained)

    def normalise(self, args: dict[str, Any]) -> dict[str, Any]:
        """Drop nulls sent for optional properties that do not accept null, at any depth where
        the schema names one object shape (through `$ref`, arrays, and unions where exactly one
        object branch names every key the value has)."""
        out = self._drop(args, self.schema, 0)
        assert isinstance(out, dict)
        return out

    def _object_shape(self, s: Any, value: Any) -> dict[str, Any] | None:
        s = self.resolve(s)
        if not isinstance(s, dict):
            return None
        if "properties" in s:
            return s
        branches = [self.resolve(b) for k in ("anyOf", "oneOf") for b in s.get(k, ())]
        objs = [b for b in branches if isinstance(b, dict) and "properties" in b]
        if len(objs) > 1 and isinstance(value, dict):  # the one branch that names every key
            objs = [b for b in objs if set(value) <= set(b["properties"])]
        return objs[0] if len(objs) == 1 else None

    def _drop(self, value: Any, schema: Any, depth: int) -> Any:
        if depth > 64:
            return value
        if isinstance(value, dict):
            obj = self._object_shape(schema, value)
            if obj is None:
                return value
            props, req = obj["properties"], set(obj.get("required", ()))
            out: dict[str, Any] = {}
            for k, v in value.items():
                sub = props.get(k)
                if v is None and sub is not None and k not in req and not self.allows_null(sub):
                    continue
                out[k] = self._drop(v, sub, depth + 1) if sub is not None else v
            return out
        if isinstance(value, list):
            s = self.resolve(schema)
            if not isinstance(s, dict):
                return value
            prefix = s.get("prefixItems")
            if isinstance(prefix, list):
                return [
                    self._drop(v, prefix[i], depth + 1) if i < len(prefix) else v
                    for i, v in enumerate(value)
                ]
            if isinstance(s.get("items"), dict):
                return [self._drop(v, s["items"], depth + 1) for v in value]
        return value

    # what a body received ------------------------------------------------------------------

    def mismatch(self, sent: dict[str, Any], received: dict[str, Any]) -> str | None:
        """None when `received` is exactly `sent` plus schema defaults for what was not sent."""
        props = self.schema.get("properties", {})
        for k, v in sent.items():
            got = received.get(k, _MISSING)
            if got is _MISSING or not same(got, v):
                return f"{k}: sent {v!r:.120}, body got {got!r:.120}"
        for k, got in received.items():
            if k in sent:
                continue
            default = props.get(k, {}).get("default", _MISSING)
            if default is _MISSING or not same(got, default):
                return f"{k}: not sent, body got {got!r:.120} (default {default!r:.60})"
        return None


def _imprecise_integer(v: Any) -> bool:
    """An integral number written as a float beyond 2**53 (`1e308`): JSON Schema calls it an
    integer, but no float that large names one integer exactly, so a validator may refuse it
    for an integer parameter. Likewise an integer beyond the float range (400 digits) may be
    refused for a number parameter, as the infinity it becomes. Either outcome is accepted."""
    if isinstance(v, float):
        return v.is_integer() and abs(v) >= 2**53
    if isinstance(v, int) and not isinstance(v, bool):
        return abs(v) >= 2**1024
    if isinstance(v, dict):
        return any(_imprecise_integer(x) for x in v.values())
    if isinstance(v, list):
        return any(_imprecise_integer(x) for x in v)
    return False


def same(a: Any, b: Any) -> bool:
    """JSON equality that does not confuse booleans with numbers (Python's `True == 1`)."""
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        # a float parameter turns an integer into the nearest float (never into infinity)
        mixed = isinstance(a, float) != isinstance(b, float)
        return a == b or (mixed and _as_float(a) == _as_float(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _as_float(v: int | float) -> float | None:
    try:
        return float(v)
    except OverflowError:
        return None


def non_finite(v: Any) -> bool:
    """Whether a value holds NaN or an infinity anywhere."""
    if isinstance(v, float):
        return not math.isfinite(v)
    if isinstance(v, dict):
        return any(non_finite(x) for x in v.values())
    if isinstance(v, list):
        return any(non_finite(x) for x in v)
    return False


_NUMERIC = {"integer", "number"}


def _classes(e: ValidationError) -> set[str]:
    if e.validator in ("anyOf", "oneOf"):
        return _union_classes(e)
    if e.validator == "type":
        value: Any = e.validator_value
        want = {value} if isinstance(value, str) else set(value)
        got = e.instance
        if isinstance(got, str) and want & (_NUMERIC | {"boolean"}):
            return {"coerced:string->" + ("boolean" if "boolean" in want else "number")}
        if type(got) is bool and want & _NUMERIC:
            choices = isinstance(e.schema, dict) and ("enum" in e.schema or "const" in e.schema)
            return {"coerced:boolean->" + ("number-choice" if choices else "number")}
        if isinstance(got, int | float) and type(got) is not bool and "boolean" in want:
            return {"coerced:number->boolean"}
        return {"other:type"}
    if e.validator == "additionalProperties":
        return {"unknown-key:nested" if e.absolute_path else "unknown-key:top"}
    return {f"other:{e.validator}"}


def _fold(errors: Iterable[ValidationError]) -> set[str]:
    """The classes of several errors. A value that was coerced also fails the keywords that
    check the coerced value (an enum of integers given "5"): those count as the coercion."""
    by_path: dict[tuple[Any, ...], set[str]] = {}
    for e in errors:
        by_path.setdefault(tuple(e.absolute_path), set()).update(_classes(e))
    out: set[str] = set()
    for classes in by_path.values():
        if any(c.startswith("coerced:") for c in classes):
            classes = {c for c in classes if not c.startswith("other:")}
        out |= classes
    return out


def _union_classes(e: ValidationError) -> set[str]:
    """The classes of the union member that came closest: the one whose failures are all
    explainable, with the fewest distinct classes."""
    grouped: dict[Any, list[ValidationError]] = {}
    for sub in e.context or ():
        key = sub.relative_schema_path[0] if sub.relative_schema_path else None
        grouped.setdefault(key, []).append(sub)
    branches = {k: _fold(v) for k, v in grouped.items()}
    explained = [c for c in branches.values() if not any(x.startswith("other:") for x in c)]
    if explained:
        return min(explained, key=len)
    return {f"other:{e.validator}"}
