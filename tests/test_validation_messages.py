"""What the model reads when its call is wrong: every failure is a result it can act on."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel

from callgate import Gate, RunContext, Tool, ToolCall, Toolset, tool
from callgate.gate.decode import DecodeLimits
from callgate.messages import ToolResult
from callgate.testing import call

RUNS: list[dict[str, Any]] = []


class Filters(BaseModel):
    status: Literal["open", "closed"] = "open"
    owner: str | None = None


@tool
def search_tickets(query: str, limit: int = 10, filters: Filters | None = None) -> str:
    """Search tickets."""
    RUNS.append({"query": query, "limit": limit, "filters": filters})
    return "found"


@tool(sensitive=("card_number",))
def charge(card_number: str, amount: int, currency: Literal["EUR", "USD"] = "EUR") -> str:
    """Charge a card."""
    RUNS.append({"card_number": card_number})
    return "charged"


@tool
def login(user: str, password: int, settings: dict[str, int] | None = None) -> str:
    RUNS.append({"user": user})
    return "ok"


@tool
def delete_ticket(ticket_id: str, reason: str = "") -> str:
    RUNS.append({"ticket_id": ticket_id})
    return "deleted"


def gate(**kw: Any) -> Gate:
    RUNS.clear()
    return Gate([search_tickets, charge, login, delete_ticket], **kw)


async def ex(g: Gate, name: str, args: Any, ctx: RunContext | None = None) -> ToolResult:
    c = call(name, args if isinstance(args, str) else json.dumps(args), id="c-1")
    r = await g.execute(c, ctx or RunContext())
    assert r.call_id == "c-1"
    return r


async def test_field_path_expected_and_given() -> None:
    g = gate()
    r = await ex(g, "search_tickets", {"query": "x", "limit": "lots"})
    assert r.error_kind == "correctable"
    assert "search_tickets was not run because 1 argument is invalid" in r.content
    assert '- limit: expected an integer; got "lots" (string).' in r.content
    assert RUNS == []


async def test_nested_path_and_allowed_values_with_suggestion() -> None:
    g = gate()
    r = await ex(g, "search_tickets", {"query": "x", "filters": {"status": "opne"}})
    assert "filters.status" in r.content
    assert 'Allowed values: "open", "closed"' in r.content
    assert "did you mean 'open'?" in r.content


async def test_list_index_in_path() -> None:
    @tool
    def tag(tags: list[int]) -> None: ...

    r = await Gate([tag]).execute(call("tag", {"tags": [1, 2, "x"]}), RunContext())
    assert "- tags[2]: expected an integer" in r.content


async def test_missing_and_unknown_with_did_you_mean() -> None:
    g = gate()
    r = await ex(g, "search_tickets", {"qeury": "x"})
    assert "- query: required, but missing." in r.content
    assert "- qeury: unknown parameter; it was not used (did you mean 'query'?)" in r.content
    assert "Valid parameters: filters, limit, query" in r.content
    assert "because 2 arguments are invalid" in r.content


async def test_unknown_nested_parameter_is_reported() -> None:
    g = gate()
    r = await ex(g, "search_tickets", {"query": "x", "filters": {"status": "open", "ownr": "a"}})
    assert r.error_kind == "correctable"
    assert "filters.ownr: unknown parameter" in r.content
    assert RUNS == []


async def test_given_values_are_truncated() -> None:
    g = gate()
    r = await ex(g, "search_tickets", {"query": "x", "limit": "y" * 5000})
    line = next(x for x in r.content.splitlines() if x.startswith("- limit"))
    assert len(line) < 200
    assert "…" in line
    assert "y" * 100 not in r.content


async def test_sensitive_annotation_values_are_masked() -> None:
    g = gate()
    secret = "4111111111111111"
    r = await ex(g, "charge", {"card_number": 4111111111111111, "amount": 5})
    assert "card_number: expected a string; got ***" in r.content
    assert secret not in r.content
    assert secret not in json.dumps([i.message for i in r.issues])


async def test_secret_looking_key_names_are_masked() -> None:
    g = gate()
    r = await ex(g, "login", {"user": "a", "password": "hunter2-secret"})
    assert "password: expected an integer; got ***" in r.content
    assert "hunter2" not in r.content
    r = await ex(g, "login", {"user": "a", "password": 1, "settings": {"api_key": "sk-XYZ123"}})
    assert "settings.api_key" in r.content
    assert "sk-XYZ123" not in r.content
    # an unknown parameter whose name looks secret: its value is never echoed either
    r = await ex(g, "search_tickets", {"query": "x", "auth_token": "tok-987654"})
    assert "auth_token" in r.content and "tok-987654" not in r.content


async def test_unknown_tool_did_you_mean_and_list() -> None:
    g = gate()
    r = await ex(g, "search_ticket", {})
    assert r.error_kind == "correctable"
    assert "there is no tool named 'search_ticket'; nothing was run" in r.content
    assert "Did you mean 'search_tickets'?" in r.content
    assert "Available tools: charge, delete_ticket, login, search_tickets." in r.content


async def test_unknown_tool_with_huge_name_is_truncated() -> None:
    r = await ex(gate(), "x" * 10_000, {})
    assert len(r.content) < 500


async def test_disabled_tool_is_explained() -> None:
    g = gate()
    g.toolset.disable("charge", note="Payments are under maintenance.")
    r = await ex(g, "charge", {"card_number": "1", "amount": 1})
    assert r.error_kind == "denied"
    assert "charge is disabled right now; nothing was run" in r.content
    assert "Payments are under maintenance." in r.content
    assert RUNS == []
    # and it is no longer offered in "Available tools" of an unknown-tool error
    r = await ex(g, "nope", {})
    assert "charge" not in r.content


async def test_format_errors_are_correctable_and_explained() -> None:
    g = gate()
    for raw, frag in [
        ('{"query": "a", "query": "b"}', "'query' appears more than once"),
        ('{"query": NaN}', "NaN or Infinity"),
        ("[1]", "must be a JSON object"),
        ('{"query": ', "not valid JSON"),
    ]:
        r = await ex(g, "search_tickets", raw, RunContext())
        assert r.error_kind == "correctable", raw
        assert frag in r.content, raw
        assert "Call search_tickets again with one JSON object" in r.content
    assert RUNS == []


async def test_size_and_depth_limits_through_the_gate() -> None:
    g = gate(limits=DecodeLimits(max_bytes=200, max_depth=4))
    r = await ex(g, "search_tickets", {"query": "q" * 500})
    assert "the limit is 200" in r.content
    r = await ex(g, "search_tickets", {"query": "q", "filters": {"owner": [[[[["x"]]]]]}})
    assert "nested more than 4 levels" in r.content
    assert RUNS == []


async def test_empty_string_for_required_id_is_refused() -> None:
    g = gate()
    for v in ["", "   "]:
        r = await ex(g, "delete_ticket", {"ticket_id": v})
        assert r.error_kind == "correctable"
        assert "ticket_id: must be a non-empty identifier" in r.content
    assert RUNS == []
    r = await ex(g, "delete_ticket", {"ticket_id": "T-1", "reason": ""})
    assert r.error_kind is None, r.content


async def test_strict_mode_null_for_optional_means_default() -> None:
    g = gate()
    r = await ex(g, "search_tickets", {"query": "x", "limit": None, "filters": None})
    assert r.error_kind is None, r.content
    assert RUNS == [{"query": "x", "limit": 10, "filters": None}]
    # a required parameter sent as null is still an error
    r = await ex(g, "search_tickets", {"query": None})
    assert r.error_kind == "correctable"
    assert "query" in r.content


async def test_strict_mode_nulls_inside_nested_objects() -> None:
    g = gate()
    r = await ex(g, "search_tickets", {"query": "x", "filters": {"status": None, "owner": None}})
    assert r.error_kind is None, r.content
    assert RUNS[0]["filters"] == Filters(status="open", owner=None)


async def test_strict_mode_nulls_for_dict_arguments() -> None:
    g = gate()
    r = await g.execute(
        ToolCall("c", "search_tickets", {"query": "x", "limit": None}),
        RunContext(),
    )
    assert r.error_kind is None, r.content
    assert RUNS[0]["limit"] == 10


async def test_per_tool_correction_budget() -> None:
    g = gate()
    ctx = RunContext()
    rs = [await ex(g, "search_tickets", {"limit": 1}, ctx) for _ in range(3)]
    assert "(2 corrections left for this tool.)" in rs[0].content
    assert "(1 correction left for this tool.)" in rs[1].content
    assert "No corrections are left for search_tickets: do not call it again" in rs[2].content
    assert "call search_tickets again" not in rs[2].content  # no advice that contradicts it
    assert [r.correction_budget_exhausted for r in rs] == [False, False, True]
    # another tool still has its own budget
    r = await ex(g, "login", {"user": 1, "password": 1}, ctx)
    assert "(2 corrections left" in r.content
    # a fresh run starts over
    r = await ex(g, "search_tickets", {"limit": 1}, RunContext())
    assert "(2 corrections left" in r.content


async def test_per_tool_budget_from_options() -> None:
    @tool(max_corrections=1)
    def strict_one(a: int) -> None: ...

    r = await Gate([strict_one]).execute(call("strict_one", {"a": "x"}), RunContext())
    assert r.correction_budget_exhausted is True


async def test_per_run_correction_budget_across_tools() -> None:
    g = gate(max_corrections_per_run=2)
    ctx = RunContext()
    r1 = await ex(g, "search_tickets", {}, ctx)
    r2 = await ex(g, "login", {}, ctx)
    assert "(1 correction left" in r1.content
    assert r2.correction_budget_exhausted is True
    assert ctx.corrections == {"search_tickets": 1, "login": 1, "*": 2}


async def test_tool_retry_counts_as_correction() -> None:
    from callgate import ToolRetry

    @tool(max_corrections=2)
    def book(day: str) -> str:
        raise ToolRetry(f"{day} is fully booked; pick another day")

    g = Gate([book])
    ctx = RunContext()
    r = await g.execute(call("book", {"day": "mon"}), ctx)
    assert r.error_kind == "correctable"
    assert r.content.startswith("Error from book: mon is fully booked; pick another day")
    assert "(1 correction left for this tool.)" in r.content
    r = await g.execute(call("book", {"day": "tue"}), ctx)
    assert r.correction_budget_exhausted is True


async def test_issue_metadata_for_the_application() -> None:
    r = await ex(gate(), "search_tickets", {"limit": "x"})
    kinds = {i.path: i.kind for i in r.issues}
    assert kinds == {("query",): "missing", ("limit",): "type"}


async def test_pinned_and_hidden_versions_render_as_unknown() -> None:
    ts = Toolset([search_tickets])
    ts.add_filter(lambda t, ctx: ctx.user_id == "alice")
    g = Gate(ts)
    r = await ex(g, "search_tickets", {"query": "x"}, RunContext(user_id="bob"))
    assert "there is no tool named 'search_tickets'" in r.content
    assert "No tools are available" in r.content


async def test_schema_tool_messages_have_the_same_shape() -> None:
    t = Tool.from_schema(
        "mk",
        "Make.",
        {
            "type": "object",
            "properties": {
                "kind": {"enum": ["a", "b"]},
                "n": {"type": "integer"},
                "inner": {
                    "type": "object",
                    "properties": {"x": {"type": "string"}},
                    "additionalProperties": False,
                },
            },
            "required": ["kind"],
        },
        lambda **kw: "ok",
    )
    r = await Gate([t]).execute(
        call("mk", {"kind": "c", "n": "1", "nn": 2, "inner": {"y": 1}}), RunContext()
    )
    c = r.content
    assert '- kind: value is not one of the allowed values; got "c" (string)' in c
    assert "- n: expected an integer" in c
    assert "- nn: unknown parameter; it was not used (did you mean 'n'?)" in c
    assert "- inner.y: unknown parameter" in c


async def test_secret_keys_inside_a_wrongly_typed_object_are_masked() -> None:
    g = gate()
    r = await ex(g, "search_tickets", {"query": {"api_key": "sk-LEAK1", "q": "visible"}})
    assert "sk-LEAK1" not in r.content
    assert '"api_key": "***"' in r.content and "visible" in r.content
    r = await ex(g, "search_tickets", {"query": "x", "limit": [{"password": "pw-LEAK2"}]})
    assert "pw-LEAK2" not in r.content


async def test_overflowing_numbers_never_reach_a_float_parameter() -> None:
    got: list[float] = []

    @tool
    def scale(x: float, label: str = "") -> None:
        got.append(x)

    g = Gate([scale])
    for raw in ['{"x": 1e999}', '{"x": -1e400, "label": null}', '{"x": 1e999, "label": "a"}']:
        r = await g.execute(call("scale", raw), RunContext())
        assert r.error_kind == "correctable" and "Infinity" in r.content, raw
    assert got == []


async def test_byte_limit_holds_on_every_path() -> None:
    got: list[str] = []

    @tool
    def note(text: str) -> None:
        got.append(text)

    g = Gate([note], limits=DecodeLimits(max_bytes=100))
    raw = json.dumps({"text": "é" * 60}, ensure_ascii=False)
    assert len(raw) < 100 < len(raw.encode())
    r = await g.execute(call("note", raw), RunContext())
    assert "the limit is 100" in r.content
    assert got == []


async def test_strict_mode_nulls_only_nested() -> None:
    got: list[Filters] = []

    @tool
    def only_nested(filters: Filters) -> None:
        got.append(filters)

    assert only_nested.validator.null_means_omitted == frozenset()
    r = await Gate([only_nested]).execute(
        call("only_nested", {"filters": {"status": None, "owner": None}}), RunContext()
    )
    assert r.error_kind is None, r.content
    assert got == [Filters(status="open", owner=None)]
