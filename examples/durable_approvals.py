"""Durable approvals: the run pauses in one process, a person approves from another, and a
third process resumes it; the booking happens exactly once.

    .venv/bin/python examples/durable_approvals.py            # all three steps, as processes

Step by step (what the default run does, each in its own process):

    python examples/durable_approvals.py start  DIR      # ana asks; the run pauses
    callgate approvals approve APPROVAL_ID --db DIR/approvals.db --by marta
    python examples/durable_approvals.py resume DIR RUN_ID

The policy is `policy_roles.yaml`: an agent (ana, Lisbon office) may book a contractor only with
a manager's approval. Approvals, paused runs and the audit log live in SQLite files in DIR, so
nothing is lost when a process exits. The model's seat is scripted (``--model local`` asks the
embedded model instead; a 135M model may not propose the booking at all).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from property_app import TOOLS, Database

from callgate import Agent, Gate, Model, Policy, RunContext
from callgate.approvals.service import Approvals
from callgate.approvals.stores.sqlite import SqliteApprovalStore
from callgate.audit.log import AuditLog
from callgate.audit.stores.sqlite import SqliteAuditStore
from callgate.runs import SqliteRunStore
from callgate.testing import ScriptedModel, call

HERE = Path(__file__).resolve().parent

REQUEST = "Book a plumber at P-101 on 2099-01-12 to fix the kitchen tap."
BOOKING = {"property_id": "P-101", "date": "2099-01-12", "description": "Fix the kitchen tap"}


def build(folder: Path, model: Model) -> Agent:
    """The application, rebuilt from the files in `folder` by every process."""
    gate = Gate(
        TOOLS,
        policy=Policy.from_file(HERE / "policy_roles.yaml"),
        approver=Approvals(SqliteApprovalStore(str(folder / "approvals.db"))),
        observers=[AuditLog(SqliteAuditStore(str(folder / "audit.db")))],
    )
    return Agent(model, gate, run_store=SqliteRunStore(str(folder / "runs.db")))


def _model(name: str, replies: list[object]) -> Model:
    if name == "local":
        from callgate.providers.local.model import LocalModel

        return LocalModel()
    return ScriptedModel(replies)  # type: ignore[arg-type]


def start(folder: Path, model_name: str) -> dict[str, object]:
    agent = build(folder, _model(model_name, [call("schedule_maintenance", BOOKING), "Booked."]))
    db = Database(folder / "properties.db")
    ctx = RunContext(user_id="ana", roles=frozenset({"agent"}), tenant="lisbon", deps=db)
    result = agent.run_sync(REQUEST, ctx=ctx)
    out = {"status": result.status, "run_id": result.run_id, "pending": result.pending}
    print(json.dumps(out, default=str))
    return out


def resume(folder: Path, run_id: str, model_name: str) -> dict[str, object]:
    agent = build(folder, _model(model_name, ["The plumber is booked for 2099-01-12."]))
    result = agent.resume_sync(run_id, deps=Database(folder / "properties.db"))
    db = Database(folder / "properties.db").connect()
    booked = db.execute(
        "SELECT count(*) FROM maintenance WHERE property_id = 'P-101' AND date = '2099-01-12'"
    ).fetchone()[0]
    out = {"status": result.status, "answer": result.text, "bookings": booked}
    print(json.dumps(out))
    return out


def _step(*argv: str) -> str:
    """Run one step in its own process; its last output line is JSON (or the CLI's text)."""
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def demo(folder: Path, model_name: str) -> None:
    me = [sys.executable, str(Path(__file__).resolve())]
    started = json.loads(_step(*me, "start", str(folder), "--model", model_name))
    print(f"1. ana's run: {started['status']} (run {started['run_id']})")
    if started["status"] != "paused":
        print("   the model did not propose the booking; nothing to approve")
        return
    approval_id = started["pending"][0]["approval_id"]
    cli = [sys.executable, "-m", "callgate.cli", "approvals"]
    db = ["--db", str(folder / "approvals.db")]
    decided = _step(*cli, "approve", approval_id, *db, "--by", "marta")
    print(f"2. marta, in another process: {decided}")
    resumed = _step(*me, "resume", str(folder), str(started["run_id"]), "--model", model_name)
    finished = json.loads(resumed)
    print(f"3. resumed: {finished['status']}: {finished['answer']!r}")
    print(f"   bookings made: {finished['bookings']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("step", nargs="?", choices=["start", "resume"])
    p.add_argument("folder", nargs="?")
    p.add_argument("run_id", nargs="?")
    p.add_argument("--model", default="scripted", choices=["scripted", "local"])
    args = p.parse_args()
    if args.step == "start":
        start(Path(args.folder), args.model)
    elif args.step == "resume":
        resume(Path(args.folder), args.run_id, args.model)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            demo(Path(args.folder or tmp), args.model)


if __name__ == "__main__":
    main()
