"""Durable approvals and paused-run stores, on memory, SQLite and a real PostgreSQL server.

Every behaviour is checked through the real `Gate` with real tools that record their calls, so a
test fails if a call runs when it should not, or runs twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callgate import cli
from callgate.agent.loop import Agent
from callgate.approvals import (
    ApprovalConflictError,
    ApprovalError,
    ApprovalExpiredError,
    ApprovalNotFoundError,
    ApprovalRequest,
    Approvals,
    ApprovalStore,
    CallbackApprover,
    MemoryApprovalStore,
    open_approval_store,
)
from callgate.approvals.model import args_hash, mask_arguments, process_owner
from callgate.approvals.stores.postgres import PgApprovalStore
from callgate.approvals.stores.sqlite import SqliteApprovalStore
from callgate.context import RunContext
from callgate.errors import ApprovalRequired, ToolDenied
from callgate.gate.core import Gate
from callgate.gate.protocols import Invocation, PolicyDecision
from callgate.messages import ToolCall, ToolResult
from callgate.policy.engine import Policy, Rule
from callgate.runs import (
    MemoryRunStore,
    PgRunStore,
    RunStore,
    RunStoreError,
    SqliteRunStore,
    open_run_store,
)
from callgate.testing import ScriptedModel, call
from callgate.tools.definition import tool

PENDING = "pending_approval"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Backend:
    kind: str  # memory | sqlite | pg
    where: str = ""
    table: str = "callgate_approvals"


@pytest.fixture(params=["memory", "sqlite", pytest.param("pg", marks=pytest.mark.slow)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield Backend("memory")
    elif request.param == "sqlite":
        yield Backend("sqlite", str(tmp_path / "approvals.db"))
    else:
        # one server database for the session, one table per test: much cheaper than
        # CREATE DATABASE per test
        dsn = str(request.getfixturevalue("pg_dsn"))
        table = f"apr_{uuid.uuid4().hex[:12]}"
        yield Backend("pg", dsn, table)
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{table}"')


def make_store(b: Backend) -> ApprovalStore:
    if b.kind == "memory":
        return MemoryApprovalStore()
    if b.kind == "sqlite":
        return SqliteApprovalStore(b.where)
    return PgApprovalStore(b.where, table=b.table)


@pytest.fixture
def store(backend: Backend) -> Iterator[ApprovalStore]:
    s = make_store(backend)
    yield s
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def approvals(store: ApprovalStore, clock: Clock) -> Approvals:
    return Approvals(store, ttl_s=600, clock=clock)


class Ledger:
    """A tool's side effects, so tests can count exactly how often it ran."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture
def gate(approvals: Approvals, ledger: Ledger) -> Gate:
    return make_gate(approvals, ledger)


def make_gate(approvals: Approvals, ledger: Ledger) -> Gate:
    @tool(destructive=True, sensitive=("pin",))
    def refund(invoice_id: str, amount: float, card_number: str = "", pin: str = "") -> str:
        """Refund an invoice to a card."""
        ledger.calls.append({"invoice_id": invoice_id, "amount": amount})
        return f"refunded {amount} on {invoice_id}"

    @tool(destructive=True)
    def explode(x: int) -> str:
        """Always fails."""
        ledger.calls.append({"x": x})
        raise RuntimeError("kaboom")

    @tool(read_only=True)
    def lookup(invoice_id: str) -> str:
        """Read an invoice."""
        return f"invoice {invoice_id}"

    policy = Policy(
        [
            Rule("reads", "allow", tiers="read"),
            Rule("refunds", "approve", tools=["refund", "explode"], reason="refunds need a person"),
        ]
    )
    return Gate([refund, explode, lookup], policy=policy, approver=approvals)


def ctx(run_id: str = "run_1", user: str = "alice", tenant: str | None = "acme") -> RunContext:
    return RunContext(user_id=user, tenant=tenant, run_id=run_id, conversation_id="conv_1")


REFUND = {"invoice_id": "inv-7", "amount": 120.0, "card_number": "4111111111111111", "pin": "9999"}


async def run(
    gate: Gate,
    args: dict[str, Any] = REFUND,
    *,
    call_id: str = "c1",
    c: RunContext | None = None,
    name: str = "refund",
) -> ToolResult:
    return await gate.execute(ToolCall(call_id, name, json.dumps(args)), c or ctx())


