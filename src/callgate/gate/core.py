"""The gate: every proposed call passes through here, and nothing else runs tools.

`Gate.execute` never raises for anything a model can send (bad JSON, unknown tools, hostile
strings, tools that crash or hang): every outcome becomes a `ToolResult` with the right call id and
an error kind from `callgate.errors`. Only cancellation propagates.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import types
import weakref
from collections.abc import Coroutine, Generator, Iterable, Sequence
from typing import Any

from callgate.context import RunContext
from callgate.errors import ApprovalRequired, ErrorKind, ToolError, TransientToolError
from callgate.gate import render
from callgate.gate.decode import DEFAULT_LIMITS, DecodeLimits, decode_arguments
from callgate.gate.protocols import (
    SEVERITY,
    Approver,
    CallCheck,
    CallRecord,
    Invocation,
    Middleware,
    Next,
    Observer,
    PolicyDecision,
    PolicyEngine,
)
from callgate.messages import Message, ToolCall, ToolResult
from callgate.tools.definition import Tool, ToolSpec
from callgate.tools.schema import ArgumentsInvalid, FieldIssue
from callgate.tools.toolset import Toolset

log = logging.getLogger("callgate.gate")

_CORRECTABLE = ErrorKind.CORRECTABLE.value
_TRANSIENT = ErrorKind.TRANSIENT.value
_DENIED = ErrorKind.DENIED.value
_TERMINAL = ErrorKind.TERMINAL.value
_PENDING = ErrorKind.PENDING_APPROVAL.value


class Gate:
    """Decode ▸ validate ▸ policy ▸ approval ▸ middleware ▸ timeout/retry ▸ run.

    Parameters:
        tools: a `Toolset` or any iterable of `Tool`.
        policy: a `PolicyEngine`; default `callgate.policy.engine.DefaultPolicy` (read-only tools run,
            destructive tools need approval).
        approver: decides "approve" decisions; without one such calls are denied.
        middleware: call-time concerns (rate limits, sanitisation, provenance, cache), outermost
            first.
        observers: receive one `CallRecord` per call (audit log, metrics, traces).
        max_parallel: how many calls of one turn run at once.
        resource_limits: concurrency caps shared by tools that name the same
            `ExecutionOptions.resource` (e.g. {"db": 4}).
        max_corrections_per_run: total correctable failures allowed in one run, across tools.
        max_result_chars: longer tool results are truncated (with a note) before the model sees
            them.
    """

    def __init__(
        self,
        tools: Toolset | Iterable[Tool],
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
        self.toolset = tools if isinstance(tools, Toolset) else Toolset(tools)
        self.policy = policy
        self.approver = approver
        self.middleware = tuple(middleware)
        self.observers = list(observers)
        self.checks = tuple(checks)
        self._visible_hooks = tuple(m.visible for m in self.middleware if hasattr(m, "visible"))
        self.limits = limits
        self.max_parallel = max(1, max_parallel)
        self.resource_limits = dict(resource_limits or {})
        # per event loop: a semaphore binds to the loop it first waits on, and a gate may be
        # used from several loops (execute_sync, run_sync, tests)
        self._resource_sems: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]
        ] = weakref.WeakKeyDictionary()
        self.max_corrections_per_run = max_corrections_per_run
        self.max_result_chars = max_result_chars
        self._chain: Next = self._build_chain()

    # list time ---------------------------------------------------------------------------

    def list_tools(self, ctx: RunContext) -> list[Tool]:
        """The tools this run may see: visible in the toolset, not hidden by the policy or any
        middleware. The model is never shown a tool it may not call."""
        return [t for t in self.toolset.visible(ctx) if self._sees(t, ctx)]

    def _sees(self, tool: Tool, ctx: RunContext) -> bool:
        """List-time visibility beyond the toolset (policy, middleware). Applied at call time
        too: a tool the run cannot see is unknown to it, even when called by name."""
        if not self.policy.visible(tool, ctx):
            return False
        hooks = self._visible_hooks
        return not hooks or all(visible(tool, ctx) for visible in hooks)

    def specs(self, ctx: RunContext) -> list[ToolSpec]:
        return [t.spec for t in self.list_tools(ctx)]

    # call time ---------------------------------------------------------------------------

    async def execute_many(
        self, calls: Sequence[ToolCall], ctx: RunContext, history: Sequence[Message] = ()
    ) -> list[ToolResult]:
        """Run the calls of one model turn concurrently (at most `max_parallel` at once).

        Results come back in the order of `calls`, each with its own call id, whatever order
        they finish in; one failure never hides the others. Cancelling this coroutine cancels
        every call still running.
        """
        if len(calls) == 1:
            return [await self.execute(calls[0], ctx, history)]
        if not calls:
            return []
        sem = asyncio.Semaphore(self.max_parallel)

        async def one(c: ToolCall) -> ToolResult:
            async with sem:
                return await self.execute(c, ctx, history)

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(c)) for c in calls]
        return [t.result() for t in tasks]

    def execute_sync(
        self, call: ToolCall, ctx: RunContext | None = None, history: Sequence[Message] = ()
    ) -> ToolResult:
        """Blocking twin of `execute`, for code without an event loop."""
        return asyncio.run(self.execute(call, ctx or RunContext(), history))

    async def execute(
        self, call: ToolCall, ctx: RunContext, history: Sequence[Message] = ()
    ) -> ToolResult:
        """Gate one proposed call. Never raises except on cancellation."""
        t0 = time.perf_counter()
        tool: Tool | None = None
        args: Any = call.arguments
        inv: Invocation | None = None
        try:
            tool, note = self.toolset.resolve(call.name, ctx)
            if tool is not None and not self._sees(tool, ctx):
                tool = None
            if tool is None:
                names = [t.name for t in self.list_tools(ctx)]
                res = self._result(
                    call, render.render_unknown_tool(call.name, names), _CORRECTABLE, t0
                )
                self._count_correction(ctx, call.name)
                return self._finish(res, call, ctx, None, args, None, "unknown-tool", t0)
            if note is not None:
                res = self._result(call, render.render_disabled(tool.name, note), _DENIED, t0)
                return self._finish(res, call, ctx, tool, args, "deny", "tool-disabled", t0)
            raw = call.arguments
            validator = tool.validator
            fast = (
                validator.fast_json(raw)
                # x4: a character is at most 4 bytes, so the byte limit holds without encoding
                if isinstance(raw, str) and len(raw) * 4 <= self.limits.max_bytes
                else None
            )
            if fast is not None and not tool.required_ids:
                args = fast
            else:
                try:
                    decoded = decode_arguments(raw, self.limits)
                    args = decoded
                    # nulls for optional non-nullable parameters, at any depth (strict mode)
                    if _has_null(raw):
                        decoded = _drop_nulls(decoded, validator.null_means_omitted, tool)
                    args = validator.validate(decoded)
                    if tool.required_ids:
                        _check_required_ids(tool, args)
                except ArgumentsInvalid as e:
                    return self._invalid(call, ctx, tool, args, e.issues, t0)
            decision = self.policy.decide(tool, args, ctx)
            inv = Invocation(call, ctx, tool, args, history)
            if self.checks and decision.effect != "deny":
                decision = _escalate(decision, inv, self.checks)
            inv.state["decision"] = decision
            if decision.effect == "deny":
                msg = decision.reason or "This call is not allowed by policy."
                res = self._result(call, render.render_denied(tool.name, msg), _DENIED, t0)
                return self._finish(res, call, ctx, tool, args, "deny", decision.rule, t0, inv)
            if decision.effect == "approve":
                if self.approver is None:
                    msg = (
                        "It needs a person's approval and no approver is configured. Tell the "
                        "user what you wanted to do instead."
                    )
                    res = self._result(call, render.render_denied(tool.name, msg), _DENIED, t0)
                    return self._finish(res, call, ctx, tool, args, "deny", decision.rule, t0, inv)
                await self.approver.check(inv, decision)
                inv.state["approved"] = True
            res = await self._chain(inv)
            res.duration_s = time.perf_counter() - t0
            if decision.effect == "approve":
                complete = getattr(self.approver, "complete", None)
                if complete is not None:
                    await complete(inv, res)
            if res.error_kind == _CORRECTABLE:
                left = self._count_correction(ctx, tool.name, tool)
                res.content = render.render_correctable(tool.name, res.content, left)
                if left is not None and left <= 0:
                    res.metadata["correction_budget_exhausted"] = True
            if not self.observers and not tool.deprecated:
                return res
            return self._finish(res, call, ctx, tool, args, decision.effect, decision.rule, t0, inv)
        except ApprovalRequired as ar:
            name = tool.name if tool else call.name
            res = self._result(
                call, render.render_pending(name, ar.approval_id, ar.message), _PENDING, t0
            )
            res.metadata["approval_id"] = ar.approval_id
            res.metadata["approval_request"] = ar.request
            if inv is not None:
                inv.state["approval_id"] = ar.approval_id
                inv.state["approval_pending"] = True
            rule = inv.state["decision"].rule if inv else None
            return self._finish(res, call, ctx, tool, args, "approve", rule, t0, inv)
        except ToolError as te:  # raised by policy/approver/middleware before the tool ran
            name = tool.name if tool else call.name
            kind = te.kind.value
            content = (
                render.render_denied(name, te.message)
                if kind == _DENIED
                else render.render_terminal(name, te.message)
            )
            res = self._result(call, content, kind, t0)
            rule = getattr(te, "rule", None) or (inv.state["decision"].rule if inv else None)
            effect = "deny" if kind == _DENIED else None
            return self._finish(res, call, ctx, tool, args, effect, rule, t0, inv)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("gate failure on call %s (%s)", call.id, call.name)
            name = tool.name if tool else call.name
            res = self._result(call, render.render_terminal(name), _TERMINAL, t0)
            return self._finish(res, call, ctx, tool, args, None, None, t0, inv)

    # pieces ------------------------------------------------------------------------------

    def _invalid(
        self,
        call: ToolCall,
        ctx: RunContext,
        tool: Tool,
        args: Any,
        issues: list[FieldIssue],
        t0: float,
    ) -> ToolResult:
        left = self._count_correction(ctx, tool.name, tool)
        if len(issues) == 1 and issues[0].kind == "format" and not issues[0].path:
            content = render.render_format_error(tool.name, issues[0].message, left)
        else:
            content = render.render_invalid_arguments(
                tool.name,
                issues,
                sensitive=tool.annotations.sensitive,
                params=tool.validator.param_names,
                budget_left=left,
                descriptions=_param_descriptions(tool),
            )
        res = self._result(call, content, _CORRECTABLE, t0)
        res.metadata["issues"] = [
            {"path": list(i.path), "kind": i.kind, "message": i.message} for i in issues
        ]
        if left is not None and left <= 0:
            res.metadata["correction_budget_exhausted"] = True
        return self._finish(res, call, ctx, tool, args, None, "invalid-arguments", t0)

    def _count_correction(self, ctx: RunContext, name: str, tool: Tool | None = None) -> int | None:
        c = ctx.corrections
        c[name] = c.get(name, 0) + 1
        c["*"] = c.get("*", 0) + 1
        per_tool = tool.options.max_corrections if tool is not None else 3
        left = min(per_tool - c[name], self.max_corrections_per_run - c["*"])
        return left

    def _result(self, call: ToolCall, content: str, kind: str | None, t0: float) -> ToolResult:
        return ToolResult(call.id, call.name, content, kind, duration_s=time.perf_counter() - t0)

    def _finish(
        self,
        res: ToolResult,
        call: ToolCall,
        ctx: RunContext,
        tool: Tool | None,
        args: Any,
        effect: Any,
        rule: str | None,
        t0: float,
        inv: Invocation | None = None,
    ) -> ToolResult:
        if tool is not None and tool.deprecated:
            # still served (callers pinned it on purpose); the application and operators learn
            res.metadata["deprecated"] = tool.deprecated
            log.warning(
                "deprecated tool %s@%s called: %s", tool.name, tool.version, tool.deprecated
            )
        if self.observers:
            state = {k: v for k, v in (inv.state.items() if inv else ()) if k != "decision"}
            if "exception" in res.metadata:
                state["error_class"] = res.metadata["exception"]
            if "approval_id" in res.metadata:
                state.setdefault("approval_id", res.metadata["approval_id"])
            rec = CallRecord(
                call_id=call.id,
                tool=tool.name if tool else call.name,
                version=tool.version if tool else None,
                ctx=ctx,
                arguments=args,
                decision=effect,
                rule=rule,
                error_kind=res.error_kind,
                result_summary=res.content[:500],
                started_at=time.time() - (time.perf_counter() - t0),
                duration_s=res.duration_s,
                attempts=res.attempts,
                sensitive=tool.annotations.sensitive if tool else frozenset(),
                state=state,
            )
            for o in self.observers:
                try:
                    o.on_call(rec)
                except Exception:
                    log.exception("observer %r failed", o)
        return res

    def _build_chain(self) -> Next:
        chain: Next = self._run
        for m in reversed(self.middleware):
            chain = _bind(m, chain)
        return chain

    def _resource_sem(self, name: str) -> asyncio.Semaphore | None:
        limit = self.resource_limits.get(name)
        if limit is None:
            return None
        loop = asyncio.get_running_loop()
        sems = self._resource_sems.get(loop)
        if sems is None:
            sems = self._resource_sems[loop] = {}
        sem = sems.get(name)
        if sem is None:
            sem = sems[name] = asyncio.Semaphore(limit)
        return sem

    async def _run(self, inv: Invocation) -> ToolResult:
        """Timeout, retry with backoff (only where safe), and the actual call.

        The first attempt is the fast path; classification and retries live in `_retry`."""
        tool = inv.tool
        opts = tool.options
        if opts.resource is None:
            try:
                if tool.is_async and tool.context_param is None:
                    # inlined `_call_once` for the common case (one coroutine fewer per call)
                    coro = tool.fn(**inv.args)
                    try:
                        first = coro.send(None)
                    except StopIteration as stop:
                        value = stop.value
                    else:
                        if opts.timeout_s is None:
                            value = await _continue(coro, first)
                        else:
                            async with asyncio.timeout(opts.timeout_s):
                                value = await _continue(coro, first)
                else:
                    value = await self._call_once(inv)
            except asyncio.CancelledError:
                raise
            except BaseException as e:  # noqa: BLE001 - classified in _retry
                return await self._retry(inv, e)
            return ToolResult(
                inv.call.id,
                inv.call.name,
                render.render_value(value, self.max_result_chars),
                None,
                data=value,
            )
        return await self._retry(inv, None)

    async def _retry(self, inv: Invocation, first_error: BaseException | None) -> ToolResult:
        tool = inv.tool
        opts = tool.options
        retry_safe = tool.annotations.retry_safe
        max_attempts = 1 + (opts.max_retries if retry_safe else 0)
        sem = self._resource_sem(opts.resource) if opts.resource else None
        attempt = 0
        pending_error = first_error
        while True:
            attempt += 1
            try:
                if pending_error is not None:
                    e0, pending_error = pending_error, None
                    raise e0
                if sem is None:
                    value = await self._call_once(inv)
                else:
                    async with sem:
                        value = await self._call_once(inv)
                return ToolResult(
                    inv.call.id,
                    inv.call.name,
                    render.render_value(value, self.max_result_chars),
                    None,
                    data=value,
                    attempts=attempt,
                )
            except TimeoutError:
                err: ToolError = TransientToolError(f"timed out after {opts.timeout_s:g} s")
                if not retry_safe:
                    return self._error_result(
                        inv,
                        TransientToolError(
                            f"timed out after {opts.timeout_s:g} s; it may or may not have taken "
                            "effect, so check before calling it again"
                        ),
                        attempt,
                    )
            except ToolError as te:
                err = te
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.error("tool %s raised on call %s", tool.name, inv.call.id, exc_info=e)
                return ToolResult(
                    inv.call.id,
                    inv.call.name,
                    render.render_terminal(tool.name),
                    _TERMINAL,
                    attempts=attempt,
                    metadata={"exception": type(e).__name__},
                )
            if (
                isinstance(err, TransientToolError)
                and attempt < max_attempts
                and (err.retry_after is None or err.retry_after <= MAX_RETRY_AFTER_S)
            ):
                await asyncio.sleep(_backoff(attempt, opts.backoff_base_s, opts.backoff_max_s, err))
                continue
            return self._error_result(inv, err, attempts=attempt)

    def _error_result(self, inv: Invocation, err: ToolError, attempts: int) -> ToolResult:
        name = inv.tool.name
        kind = err.kind.value
        if kind == _TRANSIENT:
            content = render.render_transient(name, err.message, attempts)
        elif kind == _DENIED:
            content = render.render_denied(name, err.message)
        elif kind == _CORRECTABLE:
            content = err.message
        else:
            content = render.render_terminal(name, err.message)
        return ToolResult(inv.call.id, inv.call.name, content, kind, attempts=attempts)

    async def _call_once(self, inv: Invocation) -> Any:
        tool = inv.tool
        kwargs = inv.args
        if tool.context_param is not None:
            kwargs = {**kwargs, tool.context_param: inv.ctx}
        timeout = tool.options.timeout_s
        if tool.is_async:
            if timeout is None:
                return await tool.fn(**kwargs)
            # Step the coroutine once by hand: a tool that finishes without waiting on anything
            # (in-memory lookups, cache hits) needs no timer. One that suspends continues under
            # the timeout exactly where it stopped.
            coro = tool.fn(**kwargs)
            try:
                first = coro.send(None)
            except StopIteration as stop:
                return stop.value
            async with asyncio.timeout(timeout):
                return await _continue(coro, first)
        if tool.options.inline:
            return tool.fn(**kwargs)
        if timeout is None:
            return await asyncio.to_thread(tool.fn, **kwargs)
        async with asyncio.timeout(timeout):
            return await asyncio.to_thread(tool.fn, **kwargs)


@types.coroutine
def _continue(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Finish driving `coro`, which already yielded `yielded` on its first step: the same
    delegation `yield from` performs, including cancellation thrown in by the task."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - forwarded into the tool's coroutine
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


def _escalate(
    decision: PolicyDecision, inv: Invocation, checks: Sequence[CallCheck]
) -> PolicyDecision:
    """The strictest of the policy's decision and the call checks' (deny > approve > allow)."""
    for check in checks:
        d = check.decide(inv)
        if d is not None and SEVERITY[d.effect] > SEVERITY[decision.effect]:
            decision = d
            if d.effect == "deny":
                break
    return decision


def _bind(m: Middleware, nxt: Next) -> Next:
    async def step(inv: Invocation) -> ToolResult:
        return await m(inv, nxt)

    return step


#: a tool asking to wait longer than this is not retried inside the call: holding a model turn
#: that long helps nobody, and the transient error tells the model to try later instead
MAX_RETRY_AFTER_S = 30.0


def _backoff(attempt: int, base: float, cap: float, err: TransientToolError) -> float:
    """Exponential backoff with full jitter, never shorter than the tool's `retry_after`."""
    delay = random.uniform(0, min(cap, base * (2 ** (attempt - 1))))
    if err.retry_after is not None:
        delay = max(delay, min(err.retry_after, MAX_RETRY_AFTER_S))
    return delay


