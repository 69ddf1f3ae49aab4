"""A result cache for read-only and idempotent tools, with single-flight (a gate middleware).

Identical read-only calls repeat within seconds (a model re-reads what it just read; parallel
agents ask the same thing). `CacheMiddleware` answers them from a cache and collapses identical
calls *in flight at the same moment* into one execution:

- Only tools declared `read_only` or `idempotent` are cached, and only those given a TTL
  (`ttl={"get_weather": 60}` or `default_ttl`): caching is an explicit promise about a tool.
- The key is tenant + tool + version + the validated arguments with the schema's defaults
  filled in, as canonical JSON (key order irrelevant), hashed. The tenant is part of the key,
  so a hit never crosses tenants.
- Write tools declare what they make stale: `invalidates={"update_user": ["get_user"]}`. A
  successful write bumps the named tools' generation, and every older entry becomes a miss
  (in every tenant: over-invalidating is never wrong).
- Errors are not cached unless the tool is listed in `cache_errors`; transient failures,
  refusals and approvals never are. The callers that shared one execution (single-flight) all
  receive its outcome, error or not; when the leader is cancelled or refused by an inner
  middleware, a follower runs the call itself instead of inheriting that.
- `MemoryCache` is a bounded LRU for one process; `callgate.gate.middleware.cache_redis`
  shares entries and single-flight between processes.

Place it after authorisation-like middleware (rate limits, sanitisers) and before nothing that
must see every execution: a hit never reaches the tool.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from callgate.gate.protocols import Invocation, Next
from callgate.messages import ToolResult
from callgate.tools.definition import Tool

__all__ = [
    "CacheBackend",
    "CacheListener",
    "CacheMiddleware",
    "CachedResult",
    "MemoryCache",
    "cache_key",
]

#: error kinds a tool may opt into caching (never transient, denied or pending)
CACHEABLE_ERRORS = frozenset({"correctable", "terminal"})


@dataclass(frozen=True, slots=True)
class CachedResult:
    """What is kept of a result: enough to answer a later identical call with its own id.

    `data` is the tool's structured return value (kept as is in process; JSON round-tripped in
    Redis). `store` is False for an outcome shared with the callers of one flight only."""

    content: str
    error_kind: str | None = None
    data: Any = None
    error_class: str | None = None
    store: bool = True

    def answer(self, inv: Invocation) -> ToolResult:
        return ToolResult(
            inv.call.id,
            inv.call.name,
            self.content,
            self.error_kind,
            self.data,
            error_class=self.error_class,
        )


Producer = Callable[[], Awaitable[CachedResult]]


class CacheBackend(Protocol):
    """Where entries live. `fill` runs `produce` for a missed key and stores what it returns
    (when `store` is set) for `ttl_s` seconds; a shared backend also makes sure only one
    process produces a key at a time, others waiting for its result."""

    async def get(self, key: str, tool: str) -> CachedResult | None: ...

    async def fill(self, key: str, tool: str, ttl_s: float, produce: Producer) -> CachedResult:
        """The entry for `key` after running `produce` (or another process's result)."""
        ...

    async def invalidate(self, tools: Iterable[str]) -> None:
        """Make every entry of these tools stale (all tenants)."""
        ...


class CacheListener(Protocol):
    """Told about each lookup (telemetry counts hits and misses and marks the call's span)."""

    def on_cache(self, inv: Invocation, hit: bool) -> None: ...


def cache_key(tool: Tool, args: Mapping[str, Any], tenant: str | None) -> str:
    """The key of a call: tenant + tool + version + arguments with defaults, order-free.

    Validated arguments may hold models, dates or sets: they are made plain first (a model by
    its JSON dump, a set sorted), so equal arguments give equal keys in every process."""
    full = {**_defaults(tool), **args}
    material = json.dumps(
        [tenant, tool.name, tool.version, full],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_plain,
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    """A JSON-able stand-in for an argument value json cannot encode."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        # python mode: sets stay sets (sorted below); the JSON mode lists them in iteration
        # order, which for strings changes from process to process
        return dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    return f"{type(value).__qualname__}:{value!r}"


def _defaults(tool: Tool) -> dict[str, Any]:
    props = tool.spec.parameters.get("properties") or {}
    return {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}


class MemoryCache:
    """A bounded LRU in one process, with a generation per tool for invalidation."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._clock = clock
        #: key -> (expires at, generation of its tool when stored, result)
        self._entries: OrderedDict[str, tuple[float, int, CachedResult]] = OrderedDict()
        self._gen: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str, tool: str) -> CachedResult | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, gen, value = found
        if expires <= self._clock() or gen != self._gen.get(tool, 0):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def fill(self, key: str, tool: str, ttl_s: float, produce: Producer) -> CachedResult:
        gen = self._gen.get(tool, 0)  # an invalidation while producing makes the entry stale
        value = await produce()
        if value.store:
            self._entries[key] = (self._clock() + ttl_s, gen, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    async def invalidate(self, tools: Iterable[str]) -> None:
        for name in tools:
            self._gen[name] = self._gen.get(name, 0) + 1


class _Refused(Exception):
    """The leader's execution raised instead of returning a result: not shared."""


class CacheMiddleware:
    """The cache as gate middleware (see the module docstring).

    Parameters:
        ttl: seconds per tool name; tools not named use `default_ttl` (None: not cached).
        invalidates: write tool name -> names of the tools whose entries it makes stale.
        cache_errors: tools whose correctable/terminal errors may be cached too.
        backend: `MemoryCache()` by default.
        listeners: told about every lookup (e.g. a `callgate.telemetry.Telemetry`).
    """

    def __init__(
        self,
        *,
        ttl: Mapping[str, float] | None = None,
        default_ttl: float | None = None,
        invalidates: Mapping[str, Iterable[str]] | None = None,
        cache_errors: Iterable[str] = (),
        backend: CacheBackend | None = None,
        listeners: Iterable[CacheListener] = (),
    ) -> None:
        self.ttl = dict(ttl or {})
        self.default_ttl = default_ttl
        self.invalidates = {k: tuple(v) for k, v in (invalidates or {}).items()}
        self.cache_errors = frozenset(cache_errors)
        self.backend: CacheBackend = backend if backend is not None else MemoryCache()
        self.listeners = tuple(listeners)
        self._inflight: dict[str, asyncio.Future[CachedResult]] = {}
        self.hits = 0
        self.misses = 0

    def ttl_for(self, tool: Tool) -> float | None:
        """The TTL a tool is cached for, or None when it is not cacheable."""
        ann = tool.annotations
        if not (ann.read_only or ann.idempotent) or ann.destructive:
            return None
        ttl = self.ttl.get(tool.name, self.default_ttl)
        return ttl if ttl is not None and ttl > 0 else None

    async def __call__(self, inv: Invocation, next: Next) -> ToolResult:
        ttl = self.ttl_for(inv.tool)
        if ttl is None:
            res = await next(inv)
            stale = self.invalidates.get(inv.tool.name)
            if stale and res.error_kind is None:
                await self.backend.invalidate(stale)
            return res
        try:
            key = cache_key(inv.tool, inv.args, inv.ctx.tenant)
        except (TypeError, ValueError):  # arguments with no stable key: run, never cache
            return await next(inv)
        found = await self.backend.get(key, inv.tool.name)
        self._tell(inv, found is not None)
        if found is not None:
            return found.answer(inv)
        return await self._single_flight(inv, next, key, ttl)

    async def _single_flight(self, inv: Invocation, next: Next, key: str, ttl: float) -> ToolResult:
        """Join the flight for `key`, or lead it. A follower whose leader did not produce a
        result (cancelled, refused) tries again, possibly as the new leader."""
        while True:
            flight = self._inflight.get(key)
            if flight is None:
                return await self._lead(inv, next, key, ttl)
            try:
                value = await asyncio.shield(flight)
            except (_Refused, asyncio.CancelledError):
                if _cancelling():
                    raise
                continue
            return value.answer(inv)

    async def _lead(self, inv: Invocation, next: Next, key: str, ttl: float) -> ToolResult:
        flight: asyncio.Future[CachedResult] = asyncio.get_running_loop().create_future()
        self._inflight[key] = flight
        result: list[ToolResult] = []

        async def produce() -> CachedResult:
            res = await next(inv)
            result.append(res)
            return self._keep(inv.tool.name, res)

        try:
            value = await self.backend.fill(key, inv.tool.name, ttl, produce)
        except BaseException as e:
            if isinstance(e, asyncio.CancelledError):
                flight.cancel()
            else:
                flight.set_exception(_Refused())
                flight.exception()  # retrieved: the followers decide, nobody logs it
            raise
        finally:
            del self._inflight[key]
        flight.set_result(value)
        return result[0] if result else value.answer(inv)

    def _keep(self, tool: str, res: ToolResult) -> CachedResult:
        kind = res.error_kind
        store = kind is None or (kind in CACHEABLE_ERRORS and tool in self.cache_errors)
        return CachedResult(res.content, kind, res.data, res.error_class, store)

    def _tell(self, inv: Invocation, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        for listener in self.listeners:
            listener.on_cache(inv, hit)


def _cancelling() -> bool:
    """Whether the current task itself is being cancelled (not just the flight it joined)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
