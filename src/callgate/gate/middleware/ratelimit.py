"""Rate limits and concurrency caps per tool, per user and per tenant.

Algorithm: a **sliding-window log**. Every allowed call leaves a timestamp; a call is allowed when
fewer than `calls` timestamps fall inside the last `per` seconds. Unlike fixed windows it never lets
2N through across a window boundary, and unlike GCRA/token buckets "at most N in any window of
`per` seconds" holds exactly, which is what the message to the model promises. The cost is one
timestamp per allowed call (N per key at most), fine for the limits tool calls need.

Several limits can apply to one call (per user for this tool, per tenant for all tools, ...). They
are checked and recorded **atomically, all or nothing**: a call refused by one limit consumes no
quota of the others. Denied calls consume nothing.

A refused call raises `ToolDenied` with a message the model can act on, e.g. "rate limit: at
most 5 calls of send_email per minute for this user; try again in 12 s", and the wait in seconds
in `detail["retry_after"]` (also put in `inv.rate_limit`, so it reaches the audit log).

Backends: `MemoryRateLimitBackend` (default, one process) and
`callgate.gate.middleware.ratelimit_redis.RedisRateLimitBackend` (many processes, one Lua script per
decision, exact under contention).
"""

from __future__ import annotations

import fnmatch
import itertools
import math
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from callgate.errors import ToolDenied
from callgate.gate.protocols import Invocation, Next, RateLimitHit
from callgate.messages import ToolResult

Scope = Literal["user", "tenant", "global"]


class _Tokens:
    """Tokens naming one call's slots: a per-process prefix (renewed in a forked child) and a
    counter, since a fresh uuid4 per call costs a system call."""

    def __init__(self) -> None:
        self.prefix = uuid.uuid4().hex[:16]
        self.counter = itertools.count()
        os.register_at_fork(after_in_child=self.renew)

    def renew(self) -> None:
        self.prefix = uuid.uuid4().hex[:16]

    def next(self) -> str:
        return f"{self.prefix}-{next(self.counter)}"


_TOKENS = _Tokens()


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit.

    - `calls` per `per` seconds (sliding window), and/or `concurrency` calls running at once.
    - `tool`: a tool name or glob ("email.*"); None means every tool.
    - `by`: whose calls are counted together: each "user", each "tenant", or "global".
      Runs without a user id (or tenant) share one anonymous bucket.
    - `per_tool`: with `tool` None or a glob, count each tool separately instead of together.
    - `lease_s`: how long a concurrency slot is held at most if the holder dies (Redis); it
      should exceed the tool's timeout.
    """

    calls: int | None = None
    per: float = 60.0
    concurrency: int | None = None
    tool: str | None = None
    by: Scope = "user"
    per_tool: bool = False
    lease_s: float = 600.0
    name: str | None = None

    def __post_init__(self) -> None:
        if self.calls is None and self.concurrency is None:
            raise ValueError("a Limit needs `calls` (per window) or `concurrency`, or both")
        if self.calls is not None and self.calls < 1:
            raise ValueError("Limit.calls must be at least 1")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError("Limit.concurrency must be at least 1")
        if self.per <= 0:
            raise ValueError("Limit.per must be a positive number of seconds")
        if self.by not in ("user", "tenant", "global"):
            raise ValueError("Limit.by must be 'user', 'tenant' or 'global'")

    @classmethod
    def per_minute(cls, calls: int, **kw: object) -> Limit:
        return cls(calls=calls, per=60.0, **kw)  # type: ignore[arg-type]

    @classmethod
    def per_hour(cls, calls: int, **kw: object) -> Limit:
        return cls(calls=calls, per=3600.0, **kw)  # type: ignore[arg-type]

    @property
    def ident(self) -> str:
        """A stable name (the same in every process), used in keys and in the rule."""
        if self.name:
            return self.name
        tool = self.tool or "*"
        return (
            f"{self.by}:{tool}{':each' if self.per_tool else ''}:"
            f"{self.calls or 0}/{self.per:g}:c{self.concurrency or 0}"
        )

    def applies_to(self, tool: str) -> bool:
        return self.tool is None or self.tool == tool or fnmatch.fnmatchcase(tool, self.tool)


@dataclass(frozen=True, slots=True)
class Check:
    """One limit applied to one call: the concrete key and numbers a backend needs."""

    key: str
    calls: int | None
    per: float
    concurrency: int | None
    lease_s: float


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    failed: int = -1  # index of the check that refused
    retry_after: float | None = None  # seconds; None when unknown (concurrency)


class RateLimitBackend(Protocol):
    """Decides and records atomically. `acquire` either records the call against every check
    (returning allowed) or records nothing; `release` frees the concurrency slots of `token`."""

    async def acquire(self, checks: Sequence[Check], token: str) -> Verdict: ...

    async def release(self, checks: Sequence[Check], token: str) -> None: ...


# ----------------------------------------------------------------------------- in memory


@dataclass(slots=True)
class _Slot:
    stamps: deque[float] = field(default_factory=deque)
    running: set[str] = field(default_factory=set)


class MemoryRateLimitBackend:
    """Process-local backend. Thread-safe; `clock` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()

    async def acquire(self, checks: Sequence[Check], token: str) -> Verdict:
        with self._lock:
            now = self.clock()
            slots = [self._slots.setdefault(c.key, _Slot()) for c in checks]
            for i, (c, s) in enumerate(zip(checks, slots, strict=True)):
                if c.calls is not None:
                    while s.stamps and s.stamps[0] <= now - c.per:
                        s.stamps.popleft()
                    if len(s.stamps) >= c.calls:
                        return Verdict(False, i, s.stamps[0] + c.per - now)
                if c.concurrency is not None and len(s.running) >= c.concurrency:
                    return Verdict(False, i, None)
            for c, s in zip(checks, slots, strict=True):
                if c.calls is not None:
                    s.stamps.append(now)
                if c.concurrency is not None:
                    s.running.add(token)
            return Verdict(True)

    async def release(self, checks: Sequence[Check], token: str) -> None:
        with self._lock:
            for c in checks:
                s = self._slots.get(c.key)
                if s is not None:
                    s.running.discard(token)


