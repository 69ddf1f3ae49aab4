"""Signature -> (JSON Schema, validator), built once at registration.

A function's type hints and docstring are turned into a Pydantic model with `extra="forbid"`:
unknown parameters are reported, never dropped. The model's JSON Schema is cleaned (no
auto-generated titles) and is the single source every provider dialect is derived from. Tools
declared by a raw JSON Schema get a `JsonSchemaValidator` with the same error shape, and their
schema is checked against the metaschema at registration.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import enum
import functools
import inspect
import itertools
import json
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticSerializationError, to_json

from callgate.context import RunContext
from callgate.errors import SchemaError
from callgate.jsonschema import MAX_DEPTH, Refs, allows_null, check_refs, close_objects, walk


@dataclass(slots=True)
class FieldIssue:
    """One thing wrong with a call's arguments, in terms the model can act on."""

    path: tuple[str | int, ...]
    kind: str  # missing | unknown | type | value | format
    message: str
    expected: str | None = None
    given: Any = field(default=None)
    has_given: bool = False
    allowed: list[Any] | None = None
    suggestion: str | None = None

    @property
    def location(self) -> str:
        """The path as the model reads it (``items[0].name``). A name the model invented can be
        as long as the size limit allows: each is cut, so an error never echoes it in full."""
        out = ""
        for p in self.path:
            if isinstance(p, int):
                out += f"[{p}]"
                continue
            name = p if len(p) <= _MAX_NAME else p[: _MAX_NAME - 1] + "…"
            out += f".{name}" if out else name
        return out or "(arguments)"


#: longest parameter or key name shown whole in an error
_MAX_NAME = 64


#: most issues reported for one call: a model reads the first few; converting, masking and
#: rendering 10,000 (one bad field in each of 10,000 items) would stall the event loop
MAX_ISSUES = 50


class ArgumentsInvalid(Exception):
    def __init__(self, issues: list[FieldIssue]) -> None:
        super().__init__("; ".join(i.message for i in issues))
        self.issues = issues


class ArgumentValidator(Protocol):
    schema: dict[str, Any]

    def fast_json(self, raw: str) -> dict[str, Any] | None:
        """Optional shortcut: validated arguments straight from flat JSON text, or None."""
        ...

    param_names: frozenset[str]
    #: top-level parameters that have a default but do not accept null: a null sent for one of
    #: them means "omitted" (OpenAI strict mode makes optionals nullable).
    null_means_omitted: frozenset[str]

    def validate(self, args: dict[str, Any]) -> dict[str, Any]:
        """Return validated keyword arguments or raise `ArgumentsInvalid`."""
        ...


def did_you_mean(word: str, candidates: typing.Iterable[str]) -> str | None:
    # A ratio >= 0.6 needs lengths within a factor of 2.33 of each other: only those reach
    # difflib, so a 64 KiB "name" costs a length test, not a table of every character.
    candidates = list(candidates)
    n = len(word)
    close = [c for c in candidates if 3 * n <= 7 * len(c) and 3 * len(c) <= 7 * n]
    best = difflib.get_close_matches(word, close, n=1, cutoff=0.6) if close else []
    if best:
        return best[0]
    low = word.lower().replace("-", "_")
    for c in candidates:
        if c.lower() == low:
            return c
    return None


# --- function tools ------------------------------------------------------------------------


@dataclass(slots=True)
class FunctionSchema:
    description: str
    parameters: dict[str, Any]
    validator: PydanticValidator
    context_param: str | None


