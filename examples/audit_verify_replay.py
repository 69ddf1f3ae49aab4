"""The audit log: every gated call recorded in a hash chain, verified, and replayed against
today's gate.

    .venv/bin/python examples/audit_verify_replay.py

1. A manager of the Lisbon office looks at P-101 and books a contractor (model's seat scripted,
   or ``--model local``); every call lands in an SQLite audit log.
2. ``callgate audit verify`` walks the chain: intact.
3. ``callgate audit replay`` re-checks the conversation against today's gate. With the same
   policy nothing changes; with a stricter one (bookings frozen, `frozen_gate`) the booking's
   decision changes and the command exits 1 - the way to see what a policy change would have
   refused before deploying it. ``--use-recorded-results`` runs no tool again.
4. One record is edited behind the log's back: ``verify`` finds it and exits 1.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from property_app import TOOLS, Database

from callgate import Agent, Gate, Policy, RunContext
from callgate.audit.log import AuditLog
from callgate.audit.stores.sqlite import SqliteAuditStore
from callgate.testing import ScriptedModel, call

HERE = Path(__file__).resolve().parent

BOOKING = {"property_id": "P-101", "date": "2099-03-02", "description": "Service the boiler"}
FROZEN = {
    "version": 1,
    "rules": [
        {"name": "bookings-frozen", "tools": "schedule_maintenance", "effect": "deny"},
        {"name": "reads", "tiers": ["read"], "effect": "allow"},
    ],
}


def todays_gate() -> Gate:
    """The gate as deployed: the roles-and-tenants policy."""
    return Gate(TOOLS, policy=Policy.from_file(HERE / "policy_roles.yaml"))


def frozen_gate() -> Gate:
    """A proposed policy change: no bookings at all."""
    return Gate(TOOLS, policy=Policy.from_dict(FROZEN, source="frozen"))


def record(folder: Path, model_name: str) -> str:
    """Run the conversation with an audit log in `folder`; returns its conversation id."""
    audit = AuditLog(SqliteAuditStore(str(folder / "audit.db")))
    gate = todays_gate()
    gate.observers.append(audit)
    if model_name == "local":
        from callgate.providers.local.model import LocalModel

        model: object = LocalModel()
    else:
        model = ScriptedModel(
            [
                call("get_property", {"property_id": "P-101"}, id="look"),
                call("schedule_maintenance", BOOKING, id="book"),
                "The boiler service at P-101 is booked for 2099-03-02.",
            ]
        )
    agent = Agent(model, gate)  # type: ignore[arg-type]
    ctx = RunContext(
        user_id="lena",
        roles=frozenset({"manager"}),
        tenant="lisbon",
        deps=Database(folder / "properties.db"),
    )
    agent.run_sync("Check P-101 and book a boiler service on 2099-03-02.", ctx=ctx)
    audit.close()
    return ctx.conversation_id


def cli(*args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "callgate.cli", "audit", *args],
        capture_output=True,
        text=True,
        cwd=HERE,
    )
    return done.returncode, (done.stdout + done.stderr).strip()


def main(model_name: str = "scripted") -> dict[str, int]:
    """Runs the four steps; returns each command's exit code (for the tests)."""
    codes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        conv = record(folder, model_name)
        db = ["--db", str(folder / "audit.db")]
        replay = ["replay", conv, *db, "--use-recorded-results", "--tools"]
        for name, argv in (
            ("verify", ["verify", *db]),
            ("replay-same", [*replay, "audit_verify_replay:todays_gate"]),
            ("replay-frozen", [*replay, "audit_verify_replay:frozen_gate"]),
        ):
            codes[name], out = cli(*argv)
            print(f"$ callgate audit {' '.join(argv)}\n{out}\n(exit {codes[name]})\n")
        conn = sqlite3.connect(folder / "audit.db")
        conn.execute("UPDATE audit_log SET user_id = 'someone-else' WHERE seq = 1")
        conn.commit()
        conn.close()
        codes["verify-tampered"], out = cli("verify", *db)
        print(f"after editing record 1:\n{out}\n(exit {codes['verify-tampered']})")
    return codes


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="scripted", choices=["scripted", "local"])
    main(p.parse_args().model)
