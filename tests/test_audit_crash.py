"""A writer SIGKILLed in the middle of appending never leaves a half-written or forked record."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from callgate.audit.log import AuditLog

_CHILD = textwrap.dedent(
    """
    import sys
    from callgate.audit.log import AuditLog
    from callgate.context import RunContext
    from callgate.gate.protocols import CallRecord

    log = AuditLog.open(sys.argv[1], strict=True)
    ctx = RunContext(user_id="crash", conversation_id="conv_crash", request="go")
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        log.on_call(CallRecord(
            call_id=f"c{i}", tool="write", version=None, ctx=ctx,
            arguments={"i": i, "blob": "x" * 4000}, decision="allow", rule="r",
            error_kind=None, result_summary="ok " * 100, started_at=0.0, duration_s=0.0,
        ))
    """
)


def _count(target: str) -> int:
    log = AuditLog.open(target)
    try:
        head = log.head()
        return head.seq if head else 0
    finally:
        log.close()


def _kill_mid_stream(target: str, rounds: int = 4) -> int:
    rng = random.Random(7)
    for _ in range(rounds):
        before = _count(target)
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, target],
            stdout=subprocess.PIPE,
            env=os.environ.copy(),
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == b"ready"
            deadline = time.monotonic() + 60
            while _count(target) < before + 20 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.05))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
    return _count(target)


def _check(target: str, expected_min: int) -> None:
    log = AuditLog.open(target)
    try:
        report = log.verify()
        assert report.ok, report.summary()
        rows = log.entries()
        assert len(rows) == report.count >= expected_min
        assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
        assert all(len(r.data["arguments"]["blob"]) == 4000 for r in rows)
        # the log stays writable and the chain continues after the crash
        log.record_event("note", {"after": "crash"})
        assert log.verify().ok
    finally:
        log.close()


@pytest.mark.slow
def test_sigkill_sqlite_writer(tmp_path: Path) -> None:
    target = str(tmp_path / "crash.db")
    total = _kill_mid_stream(target)
    _check(target, total)


@pytest.mark.slow
def test_sigkill_postgres_writer(pg_db: str) -> None:
    total = _kill_mid_stream(pg_db)
    _check(pg_db, total)
