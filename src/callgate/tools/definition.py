"""Tools: what runs (`Tool`) and what the model sees (`ToolSpec`).

A tool's author writes a typed Python function and decorates it with `@tool`. The signature and
docstring become the JSON Schema and the validator in one place (`callgate.tools.schema`), so the
two can never disagree. Annotations (read-only, destructive, idempotent, sensitive parameters,
sinks, examples) are plain data that the rest of the gate reads: they decide retries, approval
defaults, redaction and sanitisation.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar, overload

from callgate.errors import SchemaError
from callgate.tools.provenance import (
    ProvenanceSink,
    ProvenanceSource,
    SinksArg,
    normalize_sinks,
)

#: built-in kinds are "sql", "shell", "path", "url", "html" and "email"; applications may
#: register more with `callgate.gate.middleware.sanitize.Sanitizer.register`.
SinkKind = str

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ToolAnnotations:
    """What the gate needs to know about a tool's behaviour.

    - `read_only`: no side effects. With no policy configured, read-only tools run freely.
    - `destructive`: side effects a person should confirm (the default policy asks for approval).
    - `idempotent`: calling twice with the same arguments equals calling once: safe to retry and to
      cache. `retry_allowed` opts a non-idempotent tool into transient retries anyway.
    - `open_world`: talks to the outside world (web, email); its output is untrusted by nature.
    - `sensitive`: parameter names whose values are masked in errors, logs and the audit log.
    - `sinks`: parameter name -> kind (sql, shell, path, url, html, email) checked for injection.
    - `provenance_sinks`: parameters whose values must come from the user, not from tool output
      (recipients, account numbers, ids of things to delete or share), each with the kind of
      object it refers to (`callgate.tools.provenance.ProvenanceSink`); a plain set of names
      is accepted and means kind "any".
    - `provenance_source`: how to read this tool's output as objects of a kind, and whether it
      is a trusted source (`callgate.tools.provenance.ProvenanceSource`).
    - `examples`: example argument objects, shown to the model in usage guidance.
    - `tier`: optional policy tier name (e.g. "read", "write", "admin").
    """

    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = False
    retry_allowed: bool = False
    sensitive: frozenset[str] = frozenset()
    sinks: Mapping[str, SinkKind] = field(default_factory=dict)
    provenance_sinks: Mapping[str, ProvenanceSink] = field(default_factory=dict)
    examples: tuple[Mapping[str, Any], ...] = ()
    tier: str | None = None
    provenance_source: ProvenanceSource | None = None

    def __post_init__(self) -> None:
        # names only (the untyped form) or name -> kind are normalised to name -> sink
        object.__setattr__(self, "provenance_sinks", normalize_sinks(self.provenance_sinks))

    @property
    def retry_safe(self) -> bool:
        return self.idempotent or self.read_only or self.retry_allowed


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """The provider-neutral definition a model is shown.

    `parameters` is a JSON Schema object (draft 2020-12 as Pydantic emits it, `$defs` allowed).
    Provider dialects are derived from it by `callgate.dialects.export`.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    annotations: ToolAnnotations = ToolAnnotations()
    version: str | None = None


@dataclass(slots=True)
class ExecutionOptions:
    """How the gate runs a tool.

    - `timeout_s`: per attempt; None disables it.
    - `max_retries`: transient retries (only when `annotations.retry_safe`).
    - `inline`: run a sync function on the event loop instead of a worker thread. Only for tools
      known to be cheap and non-blocking.
    - `max_corrections`: per-tool budget of correctable failures within one run.
    - `resource`: name of a concurrency pool shared with other tools (e.g. "db"); its size is set
      on the gate.
    """

    timeout_s: float | None = 30.0
    max_retries: int = 2
    backoff_base_s: float = 0.2
    backoff_max_s: float = 5.0
    inline: bool = False
    max_corrections: int = 3
    resource: str | None = None


F = TypeVar("F", bound=Callable[..., Any])


