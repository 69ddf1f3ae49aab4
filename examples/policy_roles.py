"""A policy file with roles and tenants, enforced by the gate at list time and call time.

    .venv/bin/python examples/policy_roles.py

`policy_roles.yaml` gives two offices (tenants) their own properties and three roles different
powers. For each person this prints which tools the model would be shown, then gates the same
calls for each of them and prints the outcome: run, denied (with the rule), or sent for approval
(here a stand-in manager approves on the spot; `durable_approvals.py` shows a real queue).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from property_app import TOOLS, Database

from callgate import CallbackApprover, Gate, Policy, RunContext, ToolCall

POLICY = Path(__file__).resolve().parent / "policy_roles.yaml"
PEOPLE = {
    "ana (agent, lisbon)": ("ana", ["agent"], "lisbon"),
    "marco (manager, porto)": ("marco", ["manager"], "porto"),
    "vic (viewer, lisbon)": ("vic", ["viewer"], "lisbon"),
    "sam (no role, lisbon)": ("sam", [], "lisbon"),
}
CALLS = [
    ToolCall("c1", "get_property", {"property_id": "P-101"}),
    ToolCall("c2", "list_maintenance_requests", {"property_id": "P-104"}),
    ToolCall(
        "c3",
        "schedule_maintenance",
        {"property_id": "P-101", "date": "2099-01-12", "description": "Fix the kitchen tap"},
    ),
    ToolCall(
        "c5",
        "schedule_maintenance",
        {"property_id": "P-104", "date": "2099-01-10", "description": "Repair the heating"},
    ),
    ToolCall("c4", "send_tenant_data", {"property_id": "P-101", "to": "me@example.com"}),
]


def build_gate(asked: list[str]) -> Gate:
    def manager_says_yes(request: object) -> bool:
        asked.append(getattr(request, "tool", "?"))
        return True

    return Gate(TOOLS, policy=Policy.from_file(POLICY), approver=CallbackApprover(manager_says_yes))


def outcome(result: object) -> str:
    kind = getattr(result, "error_kind", None)
    rule = getattr(result, "rule", None)
    if kind is None:
        return "ran"
    if rule == "unknown-tool":  # the policy hides it from this person: the gate knows no such tool
        return "hidden, refused"
    return f"{kind} ({rule})"


async def main() -> dict[str, dict[str, object]]:
    """Per person: the visible tools and each call's outcome (returned for the tests)."""
    asked: list[str] = []
    gate = build_gate(asked)
    report: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "properties.db")
        for label, (user, roles, tenant) in PEOPLE.items():
            ctx = RunContext(user_id=user, roles=frozenset(roles), tenant=tenant, deps=db)
            visible = [s.name for s in gate.specs(ctx)]
            print(f"{label}\n  sees: {', '.join(visible) or '(nothing)'}")
            outcomes: dict[str, str] = {}
            for c in CALLS:
                before = len(asked)
                r = await gate.execute(c, ctx)
                text = outcome(r) + (" after approval" if len(asked) > before else "")
                outcomes[f"{c.name}({c.arguments['property_id']})"] = text  # type: ignore[index]
                print(f"  {c.name:<26} {c.arguments['property_id']}: {text}")  # type: ignore[index]
            report[label] = {"visible": visible, "outcomes": outcomes}
    return report


if __name__ == "__main__":
    asyncio.run(main())
