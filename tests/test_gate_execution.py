"""Running validated calls: error taxonomy, timeouts, threads, retries, parallelism,
cancellation."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest

from callgate import (
    ExecutionOptions,
    Gate,
    Invocation,
    PolicyDecision,
    RunContext,
    TerminalToolError,
    Tool,
    ToolAnnotations,
    ToolCall,
    ToolDenied,
    ToolResult,
    ToolRetry,
    TransientToolError,
    tool,
)
from callgate.gate.execute import MAX_RETRY_AFTER_S, _backoff
from callgate.gate.protocols import CallRecord
from callgate.testing import FailNTimes, call, hang, raise_

FAST = {"backoff_base_s": 0.001, "backoff_max_s": 0.002}


def schema_tool(name: str, fn: Any, *, ann: ToolAnnotations | None = None, **opts: Any) -> Tool:
    return Tool.from_schema(
        name,
        f"{name} tool",
        {"type": "object", "properties": {"x": {"type": "integer"}}},
        fn,
        annotations=ann,
        options=ExecutionOptions(**{**FAST, **opts}),
    )


async def ex(t: Tool | Gate, args: Any = None, ctx: RunContext | None = None) -> ToolResult:
    g = t if isinstance(t, Gate) else Gate([t])
    name = g.toolset.names()[0]
    return await g.execute(call(name, args or {}, id="id-1"), ctx or RunContext())


# --- success --------------------------------------------------------------------------------


async def test_success_keeps_data_and_renders_json() -> None:
    @tool
    def info(x: int) -> dict[str, Any]:
        return {"x": x, "items": [1, 2]}

    r = await ex(info, {"x": 3})
    assert r.call_id == "id-1" and r.name == "info" and r.error_kind is None
    assert r.data == {"x": 3, "items": [1, 2]}
    assert r.content == '{"x":3,"items":[1,2]}'
    assert r.attempts == 1
    assert r.duration_s >= 0


async def test_long_results_are_truncated_with_a_note() -> None:
    @tool
    def big() -> str:
        return "a" * 1000

    r = await Gate([big], max_result_chars=100).execute(call("big"), RunContext())
    assert r.content.startswith("a" * 100 + "\n[truncated: 900 more characters")
    assert r.data == "a" * 1000


# --- error taxonomy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "kind", "fragment"),
    [
        (ToolRetry("use a date in the future"), "correctable", "use a date in the future"),
        (TransientToolError("backend busy"), "transient", "backend busy"),
        (ToolDenied("not your account"), "denied", "not your account"),
        (TerminalToolError("account closed"), "terminal", "account closed"),
    ],
)
async def test_tool_errors_map_to_kinds(exc: Exception, kind: str, fragment: str) -> None:
    t = schema_tool("op", raise_(exc), max_retries=0)
    r = await ex(t)
    assert r.error_kind == kind
    assert fragment in r.content
    assert r.call_id == "id-1"


async def test_unknown_exception_is_terminal_and_sanitised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "sk-live-0123456789abcdef"

    def boom(**kw: Any) -> None:
        raise RuntimeError(f"connect failed at /srv/app/db.py line 12 password={secret}")

    t = schema_tool("boom", boom)
    with caplog.at_level(logging.ERROR, logger="callgate"):
        r = await ex(t)
    assert r.error_kind == "terminal"
    assert "boom failed with an internal error" in r.content
    for leak in (secret, "/srv/app", "Traceback", "RuntimeError", "line 12"):
        assert leak not in r.content
    assert r.error_class == "RuntimeError"
    # full detail for the operators
    assert secret in caplog.text and "Traceback" in caplog.text and "id-1" in caplog.text


async def test_exception_in_policy_is_sanitised(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenPolicy:
        def decide(self, tool: Tool, args: dict[str, Any], ctx: RunContext) -> PolicyDecision:
            raise KeyError("/etc/policy.yaml secret-key-42")

        def visible(self, tool: Tool, ctx: RunContext) -> bool:
            return True

    t = schema_tool("op", lambda **kw: "ok")
    with caplog.at_level(logging.ERROR, logger="callgate"):
        r = await ex(Gate([t], policy=BrokenPolicy()))
    assert r.error_kind == "terminal"
    assert "secret-key-42" not in r.content and "/etc" not in r.content
    assert "secret-key-42" in caplog.text


async def test_policy_deny_and_approval_without_approver() -> None:
    ran: list[int] = []

    class Deny:
        def decide(self, tool: Tool, args: dict[str, Any], ctx: RunContext) -> PolicyDecision:
            return PolicyDecision("deny", "r1", "Only managers may do this.")

        def visible(self, tool: Tool, ctx: RunContext) -> bool:
            return True

    t = schema_tool("op", lambda **kw: ran.append(1))
    r = await ex(Gate([t], policy=Deny()))
    assert r.error_kind == "denied" and "Only managers may do this." in r.content

    @tool(destructive=True)
    def wipe() -> None:
        ran.append(1)

    r = await ex(wipe)
    assert r.error_kind == "denied" and "needs a person's approval" in r.content
    assert ran == []


async def test_middleware_short_circuit_and_refusal_order() -> None:
    order: list[str] = []

    class Named:
        def __init__(self, name: str, refuse: bool = False) -> None:
            self.name, self.refuse = name, refuse

        async def __call__(self, inv: Invocation, next: Any) -> ToolResult:
            order.append(self.name)
            assert isinstance(inv.args["x"], int)  # validated, not raw
            if self.refuse:
                raise ToolDenied("rate limit reached, wait a minute", rule="rl")
            res: ToolResult = await next(inv)
            order.append(f"/{self.name}")
            return res

    t = schema_tool("op", lambda **kw: order.append("run") or "ok")
    r = await ex(Gate([t], middleware=[Named("a"), Named("b")]), {"x": 1})
    assert r.error_kind is None and order == ["a", "b", "run", "/b", "/a"]
    order.clear()
    recs: list[CallRecord] = []

    class Obs:
        def on_call(self, rec: CallRecord) -> None:
            recs.append(rec)

        def on_turn(self, rec: Any) -> None: ...

    g = Gate([t], middleware=[Named("a"), Named("b", refuse=True)], observers=[Obs()])
    r = await ex(g, {"x": 1})
    assert r.error_kind == "denied" and "rate limit reached" in r.content
    assert order == ["a", "b"]
    assert recs[0].rule == "rl" and recs[0].decision == "deny" and recs[0].call_id == "id-1"


async def test_observer_failure_never_breaks_a_call(caplog: pytest.LogCaptureFixture) -> None:
    class Bad:
        def on_call(self, rec: CallRecord) -> None:
            raise RuntimeError("observer down")

        def on_turn(self, rec: Any) -> None: ...

    t = schema_tool("op", lambda **kw: "ok")
    r = await ex(Gate([t], observers=[Bad()]))
    assert r.content == "ok"
    assert "observer down" in caplog.text


# --- timeouts and threads -------------------------------------------------------------------


async def test_async_tool_timeout() -> None:
    seen: list[str] = []

    async def slow(**kw: Any) -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return "late"

    t = schema_tool("slow", slow, timeout_s=0.05)
    t0 = time.perf_counter()
    r = await ex(t)
    assert time.perf_counter() - t0 < 2
    assert r.error_kind == "transient"
    assert "timed out after 0.05 s" in r.content
    assert "may or may not have taken effect" in r.content  # not idempotent: say so
    assert seen == ["cancelled"]
    assert r.attempts == 1


async def test_sync_tool_timeout() -> None:
    release = threading.Event()

    def slow(**kw: Any) -> str:
        release.wait(2)
        return "late"

    t = schema_tool("slow", slow, timeout_s=0.05)
    t0 = time.perf_counter()
    r = await ex(t)
    release.set()
    assert time.perf_counter() - t0 < 1.5
    assert r.error_kind == "transient" and "timed out" in r.content


async def test_hang_helper_times_out_and_idempotent_timeouts_are_retried() -> None:
    t = schema_tool("h", hang, timeout_s=0.02, max_retries=2, ann=ToolAnnotations(idempotent=True))
    r = await ex(t)
    assert r.error_kind == "transient"
    assert r.attempts == 3
    assert "after 3 attempts" in r.content


async def test_sync_tools_run_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    @tool
    def where() -> None:
        seen.append(threading.get_ident())

    @tool(inline=True)
    def where_inline() -> None:
        seen.append(threading.get_ident())

    await ex(where)
    await ex(where_inline)
    assert seen[0] != loop_thread
    assert seen[1] == loop_thread


async def test_blocking_sync_tool_does_not_block_the_loop() -> None:
    @tool
    def block() -> str:
        time.sleep(0.2)
        return "done"

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tk = asyncio.create_task(ticker())
    r = await ex(block)
    tk.cancel()
    assert r.content == "done"
    assert ticks >= 5


# --- retries --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ann",
    [
        ToolAnnotations(idempotent=True),
        ToolAnnotations(read_only=True),
        ToolAnnotations(retry_allowed=True),
    ],
)
async def test_transient_errors_retried_for_retry_safe_tools(ann: ToolAnnotations) -> None:
    f = FailNTimes(2, "third time lucky")
    r = await ex(schema_tool("flaky", f, ann=ann, max_retries=2))
    assert r.error_kind is None and r.content == "third time lucky"
    assert r.attempts == 3 and f.calls == 3


async def test_retries_exhausted() -> None:
    f = FailNTimes(10)
    r = await ex(schema_tool("flaky", f, ann=ToolAnnotations(idempotent=True), max_retries=2))
    assert r.error_kind == "transient" and f.calls == 3 and r.attempts == 3
    assert "failed temporarily after 3 attempts (backend unavailable)" in r.content


async def test_non_idempotent_tools_are_not_retried() -> None:
    f = FailNTimes(1, "ok")
    r = await ex(schema_tool("send", f, max_retries=5))
    assert r.error_kind == "transient"
    assert f.calls == 1


@pytest.mark.parametrize(
    "exc", [ToolRetry("fix it"), ToolDenied("no"), TerminalToolError("gone"), ValueError("bug")]
)
async def test_only_transient_errors_are_retried(exc: Exception) -> None:
    f = FailNTimes(1, "ok", exc=exc)
    r = await ex(schema_tool("op", f, ann=ToolAnnotations(idempotent=True), max_retries=3))
    assert r.error_kind is not None
    assert f.calls == 1


async def test_retry_after_is_honoured() -> None:
    f = FailNTimes(1, "ok", exc=TransientToolError("slow down", retry_after=0.15))
    t0 = time.perf_counter()
    r = await ex(schema_tool("op", f, ann=ToolAnnotations(idempotent=True)))
    assert r.content == "ok" and f.calls == 2
    assert time.perf_counter() - t0 >= 0.15


def test_backoff_is_exponential_with_full_jitter() -> None:
    err = TransientToolError()
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 1.0)]:
        delays = [_backoff(attempt, 0.1, 1.0, err) for _ in range(300)]
        assert all(0 <= d <= ceiling + 1e-9 for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spans the range
        assert min(delays) < ceiling * 0.2
        assert len(set(delays)) > 250  # not a fixed delay
    late = TransientToolError(retry_after=0.5)
    assert all(_backoff(1, 0.1, 1.0, late) >= 0.5 for _ in range(50))
    # a hostile retry_after is capped
    huge = TransientToolError(retry_after=1e9)
    assert _backoff(1, 0.1, 1.0, huge) <= MAX_RETRY_AFTER_S


async def test_too_long_retry_after_is_not_waited_for() -> None:
    f = FailNTimes(1, "ok", exc=TransientToolError("come back tomorrow", retry_after=86400))
    t0 = time.perf_counter()
    r = await ex(schema_tool("op", f, ann=ToolAnnotations(idempotent=True)))
    assert time.perf_counter() - t0 < 1
    assert r.error_kind == "transient" and f.calls == 1
    assert "come back tomorrow" in r.content


# --- parallel calls -------------------------------------------------------------------------


class Meter:
    def __init__(self) -> None:
        self.now = 0
        self.max = 0
        self.by_res: dict[str, int] = {}
        self.max_by_res: dict[str, int] = {}

    async def enter(self, res: str | None, delay: float) -> None:
        self.now += 1
        self.max = max(self.max, self.now)
        if res:
            self.by_res[res] = self.by_res.get(res, 0) + 1
            self.max_by_res[res] = max(self.max_by_res.get(res, 0), self.by_res[res])
        try:
            await asyncio.sleep(delay)
        finally:
            self.now -= 1
            if res:
                self.by_res[res] -= 1


async def test_max_parallel_caps_concurrency_of_one_turn() -> None:
    m = Meter()

    @tool
    async def work(i: int) -> int:
        await m.enter(None, 0.02)
        return i

    g = Gate([work], max_parallel=3)
    calls = [call("work", {"i": i}, id=f"c{i}") for i in range(12)]
    rs = await g.execute_many(calls, RunContext())
    assert m.max == 3
    assert [r.data for r in rs] == list(range(12))


async def test_resource_caps_are_shared_between_tools() -> None:
    m = Meter()

    @tool(resource="db")
    async def read_db(i: int) -> int:
        await m.enter("db", 0.02)
        return i

    @tool(resource="db")
    async def write_db(i: int) -> int:
        await m.enter("db", 0.02)
        return i

    @tool
    async def other(i: int) -> int:
        await m.enter(None, 0.02)
        return i

    g = Gate([read_db, write_db, other], max_parallel=10, resource_limits={"db": 2})
    calls = [call(n, {"i": i}) for i in range(4) for n in ("read_db", "write_db", "other")]
    rs = await g.execute_many(calls, RunContext())
    assert all(r.error_kind is None for r in rs)
    assert m.max_by_res["db"] == 2
    assert m.max > 2  # the uncapped tool ran alongside


async def test_results_in_model_order_whatever_the_finish_order() -> None:
    @tool
    async def sleepy(ms: int) -> int:
        await asyncio.sleep(ms / 1000)
        return ms

    g = Gate([sleepy])
    delays = [50, 5, 30, 1, 20]
    calls = [call("sleepy", {"ms": d}, id=f"id-{d}") for d in delays]
    rs = await g.execute_many(calls, RunContext())
    assert [r.call_id for r in rs] == [f"id-{d}" for d in delays]
    assert [r.data for r in rs] == delays


async def test_one_failure_never_hides_the_others() -> None:
    @tool
    async def good(i: int) -> int:
        await asyncio.sleep(0.01)
        return i

    @tool
    def crash(i: int) -> int:
        raise RuntimeError("boom")

    g = Gate([good, crash])
    calls = [
        call("good", {"i": 1}, id="a"),
        call("crash", {"i": 2}, id="b"),
        call("good", '{"i": "x"}', id="c"),
        call("nope", {}, id="d"),
        call("good", {"i": 5}, id="e"),
    ]
    rs = await g.execute_many(calls, RunContext())
    assert [(r.call_id, r.error_kind) for r in rs] == [
        ("a", None),
        ("b", "terminal"),
        ("c", "correctable"),
        ("d", "correctable"),
        ("e", None),
    ]


async def test_cancelling_execute_many_cancels_running_tools() -> None:
    started = 0
    cancelled: list[int] = []
    all_started = asyncio.Event()

    @tool
    async def forever(i: int) -> None:
        nonlocal started
        started += 1
        if started == 3:
            all_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    g = Gate([forever])
    task = asyncio.create_task(
        g.execute_many([call("forever", {"i": i}) for i in range(3)], RunContext())
    )
    await asyncio.wait_for(all_started.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == [0, 1, 2]


async def test_cancelling_a_single_execute_propagates() -> None:
    cancelled = asyncio.Event()

    @tool
    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.create_task(Gate([forever]).execute(call("forever"), RunContext()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()


async def test_empty_and_single_call_batches() -> None:
    @tool
    def one() -> int:
        return 1

    g = Gate([one])
    assert await g.execute_many([], RunContext()) == []
    (r,) = await g.execute_many([call("one", id="z")], RunContext())
    assert r.call_id == "z" and r.data == 1


def test_execute_sync() -> None:
    @tool
    async def a(x: int) -> int:
        return x + 1

    r = Gate([a]).execute_sync(ToolCall("s1", "a", '{"x": 1}'))
    assert r.call_id == "s1" and r.data == 2


async def test_arguments_reach_the_tool_validated_and_typed() -> None:
    got: list[Any] = []

    @tool
    def f(n: int, ratio: float, flag: bool) -> None:
        got.append((n, ratio, flag))

    r = await ex(f, {"n": 3, "ratio": 2, "flag": True})
    assert r.error_kind is None
    assert got == [(3, 2.0, True)] and type(got[0][1]) is float


def test_resource_caps_work_across_event_loops() -> None:
    @tool(resource="db")
    async def q(i: int) -> int:
        await asyncio.sleep(0.005)
        return i

    g = Gate([q], resource_limits={"db": 1})
    for _ in range(3):  # each asyncio.run is a new loop
        rs = asyncio.run(g.execute_many([call("q", {"i": i}) for i in range(3)], RunContext()))
        assert [r.data for r in rs] == [0, 1, 2]
