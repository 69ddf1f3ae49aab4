"""Routing for large tool sets: BM25 ranking, the agent offering only the routed tools, the
gate treating a routed-out tool as unknown at call time, and the choice being recorded."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from callgate import Agent, AuditLog, Gate, RunContext
from callgate.agent.router import BM25Index, Router, query_of, tokens
from callgate.gate.protocols import CallRecord, PolicyDecision, TurnRecord
from callgate.messages import Message
from callgate.testing import ScriptedModel, call
from callgate.tools.definition import Tool, ToolSpec

RAN: list[str] = []


def _mk(name: str, desc: str, param: str = "query", pdesc: str = "") -> Tool:
    def fn(**kw: object) -> str:
        RAN.append(name)
        return f"{name} ok"

    schema = {
        "type": "object",
        "properties": {param: {"type": "string", "description": pdesc}},
        "required": [param],
    }
    return Tool.from_schema(name, desc, schema, fn)


TOOLS = [
    _mk("get_weather", "Current weather and temperature for a city.", "city", "City name"),
    _mk("send_invoice", "Email an invoice to a customer.", "invoice_id", "Invoice to send"),
    _mk("book_flight", "Book a flight between two airports.", "route", "e.g. CDG-JFK"),
    _mk("convert_currency", "Convert an amount between currencies.", "amount", "Money amount"),
    _mk("list_tenants", "List the tenants of a building.", "building_id", "Building"),
    _mk("open_ticket", "Open a maintenance ticket for a broken appliance.", "unit", "Unit"),
    _mk("stock_price", "Latest stock price of a ticker symbol.", "ticker", "Ticker symbol"),
    _mk("translate_text", "Translate text into another language.", "text", "Text"),
    _mk("delete_tenant", "Remove a tenant record.", "tenant_id", "Tenant"),
    _mk("weather_alerts", "Severe weather alerts for a region.", "region", "Region"),
]


class Seen:
    def __init__(self) -> None:
        self.calls: list[CallRecord] = []
        self.turns: list[TurnRecord] = []

    def on_call(self, record: CallRecord) -> None:
        self.calls.append(record)

    def on_turn(self, record: TurnRecord) -> None:
        self.turns.append(record)


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


def test_tokens_split_names_and_fold_plurals() -> None:
    # "get" is a stop word: nearly every tool name starts with it
    assert tokens("getWeather send_invoices HTTPServer") == [
        "weather",
        "send",
        "invoice",
        "http",
        "server",
    ]


def test_bm25_prefers_rare_matching_terms() -> None:
    idx = BM25Index([["weather", "city"], ["invoice", "customer"], ["weather", "alert", "region"]])
    scores = idx.scores(["invoice"])
    assert set(scores) == {1}
    both = idx.scores(["weather", "alert"])
    assert both[2] > both[0] > 0


async def test_rank_puts_the_relevant_tool_first() -> None:
    r = Router(k=3)
    specs = [t.spec for t in TOOLS]
    choice = await r.choose("Please email invoice 42 to the customer", specs)
    assert choice.tools[0] == "send_invoice" and len(choice.tools) == 3
    assert choice.candidates == len(TOOLS)
    choice = await r.choose("what's the temperature in Oslo", specs)
    assert choice.tools[0] == "get_weather"


async def test_always_classifier_and_sticky() -> None:
    def classify(query: str, specs: Sequence[ToolSpec]) -> list[str]:
        return ["translate_text", "no_such_tool"]

    r = Router(k=2, always=["open_ticket"], classifier=classify)
    specs = [t.spec for t in TOOLS]
    choice = await r.choose("stock price of ACME", specs, used=["list_tenants"])
    assert choice.tools[:3] == ("open_ticket", "list_tenants", "translate_text")
    assert "stock_price" in choice.tools and "no_such_tool" not in choice.tools
    assert len(choice.tools) == 4  # k=2 beyond the always-included and used ones


async def test_small_tool_sets_are_not_routed() -> None:
    choice = await Router(k=8).choose("anything", [t.spec for t in TOOLS[:5]])
    assert len(choice.tools) == 5


def test_query_weights_the_latest_user_message() -> None:
    msgs = [Message.user("first thing"), Message.assistant("ok"), Message.user("now invoices")]
    assert query_of(msgs).split().count("invoices") == 2


def test_agent_offers_only_routed_tools_and_records_the_choice() -> None:
    seen = Seen()
    router = Router(k=2)
    gate = Gate(TOOLS, middleware=[router], observers=[seen])
    model = ScriptedModel([call("send_invoice", {"invoice_id": "42"}), "sent"])
    result = Agent(model, gate, router=router).run_sync("Email invoice 42 to the customer")
    assert result.output == "sent" and RAN == ["send_invoice"]
    offered = [t.name for t in model.requests[0].tools]
    assert len(offered) == 2 and "send_invoice" in offered  # in the toolset's order
    assert seen.turns[0].routed_tools is not None
    assert set(seen.turns[0].routed_tools) == set(offered)
    # sticky: the second turn keeps the tool the run used
    assert "send_invoice" in [t.name for t in model.requests[1].tools]
    # the run is over: every tool is visible again for other uses of the gate
    assert len(gate.specs(RunContext(run_id=result.run_id))) == len(TOOLS)


def test_routed_out_tool_called_by_name_is_unknown_and_not_run() -> None:
    seen = Seen()
    router = Router(k=2)
    gate = Gate(TOOLS, middleware=[router], observers=[seen])
    model = ScriptedModel([call("delete_tenant", {"tenant_id": "t1"}), "ok"])
    Agent(model, gate, router=router).run_sync("What is the weather in Paris?")
    assert RAN == []
    res = model.requests[1].messages[-1].tool_result
    assert res is not None and res.error_kind == "correctable"
    assert "no tool named 'delete_tenant'" in res.content
    listed = res.content.split("Available tools: ")[1].rstrip(".").split(", ")
    assert sorted(listed) == sorted(t.name for t in model.requests[0].tools)
    assert "delete_tenant" not in listed
    assert seen.calls[0].tool == "delete_tenant" and seen.calls[0].rule == "unknown-tool"


def test_policy_still_applies_to_routed_tools() -> None:
    class DenyWeather:
        def decide(self, tool: Tool, args: dict[str, object], ctx: RunContext) -> PolicyDecision:
            if tool.name == "get_weather":
                return PolicyDecision("deny", "no-weather", "weather is off")
            return PolicyDecision("allow", "ok")

        def visible(self, tool: Tool, ctx: RunContext) -> bool:
            return True

    router = Router(k=2)
    gate = Gate(TOOLS, middleware=[router], policy=DenyWeather())
    model = ScriptedModel([call("get_weather", {"city": "Paris"}), "ok"])
    Agent(model, gate, router=router).run_sync("weather in Paris")
    assert "get_weather" in [t.name for t in model.requests[0].tools]
    res = model.requests[1].messages[-1].tool_result
    assert res is not None and res.error_kind == "denied" and RAN == []


def test_router_on_a_default_gate_and_in_the_audit_log() -> None:
    audit = AuditLog.open(":memory:")
    router = Router(k=1)
    model = ScriptedModel(["hi"])
    agent = Agent(model, TOOLS, router=router)
    agent.gate.observers.append(audit)
    agent.run_sync("stock price of ACME")
    assert [t.name for t in model.requests[0].tools] == ["stock_price"]
    turn = next(e for e in audit.store.iter_all() if e.kind == "turn")
    assert turn.data["routed_tools"] == ["stock_price"]


def test_own_gate_without_the_router_is_refused() -> None:
    with pytest.raises(ValueError, match="middleware"):
        Agent(ScriptedModel([]), Gate(TOOLS), router=Router(k=2))


def test_bench_generated_set_smoke() -> None:
    """The routing benchmark's fallback set runs and measures what it claims (fast: 30 cases)."""
    import asyncio
    import importlib.util
    import random
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "routing.py"
    spec = importlib.util.spec_from_file_location("bench_routing", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_routing"] = bench  # dataclasses look their module up
    spec.loader.exec_module(bench)
    cases, pool = bench.generated_data(seed=1)
    rng = random.Random(1)
    row = asyncio.run(bench.measure(cases[:30], pool, 50, rng, 8))
    assert row["cases"] == 30 and row["distractors"] == 50
    assert row["recall@1"] <= row["recall@3"] <= row["recall@8"] <= 1.0
    assert row["recall@8"] >= 0.9
    assert row["tool_tokens_k5"] * 5 < row["tool_tokens_all"]


async def test_async_classifier_picks_come_first() -> None:
    async def classify(query: str, specs: Sequence[ToolSpec]) -> list[str]:
        return ["book_flight"]

    choice = await Router(k=1, classifier=classify).choose(
        "weather please", [t.spec for t in TOOLS]
    )
    assert choice.tools == ("book_flight",)


def test_routing_and_fallback_reach_telemetry_spans() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from callgate.errors import ModelError
    from callgate.providers.fallback import FallbackModel
    from callgate.telemetry import Telemetry
    from callgate.testing import FunctionModel

    def down(_: object) -> str:
        raise ModelError("HTTP 503", status=503, retryable=True)

    spans = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    tel = Telemetry(tracer_provider=tp)
    router = Router(k=2)
    gate = Gate(TOOLS, middleware=[router], observers=[tel])
    model = FallbackModel([FunctionModel(down, name="primary"), ScriptedModel(["ok"], name="b")])
    Agent(model, gate, router=router).run_sync("stock price of ACME")
    chat = [s for s in spans.get_finished_spans() if s.name.startswith("chat")]
    attrs = dict(chat[0].attributes or {})
    assert "stock_price" in attrs["callgate.routed_tools"]
    assert len(attrs["callgate.routed_tools"]) == 2
    assert attrs["callgate.fallbacks"][0].startswith("primary: ModelError: HTTP 503")
