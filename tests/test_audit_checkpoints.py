"""Checkpoints: a cut tail is found without an anchor, a forged checkpoint is refused with the key,
and `verify` says what it cannot prove; verification streams; read-only commands never create a
log; replay never repeats a side effect by default."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callgate import Gate, RunContext, tool
from callgate.audit import (
    GENESIS,
    AuditEntry,
    AuditLog,
    NewRecord,
    open_audit_store,
    verify_entries,
)
from callgate.audit.record import checkpoint_mac
from callgate.audit.replay import replay
from callgate.cli import main as cli_main
from callgate.gate.protocols import CallRecord
from callgate.messages import ToolCall
from callgate.policy.engine import Policy, Rule

KEY = b"kept-outside-the-database"


def _ctx() -> RunContext[Any]:
    return RunContext(user_id="alice", conversation_id="conv_1", run_id="run_1")


def _record(i: int) -> CallRecord:
    return CallRecord(
        call_id=f"c{i}",
        tool="refund",
        version=None,
        ctx=_ctx(),
        arguments={"order_id": i},
        decision="allow",
        rule="r",
        error_kind=None,
        result_summary=f"refunded {i}",
        started_at=1000.0 + i,
        duration_s=0.01,
    )


def _fill(log: AuditLog, n: int) -> None:
    for i in range(1, n + 1):
        log.on_call(_record(i))


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.slow)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "audit.db")
    return str(request.getfixturevalue("pg_db"))


def _sql(target: str, statement: str, params: tuple[Any, ...] = ()) -> None:
    """Tamper with the database directly, as someone with write access would."""
    if target.startswith("postgresql://"):
        import psycopg

        table = "callgate_audit"
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(statement.format(t=table), params)  # type: ignore[arg-type]
        return
    with sqlite3.connect(target) as conn:
        conn.execute(statement.format(t="audit_log").replace("%s", "?"), params)


def _kinds(report: Any) -> list[tuple[str, int]]:
    return [(p.kind, p.seq) for p in report.problems]


def test_periodic_and_closing_checkpoints_catch_a_cut_tail(target: str) -> None:
    log = AuditLog.open(target, checkpoint_every=5)
    _fill(log, 12)
    log.close()  # a checkpoint of seq 12 on close, besides 5 and 10

    log = AuditLog.open(target)
    report = log.verify()
    assert report.ok and report.checkpoints == 3 and str(report.last_checkpoint).startswith("12:")
    assert "not signed" in report.summary()  # says plainly what it cannot prove
    _sql(target, "DELETE FROM {t} WHERE seq > 9")  # cut the tail, no anchor anywhere
    report = log.verify()
    assert _kinds(report) == [("truncated", 10)]
    assert "records 10..12 are missing" in report.problems[0].message
    log.close()


def test_without_checkpoints_verify_says_what_it_cannot_prove(tmp_path: Path) -> None:
    log = AuditLog.open(str(tmp_path / "a.db"), checkpoint_every=0)
    _fill(log, 3)
    report = log.verify()  # still open: nothing checkpointed yet
    assert report.ok and report.checkpoints == 0
    assert any("cannot be detected" in n and "--anchor" in n for n in report.notes)
    assert "note: no checkpoint and no anchor" in report.summary()
    log.close()


def test_signed_checkpoints_cannot_be_forged_without_the_key(target: str) -> None:
    log = AuditLog.open(target, checkpoint_every=4, checkpoint_key=KEY)
    _fill(log, 8)
    log.close()
    log = AuditLog.open(target, checkpoint_key=KEY)
    report = log.verify()
    assert report.ok and report.signed and report.checkpoints == 2
    assert "signatures match" in report.summary()

    # cut the tail AND rewrite the checkpoints to match, without the key
    _sql(target, "DELETE FROM {t} WHERE seq > 6")
    _sql(target, "DELETE FROM {t}_checkpoints WHERE seq > 6")
    head = log.head()  # the new head, as an attacker would read it
    assert head is not None and head.seq == 6
    _sql(
        target,
        "INSERT INTO {t}_checkpoints (seq, hash, ts, mac) VALUES (%s, %s, %s, %s)",
        (6, head.hash, 0.0, checkpoint_mac(b"guessed key", 6, head.hash)),
    )
    report = log.verify()
    assert ("checkpoint_forged", 6) in _kinds(report)
    assert not report.ok
    log.close()


def test_rewriting_the_whole_chain_is_caught_by_a_signed_checkpoint(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    log = AuditLog.open(db, checkpoint_every=3, checkpoint_key=KEY)
    _fill(log, 5)
    log.close()
    # re-seal every record with a changed decision: the chain itself is consistent again
    log = AuditLog.open(db)
    entries = list(log.store.iter_all())
    log.close()
    prev = GENESIS
    with sqlite3.connect(db) as conn:
        for e in entries:
            who = (e.conversation_id, e.run_id, e.user_id, e.tenant)
            forged = NewRecord(e.ts, e.kind, *who, e.tool, "deny", e.data).seal(e.seq, prev)
            conn.execute(
                "UPDATE audit_log SET decision = 'deny', prev_hash = ?, hash = ? WHERE seq = ?",
                (prev, forged.hash, e.seq),
            )
            prev = forged.hash
    report = AuditLog.open(db, checkpoint_key=KEY).verify()
    assert [k for k, _ in _kinds(report)] == ["checkpoint_mismatch", "checkpoint_mismatch"]


def _entries(n: int) -> Iterator[AuditEntry]:
    prev = GENESIS
    for i in range(1, n + 1):
        e = NewRecord(float(i), "call", "c", "r", "u", None, "t", "allow", {"i": i}).seal(i, prev)
        prev = e.hash
        yield e


def test_verify_streams_in_constant_memory() -> None:
    def peak(n: int) -> int:
        tracemalloc.start()
        report = verify_entries(_entries(n))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert report.ok and report.count == n
        return top

    small, large = peak(1_000), peak(8_000)
    # holding the log would grow ~8x; a streaming walk stays flat
    assert large < small * 1.5, (small, large)


@pytest.mark.parametrize(
    "argv",
    [
        ["verify"],
        ["verify", "--json"],
        ["head"],
        ["show"],
        ["stats"],
        ["replay", "conv_1", "--tools", "json:loads"],
    ],
)
def test_read_only_commands_refuse_a_missing_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    typo = tmp_path / "audti.db"
    assert cli_main(["audit", argv[0], "--db", str(typo), *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert "no SQLite database" in err and str(typo) in err
    assert not typo.exists() and list(tmp_path.iterdir()) == []


def test_read_only_commands_refuse_a_database_without_a_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "approvals.db"
    from callgate.approvals import open_approval_store

    open_approval_store(other).close()
    assert cli_main(["audit", "verify", "--db", str(other)]) == 2
    assert "holds no audit log" in capsys.readouterr().err


def test_cli_verify_checks_the_key_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "a.db")
    store = open_audit_store(db, checkpoint_every=2, checkpoint_key=KEY)
    log = AuditLog(store)
    _fill(log, 4)
    log.close()
    monkeypatch.setenv("CALLGATE_AUDIT_KEY", KEY.decode())
    assert cli_main(["audit", "verify", "--db", db, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["signed"] is True and payload["checkpoints"] == 2
    monkeypatch.setenv("CALLGATE_AUDIT_KEY", "wrong")
    assert cli_main(["audit", "verify", "--db", db]) == 1
    assert "checkpoint_forged" in capsys.readouterr().out


# ------------------------------------------------------------------------------- replay

WIRES: list[str] = []


@tool(destructive=True)
def wire_money(to: str, amount: int) -> str:
    """Send money to an account."""
    WIRES.append(f"{to}:{amount}")
    return f"sent {amount} to {to}"


@tool(read_only=True)
def balance(account: str) -> str:
    """Read an account's balance."""
    return f"{account}: {100 - 10 * len(WIRES)}"


