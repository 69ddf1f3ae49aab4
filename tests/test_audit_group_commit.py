"""Group commit of the audit log: records leave the event loop, concurrent calls share one
commit, `flush` is a durability promise that survives SIGKILL, one bad record does not cost
its batch, and the stored text is hashed exactly as `NewRecord.seal` would."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from callgate import Agent, Gate, RunContext, tool
from callgate.audit.log import AuditLog
from callgate.audit.record import AuditEntry, NewRecord
from callgate.audit.stores._sql import seal_once
from callgate.audit.stores.sqlite import SqliteAuditStore
from callgate.audit.writer import GroupWriter
from callgate.gate.protocols import CallRecord
from callgate.testing import ScriptedModel, call


def _rec(i: int, ctx: RunContext | None = None, blob: str = "x") -> CallRecord:
    return CallRecord(
        call_id=f"c{i}", tool="t", version=None, ctx=ctx or RunContext(user_id="u"),
        arguments={"i": i, "blob": blob}, decision="allow", rule="r", error_kind=None,
        result_summary="ok", started_at=0.0, duration_s=0.0,
    )  # fmt: skip


@tool(read_only=True, inline=True)
def add(a: int, b: int) -> int:
    """Add."""
    return a + b


async def test_concurrent_calls_share_commits(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path / "a.db")
    assert log._writer is not None
    g = Gate([add], observers=[log])
    ctx = RunContext(user_id="u")
    n = 400
    await asyncio.gather(
        *(g.execute(call("add", {"a": i, "b": 1}, id=f"c{i}"), ctx) for i in range(n))
    )
    await log.aflush()
    assert log._writer.pending == 0
    batches = log._writer.batches
    assert 1 <= batches <= n // 10, batches  # far fewer commits than calls
    rows = log.entries(kind="call")
    assert sorted(r.data["call_id"] for r in rows) == sorted(f"c{i}" for i in range(n))
    assert log.verify().ok
    log.close()


async def test_a_finished_run_is_durable_for_another_reader(tmp_path: Path) -> None:
    """The agent flushes its observers before it reports a run finished: a second connection
    (another process, a CLI) reads every record of it at once."""
    db = tmp_path / "a.db"
    log = AuditLog.open(db)
    log._writer.linger_s = 0.5  # type: ignore[union-attr]  # would hold records half a second
    model = ScriptedModel([call("add", {"a": 1, "b": 2}, id="a1"), "done"])
    agent = Agent(model, Gate([add], observers=[log]))
    result = await agent.run("add")
    assert result.output == "done"
    other = AuditLog.open(db)
    kinds = [e.kind for e in other.store.iter_all()]
    assert kinds.count("call") == 1 and kinds.count("turn") == 2
    other.close()
    log.close()


def test_records_keep_their_order_with_events_written_at_once(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path / "a.db")
    log.on_call(_rec(1))
    entry = log.record_event("note", {"n": 1})  # written at once, after the queued call
    log.on_call(_rec(2))
    assert entry is not None and entry.seq == 2
    assert [e.kind for e in log.entries()] == ["call", "note", "call"]
    log.close()


def test_close_commits_everything(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    log = AuditLog.open(db)
    log._writer.linger_s = 5.0  # type: ignore[union-attr]
    for i in range(100):
        log.on_call(_rec(i))
    log.close()
    again = AuditLog.open(db)
    assert len(again.entries()) == 100 and again.verify().ok
    again.close()


def test_strict_and_memory_logs_write_at_once(tmp_path: Path) -> None:
    assert AuditLog.open(tmp_path / "s.db", strict=True)._writer is None
    assert AuditLog.open(":memory:")._writer is None
    assert AuditLog.open(tmp_path / "g.db", group_commit=False)._writer is None


class _Picky(SqliteAuditStore):
    """Refuses any transaction holding the record of call "c2" (like a record the database
    cannot take)."""

    def _write(self, records: Sequence[NewRecord]) -> list[AuditEntry]:
        if any(r.data.get("call_id") == "c2" for r in records):
            raise ValueError("refused")
        return super()._write(records)


def test_one_bad_record_does_not_cost_its_batch(tmp_path: Path) -> None:
    log = AuditLog(_Picky(tmp_path / "a.db"))
    assert log._writer is not None
    log._writer.linger_s = 0.3  # one batch for all three
    for i in (1, 2, 3):
        log.on_call(_rec(i))
    log.flush()
    assert log.failures == 1
    assert [e.data["call_id"] for e in log.entries()] == ["c1", "c3"]
    assert log.verify().ok
    log.close()


def test_bounded_queue_waits_for_room(tmp_path: Path) -> None:
    store = SqliteAuditStore(tmp_path / "a.db")
    log = AuditLog(store)
    w = log._writer
    assert w is not None
    w.max_batch, w.max_pending = 5, 10
    for i in range(200):
        log.on_call(_rec(i))
        assert w.pending <= 10 + 5  # queued plus the batch being written
    log.close()


def test_single_encoding_seal_equals_seal() -> None:
    """The store hashes the text it stores; verification recomputes the hash from the stored
    row with `canonical_json` of the body, so the two must agree on every record."""
    rng = random.Random(5)
    texts = [None, "", 'é\u2028"\\ x\n\t', "emoji 😀", "plain", "ünï"]
    values = [*texts, 0, -5, 2**70, 1.5, 1e-7, 1e300, True, False, [1, "a", None], {"z": 1}]
    for _ in range(2000):
        record = NewRecord(
            rng.choice([0.0, 1795982652.5881522, 1.0, 123456789.123, 5e-324]),
            rng.choice(["call", "turn", "é"]),
            *(rng.choice(texts) for _ in range(6)),  # type: ignore[arg-type]
            data={
                rng.choice(["k", "é", "a b", "z"]) + str(i): rng.choice(values) for i in range(5)
            },
        )
        seq = rng.randint(1, 10**12)
        fast, data_json = seal_once(record, seq, "ab" * 32)
        assert fast == record.seal(seq, "ab" * 32)
        assert fast.hash == fast.computed_hash()


_CHILD = textwrap.dedent(
    """
    import sys
    from callgate.audit.log import AuditLog
    from callgate.context import RunContext
    from callgate.gate.protocols import CallRecord

    log = AuditLog.open(sys.argv[1])
    ctx = RunContext(user_id="crash", conversation_id="conv_crash", request="go")
    i = int(sys.argv[2])
    while True:
        for _ in range(40):
            i += 1
            log.on_call(CallRecord(
                call_id=f"c{i}", tool="write", version=None, ctx=ctx,
                arguments={"i": i, "blob": "x" * 4000}, decision="allow", rule="r",
                error_kind=None, result_summary="ok " * 100, started_at=0.0, duration_s=0.0,
            ))
        log.flush()
        print(i, flush=True)  # every record up to i is durable now
    """
)


def _count(target: str) -> int:
    log = AuditLog.open(target)
    try:
        head = log.head()
        return head.seq if head else 0
    finally:
        log.close()


@pytest.mark.slow
def test_sigkill_during_group_commit_sqlite(tmp_path: Path) -> None:
    _kill_while_committing(str(tmp_path / "crash.db"))


@pytest.mark.slow
def test_sigkill_during_group_commit_postgres(pg_db: str) -> None:
    _kill_while_committing(pg_db)


async def test_postgres_batches(pg_db: str) -> None:
    log = AuditLog.open(pg_db)
    assert log._writer is not None
    g = Gate([add], observers=[log])
    ctx = RunContext(user_id="u")
    await asyncio.gather(
        *(g.execute(call("add", {"a": i, "b": 1}, id=f"c{i}"), ctx) for i in range(150))
    )
    await log.aflush()
    assert log._writer.batches < 150 // 5
    assert len(log.entries(kind="call")) == 150 and log.verify().ok
    log.close()


def _kill_while_committing(target: str) -> None:
    """Killed while batches are being written: every record reported durable is there, the
    chain verifies, no record is half-written, and the log continues after the crash."""
    rng = random.Random(11)
    for _ in range(3):
        before = _count(target)
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, target, str(before)],
            stdout=subprocess.PIPE,
            env=os.environ.copy(),
        )
        assert proc.stdout is not None
        try:
            for _ in range(3):  # a few flushes in, then a random moment
                assert proc.stdout.readline().strip()
            time.sleep(rng.uniform(0.0, 0.05))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        reported = [int(x) for x in proc.stdout.read().split()]
        durable = max(reported, default=0)
        log = AuditLog.open(target)
        report = log.verify()
        assert report.ok, report.summary()
        rows = log.entries()
        assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
        assert len(rows) >= durable >= before + 120
        assert all(len(r.data["arguments"]["blob"]) == 4000 for r in rows)
        assert [r.data["call_id"] for r in rows] == [f"c{i}" for i in range(1, len(rows) + 1)]
        log.close()


class _ListStore:
    def __init__(self) -> None:
        self.records: list[NewRecord] = []

    def append_many(self, records: Sequence[NewRecord]) -> list[AuditEntry]:
        self.records.extend(records)
        return []


def _child_writes(writer: GroupWriter, store: _ListStore) -> None:
    writer.put(_new("child"))
    assert writer.flush(5.0)
    assert [r.kind for r in store.records] == ["parent", "child"]
    writer.close()


def _new(kind: str) -> NewRecord:
    return NewRecord(0.0, kind, None, None, None, None, None, None, {})


def test_writer_keeps_working_in_a_forked_child() -> None:
    """The parent's writer thread does not survive a fork: the child starts its own instead of
    waiting forever for a thread that is not there."""
    import multiprocessing as mp

    store = _ListStore()
    writer = GroupWriter(store, lambda batch, exc: None)
    writer.put(_new("parent"))
    assert writer.flush(5.0)
    proc = mp.get_context("fork").Process(target=_child_writes, args=(writer, store))
    proc.start()
    proc.join(20)
    assert proc.exitcode == 0
    writer.close()
