"""What the audit log says about usage: the numbers behind `callgate stats`.

One pass over the records (streamed from the store, so memory grows with the number of tools,
users and runs, not of records): calls by tool, user and tenant; error rates; the error
messages the model received most often; latency percentiles of tools and of models; cost per
query and the most expensive queries; and people's feedback on runs, shown beside the tools
those runs used. Filters: a time window, a tenant, a tool.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from callgate.audit.record import AuditEntry

__all__ = ["Filters", "Stats", "ToolStats", "compute_stats"]

#: latency samples kept per tool or model (a uniform sample beyond this)
MAX_SAMPLES = 20_000
TOP = 10


@dataclass(frozen=True, slots=True)
class Filters:
    """Which records count: `since`/`until` are Unix times; `tool` keeps that tool's calls
    and the runs that called it."""

    since: float | None = None
    until: float | None = None
    tenant: str | None = None
    tool: str | None = None

    def keeps(self, e: AuditEntry) -> bool:
        if self.since is not None and e.ts < self.since:
            return False
        if self.until is not None and e.ts >= self.until:
            return False
        return self.tenant is None or e.tenant == self.tenant


class _Sample:
    """Latencies for percentiles: every value up to MAX_SAMPLES, then a uniform sample."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.seen = 0
        self._rng = random.Random(0)

    def add(self, v: float) -> None:
        self.seen += 1
        if len(self.values) < MAX_SAMPLES:
            self.values.append(v)
        else:
            j = self._rng.randrange(self.seen)
            if j < MAX_SAMPLES:
                self.values[j] = v

    def pct(self, q: float) -> float | None:
        if not self.values:
            return None
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(slots=True)
class ToolStats:
    """One tool's calls: outcomes, latency (ms) and the feedback of runs that used it."""

    calls: int = 0
    errors: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p95_ms: float | None = None
    rated_runs: int = 0
    mean_rating: float | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclass(slots=True)
class Stats:
    """Everything `callgate stats` shows (JSON-able through `to_dict`)."""

    calls: int = 0
    errors: int = 0
    tools: dict[str, ToolStats] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    tenants: dict[str, int] = field(default_factory=dict)
    top_errors: list[tuple[str, int]] = field(default_factory=list)
    tool_p50_ms: float | None = None
    tool_p95_ms: float | None = None
    models: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    runs: int = 0
    cost_usd: float = 0.0
    cost_per_run_usd: float | None = None
    expensive: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name, t in self.tools.items():
            out["tools"][name]["error_rate"] = t.error_rate
        out["top_errors"] = [{"message": m, "count": n} for m, n in self.top_errors]
        return out


@dataclass(slots=True)
class _Run:
    request: str = ""
    cost: float = 0.0
    costed_by_ledger: bool = False
    tools: set[str] = field(default_factory=set)
    ts: float = 0.0
    user: str | None = None