def _is_context(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if annotation is RunContext or origin is RunContext:
        return True
    if origin is typing.Annotated:
        return _is_context(typing.get_args(annotation)[0])
    return False


def context_param_of(fn: Callable[..., Any]) -> str | None:
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable hints simply mean "no context parameter"
        return None
    for name, ann in hints.items():
        if name != "return" and _is_context(ann):
            return name
    return None


def _accepts_none(annotation: Any) -> bool:
    if annotation is None or annotation is type(None) or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _accepts_none(typing.get_args(annotation)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_accepts_none(a) for a in typing.get_args(annotation))
    return False


def _annotated_description(annotation: Any) -> str | None:
    if typing.get_origin(annotation) is typing.Annotated:
        for meta in typing.get_args(annotation)[1:]:
            if isinstance(meta, FieldInfo) and meta.description:
                return meta.description
    return None


def function_schema(fn: Callable[..., Any], *, description: str | None = None) -> FunctionSchema:
    """Build the schema and validator of a function tool. Raises `SchemaError` on anything a
    model could not call correctly (untyped parameters, *args, unresolvable hints)."""
    qual = getattr(fn, "__qualname__", repr(fn))
    try:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
    except (NameError, TypeError, ValueError) as e:
        raise SchemaError(f"cannot read the signature of {qual}: {e}") from e

    doc = docstring_parser.parse(inspect.getdoc(fn) or "")
    desc = description
    if desc is None:
        parts = [doc.short_description or "", doc.long_description or ""]
        desc = "\n\n".join(p.strip() for p in parts if p and p.strip())
    param_docs = {p.arg_name: (p.description or "").strip() for p in doc.params}
    params = _parameters(qual, sig, hints, param_docs)
    try:
        model = create_model(
            f"{getattr(fn, '__name__', 'tool')}_args",
            __config__=ConfigDict(
                extra="forbid", arbitrary_types_allowed=False, allow_inf_nan=False
            ),
            **params.fields,
        )
        schema = model.model_json_schema()
    except Exception as e:
        raise SchemaError(f"{qual}: cannot build a schema: {e}") from e
    clean = clean_schema(schema)
    clean.setdefault("properties", {})
    return FunctionSchema(
        description=desc.strip(),
        parameters=clean,
        validator=PydanticValidator(model, clean, frozenset(params.null_means_omitted)),
        context_param=params.context_param,
    )


@dataclass(slots=True)
class _Parameters:
    fields: dict[str, Any] = field(default_factory=dict)
    context_param: str | None = None
    null_means_omitted: set[str] = field(default_factory=set)


def _parameters(
    qual: str, sig: inspect.Signature, hints: dict[str, Any], param_docs: dict[str, str]
) -> _Parameters:
    """The signature's parameters as Pydantic fields (the context parameter set apart)."""
    out = _Parameters()
    for pname, p in sig.parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise SchemaError(f"{qual}: *args/**kwargs cannot be described to a model ({pname})")
        if pname in ("self", "cls") and p.annotation is inspect.Parameter.empty:
            continue
        ann = hints.get(pname, inspect.Parameter.empty)
        if ann is inspect.Parameter.empty:
            raise SchemaError(f"{qual}: parameter {pname!r} needs a type annotation")
        if _is_context(ann):
            out.context_param = pname
            continue
        default = p.default
        pdoc = param_docs.get(pname)
        # precedence: a Field() default's description, then Annotated[..., Field(...)]'s, then
        # the docstring; the caller's FieldInfo is never mutated (it may be shared).
        doc_desc = pdoc if pdoc and not _annotated_description(ann) else None
        if isinstance(default, FieldInfo):
            finfo = default
            if doc_desc and not finfo.description:
                finfo = FieldInfo.merge_field_infos(finfo, description=doc_desc)
        else:
            extra: dict[str, Any] = {"description": doc_desc} if doc_desc else {}
            finfo = Field(default=... if default is inspect.Parameter.empty else default, **extra)
        if not finfo.is_required() and not _accepts_none(ann):
            out.null_means_omitted.add(pname)
        out.fields[pname] = (ann, finfo)
    return out


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop Pydantic's auto titles (noise to a model) and keep everything else."""

    def walk(node: Any, in_props: bool = False) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for k, v in node.items():
                if k == "title" and not in_props and isinstance(v, str):
                    continue
                out[k] = walk(v, in_props=k in ("properties", "$defs"))
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result = walk(schema)
    assert isinstance(result, dict)
    result["type"] = "object"
    # The gate refuses unknown keys inside nested models too (`dropped_keys`), so the schema a
    # model is shown says so; a model declared with extra="allow" keeps its own
    # `additionalProperties: true`.
    return close_objects(result)


class PydanticValidator:
    """Validates decoded arguments with the tool's generated Pydantic model."""

    __slots__ = (
        "_choices",
        "_fields",
        "_nested",
        "_validate",
        "_validate_json",
        "model",
        "null_means_omitted",
        "param_names",
        "schema",
    )

    def __init__(
        self, model: type[BaseModel], schema: dict[str, Any], null_means_omitted: frozenset[str]
    ) -> None:
        self.model = model
        self.schema = schema
        self._fields = tuple(model.model_fields)
        self.param_names = frozenset(self._fields)
        self.null_means_omitted = null_means_omitted
        self._validate = model.__pydantic_validator__.validate_python
        self._validate_json = model.__pydantic_validator__.validate_json
        # an enum or Literal takes `true` for 1 (Python's equality): worth a check only then
        self._choices = any("enum" in node or "const" in node for _, node in walk(schema))
        self._nested = "$defs" in schema or any(
            _has_object(p) for p in schema.get("properties", {}).values()
        )

    def fast_json(self, raw: str) -> dict[str, Any] | None:
        """Decode and validate flat JSON arguments in one step, or return None to take the
        careful path (`decode_arguments` + `validate`).

        Taken only when the result is provably the same: one object, no arrays, no nulls, no
        NaN/Infinity, and as many keys as colons in the text (so no duplicate key was merged).
        """
        if raw.count("{") != 1 or "[" in raw or "null" in raw or "NaN" in raw or "Infinity" in raw:
            return None
        try:
            m = self._validate_json(raw, strict=True)
        except ValidationError:
            return None
        if len(m.__pydantic_fields_set__) != raw.count(":"):
            return None
        if (
            self._choices
            and ("true" in raw or "false" in raw)
            and any(
                isinstance(v, int | float | enum.Enum) and not isinstance(v, bool)
                for v in m.__dict__.values()
            )
        ):
            return None  # maybe a boolean an enum or Literal took for a number: check it
        # the model instance is thrown away, so its field dict can be handed over as it is
        fields: dict[str, Any] = m.__dict__
        return fields

    def validate(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            m = self._strict(args)
        except ValidationError as e:
            errors = e.errors(include_url=False)
            fixed = _integral_floats(args, errors)
            try:
                if fixed is None:
                    raise
                m = self._strict(fixed)
            except ValidationError as final:
                if final is not e:
                    errors = final.errors(include_url=False)
                issues = pydantic_issues(errors, self.param_names)
                if self._nested and len(issues) < MAX_ISSUES:
                    known = {i.path for i in issues}
                    unknown = find_unknown_keys(args, self.schema)
                    issues += [i for i in unknown if i.path not in known]
                raise ArgumentsInvalid(issues) from None
        # Models nested in a signature keep their own `extra` setting (usually "ignore"), and a
        # union member or a dict value is validated by such a model: a key it drops is found by
        # comparing what was sent with what validation kept, and reported. The same walk finds
        # a JSON boolean an enum or Literal took for the number 1 or 0.
        if self._nested or any(type(v) is bool for v in args.values()):
            extra = dropped_keys(args, m)
            if extra:
                raise ArgumentsInvalid(extra)
        return dict(m.__dict__)

    def _strict(self, args: dict[str, Any]) -> BaseModel:
        """Validate `args` as the JSON the model sent, in strict mode: a value of another JSON
        type is refused ("5" for an integer, 1 for a boolean), never converted, so the tool sees
        what an independent JSON Schema check of the exported schema accepts; JSON's own
        spellings (a date as a string, an enum by value, an array for a tuple) still apply."""
        try:
            text: bytes | None = to_json(args)
        except (PydanticSerializationError, TypeError, ValueError):
            text = None  # not plain JSON (a lone surrogate): validated as Python values
        m: BaseModel = (
            self._validate(args, strict=True)
            if text is None
            else self._validate_json(text, strict=True)
        )
        return m


def _integral_floats(args: dict[str, Any], errors: list[ErrorDetails]) -> dict[str, Any] | None:
    """`args` with each float that has no fractional part turned into an int where validation
    wanted an integer, or None when there is none. JSON Schema counts 1.0 as an integer (and a
    model may write it so); Pydantic's strict mode does not."""
    locs = [
        err.get("loc", ())
        for err in errors[:MAX_ISSUES]
        if err.get("type") == "int_type"
        and isinstance(err.get("input"), float)
        and math.isfinite(err["input"])
        and err["input"].is_integer()
    ]
    if not locs:
        return None
    fixed = copy.deepcopy(args)
    for loc in locs:
        parent: Any = None
        key: Any = None
        node: Any = fixed
        for part in loc:
            # steps that are not keys or indexes of the value are union member labels
            if _has_step(node, part):
                parent, key, node = node, part, node[part]
        if parent is not None and isinstance(node, float):
            parent[key] = int(node)
    return fixed


def _has_step(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _field_keys(value: Any) -> tuple[dict[str, str], bool] | None:
    """For a validated model or dataclass: sent key -> attribute name, and whether it keeps
    extra keys; None for any other value."""
    if isinstance(value, BaseModel) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    ):
        return _class_keys(type(value))
    return None


@functools.lru_cache(maxsize=1024)
def _class_keys(cls: Any) -> tuple[dict[str, str], bool]:
    if not issubclass(cls, BaseModel):
        return {f.name: f.name for f in dataclasses.fields(cls)}, False
    keys: dict[str, str] = {}
    for name, f in cls.model_fields.items():
        keys[name] = name
        for alias in (f.alias, f.validation_alias):
            if isinstance(alias, str):
                keys[alias] = name
    return keys, cls.model_config.get("extra") == "allow"


def dropped_keys(raw: Any, value: Any, path: tuple[str | int, ...] = ()) -> list[FieldIssue]:
    """Keys of `raw` (the arguments as sent) that validation dropped on the way to `value` (the
    validated result), at any depth: inside nested models, the chosen member of a union, the
    values of a `dict[str, Model]`, list items and TypedDicts; and booleans that became
    numbers (`true` is not the 1 of an `IntEnum` or a `Literal[1]` in JSON Schema)."""
    if isinstance(raw, bool):
        if isinstance(value, bool):
            return []
        return [
            FieldIssue(
                path,
                "value",
                "value is not one of the allowed values",
                expected="one of the allowed values",
                given=raw,
                has_given=True,
            )
        ]
    if isinstance(raw, dict):
        keys = _field_keys(value)
        if keys is not None:
            names, keeps_extra = keys
            out: list[FieldIssue] = []
            for k, v in raw.items():
                if len(out) >= MAX_ISSUES:
                    break
                name = names.get(k)
                if name is not None:
                    out += dropped_keys(v, getattr(value, name, None), (*path, k))
                elif not keeps_extra:
                    out.append(_unknown((*path, k), v, set(names)))
            return out
        if isinstance(value, dict):
            return _dropped_in_dict(raw, value, path)
    if isinstance(raw, list) and isinstance(value, list | tuple) and len(raw) == len(value):
        return [
            i
            for n, (r, v) in enumerate(zip(raw, value, strict=True))
            for i in dropped_keys(r, v, (*path, n))
        ]
    return []


def _dropped_in_dict(
    raw: dict[str, Any], value: dict[Any, Any], path: tuple[str | int, ...]
) -> list[FieldIssue]:
    if len(raw) == len(value):  # same keys, possibly coerced (dict[int, X]): pair them in order
        return [
            i
            for (k, r), v in zip(raw.items(), value.values(), strict=True)
            for i in dropped_keys(r, v, (*path, k))
        ]
    if not all(isinstance(k, str) for k in value):
        return []
    out: list[FieldIssue] = []
    for k, r in raw.items():
        if len(out) >= MAX_ISSUES:
            break
        if k in value:
            out += dropped_keys(r, value[k], (*path, k))
        else:  # a TypedDict that ignores extra keys
            out.append(_unknown((*path, k), r, set(value)))
    return out


def _unknown(path: tuple[str | int, ...], given: Any, siblings: typing.Iterable[str]) -> FieldIssue:
    key = str(path[-1])
    return FieldIssue(
        path,
        "unknown",
        f"unknown parameter {key!r}",
        given=given,
        has_given=True,
        suggestion=did_you_mean(key, siblings),
    )


def _has_object(s: Any) -> bool:
    if not isinstance(s, dict):
        return False
    if s.get("type") == "object" or "$ref" in s or "properties" in s:
        return True
    return any(_has_object(x) for k in ("anyOf", "oneOf", "allOf") for x in s.get(k, [])) or (
        _has_object(s.get("items"))
    )


def find_unknown_keys(
    value: Any,
    schema: dict[str, Any],
    root: dict[str, Any] | None = None,
    path: tuple[Any, ...] = (),
) -> list[FieldIssue]:
    """Keys in `value` that `schema` does not define, at any depth: an object that lists
    properties and does not say `additionalProperties` is closed. The values of a map
    (`additionalProperties` holding a schema) are followed, and inside a union a key is unknown
    only when no object member defines it. Used where a validator would ignore such keys."""
    refs = Refs(root if root is not None else schema)
    return _unknown_in(value, schema, refs, path, 0)


def _unknown_in(
    value: Any, schema: Any, refs: Refs, path: tuple[Any, ...], depth: int
) -> list[FieldIssue]:
    try:
        s = refs.deref(schema)
    except SchemaError:
        return []
    if not isinstance(s, dict) or depth > MAX_DEPTH:
        return []
    if isinstance(value, list):
        arrays = [b for b in _members(s, refs) if isinstance(b.get("items"), dict)]
        if len(arrays) != 1:
            return []
        items = arrays[0]["items"]
        return [
            i
            for n, v in enumerate(value)
            for i in _unknown_in(v, items, refs, (*path, n), depth + 1)
        ]
    if not isinstance(value, dict):
        return []
    objects = [b for b in _members(s, refs) if isinstance(b.get("properties"), dict)]
    if not objects:
        maps = [b for b in _members(s, refs) if isinstance(b.get("additionalProperties"), dict)]
        if len(maps) != 1:
            return []
        sub = maps[0]["additionalProperties"]
        return [
            i for k, v in value.items() for i in _unknown_in(v, sub, refs, (*path, k), depth + 1)
        ]
    out: list[FieldIssue] = []
    for k, v in value.items():
        if len(out) >= MAX_ISSUES:
            break
        known = [o for o in objects if k in o["properties"]]
        if len(known) == 1:
            out += _unknown_in(v, known[0]["properties"][k], refs, (*path, k), depth + 1)
        elif not known and all(o.get("additionalProperties", False) is False for o in objects):
            names = [n for o in objects for n in o["properties"]]
            out.append(_unknown((*path, k), v, names))
    return out


def _members(s: dict[str, Any], refs: Refs) -> list[dict[str, Any]]:
    """The alternatives a value may match: the union's members (references followed), or the
    schema itself."""
    branches = s.get("anyOf", s.get("oneOf"))
    if not isinstance(branches, list):
        return [s]
    out: list[dict[str, Any]] = []
    for b in branches:
        try:
            d = refs.deref(b)
        except SchemaError:
            continue
        if isinstance(d, dict):
            out.append(d)
    return out


_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean (true or false)",
    "string": "a string",
    "str": "a string",
    "list": "an array",
    "dict": "an object",
    "model": "an object",
    # JSON Schema's own type names (raw-schema tools)
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "array": "an array",
    "object": "an object",
}


def pydantic_issues(errors: list[ErrorDetails], names: frozenset[str]) -> list[FieldIssue]:
    """The first `MAX_ISSUES` of Pydantic's complaints (`ValidationError.errors()`) as field
    issues."""
    issues: list[FieldIssue] = []
    for err in errors[:MAX_ISSUES]:
        loc = tuple(err.get("loc", ()))
        typ = err.get("type", "")
        ctx = err.get("ctx") or {}
        inp = err.get("input")
        msg = err.get("msg", "invalid value")
        if typ == "extra_forbidden":
            pname = str(loc[-1]) if loc else "?"
            siblings = names if len(loc) == 1 else ()
            sugg = did_you_mean(pname, siblings) if siblings else None
            issues.append(
                FieldIssue(
                    loc,
                    "unknown",
                    f"unknown parameter {pname!r}",
                    given=inp,
                    has_given=True,
                    suggestion=sugg,
                )
            )
            continue
        if typ == "missing":
            issues.append(FieldIssue(loc, "missing", "required parameter is missing"))
            continue
        issues.append(_value_issue(loc, typ, ctx, inp, msg))
    return issues


def _value_issue(
    loc: tuple[str | int, ...], typ: str, ctx: dict[str, Any], inp: Any, msg: str
) -> FieldIssue:
    """A wrong value, in words that never quote it (the value is `given`, which the renderer
    masks and shortens): Pydantic's own message is kept only where it does not."""
    allowed: list[Any] | None = None
    expected: str | None = None
    kind = "value"
    if typ in ("literal_error", "enum"):
        allowed = _parse_expected_list(str(ctx.get("expected", "")))
        expected = "one of the allowed values"
        msg = "value is not one of the allowed values"
    elif typ == "union_tag_invalid":
        allowed = _parse_expected_list(str(ctx.get("expected_tags", "")))
        expected = "one of the allowed values"
        field = str(ctx.get("discriminator", "")).strip("'") or "the tag"
        msg = f"{field} is not one of the allowed values"
        loc = (*loc, field) if field != "the tag" else loc
        inp = inp.get(field) if isinstance(inp, dict) else inp
    elif typ.endswith("_type") or typ.endswith("_parsing"):
        kind = "type"
        base = typ.split("_")[0]
        expected = _TYPE_WORDS.get(base, base)
        if typ == "model_type" or typ == "dict_type":
            expected = "an object"
        msg = f"expected {expected}"
    elif len(msg) > 300:
        msg = msg[:300] + "…"
    return FieldIssue(loc, kind, msg, expected=expected, given=inp, has_given=True, allowed=allowed)


def _parse_expected_list(exp: str) -> list[Any]:
    # Pydantic renders allowed values as "'a', 'b' or 'c'"
    import ast

    parts = [p.strip() for p in exp.replace(" or ", ", ").split(",") if p.strip()]
    out: list[Any] = []
    for p in parts:
        try:
            out.append(ast.literal_eval(p))
        except (ValueError, SyntaxError):
            out.append(p)
    return out


# --- raw JSON Schema tools -----------------------------------------------------------------


class JsonSchemaValidator:
    """Validator for tools declared by a raw JSON Schema (draft 2020-12).

    The schema must describe an object. Unless it says otherwise, unknown properties are refused
    at every level (`close_objects`) so that nothing is silently dropped, and every `$ref` must
    resolve inside the schema: both are checked here, at registration, not on the first call.
    """

    __slots__ = ("_props", "_validator", "null_means_omitted", "param_names", "schema")

    def __init__(self, tool_name: str, schema: dict[str, Any]) -> None:
        import jsonschema

        s = _checked_raw_schema(tool_name, schema)
        try:
            jsonschema.Draft202012Validator.check_schema(s)
        except jsonschema.SchemaError as e:
            path = "/".join(str(p) for p in e.absolute_path) or "(root)"
            raise SchemaError(
                f"tool {tool_name!r}: invalid JSON Schema at {path}: {e.message}"
            ) from e
        try:
            check_refs(s)
        except SchemaError as e:
            raise SchemaError(f"tool {tool_name!r}: {e}") from None
        required = set(s.get("required", []))
        missing_req = sorted(required - set(s["properties"]))
        if missing_req and s.get("additionalProperties") is False:
            raise SchemaError(
                f"tool {tool_name!r}: 'required' names properties that are not defined: "
                + ", ".join(missing_req)
            )
        self.schema = s
        self._props = s["properties"]
        self.param_names = frozenset(self._props)
        refs = Refs(s)
        self.null_means_omitted = frozenset(
            k
            for k, v in self._props.items()
            if k not in required and isinstance(v, dict) and not allows_null(v, refs)
        )
        self._validator = jsonschema.Draft202012Validator(s)

    def fast_json(self, raw: str) -> dict[str, Any] | None:
        return None

    def validate(self, args: dict[str, Any]) -> dict[str, Any]:
        issues: list[FieldIssue] = []
        # errors are produced lazily: a call with 10,000 bad items costs MAX_ISSUES of them
        for err in itertools.islice(self._validator.iter_errors(args), MAX_ISSUES):
            issues += _jsonschema_issues(err)
        if issues:
            raise ArgumentsInvalid(issues[:MAX_ISSUES])
        return args


def _checked_raw_schema(tool_name: str, schema: Any) -> dict[str, Any]:
    """The schema as the validator uses it: an object at the root, closed at every level."""
    if not isinstance(schema, dict):
        raise SchemaError(f"tool {tool_name!r}: the schema must be a JSON object")
    if schema.get("type", "object") != "object":
        raise SchemaError(
            f"tool {tool_name!r}: the parameters schema must have type 'object' "
            f"(got {schema.get('type')!r}); wrap other values in a property"
        )
    s = dict(schema)
    s["type"] = "object"
    s.setdefault("properties", {})
    s.setdefault("additionalProperties", False)
    try:
        return close_objects(s)
    except SchemaError as e:
        raise SchemaError(f"tool {tool_name!r}: {e}") from None


def _jsonschema_issues(err: Any) -> list[FieldIssue]:
    """One `jsonschema.ValidationError` as field issues."""
    loc = tuple(err.absolute_path)
    v = err.validator
    if v == "additionalProperties":
        props = err.schema.get("properties", {}) if isinstance(err.schema, dict) else {}
        instance = err.instance if isinstance(err.instance, dict) else {}
        extra = [k for k in instance if k not in props][:MAX_ISSUES]
        return [_unknown((*loc, k), instance[k], props) for k in extra]
    if v == "required":
        return [
            FieldIssue((*loc, k), "missing", "required parameter is missing")
            for k in err.validator_value
            if isinstance(err.instance, dict) and k not in err.instance
        ]
    if v == "enum":
        return [
            FieldIssue(
                loc,
                "value",
                "value is not one of the allowed values",
                expected="one of the allowed values",
                given=err.instance,
                has_given=True,
                allowed=list(err.validator_value),
            )
        ]
    if v == "type":
        exp = err.validator_value
        word = (
            _TYPE_WORDS.get(str(exp), str(exp))
            if isinstance(exp, str)
            else " or ".join(map(str, exp))
        )
        return [
            FieldIssue(
                loc, "type", f"expected {word}", expected=word, given=err.instance, has_given=True
            )
        ]
    return [
        FieldIssue(
            loc, "value", _rule_message(v, err.validator_value), given=err.instance, has_given=True
        )
    ]


# What each JSON Schema keyword asks for, in words built from the schema alone: jsonschema's own
# messages quote the value, which may be a secret (masked elsewhere) or 30,000 characters long.
_RULES = {
    "pattern": "must match the pattern {}",
    "minLength": "must be at least {} characters long",
    "maxLength": "must be at most {} characters long",
    "minimum": "must be at least {}",
    "maximum": "must be at most {}",
    "exclusiveMinimum": "must be greater than {}",
    "exclusiveMaximum": "must be less than {}",
    "multipleOf": "must be a multiple of {}",
    "minItems": "must have at least {} items",
    "maxItems": "must have at most {} items",
    "uniqueItems": "items must be unique",
    "minProperties": "must have at least {} entries",
    "maxProperties": "must have at most {} entries",
    "const": "must be {}",
    "format": "must be a valid {}",
    "anyOf": "does not match any of the allowed shapes",
    "oneOf": "must match exactly one of the allowed shapes",
    "not": "is a value this parameter does not accept",
}


def _rule_message(keyword: Any, value: Any) -> str:
    template = _RULES.get(str(keyword))
    if template is None:
        return f"does not satisfy the schema's '{keyword}' rule"
    shown = value if isinstance(value, str) and keyword in ("pattern", "format") else None
    text = shown if shown is not None else json.dumps(value, ensure_ascii=False, default=str)
    return template.format(text if len(text) <= 200 else text[:200] + "…")