@dataclass(slots=True, eq=False)
class Tool:
    """A callable plus its spec, validator and execution options. Build it with `@tool` or
    `Tool.from_function` / `Tool.from_schema`; do not construct it by hand."""

    spec: ToolSpec
    fn: Callable[..., Any]
    is_async: bool
    validator: Any  # callgate.tools.schema.ArgumentValidator
    context_param: str | None = None
    options: ExecutionOptions = field(default_factory=ExecutionOptions)
    deprecated: str | None = None
    #: required string parameters that name an identifier (``id``, ``*_id``): empty strings are
    #: refused for them. Derived from the schema.
    required_ids: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        params = self.spec.parameters
        req = set(params.get("required", ()))
        props = params.get("properties", {})
        self.required_ids = tuple(
            k
            for k in props
            if k in req
            and (k == "id" or k.endswith("_id") or k.endswith("Id"))
            and isinstance(props[k], dict)
            and props[k].get("type") == "string"
        )

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def description(self) -> str:
        return self.spec.description

    @property
    def annotations(self) -> ToolAnnotations:
        return self.spec.annotations

    @property
    def version(self) -> str | None:
        return self.spec.version

    def renamed(self, name: str) -> Tool:
        """A copy under another name (used by namespaces/prefixes); shares the callable."""
        check_tool_name(name)
        return replace(self, spec=replace(self.spec, name=name))

    # construction -------------------------------------------------------------------------

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        options: ExecutionOptions | None = None,
        version: str | None = None,
        deprecated: str | None = None,
    ) -> Tool:
        from callgate.tools.schema import function_schema

        fs = function_schema(fn, description=description)
        tool_name = fn.__name__ if name is None else name
        check_tool_name(tool_name)
        ann = annotations or ToolAnnotations()
        _check_annotation_params(tool_name, ann, fs.parameters)
        spec = ToolSpec(tool_name, fs.description, fs.parameters, ann, version)
        return cls(
            spec=spec,
            fn=fn,
            is_async=inspect.iscoroutinefunction(fn),
            validator=fs.validator,
            context_param=fs.context_param,
            options=options or ExecutionOptions(),
            deprecated=deprecated,
        )

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str,
        parameters: dict[str, Any],
        fn: Callable[..., Any],
        *,
        annotations: ToolAnnotations | None = None,
        options: ExecutionOptions | None = None,
        version: str | None = None,
        deprecated: str | None = None,
    ) -> Tool:
        """A tool declared by a raw JSON Schema. `fn` receives the validated arguments as keyword
        arguments (and a `RunContext` if it has a parameter annotated with it)."""
        from callgate.tools.schema import JsonSchemaValidator, context_param_of

        check_tool_name(name)
        validator = JsonSchemaValidator(name, parameters)  # raises SchemaError on a bad schema
        ann = annotations or ToolAnnotations()
        _check_annotation_params(name, ann, validator.schema)
        spec = ToolSpec(name, description.strip(), validator.schema, ann, version)
        return cls(
            spec=spec,
            fn=fn,
            is_async=inspect.iscoroutinefunction(fn),
            validator=validator,
            context_param=context_param_of(fn),
            options=options or ExecutionOptions(),
            deprecated=deprecated,
        )


def check_tool_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise SchemaError(
            f"tool name {name!r} is not valid: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or '_' (providers reject other names)"
        )


def _check_annotation_params(name: str, ann: ToolAnnotations, schema: dict[str, Any]) -> None:
    props = set(schema.get("properties", {}))
    named = set(ann.sensitive) | set(ann.sinks) | set(ann.provenance_sinks)
    unknown = sorted(named - props)
    if unknown:
        raise SchemaError(
            f"tool {name!r}: annotations name parameters it does not have: {', '.join(unknown)}"
        )


@overload
def tool(fn: F, /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
    open_world: bool = False,
    retry_allowed: bool = False,
    sensitive: tuple[str, ...] | frozenset[str] = (),
    sinks: Mapping[str, SinkKind] | None = None,
    provenance_sinks: SinksArg = (),
    provenance_source: ProvenanceSource | None = None,
    examples: tuple[Mapping[str, Any], ...] | list[Mapping[str, Any]] = (),
    tier: str | None = None,
    timeout_s: float | None = 30.0,
    max_retries: int = 2,
    inline: bool = False,
    max_corrections: int = 3,
    resource: str | None = None,
    version: str | None = None,
    deprecated: str | None = None,
) -> Callable[[F], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None, /, **options: Any
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function (sync or async) into a `Tool`.

    Usable bare (`@tool`) or with options (`@tool(destructive=True, sensitive=("card",))`); the
    options are those of the overload above, and their defaults are the defaults of
    `ToolAnnotations` and `ExecutionOptions` (one source). The schema is built and checked here,
    at import time, so a bad definition fails at startup rather than when a model first calls it.
    """
    unknown = sorted(set(options) - _TOOL_OPTIONS)
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], _TOOL_OPTIONS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"tool() got an unexpected keyword argument {unknown[0]!r}{hint}")
    ann_kw = {k: v for k, v in options.items() if k in _ANNOTATION_FIELDS}
    for key, convert in _ANNOTATION_CONVERSIONS.items():
        if key in ann_kw:
            ann_kw[key] = convert(ann_kw[key] or ())
    ann = ToolAnnotations(**ann_kw)
    opts = ExecutionOptions(**{k: v for k, v in options.items() if k in _OPTION_FIELDS})

    def wrap(f: Callable[..., Any]) -> Tool:
        return Tool.from_function(
            f,
            name=options.get("name"),
            description=options.get("description"),
            annotations=ann,
            options=opts,
            version=options.get("version"),
            deprecated=options.get("deprecated"),
        )

    return wrap(fn) if fn is not None else wrap


_ANNOTATION_FIELDS = frozenset(f.name for f in fields(ToolAnnotations))
_OPTION_FIELDS = frozenset(f.name for f in fields(ExecutionOptions))
_TOOL_OPTIONS = (
    _ANNOTATION_FIELDS | _OPTION_FIELDS | {"name", "description", "version", "deprecated"}
)
# the overload accepts convenient shapes (tuples, lists, None); annotations hold frozen ones
_ANNOTATION_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "sensitive": frozenset,
    "sinks": dict,
    "examples": tuple,
    "provenance_sinks": normalize_sinks,
}