def _has_null(raw: Any) -> bool:
    """Whether the arguments contain a null anywhere (cheap on text: a substring test)."""
    if isinstance(raw, str):
        return "null" in raw
    if raw is None:
        return True
    if isinstance(raw, dict):
        return any(_has_null(v) for v in raw.values())
    if isinstance(raw, list):
        return any(_has_null(v) for v in raw)
    return False


def _drop_nulls(args: dict[str, Any], names: frozenset[str], tool: Tool) -> dict[str, Any]:
    """A null sent for an optional, non-nullable parameter means "not given" (OpenAI strict
    mode makes every optional parameter nullable); nested ones are restored by the dialect."""
    out = {k: v for k, v in args.items() if not (v is None and k in names)}
    try:
        from callgate.dialects.export import restore_strict_nulls
    except ImportError:  # pragma: no cover - dialects ships with the package
        return out
    try:
        restored: dict[str, Any] = restore_strict_nulls(out, tool.spec.parameters)
    except Exception:  # noqa: BLE001 - restoring is best effort; validation still runs
        return out
    return restored


def _param_descriptions(tool: Tool) -> dict[str, str]:
    props = tool.spec.parameters.get("properties", {})
    return {
        k: v["description"]
        for k, v in props.items()
        if isinstance(v, dict) and isinstance(v.get("description"), str) and v["description"]
    }


def _check_required_ids(tool: Tool, args: dict[str, Any]) -> None:
    """Required identifier parameters may not be empty strings (a model's favourite filler)."""
    ids = tool.required_ids
    if not ids:
        return
    bad = [k for k in ids if isinstance(args.get(k), str) and not args[k].strip()]
    if bad:
        raise ArgumentsInvalid(
            [
                FieldIssue(
                    (k,),
                    "value",
                    "must be a non-empty identifier",
                    expected="a non-empty identifier",
                    given=args[k],
                    has_given=True,
                )
                for k in bad
            ]
        )