# --- the store contract ----------------------------------------------------------------------


def req(**kw: Any) -> ApprovalRequest:
    base: dict[str, Any] = dict(
        id="apr_1",
        run_id="r",
        conversation_id="c",
        call_id="k",
        tool="t",
        version=None,
        arguments={"a": 1, "nested": {"x": ["ü", None, 1.5]}},
        args_hash="h",
        rule="rule",
        reason="why",
        requested_by="alice",
        tenant=None,
        created_at=100.0,
        expires_at=200.0,
    )
    base.update(kw)
    return ApprovalRequest(**base)


def test_store_add_get_find_list(store: ApprovalStore) -> None:
    a = store.add(req())
    assert a == req()
    again = store.add(req(id="apr_other"))  # same (run, call, hash): the existing one comes back
    assert again.id == "apr_1"
    b = store.add(req(id="apr_2", args_hash="h2", created_at=150.0))
    assert b.id == "apr_2"
    assert store.get("apr_1") == a
    assert store.get("nope") is None
    assert store.find("r", "k", "h2") == b
    assert store.find("r", "k", "zzz") is None
    assert store.find("other-run", "k", "h") is None
    assert [r.id for r in store.list()] == ["apr_2", "apr_1"]
    assert [r.id for r in store.list(limit=1)] == ["apr_2"]
    assert store.list("approved") == []
    assert store.get("apr_1").arguments == {"a": 1, "nested": {"x": ["ü", None, 1.5]}}  # type: ignore[union-attr]


def test_store_transition_is_conditional(store: ApprovalStore) -> None:
    store.add(req())
    assert store.transition("apr_1", ("approved",), "executing") is None
    assert store.transition("missing", ("pending",), "approved") is None
    assert store.transition("apr_1", ("pending",), "approved", unexpired_at=200.0) is None
    moved = store.transition(
        "apr_1",
        ("pending",),
        "approved",
        {"decided_by": "bob", "decided_at": 150.0},
        unexpired_at=199.0,
    )
    assert moved is not None
    assert (moved.status, moved.decided_by, moved.decided_at) == ("approved", "bob", 150.0)
    assert store.get("apr_1") == moved
    assert store.transition("apr_1", ("pending",), "denied") is None
    with pytest.raises(ValueError, match="cannot be changed"):
        store.transition("apr_1", ("approved",), "done", {"status": "x"})
    with pytest.raises(ValueError, match="cannot be changed"):
        store.transition("apr_1", ("approved",), "done", {"args_hash": "forged"})
    assert store.get("apr_1").status == "approved"  # type: ignore[union-attr]


