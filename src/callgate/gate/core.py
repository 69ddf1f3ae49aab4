"""The gate: every proposed call passes through here, and nothing else runs tools.

`Gate.execute` is a fixed sequence of named stages over one `Outcome`:

    screen ▸ resolve ▸ validate ▸ decide ▸ approve ▸ middleware ▸ execute ▸ settle ▸ finish

- screen: a refusal the run's own guards made (loop breaker, budgets, tools switched off), so
  those calls are recorded like every other outcome;
- resolve: the tool, if the run may see it and it is enabled;
- validate: decode and validate the arguments;
- decide: the policy's decision made stricter by the call checks (allow / deny / approve);
- approve: the approver's verdict (it may pause the run);
- middleware ▸ execute: rate limits, sanitisers, provenance guards, then timeout/retry/caps;
- settle: an approval claim is always completed or released, whichever stage ended the call;
- finish: one `CallRecord` per call to the observers.

`Gate.execute` never raises for anything a model can send (bad JSON, unknown tools, hostile
strings, tools that crash, hang or call `sys.exit`): every outcome becomes a `ToolResult` with the
right call id and an error kind from `callgate.errors`. Only the caller's cancellation and a real
interrupt of the process propagate (see `callgate.gate.execute`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from callgate.context import RunContext
from callgate.errors import ApprovalRequired, ErrorKind, SchemaError, ToolError
from callgate.gate import render
from callgate.gate.decode import DEFAULT_LIMITS, DecodeLimits
from callgate.gate.execute import Executor
from callgate.gate.outcome import Outcome
from callgate.gate.protocols import (
    Approver,
    CallCheck,
    Invocation,
    Middleware,
    Next,
    Observer,
    PolicyDecision,
    PolicyEngine,
    Refusal,
    SettlingApprover,
)
from callgate.gate.stages import (
    decoded_or_raw,
    escalate,
    param_descriptions,
    validate_arguments,
)
from callgate.gate.visibility import VisibilityMemo
from callgate.messages import ArgumentIssue, Message, ToolCall, ToolResult
from callgate.tools.definition import Tool, ToolSpec, tool
from callgate.tools.schema import ArgumentsInvalid, FieldIssue
from callgate.tools.toolset import Toolset

log = logging.getLogger("callgate.gate")

_CORRECTABLE = ErrorKind.CORRECTABLE.value
_DENIED = ErrorKind.DENIED.value
_TERMINAL = ErrorKind.TERMINAL.value
_PENDING = ErrorKind.PENDING_APPROVAL.value


@dataclass(frozen=True, slots=True)
class Preview:
    """What the gate would decide for a call, without running anything (`Gate.decide`).

    `decision` is the policy's decision made stricter by the call checks, or a "deny" with rule
    "unknown-tool", "tool-disabled" or "invalid-arguments" when the call would not reach the
    policy. `invocation` carries what the checks found (provenance) when it got that far."""

    decision: PolicyDecision
    invocation: Invocation | None = None


class Gate:
    """Screen ▸ resolve ▸ validate ▸ decide ▸ approve ▸ middleware ▸ execute ▸ settle.

    Parameters:
        tools: a `Toolset`, or an iterable of `Tool` objects and plain functions (a plain
            function is wrapped as `@tool` would wrap it).
        policy: a `PolicyEngine`; default `callgate.policy.engine.DefaultPolicy` (read-only tools
            run, destructive tools need approval).
        approver: decides "approve" decisions; without one such calls are refused, recorded
            with the decision "approve".
        middleware: call-time concerns (rate limits, sanitisation, provenance, cache), outermost
            first.
        observers: receive one `CallRecord` per call (audit log, metrics, traces).
        checks: call checks that may make the policy's decision stricter (provenance).
        max_parallel: how many calls of one turn run at once.
        resource_limits: concurrency caps shared by tools that name the same
            `ExecutionOptions.resource` (e.g. {"db": 4}).
        max_corrections_per_run: total correctable failures allowed in one run, across tools.
        max_result_chars: longer tool results are truncated (with a note) before the model sees
            them.
    """

    def __init__(
        self,
        tools: Toolset | Iterable[Tool | Callable[..., Any]],
        *,
        policy: PolicyEngine | None = None,
        approver: Approver | None = None,
        middleware: Sequence[Middleware] = (),
        observers: Sequence[Observer] = (),
        checks: Sequence[CallCheck] = (),
        limits: DecodeLimits = DEFAULT_LIMITS,
        max_parallel: int = 8,
        resource_limits: dict[str, int] | None = None,
        max_corrections_per_run: int = 10,
        max_result_chars: int = 20_000,
    ) -> None:
        if policy is None:
            from callgate.policy.engine import DefaultPolicy

            policy = DefaultPolicy()
        self.toolset = tools if isinstance(tools, Toolset) else Toolset(map(as_tool, tools))
        self.policy = policy
        self.approver = approver
        self._settler = approver if isinstance(approver, SettlingApprover) else None
        self.middleware = tuple(middleware)
        self.observers = list(observers)
        self.checks = tuple(checks)
        self._visible_hooks = tuple(m.visible for m in self.middleware if hasattr(m, "visible"))
        self._visibility = VisibilityMemo()
        self.limits = limits
        self._max_bytes = limits.max_bytes
        self.max_parallel = max(1, max_parallel)
        self.resource_limits = dict(resource_limits or {})
        self.max_corrections_per_run = max_corrections_per_run
        self.max_result_chars = max_result_chars
        self._executor = Executor(self.resource_limits, max_result_chars)
        #: releases of approval claims that finished after their call was cancelled
        self._late: set[asyncio.Future[None]] = set()
        self._chain: Next = self._build_chain()

    # list time ---------------------------------------------------------------------------

    def list_tools(self, ctx: RunContext[Any]) -> list[Tool]:
        """The tools this run may see: visible in the toolset, not hidden by the policy or any
        middleware. The model is never shown a tool it may not call. The toolset ▸ policy part
        is memoised per run identity and toolset generation (`callgate.gate.visibility`);
        middleware hooks are asked on every turn."""
        tools, _ = self._visibility.listed(self.policy, self.toolset, ctx)
        hooks = self._visible_hooks
        if not hooks:
            return list(tools)
        return [t for t in tools if all(visible(t, ctx) for visible in hooks)]

    def _sees(self, tool: Tool, ctx: RunContext[Any]) -> bool:
        """List-time visibility beyond the toolset (policy, middleware). Applied at call time
        too: a tool the run cannot see is unknown to it, even when called by name."""
        if not self._visibility.policy_sees(self.policy, self.toolset, tool, ctx):
            return False
        hooks = self._visible_hooks
        return not hooks or all(visible(tool, ctx) for visible in hooks)

    def specs(self, ctx: RunContext[Any]) -> list[ToolSpec]:
        """The specs of `list_tools(ctx)`: when nothing changed and no middleware hook filters
        per turn, a copy of the run's memoised list (no per-tool work)."""
        if self._visible_hooks:
            return [t.spec for t in self.list_tools(ctx)]
        return list(self._visibility.listed(self.policy, self.toolset, ctx)[1])

    # call time ---------------------------------------------------------------------------

    async def execute_many(
        self,
        calls: Sequence[ToolCall],
        ctx: RunContext[Any],
        history: Sequence[Message] = (),
        refusals: Sequence[Refusal | None] = (),
    ) -> list[ToolResult]:
        """Run the calls of one model turn concurrently (at most `max_parallel` at once).

        Results come back in the order of `calls`, each with its own call id, whatever order
        they finish in; one failure never hides the others. `refusals[i]`, when given, is the
        run's own refusal of `calls[i]` (recorded, not run). Cancelling this coroutine cancels
        every call still running.
        """
        refused = list(refusals) + [None] * (len(calls) - len(refusals))
        if len(calls) == 1:
            return [await self.execute(calls[0], ctx, history, refusal=refused[0])]
        if not calls:
            return []
        sem = asyncio.Semaphore(self.max_parallel)

        async def one(c: ToolCall, r: Refusal | None) -> ToolResult:
            async with sem:
                return await self.execute(c, ctx, history, refusal=r)

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(c, r)) for c, r in zip(calls, refused, strict=True)]
        return [t.result() for t in tasks]

    def execute_sync(
        self, call: ToolCall, ctx: RunContext[Any] | None = None, history: Sequence[Message] = ()
    ) -> ToolResult:
        """Blocking twin of `execute`, for code without an event loop. It returns when the call
        times out, even if the tool's thread runs on (a thread cannot be stopped)."""
        return asyncio.run(self.execute(call, ctx or RunContext(), history))

    async def execute(
        self,
        call: ToolCall,
        ctx: RunContext[Any],
        history: Sequence[Message] = (),
        *,
        refusal: Refusal | None = None,
    ) -> ToolResult:
        """Gate one proposed call. Never raises except on cancellation or a real interrupt."""
        t0 = time.perf_counter()
        inv: Invocation | None = None
        try:
            if refusal is not None:
                return self._finish(self._screen(call, ctx, t0, refusal))
            prepared = self._prepare(call, ctx, history, t0, dry=False)
            if isinstance(prepared, Outcome):
                return self._finish(prepared)
            inv = prepared
            if inv.decision is not None and inv.decision.effect == "approve":
                await self._approve(inv)
                res = await self._run_settled(inv)
            else:
                res = await self._chain(inv)
            res.duration_s = time.perf_counter() - t0
            if res.error_kind is not None or inv.approved:
                self._after_run(res, inv)
            if self.observers or inv.tool.deprecated:
                return self._finish(Outcome.of(inv, res, t0))
            return res
        except ApprovalRequired as ar:
            return self._finish(self._pending(self._so_far(call, ctx, t0, inv), ar))
        except ToolError as te:  # raised by the approver or middleware before the tool ran
            return self._finish(self._refused_by(self._so_far(call, ctx, t0, inv), te))
        except Exception:
            log.exception("gate failure on call %s (%s)", call.id, call.name)
            out = self._so_far(call, ctx, t0, inv)
            out.end(render.render_terminal(out.name), _TERMINAL, None, None)
            return self._finish(out)

    async def flush_records(self) -> None:
        """Wait until every observer that writes in the background (the group-committing audit
        log) has made the records so far durable. The agent calls it before it reports a run
        finished; a server calls it before it answers a request, so an acknowledged call is
        always on disk."""
        for o in self.observers:
            aflush = getattr(o, "aflush", None)
            if aflush is not None:
                try:
                    await aflush()
                except Exception:
                    log.exception("observer %r could not flush its records", o)

    def decide(
        self, call: ToolCall, ctx: RunContext[Any], history: Sequence[Message] = ()
    ) -> Preview:
        """The decision the gate would take for `call`, without running, approving, counting
        or recording anything (a dry run)."""
        prepared = self._prepare(call, ctx, history, time.perf_counter(), dry=True)
        if isinstance(prepared, Outcome):
            res = prepared.result
            reason = res.content if res is not None else ""
            decision = PolicyDecision(prepared.effect or "deny", prepared.rule or "refused", reason)
            return Preview(decision, prepared.inv)
        assert prepared.decision is not None
        return Preview(prepared.decision, prepared)

    # stages ------------------------------------------------------------------------------

    def _screen(self, call: ToolCall, ctx: RunContext[Any], t0: float, refusal: Refusal) -> Outcome:
        """A call the run's guards refused: recorded with the tool (so its sensitive arguments
        are redacted) and the guard's rule, never validated or run."""
        out = self._so_far(call, ctx, t0, None)
        out.end(refusal.message, refusal.kind, "deny", refusal.rule)
        return out

    def _so_far(
        self, call: ToolCall, ctx: RunContext[Any], t0: float, inv: Invocation | None
    ) -> Outcome:
        """An outcome with what is known of the call (for refusals and failures): the tool and
        the arguments, so the record is redacted like any other."""
        if inv is not None:
            return Outcome.of(inv, None, t0)
        tool, _ = self.toolset.resolve(call.name, ctx)
        return Outcome(call, ctx, t0, tool=tool, args=decoded_or_raw(call.arguments, self.limits))

    def _prepare(
        self, call: ToolCall, ctx: RunContext[Any], history: Sequence[Message], t0: float, dry: bool
    ) -> Invocation | Outcome:
        """Resolve ▸ validate ▸ decide. Returns the invocation to approve and run, or the
        outcome of the stage that ended the call."""
        tool, note = self.toolset.resolve(call.name, ctx)
        hooks = self._visible_hooks
        if (
            tool is None
            or note is not None
            # `_sees`, inlined for the common case; memoised per run (see `_visibility`)
            or not self._visibility.policy_sees(self.policy, self.toolset, tool, ctx)
            or (hooks and not all(visible(tool, ctx) for visible in hooks))
        ):
            return self._unresolved(call, ctx, t0, tool, note, dry)
        raw = call.arguments
        args: dict[str, Any] | None = None
        if raw.__class__ is str and len(raw) * 4 <= self._max_bytes and not tool.required_ids:
            # the validator's one-pass fast path (x4: a character is at most 4 bytes)
            args = tool.validator.fast_json(raw)
        if args is None:
            try:
                args = validate_arguments(tool, raw, self.limits)
            except ArgumentsInvalid as e:
                return self._invalid(Outcome(call, ctx, t0, tool=tool), e.issues, dry)
        inv = Invocation(call, ctx, tool, args, history)
        decision = self.policy.decide(tool, args, ctx)
        if self.checks and decision.effect != "deny":
            decision = escalate(decision, inv, self.checks)
        inv.decision = decision
        if decision.effect == "deny":
            msg = decision.reason or "The policy does not allow this call."
            content = render.render_denied(tool.name, msg, render.DENIED_ADVICE)
            out = Outcome.of(inv, None, t0)
            out.end(content, _DENIED, "deny", decision.rule)
            return out
        if decision.effect == "approve" and self.approver is None and not dry:
            # "needs approval" stays its own outcome: recorded as "approve", refused for now
            out = Outcome.of(inv, None, t0)
            out.end(
                render.render_needs_approval(tool.name, decision.reason),
                _DENIED,
                "approve",
                decision.rule,
            )
            return out
        return inv

    def _unresolved(
        self,
        call: ToolCall,
        ctx: RunContext[Any],
        t0: float,
        tool: Tool | None,
        note: str | None,
        dry: bool,
    ) -> Outcome:
        """The outcome of a call whose tool the run cannot see (unknown) or that is disabled."""
        args = decoded_or_raw(call.arguments, self.limits)
        if tool is None or not self._sees(tool, ctx):
            names = [t.name for t in self.list_tools(ctx)]
            out = Outcome(call, ctx, t0, args=args)
            content = render.render_unknown_tool(call.name, names)
            out.end(content, _CORRECTABLE, None, "unknown-tool")
            if not dry:
                self._count_correction(ctx, call.name)
            return out
        out = Outcome(call, ctx, t0, tool=tool, args=args)
        out.end(render.render_disabled(tool.name, note), _DENIED, "deny", "tool-disabled")
        return out

    def _invalid(self, out: Outcome, issues: list[FieldIssue], dry: bool) -> Outcome:
        tool = out.tool
        assert tool is not None
        if self.observers:  # the arguments are only recorded
            out.args = decoded_or_raw(out.call.arguments, self.limits)
        left = None if dry else self._count_correction(out.ctx, tool.name, tool)
        issues = render.mask_secrets(issues)
        if len(issues) == 1 and issues[0].kind == "format" and not issues[0].path:
            content = render.render_format_error(tool.name, issues[0].message, left)
        else:
            content = render.render_invalid_arguments(
                tool.name,
                issues,
                sensitive=tool.annotations.sensitive,
                params=tool.validator.param_names,
                budget_left=left,
                descriptions=param_descriptions(tool),
            )
        res = out.end(content, _CORRECTABLE, None, "invalid-arguments")
        res.issues = _issues(issues)
        res.correction_budget_exhausted = left is not None and left <= 0
        return out

    async def _approve(self, inv: Invocation) -> None:
        """The approver's verdict. A durable approver's check claims the approval and may
        finish in a worker thread after our caller cancelled us: the claim is then released
        once the check is done, so a cancelled call never leaves it "executing"."""
        assert self.approver is not None and inv.decision is not None
        if self._settler is None:
            await self.approver.check(inv, inv.decision)
        else:
            check = asyncio.ensure_future(self.approver.check(inv, inv.decision))
            try:
                await asyncio.shield(check)
            except asyncio.CancelledError:
                check.add_done_callback(lambda t: self._release_late(t, inv))
                raise
        inv.approved = True

    def _release_late(self, check: asyncio.Future[None], inv: Invocation) -> None:
        if check.cancelled() or check.exception() is not None or self._settler is None:
            return  # nothing was claimed
        task = asyncio.ensure_future(
            _settle_quietly(self._settler, inv, None, "cancelled before it ran")
        )
        self._late.add(task)
        task.add_done_callback(self._late.discard)

    async def _run_settled(self, inv: Invocation) -> ToolResult:
        """Middleware ▸ execute, then settle the approval claim whatever happened."""
        if not (inv.approved and self._settler is not None):
            return await self._chain(inv)
        try:
            res = await self._chain(inv)
        except BaseException as e:
            await _settle_quietly(self._settler, inv, None, _reason(e))
            raise
        reason = "" if inv.started else f"answered without running: {res.content[:200]}"
        await _settle_quietly(self._settler, inv, res, reason)
        return res

    def _after_run(self, res: ToolResult, inv: Invocation) -> None:
        """A correctable error uses the correction budget; an approved call names its approval."""
        if res.error_kind == _CORRECTABLE:
            left = self._count_correction(inv.ctx, inv.tool.name, inv.tool)
            res.content = render.render_correctable(inv.tool.name, res.content, left)
            res.correction_budget_exhausted = left <= 0
        if res.approval_id is None and inv.approved:
            res.approval_id = inv.approval_id

    def _pending(self, out: Outcome, ar: ApprovalRequired) -> Outcome:
        content = render.render_pending(out.name, ar.approval_id, ar.message)
        res = out.end(content, _PENDING, "approve", out.rule)
        res.approval_id = ar.approval_id
        if out.inv is not None:
            out.inv.approval_id = ar.approval_id
        return out

    def _refused_by(self, out: Outcome, te: ToolError) -> Outcome:
        kind = te.kind.value
        if kind == _DENIED:
            content = render.render_denied(out.name, te.message)
        else:
            content = render.render_terminal(out.name, te.message)
        rule = getattr(te, "rule", None) or out.rule
        effect = "deny" if kind == _DENIED else out.effect
        out.end(content, kind, effect, rule)
        return out

    def _count_correction(self, ctx: RunContext[Any], name: str, tool: Tool | None = None) -> int:
        c = ctx.corrections
        c[name] = c.get(name, 0) + 1
        c["*"] = c.get("*", 0) + 1
        per_tool = tool.options.max_corrections if tool is not None else 3
        return min(per_tool - c[name], self.max_corrections_per_run - c["*"])

    def _finish(self, out: Outcome) -> ToolResult:
        res = out.result
        assert res is not None
        tool = out.tool
        if tool is not None and tool.deprecated:
            # still served (callers pinned it on purpose); the application and operators learn
            res.deprecated = tool.deprecated
            log.warning(
                "deprecated tool %s@%s called: %s", tool.name, tool.version, tool.deprecated
            )
        if self.observers:
            rec = out.record()
            for o in self.observers:
                try:
                    o.on_call(rec)
                except Exception:
                    log.exception("observer %r failed", o)
        return res

    def _build_chain(self) -> Next:
        chain: Next = self._executor.run
        for m in reversed(self.middleware):
            chain = _bind(m, chain)
        return chain


