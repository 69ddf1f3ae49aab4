"""OpenTelemetry spans and metrics (in-memory exporters): names and attributes per the GenAI
conventions, the span active while a tool runs, redaction, refusals, and no cost when off."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from callgate import Gate, RunContext, ToolCall, tool
from callgate.gate.protocols import TurnRecord
from callgate.policy.engine import DefaultPolicy
from callgate.telemetry import Telemetry
from callgate.testing import call

SECRET = "sk-live-abcdefghijklmnopqrstuvwx"


class Otel:
    def __init__(self, record_content: bool = False) -> None:
        self.spans = InMemorySpanExporter()
        tp = TracerProvider()
        tp.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.tel = Telemetry(
            tracer_provider=tp,
            meter_provider=MeterProvider(metric_readers=[self.reader]),
            record_content=record_content,
        )

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def metric(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        data = self.reader.get_metrics_data()
        out: list[tuple[dict[str, Any], Any]] = []
        assert data is not None
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        for p in m.data.data_points:
                            value = getattr(p, "value", None)
                            if value is None:
                                value = (p.count, p.sum)  # histogram
                            out.append((dict(p.attributes or {}), value))
        return out


seen_span: list[Any] = []


@tool(read_only=True, sensitive=("password",))
def lookup(user: str, password: str = "") -> str:
    """Look a user up."""
    seen_span.append(trace.get_current_span().get_span_context())
    return f"found {user} with key {SECRET}"


@tool(read_only=True, inline=True)
def lookup_inline(user: str) -> str:
    """Look a user up on the loop."""
    seen_span.append(trace.get_current_span().get_span_context())
    return user


@tool(read_only=True)
def broken(x: int) -> str:
    """Always fails."""
    raise RuntimeError("boom " + SECRET)


def gate_for(o: Otel, *tools: Any) -> Gate:
    return Gate(list(tools), middleware=[o.tel.middleware()], observers=[o.tel])


@pytest.mark.parametrize("fn", [lookup, lookup_inline])
async def test_tool_span_is_active_while_the_tool_runs(fn: Any) -> None:
    """A thread tool and an inline tool both see the call's span as the current one, so an
    instrumented HTTP client inside the tool continues the trace."""
    o = Otel()
    seen_span.clear()
    g = gate_for(o, fn)
    ctx = RunContext(tenant="acme")
    with o.tel.agent_run(ctx, "bot") as run:
        assert run is not None
        res = await g.execute(call(fn.name, {"user": "ann"}, id="c1"), ctx)
    assert res.error_kind is None
    spans = {s.name: s for s in o.finished()}
    tool_span = spans[f"execute_tool {fn.name}"]
    agent_span = spans["invoke_agent bot"]
    assert seen_span[0].span_id == tool_span.context.span_id
    assert tool_span.parent is not None and tool_span.parent.span_id == agent_span.context.span_id
    attrs = dict(tool_span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["gen_ai.tool.name"] == fn.name
    assert attrs["gen_ai.tool.call.id"] == "c1"
    assert attrs["callgate.decision"] == "allow"
    assert attrs["callgate.tenant"] == "acme"
    assert attrs["callgate.retries"] == 0
    assert "gen_ai.tool.call.arguments" not in attrs  # content is off by default
    assert len([s for s in o.finished() if s.name.startswith("execute_tool")]) == 1


async def test_content_is_redacted_like_the_audit_log() -> None:
    o = Otel(record_content=True)
    g = gate_for(o, lookup)
    args = {"user": "ann", "password": "hunter2-very-secret"}
    await g.execute(call("lookup", args, id="c1"), RunContext())
    (span,) = o.finished()
    attrs = dict(span.attributes or {})
    recorded_args = json.loads(str(attrs["gen_ai.tool.call.arguments"]))
    assert recorded_args["user"] == "ann"
    assert "hunter2" not in str(attrs)  # a sensitive parameter
    assert SECRET not in str(attrs)  # a secret-looking value in the result
    assert "found ann" in str(attrs["gen_ai.tool.call.result"])


async def test_crash_is_an_error_span_without_the_exception_text() -> None:
    o = Otel(record_content=True)
    g = gate_for(o, broken)
    res = await g.execute(call("broken", {"x": 1}, id="c9"), RunContext())
    assert res.error_kind is not None
    (span,) = o.finished()
    assert span.status.status_code == trace.StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == res.error_kind
    assert "boom" not in str(span.attributes) and SECRET not in str(span.to_json())
    errors = o.metric("callgate.tool.errors")
    assert errors == [({"gen_ai.tool.name": "broken", "error.type": res.error_kind}, 1)]


@tool(destructive=True)
def delete_user(user: str) -> str:
    """Delete a user."""
    return "deleted"


async def test_refusals_before_middleware_get_one_span_and_a_refusal_metric() -> None:
    """Unknown tools, invalid arguments and policy refusals never reach the middleware: the
    observer still makes their span (with decision and rule) and counts them."""
    o = Otel()
    g = Gate(
        [lookup, delete_user],
        policy=DefaultPolicy(),
        middleware=[o.tel.middleware()],
        observers=[o.tel],
    )
    ctx = RunContext()
    await g.execute(call("nope", {}, id="u1"), ctx)
    await g.execute(ToolCall("b1", "lookup", '{"user": 5}'), ctx)
    denied = await g.execute(call("delete_user", {"user": "x"}, id="d1"), ctx)
    assert denied.error_kind == "denied"
    spans = {dict(s.attributes or {})["gen_ai.tool.call.id"]: s for s in o.finished()}
    assert set(spans) == {"u1", "b1", "d1"}
    d_attrs = dict(spans["d1"].attributes or {})
    assert d_attrs["callgate.decision"] == "approve" and d_attrs["error.type"] == "denied"
    assert dict(spans["b1"].attributes or {})["error.type"] == "correctable"
    assert all(s.end_time is not None and s.end_time >= (s.start_time or 0) for s in o.finished())
    calls = o.metric("callgate.tool.calls")
    assert sum(v for _, v in calls) == 3
    refused = o.metric("callgate.approvals.pending") + o.metric("callgate.refusals")
    assert [a["gen_ai.tool.name"] for a, _ in refused] == ["delete_user"]


async def test_chat_span_and_model_metrics_from_turn_records() -> None:
    o = Otel(record_content=True)
    ctx = RunContext(conversation_id="conv-1")
    rec = TurnRecord(
        ctx,
        1,
        "gpt-x",
        "text with " + SECRET,
        [ToolCall("c1", "lookup", {"password": "pw12345"})],
        "tool_calls",
        120,
        30,
        0.0042,
        0.25,
        sensitive={"lookup": frozenset({"password"})},
    )
    o.tel.on_turn(rec)
    (span,) = o.finished()
    attrs = dict(span.attributes or {})
    assert span.name == "chat gpt-x"
    assert attrs["gen_ai.usage.input_tokens"] == 120 and attrs["gen_ai.usage.output_tokens"] == 30
    assert attrs["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert attrs["gen_ai.conversation.id"] == "conv-1"
    assert span.end_time is not None and span.start_time is not None
    assert abs((span.end_time - span.start_time) / 1e9 - 0.25) < 0.01
    assert "pw12345" not in str(attrs) and SECRET not in str(attrs)
    tokens = sorted((a["gen_ai.token.type"], v) for a, v in o.metric("gen_ai.client.token.usage"))
    assert tokens == [("input", (1, 120)), ("output", (1, 30))]
    assert o.metric("callgate.cost") == [({"gen_ai.request.model": "gpt-x"}, 0.0042)]


async def test_latency_histogram_per_tool() -> None:
    o = Otel()
    g = gate_for(o, lookup, lookup_inline)
    for i in range(3):
        await g.execute(call("lookup", {"user": "a"}, id=f"a{i}"), RunContext())
    await g.execute(call("lookup_inline", {"user": "a"}, id="b"), RunContext())
    hist = {a["gen_ai.tool.name"]: v[0] for a, v in o.metric("callgate.tool.duration")}
    assert hist == {"lookup": 3, "lookup_inline": 1}


async def test_off_without_an_sdk() -> None:
    """With the API's default providers nothing is recorded and the hooks return at once."""
    tel = Telemetry()
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        pytest.skip("a global tracer provider was configured by another test")
    assert not tel.enabled
    g = Gate([lookup_inline], middleware=[tel.middleware()], observers=[tel])
    with tel.agent_run(RunContext()) as span:
        assert span is None
        res = await g.execute(call("lookup_inline", {"user": "a"}), RunContext())
    assert res.content == "a"
    assert tel._tracer is None and tel._meters is None


