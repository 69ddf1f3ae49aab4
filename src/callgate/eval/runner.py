"""Run a golden file: every case through a real `Agent` (the same loop and gate production
uses), repeated for models that are not deterministic, judged by `callgate.eval.checks`.

Tools run for real by default, each run with fresh dependencies from the file's `deps` factory
(so a write in one case cannot leak into the next); with ``stub=True`` every tool that has
recorded results returns them instead (arguments are still validated by the gate, so a
malformed call fails exactly as it would against the real tool).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from typing import Any

from callgate._lazy import import_object
from callgate.agent.budgets import Price
from callgate.agent.loop import Agent, RunResult
from callgate.approvals.service import Approvals, CallbackApprover
from callgate.approvals.stores import open_approval_store
from callgate.context import RunContext
from callgate.errors import CallgateError, TerminalToolError
from callgate.eval.checks import Observation, ObservedCall, call_arguments, check
from callgate.eval.dataset import Case, GoldenFile, StubMatch
from callgate.eval.report import CaseReport, CaseRun, GoldenReport
from callgate.gate.core import Gate, as_tool
from callgate.messages import Message, ToolCall
from callgate.models import Model, ModelRequest, ModelResponse
from callgate.policy.engine import Policy
from callgate.tools.definition import Tool
from callgate.tools.toolset import Toolset

#: makes the model for one run of a case (a fresh one per run, so scripted models restart)
ModelFactory = Callable[[Case | None], Model]
Progress = Callable[[int, int, str], None]


def import_target(spec: str) -> Any:
    """``module:attr`` (attr may be dotted) → the object; a malformed spec is the golden file's
    error, so it surfaces as a `CallgateError`."""
    try:
        return import_object(spec)
    except ValueError as exc:
        raise CallgateError(f"{spec!r}: expected 'module:attribute'") from exc


@contextmanager
def _on_path(golden: GoldenFile) -> Any:
    """The file's `paths` (relative to the file) importable while its targets load."""
    added = [str((golden.base_dir / p).resolve()) for p in golden.paths]
    added = [p for p in added if p not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for p in added:
            if p in sys.path:
                sys.path.remove(p)


class ReferenceModel:
    """Plays a case's `reference` turns in order: proof that the case can pass, with the
    tools (or their stubs) running for real behind the gate."""

    def __init__(self, case: Case | None) -> None:
        if case is None or not case.reference:
            name = case.id if case is not None else "(none)"
            raise CallgateError(f"case {name!r} has no reference run")
        self._turns = case.reference
        self._pos = 0

    @property
    def name(self) -> str:
        return "reference"

    async def request(self, request: ModelRequest) -> ModelResponse:
        if self._pos >= len(self._turns):
            # asked again after its answer (a guard's final-answer request): repeat the answer
            last = self._turns[-1]
            return ModelResponse(Message.assistant(last.answer or ""), model="reference")
        turn = self._turns[self._pos]
        self._pos += 1
        calls = [
            ToolCall(f"ref_{self._pos}_{i}", c.name, json.dumps(c.args))
            for i, c in enumerate(turn.calls)
        ]
        msg = Message.assistant(turn.answer or "", calls)
        if calls:
            return ModelResponse(msg, stop_reason="tool_calls", model="reference")
        return ModelResponse(msg, stop_reason="end_turn", model="reference")


class GoldenRunner:
    """Runs the cases of `golden` with models from `model_factory`.

    `tools` overrides the file's `toolset` (a `Toolset`, tools, or a zero-argument factory of
    them); `deps` likewise overrides its `deps` factory. `agent_options` are passed to `Agent`.
    """

    def __init__(
        self,
        golden: GoldenFile,
        model_factory: ModelFactory,
        *,
        tools: Any = None,
        deps: Callable[[], Any] | None = None,
        stub: bool = False,
        repetitions: int | None = None,
        agent_options: dict[str, Any] | None = None,
    ) -> None:
        self.golden = golden
        self.model_factory = model_factory
        with _on_path(golden):
            self._tools = tools if tools is not None else self._load_tools()
            self._deps = deps if deps is not None else self._load_deps()
        self._policy = Policy.from_file(golden.base_dir / golden.policy) if golden.policy else None
        self.stub = stub
        self.repetitions = repetitions
        self.agent_options = agent_options or {}

    def _load_tools(self) -> Any:
        if self.golden.toolset is None:
            raise CallgateError("the golden file names no toolset; pass tools=")
        return import_target(self.golden.toolset)

    def _load_deps(self) -> Callable[[], Any] | None:
        if self.golden.deps is None:
            return None
        factory = import_target(self.golden.deps)
        if not callable(factory):
            raise CallgateError(f"deps {self.golden.deps!r} is not callable")
        return factory  # type: ignore[no-any-return]

    def cases(self, ids: Iterable[str] | None = None) -> list[Case]:
        if ids is None:
            return list(self.golden.cases)
        wanted = list(ids)
        known = {c.id: c for c in self.golden.cases}
        missing = [i for i in wanted if i not in known]
        if missing:
            raise CallgateError(f"no case {missing[0]!r} in the golden file")
        return [known[i] for i in wanted]

    async def run(
        self, ids: Iterable[str] | None = None, progress: Progress | None = None
    ) -> GoldenReport:
        cases = self.cases(ids)
        plan = [(c, self.repetitions or c.repetitions or self.golden.repetitions) for c in cases]
        total, done = sum(n for _, n in plan), 0
        name = self.golden.name or "golden"
        report = GoldenReport(name=name, model="")
        for case, n in plan:
            cr = CaseReport(case.id, case.kind)
            for _ in range(n):
                model = self.model_factory(case)
                report.model = report.model or model.name
                cr.runs.append(await self.run_case(case, model))
                done += 1
                if progress is not None:
                    progress(done, total, case.id)
            report.cases.append(cr)
        return report

    async def run_case(self, case: Case, model: Model) -> CaseRun:
        """One run of one case; an exception from the model or the loop is a failed run with
        the error recorded, never an aborted report."""
        opts: dict[str, Any] = {"instructions": self.golden.instructions}
        if self.golden.price is not None:
            opts["price"] = Price(**self.golden.price.model_dump())
        opts |= self.agent_options
        agent = Agent(model, self._gate(case), **opts)
        ctx = RunContext(
            user_id=case.context.user,
            roles=frozenset(case.context.roles),
            tenant=case.context.tenant,
            deps=self._deps() if self._deps is not None else None,
        )
        prompt = [Message(h.role, h.content) for h in case.history] + [Message.user(case.query)]
        t0 = time.perf_counter()
        try:
            result = await agent.run(prompt, ctx=ctx)
        except Exception as exc:  # noqa: BLE001 - a crash is a failed run with its reason
            err = f"{type(exc).__name__}: {exc}"
            secs = time.perf_counter() - t0
            return CaseRun(False, [err], [], "", "error", 0, 0, [], secs, 0.0, 0, err)
        obs = observe(result, time.perf_counter() - t0)
        failures = check(case.expect, obs)
        return CaseRun(
            passed=not failures,
            failures=failures,
            calls=[
                {"name": c.name, "args": c.args, "ok": c.ok, "result": c.result} for c in obs.calls
            ],
            answer=obs.answer,
            status=obs.status,
            turns=obs.turns,
            failed_calls=obs.failed_calls,
            results=[r[:500] for r in obs.results],
            latency_s=round(obs.latency_s, 4),
            cost_usd=obs.cost_usd,
            tokens=obs.tokens,
        )

    def _gate(self, case: Case) -> Gate:
        target = self._tools() if _is_factory(self._tools) else self._tools
        if isinstance(target, Gate):
            if self.stub:
                raise CallgateError("stubbed runs need a toolset, not a ready-made Gate")
            return target
        tools = list(target.visible(RunContext()) if isinstance(target, Toolset) else target)
        tools = [as_tool(t) for t in tools]
        if self.stub:
            stubs = self.golden.stubs_for(case)
            tools = [stubbed(t, stubs.get(t.name)) for t in tools]
        return Gate(tools, approver=self._approver(), policy=self._policy)

    def _approver(self) -> CallbackApprover | Approvals:
        """Approve every request (the default: the run goes on as if a person said yes), or
        queue it so the run pauses (`auto_approve: false`; `expect.status: paused`)."""
        if self.golden.auto_approve:
            return CallbackApprover(lambda _req: True)
        return Approvals(open_approval_store(":memory:"))


def _is_factory(obj: Any) -> bool:
    return callable(obj) and not isinstance(obj, Gate | Toolset | Tool | list | tuple)


def stubbed(tool: Tool, recorded: list[StubMatch] | None) -> Tool:
    """`tool` with its function replaced by recorded results: the first entry whose `match`
    is contained in the call's arguments answers (its `error` is raised as a tool error). A
    tool with no recording fails every call, so a run cannot quietly reach a live system."""
    entries = list(recorded or [])

    def replay(**kwargs: Any) -> Any:
        args = {k: v for k, v in kwargs.items() if k != tool.context_param}
        plain = json.loads(json.dumps(args, default=str))
        for e in entries:
            if all(plain.get(k) == v for k, v in e.match.items()):
                if e.error is not None:
                    raise TerminalToolError(e.error)
                return e.result
        raise TerminalToolError(f"no recorded result of {tool.name} for {plain}")

    return dataclasses.replace(tool, fn=replay, is_async=False)


def observe(result: RunResult, latency_s: float) -> Observation:
    """The facts the assertions judge, taken from a finished run."""
    answered = {r.call_id: r for r in result.results}
    calls: list[ObservedCall] = []
    for m in result.messages:
        for c in m.tool_calls:
            r = answered.get(c.id)
            ok = r is not None and r.error_kind is None
            calls.append(ObservedCall(c.name, call_arguments(c), r.content if r else None, ok))
    answer, output = _answer_and_output(result)
    return Observation(
        calls=calls,
        answer=answer,
        output=output,
        status=result.status,
        turns=result.turns,
        failed_calls=sum(r.error_kind is not None for r in result.results),
        results=[r.content for r in result.results],
        cost_usd=result.usage.cost_usd,
        latency_s=latency_s,
        tokens=result.usage.total_tokens,
    )


def _answer_and_output(result: Any) -> tuple[str, Any]:
    """The run's final text and its typed output (None when a structured run ended without
    one). Read by name: runs with and without `output_type` carry them differently."""
    text = getattr(result, "text", None)
    value = getattr(result, "value", None)
    if not isinstance(text, str):  # a result that carries the answer in `output` only
        try:
            value = result.output
        except Exception:  # noqa: BLE001 - a structured run without a valid output
            value = None
        text = value if isinstance(value, str) else ""
    return text, value


def model_factory(spec: str) -> ModelFactory:
    """A model factory from a command-line name: ``reference`` (each case's reference run),
    ``local`` (the embedded local model, loaded once), or ``module:attr`` naming a model or a
    zero-argument factory of models (called once per run, so scripted models start afresh)."""
    if spec == "reference":
        return ReferenceModel
    if spec == "local":
        from callgate.providers.local.model import LocalModel

        shared_local: Model = LocalModel()
        return lambda _case: shared_local
    target = import_target(spec)
    if isinstance(target, Model):
        shared: Model = target
        return lambda _case: shared
    if callable(target):
        return lambda _case: target()
    raise CallgateError(f"{spec!r} is neither a model nor a factory of models")
