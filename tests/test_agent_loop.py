"""The agent loop: iterations, loop breaker, budgets, tool_choice, guidance, approvals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callgate import (
    Agent,
    Budgets,
    Gate,
    Invocation,
    Message,
    ModelResponse,
    NamedToolChoice,
    PolicyDecision,
    RunContext,
    ToolDenied,
    Usage,
    tool,
)
from callgate.agent.budgets import Price
from callgate.agent.loop import FINAL_ANSWER_PROMPT
from callgate.errors import ApprovalRequired, CallgateError
from callgate.models import ModelRequest
from callgate.testing import FunctionModel, ScriptedModel, call

RAN: list[tuple[str, dict[str, Any]]] = []


@tool(read_only=True, examples=[{"city": "Paris"}])
def weather(city: str) -> str:
    """Current weather for a city."""
    RAN.append(("weather", {"city": city}))
    return f"sunny in {city}"


@tool(read_only=True)
def time_in(city: str) -> str:
    RAN.append(("time_in", {"city": city}))
    return f"noon in {city}"


@tool(destructive=True)
def delete_account(account_id: str) -> str:
    """Delete an account forever."""
    RAN.append(("delete_account", {"account_id": account_id}))
    return f"deleted {account_id}"


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


def tool_msgs(req: ModelRequest) -> list[Message]:
    return [m for m in req.messages if m.role == "tool"]


# --- basics ---------------------------------------------------------------------------------


async def test_answer_without_tools() -> None:
    m = ScriptedModel(["Hello!"])
    r = await Agent(m, [weather]).run("hi")
    assert r.status == "completed" and r.output == "Hello!" and r.reason is None
    assert r.turns == 1 and r.tool_calls == 0
    assert [x.role for x in r.messages] == ["user", "assistant"]
    assert r.usage.requests == 1 and r.usage.input_tokens == 10
    assert [s.name for s in m.requests[0].tools] == ["weather"]


async def test_tool_round_trip() -> None:
    m = ScriptedModel([call("weather", {"city": "Oslo"}, id="w1"), "It is sunny in Oslo."])
    r = await Agent(m, [weather]).run("weather in Oslo?")
    assert r.status == "completed" and r.output == "It is sunny in Oslo."
    assert RAN == [("weather", {"city": "Oslo"})]
    (tm,) = tool_msgs(m.requests[1])
    assert tm.tool_result is not None and tm.tool_result.call_id == "w1"
    assert tm.content == "sunny in Oslo"
    assert r.tool_calls == 1 and r.turns == 2
    assert [x.call_id for x in r.results] == ["w1"]


async def test_parallel_calls_in_one_turn_keep_ids_and_order() -> None:
    m = ScriptedModel(
        [
            [
                call("weather", {"city": "A"}, id="x1"),
                call("time_in", {"city": "B"}, id="x2"),
                call("weather", {"city": "C"}, id="x3"),
            ],
            "done",
        ]
    )
    r = await Agent(m, [weather, time_in]).run("go")
    tms = tool_msgs(m.requests[1])
    assert [t.tool_result.call_id for t in tms] == ["x1", "x2", "x3"]  # type: ignore[union-attr]
    assert [t.content for t in tms] == ["sunny in A", "noon in B", "sunny in C"]
    assert r.status == "completed"


async def test_missing_or_duplicate_call_ids_are_made_unique() -> None:
    from callgate import ToolCall

    m = ScriptedModel(
        [[ToolCall("", "weather", '{"city": "A"}'), ToolCall("", "weather", '{"city": "B"}')], "ok"]
    )
    await Agent(m, [weather]).run("go")
    ids = [t.tool_result.call_id for t in tool_msgs(m.requests[1])]  # type: ignore[union-attr]
    assert len(set(ids)) == 2 and all(ids)
    calls = m.requests[1].messages[1].tool_calls
    assert [c.id for c in calls] == ids


def test_run_sync_entry_point() -> None:
    m = ScriptedModel([call("weather", {"city": "Rome"}), "warm"])
    r = Agent(m, [weather]).run_sync("rome?")
    assert r.status == "completed" and r.output == "warm"
    assert RAN == [("weather", {"city": "Rome"})]


async def test_message_history_as_prompt_and_system_messages_dropped() -> None:
    m = ScriptedModel(["ok"])
    ctx = RunContext()
    await Agent(m, [weather], instructions="Be brief.").run(
        [
            Message.system("ignored"),
            Message.user("first"),
            Message.assistant("a"),
            Message.user("second"),
        ],
        ctx=ctx,
    )
    req = m.requests[0]
    assert [x.role for x in req.messages] == ["user", "assistant", "user"]
    assert req.system is not None and req.system.startswith("Be brief.")
    assert ctx.request == "second"


# --- max iterations -------------------------------------------------------------------------


async def test_max_iterations_then_one_final_request_without_tools() -> None:
    n = 0

    def model(req: ModelRequest) -> Any:
        nonlocal n
        n += 1
        if req.tool_choice == "none":
            return "Partial answer: sunny in 1 and 2."
        return call("weather", {"city": str(n)})

    m = FunctionModel(model)
    r = await Agent(m, [weather], budgets=Budgets(max_iterations=2)).run("loop")
    assert r.status == "stopped" and r.reason == "max_iterations"
    assert r.output == "Partial answer: sunny in 1 and 2."
    assert len(m.requests) == 3
    assert [q.tool_choice for q in m.requests] == ["auto", "auto", "none"]
    last = m.requests[-1]
    assert last.messages[-1].role == "user" and last.messages[-1].content == FINAL_ANSWER_PROMPT
    assert len(RAN) == 2


async def test_final_request_that_still_calls_tools_does_not_run_them() -> None:
    m = ScriptedModel([call("weather", {"city": "a"}), call("weather", {"city": "b"})])
    r = await Agent(m, [weather], budgets=Budgets(max_iterations=1)).run("x")
    assert r.status == "stopped" and r.reason == "max_iterations"
    assert r.output  # says it could not finish, never empty
    assert RAN == [("weather", {"city": "a"})]
    assert r.messages[-1].tool_calls == []


# --- loop breaker ---------------------------------------------------------------------------


async def test_identical_calls_warn_then_stop() -> None:
    same = {"city": "Paris"}
    m = ScriptedModel(
        [
            call("weather", same, id="1"),
            call("weather", {"city": " paris"}, id="2"),  # same after normalisation
            call("weather", same, id="3"),
            "Final: sunny.",
        ]
    )
    r = await Agent(m, [weather]).run("x")
    assert RAN == [("weather", {"city": "Paris"})]
    (warn,) = tool_msgs(m.requests[2])[1:]
    assert warn.tool_result is not None and warn.tool_result.call_id == "2"
    assert "Not run: loop detected (repeat)" in warn.content
    assert "The run stops if this happens again." in warn.content
    assert r.status == "stopped" and r.reason == "loop"
    assert r.output == "Final: sunny."
    assert m.requests[-1].tool_choice == "none"
    assert m.remaining == 0


async def test_near_identical_calls_trip() -> None:
    m = ScriptedModel(
        [
            call("weather", {"city": "Paris, France"}),
            call("weather", {"city": "France: Paris"}),
            call("weather", {"city": "the paris in france!"}),
            "ok",
        ]
    )
    r = await Agent(m, [weather]).run("x")
    assert [c["city"] for _, c in RAN] == ["Paris, France", "France: Paris"]
    last_tool = tool_msgs(m.requests[3])[-1]
    assert "loop detected (near-repeat)" in last_tool.content
    assert r.status == "completed"


async def test_paging_is_progress_not_a_loop() -> None:
    m = ScriptedModel([call("page", {"q": "flats", "page": i}) for i in range(1, 6)] + ["ok"])

    @tool
    def page(q: str, page: int) -> str:
        RAN.append(("page", {"page": page}))
        return "more"

    r = await Agent(m, [page]).run("x")
    assert len(RAN) == 5 and r.status == "completed"


async def test_ping_pong_trips() -> None:
    a = call("weather", {"city": "Paris"})
    b = call("time_in", {"city": "Paris"})
    script: list[Any] = []
    for i in range(4):
        src = a if i % 2 == 0 else b
        script.append(call(src.name, src.arguments, id=f"p{i}"))
    script.append("ok")
    m = ScriptedModel(script)
    r = await Agent(m, [weather, time_in]).run("x")
    contents = [t.content for t in tool_msgs(m.requests[-1])]
    assert any("loop detected" in c for c in contents)
    # the repeat of A (3rd turn) is already caught; B's repeat (4th) stops or warns
    assert RAN == [("weather", {"city": "Paris"}), ("time_in", {"city": "Paris"})]
    assert r.status in ("completed", "stopped")


async def test_breaker_can_be_switched_off() -> None:
    m = ScriptedModel([call("weather", {"city": "A"}), call("weather", {"city": "A"}), "ok"])
    r = await Agent(m, [weather], breaker=None).run("x")
    assert len(RAN) == 2 and r.status == "completed"


# --- budgets --------------------------------------------------------------------------------


async def test_tool_call_budget() -> None:
    m = ScriptedModel(
        [
            [call("weather", {"city": "a"}), call("weather", {"city": "b"})],
            [call("weather", {"city": "c"}), call("weather", {"city": "d"})],
            "Final with what I have.",
        ]
    )
    r = await Agent(m, [weather], budgets=Budgets(max_tool_calls=3)).run("x")
    assert [c["city"] for _, c in RAN] == ["a", "b", "c"]
    assert r.status == "stopped" and r.reason == "budget:tool_calls"
    assert r.output == "Final with what I have."
    refused = tool_msgs(m.requests[2])[-1]
    assert "tool-call budget of this run is used up" in refused.content
    assert r.tool_calls == 3


async def test_token_budget() -> None:
    m = ScriptedModel(
        [
            ModelResponse(Message.assistant("", [call("weather", {"city": "a"})]), Usage(500, 600)),
            "never reached",
        ]
    )
    r = await Agent(m, [weather], budgets=Budgets(max_total_tokens=1000)).run("x")
    assert r.status == "stopped" and r.reason == "budget:tokens"
    assert RAN == []  # the calls of the turn that broke the budget are not run
    assert r.usage.total_tokens == 1100


async def test_cost_budget_needs_a_price() -> None:
    with pytest.raises(ValueError, match="needs the model's price"):
        Agent(ScriptedModel(["x"]), [weather], budgets=Budgets(max_cost_usd=0.03))


async def test_cost_budget_is_priced_and_checked_before_the_turn() -> None:
    # $10 per million input tokens, $20 per million output: the first turn costs $0.02; the
    # next one would cost at least its input again ($0.015), more than the $0.01 left
    price = Price(input=10.0, output=20.0)
    m = ScriptedModel(
        [
            ModelResponse(
                Message.assistant("", [call("weather", {"city": "a"})]), Usage(1000, 500)
            ),
            "never",
        ]
    )
    agent = Agent(m, [weather], budgets=Budgets(max_cost_usd=0.03), price=price)
    r = await agent.run("x")
    assert r.status == "stopped" and r.reason == "budget:cost"
    assert len(RAN) == 1 and len(m.requests) == 1  # the unaffordable turn was never sent
    assert r.usage.cost_usd == pytest.approx(0.02)
    assert "cost budget" in r.output and "$0.0200 of $0.0300" in r.output


async def test_cost_budget_refuses_the_calls_of_the_turn_that_crossed_it() -> None:
    price = Price(input=10.0, output=20.0)
    big = Usage(1000, 5000)  # $0.11: the model ignored the cap it was given
    m = ScriptedModel([ModelResponse(Message.assistant("", [call("weather", {"city": "a"})]), big)])
    agent = Agent(m, [weather], budgets=Budgets(max_cost_usd=0.03), price=price)
    r = await agent.run("x")
    assert r.status == "stopped" and r.reason == "budget:cost" and RAN == []
    assert r.output.startswith("I had to stop before finishing")
    assert m.requests[0].max_tokens is not None and m.requests[0].max_tokens < 1500


def _metered(reply_tokens: int) -> FunctionModel:
    """A model that honours max_tokens: each turn asks for weather and uses `reply_tokens`
    output tokens unless capped; its input is 10 tokens per message."""

    def fn(req: ModelRequest) -> ModelResponse:
        out = min(reply_tokens, req.max_tokens) if req.max_tokens else reply_tokens
        msg = Message.assistant("", [call("weather", {"city": f"c{len(req.messages)}"})])
        return ModelResponse(msg, Usage(10 * len(req.messages), out))

    return FunctionModel(fn)


async def test_token_budget_never_overshoots_and_ends_with_an_answer() -> None:
    m = _metered(30)
    r = await Agent(m, [weather], budgets=Budgets(max_total_tokens=60)).run("x")
    assert r.status == "stopped" and r.reason == "budget:tokens"
    assert r.usage.total_tokens <= 60
    assert r.output.startswith("I had to stop before finishing") and "of 60 tokens" in r.output
    assert all(q.max_tokens is not None and q.max_tokens <= 60 for q in m.requests)


async def test_token_budget_caps_each_request_to_what_is_left() -> None:
    m = _metered(20)
    r = await Agent(m, [weather], budgets=Budgets(max_total_tokens=200)).run("x")
    assert r.reason == "budget:tokens" and r.usage.total_tokens <= 200
    caps = [q.max_tokens or 0 for q in m.requests]
    assert len(caps) >= 3 and all(0 < c < 200 for c in caps)
    # after the first turn (estimated from the whole request: tools and guidance included), the
    # estimate follows the real usage, and what is left only shrinks
    assert caps[1:] == sorted(caps[1:], reverse=True)


def test_price_counts_cached_input_at_its_own_rate() -> None:
    p = Price(input=2.0, output=8.0, cached_input=0.5)
    assert p.cost(Usage(1_000_000, 0, cache_read_tokens=400_000)) == pytest.approx(1.2 + 0.2)
    assert Price(1.0, 1.0).cost(Usage(10, 10, cache_read_tokens=5)) == pytest.approx(20e-6)
    with pytest.raises(ValueError):
        Price(-1.0, 1.0)


async def test_correction_budget_stops_the_run_plainly() -> None:
    bad = [call("weather", {"town": f"x{i}"}) for i in range(3)]
    m = ScriptedModel([*bad, "never"])
    r = await Agent(m, [weather]).run("x")
    assert r.status == "stopped" and r.reason == "corrections"
    assert "correction budget" in r.output
    assert RAN == []
    assert m.remaining == 1


# --- tool_choice ----------------------------------------------------------------------------


async def test_tool_choice_per_agent_per_run_and_per_step() -> None:
    def model(req: ModelRequest) -> Any:
        if len(req.messages) < 5:
            return call("weather", {"city": str(len(req.messages))})
        return "done"

    m = FunctionModel(model)
    await Agent(m, [weather], tool_choice="required").run("x")
    assert [q.tool_choice for q in m.requests] == ["required", "required", "required"]

    m = FunctionModel(model)
    await Agent(m, [weather]).run("x", tool_choice=NamedToolChoice("weather"))
    assert all(q.tool_choice == NamedToolChoice("weather") for q in m.requests)

    m = FunctionModel(model)
    await Agent(m, [weather]).run(
        "x", step_tool_choice=lambda step: NamedToolChoice("weather") if step == 0 else None
    )
    assert [q.tool_choice for q in m.requests] == [NamedToolChoice("weather"), "auto", "auto"]


async def test_tool_choice_none_never_runs_tools() -> None:
    m = ScriptedModel([call("weather", {"city": "a"}), "plain answer"])
    r = await Agent(m, [weather]).run("x", tool_choice="none")
    assert RAN == []
    assert "tools are switched off" in tool_msgs(m.requests[1])[0].content
    assert r.output == "plain answer"
    assert m.requests[0].tool_choice == "none"


async def test_parallel_tool_calls_and_strict_flags_reach_the_model() -> None:
    m = ScriptedModel(["ok"])
    await Agent(m, [weather], parallel_tool_calls=False, strict=True).run("x")
    assert m.requests[0].parallel_tool_calls is False and m.requests[0].strict is True


# --- guidance -------------------------------------------------------------------------------


async def test_guidance_generated_from_the_toolset() -> None:
    m = ScriptedModel(["ok"])
    gate = Gate([weather, delete_account], approver=None)
    await Agent(m, gate, instructions="You are a helpful bot.").run("x")
    system = m.requests[0].system
    assert system is not None
    assert system.startswith("You are a helpful bot.\n\nTool use:")
    assert "need the user's confirmation: delete_account" in system
    assert 'weather({"city": "Paris"})' in system


async def test_guidance_override_and_off() -> None:
    m = ScriptedModel(["ok"])
    await Agent(m, [weather], guidance="Only call weather for cities.").run("x")
    assert m.requests[0].system == "Only call weather for cities."
    m = ScriptedModel(["ok"])
    await Agent(m, [weather], guidance=False, instructions="Hi.").run("x")
    assert m.requests[0].system == "Hi."
    m = ScriptedModel(["ok"])
    await Agent(m, [weather], guidance=False).run("x")
    assert m.requests[0].system is None


async def test_guidance_follows_visible_tools() -> None:
    from callgate import Toolset

    ts = Toolset([weather])
    m = ScriptedModel(["ok", "ok"])
    agent = Agent(m, ts)
    await agent.run("x")
    ts.register(delete_account)
    await agent.run("y")
    assert "delete_account" not in (m.requests[0].system or "")
    assert "delete_account" in (m.requests[1].system or "")


# --- approvals: pause and resume ------------------------------------------------------------


class FakeApprover:
    """Pending until `decide` is called; an approval is consumed by the one call it covers."""

    def __init__(self) -> None:
        self.decisions: dict[str, bool] = {}
        self.used: set[str] = set()
        self.requests: list[str] = []
        self.completed: list[str] = []

    async def check(self, inv: Invocation, decision: PolicyDecision) -> None:
        key = inv.call.id
        if key in self.used:
            raise ToolDenied("this approval was already used")
        verdict = self.decisions.get(key)
        if verdict is None:
            self.requests.append(key)
            raise ApprovalRequired(f"ap-{key}", f"{inv.tool.name} needs approval")
        if not verdict:
            raise ToolDenied("The account owner declined.")
        self.used.add(key)

    async def settle(self, inv: Invocation, res: Any, reason: str) -> None:
        if inv.started:
            self.completed.append(inv.call.id)


async def test_pause_and_resume_runs_the_approved_call_exactly_once() -> None:
    ap = FakeApprover()
    m = ScriptedModel(
        [
            [
                call("weather", {"city": "a"}, id="w"),
                call("delete_account", {"account_id": "A1"}, id="d"),
            ],
            "Deleted A1.",
        ]
    )
    agent = Agent(m, Gate([weather, delete_account], approver=ap))
    r = await agent.run("delete A1")
    assert r.status == "paused" and r.reason == "approval"
    assert r.pending == [
        {
            "call_id": "d",
            "tool": "delete_account",
            "approval_id": "ap-d",
            "message": r.pending[0]["message"],
        }
    ]
    assert "needs a person's approval" in r.pending[0]["message"]
    assert RAN == [("weather", {"city": "a"})]
    assert len(m.requests) == 1

    # still undecided: stays paused, nothing runs
    r2 = await agent.resume(r.run_id)
    assert r2.status == "paused"
    assert RAN == [("weather", {"city": "a"})]

    ap.decisions["d"] = True
    r3 = await agent.resume(r.run_id)
    assert r3.status == "completed" and r3.output == "Deleted A1."
    assert RAN == [("weather", {"city": "a"}), ("delete_account", {"account_id": "A1"})]
    assert ap.completed == ["d"]
    tms = tool_msgs(m.requests[1])
    assert [t.tool_result.call_id for t in tms] == ["w", "d"]  # type: ignore[union-attr]
    assert tms[1].content == "deleted A1"
    # the weather call was not repeated on resume, and the run cannot be resumed twice
    with pytest.raises(CallgateError, match="no paused run"):
        await agent.resume(r.run_id)
    assert len(RAN) == 2


async def test_denied_approval_is_told_to_the_model() -> None:
    ap = FakeApprover()
    m = ScriptedModel(
        [call("delete_account", {"account_id": "A1"}, id="d"), "I could not delete it."]
    )
    agent = Agent(m, Gate([delete_account], approver=ap))
    r = await agent.run("delete")
    assert r.status == "paused"
    ap.decisions["d"] = False
    r2 = await agent.resume(r.run_id)
    assert r2.status == "completed"
    (tm,) = tool_msgs(m.requests[1])
    assert tm.tool_result is not None and tm.tool_result.error_kind == "denied"
    assert "The account owner declined." in tm.content
    assert RAN == []


def test_resume_sync_and_context_survive() -> None:
    ap = FakeApprover()
    seen: list[RunContext] = []

    @tool(destructive=True)
    def wipe(ctx: RunContext) -> str:
        seen.append(ctx)
        return "wiped"

    m = ScriptedModel([call("wipe", {}, id="z"), "wiped it"])
    agent = Agent(m, Gate([wipe], approver=ap))
    ctx = RunContext(user_id="u9", tenant="t1", roles=frozenset({"ops"}))
    r = agent.run_sync("wipe", ctx=ctx)
    ap.decisions["z"] = True
    r2 = agent.resume_sync(r.run_id, deps={"db": 1})
    assert r2.status == "completed"
    (c,) = seen
    assert (c.user_id, c.tenant, c.roles, c.deps, c.run_id) == (
        "u9",
        "t1",
        frozenset({"ops"}),
        {"db": 1},
        ctx.run_id,
    )


async def test_model_error_propagates_to_the_caller() -> None:
    m = ScriptedModel([])
    with pytest.raises(AssertionError, match="ran out of replies"):
        await Agent(m, [weather]).run("x")


async def test_turn_observers_see_every_turn() -> None:
    turns: list[Any] = []

    class Obs:
        def on_call(self, rec: Any) -> None: ...

        def on_turn(self, rec: Any) -> None:
            turns.append(rec)

    m = ScriptedModel([call("weather", {"city": "a"}), "done"])
    await Agent(m, Gate([weather], observers=[Obs()])).run("x")
    assert [(t.turn, t.stop_reason, len(t.tool_calls)) for t in turns] == [
        (0, "tool_calls", 1),
        (1, "end_turn", 0),
    ]


async def test_context_turn_is_set_for_each_step() -> None:
    turns: list[int] = []

    @tool
    def probe(ctx: RunContext, i: int) -> None:
        turns.append(ctx.turn)

    m = ScriptedModel([call("probe", {"i": 1}), call("probe", {"i": 2}), "ok"])
    await Agent(m, [probe]).run("x")
    assert turns == [0, 1]


async def test_cancelling_a_run_cancels_the_running_tool() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    @tool
    async def slow() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    m = ScriptedModel([call("slow", {})])
    task = asyncio.create_task(Agent(m, [slow]).run("x"))
    await asyncio.wait_for(started.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()


async def test_final_answer_request_respects_the_token_budget() -> None:
    # the call budget stops the run; the last tools-off request is capped by what tokens are left
    m = _metered(30)
    budgets = Budgets(max_tool_calls=1, max_total_tokens=230)
    r = await Agent(m, [weather], budgets=budgets).run("x")
    assert r.reason == "budget:tool_calls" and r.output
    assert len(m.requests) == 3 and m.requests[2].tool_choice == "none"
    last_cap = m.requests[2].max_tokens
    assert last_cap is not None and last_cap < 30  # capped below what the model would use
    assert r.usage.total_tokens <= 230


async def test_no_final_request_when_none_is_affordable() -> None:
    m = _metered(30)
    budgets = Budgets(max_tool_calls=1, max_total_tokens=205)
    r = await Agent(m, [weather], budgets=budgets).run("x")
    assert len(m.requests) == 2  # the last request would not fit: not sent
    assert r.reason == "budget:tokens" and r.output.startswith("I had to stop before finishing")
    assert r.usage.total_tokens <= 205
