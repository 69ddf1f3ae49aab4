"""`@tool`, `Tool.from_schema` and registration-time refusal of bad definitions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callgate import (
    ExecutionOptions,
    Gate,
    RunContext,
    SchemaError,
    Tool,
    ToolAnnotations,
    tool,
)
from callgate.testing import call


async def run(t: Tool, args: dict[str, Any] | str, ctx: RunContext | None = None) -> Any:
    return await Gate([t]).execute(call(t.name, args), ctx or RunContext())


# --- decoration -----------------------------------------------------------------------------


def test_bare_decorator_on_sync_function() -> None:
    @tool
    def add(a: int, b: int = 2) -> int:
        """Add two numbers."""
        return a + b

    assert isinstance(add, Tool)
    assert add.name == "add"
    assert add.description == "Add two numbers."
    assert add.is_async is False
    assert add.spec.parameters["required"] == ["a"]
    assert add.spec.parameters["properties"]["b"] == {"default": 2, "type": "integer"}


def test_decorator_on_async_function_and_options() -> None:
    @tool(name="fetch-page", description="Fetch a page.", read_only=True, timeout_s=3.5)
    async def fetch(url: str) -> str:
        return url

    assert fetch.is_async is True
    assert fetch.name == "fetch-page"
    assert fetch.description == "Fetch a page."
    assert fetch.options.timeout_s == 3.5
    assert fetch.annotations.read_only is True


async def test_sync_and_async_tools_run_through_the_gate() -> None:
    @tool
    def double(x: int) -> int:
        return 2 * x

    @tool
    async def triple(x: int) -> int:
        await asyncio.sleep(0)
        return 3 * x

    assert (await run(double, {"x": 4})).data == 8
    assert (await run(triple, {"x": 4})).data == 12


def test_annotations_are_plain_data() -> None:
    @tool(
        read_only=False,
        destructive=True,
        idempotent=True,
        open_world=True,
        sensitive=("card",),
        examples=[{"card": "4111", "amount": 3}],
        tier="admin",
    )
    def pay(card: str, amount: int) -> str:
        return "paid"

    ann = pay.annotations
    assert ann == ToolAnnotations(
        destructive=True,
        idempotent=True,
        open_world=True,
        sensitive=frozenset({"card"}),
        examples=({"card": "4111", "amount": 3},),
        tier="admin",
    )
    assert ann.retry_safe is True
    # the spec the model sees carries the same annotations object
    assert pay.spec.annotations is ann
    assert ToolAnnotations(read_only=True).retry_safe is True
    assert ToolAnnotations(retry_allowed=True).retry_safe is True
    assert ToolAnnotations(destructive=True).retry_safe is False


def test_execution_options_from_decorator() -> None:
    @tool(max_retries=5, inline=True, max_corrections=7, resource="db")
    def q(x: int) -> int:
        return x

    assert q.options == ExecutionOptions(
        timeout_s=30.0, max_retries=5, inline=True, max_corrections=7, resource="db"
    )


# --- RunContext injection -------------------------------------------------------------------


async def test_run_context_is_injected_and_not_in_schema() -> None:
    seen: list[RunContext] = []

    @tool
    def whoami(ctx: RunContext, greeting: str = "hi") -> str:
        seen.append(ctx)
        return f"{greeting} {ctx.user_id}"

    assert whoami.context_param == "ctx"
    assert set(whoami.spec.parameters["properties"]) == {"greeting"}
    assert "ctx" not in whoami.spec.parameters.get("required", [])
    c = RunContext(user_id="u1")
    res = await run(whoami, {}, c)
    assert res.content == "hi u1"
    assert seen == [c]
    # the model cannot smuggle its own context in
    bad = await run(whoami, {"ctx": {"user_id": "admin"}}, c)
    assert bad.error_kind == "correctable"
    assert len(seen) == 1


async def test_run_context_for_schema_tools() -> None:
    def fn(ctx: RunContext, q: str) -> str:
        return f"{ctx.tenant}:{q}"

    t = Tool.from_schema(
        "lookup",
        "Look up.",
        {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        fn,
    )
    assert t.context_param == "ctx"
    res = await run(t, {"q": "x"}, RunContext(tenant="acme"))
    assert res.content == "acme:x"


# --- Tool.from_schema -----------------------------------------------------------------------


async def test_from_schema_validates_and_refuses_unknown_properties() -> None:
    got: list[dict[str, Any]] = []

    def fn(**kw: Any) -> str:
        got.append(kw)
        return "ok"

    t = Tool.from_schema(
        "search",
        "  Search documents.  ",
        {
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1},
                "limit": {"type": "integer", "minimum": 1},
                "sort": {"enum": ["asc", "desc"]},
            },
            "required": ["query"],
        },
        fn,
    )
    assert t.description == "Search documents."
    assert t.spec.parameters["additionalProperties"] is False
    assert (await run(t, {"query": "a", "limit": 2})).content == "ok"
    assert got == [{"query": "a", "limit": 2}]

    res = await run(t, {"query": "a", "limti": 2})
    assert res.error_kind == "correctable"
    assert "limti" in res.content and "did you mean 'limit'" in res.content

    res = await run(t, {"query": "a", "sort": "up"})
    assert '"asc", "desc"' in res.content

    res = await run(t, {"limit": "x"})
    assert "query: required, but missing" in res.content
    assert "limit: expected an integer" in res.content
    assert len(got) == 1


def test_from_schema_keeps_explicit_additional_properties() -> None:
    t = Tool.from_schema(
        "free",
        "Free form.",
        {"type": "object", "properties": {}, "additionalProperties": True},
        lambda **kw: kw,
    )
    assert t.validator.validate({"anything": 1}) == {"anything": 1}


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "array", "items": {"type": "string"}}, "must have type 'object'"),
        ({"type": "object", "properties": {"a": {"type": "nope"}}}, "invalid JSON Schema"),
        ({"type": "object", "properties": {"a": {"minimum": "x"}}}, "invalid JSON Schema"),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]},
            "'required' names properties that are not defined: b",
        ),
    ],
)
def test_from_schema_refuses_bad_schemas(schema: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SchemaError, match="'bad'") as ei:
        Tool.from_schema("bad", "d", schema, lambda **kw: None)
    assert fragment in str(ei.value)


def test_from_schema_refuses_non_dict() -> None:
    with pytest.raises(SchemaError, match="must be a JSON object"):
        Tool.from_schema("bad", "d", ["not", "a", "schema"], lambda **kw: None)  # type: ignore[arg-type]


# --- bad definitions fail at registration, never at call time -------------------------------


def test_untyped_parameter_is_refused() -> None:
    def f(a, b: int) -> int:  # type: ignore[no-untyped-def]
        return b

    with pytest.raises(SchemaError, match="parameter 'a' needs a type annotation"):
        tool(f)


@pytest.mark.parametrize("kind", ["args", "kwargs"])
def test_var_args_are_refused(kind: str) -> None:
    def f1(*args: int) -> None: ...

    def f2(**kwargs: int) -> None: ...

    with pytest.raises(SchemaError, match=r"\*args/\*\*kwargs"):
        tool(f1 if kind == "args" else f2)


def test_unresolvable_hint_is_refused() -> None:
    def f(a: NotAType) -> None:  # type: ignore[name-defined]  # noqa: F821
        ...

    with pytest.raises(SchemaError, match="cannot read the signature"):
        tool(f)


class Opaque:
    pass


def test_type_pydantic_cannot_describe_is_refused() -> None:
    def f(a: Opaque) -> None: ...

    with pytest.raises(SchemaError, match="cannot build a schema"):
        tool(f)


@pytest.mark.parametrize("name", ["", "1abc", "has space", "x" * 65, "semi;colon", "ünïcode"])
def test_bad_tool_names_are_refused(name: str) -> None:
    def f(a: int) -> None: ...

    with pytest.raises(SchemaError, match="is not valid"):
        tool(name=name)(f)
    with pytest.raises(SchemaError, match="is not valid"):
        Tool.from_schema(name, "d", {"type": "object"}, f)


@pytest.mark.parametrize("name", ["a", "_x", "get_weather", "ns.tool-v2", "A" * 64])
def test_good_tool_names_are_accepted(name: str) -> None:
    def f(a: int) -> None: ...

    assert tool(name=name)(f).name == name


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sensitive": ("pasword",)},
        {"sinks": {"cmd": "shell"}},
        {"provenance_sinks": ("to",)},
    ],
)
def test_annotations_naming_unknown_params_are_refused(kwargs: dict[str, Any]) -> None:
    def f(password: str, command: str) -> None: ...

    with pytest.raises(SchemaError, match="annotations name parameters it does not have"):
        tool(**kwargs)(f)


def test_annotations_naming_unknown_params_refused_for_schema_tools() -> None:
    with pytest.raises(SchemaError, match="does not have: secret"):
        Tool.from_schema(
            "x",
            "d",
            {"type": "object", "properties": {"a": {"type": "string"}}},
            lambda **kw: None,
            annotations=ToolAnnotations(sensitive=frozenset({"secret"})),
        )


def test_renamed_shares_callable_and_checks_name() -> None:
    @tool
    def f(a: int) -> int:
        return a

    g = f.renamed("ns_f")
    assert g.name == "ns_f" and g.fn is f.fn and f.name == "f"
    with pytest.raises(SchemaError):
        f.renamed("bad name")


def test_required_ids_are_derived_from_schema() -> None:
    @tool
    def f(
        user_id: str, id: str, orderId: str, note: str, opt_id: str = "", n_id: int = 0
    ) -> None: ...

    assert set(f.required_ids) == {"user_id", "id", "orderId"}
