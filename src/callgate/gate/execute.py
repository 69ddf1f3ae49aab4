"""The last stage of the gate: run a validated, authorised call with timeout, retry and caps.

What a tool may raise, and what becomes of it:

- `ToolError` subclasses are the tool's own verdict (correctable, transient, denied, terminal);
  transient ones are retried with backoff when the tool is safe to retry.
- Any other `Exception`, and `SystemExit` (argparse exits on bad input), is a crash: a terminal
  error for the model, the traceback in the log, the class name in the record.
- `GeneratorExit` raised by the tool's own code is a crash too. The one thrown into the gate's
  coroutine because its caller closes it propagates.
- `KeyboardInterrupt` raised in a worker thread (where sync tools run) cannot be the process's
  interrupt, since Python delivers signals to the main thread only: it is a crash. One raised in
  the event loop's thread may be a real Ctrl-C and propagates, as does the caller's own
  cancellation (`asyncio.CancelledError`).
- A timeout ends the wait, not the tool: a sync tool's thread cannot be killed, so it runs on in
  the gate's own thread pool, which nobody waits for (a 0.2 s timeout returns after 0.2 s).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import random
import types
import weakref
from collections.abc import Callable, Coroutine, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from callgate.errors import ErrorKind, ToolError, TransientToolError
from callgate.gate import render
from callgate.gate.protocols import Invocation
from callgate.messages import ToolResult

log = logging.getLogger("callgate.gate")

_DENIED = ErrorKind.DENIED.value
_CORRECTABLE = ErrorKind.CORRECTABLE.value
_TERMINAL = ErrorKind.TERMINAL.value

#: a tool asking to wait longer than this is not retried inside the call: holding a model turn
#: that long helps nobody, and the transient error tells the model to try later instead
MAX_RETRY_AFTER_S = 30.0

#: sync tools run here rather than in the event loop's default executor, which `asyncio.run`
#: joins on exit: a tool that timed out must not hold its caller until it finishes
_POOL = ThreadPoolExecutor(
    max_workers=min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="callgate-tool"
)


class ToolCrashed(Exception):
    """A `BaseException` the tool itself raised (SystemExit, GeneratorExit, KeyboardInterrupt in
    a worker thread), carried as an ordinary exception so it is classified as a crash."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(type(original).__name__)
        self.original = original


class Executor:
    """Runs invocations: the fast path for the common case, `_retry` for everything else."""

    def __init__(self, resource_limits: dict[str, int], max_result_chars: int) -> None:
        self.resource_limits = resource_limits
        self.max_result_chars = max_result_chars
        # per event loop: a semaphore binds to the loop it first waits on, and a gate may be
        # used from several loops (execute_sync, run_sync, tests)
        self._sems: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]
        ] = weakref.WeakKeyDictionary()

    async def run(self, inv: Invocation) -> ToolResult:
        """Timeout, retry with backoff (only where safe), and the actual call."""
        inv.started = True
        tool = inv.tool
        opts = tool.options
        if opts.resource is not None:
            return await self._retry(inv, None)
        try:
            if tool.is_async and tool.context_param is None:
                # `_call_once` inlined for the common case (one coroutine fewer per call)
                coro = tool.fn(**inv.args)
                try:
                    first = coro.send(None)
                except StopIteration as stop:
                    value = stop.value
                except (GeneratorExit, SystemExit) as e:
                    raise ToolCrashed(e) from e
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

    def _sem(self, name: str) -> asyncio.Semaphore | None:
        limit = self.resource_limits.get(name)
        if limit is None:
            return None
        sems = self._sems.setdefault(asyncio.get_running_loop(), {})
        sem = sems.get(name)
        if sem is None:
            sem = sems[name] = asyncio.Semaphore(limit)
        return sem

    async def _attempt(self, inv: Invocation, sem: asyncio.Semaphore | None) -> Any:
        if sem is None:
            return await self._call_once(inv)
        async with sem:
            return await self._call_once(inv)

    async def _retry(self, inv: Invocation, first_error: BaseException | None) -> ToolResult:
        opts = inv.tool.options
        retry_safe = inv.tool.annotations.retry_safe
        max_attempts = 1 + (opts.max_retries if retry_safe else 0)
        sem = self._sem(opts.resource) if opts.resource else None
        attempt = 0
        pending_error = first_error
        while True:
            attempt += 1
            try:
                if pending_error is not None:
                    e0, pending_error = pending_error, None
                    raise e0
                value = await self._attempt(inv, sem)
                text = render.render_value(value, self.max_result_chars)
                return ToolResult(
                    inv.call.id, inv.call.name, text, None, data=value, attempts=attempt
                )
            except asyncio.CancelledError:
                raise
            except BaseException as e:  # noqa: BLE001 - classified right here
                err = _classify(inv, e)
            if isinstance(err, ToolResult):
                err.attempts = attempt
                return err
            if isinstance(err, TransientToolError) and _should_retry(err, attempt, max_attempts):
                await asyncio.sleep(_backoff(attempt, opts.backoff_base_s, opts.backoff_max_s, err))
                continue
            return error_result(inv, err, attempt)

    async def _call_once(self, inv: Invocation) -> Any:
        tool = inv.tool
        kwargs = inv.args
        if tool.context_param is not None:
            kwargs = {**kwargs, tool.context_param: inv.ctx}
        timeout = tool.options.timeout_s
        if tool.is_async:
            # Step the coroutine once by hand: a tool that finishes without waiting on anything
            # (in-memory lookups, cache hits) needs no timer. One that suspends continues under
            # the timeout exactly where it stopped.
            coro = tool.fn(**kwargs)
            done, first = _advance(coro, None, None)
            if done:
                return first
            if timeout is None:
                return await _continue(coro, first)
            async with asyncio.timeout(timeout):
                return await _continue(coro, first)
        if tool.options.inline:
            return tool.fn(**kwargs)
        fn = functools.partial(contextvars.copy_context().run, _in_thread(tool.fn), **kwargs)
        future = asyncio.get_running_loop().run_in_executor(_POOL, fn)
        if timeout is None:
            return await future
        async with asyncio.timeout(timeout):
            return await future


