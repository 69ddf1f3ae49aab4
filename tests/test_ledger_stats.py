"""Prices (overrides, the offline catalogue, tool costs), the run ledger (consistent with the
run's usage and its telemetry spans), run and feedback records, and `callgate stats`."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from callgate import Agent, Budgets, Gate, RunContext, tool
from callgate.agent.budgets import Price
from callgate.agent.pricing import PriceTable, catalogue_price
from callgate.audit.log import AuditLog
from callgate.audit.stats import Filters, compute_stats
from callgate.audit.stats_cli import bar, parse_when
from callgate.cli import main as cli_main
from callgate.models import ModelRequest
from callgate.telemetry import Telemetry
from callgate.testing import FunctionModel, ScriptedModel, call


@tool(read_only=True)
async def slow(q: str) -> str:
    """Sleeps 50 ms."""
    await asyncio.sleep(0.05)
    return "found " + q


@tool(read_only=True)
def broken(q: str) -> str:
    """Always fails."""
    raise RuntimeError("backend down")


# --- prices ---------------------------------------------------------------------------------


def test_overrides_win_and_globs_match() -> None:
    mine = Price(0.1, 0.2)
    table = PriceTable(models={"llama-*": mine, "gpt-4o": Price(1.0, 1.0)}, catalogue=False)
    assert table.for_model("llama-3.1-8b") is mine
    assert table.for_model("gpt-4o") == Price(1.0, 1.0)
    assert table.for_model("unknown-model") is None
    assert table.for_model(None) is None
    with pytest.raises(ValueError):
        PriceTable(tools={"x": -1.0})


def test_catalogue_works_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The maintained table answers from the snapshot it ships with: no network needed."""

    def no_network(*a: Any, **k: Any) -> Any:
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    catalogue_price.cache_clear()
    price = catalogue_price("gpt-4o")
    assert price is not None and price.output > price.input > 0
    assert price.cached_input is not None and price.cached_input < price.input
    assert catalogue_price("no-such-model-xyz") is None
    # a dated snapshot name resolves to the same price
    assert catalogue_price("gpt-4o-2024-08-06") == price


async def test_cost_budget_works_for_a_catalogued_model() -> None:
    """A model the catalogue knows needs no hand-written price for `Budgets(max_cost_usd)`."""
    model = ScriptedModel(["hello"], name="gpt-4o")
    agent = Agent(model, [slow], budgets=Budgets(max_cost_usd=1.0))
    res = await agent.run("hi")
    price = catalogue_price("gpt-4o")
    assert price is not None
    assert res.usage.cost_usd == pytest.approx(price.cost(res.usage)) and res.usage.cost_usd > 0
    with pytest.raises(ValueError, match="not in the price table"):
        Agent(ScriptedModel(["x"], name="my-own-llm"), [slow], budgets=Budgets(max_cost_usd=1))
    priced = Agent(
        ScriptedModel(["x"], name="my-own-llm"),
        [slow],
        budgets=Budgets(max_cost_usd=1),
        price=PriceTable(models={"my-own-*": Price(1.0, 2.0)}),
    )
    assert priced.price == Price(1.0, 2.0)


# --- the ledger -----------------------------------------------------------------------------


def _slow_model(replies: list[Any], delay: float = 0.03) -> FunctionModel:
    it = iter(replies)

    async def fn(req: ModelRequest) -> Any:
        await asyncio.sleep(delay)
        return next(it)

    return FunctionModel(fn, name="my-own-llm")


async def test_ledger_adds_up_and_matches_the_spans(tmp_path: Path) -> None:
    spans = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    tel = Telemetry(tracer_provider=tp)
    audit = AuditLog.open(tmp_path / "a.db")
    gate = Gate([slow, broken], middleware=[tel.middleware()], observers=[tel, audit])
    replies = [
        [call("slow", {"q": "a"}, id="s1"), call("slow", {"q": "b"}, id="s2")],
        call("broken", {"q": "c"}, id="b1"),
        "done",
    ]
    prices = PriceTable(models={"my-own-llm": Price(1000.0, 2000.0)}, tools={"slow": 0.01})
    agent = Agent(_slow_model(replies), gate, price=prices)
    ctx = RunContext(user_id="ann", tenant="acme")
    with tel.agent_run(ctx, "bot"):
        res = await agent.run("look things up", ctx=ctx)
    led = res.ledger
    assert led is not None and res.status == "completed"
    assert led.model_s + led.tools_s + led.other_s == pytest.approx(led.wall_s, abs=1e-6)
    assert led.model_s >= 3 * 0.03 and 0.05 <= led.tools_s < 0.1 + led.model_s  # parallel pair
    assert led.call_s >= 2 * 0.05  # the two slow calls' own time, overlapping
    assert led.calls == {"slow": 2, "broken": 1} and led.errors == {"broken": 1}
    assert led.round_trips == res.usage.requests == 3
    assert (led.input_tokens, led.output_tokens) == (
        res.usage.input_tokens,
        res.usage.output_tokens,
    )
    assert led.model_cost_usd == pytest.approx(res.usage.cost_usd) and led.model_cost_usd > 0
    assert led.tool_cost_usd == pytest.approx(0.02)  # declared per call of "slow"; broken is free
    assert led.cost_usd == pytest.approx(led.model_cost_usd + 0.02)
    # the same run seen by telemetry
    done = spans.get_finished_spans()
    chat = [s for s in done if s.name.startswith("chat ")]
    tools = [s for s in done if s.name.startswith("execute_tool ")]
    assert len(chat) == led.round_trips and len(tools) == sum(led.calls.values())
    chat_s = sum(((s.end_time or 0) - (s.start_time or 0)) / 1e9 for s in chat)
    assert chat_s == pytest.approx(led.model_s, rel=0.05)
    # and recorded: durable once the run is reported finished
    other = AuditLog.open(tmp_path / "a.db")
    (run,) = [e for e in other.store.iter_all() if e.kind == "run"]
    assert run.run_id == res.run_id and run.data["status"] == "completed"
    assert run.data["ledger"]["calls"] == {"slow": 2, "broken": 1}
    assert run.data["ledger"]["cost_usd"] == pytest.approx(led.cost_usd)
    other.close()
    audit.close()