# ----------------------------------------------------------------------------- middleware


class RateLimiter:
    """Middleware enforcing `limits` (see module docs). Put it after policy, before caches."""

    def __init__(
        self,
        limits: Sequence[Limit],
        backend: RateLimitBackend | None = None,
        *,
        prefix: str = "callgate:rl:",
    ) -> None:
        self.limits = tuple(limits)
        self.backend: RateLimitBackend = backend or MemoryRateLimitBackend()
        self.prefix = prefix
        # each limit with the start of its keys, built once rather than on every call
        self._keyed = tuple((lim, f"{prefix}{lim.ident}|") for lim in self.limits)

    def checks_for(self, inv: Invocation) -> list[tuple[Limit, Check]]:
        tool = inv.tool.name
        ctx = inv.ctx
        out = []
        for lim, head in self._keyed:
            if not lim.applies_to(tool):
                continue
            if lim.by == "user":
                who = f"u={ctx.user_id}" if ctx.user_id is not None else "u?"
            elif lim.by == "tenant":
                who = f"t={ctx.tenant}" if ctx.tenant is not None else "t?"
            else:
                who = "all"
            what = tool if lim.per_tool else ""
            key = f"{head}{who}|{what}"
            out.append((lim, Check(key, lim.calls, lim.per, lim.concurrency, lim.lease_s)))
        return out

    async def __call__(self, inv: Invocation, next: Next) -> ToolResult:
        pairs = self.checks_for(inv)
        if not pairs:
            return await next(inv)
        checks = [c for _, c in pairs]
        token = _TOKENS.next()
        verdict = await self.backend.acquire(checks, token)
        if not verdict.allowed:
            lim = pairs[verdict.failed][0]
            retry = verdict.retry_after
            inv.rate_limit = RateLimitHit(lim.ident, retry)
            raise ToolDenied(
                denial_message(lim, inv.tool.name, retry),
                rule=f"ratelimit:{lim.ident}",
                code="rate_limited",
                detail={"retry_after": retry, "limit": lim.ident},
            )
        if not any(c.concurrency is not None for c in checks):
            return await next(inv)
        try:
            return await next(inv)
        finally:
            await self.backend.release(checks, token)


_WINDOWS = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}


def _window(per: float) -> str:
    unit = _WINDOWS.get(float(per))
    if unit:
        return f"per {unit}"
    if per % 60 == 0 and per < 3600:
        return f"in any {per / 60:g} minutes"
    return f"in any {per:g} s"


def _who(lim: Limit) -> str:
    return {"user": "for this user", "tenant": "for this tenant", "global": "in total"}[lim.by]


def denial_message(lim: Limit, tool: str, retry_after: float | None) -> str:
    """What the model reads: which limit, and when it may try again."""
    if lim.per_tool or lim.tool == tool:
        of = f" of {tool}"
    elif lim.tool is not None:
        of = f" of tools matching {lim.tool}"
    else:
        of = ""
    if retry_after is not None and lim.calls is not None:
        secs = max(1, math.ceil(retry_after - 1e-6))
        return (
            f"rate limit: at most {lim.calls} call{'s' if lim.calls != 1 else ''}{of} "
            f"{_window(lim.per)} {_who(lim)}; try again in {secs} s"
        )
    n = lim.concurrency or 0
    return (
        f"rate limit: at most {n} call{'s' if n != 1 else ''}{of} at once {_who(lim)}; "
        "try again when one of them has finished"
    )
