"""The result cache: keys (defaults, key order, tenant, version), TTL, invalidation by write
tools, errors, LRU bound, single-flight in one process and across processes on real Redis."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from typing import Any

import pytest

from callgate import Gate, RunContext, ToolResult, tool
from callgate.gate.middleware.cache import CacheMiddleware, MemoryCache, cache_key
from callgate.gate.middleware.cache_redis import RedisCache
from callgate.policy.engine import DefaultPolicy
from callgate.testing import call
from callgate.tools.definition import Tool

runs: list[dict[str, Any]] = []


@tool(read_only=True)
async def search(q: str, limit: int = 10) -> str:
    """Search."""
    runs.append({"q": q, "limit": limit})
    await asyncio.sleep(0.01)
    return f"{len(runs)}:{q}:{limit}"


@tool(idempotent=True)
async def update(q: str) -> str:
    """Update what search finds (a write that is safe to repeat)."""
    return "updated"


@tool
def write(q: str) -> str:
    """A write with unknown effects: never cached."""
    runs.append({"write": q})
    return "ok"


def make_gate(cache: CacheMiddleware, *tools: Tool) -> Gate:
    return Gate(list(tools) or [search, update, write], middleware=[cache])


async def run(g: Gate, name: str, args: dict[str, Any], tenant: str | None = None, id: str = "c"):
    return await g.execute(call(name, args, id=id), RunContext(tenant=tenant))


@pytest.fixture(autouse=True)
def _clear() -> None:
    runs.clear()


async def test_hit_fills_defaults_ignores_key_order_and_keeps_the_call_id() -> None:
    c = CacheMiddleware(ttl={"search": 60})
    g = make_gate(c)
    a = await run(g, "search", {"q": "x"}, id="first")
    b = await g.execute(call("search", '{"limit": 10, "q": "x"}', id="second"), RunContext())
    assert len(runs) == 1 and (c.hits, c.misses) == (1, 1)
    assert b.content == a.content and b.call_id == "second" and a.call_id == "first"
    await run(g, "search", {"q": "x", "limit": 11})
    assert len(runs) == 2


def test_key_depends_on_tenant_tool_version_and_values() -> None:
    v2 = Tool.from_schema(
        "search",
        "s",
        {"type": "object", "properties": {"q": {"type": "string"}}},
        lambda q: q,
        version="2",
    )
    base = cache_key(search, {"q": "x"}, "acme")
    assert base == cache_key(search, {"limit": 10, "q": "x"}, "acme")
    others = {
        cache_key(search, {"q": "x"}, "other"),
        cache_key(search, {"q": "x"}, None),
        cache_key(v2, {"q": "x"}, "acme"),
        cache_key(search, {"q": "y"}, "acme"),
        cache_key(search, {"q": "x", "limit": 1}, "acme"),
    }
    assert base not in others and len(others) == 5


async def test_never_a_cross_tenant_hit() -> None:
    c = CacheMiddleware(ttl={"search": 60})
    g = make_gate(c)
    a = await run(g, "search", {"q": "x"}, tenant="a")
    b = await run(g, "search", {"q": "x"}, tenant="b")
    n = await run(g, "search", {"q": "x"}, tenant=None)
    assert len(runs) == 3 and len({a.content, b.content, n.content}) == 3
    assert (await run(g, "search", {"q": "x"}, tenant="b")).content == b.content
    assert len(runs) == 3


async def test_ttl_expires() -> None:
    now = [0.0]
    c = CacheMiddleware(ttl={"search": 5}, backend=MemoryCache(clock=lambda: now[0]))
    g = make_gate(c)
    await run(g, "search", {"q": "x"})
    now[0] = 4.9
    await run(g, "search", {"q": "x"})
    assert len(runs) == 1
    now[0] = 5.0
    await run(g, "search", {"q": "x"})
    assert len(runs) == 2


async def test_only_read_only_or_idempotent_tools_with_a_ttl_are_cached() -> None:
    c = CacheMiddleware(default_ttl=60)
    g = Gate([search, write], middleware=[c], policy=DefaultPolicy())
    for _ in range(2):
        await run(g, "write", {"q": "x"})
    assert len(runs) == 2
    assert c.ttl_for(search) == 60 and c.ttl_for(write) is None
    assert CacheMiddleware().ttl_for(search) is None  # caching is opt-in per tool


async def test_write_tool_invalidates_named_tools_only_on_success() -> None:
    c = CacheMiddleware(ttl={"search": 60}, invalidates={"update": ["search"]})
    g = make_gate(c)
    await run(g, "search", {"q": "x"}, tenant="a")
    await run(g, "search", {"q": "x"}, tenant="b")
    assert (await run(g, "update", {"q": "x"}, tenant="a")).error_kind is None
    await run(g, "search", {"q": "x"}, tenant="a")
    await run(g, "search", {"q": "x"}, tenant="b")  # every tenant's entry is stale
    assert len(runs) == 4
    await run(g, "search", {"q": "x"}, tenant="a")
    assert len(runs) == 4


flaky_runs: list[int] = []


@tool(read_only=True, max_retries=0)
async def flaky(q: str) -> str:
    """Fails."""
    flaky_runs.append(1)
    await asyncio.sleep(0.05)
    raise RuntimeError("down")


async def test_errors_are_shared_by_one_flight_but_not_cached() -> None:
    flaky_runs.clear()
    c = CacheMiddleware(ttl={"flaky": 60})
    g = make_gate(c, flaky)
    res = await asyncio.gather(*(run(g, "flaky", {"q": "x"}, id=f"c{i}") for i in range(5)))
    assert len(flaky_runs) == 1
    assert {r.error_kind for r in res} == {res[0].error_kind} and res[0].error_kind is not None
    assert [r.call_id for r in res] == [f"c{i}" for i in range(5)]
    await run(g, "flaky", {"q": "x"})
    assert len(flaky_runs) == 2  # not cached: the next call runs again


async def test_errors_cached_when_the_tool_says_so() -> None:
    flaky_runs.clear()
    c = CacheMiddleware(ttl={"flaky": 60}, cache_errors=["flaky"])
    g = make_gate(c, flaky)
    await run(g, "flaky", {"q": "x"})
    second = await run(g, "flaky", {"q": "x"})
    assert len(flaky_runs) == 1 and second.error_kind == "terminal"


async def test_lru_is_bounded() -> None:
    backend = MemoryCache(max_entries=3)
    c = CacheMiddleware(ttl={"search": 60}, backend=backend)
    g = make_gate(c)
    for q in "abcd":
        await run(g, "search", {"q": q})
    assert len(backend) == 3
    await run(g, "search", {"q": "d"})
    assert len(runs) == 4
    await run(g, "search", {"q": "a"})  # evicted first
    assert len(runs) == 5


slow_runs: list[int] = []


@tool(read_only=True)
async def slow(q: str) -> str:
    """Slow."""
    slow_runs.append(1)
    await asyncio.sleep(0.2)
    return "done " + q


def slow_gate() -> Gate:
    slow_runs.clear()
    return make_gate(CacheMiddleware(ttl={"slow": 60}), slow)


async def leader_and_follower() -> tuple[asyncio.Task[ToolResult], asyncio.Task[ToolResult]]:
    """A leader call to `slow` in flight, and an identical follower that joined it."""
    g = slow_gate()
    leader = asyncio.create_task(run(g, "slow", {"q": "x"}, id="lead"))
    await asyncio.sleep(0.05)
    follower = asyncio.create_task(run(g, "slow", {"q": "x"}, id="follow"))
    await asyncio.sleep(0.05)
    return leader, follower


async def test_thousand_identical_concurrent_calls_one_execution() -> None:
    g = slow_gate()
    res = await asyncio.gather(*(run(g, "slow", {"q": "x"}, id=f"c{i}") for i in range(1000)))
    assert len(slow_runs) == 1
    assert all(r.content == "done x" and r.call_id == f"c{i}" for i, r in enumerate(res))


async def test_cancelled_leader_hands_over_to_a_follower() -> None:
    leader, follower = await leader_and_follower()
    leader.cancel()
    res: ToolResult = await follower
    assert res.content == "done x" and res.call_id == "follow"
    assert len(slow_runs) == 2
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_cancelled_follower_does_not_disturb_the_flight() -> None:
    leader, follower = await leader_and_follower()
    follower.cancel()
    assert (await leader).content == "done x"
    assert len(slow_runs) == 1
    with pytest.raises(asyncio.CancelledError):
        await follower


# --- Redis ------------------------------------------------------------------------------------


async def test_redis_hit_tenant_isolation_and_invalidation(
    redis_url: str, redis_prefix: str
) -> None:
    backend = RedisCache(redis_url, prefix=redis_prefix)
    c = CacheMiddleware(ttl={"search": 60}, invalidates={"update": ["search"]}, backend=backend)
    g = make_gate(c)
    try:
        a = await run(g, "search", {"q": "x"}, tenant="a")
        again = await run(g, "search", {"limit": 10, "q": "x"}, tenant="a", id="again")
        assert len(runs) == 1 and again.content == a.content and again.call_id == "again"
        await run(g, "search", {"q": "x"}, tenant="b")
        assert len(runs) == 2
        await run(g, "update", {"q": "x"}, tenant="a")
        await run(g, "search", {"q": "x"}, tenant="a")
        assert len(runs) == 3
    finally:
        await backend.aclose()


async def test_redis_ttl(redis_url: str, redis_prefix: str) -> None:
    backend = RedisCache(redis_url, prefix=redis_prefix)
    g = make_gate(CacheMiddleware(ttl={"search": 0.2}, backend=backend))
    try:
        await run(g, "search", {"q": "x"})
        await run(g, "search", {"q": "x"})
        assert len(runs) == 1
        await asyncio.sleep(0.3)
        await run(g, "search", {"q": "x"})
        assert len(runs) == 2
    finally:
        await backend.aclose()


def _process(url: str, prefix: str, start_at: float, tool_name: str, n: int) -> list[str]:
    """One process: `n` identical concurrent calls through a Redis-backed cache."""
    import redis

    counter = redis.Redis.from_url(url)

    @tool(name="shared", read_only=True, max_retries=0)
    def shared_ok(q: str) -> str:
        """Counts its executions in Redis."""
        counter.incr(prefix + "executions")
        time.sleep(0.4)
        return "value " + q

    @tool(name="shared", read_only=True, max_retries=0)
    def shared_fail(q: str) -> str:
        """Counts its executions in Redis, then fails."""
        counter.incr(prefix + "executions")
        time.sleep(0.4)
        raise RuntimeError("down")

    chosen = shared_ok if tool_name == "ok" else shared_fail

    async def main() -> list[str]:
        backend = RedisCache(url, prefix=prefix + "c:")
        g = Gate([chosen], middleware=[CacheMiddleware(ttl={"shared": 60}, backend=backend)])
        await asyncio.sleep(max(0.0, start_at - time.time()))
        res = await asyncio.gather(
            *(g.execute(call("shared", {"q": "x"}, id=f"c{i}"), RunContext()) for i in range(n))
        )
        await backend.aclose()
        return [f"{r.error_kind}|{r.content}" for r in res]

    return asyncio.run(main())


@pytest.mark.parametrize("outcome", ["ok", "fail"])
def test_redis_single_flight_across_two_processes(
    redis_url: str, redis_prefix: str, outcome: str
) -> None:
    """Two processes, 20 identical calls each at the same moment: one execution in all; a
    failure reaches every caller of that flight and is not cached."""
    import redis

    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        start = time.time() + 3.0
        outs = pool.starmap(_process, [(redis_url, redis_prefix, start, outcome, 20)] * 2)
    counter = redis.Redis.from_url(redis_url)
    assert int(counter.get(redis_prefix + "executions") or 0) == 1
    answers = {a for out in outs for a in out}
    assert len(answers) == 1 and sum(map(len, outs)) == 40
    (answer,) = answers
    if outcome == "ok":
        assert answer == "None|value x"
    else:
        assert not answer.startswith("None|")
        again = _process(redis_url, redis_prefix, 0.0, outcome, 1)
        assert again == [answer]
        assert int(counter.get(redis_prefix + "executions") or 0) == 2  # not cached
    counter.close()


def test_keys_of_rich_arguments_are_stable() -> None:
    import datetime

    from pydantic import BaseModel

    class Where(BaseModel):
        city: str
        tags: frozenset[str] = frozenset()

    def key(args: dict[str, Any]) -> str:
        return cache_key(search, args, "t")

    when = datetime.date(2026, 1, 31)
    a = key({"q": Where(city="Oslo", tags=frozenset({"b", "a"})), "when": when, "s": {3, 1, 2}})
    b = key({"s": {2, 3, 1}, "when": when, "q": Where(city="Oslo", tags=frozenset({"a", "b"}))})
    assert a == b
    assert a != key({"q": Where(city="Bergen"), "when": when, "s": {1, 2, 3}})


async def test_arguments_without_a_key_run_uncached() -> None:
    c = CacheMiddleware(ttl={"search": 60})

    def boom(*_: Any, **__: Any) -> str:
        raise TypeError("no key")

    import callgate.gate.middleware.cache as cache_mod

    g = make_gate(c)
    original = cache_mod.cache_key
    cache_mod.cache_key = boom  # type: ignore[assignment]
    try:
        await run(g, "search", {"q": "x"})
        await run(g, "search", {"q": "x"})
    finally:
        cache_mod.cache_key = original
    assert len(runs) == 2 and (c.hits, c.misses) == (0, 0)
