"""The cache's Redis backend: entries and single-flight shared by many processes.

Keys under `prefix` (give a hash tag such as "{callgate}:cache:" on Redis Cluster):

- ``v:<key>``: the entry (JSON) with the generation of its tool when it was stored, expiring
  after the tool's TTL; read together with ``g:<tool>`` in one round trip, so an invalidation
  (``INCR g:<tool>``) makes every older entry a miss at once;
- ``l:<key>``: the lock of the process producing a missed key (``SET NX PX``, a random token);
  other processes wait for its outcome instead of running the tool again. A lock whose holder
  died expires after `lock_s` and a waiter takes over;
- ``f:<key>:<token>``: the outcome of one flight, kept briefly for its waiters even when it is
  not cached (an error), so every caller of one flight gets the same answer.

Structured results (`ToolResult.data`) travel as JSON; data that is not JSON is dropped (the
content, which the model reads, is always kept).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterable
from typing import Any

from callgate.gate.middleware.cache import CachedResult, Producer

__all__ = ["RedisCache"]

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisCache:
    """`CacheBackend` on Redis (asyncio client; a URL or a ready `redis.asyncio.Redis`).

    `lock_s`: how long a producer may hold a key before waiters take over (set it above the
    slowest cached tool's timeout); `poll_s`: how often waiters look for the outcome;
    `flight_s`: how long an outcome is kept for the waiters of its flight."""

    def __init__(
        self,
        url_or_client: Any,
        *,
        prefix: str = "callgate:cache:",
        lock_s: float = 30.0,
        poll_s: float = 0.01,
        flight_s: float = 10.0,
    ) -> None:
        try:
            import redis.asyncio  # noqa: F401
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError("the Redis cache needs: pip install 'callgate[redis]'") from e
        self._url = url_or_client if isinstance(url_or_client, str) else None
        self._client: Any = None if self._url else url_or_client
        self._loop: asyncio.AbstractEventLoop | None = None
        self.prefix = prefix
        self.lock_ms = max(1, int(lock_s * 1000))
        self.poll_s = poll_s
        self.flight_ms = max(1, int(flight_s * 1000))

    def _redis(self) -> Any:
        """The client, re-created when used from another event loop (clients are bound to
        the loop that made them)."""
        loop = asyncio.get_running_loop()
        if self._url is not None and (self._client is None or self._loop is not loop):
            import redis.asyncio

            self._client = redis.asyncio.Redis.from_url(self._url)
            self._loop = loop
        return self._client

    async def get(self, key: str, tool: str) -> CachedResult | None:
        raw, gen = await self._redis().mget(self.prefix + "v:" + key, self.prefix + "g:" + tool)
        return _fresh(raw, gen)

    async def fill(self, key: str, tool: str, ttl_s: float, produce: Producer) -> CachedResult:
        r = self._redis()
        lock = self.prefix + "l:" + key
        while True:
            token = secrets.token_hex(8)
            if await r.set(lock, token, nx=True, px=self.lock_ms):
                # the flight before ours may have stored the entry since our caller missed it
                found = await self.get(key, tool)
                if found is not None:
                    await r.eval(_RELEASE, 1, lock, token)
                    return found
                return await self._produce(key, tool, ttl_s, produce, token)
            holder = await r.get(lock)
            if holder is None:  # finished just now: its entry may be there
                found = await self.get(key, tool)
                if found is not None:
                    return found
                continue
            shared = await self._wait(key, tool, holder)
            if shared is not None:
                return shared

    async def _produce(
        self, key: str, tool: str, ttl_s: float, produce: Producer, token: str
    ) -> CachedResult:
        r = self._redis()
        p = self.prefix
        gen = await r.get(p + "g:" + tool)  # read first: an invalidation meanwhile wins
        try:
            value = await produce()
        except BaseException:
            await asyncio.shield(r.eval(_RELEASE, 1, p + "l:" + key, token))
            raise
        body = _encode(value, int(gen or 0))
        pipe = r.pipeline(transaction=True)
        if value.store:
            pipe.set(p + "v:" + key, body, px=max(1, int(ttl_s * 1000)))
        pipe.set(f"{p}f:{key}:{token}", body, px=self.flight_ms)
        pipe.eval(_RELEASE, 1, p + "l:" + key, token)
        await pipe.execute()
        return value

    async def _wait(self, key: str, tool: str, holder: bytes | str) -> CachedResult | None:
        """The outcome of the flight `holder` leads, or None when it ended without one (its
        process died or it was refused): the caller then tries to lead."""
        r = self._redis()
        p = self.prefix
        token = holder.decode() if isinstance(holder, bytes) else holder
        keys = (f"{p}f:{key}:{token}", p + "v:" + key, p + "g:" + tool, p + "l:" + key)
        while True:
            await asyncio.sleep(self.poll_s)
            flight, raw, gen, lock = await r.mget(*keys)
            if flight is not None:
                return _decode(flight)
            found = _fresh(raw, gen)
            if found is not None:
                return found
            if lock is None or _text(lock) != token:
                return None

    async def invalidate(self, tools: Iterable[str]) -> None:
        names = list(tools)
        if not names:
            return
        pipe = self._redis().pipeline(transaction=False)
        for name in names:
            pipe.incr(self.prefix + "g:" + name)
        await pipe.execute()

    async def aclose(self) -> None:
        if self._client is not None and self._url is not None:
            await self._client.aclose()
            self._client = None


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def _encode(value: CachedResult, gen: int) -> str:
    try:
        data = json.loads(json.dumps(value.data)) if value.data is not None else None
    except (TypeError, ValueError):
        data = None
    return json.dumps(
        {
            "g": gen,
            "c": value.content,
            "k": value.error_kind,
            "d": data,
            "e": value.error_class,
            "s": value.store,
        },
        separators=(",", ":"),
    )


def _decode(raw: bytes | str) -> CachedResult:
    d = json.loads(raw)
    return CachedResult(d["c"], d["k"], d["d"], d["e"], bool(d["s"]))


def _fresh(raw: bytes | str | None, gen: bytes | str | None) -> CachedResult | None:
    """The stored entry if it is of the tool's current generation."""
    if raw is None:
        return None
    d = json.loads(raw)
    if d["g"] != int(gen or 0):
        return None
    return CachedResult(d["c"], d["k"], d["d"], d["e"], True)
