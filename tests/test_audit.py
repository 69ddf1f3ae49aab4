"""Audit log: redacted records, hash chain, tamper detection (SQLite, PostgreSQL), CLI, replay."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callgate.audit import (
    GENESIS,
    AuditLog,
    Head,
    NewRecord,
    chain_hash,
    open_audit_store,
    verify_entries,
)
from callgate.audit.replay import replay
from callgate.cli import main as cli_main
from callgate.context import RunContext
from callgate.gate.protocols import ArgumentSource, CallRecord, ProvenanceReport, TurnRecord
from callgate.messages import ToolCall

# ----------------------------------------------------------------------------- backends


@dataclass
class Backend:
    name: str
    target: str
    table: str
    sql: Callable[[str, tuple[Any, ...]], None]


def _sqlite_backend(path: Path) -> Backend:
    import sqlite3

    def run(sql: str, params: tuple[Any, ...] = ()) -> None:
        conn = sqlite3.connect(path)
        with conn:
            conn.execute(sql.replace("%s", "?"), params)
        conn.close()

    return Backend("sqlite", str(path), "audit_log", run)


def _pg_backend(dsn: str) -> Backend:
    import psycopg

    def run(sql: str, params: tuple[Any, ...] = ()) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql, params)  # type: ignore[arg-type]

    return Backend("pg", dsn, "callgate_audit", run)


@pytest.fixture(params=["sqlite", "pg"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return _sqlite_backend(tmp_path / "audit.db")
    return _pg_backend(request.getfixturevalue("pg_db"))


@pytest.fixture
def audit(backend: Backend) -> Iterator[AuditLog]:
    log = AuditLog.open(backend.target, strict=True)
    yield log
    log.close()


def _ctx(conv: str = "conv_1", user: str = "alice") -> RunContext:
    return RunContext(
        user_id=user,
        roles={"support"},
        tenant="acme",
        request="refund order 42; my password=hunter2",
        conversation_id=conv,
        run_id="run_1",
    )


def _call_record(i: int, ctx: RunContext, **kw: Any) -> CallRecord:
    base: dict[str, Any] = dict(
        call_id=f"c{i}",
        tool="refund",
        version="2",
        ctx=ctx,
        arguments={"order_id": i, "card": "4111 1111 1111 1111", "note": f"n{i}"},
        decision="allow",
        rule="default:other",
        error_kind=None,
        result_summary=f"refunded {i}",
        started_at=1000.0 + i,
        duration_s=0.01,
        sensitive=frozenset({"note"}),
    )
    base.update(kw)
    return CallRecord(**base)


def _fill(log: AuditLog, n: int = 8) -> None:
    ctx = _ctx()
    for i in range(1, n + 1):
        log.on_call(_call_record(i, ctx))


# ----------------------------------------------------------------------------- records


def test_call_record_is_redacted_and_chained(audit: AuditLog) -> None:
    ctx = _ctx()
    audit.on_call(
        _call_record(
            1,
            ctx,
            result_summary="token=abc123secret ok",
            approval_id="apr_7",
            provenance=ProvenanceReport(
                (ArgumentSource("to", "token=abc123secret", "untrusted"),), effect="approve"
            ),
        )
    )
    audit.on_turn(
        TurnRecord(
            ctx,
            1,
            "m",
            "calling refund",
            [ToolCall("c1", "refund", '{"password": "pw12345"}')],
            "tool_calls",
            10,
            5,
            0.001,
            0.2,
        )
    )
    audit.record_event("approval", {"approval_id": "apr_7", "status": "approved", "by": "bob"}, ctx)
    rows = audit.entries()
    assert [r.kind for r in rows] == ["call", "turn", "approval"]
    assert [r.seq for r in rows] == [1, 2, 3]
    call = rows[0]
    assert call.user_id == "alice" and call.tenant == "acme" and call.tool == "refund"
    assert call.decision == "allow" and call.data["rule"] == "default:other"
    assert call.data["roles"] == ["support"]
    assert call.data["version"] == "2"
    assert call.data["arguments"]["card"] == "****1111"
    assert call.data["arguments"]["note"] == "***"  # the tool's sensitive parameter
    assert call.data["arguments"]["order_id"] == 1
    assert call.data["approval_id"] == "apr_7"
    assert call.data["state"]["provenance"]["arguments"][0]["source"] == "untrusted"
    assert "hunter2" not in json.dumps(call.data) and "abc123secret" not in json.dumps(call.data)
    assert "pw12345" not in rows[1].data["tool_calls"][0]["arguments"]
    assert rows[2].data["status"] == "approved"
    assert rows[0].prev_hash == GENESIS
    assert rows[1].prev_hash == rows[0].hash
    assert rows[0].hash == chain_hash(GENESIS, rows[0].body())
    assert audit.verify().ok


def test_result_summary_is_truncated(audit: AuditLog) -> None:
    audit.on_call(_call_record(1, _ctx(), result_summary="x" * 2000))
    summary = audit.entries()[0].data["result_summary"]
    assert summary.startswith("x" * 500) and "more chars" in summary and len(summary) < 600


def test_filters(audit: AuditLog) -> None:
    a, b = _ctx("conv_a", "alice"), _ctx("conv_b", "bob")
    audit.on_call(_call_record(1, a))
    audit.on_call(_call_record(2, b, tool="delete_user", decision="deny", error_kind="denied"))
    audit.on_call(_call_record(3, a, decision="approve"))
    assert [e.seq for e in audit.entries(conversation_id="conv_a")] == [1, 3]
    assert [e.seq for e in audit.entries(user_id="bob")] == [2]
    assert [e.seq for e in audit.entries(tool="delete_user")] == [2]
    assert [e.seq for e in audit.entries(decision="approve")] == [3]
    assert [e.seq for e in audit.entries(limit=2, newest_first=True)] == [3, 2]


def test_write_failure_is_counted_not_raised(tmp_path: Path) -> None:
    log = AuditLog.open(str(tmp_path / "a.db"))
    log.store.close()
    log.on_call(_call_record(1, _ctx()))  # must not raise: observers never break calls
    assert log.flush(5.0)  # group commit: the failure is known once the batch was tried
    assert log.failures == 1


# ----------------------------------------------------------------------------- tampering


def _problems(log: AuditLog, anchor: Head | None = None) -> list[tuple[str, int]]:
    return [(p.kind, p.seq) for p in log.verify(anchor).problems]


def _shift(backend: Backend, from_seq: int, by: int) -> None:
    t = backend.table
    backend.sql(f"UPDATE {t} SET seq = -(seq + %s) WHERE seq >= %s", (by, from_seq))
    backend.sql(f"UPDATE {t} SET seq = -seq WHERE seq < 0", ())


def test_edit_arguments_is_reported(audit: AuditLog, backend: Backend) -> None:
    _fill(audit)
    backend.sql(
        f"UPDATE {backend.table} SET data = replace(data, '\"order_id\":5', '\"order_id\":6') "
        "WHERE seq = 5",
        (),
    )
    assert audit.entries()[4].data["arguments"]["order_id"] == 6
    assert _problems(audit) == [("edited", 5)]


def test_edit_column_is_reported(audit: AuditLog, backend: Backend) -> None:
    _fill(audit)
    backend.sql(f"UPDATE {backend.table} SET decision = 'deny' WHERE seq = 3", ())
    assert _problems(audit) == [("edited", 3)]


def test_rewritten_and_rehashed_record_is_reported(audit: AuditLog, backend: Backend) -> None:
    _fill(audit)
    e = audit.entries()[4]
    forged = NewRecord(
        e.ts,
        e.kind,
        e.conversation_id,
        e.run_id,
        e.user_id,
        e.tenant,
        e.tool,
        "deny",
        e.data,
    ).seal(5, e.prev_hash)
    backend.sql(
        f"UPDATE {backend.table} SET decision = 'deny', hash = %s WHERE seq = 5", (forged.hash,)
    )
    assert _problems(audit) == [("replaced", 5)]


def test_delete_is_reported(audit: AuditLog, backend: Backend) -> None:
    _fill(audit)
    backend.sql(f"DELETE FROM {backend.table} WHERE seq = 5", ())
    report = audit.verify()
    assert [(p.kind, p.seq) for p in report.problems] == [("deleted", 6)]
    assert "record 5 was deleted" in report.problems[0].message


def test_delete_with_renumbering_is_reported(audit: AuditLog, backend: Backend) -> None:
    _fill(audit)
    backend.sql(f"DELETE FROM {backend.table} WHERE seq IN (4, 5)", ())
    _shift(backend, 6, -2)
    report = audit.verify()
    assert [(p.kind, p.seq) for p in report.problems] == [("deleted", 4)]
    assert "records 4..5 were deleted" in report.problems[0].message


def test_delete_first_record_is_reported(audit: AuditLog, backend: Backend) -> None:
    _fill(audit)
    backend.sql(f"DELETE FROM {backend.table} WHERE seq = 1", ())
    assert _problems(audit) == [("deleted", 2)]


def test_forged_insert_is_reported(audit: AuditLog, backend: Backend) -> None:
    _fill(audit)
    rows = audit.entries()
    _shift(backend, 5, 1)
    forged = NewRecord(
        rows[3].ts + 0.5,
        "call",
        "conv_1",
        "run_1",
        "alice",
        "acme",
        "refund",
        "allow",
        {"call_id": "forged", "arguments": {"order_id": 999}},
    ).seal(5, rows[3].hash)  # a perfectly sealed record chained onto seq 4
    backend.sql(
        f"INSERT INTO {backend.table} (seq, ts, kind, conversation_id, run_id, user_id, tenant, "
        "tool, decision, data, prev_hash, hash) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
        (
            5,
            forged.ts,
            "call",
            "conv_1",
            "run_1",
            "alice",
            "acme",
            "refund",
            "allow",
            json.dumps(forged.data, sort_keys=True, separators=(",", ":")),
            forged.prev_hash,
            forged.hash,
        ),
    )
    assert _problems(audit) == [("inserted", 5)]


def test_clumsy_insert_is_reported(audit: AuditLog, backend: Backend) -> None:
    _fill(audit)
    backend.sql(
        f"INSERT INTO {backend.table} (seq, ts, kind, data, prev_hash, hash) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (100, 1.0, "call", "{}", "f" * 64, "e" * 64),
    )
    assert _problems(audit) == [("inserted", 100)]


def test_reorder_is_reported(audit: AuditLog, backend: Backend) -> None:
    _fill(audit)
    t = backend.table
    backend.sql(f"UPDATE {t} SET seq = -1 WHERE seq = 5", ())
    backend.sql(f"UPDATE {t} SET seq = 5 WHERE seq = 6", ())
    backend.sql(f"UPDATE {t} SET seq = 6 WHERE seq = -1", ())
    problems = _problems(audit)
    assert problems and {k for k, _ in problems} == {"reordered"}
    assert {s for _, s in problems} <= {5, 6} and 5 in {s for _, s in problems}


def test_truncated_tail_needs_the_anchor(audit: AuditLog, backend: Backend) -> None:
    _fill(audit)
    head = audit.head()
    assert head is not None and head.seq == 8
    backend.sql(f"DELETE FROM {backend.table} WHERE seq >= 7", ())
    assert audit.verify().ok  # without an anchor a cut tail looks like a shorter log
    assert _problems(audit, head) == [("truncated", 7)]
    # the anchor still matches after new appends
    fresh = AuditLog.open(backend.target)
    _fill(fresh, 2)
    assert fresh.verify(fresh.head()).ok
    fresh.close()


def test_intact_log_with_anchor_and_more_records(audit: AuditLog) -> None:
    _fill(audit, 3)
    head = audit.head()
    _fill(audit, 3)
    assert audit.verify(head).ok
    assert audit.verify(Head(2, "0" * 64)).problems[0].kind == "anchor_mismatch"


def test_verify_entries_pure_on_empty() -> None:
    report = verify_entries([])
    assert report.ok and report.count == 0 and report.head is None


# ------------------------------------------------------------------- concurrent writers


def _writer(target: str, n: int, tag: str) -> None:
    log = AuditLog.open(target, strict=True)
    ctx = _ctx(conv=f"conv_{tag}")
    for i in range(n):
        log.on_call(_call_record(i, ctx))
    log.close()


def test_concurrent_processes_never_fork_the_chain(backend: Backend) -> None:
    AuditLog.open(backend.target).close()  # create the table once
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(backend.target, 40, str(k))) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    log = AuditLog.open(backend.target)
    rows = log.entries()
    assert [r.seq for r in rows] == list(range(1, 121))
    assert log.verify().ok
    log.close()


# ----------------------------------------------------------------------------- CLI


def test_cli_verify_show_head(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "a.db"
    log = AuditLog.open(str(db))
    _fill(log, 4)
    log.on_call(
        _call_record(9, _ctx("conv_x", "bob"), tool="wipe", decision="deny", error_kind="denied")
    )
    log.close()

    assert cli_main(["audit", "verify", "--db", str(db)]) == 0
    assert "OK: 5 records" in capsys.readouterr().out

    assert cli_main(["audit", "head", "--db", str(db)]) == 0
    head = capsys.readouterr().out.strip()
    assert head.startswith("5:")

    assert cli_main(["audit", "show", "--db", str(db), "--user", "bob", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["tool"] == "wipe"

    assert cli_main(["audit", "show", "--db", str(db), "--decision", "allow", "--limit", "2"]) == 0
    header, *out = capsys.readouterr().out.strip().splitlines()
    assert header.split() == [
        *("SEQ", "TIME", "KIND", "USER", "TOOL", "DECISION", "OUTCOME", "ARGUMENTS")
    ]
    assert len(out) == 2 and out[0].split()[0] == "3" and "refund" in out[0]
    assert out[0].split()[7] == "ok"  # success is an outcome too, not a blank

    assert cli_main(["audit", "show", "--db", str(db), "--user", "bob"]) == 0
    _, row = capsys.readouterr().out.strip().splitlines()
    assert row.split()[5:8] == ["wipe", "deny", "denied"]

    assert cli_main(["audit", "stats", "--db", str(db), "--json"]) == 0
    tools = json.loads(capsys.readouterr().out)["tools"]
    by_tool = {k: [v["calls"], v["outcomes"].get("ok", 0), v["errors"]] for k, v in tools.items()}
    assert by_tool == {"refund": [4, 4, 0], "wipe": [1, 0, 1]}

    _sqlite_backend(db).sql(
        "UPDATE audit_log SET data = replace(data, '\"order_id\":2', '\"order_id\":3') WHERE seq=2",
        (),
    )
    assert cli_main(["audit", "verify", "--db", str(db)]) == 1
    out = capsys.readouterr().out
    assert "TAMPERED" in out and "seq 2: edited" in out

    assert cli_main(["audit", "verify", "--db", str(db), "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is False and payload["problems"][0]["seq"] == 2

    _sqlite_backend(db).sql("DELETE FROM audit_log WHERE seq >= 4", ())
    assert cli_main(["audit", "verify", "--db", str(db), "--anchor", head]) == 1
    assert "truncated" in capsys.readouterr().out


def test_cli_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = os.environ.pop("CALLGATE_AUDIT_DB", None)
    try:
        assert cli_main(["audit", "verify"]) == 2
        assert "--db" in capsys.readouterr().err
        db = str(tmp_path / "x.db")
        AuditLog.open(db).close()
        assert cli_main(["audit", "verify", "--db", db, "--anchor", "nonsense"]) == 2
        assert "SEQ:SHA256HEX" in capsys.readouterr().err
        assert cli_main(["audit", "replay", "nope", "--db", db, "--tools", "no_such_mod:x"]) == 2
        assert "cannot load" in capsys.readouterr().err
    finally:
        if env is not None:
            os.environ["CALLGATE_AUDIT_DB"] = env


def test_pg_dsn_via_cli(pg_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    log = AuditLog.open(pg_db)
    _fill(log, 3)
    log.close()
    assert cli_main(["audit", "verify", "--db", pg_db]) == 0
    assert "OK: 3 records" in capsys.readouterr().out
    assert type(open_audit_store(pg_db)).__name__ == "PgAuditStore"


# ----------------------------------------------------------------------------- replay


def test_replay_reports_changed_outcomes(tmp_path: Path) -> None:
    import asyncio

    from callgate.gate.core import Gate
    from callgate.policy.engine import DefaultPolicy
    from callgate.tools.definition import tool

    sent: list[str] = []

    @tool
    def lookup(order_id: int) -> str:
        """Look up an order."""
        return f"order {order_id}: 2 items"

    @tool
    def refund(order_id: int, amount: float) -> str:
        """Refund an order."""
        sent.append(f"refund {order_id}")
        return f"refunded {amount}"

    log = AuditLog.open(str(tmp_path / "a.db"))
    gate = Gate([lookup, refund], observers=[log])
    ctx = RunContext(user_id="alice", request="refund order 7", conversation_id="conv_r")
    calls = [
        ToolCall("c1", "lookup", '{"order_id": 7}'),
        ToolCall("c2", "refund", '{"order_id": 7, "amount": 5}'),
        ToolCall("c3", "refund", '{"order_id": "x"}'),
    ]
    for turn, c in enumerate(calls, start=1):
        ctx.turn = turn
        log.on_turn(TurnRecord(ctx, turn, "m", "", [c], "tool_calls", 1, 1, 0.0, 0.1))
        asyncio.run(gate.execute(c, ctx))
    assert [e.kind for e in log.entries()] == ["turn", "call"] * 3
    assert len(sent) == 1

    # the same gate: nothing differs
    same = asyncio.run(replay(log, "conv_r", gate, use_recorded_results=True))
    assert [c.call_id for c in same.calls] == ["c1", "c2", "c3"]
    assert same.ok, same.summary()
    assert len(sent) == 1  # recorded results: the refund did not run again

    # today's policy denies refunds: replay says which call changed and how
    class NoRefunds(DefaultPolicy):
        def decide(self, tool: Any, args: Any, ctx: RunContext) -> Any:
            from callgate.gate.protocols import PolicyDecision

            if tool.name == "refund":
                return PolicyDecision("deny", "no-refunds", "refunds are frozen")
            return super().decide(tool, args, ctx)

    strict_gate = Gate([lookup, refund], policy=NoRefunds())
    report = asyncio.run(replay(log, "conv_r", strict_gate, use_recorded_results=True))
    changed = {c.call_id: c for c in report.changed}
    assert set(changed) == {"c2"}
    assert "decision" in changed["c2"].differences and "error_kind" in changed["c2"].differences
    assert changed["c2"].replayed.decision == "deny"
    assert len(sent) == 1

    # a read-only tool runs again (a changed result shows up as a difference); the refund,
    # which is not read-only, answers from the record and does not run a second time
    @tool(name="lookup", read_only=True)
    def lookup_v2(order_id: int) -> str:
        """Look up an order."""
        return f"order {order_id}: 3 items"

    report = asyncio.run(replay(log, "conv_r", Gate([lookup_v2, refund])))
    changed = {c.call_id: c for c in report.changed}
    assert set(changed) == {"c1"} and changed["c1"].differences == ["result"]
    assert [c.reran for c in report.calls] == [True, False, False]
    assert len(sent) == 1
    assert "DIFF c1 lookup (ran again)" in report.summary()
    # replay never writes into the live audit log
    assert len(log.entries()) == 6

    with pytest.raises(LookupError):
        asyncio.run(replay(log, "conv_missing", gate))
    log.close()


def test_cli_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    import asyncio

    (tmp_path / "replay_tools_mod.py").write_text(
        "from callgate.tools.definition import tool\n\n"
        "@tool(read_only=True)\n"
        "def lookup(order_id: int) -> str:\n"
        '    """Look up an order."""\n'
        "    return f'order {order_id}: VERSION'\n\n"
        "TOOLS = [lookup]\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    from callgate.gate.core import Gate

    mod_src = (tmp_path / "replay_tools_mod.py").read_text()
    (tmp_path / "replay_tools_mod.py").write_text(mod_src.replace("VERSION", "old"))
    import importlib

    mod = importlib.import_module("replay_tools_mod")
    db = str(tmp_path / "a.db")
    log = AuditLog.open(db)
    ctx = RunContext(user_id="alice", conversation_id="conv_cli")
    asyncio.run(
        Gate(mod.TOOLS, observers=[log]).execute(ToolCall("c1", "lookup", '{"order_id": 3}'), ctx)
    )
    log.close()

    # same tools: no difference, exit 0
    assert (
        cli_main(["audit", "replay", "conv_cli", "--db", db, "--tools", "replay_tools_mod:TOOLS"])
        == 0
    )
    assert "0 differ" in capsys.readouterr().out
    # a changed tool: exit 1 and the difference is shown
    (tmp_path / "replay_tools_mod.py").write_text(mod_src.replace("VERSION", "new"))
    importlib.reload(mod)
    code = cli_main(
        ["audit", "replay", "conv_cli", "--db", db, "--tools", "replay_tools_mod:TOOLS", "--json"]
    )
    assert code == 1
    calls = json.loads(capsys.readouterr().out)
    assert calls[0]["call_id"] == "c1" and calls[0]["differences"] == ["result"]
    assert "new" in calls[0]["replayed"]["result"] and "old" in calls[0]["recorded"]["result"]
    assert (
        cli_main(["audit", "replay", "nope", "--db", db, "--tools", "replay_tools_mod:TOOLS"]) == 2
    )
    assert "no audit records" in capsys.readouterr().err


def test_pg_store_reconnects_after_the_connection_dies(pg_db: str) -> None:
    import psycopg

    log = AuditLog.open(pg_db)
    _fill(log, 2)
    log.flush()  # committed before the connection is killed
    pid = log.store._conn.info.backend_pid  # type: ignore[attr-defined]
    with psycopg.connect(pg_db, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    log.on_call(_call_record(3, _ctx()))  # fails: the connection was killed under it
    log.flush()
    assert log.failures == 1
    log.on_call(_call_record(4, _ctx()))  # a fresh connection
    log.flush()
    assert log.failures == 1
    assert [e.data["call_id"] for e in log.entries()] == ["c1", "c2", "c4"]
    assert log.verify().ok
    log.close()