class _Pass:
    """The state of one pass over the records."""

    def __init__(self, filters: Filters) -> None:
        self.f = filters
        self.stats = Stats()
        self.samples: defaultdict[str, _Sample] = defaultdict(_Sample)
        self.all_tools = _Sample()
        self.model_samples: defaultdict[str, _Sample] = defaultdict(_Sample)
        self.model_tokens: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.runs: dict[str, _Run] = {}
        self.ratings: list[tuple[str, int, str, float]] = []

    def run(self, e: AuditEntry) -> _Run:
        key = e.run_id or f"seq:{e.seq}"
        r = self.runs.get(key)
        if r is None:
            r = self.runs[key] = _Run(ts=e.ts, user=e.user_id)
        if not r.request and isinstance(e.data.get("request"), str):
            r.request = e.data["request"]
        return r

    def add(self, e: AuditEntry) -> None:
        if e.kind == "feedback":  # kept whatever the window: it rates a run in it
            if self.f.tenant is None or e.tenant in (None, self.f.tenant):
                rating = e.data.get("rating")
                if isinstance(rating, int) and e.run_id:
                    comment = str(e.data.get("comment") or "")
                    self.ratings.append((e.run_id, rating, comment, e.ts))
            return
        if not self.f.keeps(e):
            return
        if e.kind == "call":
            self.call(e)
        elif e.kind == "turn":
            self.turn(e)
        elif e.kind == "run":
            ledger = e.data.get("ledger")
            if isinstance(ledger, dict):
                r = self.run(e)
                r.cost = float(ledger.get("cost_usd") or 0.0)
                r.costed_by_ledger = True

    def call(self, e: AuditEntry) -> None:
        name = e.tool or "-"
        if self.f.tool is not None and name != self.f.tool:
            self.run(e)  # the run exists; whether it counts depends on its calls
            return
        s = self.stats
        t = s.tools.setdefault(name, ToolStats())
        kind = e.data.get("error_kind")
        outcome = str(kind or "ok")
        t.calls += 1
        t.outcomes[outcome] = t.outcomes.get(outcome, 0) + 1
        s.calls += 1
        if kind:
            t.errors += 1
            s.errors += 1
            self.errors[_first_line(str(e.data.get("result_summary") or ""))] += 1
        ms = 1000 * float(e.data.get("duration_s") or 0.0)
        self.samples[name].add(ms)
        self.all_tools.add(ms)
        s.users[e.user_id or "-"] = s.users.get(e.user_id or "-", 0) + 1
        s.tenants[e.tenant or "-"] = s.tenants.get(e.tenant or "-", 0) + 1
        self.run(e).tools.add(name)

    def turn(self, e: AuditEntry) -> None:
        model = str(e.data.get("model") or "-")
        self.model_samples[model].add(1000 * float(e.data.get("duration_s") or 0.0))
        self.model_tokens[model + "\0in"] += int(e.data.get("input_tokens") or 0)
        self.model_tokens[model + "\0out"] += int(e.data.get("output_tokens") or 0)
        r = self.run(e)
        if not r.costed_by_ledger:
            r.cost += float(e.data.get("cost_usd") or 0.0)

    def finish(self) -> Stats:
        s = self.stats
        for name, t in s.tools.items():
            t.p50_ms, t.p95_ms = self.samples[name].pct(0.5), self.samples[name].pct(0.95)
        s.tool_p50_ms, s.tool_p95_ms = self.all_tools.pct(0.5), self.all_tools.pct(0.95)
        for model, sample in self.model_samples.items():
            s.models[model] = {
                "turns": sample.seen,
                "p50_ms": sample.pct(0.5),
                "p95_ms": sample.pct(0.95),
                "input_tokens": self.model_tokens[model + "\0in"],
                "output_tokens": self.model_tokens[model + "\0out"],
            }
        s.top_errors = self.errors.most_common(TOP)
        runs = self._counted_runs()
        s.runs = len(runs)
        s.cost_usd = sum(r.cost for r in runs.values())
        s.cost_per_run_usd = s.cost_usd / s.runs if s.runs else None
        top = heapq.nlargest(TOP, runs.items(), key=lambda kv: kv[1].cost)
        s.expensive = [_run_row(rid, r) for rid, r in top if r.cost > 0]
        self._feedback(runs)
        return s

    def _counted_runs(self) -> dict[str, _Run]:
        """The runs in the window (with the tool filter: those that called the tool)."""
        tool = self.f.tool
        if tool is None:
            return dict(self.runs)
        return {k: r for k, r in self.runs.items() if tool in r.tools}

    def _feedback(self, runs: dict[str, _Run]) -> None:
        s = self.stats
        by_tool: defaultdict[str, list[int]] = defaultdict(list)
        for run_id, rating, comment, _ts in sorted(self.ratings, key=lambda x: -x[3]):
            r = runs.get(run_id)
            if r is None:
                continue  # a run outside the window or the filters
            for name in r.tools:
                by_tool[name].append(rating)
            if len(s.feedback) < TOP * 2:
                row = {**_run_row(run_id, r), "rating": rating, "comment": comment}
                s.feedback.append(row)
        for name, ratings in by_tool.items():
            t = s.tools.get(name)
            if t is not None:
                t.rated_runs = len(ratings)
                t.mean_rating = sum(ratings) / len(ratings)


def _first_line(text: str, limit: int = 120) -> str:
    line = " ".join(text.strip().splitlines()[0].split()) if text.strip() else "(empty)"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _run_row(run_id: str, r: _Run) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "request": _first_line(r.request, 80) if r.request else "",
        "user": r.user,
        "cost_usd": r.cost,
        "tools": sorted(r.tools),
        "ts": r.ts,
    }


def compute_stats(entries: Iterable[AuditEntry], filters: Filters | None = None) -> Stats:
    """The statistics of `entries` (any order; usually `AuditStore.iter_all()`)."""
    p = _Pass(filters or Filters())
    for e in entries:
        p.add(e)
    return p.finish()
