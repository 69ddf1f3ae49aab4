"""Structured output: `Agent(output_type=T)` answers through the final-result tool, validated by
a gate (same error text and correction budget as any call), recorded, and returned typed."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from callgate import Agent, Budgets, tool
from callgate.agent.loop import OutputMissing, ToolFinished, ToolStarted
from callgate.agent.output import output_schema
from callgate.gate.protocols import CallRecord, TurnRecord
from callgate.models import NamedToolChoice
from callgate.testing import ScriptedModel, call

RAN: list[str] = []


@tool(read_only=True)
def lookup_city(city: str) -> str:
    """Population and country of a city."""
    RAN.append(city)
    return f"{city}: 2.1 million people, France"


class CityFacts(BaseModel):
    """Facts about one city."""

    city: str
    population_millions: float = Field(gt=0)
    country: str


@dataclasses.dataclass
class Refusal:
    reason: str
    kind: Literal["refusal"] = "refusal"


class Pair(TypedDict):
    left: int
    right: int


class Recorder:
    def __init__(self) -> None:
        self.calls: list[CallRecord] = []
        self.turns: list[TurnRecord] = []

    def on_call(self, record: CallRecord) -> None:
        self.calls.append(record)

    def on_turn(self, record: TurnRecord) -> None:
        self.turns.append(record)


GOOD = {"city": "Paris", "population_millions": 2.1, "country": "France"}


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


def test_direct_answer_is_typed_and_needs_no_extra_turn() -> None:
    model = ScriptedModel([call("final_result", GOOD)])
    agent = Agent(model, [lookup_city], output_type=CityFacts)
    result = agent.run_sync("Tell me about Paris")
    assert result.status == "completed"
    assert isinstance(result.output, CityFacts)
    assert result.output.population_millions == 2.1
    assert result.turns == 1 and len(model.requests) == 1
    offered = [t.name for t in model.requests[0].tools]
    assert offered == ["lookup_city", "final_result"]
    assert "final_result" in (model.requests[0].system or "")
    # the final result is not a tool call of the run's budget, and nothing ran
    assert result.tool_calls == 0 and RAN == []


def test_tool_turn_then_result_and_it_is_recorded() -> None:
    rec = Recorder()
    from callgate import Gate

    gate = Gate([lookup_city], observers=[rec])
    model = ScriptedModel([call("lookup_city", {"city": "Paris"}), call("final_result", GOOD)])
    result = Agent(model, gate, output_type=CityFacts).run_sync("Paris?")
    assert result.output == CityFacts(**GOOD)
    assert RAN == ["Paris"]
    assert [r.tool for r in rec.calls] == ["lookup_city", "final_result"]
    assert rec.calls[-1].error_kind is None


def test_wrong_typed_answer_is_corrected_next_turn() -> None:
    bad = {"city": "Paris", "population_millions": "lots", "country": "France"}
    model = ScriptedModel([call("final_result", bad), call("final_result", GOOD)])
    result = Agent(model, [lookup_city], output_type=CityFacts).run_sync("Paris?")
    assert result.status == "completed" and result.output.city == "Paris"
    feedback = [m for m in model.requests[1].messages if m.role == "tool"]
    assert len(feedback) == 1
    res = feedback[0].tool_result
    assert res is not None and res.error_kind == "correctable"
    assert "population_millions" in res.content


def test_constraint_violation_uses_the_field_error_text() -> None:
    neg = {**GOOD, "population_millions": -3}
    model = ScriptedModel([call("final_result", neg), call("final_result", GOOD)])
    result = Agent(model, output_type=CityFacts).run_sync("Paris?")
    assert result.output.population_millions == 2.1
    res = model.requests[1].messages[-1].tool_result
    assert res is not None and "population_millions" in res.content


def test_unknown_field_is_refused_not_dropped() -> None:
    extra = {**GOOD, "mayor": "someone"}
    model = ScriptedModel([call("final_result", extra), call("final_result", GOOD)])
    result = Agent(model, output_type=CityFacts).run_sync("Paris?")
    assert result.turns == 2
    res = model.requests[1].messages[-1].tool_result
    assert res is not None and res.is_error and "mayor" in res.content


def test_union_output_picks_the_member_and_is_wrapped() -> None:
    params, wrapped = output_schema(CityFacts | Refusal)
    assert wrapped and params["required"] == ["result"]
    model = ScriptedModel(
        [call("final_result", {"result": {"reason": "no data", "kind": "refusal"}})]
    )
    agent: Agent[CityFacts | Refusal] = Agent(model, output_type=CityFacts | Refusal)
    out = agent.run_sync("?").output
    assert isinstance(out, Refusal) and out.reason == "no data"
    model2 = ScriptedModel([call("final_result", {"result": GOOD})])
    out2 = Agent(model2, output_type=CityFacts | Refusal).run_sync("?").output
    assert isinstance(out2, CityFacts)


def test_typeddict_and_dataclass_outputs() -> None:
    m = ScriptedModel([call("final_result", {"left": 1, "right": 2})])
    assert Agent(m, output_type=Pair).run_sync("?").output == {"left": 1, "right": 2}
    m2 = ScriptedModel([call("final_result", {"reason": "x"})])
    assert Agent(m2, output_type=Refusal).run_sync("?").output == Refusal("x")


def test_text_answer_is_told_to_use_the_tool() -> None:
    model = ScriptedModel(["Paris has 2.1 million people.", call("final_result", GOOD)])
    result = Agent(model, output_type=CityFacts).run_sync("Paris?")
    assert result.status == "completed" and result.output.country == "France"
    last = model.requests[1].messages[-1]
    assert last.role == "user" and "final_result" in last.content


def test_text_answers_use_the_correction_budget() -> None:
    model = ScriptedModel(["one", "two", "three", "four"])
    result = Agent(model, output_type=CityFacts).run_sync("Paris?")
    assert result.status == "stopped" and result.reason == "corrections"
    assert len(model.requests) == 3  # per-tool budget of 3
    with pytest.raises(OutputMissing):
        _ = result.output
    assert "correction budget" in result.text


def test_wrong_answers_exhaust_the_budget() -> None:
    bad = call("final_result", {"city": 1})
    model = ScriptedModel([bad, call("final_result", {"city": 2}), call("final_result", {})])
    result = Agent(model, output_type=CityFacts).run_sync("?")
    assert result.status == "stopped" and result.reason == "corrections"
    assert result.value is None


def test_result_beside_other_calls_is_refused_until_alone() -> None:
    model = ScriptedModel(
        [
            [call("lookup_city", {"city": "Paris"}), call("final_result", GOOD)],
            call("final_result", GOOD),
        ]
    )
    result = Agent(model, [lookup_city], output_type=CityFacts).run_sync("Paris?")
    assert RAN == ["Paris"]
    tool_msgs = [m.tool_result for m in model.requests[1].messages if m.role == "tool"]
    refused = [r for r in tool_msgs if r is not None and r.name == "final_result"]
    assert refused and refused[0].rule == "output:not-alone"
    assert result.status == "completed" and result.turns == 2


def test_max_iterations_forces_the_result_tool() -> None:
    loop = [call("lookup_city", {"city": c}) for c in ("A", "B")]
    model = ScriptedModel([*loop, call("final_result", GOOD)])
    agent = Agent(model, [lookup_city], output_type=CityFacts, budgets=Budgets(max_iterations=2))
    result = agent.run_sync("?")
    last = model.requests[-1]
    assert last.tool_choice == NamedToolChoice("final_result")
    assert [t.name for t in last.tools] == ["final_result"]
    assert result.status == "stopped" and result.reason == "max_iterations"
    assert result.output == CityFacts(**GOOD)


def test_call_budget_does_not_count_the_result() -> None:
    model = ScriptedModel([call("lookup_city", {"city": "A"}), call("final_result", GOOD)])
    agent = Agent(model, [lookup_city], output_type=CityFacts, budgets=Budgets(max_tool_calls=1))
    result = agent.run_sync("?")
    assert result.status == "completed" and result.tool_calls == 1


async def test_streaming_emits_the_result_call() -> None:
    model = ScriptedModel([call("final_result", GOOD)])
    agent = Agent(model, output_type=CityFacts)
    events: list[Any] = [ev async for ev in agent.stream("?")]
    assert any(isinstance(e, ToolStarted) and e.call.name == "final_result" for e in events)
    done = [e for e in events if isinstance(e, ToolFinished)]
    assert done and done[0].result.data == CityFacts(**GOOD)


def test_plain_agent_output_is_still_text() -> None:
    result = Agent(ScriptedModel(["hello"])).run_sync("hi")
    assert result.output == "hello" and result.text == "hello"


TYPED_USER = """
from pydantic import BaseModel

from callgate import Agent
from callgate.testing import ScriptedModel


class Facts(BaseModel):
    city: str


class Other(BaseModel):
    n: int


facts = Agent(ScriptedModel([]), output_type=Facts).run_sync("?").output
either: Agent[Facts | Other] = Agent(ScriptedModel([]), output_type=Facts | Other)
plain = Agent(ScriptedModel([])).run_sync("?").output
reveal_type(facts)
reveal_type(either.run_sync("?").output)
reveal_type(plain)
bad: int = facts
"""


def test_output_is_typed_for_mypy(tmp_path: Any) -> None:
    from mypy import api

    mod = tmp_path / "user_output.py"
    mod.write_text(TYPED_USER)
    out, err, _ = api.run(["--strict", "--no-error-summary", str(mod)])
    notes = [line.split("Revealed type is ")[1] for line in out.splitlines() if "Revealed" in line]
    assert notes == ['"user_output.Facts"', '"user_output.Facts | user_output.Other"', '"str"']
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1 and 'expression has type "Facts"' in errors[0], out + err
