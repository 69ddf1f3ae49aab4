"""Rate limits shared by many processes, in Redis.

One Lua script decides *and* records a call against every applicable limit; Redis runs scripts
one at a time, so the decision is exact however many processes hammer it (no read-then-write
race). Time comes from the Redis server (`TIME`), so clocks of the application machines do not
matter.

Data per limit key: a sorted set of allowed calls scored by time in microseconds (the sliding
window log), and one of running calls scored by lease expiry (concurrency). Keys expire on their
own once idle. All keys of one decision are touched by one script, so on Redis Cluster they must
hash to one slot: give a `prefix` with a hash tag such as "{callgate}:rl:".
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from callgate.gate.middleware.ratelimit import Check, Verdict

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local token = ARGV[1]
local n = tonumber(ARGV[2])
for i = 1, n do
  local b = 2 + (i - 1) * 4
  local calls = tonumber(ARGV[b + 1])
  local per = tonumber(ARGV[b + 2])
  local conc = tonumber(ARGV[b + 3])
  local wkey = KEYS[2 * i - 1]
  local ckey = KEYS[2 * i]
  if calls > 0 then
    redis.call('ZREMRANGEBYSCORE', wkey, '-inf', now - per)
    if redis.call('ZCARD', wkey) >= calls then
      local oldest = redis.call('ZRANGE', wkey, 0, 0, 'WITHSCORES')
      return {0, i, tonumber(oldest[2]) + per - now}
    end
  end
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', ckey, '-inf', now)
    if redis.call('ZCARD', ckey) >= conc then
      return {0, i, -1}
    end
  end
end
for i = 1, n do
  local b = 2 + (i - 1) * 4
  local calls = tonumber(ARGV[b + 1])
  local per = tonumber(ARGV[b + 2])
  local conc = tonumber(ARGV[b + 3])
  local lease = tonumber(ARGV[b + 4])
  if calls > 0 then
    redis.call('ZADD', KEYS[2 * i - 1], now, token)
    redis.call('PEXPIRE', KEYS[2 * i - 1], math.ceil(per / 1000) + 1000)
  end
  if conc > 0 then
    redis.call('ZADD', KEYS[2 * i], now + lease, token)
    redis.call('PEXPIRE', KEYS[2 * i], math.ceil(lease / 1000) + 1000)
  end
end
return {1, 0, 0}
"""

_RELEASE = """
for i = 1, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
return 1
"""


class RedisRateLimitBackend:
    """`RateLimitBackend` on Redis (the `redis` package, asyncio client).

    Give a URL (`redis://127.0.0.1:6379/0`) or a ready `redis.asyncio.Redis`. A client made from
    a URL is re-created when used from another event loop (asyncio clients are bound to one).
    """

    def __init__(self, url_or_client: Any) -> None:
        try:
            import redis.asyncio  # noqa: F401
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError(
                "the Redis rate limit backend needs: pip install 'callgate[redis]'"
            ) from e
        self._url = url_or_client if isinstance(url_or_client, str) else None
        self._client: Any = None if self._url else url_or_client
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acquire: Any = None
        self._release: Any = None

    def _ready(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._url is not None and (self._client is None or self._loop is not loop):
            import redis.asyncio

            self._client = redis.asyncio.Redis.from_url(self._url)
            self._loop = loop
            self._acquire = self._release = None
        if self._acquire is None:
            self._acquire = self._client.register_script(_ACQUIRE)
            self._release = self._client.register_script(_RELEASE)
        return self._client

    async def acquire(self, checks: Sequence[Check], token: str) -> Verdict:
        self._ready()
        keys: list[str] = []
        argv: list[Any] = [token, len(checks)]
        for c in checks:
            keys += [c.key + ":w", c.key + ":c"]
            argv += [
                c.calls or 0,
                int(c.per * 1_000_000),
                c.concurrency or 0,
                int(c.lease_s * 1_000_000),
            ]
        allowed, failed, retry = await self._acquire(keys=keys, args=argv)
        if int(allowed) == 1:
            return Verdict(True)
        retry_s = None if int(retry) < 0 else max(0.0, int(retry) / 1_000_000)
        return Verdict(False, int(failed) - 1, retry_s)

    async def release(self, checks: Sequence[Check], token: str) -> None:
        keys = [c.key + ":c" for c in checks if c.concurrency is not None]
        if not keys:
            return
        self._ready()
        await self._release(keys=keys, args=[token])

    async def aclose(self) -> None:
        if self._client is not None and self._url is not None:
            await self._client.aclose()
            self._client = None
