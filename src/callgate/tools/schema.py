"""Signature -> (JSON Schema, validator), built once at registration.

A function's type hints and docstring are turned into a Pydantic model with `extra="forbid"`:
unknown parameters are reported, never dropped. The model's JSON Schema is cleaned (no
auto-generated titles) and is the single source every provider dialect is derived from. Tools
declared by a raw JSON Schema get a `JsonSchemaValidator` with the same error shape, and their
schema is checked against the metaschema at registration.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from callgate.context import RunContext
from callgate.errors import SchemaError


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
        out = ""
        for p in self.path:
            out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
        return out or "(arguments)"


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
    best = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
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
    if annotation is RunContext:
        return True
    origin = typing.get_origin(annotation)
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
    param_docs = {p.arg_name: (p.description or "").strip() for p in doc.params}
    desc = description
    if desc is None:
        parts = [doc.short_description or "", doc.long_description or ""]
        desc = "\n\n".join(p.strip() for p in parts if p and p.strip())
    fields: dict[str, Any] = {}
    context_param: str | None = None
    null_means_omitted: set[str] = set()
    for pname, p in sig.parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise SchemaError(f"{qual}: *args/**kwargs cannot be described to a model ({pname})")
        if pname in ("self", "cls") and p.annotation is inspect.Parameter.empty:
            continue
        ann = hints.get(pname, inspect.Parameter.empty)
        if ann is inspect.Parameter.empty:
            raise SchemaError(f"{qual}: parameter {pname!r} needs a type annotation")
        if _is_context(ann):
            context_param = pname
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
            null_means_omitted.add(pname)
        fields[pname] = (ann, finfo)
    try:
        model = create_model(
            f"{getattr(fn, '__name__', 'tool')}_args",
            __config__=ConfigDict(
                extra="forbid", arbitrary_types_allowed=False, allow_inf_nan=False
            ),
            **fields,
        )
        schema = model.model_json_schema()
    except Exception as e:
        raise SchemaError(f"{qual}: cannot build a schema: {e}") from e
    clean = clean_schema(schema)
    clean.setdefault("properties", {})
    return FunctionSchema(
        description=desc.strip(),
        parameters=clean,
        validator=PydanticValidator(model, clean, frozenset(null_means_omitted)),
        context_param=context_param,
    )


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
    return result


class PydanticValidator:
    """Validates decoded arguments with the tool's generated Pydantic model."""

    __slots__ = (
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
            m = self._validate_json(raw)
        except ValidationError:
            return None
        if len(m.__pydantic_fields_set__) != raw.count(":"):
            return None
        # the model instance is thrown away, so its field dict can be handed over as it is
        fields: dict[str, Any] = m.__dict__
        return fields

    def validate(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            m = self._validate(args)
        except ValidationError as e:
            issues = pydantic_issues(e, self.param_names)
            if self._nested:
                known = {i.path for i in issues}
                issues += [i for i in find_unknown_keys(args, self.schema) if i.path not in known]
            raise ArgumentsInvalid(issues) from None
        if self._nested:
            # Pydantic models nested in a signature keep their own `extra` setting (usually
            # "ignore"); unknown keys inside them must still be reported, never dropped.
            extra = find_unknown_keys(args, self.schema)
            if extra:
                raise ArgumentsInvalid(extra)
        return dict(m.__dict__)


def _has_object(s: Any) -> bool:
    if not isinstance(s, dict):
        return False
    if s.get("type") == "object" or "$ref" in s or "properties" in s:
        return True
    return any(_has_object(x) for k in ("anyOf", "oneOf", "allOf") for x in s.get(k, [])) or (
        _has_object(s.get("items"))
    )


def _resolve(s: Any, root: dict[str, Any]) -> Any:
    seen = 0
    while isinstance(s, dict) and "$ref" in s and seen < 32:
        ref = s["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return {}
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        s = node
        seen += 1
    return s


def find_unknown_keys(
    value: Any,
    schema: dict[str, Any],
    root: dict[str, Any] | None = None,
    path: tuple[Any, ...] = (),
) -> list[FieldIssue]:
    """Keys in `value` that `schema` does not define (where it defines properties and does not
    allow extras), at any depth. Used where a validator would silently ignore them."""
    root = root if root is not None else schema
    s = _resolve(schema, root)
    if not isinstance(s, dict):
        return []
    out: list[FieldIssue] = []
    if isinstance(value, dict):
        variants = [v for k in ("anyOf", "oneOf") for v in s.get(k, [])]
        if variants:
            objs = [
                _resolve(v, root)
                for v in variants
                if isinstance(_resolve(v, root), dict) and "properties" in _resolve(v, root)
            ]
            if len(objs) == 1:
                return find_unknown_keys(value, objs[0], root, path)
            return out
        props = s.get("properties")
        if isinstance(props, dict):
            addl = s.get("additionalProperties", False if path else s.get("additionalProperties"))
            for k, v in value.items():
                if k in props:
                    out += find_unknown_keys(v, props[k], root, (*path, k))
                elif addl is False or addl is None:
                    out.append(
                        FieldIssue(
                            (*path, k),
                            "unknown",
                            f"unknown parameter {k!r}",
                            given=v,
                            has_given=True,
                            suggestion=did_you_mean(k, props),
                        )
                    )
    elif isinstance(value, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(value):
                out += find_unknown_keys(v, items, root, (*path, i))
        elif "anyOf" in s:
            arrays = [
                _resolve(v, root) for v in s["anyOf"] if _resolve(v, root).get("type") == "array"
            ]
            if len(arrays) == 1:
                return find_unknown_keys(value, arrays[0], root, path)
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


def pydantic_issues(e: ValidationError, names: frozenset[str]) -> list[FieldIssue]:
    issues: list[FieldIssue] = []
    for err in e.errors(include_url=False):
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
        allowed: list[Any] | None = None
        expected: str | None = None
        kind = "value"
        if typ in ("literal_error", "enum"):
            exp = str(ctx.get("expected", ""))
            allowed = _parse_expected_list(exp)
            expected = "one of the allowed values"
            msg = "value is not one of the allowed values"
        elif typ.endswith("_type") or typ.endswith("_parsing"):
            kind = "type"
            base = typ.split("_")[0]
            expected = _TYPE_WORDS.get(base, base)
            if typ == "model_type" or typ == "dict_type":
                expected = "an object"
            msg = f"expected {expected}"
        issues.append(
            FieldIssue(
                loc,
                kind,
                msg,
                expected=expected,
                given=inp,
                has_given=True,
                allowed=allowed,
            )
        )
    return issues


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

    The schema must describe an object; unless it says otherwise, unknown properties are refused
    (`additionalProperties: false` is added) so that nothing is silently dropped.
    """

    __slots__ = ("_props", "_validator", "null_means_omitted", "param_names", "schema")

    def __init__(self, tool_name: str, schema: dict[str, Any]) -> None:
        try:
            import jsonschema
        except ImportError as e:  # pragma: no cover - declared dependency
            raise SchemaError("raw JSON Schema tools need the 'jsonschema' package") from e
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
            jsonschema.Draft202012Validator.check_schema(s)
        except jsonschema.SchemaError as e:
            path = "/".join(str(p) for p in e.absolute_path) or "(root)"
            raise SchemaError(
                f"tool {tool_name!r}: invalid JSON Schema at {path}: {e.message}"
            ) from e
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
        self.null_means_omitted = frozenset(
            k
            for k, v in self._props.items()
            if k not in required and isinstance(v, dict) and not _schema_allows_null(v)
        )
        self._validator = jsonschema.Draft202012Validator(s)

    def fast_json(self, raw: str) -> dict[str, Any] | None:
        return None

    def validate(self, args: dict[str, Any]) -> dict[str, Any]:
        errors = list(self._validator.iter_errors(args))
        if not errors:
            return args
        issues: list[FieldIssue] = []
        for err in errors:
            loc = tuple(err.absolute_path)
            v = err.validator
            if v == "additionalProperties":
                extra = [
                    k for k in (err.instance or {}) if k not in err.schema.get("properties", {})
                ]
                for k in extra:
                    sugg = did_you_mean(k, self.param_names) if not loc else None
                    issues.append(
                        FieldIssue(
                            (*loc, k),
                            "unknown",
                            f"unknown parameter {k!r}",
                            given=args.get(k) if not loc else None,
                            has_given=not loc,
                            suggestion=sugg,
                        )
                    )
            elif v == "required":
                for k in err.validator_value:
                    if isinstance(err.instance, dict) and k not in err.instance:
                        issues.append(
                            FieldIssue((*loc, k), "missing", "required parameter is missing")
                        )
            elif v == "enum":
                issues.append(
                    FieldIssue(
                        loc,
                        "value",
                        "value is not one of the allowed values",
                        expected="one of the allowed values",
                        given=err.instance,
                        has_given=True,
                        allowed=list(err.validator_value),
                    )
                )
            elif v == "type":
                exp = err.validator_value
                word = (
                    _TYPE_WORDS.get(str(exp), str(exp))
                    if isinstance(exp, str)
                    else " or ".join(map(str, exp))
                )
                issues.append(
                    FieldIssue(
                        loc,
                        "type",
                        f"expected {word}",
                        expected=word,
                        given=err.instance,
                        has_given=True,
                    )
                )
            else:
                issues.append(
                    FieldIssue(loc, "value", err.message, given=err.instance, has_given=True)
                )
        raise ArgumentsInvalid(issues)


def _schema_allows_null(s: dict[str, Any]) -> bool:
    t = s.get("type")
    if t == "null" or (isinstance(t, list) and "null" in t):
        return True
    for key in ("anyOf", "oneOf"):
        if any(isinstance(x, dict) and _schema_allows_null(x) for x in s.get(key, [])):
            return True
    return "type" not in s and not any(k in s for k in ("anyOf", "oneOf", "$ref", "enum", "const"))