def _in_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` as run in a worker thread, where no BaseException can be the process's own."""

    def call(**kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except Exception:
            raise
        except BaseException as e:  # SystemExit, KeyboardInterrupt, ...
            raise ToolCrashed(e) from e

    return call


def _classify(inv: Invocation, e: BaseException) -> ToolError | ToolResult:
    """What a raised exception means: a `ToolError` to render (and maybe retry), or the
    terminal result of a crash. Anything that must propagate is re-raised."""
    if isinstance(e, TimeoutError):
        return _timed_out(inv)
    if isinstance(e, ToolError):
        return e
    if isinstance(e, (SystemExit, GeneratorExit)):
        e = ToolCrashed(e)
    if not isinstance(e, Exception):
        raise e  # KeyboardInterrupt in the loop's thread: maybe the process's own interrupt
    original = e.original if isinstance(e, ToolCrashed) else e
    log.error("tool %s raised on call %s", inv.tool.name, inv.call.id, exc_info=original)
    return ToolResult(
        inv.call.id,
        inv.call.name,
        render.render_terminal(inv.tool.name),
        _TERMINAL,
        error_class=type(original).__name__,
    )


def _timed_out(inv: Invocation) -> ToolError:
    limit = inv.tool.options.timeout_s
    what = "it timed out" if limit is None else f"it timed out after {limit:g} s"
    if inv.tool.annotations.retry_safe:
        return TransientToolError(what)
    # not retried: the model must learn that the effect is unknown
    return TransientToolError(
        f"{what} and may or may not have taken effect", code="timeout_unknown_effect"
    )


def _should_retry(err: TransientToolError, attempt: int, max_attempts: int) -> bool:
    return (
        err.code != "timeout_unknown_effect"
        and attempt < max_attempts
        and (err.retry_after is None or err.retry_after <= MAX_RETRY_AFTER_S)
    )


def error_result(inv: Invocation, err: ToolError, attempts: int) -> ToolResult:
    """The model-facing result of a classified error."""
    name = inv.tool.name
    kind = err.kind.value
    if err.code == "timeout_unknown_effect":
        content = render.render_unknown_effect(name, err.message)
    elif isinstance(err, TransientToolError):
        content = render.render_transient(name, err.message, attempts, err.retry_after)
    elif kind == _DENIED:
        content = render.render_denied(name, err.message)
    elif kind == _CORRECTABLE:
        content = err.message
    else:
        content = render.render_terminal(name, err.message)
    return ToolResult(inv.call.id, inv.call.name, content, kind, attempts=attempts)


@types.coroutine
def _continue(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Finish driving `coro`, which already yielded `yielded` on its first step: the same
    delegation `yield from` performs, including cancellation thrown in by the task. A
    `GeneratorExit` thrown in here (the caller closes us) propagates; one the tool raises on
    its own is a crash."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - forwarded into the tool's coroutine
            done, yielded = _advance(coro, None, exc)
        else:
            done, yielded = _advance(coro, sent, None)
        if done:
            return yielded


def _advance(
    coro: Coroutine[Any, Any, Any], sent: Any, exc: BaseException | None
) -> tuple[bool, Any]:
    """One step of a tool's coroutine (sending `sent`, or throwing `exc` in): (True, its
    return value) when it finished, (False, what it yielded) when it suspended. A tool that
    raises `GeneratorExit` or `SystemExit` crashed; it must not end the caller's task."""
    try:
        return False, (coro.send(sent) if exc is None else coro.throw(exc))
    except StopIteration as stop:
        return True, stop.value
    except (GeneratorExit, SystemExit) as e:
        raise ToolCrashed(e) from e


def _backoff(attempt: int, base: float, cap: float, err: TransientToolError) -> float:
    """Exponential backoff with full jitter, never shorter than the tool's `retry_after`."""
    delay = random.uniform(0, min(cap, base * (2 ** (attempt - 1))))
    if err.retry_after is not None:
        delay = max(delay, min(err.retry_after, MAX_RETRY_AFTER_S))
    return delay