# --- feedback and stats ---------------------------------------------------------------------


async def _two_runs(db: Path) -> tuple[AuditLog, str, str]:
    audit = AuditLog.open(db)
    prices = PriceTable(models={"my-own-llm": Price(1000.0, 1000.0)})
    first = Agent(
        _slow_model([call("slow", {"q": "a"}, id="a1"), "ok"], 0.0),
        Gate([slow, broken], observers=[audit]),
        price=prices,
    )
    r1 = await first.run("cheap question", ctx=RunContext(user_id="ann", tenant="acme"))
    second = Agent(
        _slow_model(
            [call("broken", {"q": "x"}, id="b1"), call("broken", {"q": "y"}, id="b2"), "sorry"],
            0.0,
        ),
        Gate([slow, broken], observers=[audit]),
        price=prices,
    )
    r2 = await second.run("expensive question", ctx=RunContext(user_id="bob", tenant="beta"))
    return audit, r1.run_id, r2.run_id


async def test_stats_from_the_log(tmp_path: Path) -> None:
    audit, run1, run2 = await _two_runs(tmp_path / "a.db")
    audit.record_feedback(run1, 5, "great")
    audit.record_feedback(run2, 1, "it failed, token sk-live-abcdefghijklmnopqrstuvwx")
    with pytest.raises(ValueError):
        audit.record_feedback(run1, 6)
    s = compute_stats(audit.store.iter_all())
    assert s.calls == 3 and s.errors == 2 and s.runs == 2
    assert s.tools["slow"].calls == 1 and s.tools["broken"].error_rate == 1.0
    assert s.users == {"ann": 1, "bob": 2} and s.tenants == {"acme": 1, "beta": 2}
    (message, times), *_ = s.top_errors
    assert times == 2 and "broken" in message
    assert [r["run_id"] for r in s.expensive] == [run2, run1]  # three turns cost more than two
    assert s.cost_usd == pytest.approx(sum(r["cost_usd"] for r in s.expensive))
    assert s.tools["slow"].mean_rating == 5.0 and s.tools["broken"].mean_rating == 1.0
    assert {f["run_id"]: f["tools"] for f in s.feedback} == {run1: ["slow"], run2: ["broken"]}
    assert all("sk-live" not in f["comment"] for f in s.feedback)
    assert s.models["my-own-llm"]["turns"] == 5
    # filters
    beta = compute_stats(audit.store.iter_all(), Filters(tenant="beta"))
    assert beta.calls == 2 and set(beta.tools) == {"broken"} and beta.runs == 1
    only_slow = compute_stats(audit.store.iter_all(), Filters(tool="slow"))
    assert only_slow.calls == 1 and only_slow.runs == 1 and only_slow.expensive[0]["run_id"] == run1
    future = compute_stats(audit.store.iter_all(), Filters(since=time.time() + 60))
    assert future.calls == 0 and future.runs == 0
    audit.close()


async def test_stats_and_feedback_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "a.db"
    audit, run1, _ = await _two_runs(db)
    audit.close()
    assert cli_main(["feedback", run1, "--rating", "up", "--comment", "nice", "--db", str(db)]) == 0
    assert "5/5" in capsys.readouterr().out
    assert cli_main(["feedback", run1, "--rating", "9", "--db", str(db)]) == 2
    capsys.readouterr()
    assert cli_main(["stats", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "tools" in text and "broken" in text and "█" in text
    assert "most expensive queries" in text and "★★★★★" in text and "nice" in text
    assert cli_main(["stats", "--db", str(db), "--tenant", "acme", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["tools"]) == {"slow"} and data["tools"]["slow"]["mean_rating"] == 5.0
    assert cli_main(["audit", "stats", "--db", str(db), "--since", "1h", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["calls"] == 3
    assert cli_main(["stats", "--db", str(db), "--since", "yesterday"]) == 2
    assert cli_main(["stats", "--db", str(tmp_path / "missing.db")]) == 2


def test_bars_and_times() -> None:
    assert bar(10, 10, width=4) == "████" and bar(0, 10) == "" and bar(1, 0) == ""
    assert len(bar(5, 10, width=4)) == 2
    assert parse_when("2h", now=10_000.0) == 10_000.0 - 7200
    assert parse_when("2026-01-31") > 0
    with pytest.raises(ValueError):
        parse_when("soon")