def test_store_claim_race_has_one_winner(backend: Backend) -> None:
    """Eight workers, each with its own connection, try to claim one approved call at once."""
    setup = make_store(backend)
    setup.add(req(status="approved"))
    stores = [setup] * 8 if backend.kind == "memory" else [make_store(backend) for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    wins: list[str] = []

    def claim(i: int) -> None:
        barrier.wait()
        if stores[i].transition("apr_1", ("approved",), "executing", {"claimed_by": f"w{i}"}):
            wins.append(f"w{i}")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert setup.get("apr_1").claimed_by == wins[0]  # type: ignore[union-attr]
    for s in set(stores):
        s.close()


def test_sqlite_store_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    s1 = SqliteApprovalStore(path)
    s1.add(req())
    s1.transition("apr_1", ("pending",), "approved", {"decided_by": "bob"})
    s1.close()
    s2 = SqliteApprovalStore(path)
    got = s2.get("apr_1")
    assert got is not None and got.status == "approved" and got.decided_by == "bob"
    assert s2._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s2.close()


def test_pg_store_refuses_odd_table_names() -> None:
    with pytest.raises(ValueError, match="identifier"):
        PgApprovalStore("postgresql://unused", table="x; DROP TABLE y")


# --- masking and binding ---------------------------------------------------------------------


def test_masking_and_hash(gate: Gate) -> None:
    t = gate.toolset.get("refund")
    masked = mask_arguments(
        t, {**REFUND, "extra": {"password": "p", "card": "gold", "api_key": "k"}}
    )
    assert masked["invoice_id"] == "inv-7" and masked["amount"] == 120.0
    assert "4111111111111111" not in json.dumps(masked)
    assert masked["pin"] == "***"
    assert masked["extra"] == {"password": "***", "card": "***", "api_key": "***"}
    h = args_hash("refund", None, REFUND)
    assert h == args_hash("refund", None, dict(reversed(list(REFUND.items()))))  # order-free
    assert h != args_hash("refund", None, {**REFUND, "amount": 120.01})
    assert h != args_hash("refund", "2", REFUND)
    assert h != args_hash("refund_v2", None, REFUND)


# --- the approval flow through the gate ------------------------------------------------------


async def test_pause_approve_run_once(
    gate: Gate, approvals: Approvals, ledger: Ledger, clock: Clock
) -> None:
    first = await run(gate)
    assert first.error_kind == PENDING
    assert ledger.calls == []
    aid = first.approval_id
    request = approvals.get(aid)
    assert request.status == "pending"
    assert (request.run_id, request.call_id, request.tool) == ("run_1", "c1", "refund")
    assert (request.requested_by, request.tenant, request.rule) == ("alice", "acme", "refunds")
    assert request.args_hash == args_hash("refund", None, REFUND)
    assert request.arguments["pin"] == "***"
    assert "4111111111111111" not in json.dumps(request.arguments)
    assert request.expires_at == clock.now + 600
    # the message says exactly what will happen, without the secrets
    for fragment in (
        "`refund`",
        '"invoice_id": "inv-7"',
        '"amount": 120.0',
        "refunds need a person",
        aid,
    ):
        assert fragment in first.content
    assert "9999" not in first.content and "4111111111111111" not in first.content

    again = await run(gate)  # asked again before anyone decided: same request, still waiting
    assert again.error_kind == PENDING and again.approval_id == aid
    assert len(approvals.list()) == 1

    clock.advance(60)
    decided = approvals.approve(aid, by="bob", comment="ok")
    assert (decided.status, decided.decided_by, decided.comment) == ("approved", "bob", "ok")
    assert approvals.approve(aid, by="bob").status == "approved"  # approving twice is harmless

    done = await run(gate)
    assert done.error_kind is None, done.content
    assert done.content.startswith("refunded 120.0")
    assert ledger.calls == [{"invoice_id": "inv-7", "amount": 120.0}]
    final = approvals.get(aid)
    assert final.status == "done"
    assert final.result_summary == "refunded 120.0 on inv-7"
    assert final.claimed_by == process_owner()

    replay = await run(gate)  # the same call sent again (a resumed run, a retry): never twice
    assert replay.error_kind == "denied"
    assert "already carried out" in replay.content and "refunded 120.0 on inv-7" in replay.content
    assert approvals.approve(aid, by="carol").status == "done"
    assert len(ledger.calls) == 1


async def test_deny_with_comment(gate: Gate, approvals: Approvals, ledger: Ledger) -> None:
    aid = (await run(gate)).approval_id
    approvals.deny(aid, by="bob", comment="wrong customer")
    res = await run(gate)
    assert res.error_kind == "denied"
    assert "bob denied this call" in res.content and "wrong customer" in res.content
    assert ledger.calls == []
    assert approvals.deny(aid, by="bob").status == "denied"  # twice: harmless
    with pytest.raises(ApprovalConflictError, match="already denied by bob"):
        approvals.approve(aid, by="carol")
    assert ledger.calls == []


async def test_decision_errors(gate: Gate, approvals: Approvals) -> None:
    with pytest.raises(ApprovalNotFoundError, match="apr_nope"):
        approvals.approve("apr_nope", by="bob")
    with pytest.raises(ApprovalNotFoundError):
        approvals.deny("apr_nope")
    aid = (await run(gate)).approval_id
    approvals.approve(aid, by="bob")
    with pytest.raises(ApprovalConflictError, match="already approved"):
        approvals.deny(aid, by="carol")
    with pytest.raises(ApprovalError, match="longer than"):
        approvals.approve(aid, comment="x" * 5000)
    with pytest.raises(ApprovalError, match="unknown status"):
        approvals.list("waiting")


async def test_expiry_while_pending(
    gate: Gate, approvals: Approvals, ledger: Ledger, clock: Clock
) -> None:
    aid = (await run(gate)).approval_id
    clock.advance(601)
    with pytest.raises(ApprovalExpiredError, match="expired"):
        approvals.approve(aid, by="bob")
    res = await run(gate)
    assert res.error_kind == "denied"
    assert "expired" in res.content and "ask the user again" in res.content
    assert ledger.calls == []
    assert [r.id for r in approvals.list("expired")] == [aid]


async def test_expired_listing_marks_requests(
    gate: Gate, approvals: Approvals, clock: Clock
) -> None:
    aid = (await run(gate)).approval_id
    clock.advance(700)
    assert approvals.list("pending") == []
    assert approvals.get(aid).status == "expired"


async def test_approval_unused_for_too_long_expires(
    gate: Gate, approvals: Approvals, ledger: Ledger, clock: Clock
) -> None:
    aid = (await run(gate)).approval_id
    clock.advance(500)
    approved = approvals.approve(aid, by="bob")
    assert approved.expires_at == clock.now + 600  # valid for ttl after the decision
    clock.advance(599)
    clock.advance(2)
    res = await run(gate)
    assert res.error_kind == "denied" and "expired" in res.content
    assert ledger.calls == []
    assert approvals.get(aid).status == "expired"


async def test_approval_never_authorises_another_call(
    gate: Gate, approvals: Approvals, ledger: Ledger
) -> None:
    aid = (await run(gate)).approval_id
    approvals.approve(aid, by="bob")
    # different arguments than were shown, same call id
    other_args = await run(gate, {**REFUND, "amount": 99999.0})
    # same arguments, another call id
    other_call = await run(gate, call_id="c2")
    # same call id and arguments, another run
    other_run = await run(gate, c=ctx(run_id="run_2"))
    # another tool whose arguments happen to hash alike is another tool
    other_tool = await run(gate, {"x": 1}, name="explode")
    for res in (other_args, other_call, other_run, other_tool):
        assert res.error_kind == PENDING, res.content
        assert res.approval_id != aid
    assert ledger.calls == []
    assert len(approvals.list("pending")) == 4
    # the approved one still runs, once
    assert (await run(gate)).error_kind is None
    assert len(ledger.calls) == 1


async def test_replayed_approval_id_is_refused(
    gate: Gate, approvals: Approvals, ledger: Ledger
) -> None:
    """An approval id presented with a call (e.g. from a client) must belong to that call."""
    aid = (await run(gate)).approval_id
    approvals.approve(aid, by="bob")
    t = gate.toolset.get("refund")
    decision = PolicyDecision("approve", "refunds")
    cases = [
        (ToolCall("c1", "refund", "{}"), ctx(), {**REFUND, "amount": 1.0}),
        (ToolCall("c9", "refund", "{}"), ctx(), REFUND),
        (ToolCall("c1", "refund", "{}"), ctx(run_id="run_x"), REFUND),
    ]
    for tc, c, a in cases:
        inv = Invocation(tc, c, t, dict(t.validator.validate(a)), approval_id=aid)
        with pytest.raises(ToolDenied) as exc:
            await approvals.check(inv, decision)
        assert exc.value.code == "approval_mismatch"
    inv = Invocation(
        ToolCall("c1", "refund", "{}"),
        ctx(),
        t,
        dict(t.validator.validate(REFUND)),
        approval_id="apr_forged",
    )
    with pytest.raises(ToolDenied):
        await approvals.check(inv, decision)
    assert approvals.get(aid).status == "approved"  # nothing consumed the real approval
    good = Invocation(
        ToolCall("c1", "refund", "{}"),
        ctx(),
        t,
        dict(t.validator.validate(REFUND)),
        approval_id=aid,
    )
    await approvals.check(good, decision)
    assert approvals.get(aid).status == "executing"
    assert ledger.calls == []


async def test_concurrent_duplicates_run_once(
    gate: Gate, approvals: Approvals, ledger: Ledger
) -> None:
    aid = (await run(gate)).approval_id
    approvals.approve(aid, by="bob")
    results = await asyncio.gather(*(run(gate) for _ in range(6)))
    ok = [r for r in results if r.error_kind is None]
    assert len(ok) == 1
    assert len(ledger.calls) == 1
    for r in results:
        if r.error_kind is not None:
            assert r.error_kind == "denied"
            assert "will not run twice" in r.content


async def test_failed_tool_is_done_with_error_summary(
    gate: Gate, approvals: Approvals, ledger: Ledger
) -> None:
    aid = (await run(gate, {"x": 3}, name="explode")).approval_id
    approvals.approve(aid, by="bob")
    res = await run(gate, {"x": 3}, name="explode")
    assert res.error_kind == "terminal"
    r = approvals.get(aid)
    assert r.status == "done" and r.result_summary is not None
    assert r.result_summary.startswith("error (terminal)")
    again = await run(gate, {"x": 3}, name="explode")
    assert again.error_kind == "denied"
    assert len(ledger.calls) == 1


async def test_self_approval_can_be_forbidden(
    store: ApprovalStore, clock: Clock, gate: Gate
) -> None:
    strict = Approvals(store, allow_self_approval=False, clock=clock)
    aid = (await run(gate)).approval_id
    with pytest.raises(ApprovalError, match="someone other than the requester"):
        strict.approve(aid, by="alice")
    with pytest.raises(ApprovalError, match="someone other"):
        strict.approve(aid)
    assert strict.deny(aid, by="alice").status == "denied"  # withdrawing your own request is fine


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


async def test_executing_call_of_dead_process_is_interrupted(
    gate: Gate, approvals: Approvals, store: ApprovalStore, ledger: Ledger, clock: Clock
) -> None:
    aid = (await run(gate)).approval_id
    approvals.approve(aid, by="bob")
    host = process_owner().rsplit(":", 2)[0]
    store.transition(
        aid,
        ("approved",),
        "executing",
        {"claimed_by": f"{host}:{dead_pid()}:abc", "claimed_at": clock.now},
    )
    res = await run(gate)
    assert res.error_kind == "denied"
    assert "interrupted" in res.content and "check whether it took effect" in res.content
    assert approvals.get(aid).status == "interrupted"
    assert ledger.calls == []


async def test_recover(
    gate: Gate, approvals: Approvals, store: ApprovalStore, clock: Clock
) -> None:
    host = process_owner().rsplit(":", 2)[0]
    owners = {
        "dead": f"{host}:{dead_pid()}:abc",
        "same-pid-restarted": f"{host}:{os.getpid()}:oldtoken",
        "alive": f"{host}:{os.getppid()}:abc",
        "other-host": "elsewhere.example:1:abc",
        "me": process_owner(),
    }
    ids: dict[str, str] = {}
    for i, (label, owner) in enumerate(owners.items()):
        aid = (await run(gate, call_id=f"c{i}")).approval_id
        approvals.approve(aid, by="bob")
        store.transition(
            aid, ("approved",), "executing", {"claimed_by": owner, "claimed_at": clock.now}
        )
        ids[label] = aid
    moved = {r.id for r in approvals.recover()}
    assert moved == {ids["dead"], ids["same-pid-restarted"]}
    assert approvals.get(ids["alive"]).status == "executing"
    clock.advance(3600)
    assert {r.id for r in approvals.recover(stale_after_s=1800)} == {
        ids["alive"],
        ids["other-host"],
        ids["me"],
    }
    assert approvals.recover(all_owners=True) == []
    # a call that finishes after it was reported interrupted still records its real outcome
    t = gate.toolset.get("refund")
    inv = Invocation(ToolCall("c4", "refund", "{}"), ctx(), t, {}, approval_id=ids["me"])
    await approvals.complete(inv, ToolResult("c4", "refund", "refunded late"))
    assert approvals.get(ids["me"]).status == "done"


async def test_recover_all_owners(gate: Gate, approvals: Approvals, store: ApprovalStore) -> None:
    aid = (await run(gate)).approval_id
    approvals.approve(aid, by="bob")
    store.transition(aid, ("approved",), "executing", {"claimed_by": "elsewhere:1:x"})
    assert approvals.recover() == []
    assert [r.id for r in approvals.recover(all_owners=True)] == [aid]


# --- inline approval -------------------------------------------------------------------------


def inline_gate(approver: Any, ledger: Ledger) -> Gate:
    @tool(destructive=True, sensitive=("token",))
    def wipe(disk: str, token: str) -> str:
        """Wipe a disk."""
        ledger.calls.append({"disk": disk})
        return f"wiped {disk}"

    return Gate([wipe], approver=approver)


async def test_callback_approver_sync_and_async(ledger: Ledger) -> None:
    seen: list[ApprovalRequest] = []

    def ask(r: ApprovalRequest) -> bool:
        seen.append(r)
        return r.arguments["disk"] == "sdb"

    g = inline_gate(CallbackApprover(ask), ledger)
    ok = await g.execute(call("wipe", {"disk": "sdb", "token": "s3cret"}), RunContext())
    assert ok.error_kind is None and ledger.calls == [{"disk": "sdb"}]
    no = await g.execute(call("wipe", {"disk": "sda", "token": "s3cret"}), RunContext())
    assert no.error_kind == "denied" and len(ledger.calls) == 1
    assert seen[0].arguments["token"] == "***" and seen[0].tool == "wipe"

    async def ask_async(r: ApprovalRequest) -> tuple[bool, str | None]:
        await asyncio.sleep(0)
        return False, "not today"

    g2 = inline_gate(CallbackApprover(ask_async), ledger)
    res = await g2.execute(call("wipe", {"disk": "sdb", "token": "x"}), RunContext())
    assert res.error_kind == "denied" and "not today" in res.content
    assert len(ledger.calls) == 1


@pytest.mark.parametrize("answer", ["yes", 1, (True,), None, (1, "x")])
async def test_callback_approver_unclear_answers_deny(ledger: Ledger, answer: Any) -> None:
    g = inline_gate(CallbackApprover(lambda r: answer), ledger)
    res = await g.execute(call("wipe", {"disk": "sdb", "token": "x"}), RunContext())
    assert res.error_kind == "denied"
    assert ledger.calls == []


async def test_callback_approver_failure_denies(ledger: Ledger) -> None:
    def broken(r: ApprovalRequest) -> bool:
        raise OSError("no terminal")

    g = inline_gate(CallbackApprover(broken), ledger)
    res = await g.execute(call("wipe", {"disk": "sdb", "token": "x"}), RunContext())
    assert res.error_kind == "denied" and "did not run" in res.content
    assert ledger.calls == []


async def test_callback_prompts_one_at_a_time(ledger: Ledger) -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def ask(r: ApprovalRequest) -> bool:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        threading.Event().wait(0.02)
        with lock:
            active -= 1
        return True

    g = inline_gate(CallbackApprover(ask), ledger)
    calls = [call("wipe", {"disk": f"d{i}", "token": "x"}, id=f"c{i}") for i in range(4)]
    results = await g.execute_many(calls, RunContext())
    assert all(r.error_kind is None for r in results)
    assert peak == 1 and len(ledger.calls) == 4


# --- pause and resume through the agent ------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", pytest.param("pg", marks=pytest.mark.slow)])
def run_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    s: RunStore
    if request.param == "memory":
        s = MemoryRunStore()
    elif request.param == "sqlite":
        s = SqliteRunStore(tmp_path / "runs.db")
    else:
        s = PgRunStore(request.getfixturevalue("pg_dsn"), table=f"runs_{uuid.uuid4().hex[:12]}")
    yield s
    close: Callable[[], None] | None = getattr(s, "close", None)
    if close:
        close()


def test_run_store_contract(run_store: RunStore) -> None:
    state = {"messages": [{"role": "user", "content": "héllo"}], "z": 1, "a": {"b": [1, 2.5, None]}}
    run_store.save("run_b", state)
    run_store.save("run_a", {"x": 1})
    state["z"] = 2  # the saved copy does not change with the caller's dict
    loaded = run_store.load("run_b")
    assert loaded == {
        "messages": [{"role": "user", "content": "héllo"}],
        "z": 1,
        "a": {"b": [1, 2.5, None]},
    }
    assert list(loaded) == ["messages", "z", "a"]  # key order kept
    assert run_store.list_paused() == ["run_b", "run_a"]
    run_store.save("run_b", {"v": 2})
    assert run_store.load("run_b") == {"v": 2}
    assert run_store.list_paused() == ["run_b", "run_a"]  # an update keeps its place
    run_store.delete("run_b")
    run_store.delete("run_b")  # idempotent
    assert run_store.load("run_b") is None
    assert run_store.list_paused() == ["run_a"]
    with pytest.raises(RunStoreError, match="not JSON-serialisable"):
        run_store.save("bad", {"x": object()})
    with pytest.raises(RunStoreError, match="not JSON-serialisable"):
        run_store.save("bad", {"x": float("nan")})
    with pytest.raises(RunStoreError, match="non-empty"):
        run_store.save("", {})
    assert run_store.load("bad") is None


def test_open_run_store(tmp_path: Path) -> None:
    assert isinstance(open_run_store("memory:"), MemoryRunStore)
    s = open_run_store(f"sqlite:///{tmp_path / 'r.db'}")
    assert isinstance(s, SqliteRunStore)
    s.save("r", {"a": 1})
    s2 = open_run_store(str(tmp_path / "r.db"))
    assert s2.load("r") == {"a": 1}


async def test_agent_pauses_and_resumes_in_a_new_process_state(
    tmp_path: Path, ledger: Ledger
) -> None:
    """Pause, 'restart' (fresh stores, gate and agent on the same files), approve, resume."""
    db = tmp_path / "state.db"

    @tool(destructive=True)
    def refund(invoice_id: str, amount: float) -> str:
        """Refund an invoice."""
        ledger.calls.append({"invoice_id": invoice_id})
        return f"refunded {amount}"

    def agent(replies: list[Any]) -> tuple[Agent, Approvals]:
        ap = Approvals(SqliteApprovalStore(db))
        gate = Gate([refund], approver=ap)
        return Agent(ScriptedModel(replies), gate, run_store=SqliteRunStore(db)), ap

    a1, ap1 = agent([call("refund", {"invoice_id": "i1", "amount": 5}, id="call_1")])
    result = await a1.run("refund i1", ctx=RunContext(user_id="alice", run_id="run_z"))
    assert result.status == "paused"
    assert ledger.calls == []
    aid = result.pending[0]["approval_id"]
    assert SqliteRunStore(db).list_paused() == ["run_z"]

    a2, ap2 = agent(["Done: refunded."])
    ap2.approve(aid, by="bob")
    resumed = await a2.resume("run_z")
    assert resumed.status == "completed" and resumed.output == "Done: refunded."
    assert ledger.calls == [{"invoice_id": "i1"}]
    assert ap2.get(aid).status == "done"
    assert SqliteRunStore(db).list_paused() == []


# --- command line ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("pg", marks=pytest.mark.slow)])
async def test_cli(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    ledger: Ledger,
) -> None:
    # --db takes a SQLite path or a DSN (default table); the gate's approver writes there
    backend = (
        str(tmp_path / "cli.db") if kind == "sqlite" else str(request.getfixturevalue("pg_db"))
    )
    gate = make_gate(Approvals(open_approval_store(backend)), ledger)
    a1 = (await run(gate)).approval_id
    a2 = (await run(gate, call_id="c2")).approval_id

    def cg(*argv: str) -> tuple[int, str, str]:
        code = await_main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = cg("approvals", "list", "--db", backend)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATUS", "TOOL"]
    assert {a1, a2} <= {line.split()[0] for line in lines[1:]}
    assert "refunds" in out and "alice" in out

    code, out, _ = cg("approvals", "show", a1, "--db", backend)
    assert code == 0
    assert "status:       pending" in out and '"invoice_id": "inv-7"' in out
    assert "9999" not in out and "4111111111111111" not in out

    code, out, _ = cg(
        "approvals", "approve", a1, "--db", backend, "--by", "bob", "--comment", "fine"
    )
    assert (code, out.strip()) == (0, f"{a1}: approved (tool refund, by bob)")
    code, out, _ = cg("approvals", "deny", a2, "--db", backend, "--by", "bob", "--comment", "no")
    assert code == 0 and "denied" in out

    code, out, _ = cg("approvals", "list", "--status", "approved", "--json", "--db", backend)
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == [a1] and rows[0]["comment"] == "fine"

    code, _, err = cg("approvals", "approve", a2, "--db", backend, "--by", "bob")
    assert code == 1 and "already denied" in err
    code, _, err = cg("approvals", "show", "apr_missing", "--db", backend)
    assert code == 1 and "no approval request with id 'apr_missing'" in err

    assert (await run(gate)).error_kind is None
    assert (await run(gate, call_id="c2")).error_kind == "denied"
    assert len(ledger.calls) == 1
    code, out, _ = cg("approvals", "recover", "--db", backend)
    assert code == 0 and "0 call(s)" in out

    # the table shows every outcome, success included, under a header
    done = Approvals(open_approval_store(backend)).get(a1)
    assert done.status == "done" and done.result_summary
    code, out, _ = cg("approvals", "list", "--db", backend)
    header, *rows = out.splitlines()
    assert header.split()[-1] == "OUTCOME"
    row_a1 = next(r for r in rows if r.startswith(a1))
    assert " done " in row_a1 and row_a1.endswith(done.result_summary[:30].strip())
    row_a2 = next(r for r in rows if r.startswith(a2))
    assert " denied " in row_a2 and row_a2.endswith("no")


def await_main(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:  # argparse errors
        return int(exc.code or 0)


def test_cli_without_db(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALLGATE_APPROVALS_DB", raising=False)
    assert await_main(["approvals", "list"]) == 2
    assert "--db" in capsys.readouterr().err


def test_cli_bad_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert await_main(["approvals", "list", "--db", str(tmp_path / "no" / "such" / "dir.db")]) == 1
    assert "no SQLite database" in capsys.readouterr().err
    assert await_main(["approvals", "list", "--db", "mysql://x/y"]) == 1
    assert "cannot open approval store" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["list"], ["list", "--json"], ["show", "apr_1"], ["approve", "apr_1"], ["deny", "apr_1"]],
)
def test_cli_missing_store_is_an_error_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    typo = tmp_path / "aprovals.db"
    assert await_main(["approvals", *argv, "--db", str(typo)]) == 1
    err = capsys.readouterr().err
    assert "no SQLite database" in err and str(typo) in err
    assert not typo.exists() and list(tmp_path.iterdir()) == []


def test_cli_file_without_approvals_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = tmp_path / "runs.db"
    SqliteRunStore(other).close()  # a real SQLite file, but not an approvals store
    assert await_main(["approvals", "list", "--db", str(other)]) == 1
    assert "holds no approval requests" in capsys.readouterr().err
    import sqlite3

    with sqlite3.connect(other) as conn:  # and it was not turned into one
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "callgate_approvals" not in names


def test_cli_empty_list(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    SqliteApprovalStore(tmp_path / "a.db").close()
    assert await_main(["approvals", "list", "--db", str(tmp_path / "a.db")]) == 0
    assert "no approval requests" in capsys.readouterr().out


def test_cli_entry_point_runs_as_a_program(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    s = SqliteApprovalStore(db)
    s.add(req(expires_at=4_000_000_000.0))
    s.close()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "callgate.cli",
            "approvals",
            "approve",
            "apr_1",
            "--db",
            str(db),
            "--by",
            "ops",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "apr_1: approved (tool t, by ops)"


async def test_check_raises_approval_required_with_the_request(
    gate: Gate, approvals: Approvals
) -> None:
    t = gate.toolset.get("refund")
    inv = Invocation(ToolCall("c1", "refund", "{}"), ctx(), t, dict(t.validator.validate(REFUND)))
    with pytest.raises(ApprovalRequired) as exc:
        await approvals.check(inv, PolicyDecision("approve", "refunds", "refunds need a person"))
    assert isinstance(exc.value.request, ApprovalRequest)
    assert exc.value.approval_id == exc.value.request.id
    assert approvals.get(exc.value.approval_id).status == "pending"
    assert inv.approval_id is None  # nothing was authorised


def test_cli_by_defaults_to_the_login_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import getpass

    db = tmp_path / "a.db"
    s = SqliteApprovalStore(db)
    s.add(req(expires_at=4_000_000_000.0))
    s.close()
    assert await_main(["approvals", "deny", "apr_1", "--db", str(db)]) == 0
    assert capsys.readouterr().out.strip() == f"apr_1: denied (tool t, by {getpass.getuser()})"
