"""The gate's stages over typed invocations: approval claims always settled, the run's own
refusals recorded, plain functions as tools, the dry-run decision, typed run contexts."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callgate import (
    Agent,
    Approvals,
    AuditLog,
    Gate,
    Invocation,
    Limit,
    RateLimiter,
    RunContext,
    ToolCall,
    ToolDenied,
    ToolResult,
    open_approval_store,
    open_audit_store,
    tool,
)
from callgate.gate.middleware.ratelimit import MemoryRateLimitBackend
from callgate.gate.protocols import Refusal
from callgate.testing import ScriptedModel, call

SENT: list[str] = []


@tool(destructive=True)
def wire(to: str, amount: int) -> str:
    """Send money."""
    SENT.append(to)
    return f"sent {amount} to {to}"


@pytest.fixture(autouse=True)
def _clear() -> None:
    SENT.clear()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _approvals(kind: str, tmp_path: Path) -> Approvals:
    target = ":memory:" if kind == "memory" else str(tmp_path / "approvals.db")
    return Approvals(open_approval_store(target))


# --- an approval claim is always settled ----------------------------------------------------


@tool(read_only=True)
def ping() -> str:
    return "pong"


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_approved_call_refused_by_a_rate_limit_runs_once_when_allowed(
    kind: str, tmp_path: Path
) -> None:
    clock = Clock()
    limiter = RateLimiter([Limit(calls=1, per=60)], MemoryRateLimitBackend(clock))
    approvals = _approvals(kind, tmp_path)
    gate = Gate([wire, ping], approver=approvals, middleware=[limiter])
    ctx = RunContext(user_id="ann")
    c = ToolCall("c1", "wire", '{"to": "bob", "amount": 5}')
    pending = await gate.execute(c, ctx)
    assert pending.error_kind == "pending_approval" and pending.approval_id
    aid = pending.approval_id
    approvals.approve(aid, by="ops")
    assert (await gate.execute(ToolCall("p", "ping", "{}"), ctx)).content == "pong"  # window full

    refused = await gate.execute(c, ctx)
    assert refused.error_kind == "denied" and "rate limit" in refused.content
    assert "already being carried out" not in refused.content
    req = approvals.get(aid)
    assert req.status == "approved"  # released, not stuck in "executing"
    assert req.result_summary is not None and req.result_summary.startswith("not run: ratelimit")
    again = await gate.execute(c, ctx)  # still limited: refused again, still approved
    assert again.error_kind == "denied" and approvals.get(aid).status == "approved"
    assert SENT == []

    clock.now += 61  # the window has room again
    done = await gate.execute(c, ctx)
    assert done.error_kind is None and done.content == "sent 5 to bob"
    assert done.approval_id == aid and approvals.get(aid).status == "done"
    clock.now += 61
    replay = await gate.execute(c, ctx)  # used up: it never runs twice
    assert replay.error_kind == "denied" and "will not run twice" in replay.content
    assert SENT == ["bob"]


class Refuse:
    """A middleware that refuses (like a sanitiser) or crashes before the tool runs."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def __call__(self, inv: Invocation, next: Any) -> ToolResult:
        raise self.exc


@pytest.mark.parametrize(
    "exc", [ToolDenied("unsafe argument", rule="sanitize:sql"), RuntimeError("middleware bug")]
)
async def test_any_refusal_before_the_tool_releases_the_claim(exc: BaseException) -> None:
    approvals = _approvals("memory", Path("."))
    gate = Gate([wire], approver=approvals, middleware=[Refuse(exc)])
    ctx = RunContext()
    c = ToolCall("c1", "wire", '{"to": "bob", "amount": 5}')
    aid = (await gate.execute(c, ctx)).approval_id
    assert aid is not None
    approvals.approve(aid)
    res = await gate.execute(c, ctx)
    assert res.error_kind in ("denied", "terminal") and SENT == []
    assert approvals.get(aid).status == "approved"
    assert "not run" in (approvals.get(aid).result_summary or "")


