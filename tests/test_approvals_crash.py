"""Approvals survive process death: real child processes, killed with SIGKILL at the worst moments.

Each child is a fresh Python process running a small program (written below) with a durable store
(a SQLite file, or a real PostgreSQL server) and a tool whose side effect is a line appended to a
file. The file is the ground truth of how often the tool really ran.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from callgate.approvals import Approvals, open_approval_store

SRC = Path(__file__).resolve().parents[1] / "src"

CHILD = r'''
import asyncio, json, os, sys, time

from callgate import Agent, Gate, RunContext, tool
from callgate.approvals import Approvals, open_approval_store
from callgate.runs import open_run_store
from callgate.testing import ScriptedModel, call

db, effects, mode = sys.argv[1], sys.argv[2], sys.argv[3]
call_ids = sys.argv[4:]


def effect(line):
    with open(effects, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


@tool(destructive=True)
def transfer(to: str, amount: int) -> str:
    """Send money."""
    effect(f"start {to} {amount}")
    if mode == "hang":
        time.sleep(3600)  # killed here, in the middle of the side effect
    effect(f"end {to} {amount}")
    return f"sent {amount} to {to}"


def say(**kw):
    print(json.dumps(kw), flush=True)


async def main():
    approvals = Approvals(open_approval_store(db))
    if mode == "recover":
        say(recovered=[r.id for r in approvals.recover()])
        return
    gate = Gate([transfer], approver=approvals)
    ctx = RunContext(user_id="alice", run_id="run_crash", conversation_id="conv_crash")
    if mode in ("agent", "resume"):
        runs = open_run_store(db)
        if mode == "agent":
            model = ScriptedModel([call("transfer", {"to": "bob", "amount": 7}, id="call_a")])
            agent = Agent(model, gate, run_store=runs)
            result = await agent.run("pay bob 7", ctx=ctx)
            say(status=result.status, pending=result.pending, paused=runs.list_paused())
            time.sleep(3600)  # a paused run sitting in memory: killed here
        agent = Agent(ScriptedModel(["Paid."]), gate, run_store=runs)
        result = await agent.resume("run_crash")
        say(status=result.status, output=result.output, paused=runs.list_paused())
        return
    for i, call_id in enumerate(call_ids):
        args = {"to": "bob", "amount": 100 + i}
        res = await gate.execute(call("transfer", args, id=call_id), ctx)
        say(call_id=call_id, kind=res.error_kind, content=res.content,
            approval_id=res.approval_id)
    if mode == "wait":
        time.sleep(3600)  # the run is paused and the process lingers: killed here


asyncio.run(main())
'''


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.slow)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "state.db")
    return str(request.getfixturevalue("pg_db"))


class LineReader:
    """Lines from a child's stdout, read from the raw pipe with `os.read`.

    Never through the buffered file object: its `readline()` may pull two lines off the pipe
    and keep the second in Python's buffer, where `select()` cannot see it, so the next wait
    would hang although the line already arrived. Here the only buffer is ours, and it is
    checked before waiting on the pipe."""

    def __init__(self, p: subprocess.Popen[str]) -> None:
        assert p.stdout is not None
        self.p = p
        self.fd = p.stdout.fileno()
        self.buf = b""

    def next(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"child said nothing in {timeout} s")
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                err = self.p.stderr.read() if self.p.stderr else ""
                raise AssertionError(f"child exited without a report: {err}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()


class World:
    """The child program, its durable store and the file of side effects."""

    def __init__(self, tmp_path: Path, db: str) -> None:
        self.db = db
        self.script = tmp_path / "child.py"
        self.script.write_text(CHILD)
        self.effects = tmp_path / "effects.log"
        self.effects.touch()
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(SRC.parent)])}
        self.procs: list[subprocess.Popen[str]] = []
        self.readers: dict[int, LineReader] = {}

    def start(self, mode: str, *call_ids: str) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [sys.executable, str(self.script), self.db, str(self.effects), mode, *call_ids],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        self.procs.append(p)
        return p

    def run(self, mode: str, *call_ids: str) -> list[dict[str, Any]]:
        """Start a child and let it finish; its reports, one per line."""
        p = self.start(mode, *call_ids)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        return [json.loads(line) for line in out.splitlines()]

    def read(self, p: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
        """The child's next report (one JSON line)."""
        reader = self.readers.setdefault(p.pid, LineReader(p))
        return dict(json.loads(reader.next(timeout)))

    def kill(self, p: subprocess.Popen[str]) -> None:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        assert p.returncode == -signal.SIGKILL

    def wait_for_effect(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.effects.read_text():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared in the effects file")
            time.sleep(0.02)

    def lines(self) -> list[str]:
        return self.effects.read_text().splitlines()

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "callgate.cli", "approvals", *argv, "--db", self.db],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
            for stream in (p.stdout, p.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def world(tmp_path: Path, db: str) -> Any:
    w = World(tmp_path, db)
    yield w
    w.close()


def test_line_reader_gets_lines_that_arrive_together(tmp_path: Path) -> None:
    """The root of the old flake: two reports written at once must both be readable."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('one\\ntwo', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        reader = LineReader(child)
        assert reader.next(30) == "one"
        started = time.monotonic()
        assert reader.next(5) == "two"  # already in our buffer: no wait on the pipe
        assert time.monotonic() - started < 1
    finally:
        child.kill()
        child.wait(30)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def test_killed_while_pending_then_approved_runs_once(world: World) -> None:
    child = world.start("wait", "c1", "c2")
    first, second = world.read(child), world.read(child)
    assert first["kind"] == second["kind"] == "pending_approval"
    world.kill(child)
    assert world.lines() == []

    # after the crash nothing is lost: both requests are still waiting, with what they will do
    listed = world.cli("list")
    assert listed.returncode == 0, listed.stderr
    assert first["approval_id"] in listed.stdout and second["approval_id"] in listed.stdout
    assert listed.stdout.count("pending") == 2
    shown = world.cli("show", first["approval_id"])
    assert '"amount": 100' in shown.stdout and '"to": "bob"' in shown.stdout

    assert world.cli("approve", first["approval_id"], "--by", "ops").returncode == 0
    denied = world.cli("deny", second["approval_id"], "--by", "ops", "--comment", "duplicate")
    assert denied.returncode == 0

    # a new process, same run: the approved call runs, the denied one does not
    after = world.run("run", "c1", "c2")
    assert [r["kind"] for r in after] == [None, "denied"]
    assert "duplicate" in after[1]["content"]
    assert world.lines() == ["start bob 100", "end bob 100"]

    # the same calls again (a resumed run, a retry, a second worker): never a second time
    again = world.run("run", "c1", "c2")
    assert [r["kind"] for r in again] == ["denied", "denied"]
    assert "already carried out" in again[0]["content"]
    assert world.lines() == ["start bob 100", "end bob 100"]
    ap = Approvals(open_approval_store(world.db))
    assert ap.get(first["approval_id"]).status == "done"
    assert ap.get(first["approval_id"]).result_summary == "sent 100 to bob"


def test_killed_while_the_approved_call_runs_is_never_rerun(world: World) -> None:
    aid = world.run("run", "c1")[0]["approval_id"]
    assert world.cli("approve", aid, "--by", "ops").returncode == 0

    child = world.start("hang", "c1")
    world.wait_for_effect("start bob 100")
    world.kill(child)
    assert world.lines() == ["start bob 100"]  # the effect began; nobody knows if it finished
    ap = Approvals(open_approval_store(world.db))
    assert ap.get(aid).status == "executing"

    # restart: the call is reported interrupted, and it does not run again
    res = world.run("run", "c1")[0]
    assert res["kind"] == "denied"
    assert "interrupted" in res["content"] and "check whether it took effect" in res["content"]
    assert ap.get(aid).status == "interrupted"
    assert world.run("run", "c1")[0]["kind"] == "denied"
    assert world.cli("approve", aid, "--by", "ops").returncode == 0  # harmless, runs nothing
    assert world.run("run", "c1")[0]["kind"] == "denied"
    assert world.lines() == ["start bob 100"]
    listed = world.cli("list", "--status", "interrupted")
    assert aid in listed.stdout


def test_recover_at_startup_reports_interrupted(world: World) -> None:
    aid = world.run("run", "c1")[0]["approval_id"]
    Approvals(open_approval_store(world.db)).approve(aid, by="ops")
    child = world.start("hang", "c1")
    world.wait_for_effect("start bob 100")
    world.kill(child)

    assert world.run("recover") == [{"recovered": [aid]}]
    assert world.run("recover") == [{"recovered": []}]
    ap = Approvals(open_approval_store(world.db))
    assert ap.get(aid).status == "interrupted"
    assert world.run("run", "c1")[0]["kind"] == "denied"
    assert world.lines() == ["start bob 100"]


def test_paused_agent_run_survives_a_kill(world: World) -> None:
    child = world.start("agent")
    paused = world.read(child)
    assert paused["status"] == "paused" and paused["paused"] == ["run_crash"]
    aid = paused["pending"][0]["approval_id"]
    world.kill(child)

    assert world.cli("approve", aid, "--by", "ops").returncode == 0
    resumed = world.run("resume")[0]
    assert resumed == {"status": "completed", "output": "Paid.", "paused": []}
    assert world.lines() == ["start bob 7", "end bob 7"]