async def test_cache_hits_mark_the_span_and_count() -> None:
    from callgate.gate.middleware.cache import CacheMiddleware

    o = Otel()
    seen_span.clear()
    cache = CacheMiddleware(ttl={"lookup_inline": 60}, listeners=[o.tel])
    g = Gate([lookup_inline], middleware=[o.tel.middleware(), cache], observers=[o.tel])
    for i in range(3):
        await g.execute(call("lookup_inline", {"user": "a"}, id=f"c{i}"), RunContext())
    assert len(seen_span) == 1  # ran once
    hits = [dict(s.attributes or {}).get("callgate.cache_hit") for s in o.finished()]
    assert hits == [False, True, True]
    assert o.metric("callgate.cache.hits") == [({"gen_ai.tool.name": "lookup_inline"}, 2)]
    assert o.metric("callgate.cache.misses") == [({"gen_ai.tool.name": "lookup_inline"}, 1)]


@pytest.mark.parametrize("wrapped", [False, True])
async def test_agent_run_opens_one_invoke_agent_span(wrapped: bool) -> None:
    """The agent opens the run span itself; a run the application wraps too gets one span,
    not two, and every model and tool span of the run hangs under it."""
    from callgate import Agent
    from callgate.testing import ScriptedModel

    o = Otel()
    gate = gate_for(o, lookup_inline)
    agent = Agent(ScriptedModel([call("lookup_inline", {"user": "a"}, id="c1"), "ok"]), gate)
    ctx = RunContext()
    if wrapped:
        with o.tel.agent_run(ctx, "outer"):
            await agent.run("go", ctx=ctx)
    else:
        await agent.run("go", ctx=ctx)
    spans = o.finished()
    runs = [s for s in spans if s.name.startswith("invoke_agent")]
    assert len(runs) == 1
    assert runs[0].name == ("invoke_agent outer" if wrapped else "invoke_agent scripted")
    run_id = runs[0].context.span_id
    others = [s for s in spans if s is not runs[0]]
    assert sorted(s.name for s in others) == ["chat scripted", "chat scripted",
                                              "execute_tool lookup_inline"]  # fmt: skip
    assert all(s.parent is not None and s.parent.span_id == run_id for s in others)
