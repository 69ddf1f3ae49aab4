"""Routing a large tool set: the model sees only the few tools that matter for each request.

A property-management back office with 60 tools. `Router(k=5)` ranks them against the
conversation (BM25 over names, descriptions and parameter descriptions) before each model call,
so the model chooses among 5 tools instead of 60 and the request carries a twelfth of the tool
schemas. The gate applies the same choice at call time: a tool that was routed out is unknown to
the run even when the model names it. Runs on a scripted model, so it needs no API key:

    python examples/routing.py
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from callgate import Agent, AuditLog, Gate, Router, Tool, ToolSpec
from callgate.models import ModelRequest
from callgate.testing import FunctionModel, Reply, call

AREAS = {
    "lease": ("lease", "tenancy agreement", "lease_id"),
    "rent": ("rent payment", "rent ledger", "tenant_id"),
    "ticket": ("maintenance ticket", "repair request", "ticket_id"),
    "unit": ("apartment unit", "flat", "unit_id"),
    "vendor": ("contractor", "supplier", "vendor_id"),
    "inspection": ("safety inspection", "building check", "inspection_id"),
    "key": ("key fob", "door access badge", "key_id"),
    "parking": ("parking space", "garage spot", "space_id"),
    "utility": ("utility meter reading", "water and electricity usage", "meter_id"),
    "notice": ("notice to tenants", "announcement letter", "notice_id"),
}
VERBS = {
    "get": "Show the details of a {0} ({1}).",
    "list": "List every {0} ({1}) of a building.",
    "create": "Create a new {0} ({1}).",
    "update": "Change the fields of an existing {0} ({1}).",
    "cancel": "Cancel or close a {0} ({1}).",
    "export": "Export the {0} history ({1}) as a CSV file.",
}


def back_office() -> list[Tool]:
    """60 tools: 6 verbs x 10 areas, described the way real back-office tools are."""
    tools = []
    for area, (what, alias, id_name) in AREAS.items():
        for verb, text in VERBS.items():
            schema = {
                "type": "object",
                "properties": {id_name: {"type": "string", "description": f"Id of the {what}"}},
                "required": [id_name],
            }
            name = f"{verb}_{area}"
            tools.append(
                Tool.from_schema(name, text.format(what, alias), schema, _runner(name, id_name))
            )
    return tools


def _runner(name: str, id_name: str) -> Callable[..., str]:
    def run(**args: str) -> str:
        return f"{name}: done for {args[id_name]}"

    return run


def pick(request: ModelRequest) -> Reply:
    """A stand-in model: it calls the first offered tool whose name fits the request, then
    answers; it also tries one tool it was not offered, to show the gate refusing it."""
    if request.messages[-1].role == "tool":
        return "Done: " + request.messages[-1].content
    text = request.messages[-1].content.lower()
    if "sneak" in text:
        return call("cancel_lease", {"lease_id": "L-1"})
    best = next(t for t in request.tools if t.name.split("_")[0] in text)
    id_name = next(iter(best.parameters["properties"]))
    return call(best.name, {id_name: "42"})


def spec_chars(tools: Sequence[ToolSpec]) -> int:
    """The size of the tool definitions a request carries (a proxy for their tokens)."""
    return sum(len(json.dumps(t.parameters)) + len(t.description) + len(t.name) for t in tools)


if __name__ == "__main__":
    tools = back_office()
    router = Router(k=5)
    audit = AuditLog.open(":memory:")
    gate = Gate(tools, middleware=[router], observers=[audit])
    model = FunctionModel(pick)
    agent = Agent(model, gate, router=router)
    everything = spec_chars([t.spec for t in tools])
    for question in (
        "List the maintenance tickets of building 7: the repair requests",
        "Export the rent payment history of tenant 42",
        "Cancel the parking space 42 in the garage",
        "Show key fob 9 (sneak)",
    ):
        model.requests.clear()
        result = agent.run_sync(question)
        first = model.requests[0]
        offered = [t.name for t in first.tools]
        print(f"Q: {question}")
        print(f"   offered {len(offered)} of {len(tools)}: {', '.join(offered)}")
        print(f"   tool text sent: {spec_chars(first.tools)} chars instead of {everything}")
        print(f"   answer: {result.output}")
    routed = [e.data["routed_tools"] for e in audit.store.iter_all() if e.kind == "turn"]
    print(f"audit log: {len(routed)} turns, each with its routed tools recorded")