async def test_a_tool_that_started_and_was_cancelled_is_interrupted() -> None:
    started = asyncio.Event()

    @tool(destructive=True)
    async def slow_wire(to: str) -> str:
        started.set()
        await asyncio.sleep(10)
        return "sent"

    approvals = _approvals("memory", Path("."))
    gate = Gate([slow_wire], approver=approvals)
    ctx = RunContext()
    c = ToolCall("c1", "slow_wire", '{"to": "bob"}')
    aid = (await gate.execute(c, ctx)).approval_id
    assert aid is not None
    approvals.approve(aid)
    task = asyncio.ensure_future(gate.execute(c, ctx))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # it may have taken effect: never "approved" again, never re-run
    assert approvals.get(aid).status == "interrupted"
    res = await gate.execute(c, ctx)
    assert res.error_kind == "denied" and "interrupted" in res.content


# --- the run's own refusals are gate outcomes, in the audit log ------------------------------


@tool(read_only=True)
def lookup(city: str) -> str:
    return f"sunny in {city}"


async def test_a_call_refused_by_the_loop_breaker_is_in_the_audit_log(tmp_path: Path) -> None:
    audit = AuditLog(open_audit_store(str(tmp_path / "audit.db")))
    gate = Gate([lookup], observers=[audit])
    same = {"city": "Oslo"}
    m = ScriptedModel(
        [
            call("lookup", same, id="a"),
            call("lookup", same, id="b"),  # a repeat: warned, not run
            call("lookup", same, id="c"),  # again: stopped
            "Sunny in Oslo.",
        ]
    )
    r = await Agent(m, gate).run("weather in Oslo?")
    assert r.status == "stopped" and r.reason == "loop"
    calls = [e for e in audit.entries() if e.kind == "call"]
    assert [e.data["call_id"] for e in calls] == ["a", "b", "c"]
    a, b, c = calls
    assert a.decision == "allow" and a.data["error_kind"] is None
    assert b.decision == "deny" and b.data["rule"] == "loop:repeat"
    assert "loop detected (repeat)" in b.data["result_summary"]
    assert c.data["rule"] == "loop:repeat" and c.data["arguments"] == same
    assert audit.verify().ok


@tool(read_only=True, sensitive=("pin",))
def check_pin(pin: str) -> str:
    return "ok"


async def test_budget_and_tools_off_refusals_are_recorded_and_redacted() -> None:
    records: list[Any] = []

    class Obs:
        def on_call(self, rec: Any) -> None:
            records.append(rec)

        def on_turn(self, rec: Any) -> None: ...

    gate = Gate([check_pin], observers=[Obs()])
    m = ScriptedModel([call("check_pin", {"pin": "1234"}, id="p1"), "done"])
    r = await Agent(m, gate, tool_choice="none").run("x")
    assert r.status == "completed"
    (rec,) = records
    assert rec.rule == "tool_choice:none" and rec.error_kind == "correctable"
    assert rec.sensitive == frozenset({"pin"})  # so the audit log masks it
    refused = await gate.execute(
        ToolCall("p2", "check_pin", '{"pin": "9"}'), RunContext(), refusal=Refusal("budget:x", "no")
    )
    assert refused.rule == "budget:x" and refused.content == "no" and len(records) == 2


# --- plain functions, dry runs, typed contexts ------------------------------------------------


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def test_plain_functions_are_wrapped_like_tool() -> None:
    gate = Gate([add])
    assert gate.toolset.get("add").spec == tool(add).spec
    r = await gate.execute(ToolCall("1", "add", '{"a": 1, "b": "x"}'), RunContext())
    assert r.error_kind == "correctable" and "b: expected an integer" in r.content
    m = ScriptedModel([call("add", {"a": 2, "b": 3}), "5"])
    res = await Agent(m, [add]).run("2+3?")
    assert res.output == "5" and res.results[0].content == "5"
    with pytest.raises(Exception, match="is not a tool"):
        Gate([42])  # type: ignore[list-item]


