"""The agent loop: ask the model ▸ gate its calls (in parallel) ▸ hand back results ▸ repeat.

Guards, all on by default:

- `max_iterations` model turns; then one last request with tools switched off, asking for a final
  answer from what is known;
- a loop breaker (`callgate.agent.guards`) that first explains, in the tool result, why a
  repeated or ping-pong call was not run, and stops the run if it happens again;
- budgets on tool calls, tokens, cost and correction attempts, each ending the run with a final
  answer (one last tools-off request, or a plain explanation when no request is affordable); the
  token and cost budgets are checked before each turn too (`callgate.agent.budgets`);
- `tool_choice` per run and per step.

Every call a model proposes goes through the gate, including the ones the run's own guards
refuse (tools switched off, the loop breaker, the call budget): the gate records them with the
guard's rule, so the audit log holds every proposed call.

A call that needs a person's approval pauses the run: its state is saved in a `RunStore` and
`Agent.resume(run_id)` continues it once the approval is decided (in the same or a new process).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from types import UnionType
from typing import Any, Concatenate, Generic, Literal, ParamSpec, TypeVar

from callgate import serde
from callgate.agent.budgets import (
    Budgets,
    Price,
    budget_stop_text,
    estimate_tokens,
    output_allowance,
    over_budget,
)
from callgate.agent.guards import LoopBreaker, RunGuards, stop_reason
from callgate.agent.guidance import tool_guidance
from callgate.agent.ledger import Ledger, LedgerClock
from callgate.agent.output import OutputSpec, OutputT, build_output, split_calls
from callgate.agent.pricing import PriceTable
from callgate.agent.router import Router, RoutingChoice
from callgate.context import RunContext
from callgate.errors import CallgateError, ErrorKind
from callgate.gate.core import Gate
from callgate.gate.protocols import Refusal, TurnRecord
from callgate.messages import Message, ToolCall, ToolResult, Usage
from callgate.models import (
    Model,
    ModelRequest,
    ModelResponse,
    NamedToolChoice,
    ResponseFinished,
    TextDelta,
    ToolCallDelta,
    ToolCallFinished,
    ToolCallStarted,
    ToolChoice,
)
from callgate.runs import MemoryRunStore, RunStore
from callgate.tools.definition import Tool, ToolSpec
from callgate.tools.toolset import Toolset

_S = TypeVar("_S")
_P = ParamSpec("_P")
_R = TypeVar("_R")

RunStatus = Literal["completed", "paused", "stopped"]
_PENDING = ErrorKind.PENDING_APPROVAL.value
log = logging.getLogger("callgate.agent.loop")

FINAL_ANSWER_PROMPT = (
    "You have used all the steps allowed for this request. Answer the user now, without tools: "
    "say what you found and what is still missing."
)
FINAL_RESULT_PROMPT = (
    "You have used all the steps allowed for this request. Give your final result now with "
    "the `{name}` tool, from what you found."
)
_NO_RESULT = (
    "I could not complete this: my answers did not produce a valid result and the correction "
    "budget for this request is used up."
)


class OutputMissing(CallgateError):
    """`RunResult.output` was read on a structured-output run that ended without a valid
    result (paused for approval, or stopped by a guard before the model gave one)."""


@dataclass(slots=True)
class RunResult(Generic[OutputT]):
    """How a run ended.

    - completed: the model answered (`output`).
    - paused: calls wait for approval (`pending`: their approval ids); resume with `run_id`.
    - stopped: a guard ended it (`reason`: iterations, loop, budget:..., corrections); `output`
      holds the final answer when one could still be obtained.

    `output` is the answer's text, or with `Agent(output_type=T)` the validated `T`; `text` is
    always the model's last text (or the run's own explanation when it stopped).
    """

    status: RunStatus
    text: str
    messages: list[Message]
    usage: Usage
    run_id: str
    reason: str | None = None
    turns: int = 0
    tool_calls: int = 0
    pending: list[dict[str, Any]] = field(default_factory=list)
    results: list[ToolResult] = field(default_factory=list)
    #: the typed output (the text itself for runs without `output_type`); None when a
    #: structured run ended without a valid result
    value: OutputT | None = None
    #: where the run's time and money went (`callgate.agent.ledger`)
    ledger: Ledger | None = None

    @property
    def output(self) -> OutputT:
        """The run's answer; raises `OutputMissing` when a structured run has none."""
        if self.value is None:
            raise OutputMissing(
                f"the run ended {self.status} ({self.reason or 'no reason'}) without a valid "
                "structured result; its text is in `RunResult.text`"
            )
        return self.value


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TurnStarted:
    """A model turn is about to be requested: a UI can show that the agent is thinking."""

    turn: int


