"""Agent.stream: model deltas, call lifecycle, status while slow tools run, results."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from callgate import Agent, Gate, Invocation, PolicyDecision, tool
from callgate.agent.loop import (
    ModelTurn,
    RunFinished,
    ToolFinished,
    ToolStarted,
    ToolStatus,
    TurnStarted,
)
from callgate.errors import ApprovalRequired
from callgate.models import TextDelta, ToolCallDelta, ToolCallFinished, ToolCallStarted
from callgate.testing import ScriptedModel, call


@tool
async def slow(ms: int) -> str:
    await asyncio.sleep(ms / 1000)
    return f"slept {ms}"


@tool
def fast(x: str) -> str:
    return x.upper()


async def collect(agent: Agent, prompt: str = "go") -> list[Any]:
    return [ev async for ev in agent.stream(prompt)]


async def test_event_sequence_for_a_tool_turn_and_an_answer() -> None:
    args = {"x": "hello streaming world"}
    m = ScriptedModel([("Let me check.", [call("fast", args, id="f1")]), "All done, HELLO."])
    evs = await collect(Agent(m, [fast]))
    kinds = [type(e).__name__ for e in evs]
    # first turn: text, then the call streamed, then the turn, then the tool
    assert kinds[0] == "TurnStarted"
    assert kinds[-1] == "RunFinished"
    first_turn = kinds[: kinds.index("ModelTurn") + 1]
    assert first_turn[1] == "TextDelta"
    assert first_turn.index("ToolCallStarted") > max(
        i for i, k in enumerate(first_turn) if k == "TextDelta"
    )
    assert first_turn[-2:] == ["ToolCallFinished", "ModelTurn"]
    text = "".join(e.text for e in evs[: kinds.index("ModelTurn")] if isinstance(e, TextDelta))
    assert text == "Let me check."
    started = next(e for e in evs if isinstance(e, ToolCallStarted))
    assert (started.index, started.id, started.name) == (0, "f1", "fast")
    deltas = [e for e in evs if isinstance(e, ToolCallDelta)]
    assert len(deltas) > 1 and all(d.id == "f1" and d.index == 0 for d in deltas)
    assert json.loads("".join(d.arguments_delta for d in deltas)) == args
    fin = next(e for e in evs if isinstance(e, ToolCallFinished))
    assert fin.call.arguments == "".join(d.arguments_delta for d in deltas)
    # tool lifecycle after the model turn
    i_turn = kinds.index("ModelTurn")
    assert kinds[i_turn + 1 : i_turn + 3] == ["ToolStarted", "ToolFinished"]
    done = next(e for e in evs if isinstance(e, ToolFinished))
    assert done.result.call_id == "f1" and done.result.content == "HELLO STREAMING WORLD"
    turns = [e.turn for e in evs if isinstance(e, TurnStarted)]
    assert turns == [0, 1]
    final = evs[-1]
    assert isinstance(final, RunFinished)
    assert final.result.status == "completed" and final.result.output == "All done, HELLO."


async def test_status_events_while_a_slow_tool_runs() -> None:
    m = ScriptedModel([[call("slow", {"ms": 150}, id="s"), call("fast", {"x": "a"}, id="q")], "ok"])
    evs = await collect(Agent(m, [slow, fast], status_interval_s=0.02))
    statuses = [e for e in evs if isinstance(e, ToolStatus)]
    assert len(statuses) >= 3
    assert all(s.call.id == "s" for s in statuses[1:])  # the fast one finished right away
    assert [s.elapsed_s for s in statuses] == sorted(s.elapsed_s for s in statuses)
    finished = [e.result.call_id for e in evs if isinstance(e, ToolFinished)]
    assert finished == ["q", "s"]  # finish order as it happens
    started = [e.call.id for e in evs if isinstance(e, ToolStarted)]
    assert started == ["s", "q"]
    # ... but the model receives results in its own order
    tool_ids = [x.tool_result.call_id for x in m.requests[1].messages if x.tool_result]
    assert tool_ids == ["s", "q"]


async def test_parallel_call_deltas_are_attributed_to_the_right_call() -> None:
    calls = [call("fast", {"x": f"value-{i}" * 3}, id=f"c{i}") for i in range(3)]
    m = ScriptedModel([calls, "ok"])
    evs = await collect(Agent(m, [fast]))
    by_id: dict[str, str] = {}
    for e in evs:
        if isinstance(e, ToolCallDelta):
            by_id[e.id] = by_id.get(e.id, "") + e.arguments_delta
    assert {k: json.loads(v) for k, v in by_id.items()} == {
        f"c{i}": {"x": f"value-{i}" * 3} for i in range(3)
    }
    results = {e.result.call_id: e.result.content for e in evs if isinstance(e, ToolFinished)}
    assert results == {f"c{i}": f"VALUE-{i}".upper() * 3 for i in range(3)}


async def test_stream_ends_with_paused_result_on_approval() -> None:
    class Later:
        async def check(self, inv: Invocation, d: PolicyDecision) -> None:
            raise ApprovalRequired("ap1", "waiting")

    @tool(destructive=True)
    def drop(name: str) -> None: ...

    m = ScriptedModel([call("drop", {"name": "t"}, id="d")])
    evs = await collect(Agent(m, Gate([drop], approver=Later())))
    assert isinstance(evs[-1], RunFinished)
    assert evs[-1].result.status == "paused"
    assert evs[-1].result.pending[0]["approval_id"] == "ap1"


async def test_stream_of_model_without_stream_method_still_works() -> None:
    class Plain:
        name = "plain"

        def __init__(self) -> None:
            self.inner = ScriptedModel(["just text"])

        async def request(self, req: Any) -> Any:
            return await self.inner.request(req)

    evs = await collect(Agent(Plain(), [fast]))
    assert [type(e) for e in evs] == [TurnStarted, ModelTurn, RunFinished]
    assert evs[-1].result.output == "just text"


async def test_closing_the_stream_early_cancels_running_tools() -> None:
    cancelled = asyncio.Event()

    @tool
    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    m = ScriptedModel([call("forever", {}, id="f")])
    agen = Agent(m, [forever], status_interval_s=0.01).stream("x")
    async for ev in agen:  # type: ignore[attr-defined]
        if isinstance(ev, ToolStatus):
            break
    await agen.aclose()  # type: ignore[attr-defined]
    await asyncio.wait_for(cancelled.wait(), 1)


async def test_final_answer_after_max_iterations_is_streamed_too() -> None:
    from callgate import Budgets

    m = ScriptedModel([call("fast", {"x": "a"}), ("Final words here.", [call("fast", {"x": "b"})])])
    evs = await collect(Agent(m, [fast], budgets=Budgets(max_iterations=1)))
    streamed = "".join(e.text for e in evs if isinstance(e, TextDelta))
    assert streamed == "Final words here."
    # the call proposed in the final (tools-off) request is neither streamed nor run
    assert sum(isinstance(e, ToolCallStarted) for e in evs) == 1
    assert sum(isinstance(e, ToolFinished) for e in evs) == 1
    final = evs[-1]
    assert isinstance(final, RunFinished)
    assert final.result.status == "stopped" and final.result.output == "Final words here."
    assert m.requests[-1].tool_choice == "none"