TOOLS = [wire_money, balance]
GATE = Gate(TOOLS, policy=Policy([Rule("all", "allow", tools="*")]))


@pytest.fixture
def recorded(tmp_path: Path) -> str:
    """A conversation that read a balance, then wired money once."""
    db = str(tmp_path / "a.db")
    WIRES.clear()
    log = AuditLog.open(db)
    gate = Gate(TOOLS, policy=GATE.policy, observers=[log])
    for c in (
        ToolCall("c1", "balance", '{"account": "a"}'),
        ToolCall("c2", "wire_money", '{"to": "bob", "amount": 10}'),
    ):
        res = asyncio.run(gate.execute(c, _ctx()))
        assert res.error_kind is None, res.content
    log.close()
    assert WIRES == ["bob:10"]
    return db


def test_replay_never_repeats_a_side_effect_by_default(
    recorded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = f"{__name__}:GATE"
    assert cli_main(["audit", "replay", "conv_1", "--db", recorded, "--tools", spec]) == 1
    out = capsys.readouterr().out
    assert WIRES == ["bob:10"]  # written once, not twice
    # the read-only balance ran again (and sees today's balance: a difference); the wire
    # answered from the record
    assert "DIFF c1 balance (ran again)" in out and "same c2 wire_money\n" in out + "\n"
    assert "1 tool call(s) ran again" in out


def test_replay_refuses_to_name_a_tool_with_side_effects(
    recorded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["audit", "replay", "conv_1", "--db", recorded, "--tools", f"{__name__}:GATE"]
    assert cli_main([*argv, "--rerun", "wire_money"]) == 2
    assert "not annotated read_only" in capsys.readouterr().err
    assert WIRES == ["bob:10"]


def test_replay_reruns_side_effects_only_when_asked_and_warns(
    recorded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["audit", "replay", "conv_1", "--db", recorded, "--tools", f"{__name__}:GATE"]
    cli_main([*argv, "--rerun-side-effects"])
    out, err = capsys.readouterr()
    assert "WARNING" in err and "second time" in err
    assert WIRES == ["bob:10", "bob:10"]
    assert "c2 wire_money (ran again)" in out


def test_replay_library_default_is_safe_too(recorded: str) -> None:
    log = AuditLog.open(recorded, must_exist=True)
    report = asyncio.run(replay(log, "conv_1", GATE))
    assert WIRES == ["bob:10"]
    assert {c.call_id: c.reran for c in report.calls} == {"c1": True, "c2": False}
    report = asyncio.run(replay(log, "conv_1", GATE, use_recorded_results=True))
    assert not any(c.reran for c in report.calls)
    log.close()


def test_any_single_tampering_of_a_streamed_chain_is_reported() -> None:
    """Seeded attacker: edit, delete (not the tail), swap or insert one record anywhere in a
    chain longer than the walk's windows; verify must never call the result intact."""
    import random

    rng = random.Random(1234)
    base = list(_entries(300))
    assert verify_entries(iter(base)).ok
    for trial in range(60):
        rows = list(base)
        i = rng.randrange(0, len(rows) - 2)
        op = ("edit", "delete", "swap", "insert")[trial % 4]
        if op == "edit":
            e = rows[i]
            rows[i] = AuditEntry(**{**e.to_dict(), "decision": "deny"})
        elif op == "delete":
            del rows[i]
        elif op == "swap":
            rows[i], rows[i + 1] = rows[i + 1], rows[i]
        else:
            fake = NewRecord(0.0, "call", None, None, "mallory", None, "t", "allow", {})
            rows.insert(i + 1, fake.seal(rows[i].seq + 1, rows[i].hash))
        report = verify_entries(iter(rows))
        assert not report.ok, (op, i)