@dataclass(frozen=True, slots=True)
class ModelTurn:
    """A complete model turn (after streaming, if any)."""

    turn: int
    response: ModelResponse
    duration_s: float


@dataclass(frozen=True, slots=True)
class ToolStarted:
    """A proposed call goes to the gate now (which may still refuse it: `ToolFinished` says how
    it ended), so a UI can show which tools are at work."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class ToolStatus:
    """Emitted every `status_interval_s` while a call is still running."""

    call: ToolCall
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class ToolFinished:
    """A call's result, exactly as the model will read it."""

    result: ToolResult


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The last event of a stream: the run's outcome, as `Agent.run` would return it."""

    result: RunResult[Any]


AgentEvent = (
    TurnStarted
    | TextDelta
    | ToolCallStarted
    | ToolCallDelta
    | ToolCallFinished
    | ModelTurn
    | ToolStarted
    | ToolStatus
    | ToolFinished
    | RunFinished
)

StepChoice = Callable[[int], ToolChoice | None]


def _blocking(
    method: Callable[Concatenate[_S, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[_S, _P], _R]:
    """The blocking twin of an async method (same parameters, run in a fresh event loop), so
    `run_sync` and `resume_sync` cannot drift from `run` and `resume`."""

    @functools.wraps(method)
    def call(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return asyncio.run(method(self, *args, **kwargs))

    call.__name__ = f"{method.__name__}_sync"
    call.__qualname__ = f"{method.__qualname__}_sync"
    call.__doc__ = f"Blocking twin of `{method.__name__}` (runs it in a fresh event loop)."
    return call


class Agent(Generic[OutputT]):
    """A model, a gate and the guards around them.

    `tools` is a `Gate` (for full control of policy, approval, middleware) or tools/a toolset
    (a default gate is built; plain functions are wrapped as `@tool` would). `instructions` is
    the system prompt; tool-use guidance generated from the tools is appended unless
    `guidance=False` or replaced by a string. `price` is the model's price, used to fill the cost
    of each turn (providers do not report it); `Budgets(max_cost_usd=...)` requires it.

    `output_type` (a Pydantic model, dataclass, TypedDict or a union of them) makes the run's
    answer a validated value of that type (`callgate.agent.output`). `router` offers the model
    only the tools relevant to each turn (`callgate.agent.router`). `final_model` writes the
    answer while `model` does the tool-calling turns (`callgate.providers.fallback.SplitModel`).
    """

    def __init__(
        self,
        model: Model,
        tools: Gate | Toolset | Iterable[Tool | Callable[..., Any]] = (),
        *,
        instructions: str | None = None,
        guidance: bool | str = True,
        budgets: Budgets | None = None,
        tool_choice: ToolChoice = "auto",
        parallel_tool_calls: bool = True,
        strict: bool = False,
        breaker: Callable[[], LoopBreaker] | None = LoopBreaker,
        run_store: RunStore | None = None,
        status_interval_s: float = 1.0,
        price: Price | PriceTable | None = None,
        output_type: type[OutputT] | UnionType | None = None,
        router: Router | None = None,
        final_model: Model | None = None,
    ) -> None:
        self.prices = price if isinstance(price, PriceTable) else PriceTable()
        #: the model's price from the table is looked up at the first turn (the catalogue is
        #: slow to import), or now when a cost budget needs it
        self._price_pending = not isinstance(price, Price)
        price = price if isinstance(price, Price) else None
        if budgets is not None and budgets.max_cost_usd is not None and price is None:
            price = self.prices.for_model(model.name)
            self._price_pending = False
        if budgets is not None and budgets.max_cost_usd is not None and price is None:
            raise ValueError(
                f"Budgets(max_cost_usd=...) needs the model's price, and {model.name!r} is not "
                "in the price table (install callgate[prices] for the maintained one): pass "
                "Agent(..., price=Price(input=..., output=...)) in USD per million tokens, or "
                "a PriceTable(models={...}) that names it"
            )
        self.model = model
        self.price = price
        self._priced_name = model.name
        self.router = router
        self.gate = self._gate_of(tools, router)
        self._output: OutputSpec[Any] | None = None
        if output_type is not None:
            self._output = build_output(output_type, self.gate)
        if final_model is not None:
            from callgate.providers.fallback import SplitModel

            answer_tools = (self._output.name,) if self._output is not None else ()
            self.model = SplitModel(model, final_model, answer_tools=answer_tools)
        self.instructions = instructions
        self.guidance = guidance
        self.budgets = budgets or Budgets()
        self.tool_choice: ToolChoice = tool_choice
        self.parallel_tool_calls = parallel_tool_calls
        self.strict = strict
        self._breaker_factory = breaker
        self.run_store: RunStore = run_store or MemoryRunStore()
        self.status_interval_s = status_interval_s
        self._system_cache: tuple[tuple[str, ...], str | None] | None = None

    @staticmethod
    def _gate_of(
        tools: Gate | Toolset | Iterable[Tool | Callable[..., Any]], router: Router | None
    ) -> Gate:
        """The run's gate; a router joins it as middleware, so its choice holds at call time."""
        if not isinstance(tools, Gate):
            return Gate(tools, middleware=[router] if router is not None else ())
        if router is not None and router not in tools.middleware:
            raise ValueError(
                "Agent(router=...) with your own Gate: add the router to the gate's middleware "
                "too (Gate(..., middleware=[router, ...])), so a routed-out tool is unknown at "
                "call time as well as hidden from the model"
            )
        return tools

    # public entry points -------------------------------------------------------------------

    async def run(
        self,
        prompt: str | Sequence[Message],
        *,
        ctx: RunContext | None = None,
        tool_choice: ToolChoice | None = None,
        step_tool_choice: StepChoice | None = None,
    ) -> RunResult[OutputT]:
        """Run until the model answers, a guard stops it, or a call waits for approval."""
        ctx = ctx or RunContext()
        with self._run_scope(ctx):
            return await _outcome(
                self._loop(prompt, ctx, tool_choice, step_tool_choice, streaming=False)
            )

    def _run_scope(self, ctx: RunContext) -> contextlib.ExitStack:
        """The run-wide scopes observers open (`agent_run`: the telemetry's ``invoke_agent``
        span, current while the run goes so its model and tool spans are children)."""
        stack = contextlib.ExitStack()
        for o in self.gate.observers:
            agent_run = getattr(o, "agent_run", None)
            if agent_run is not None:
                stack.enter_context(agent_run(ctx, self.model.name))
        return stack

    run_sync = _blocking(run)

    def stream(
        self,
        prompt: str | Sequence[Message],
        *,
        ctx: RunContext | None = None,
        tool_choice: ToolChoice | None = None,
        step_tool_choice: StepChoice | None = None,
    ) -> AsyncIterator[AgentEvent]:
        """Events as they happen: text and argument deltas (when the model streams), each call
        starting, status while slow tools run, each result, and `RunFinished` last."""
        return self._loop(prompt, ctx, tool_choice, step_tool_choice, streaming=True)

    async def resume(self, run_id: str, *, deps: Any = None) -> RunResult[OutputT]:
        """Continue a paused run after its approvals were decided.

        Pending calls go through the gate again: approved ones run (exactly once, guaranteed by
        the approval store), denied ones come back to the model as denied, and ones still
        undecided keep the run paused.
        """
        return await _outcome(self._resume(run_id, deps, streaming=False))

    resume_sync = _blocking(resume)

    # the loop ------------------------------------------------------------------------------

    async def _loop(
        self,
        prompt: str | Sequence[Message],
        ctx: RunContext | None,
        tool_choice: ToolChoice | None,
        step_tool_choice: StepChoice | None,
        *,
        streaming: bool,
    ) -> AsyncIterator[AgentEvent]:
        ctx = ctx or RunContext()
        if isinstance(prompt, str):
            messages = [Message.user(prompt)]
            if ctx.request is None:
                ctx.request = prompt
        else:
            messages = [m for m in prompt if m.role != "system"]
            if ctx.request is None:
                users = [m.content for m in messages if m.role == "user"]
                ctx.request = users[-1] if users else None
        state = _RunState(
            ctx=ctx,
            messages=messages,
            guards=self._guards(),
            tool_choice=tool_choice or self.tool_choice,
            step_tool_choice=step_tool_choice,
        )
        async for ev in self._drive(state, streaming):
            yield ev

    async def _resume(
        self, run_id: str, deps: Any, *, streaming: bool
    ) -> AsyncIterator[AgentEvent]:
        saved = self.run_store.load(run_id)
        if saved is None:
            raise CallgateError(f"no paused run {run_id!r} in the run store")
        ctx = serde.context_from_dict(saved["ctx"], deps)
        state = _RunState(
            ctx=ctx,
            messages=[serde.message_from_dict(m) for m in saved["messages"]],
            guards=self._guards(saved["calls_made"]),
            tool_choice=saved.get("tool_choice", "auto"),
            step_tool_choice=None,
            usage=serde.usage_from_dict(saved["usage"]),
            turns=saved["turns"],
        )
        state.mark = len(state.messages)
        breaker = state.guards.breaker
        if breaker is not None:
            for m in state.messages:
                if m.tool_calls:
                    breaker.check_turn(list(m.tool_calls))
        calls = [serde.call_from_dict(c) for c in saved["calls"]]
        done = {r["call_id"]: serde.result_from_dict(r) for r in saved["done"]}
        todo = [c for c in calls if c.id not in done]
        fresh = await self.gate.execute_many(todo, ctx, state.messages)
        for r in fresh:
            done[r.call_id] = r
            yield ToolFinished(r)
        results = [done[c.id] for c in calls]
        outcome = self._after_calls(state, calls, results)
        if outcome is not None:
            await self._finish_run(state.ctx, outcome)
            yield RunFinished(outcome)
            return
        self.run_store.delete(run_id)
        async for ev in self._drive(state, streaming):
            yield ev

    def _guards(self, calls_made: int = 0) -> RunGuards:
        breaker = self._breaker_factory() if self._breaker_factory else None
        return RunGuards(breaker, self.budgets.max_tool_calls, calls_made)

    async def _drive(self, st: _RunState, streaming: bool) -> AsyncIterator[AgentEvent]:
        """Turns until one of them ends the run (it sets `st.outcome`)."""
        while st.outcome is None:
            async for ev in self._turn(st, streaming):
                yield ev
        if self.router is not None:
            self.router.forget(st.ctx)
        await self._finish_run(st.ctx, st.outcome)
        yield RunFinished(st.outcome)

    async def _finish_run(self, ctx: RunContext, result: RunResult[OutputT]) -> None:
        """Observers that keep runs (`on_run`) record how it ended and its ledger; observers
        that write in the background (the group-committing audit log) then have every record
        of the run durable before the run is reported finished."""
        for o in self.gate.observers:
            on_run = getattr(o, "on_run", None)
            try:
                if on_run is not None and result.ledger is not None:
                    on_run(ctx, result.status, result.reason, result.ledger)
            except Exception:
                log.exception("observer %r could not record the run's end", o)
        await self.gate.flush_records()

    async def _specs(self, st: _RunState) -> list[ToolSpec]:
        """The tools offered this turn: the run's tools (the routed few when a router is set)
        and the final-result tool of a structured run."""
        if self.router is not None:
            self.router.forget(st.ctx)  # rank every tool the run may see, not last turn's few
            st.routed = await self.router.route(self.gate.list_tools(st.ctx), st.messages, st.ctx)
        specs = self.gate.specs(st.ctx)
        if self._output is not None:
            specs.append(self._output.tool.spec)
        return specs

    def _refuse_text(self, st: _RunState) -> None:
        """A structured run's model answered in text: tell it to use the final-result tool,
        counting the attempt against the same correction budget as a wrong-typed result."""
        out = self._output
        assert out is not None
        c = st.ctx.corrections
        c[out.name] = c.get(out.name, 0) + 1
        c["*"] = c.get("*", 0) + 1
        left = min(
            out.tool.options.max_corrections - c[out.name],
            self.gate.max_corrections_per_run - c["*"],
        )
        if left <= 0:
            st.outcome = self._result(st, "stopped", _NO_RESULT, "corrections")
            return
        st.messages.append(Message.user(out.text_refused()))

    async def _output_turn(
        self,
        st: _RunState,
        calls: list[ToolCall],
        tools_off: bool,
        over: str | None,
        streaming: bool,
    ) -> AsyncIterator[AgentEvent]:
        """A turn that calls the final-result tool. Called alone and valid, it ends the run
        with the typed value (no further model turn). Called beside other tools it is refused
        (their results may change the answer) while the other calls are gated as usual."""
        out = self._output
        assert out is not None
        finals, others = split_calls(calls, out.name)
        refusals: list[Refusal | None] = [None] * len(calls)
        screened = st.guards.screen([calls[i] for i in others], tools_off, over)
        for i, refusal in zip(others, screened, strict=True):
            refusals[i] = refusal
        if len(finals) > 1 or others:
            for i in finals:
                refusals[i] = Refusal("output:not-alone", out.not_alone(), "correctable")
        got: dict[int, ToolResult] = {}
        for i in finals:
            if streaming:
                yield ToolStarted(calls[i])
            got[i] = await out.gate.execute(calls[i], st.ctx, st.messages, refusal=refusals[i])
            if streaming:
                yield ToolFinished(got[i])
        if not others and not got[finals[0]].is_error:
            res = got[finals[0]]
            st.results.append(res)
            st.messages.append(Message.tool(res))
            text = st.response.text if st.response is not None else ""
            status: RunStatus = "completed" if over is None else "stopped"
            st.outcome = self._result(st, status, text, over, value=res.data)
            return
        async for ev in self._gate_calls(st, [calls[i] for i in others], screened, streaming):
            yield ev
        for i, res in zip(others, st.turn_results, strict=True):
            got[i] = res
        st.turn_results = [got[i] for i in range(len(calls))]
        async for ev in self._after_turn(st, calls, refusals, streaming):
            yield ev

    async def _turn(self, st: _RunState, streaming: bool) -> AsyncIterator[AgentEvent]:
        """One model turn and the calls it proposed."""
        if st.turns >= self.budgets.max_iterations:
            async for ev in self._final_answer(st, "max_iterations", streaming):
                yield ev
            return
        st.ctx.turn = st.turns
        choice = st.tool_choice
        if st.step_tool_choice is not None:
            choice = st.step_tool_choice(st.turns) or choice
        req = self._request(st, await self._specs(st), choice)
        if not self._fits_budget(st, req):
            return
        yield TurnStarted(st.turns)
        t0 = time.perf_counter()
        async for ev in self._ask(st, req, streaming, all_events=True):
            yield ev
        response = st.response
        assert response is not None
        dt = time.perf_counter() - t0
        st.turns += 1
        self._account(st, response)
        st.messages.append(response.message)
        st.mark = len(st.messages)
        self._record_turn(st, response, dt)
        yield ModelTurn(st.turns - 1, response, dt)
        calls = response.message.tool_calls
        over = over_budget(self.budgets, st.usage)
        if not calls:
            if self._output is not None and over is None and choice != "none":
                self._refuse_text(st)
                return
            self._answered(st, response.text, over)
            return
        _ensure_ids(calls, st.turns)
        if self._output is not None and any(c.name == self._output.name for c in calls):
            async for ev in self._output_turn(st, list(calls), choice == "none", over, streaming):
                yield ev
            return
        refusals = st.guards.screen(list(calls), choice == "none", over)
        t_tools = time.perf_counter()
        async for ev in self._gate_calls(st, list(calls), refusals, streaming):
            yield ev
        st.clock.tools_s += time.perf_counter() - t_tools
        async for ev in self._after_turn(st, list(calls), refusals, streaming):
            yield ev

    def _fits_budget(self, st: _RunState, req: ModelRequest) -> bool:
        """Cap the request's output to what the token and cost budgets leave after its estimated
        input; when nothing is left, end the run plainly instead of sending it."""
        b = self.budgets
        if b.max_total_tokens is None and (b.max_cost_usd is None or self.price is None):
            return True
        if st.last_usage is None:
            next_input = estimate_tokens(st.messages, req)
        else:
            added = estimate_tokens(st.messages[st.mark :])
            next_input = st.last_usage.input_tokens + st.last_usage.output_tokens + added
        allowed = output_allowance(b, st.usage, next_input, self.price)
        if allowed is None:
            return True
        if allowed <= 0:
            reason = over_budget(b, st.usage) or (
                "budget:tokens" if b.max_total_tokens is not None else "budget:cost"
            )
            st.outcome = self._result(st, "stopped", budget_stop_text(reason, b, st.usage), reason)
            return False
        own = getattr(self.model, "max_tokens", None)
        cap = min(allowed, own) if isinstance(own, int) and own > 0 else allowed
        req.max_tokens = cap if req.max_tokens is None else min(req.max_tokens, cap)
        return True

    def _answered(self, st: _RunState, text: str, over: str | None) -> None:
        """The model answered without calls: the run is complete (or stopped, when that answer
        crossed a budget; the answer is still given)."""
        if over is None:
            st.outcome = self._result(st, "completed", text)
            return
        output = text or budget_stop_text(over, self.budgets, st.usage)
        st.outcome = self._result(st, "stopped", output, over)

    def _account(self, st: _RunState, response: ModelResponse) -> None:
        """Add a turn's usage to the run's, pricing it when the provider did not."""
        usage = response.usage
        if self._price_pending:
            self.price = self.prices.for_model(self._priced_name)
            self._price_pending = False
        price = self.price
        if response.model and response.model != self.model.name:  # a fallback answered
            price = self.prices.for_model(response.model) or price
        if price is not None and usage.cost_usd == 0:
            usage.cost_usd = price.cost(usage)
        st.usage = st.usage + usage
        st.last_usage = usage

    async def _ask(
        self, st: _RunState, req: ModelRequest, streaming: bool, *, all_events: bool
    ) -> AsyncIterator[AgentEvent]:
        """One model request; stream events pass through (only text deltas unless
        `all_events`); the response lands in `st.response`."""
        st.response = None
        if not (streaming and hasattr(self.model, "stream")):
            st.response = await self.model.request(req)
            return
        async for ev in self.model.stream(req):
            if isinstance(ev, ResponseFinished):
                st.response = ev.response
            elif all_events or isinstance(ev, TextDelta):
                yield ev
        if st.response is None:
            raise CallgateError(f"model {self.model.name!r} ended a stream without a response")

    async def _gate_calls(
        self,
        st: _RunState,
        calls: list[ToolCall],
        refusals: list[Refusal | None],
        streaming: bool,
    ) -> AsyncIterator[AgentEvent]:
        """Every proposed call goes through the gate, the run's refusals included (so each one
        is recorded); results land in `st.turn_results`, in the order of `calls`."""
        if not streaming:
            st.turn_results = await self.gate.execute_many(calls, st.ctx, st.messages, refusals)
            return
        by_id: dict[str, ToolResult] = {}
        async for ev in self._execute_streaming(st, calls, refusals):
            if isinstance(ev, ToolFinished):
                by_id[ev.result.call_id] = ev.result
            yield ev
        st.turn_results = [by_id[c.id] for c in calls]

    async def _after_turn(
        self,
        st: _RunState,
        calls: list[ToolCall],
        refusals: list[Refusal | None],
        streaming: bool,
    ) -> AsyncIterator[AgentEvent]:
        """Pause, stop or carry on after the calls of a turn were gated."""
        outcome = self._after_calls(st, calls, st.turn_results)
        if outcome is not None:
            st.outcome = outcome
            return
        reason = stop_reason(refusals)
        if reason in ("budget:tokens", "budget:cost"):
            text = budget_stop_text(reason, self.budgets, st.usage)
            st.outcome = self._result(st, "stopped", text, reason)
        elif reason is not None:
            async for ev in self._final_answer(st, reason, streaming):
                yield ev

    def _after_calls(
        self, st: _RunState, calls: list[ToolCall], results: list[ToolResult]
    ) -> RunResult[OutputT] | None:
        """Append results, or pause/stop. Returns a RunResult when the run ends here."""
        st.results.extend(r for r in results if r.error_kind != _PENDING)
        pending = [r for r in results if r.error_kind == _PENDING]
        if pending:
            return self._pause(st, calls, results, pending)
        for r in results:
            st.messages.append(Message.tool(r))
        if any(r.correction_budget_exhausted for r in results):
            return self._result(
                st,
                "stopped",
                "I could not complete this: my tool calls kept failing validation and the "
                "correction budget for this request is used up.",
                "corrections",
            )
        return None

    def _pause(
        self,
        st: _RunState,
        calls: list[ToolCall],
        results: list[ToolResult],
        pending: list[ToolResult],
    ) -> RunResult[OutputT]:
        state = {
            "ctx": serde.context_to_dict(st.ctx),
            "messages": [serde.message_to_dict(m) for m in st.messages],
            "calls": [serde.call_to_dict(c) for c in calls],
            "done": [serde.result_to_dict(r) for r in results if r.error_kind != _PENDING],
            "usage": serde.usage_to_dict(st.usage),
            "turns": st.turns,
            "calls_made": st.guards.calls_made,
            "tool_choice": st.tool_choice if isinstance(st.tool_choice, str) else "auto",
            "paused_at": time.time(),
        }
        self.run_store.save(st.ctx.run_id, state)
        res = self._result(st, "paused", "", "approval")
        res.pending = [
            {
                "call_id": r.call_id,
                "tool": r.name,
                "approval_id": r.approval_id,
                "message": r.content,
            }
            for r in pending
        ]
        return res

    async def _execute_streaming(
        self, st: _RunState, calls: list[ToolCall], refusals: list[Refusal | None]
    ) -> AsyncIterator[AgentEvent]:
        sem = asyncio.Semaphore(self.gate.max_parallel)

        async def one(c: ToolCall, refusal: Refusal | None) -> ToolResult:
            async with sem:
                return await self.gate.execute(c, st.ctx, st.messages, refusal=refusal)

        started = time.perf_counter()
        tasks: dict[asyncio.Task[ToolResult], ToolCall] = {}
        for c, r in zip(calls, refusals, strict=True):
            yield ToolStarted(c)
            tasks[asyncio.ensure_future(one(c, r))] = c
        try:
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(
                    pending, timeout=self.status_interval_s, return_when=asyncio.FIRST_COMPLETED
                )
                for t in done:
                    yield ToolFinished(t.result())
                if not done:
                    for t in pending:
                        yield ToolStatus(tasks[t], time.perf_counter() - started)
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()

    async def _final_answer(
        self, st: _RunState, reason: str, streaming: bool
    ) -> AsyncIterator[AgentEvent]:
        """One last request with tools switched off, so a stopped run still answers."""
        out = self._output
        if out is None:
            st.messages.append(Message.user(FINAL_ANSWER_PROMPT))
            req = self._request(st, self.gate.specs(st.ctx), "none")
        else:  # a structured run's last answer can only be the final-result tool
            st.messages.append(Message.user(FINAL_RESULT_PROMPT.format(name=out.name)))
            req = self._request(st, [out.tool.spec], NamedToolChoice(out.name))
        if not self._fits_budget(st, req):  # not even a last answer is affordable
            return
        t0 = time.perf_counter()
        # the final answer streams like any other; calls it still proposes are not shown
        async for ev in self._ask(st, req, streaming, all_events=False):
            yield ev
        response = st.response
        assert response is not None
        self._account(st, response)
        st.turns += 1
        text = response.text
        value = await self._last_value(st, response) if out is not None else None
        if response.tool_calls:
            text = text or "I could not finish this request within the allowed steps."
            response.message.tool_calls = []
        st.messages.append(response.message)
        self._record_turn(st, response, time.perf_counter() - t0)
        yield ModelTurn(st.turns - 1, response, time.perf_counter() - t0)
        st.outcome = self._result(st, "stopped", text, reason, value=value)

    async def _last_value(self, st: _RunState, response: ModelResponse) -> Any:
        """The typed value of a stopped run's last final-result call, if it is valid (checked
        and recorded by the output gate like any call)."""
        out = self._output
        assert out is not None
        finals = [c for c in response.tool_calls if c.name == out.name][:1]
        if not finals:
            return None
        _ensure_ids(finals, st.turns)
        res = await out.gate.execute(finals[0], st.ctx, st.messages)
        if res.is_error:
            return None
        st.results.append(res)
        return res.data

    # helpers -------------------------------------------------------------------------------

    def _system(self, specs: list[ToolSpec]) -> str | None:
        key = tuple(s.name for s in specs)
        if self._system_cache is not None and self._system_cache[0] == key:
            return self._system_cache[1]
        parts = [self.instructions] if self.instructions else []
        if self.guidance is True:
            g = tool_guidance(specs)
            if g:
                parts.append(g)
        elif isinstance(self.guidance, str) and self.guidance:
            parts.append(self.guidance)
        if self._output is not None:
            parts.append(self._output.prompt())
        system = "\n\n".join(parts) or None
        self._system_cache = (key, system)
        return system

    def _request(self, st: _RunState, specs: list[ToolSpec], choice: ToolChoice) -> ModelRequest:
        return ModelRequest(
            messages=list(st.messages),  # a snapshot: the run keeps appending
            tools=specs,
            system=self._system(specs),
            tool_choice=choice,
            parallel_tool_calls=self.parallel_tool_calls,
            strict=self.strict,
        )

    def _record_turn(self, st: _RunState, response: ModelResponse, dt: float) -> None:
        st.clock.model_s += dt
        observers = self.gate.observers
        if not observers:
            return
        rec = TurnRecord(
            ctx=st.ctx,
            turn=st.turns - 1,
            model=response.model or self.model.name,
            text=response.text,
            tool_calls=list(response.tool_calls),
            stop_reason=response.stop_reason,
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
            cost_usd=response.usage.cost_usd,
            duration_s=dt,
            sensitive=self._sensitive(st.ctx, response.tool_calls),
            routed_tools=st.routed.tools if st.routed is not None else None,
            fallbacks=tuple(f"{f.model}: {f.error}" for f in response.fallbacks),
        )
        for o in observers:
            try:
                o.on_turn(rec)
            except Exception:
                log.exception("observer %r failed", o)

    def _sensitive(self, ctx: RunContext, calls: Sequence[ToolCall]) -> dict[str, frozenset[str]]:
        out: dict[str, frozenset[str]] = {}
        for c in calls:
            t, _ = self.gate.toolset.resolve(c.name, ctx)
            if t is not None and t.annotations.sensitive:
                out[c.name] = t.annotations.sensitive
        return out

    def _result(
        self,
        st: _RunState,
        status: RunStatus,
        output: str,
        reason: str | None = None,
        *,
        value: Any = None,
    ) -> RunResult[OutputT]:
        """The run's result; `value` is the typed output of a structured run (a run without
        `output_type` returns its text as the output)."""
        return RunResult(
            status=status,
            text=output,
            value=value if self._output is not None else output,
            messages=st.messages,
            usage=st.usage,
            run_id=st.ctx.run_id,
            reason=reason,
            turns=st.turns,
            tool_calls=st.guards.calls_made,
            results=st.results,
            ledger=st.clock.close(st.ctx.run_id, st.usage, st.results, self.prices.tools),
        )


async def _outcome(events: AsyncIterator[AgentEvent]) -> RunResult[Any]:
    """What a run returns: the result its events end with (`RunFinished` always comes last;
    the events before it are only for streaming callers)."""
    result: RunResult[Any] | None = None
    async for ev in events:
        if isinstance(ev, RunFinished):
            result = ev.result
    assert result is not None
    return result


@dataclass(slots=True)
class _RunState:
    ctx: RunContext[Any]
    messages: list[Message]
    guards: RunGuards
    tool_choice: ToolChoice
    step_tool_choice: StepChoice | None
    usage: Usage = field(default_factory=Usage)
    turns: int = 0
    clock: LedgerClock = field(default_factory=LedgerClock)
    results: list[ToolResult] = field(default_factory=list)
    #: the last model response, the usage of the last turn, and where the messages added
    #: after it start (for the next turn's input estimate)
    response: ModelResponse | None = None
    last_usage: Usage | None = None
    mark: int = 0
    #: the results of the calls of the current turn, in the order of its calls
    turn_results: list[ToolResult] = field(default_factory=list)
    #: set by the turn that ends the run
    outcome: RunResult[Any] | None = None
    #: the router's choice for the current turn (None without a router)
    routed: RoutingChoice | None = None


def _ensure_ids(calls: list[ToolCall], turn: int) -> None:
    """Calls without an id (or with a duplicate one) get a stable generated id, so each result
    can be matched to exactly one call."""
    seen: set[str] = set()
    for i, c in enumerate(calls):
        if not c.id or c.id in seen:
            c.id = f"call_t{turn}_{i}"
        seen.add(c.id)


__all__ = [
    "Agent",
    "AgentEvent",
    "Budgets",
    "Price",
    "RunResult",
]
