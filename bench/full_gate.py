"""The governed path: what policy, rate limits, an approver, a durable audit log, telemetry and
the cache add to a bare gate call.

    python bench/full_gate.py            # the table
    python bench/full_gate.py --profile  # cProfile of the full gate (top functions)

CPU time per call is `time.process_time` over sequential calls (so the audit writer's thread is
counted too); calls/s is wall time for 2,000 calls issued 100 at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callgate import Gate, RunContext, tool
from callgate.audit.log import AuditLog
from callgate.gate.middleware.cache import CacheMiddleware
from callgate.gate.middleware.ratelimit import Limit, RateLimiter
from callgate.gate.protocols import Invocation, PolicyDecision
from callgate.policy.engine import Policy
from callgate.testing import call

POLICY = {
    "version": 1,
    "rules": [
        {"name": "adds-need-a-yes", "tools": "add", "effect": "approve"},
    ],
}


@tool(read_only=True, inline=True)
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class AllowAll:
    """An approver that says yes to everything (the cheapest possible approver)."""

    async def check(self, inv: Invocation, decision: PolicyDecision) -> None:
        return None


def gate(kind: str, tmp: Path, **kw: Any) -> tuple[Gate, list[Any]]:
    """The gate for one configuration, and what to close after it."""
    closers: list[Any] = []
    if kind == "bare":
        return Gate([add], **kw), closers
    policy = Policy.from_dict(POLICY)
    mw: list[Any] = list(kw.pop("middleware", []))
    obs: list[Any] = list(kw.pop("observers", []))
    if kind == "policy":
        allow = Policy.from_dict({"version": 1, "rules": [{"name": "all", "effect": "allow"}]})
        return Gate([add], policy=allow, middleware=mw, observers=obs, **kw), closers
    mw.append(RateLimiter([Limit(calls=10**9, per=60, by="user")]))
    approver = AllowAll()
    if kind == "full":
        log = AuditLog.open(tmp / f"audit-{time.monotonic_ns()}.db")
        obs.append(log)
        closers.append(log)
    return Gate(
        [add], policy=policy, approver=approver, middleware=mw, observers=obs, **kw
    ), closers


async def cpu_per_call(g: Gate, n: int = 3000, reps: int = 5) -> float:
    ctx = RunContext(user_id="u")
    c = call("add", {"a": 1, "b": 2})
    for _ in range(200):
        await g.execute(c, ctx)
    samples = []
    for _ in range(reps):
        t0 = time.process_time()
        for _ in range(n):
            await g.execute(c, ctx)
        flush = getattr(g.observers[0], "flush", None) if g.observers else None
        if flush is not None:
            flush()
        samples.append((time.process_time() - t0) / n)
    return statistics.median(samples)


async def calls_per_s(g: Gate, n: int = 2000, width: int = 100) -> float:
    ctx = RunContext(user_id="u")
    c = call("add", {"a": 1, "b": 2})
    t0 = time.perf_counter()
    for _ in range(n // width):
        await asyncio.gather(*(g.execute(c, ctx) for _ in range(width)))
    for o in g.observers:
        flush = getattr(o, "flush", None)
        if flush is not None:
            flush()
    return n / (time.perf_counter() - t0)


async def cache_collapse(n: int = 1000) -> int:
    runs: list[int] = []

    @tool(read_only=True)
    async def lookup(q: str) -> str:
        """Slow lookup."""
        runs.append(1)
        await asyncio.sleep(0.05)
        return q

    g = Gate([lookup], middleware=[CacheMiddleware(ttl={"lookup": 60})])
    ctx = RunContext()
    await asyncio.gather(
        *(g.execute(call("lookup", {"q": "x"}, id=f"c{i}"), ctx) for i in range(n))
    )
    return len(runs)


def telemetry_gates() -> dict[str, Callable[[], Gate]]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from callgate.telemetry import Telemetry

    def with_tel(tel: Telemetry) -> Gate:
        return Gate([add], middleware=[tel.middleware()], observers=[tel])

    return {
        "bare gate, telemetry not installed": lambda: Gate([add]),
        "bare gate + Telemetry, no SDK configured": lambda: with_tel(Telemetry()),
        "bare gate + Telemetry, SDK without exporter": lambda: with_tel(
            Telemetry(tracer_provider=TracerProvider(), meter_provider=MeterProvider())
        ),
    }


def line(name: str, value: float, unit: str, note: str = "") -> None:
    print(f"{name:<52} {value:>10.2f} {unit:<7} {note}")


async def main(profile: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if profile:
            g, closers = gate("full", tmp)
            prof = cProfile.Profile()
            prof.enable()
            await cpu_per_call(g, n=2000, reps=1)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            for c in closers:
                c.close()
            return
        print(f"full gate (python {sys.version.split()[0]})")
        cpu: dict[str, float] = {}
        for kind, label in [
            ("bare", "bare gate"),
            ("policy", "+ policy"),
            ("limits", "+ policy, rate limit, approver that allows"),
            ("full", "+ durable SQLite audit (full gate)"),
        ]:
            g, closers = gate(kind, tmp)
            cpu[kind] = await cpu_per_call(g)
            note = "" if kind == "bare" else f"= {cpu[kind] / cpu['bare']:.1f}x bare"
            line(f"CPU per call, {label}", cpu[kind] * 1e6, "us", note)
            if kind == "full":
                g2, closers2 = gate(kind, tmp)
                line(
                    "full gate calls/s (100 concurrent)",
                    await calls_per_s(g2),
                    "calls/s",
                    "(target >= 5,000; within 5x bare CPU)",
                )
                closers += closers2
            for c in closers:
                c.close()
        base = None
        for label, make in telemetry_gates().items():
            t = await cpu_per_call(make())
            base = base or t
            line(f"CPU per call, {label}", t * 1e6, "us", f"= {100 * (t / base - 1):+.1f}%")
        line(
            "1,000 identical concurrent cached calls", await cache_collapse(), "runs", "(target 1)"
        )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", action="store_true")
    asyncio.run(main(ap.parse_args().profile))
