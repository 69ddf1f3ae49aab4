"""Structured output: the agent's answer as a typed value instead of free text.

`Agent(..., output_type=T)` offers the model a `final_result` tool whose parameters are T's
fields. The model answers by calling it; the call is validated by the gate like any other (a
wrong-typed answer is sent back with field-level errors and corrected on the next turn), and
`result.output` is a T. Runs on a scripted model, so it needs no API key:

    python examples/structured_output.py
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from callgate import Agent, tool
from callgate.testing import ScriptedModel, call


@tool(read_only=True)
def unit_status(unit: str) -> dict[str, object]:
    """Occupancy, rent balance and open maintenance tickets of a unit.

    Args:
        unit: Unit number, e.g. "4B".
    """
    return {"unit": unit, "occupied": True, "balance_eur": 120.0, "open_tickets": ["leaking tap"]}


class UnitReport(BaseModel):
    """A short report on one unit for the property manager."""

    unit: str
    balance_eur: float = Field(ge=0, description="Rent owed, in euros")
    urgent: bool = Field(description="Whether someone must act today")
    next_step: str


@dataclass
class CannotAnswer:
    """The request cannot be answered from the tools."""

    reason: str
    kind: Literal["cannot_answer"] = "cannot_answer"


def report() -> UnitReport:
    """One tool call, then an answer with a wrong type (corrected), then the typed result."""
    model = ScriptedModel(
        [
            call("unit_status", {"unit": "4B"}),
            call(
                "final_result",
                {
                    "unit": "4B",
                    "balance_eur": "120 EUR",
                    "urgent": False,
                    "next_step": "Send a plumber for the tap.",
                },
            ),
            call(
                "final_result",
                {
                    "unit": "4B",
                    "balance_eur": 120.0,
                    "urgent": False,
                    "next_step": "Send a plumber for the tap.",
                },
            ),
        ]
    )
    agent = Agent(model, [unit_status], output_type=UnitReport)
    result = agent.run_sync("How is unit 4B doing?")
    correction = next(
        m.tool_result
        for m in result.messages
        if m.tool_result is not None and m.tool_result.name == "final_result"
    )
    print("model was told:", correction.content.replace("\n", " "))
    print("turns:", result.turns)
    return result.output


def either() -> UnitReport | CannotAnswer:
    """A union: the model may give a report or say why it cannot."""
    model = ScriptedModel(
        [call("final_result", {"result": {"reason": "No unit 99 in this building."}})]
    )
    agent: Agent[UnitReport | CannotAnswer] = Agent(
        model, [unit_status], output_type=UnitReport | CannotAnswer
    )
    return agent.run_sync("How is unit 99 doing?").output


if __name__ == "__main__":
    r = report()
    print(f"report: unit={r.unit} balance_eur={r.balance_eur} urgent={r.urgent}")
    print(f"next step: {r.next_step}")
    other = either()
    print(f"union answer: {type(other).__name__}: {other}")
