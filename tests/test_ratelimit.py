"""Rate limits: exact sliding windows, concurrency caps, clear denials; memory and Redis."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
from typing import Any

import pytest

from callgate.context import RunContext
from callgate.errors import ToolDenied
from callgate.gate.middleware.ratelimit import (
    Limit,
    MemoryRateLimitBackend,
    RateLimiter,
    denial_message,
)
from callgate.gate.protocols import Invocation
from callgate.messages import ToolCall, ToolResult
from callgate.tools.definition import Tool, tool


@tool
def send_email(to: str, body: str) -> str:
    """Send an email."""
    return "sent"


@tool
def search(q: str) -> str:
    """Search."""
    return "found"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def inv(
    t: Tool = send_email, user: str | None = "alice", tenant: str | None = "acme"
) -> Invocation:
    args: dict[str, Any] = {"to": "a@b.c", "body": "hi"} if t is send_email else {"q": "x"}
    return Invocation(ToolCall("c", t.name, "{}"), RunContext(user_id=user, tenant=tenant), t, args)


async def ok(i: Invocation) -> ToolResult:
    return ToolResult(i.call.id, i.call.name, "ok")


async def attempt(rl: RateLimiter, i: Invocation) -> bool:
    try:
        await rl(i, ok)
        return True
    except ToolDenied:
        return False


# ----------------------------------------------------------------------------- memory


async def test_window_is_exact_and_slides() -> None:
    clock = Clock()
    rl = RateLimiter([Limit.per_minute(5, tool="send_email")], MemoryRateLimitBackend(clock))
    results = [await attempt(rl, inv()) for _ in range(8)]
    assert results == [True] * 5 + [False] * 3
    clock.t += 59.0
    assert not await attempt(rl, inv())
    clock.t += 1.0  # the first five calls leave the window together
    assert [await attempt(rl, inv()) for _ in range(6)] == [True] * 5 + [False]


async def test_denial_message_and_retry_hint() -> None:
    clock = Clock()
    rl = RateLimiter([Limit.per_minute(5, tool="send_email")], MemoryRateLimitBackend(clock))
    for _ in range(5):
        await rl(inv(), ok)
        clock.t += 9.6
    i = inv()
    with pytest.raises(ToolDenied) as ei:
        await rl(i, ok)
    e = ei.value
    # the oldest call was 48 s ago, so a slot frees in 12 s
    assert e.message == (
        "rate limit: at most 5 calls of send_email per minute for this user; try again in 12 s"
    )
    assert e.code == "rate_limited"
    assert e.rule is not None and e.rule.startswith("ratelimit:")
    assert e.detail["retry_after"] == pytest.approx(12.0)
    assert i.rate_limit.retry_after == pytest.approx(12.0)


def test_messages_for_other_shapes() -> None:
    assert denial_message(Limit(calls=100, per=3600, by="tenant"), "x", 30.2) == (
        "rate limit: at most 100 calls per hour for this tenant; try again in 31 s"
    )
    assert denial_message(Limit(calls=1, per=10, by="global", tool="t"), "t", 0.1) == (
        "rate limit: at most 1 call of t in any 10 s in total; try again in 1 s"
    )
    assert denial_message(Limit(concurrency=2, tool="search"), "search", None) == (
        "rate limit: at most 2 calls of search at once for this user; "
        "try again when one of them has finished"
    )
    assert "of tools matching email.*" in denial_message(
        Limit(calls=3, tool="email.*"), "email.send", 5
    )


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="needs `calls`"):
        Limit()
    with pytest.raises(ValueError):
        Limit(calls=0)
    with pytest.raises(ValueError):
        Limit(calls=1, per=0)
    with pytest.raises(ValueError):
        Limit(calls=1, by="planet")  # type: ignore[arg-type]


async def test_scopes_user_tenant_and_tools() -> None:
    rl = RateLimiter(
        [
            Limit.per_minute(2, tool="send_email", by="user"),
            Limit.per_minute(3, by="tenant"),  # every tool of the tenant together
        ]
    )
    assert await attempt(rl, inv(user="alice"))
    assert await attempt(rl, inv(user="alice"))
    assert not await attempt(rl, inv(user="alice"))  # per-user limit
    assert await attempt(rl, inv(user="bob"))  # bob's own bucket, tenant now at 3
    assert not await attempt(rl, inv(search, user="carol"))  # tenant limit covers all tools
    assert await attempt(rl, inv(search, user="carol", tenant="other"))


async def test_refused_call_consumes_nothing() -> None:
    rl = RateLimiter([Limit.per_minute(10, by="tenant"), Limit.per_minute(1, tool="send_email")])
    assert await attempt(rl, inv())
    for _ in range(5):
        assert not await attempt(rl, inv())  # refused by the per-user limit ...
    # ... and the tenant limit was not charged for those refusals: 9 left
    assert [await attempt(rl, inv(search, user=f"u{k}")) for k in range(10)] == [True] * 9 + [False]


async def test_per_tool_counts_each_tool_separately() -> None:
    rl = RateLimiter([Limit.per_minute(1, per_tool=True)])
    assert await attempt(rl, inv(send_email))
    assert await attempt(rl, inv(search))
    assert not await attempt(rl, inv(search))


async def test_anonymous_users_share_a_bucket() -> None:
    rl = RateLimiter([Limit.per_minute(1)])
    assert await attempt(rl, inv(user=None))
    assert not await attempt(rl, inv(user=None))


async def test_concurrency_cap_and_release() -> None:
    rl = RateLimiter([Limit(concurrency=2, tool="search")])
    gate = asyncio.Event()
    started = 0

    async def slow(i: Invocation) -> ToolResult:
        nonlocal started
        started += 1
        await gate.wait()
        return ToolResult(i.call.id, i.call.name, "ok")

    t1 = asyncio.create_task(rl(inv(search), slow))
    t2 = asyncio.create_task(rl(inv(search), slow))
    while started < 2:
        await asyncio.sleep(0)
    with pytest.raises(ToolDenied, match="at most 2 calls of search at once"):
        await rl(inv(search), slow)
    gate.set()
    await asyncio.gather(t1, t2)
    assert await attempt(rl, inv(search))

    async def boom(i: Invocation) -> ToolResult:
        raise RuntimeError("tool crashed")

    for _ in range(3):  # a crashing call still frees its slot
        with pytest.raises(RuntimeError):
            await rl(inv(search), boom)
    assert await attempt(rl, inv(search))


async def test_exact_under_asyncio_contention() -> None:
    rl = RateLimiter([Limit.per_minute(17, tool="send_email")])
    results = await asyncio.gather(*(attempt(rl, inv()) for _ in range(200)))
    assert sum(results) == 17


async def test_through_the_gate() -> None:
    from callgate.gate.core import Gate

    gate = Gate([send_email], middleware=[RateLimiter([Limit.per_minute(1, tool="send_email")])])
    ctx = RunContext(user_id="alice")
    call = ToolCall("c1", "send_email", '{"to": "a@b.c", "body": "x"}')
    first = await gate.execute(call, ctx)
    second = await gate.execute(ToolCall("c2", "send_email", call.arguments), ctx)
    assert first.error_kind is None
    assert second.error_kind == "denied" and second.call_id == "c2"
    assert "at most 1 call of send_email per minute for this user" in second.content
    assert "try again in" in second.content


# ----------------------------------------------------------------------------- redis


def _redis_rl(url: str, prefix: str, limits: list[Limit]) -> RateLimiter:
    from callgate.gate.middleware.ratelimit_redis import RedisRateLimitBackend

    return RateLimiter(limits, RedisRateLimitBackend(url), prefix=prefix)


async def test_redis_window_message_and_atomicity(redis_url: str, redis_prefix: str) -> None:
    rl = _redis_rl(
        redis_url,
        redis_prefix,
        [Limit.per_minute(10, by="tenant"), Limit.per_minute(3, tool="send_email")],
    )
    assert [await attempt(rl, inv()) for _ in range(5)] == [True] * 3 + [False] * 2
    with pytest.raises(ToolDenied) as ei:
        await rl(inv(), ok)
    assert "at most 3 calls of send_email per minute for this user; try again in" in str(ei.value)
    assert 55 <= ei.value.detail["retry_after"] <= 60
    # refusals did not charge the tenant limit: 7 of 10 left for the tenant
    assert [await attempt(rl, inv(search, user=f"u{k}")) for k in range(8)] == [True] * 7 + [False]


async def test_redis_window_slides(redis_url: str, redis_prefix: str) -> None:
    rl = _redis_rl(redis_url, redis_prefix, [Limit(calls=2, per=0.4, tool="search")])
    assert [await attempt(rl, inv(search)) for _ in range(3)] == [True, True, False]
    await asyncio.sleep(0.45)
    assert await attempt(rl, inv(search))


async def test_redis_concurrency(redis_url: str, redis_prefix: str) -> None:
    rl = _redis_rl(redis_url, redis_prefix, [Limit(concurrency=1, tool="search")])
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(i: Invocation) -> ToolResult:
        entered.set()
        await release.wait()
        return ToolResult(i.call.id, i.call.name, "ok")

    task = asyncio.create_task(rl(inv(search), slow))
    await entered.wait()
    assert not await attempt(rl, inv(search))
    assert await attempt(rl, inv(search, user="bob"))  # bob's own slot
    release.set()
    await task
    assert await attempt(rl, inv(search))


async def test_redis_lease_expires_when_holder_dies(redis_url: str, redis_prefix: str) -> None:
    from callgate.gate.middleware.ratelimit import Check
    from callgate.gate.middleware.ratelimit_redis import RedisRateLimitBackend

    backend = RedisRateLimitBackend(redis_url)
    check = [Check(redis_prefix + "lease", None, 60.0, 1, 0.3)]
    assert (await backend.acquire(check, "dead-holder")).allowed  # never released
    assert not (await backend.acquire(check, "other")).allowed
    await asyncio.sleep(0.35)
    assert (await backend.acquire(check, "other")).allowed
    await backend.aclose()


def _hammer(url: str, prefix: str, attempts: int) -> int:
    rl = _redis_rl(url, prefix, [Limit(calls=25, per=120, tool="send_email", by="global")])

    async def run() -> int:
        allowed = 0
        for k in range(attempts):
            batch = await asyncio.gather(*(attempt(rl, inv(user=f"p{k}")) for _ in range(4)))
            allowed += sum(batch)
        return allowed

    return asyncio.run(run())


def test_redis_exact_with_four_processes(redis_url: str, redis_prefix: str) -> None:
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        counts = pool.starmap(_hammer, [(redis_url, redis_prefix, 30)] * 4)
    assert sum(counts) == 25
    assert all(c >= 0 for c in counts) and len(counts) == 4