async def test_decide_is_a_dry_run() -> None:
    approvals = _approvals("memory", Path("."))
    gate = Gate([wire, lookup], approver=approvals)
    ctx = RunContext()
    p = gate.decide(ToolCall("1", "wire", '{"to": "bob", "amount": 5}'), ctx)
    assert p.decision.effect == "approve" and p.invocation is not None
    assert approvals.list() == [] and SENT == []  # nothing asked, nothing run
    assert gate.decide(ToolCall("2", "lookup", '{"city": "x"}'), ctx).decision.effect == "allow"
    bad = gate.decide(ToolCall("3", "lookup", '{"town": "x"}'), ctx)
    assert bad.decision.effect == "deny" and bad.decision.rule == "invalid-arguments"
    assert ctx.corrections == {}  # a dry run uses no correction budget
    unknown = gate.decide(ToolCall("4", "nope", "{}"), ctx)
    assert unknown.decision.rule == "unknown-tool"


async def test_needs_approval_without_an_approver_is_its_own_outcome() -> None:
    records: list[Any] = []

    class Obs:
        def on_call(self, rec: Any) -> None:
            records.append(rec)

        def on_turn(self, rec: Any) -> None: ...

    r = await Gate([wire], observers=[Obs()]).execute(
        ToolCall("1", "wire", '{"to": "bob", "amount": 5}'), RunContext()
    )
    assert r.error_kind == "denied" and "needs a person's approval" in r.content
    assert records[0].decision == "approve" and SENT == []


@dataclass
class Deps:
    bank: dict[str, int]


@tool(read_only=True)
def balance(account: str, ctx: RunContext[Deps]) -> int:
    """Balance of an account."""
    return ctx.deps.bank[account]


async def test_typed_dependencies_reach_the_tool() -> None:
    assert "ctx" not in json.dumps(balance.spec.parameters)
    ctx = RunContext(deps=Deps({"a1": 7}))
    r = await Gate([balance]).execute(ToolCall("1", "balance", '{"account": "a1"}'), ctx)
    assert r.content == "7"


def test_paused_runs_keep_the_typed_facts_of_results() -> None:
    from callgate import serde

    r = ToolResult(
        "c1",
        "wire",
        "Denied: ...",
        "denied",
        rule="ratelimit:x",
        approval_id="apr_1",
        error_class=None,
        correction_budget_exhausted=True,
    )
    back = serde.result_from_dict(serde.result_to_dict(r))
    assert (back.rule, back.approval_id, back.correction_budget_exhausted) == (
        "ratelimit:x",
        "apr_1",
        True,
    )
    assert "error_class" not in serde.result_to_dict(r)


class SlowClaims:
    """A store whose claims take a while (a database under load); not the memory store, so
    `Approvals` runs it in a worker thread as it would a real database."""

    def __init__(self) -> None:
        from callgate.approvals import MemoryApprovalStore

        self.inner = MemoryApprovalStore()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def transition(self, approval_id: str, expect: Any, status: str, *a: Any, **kw: Any) -> Any:
        if status == "executing":
            time.sleep(0.2)
        return self.inner.transition(approval_id, expect, status, *a, **kw)


async def test_cancelled_while_claiming_releases_the_claim() -> None:
    approvals = Approvals(SlowClaims())  # type: ignore[arg-type]
    gate = Gate([wire], approver=approvals)
    ctx = RunContext()
    c = ToolCall("c1", "wire", '{"to": "bob", "amount": 5}')
    aid = (await gate.execute(c, ctx)).approval_id
    assert aid is not None
    approvals.approve(aid)
    task = asyncio.ensure_future(gate.execute(c, ctx))
    await asyncio.sleep(0.05)  # the claim is being written in a worker thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):  # the claim lands after the cancellation, then is released
        await asyncio.sleep(0.01)
        if approvals.get(aid).status == "approved":
            break
    assert approvals.get(aid).status == "approved" and SENT == []
    done = await gate.execute(c, ctx)
    assert done.error_kind is None and SENT == ["bob"]
