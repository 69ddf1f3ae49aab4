"""Two processes race to approve and run the same 50 approved calls: every tool runs exactly once.

Both workers get the same list of pending approvals. The parent drives them in lock-step: for
each request it tells both workers "go" at the same moment, and each one approves it (both do;
the second approval is harmless) and sends the call through its own gate with the durable
approver, then reports. So every one of the 50 requests is really contended. The side effect is
a line appended to a file shared by both processes: it must hold each call exactly once, 50
lines in all, against a SQLite file and a real PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from callgate import Gate, RunContext, tool
from callgate.approvals import Approvals, open_approval_store
from callgate.messages import ToolCall

N = 50
SRC = Path(__file__).resolve().parents[1] / "src"

WORKER = r"""
import asyncio, json, os, sys

from callgate import Gate, RunContext, tool
from callgate.approvals import Approvals, open_approval_store
from callgate.messages import ToolCall

db, effects, name = sys.argv[1], sys.argv[2], sys.argv[3]
jobs = json.loads(sys.argv[4])


@tool(destructive=True)
def pay(n: int) -> str:
    "Pay invoice n."
    fd = os.open(effects, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{n} {name}\n".encode())
    finally:
        os.close(fd)
    return f"paid {n}"


async def main():
    approvals = Approvals(open_approval_store(db))
    gate = Gate([pay], approver=approvals)
    ctx = RunContext(user_id="alice", run_id="run_race", conversation_id="conv_race")
    print("ready", flush=True)
    for job in jobs:
        sys.stdin.readline()  # the parent releases both workers at once, request by request
        approvals.approve(job["approval_id"], by=name)
        res = await gate.execute(ToolCall(job["call_id"], "pay", json.dumps({"n": job["n"]})), ctx)
        print(json.dumps({"n": job["n"], "kind": res.error_kind}), flush=True)


asyncio.run(main())
"""


@tool(destructive=True)
def pay(n: int) -> str:
    """Pay invoice n (never run in this process: the requests are only created here)."""
    raise AssertionError("the parent never runs the tool")


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.slow)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "race.db")
    return str(request.getfixturevalue("pg_db"))


def _pending_requests(db: str) -> list[dict[str, Any]]:
    """N pending approval requests, created through the gate as a paused run would."""
    approvals = Approvals(open_approval_store(db))
    gate = Gate([pay], approver=approvals)
    ctx = RunContext(user_id="alice", run_id="run_race", conversation_id="conv_race")

    async def ask() -> list[dict[str, Any]]:
        jobs = []
        for n in range(N):
            call = ToolCall(f"c{n}", "pay", json.dumps({"n": n}))
            res = await gate.execute(call, ctx)
            assert res.error_kind == "pending_approval", res.content
            assert res.approval_id is not None
            jobs.append({"n": n, "call_id": call.id, "approval_id": res.approval_id})
        return jobs

    try:
        return asyncio.run(ask())
    finally:
        approvals.store.close()


def _line(w: subprocess.Popen[str]) -> str:
    assert w.stdout is not None
    line = w.stdout.readline()
    assert line, w.stderr.read() if w.stderr else "worker exited"
    return line


def test_two_processes_racing_run_each_approved_call_once(db: str, tmp_path: Path) -> None:
    jobs = _pending_requests(db)
    effects = tmp_path / "effects.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(SRC.parent)])}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, db, str(effects), name, json.dumps(jobs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("w1", "w2")
    ]
    rounds: list[list[dict[str, Any]]] = []
    try:
        for w in workers:
            assert w.stdout is not None and w.stdout.readline().strip() == "ready"
        for _ in jobs:
            for w in workers:  # both go at once
                assert w.stdin is not None
                w.stdin.write("go\n")
                w.stdin.flush()
            rounds.append([json.loads(_line(w)) for w in workers])
        for w in workers:
            _, err = w.communicate(timeout=60)
            assert w.returncode == 0, err
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait(30)

    lines = effects.read_text().splitlines()
    paid = sorted(int(line.split()[0]) for line in lines)
    assert paid == list(range(N))  # exactly once each: none lost, none twice
    for n, pair in enumerate(rounds):  # in every round one worker ran it, the other was told
        assert [r["n"] for r in pair] == [n, n]
        assert [r["kind"] for r in pair].count(None) == 1, pair
    approvals = Approvals(open_approval_store(db, must_exist=True))
    try:
        assert {approvals.get(j["approval_id"]).status for j in jobs} == {"done"}
    finally:
        approvals.store.close()