def as_tool(obj: Tool | Callable[..., Any]) -> Tool:
    """A `Tool` as given, or a plain function wrapped the way a bare `@tool` wraps it (same
    schema rules, same checks at registration)."""
    if isinstance(obj, Tool):
        return obj
    if callable(obj) and hasattr(obj, "__name__"):
        return tool(obj)
    raise SchemaError(
        f"{obj!r} is not a tool: pass a function (it is wrapped as @tool would wrap it) or a "
        "Tool made with @tool / Tool.from_schema"
    )


def _issues(issues: list[FieldIssue]) -> tuple[ArgumentIssue, ...]:
    """The argument problems for the application (already masked like the model's text)."""
    return tuple(ArgumentIssue(tuple(i.path), i.kind, i.message) for i in issues)


def _bind(m: Middleware, nxt: Next) -> Next:
    async def step(inv: Invocation) -> ToolResult:
        return await m(inv, nxt)

    return step


def _reason(e: BaseException) -> str:
    """Why an approved call did not finish, for the approval's record."""
    if isinstance(e, ToolError):
        rule = getattr(e, "rule", None)
        return f"{rule}: {e.message}" if rule else e.message
    if isinstance(e, asyncio.CancelledError):
        return "cancelled"
    return type(e).__name__


async def _settle_quietly(
    settler: SettlingApprover, inv: Invocation, res: ToolResult | None, reason: str
) -> None:
    """Settle a claim; a store failure is logged (the claim stays as it is) and never hides
    the call's own outcome."""
    try:
        await settler.settle(inv, res, reason)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("could not settle approval %s of call %s", inv.approval_id, inv.call.id)
