"""`callgate stats` (also `callgate audit stats`) and `callgate feedback`: usage, errors,
latency, cost and people's ratings from the audit log, as terminal tables with bars or JSON.

Listed in `callgate.cli`; the library never imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from callgate._tables import clip, print_table
from callgate.audit.log import AuditLog
from callgate.audit.stats import Filters, Stats, compute_stats

ENV_DB = "CALLGATE_AUDIT_DB"
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_BAR = 24


def add_cli(subparsers: Any) -> None:
    """`callgate stats` and `callgate feedback`."""
    st = subparsers.add_parser("stats", help="calls, errors, latency, cost and feedback")
    add_stats_arguments(st)
    fb = subparsers.add_parser("feedback", help="record a rating (1-5) and comment on a run")
    fb.add_argument("run_id")
    fb.add_argument("--rating", required=True, help="1 (worst) to 5 (best), or up / down")
    fb.add_argument("--comment", default="")
    fb.add_argument("--user", help="who gave the feedback")
    fb.add_argument("--tenant")
    fb.add_argument("--db", default=os.environ.get(ENV_DB), help=f"the audit log (${ENV_DB})")
    fb.set_defaults(func=cmd_feedback)


def add_stats_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `stats` (shared by `callgate stats` and `callgate audit stats`)."""
    if not any(a.dest == "db" for a in p._actions):
        p.add_argument("--db", default=os.environ.get(ENV_DB), help=f"the audit log (${ENV_DB})")
    p.add_argument("--since", help="only records since: 30m, 2h, 7d, or a date (2026-01-31)")
    p.add_argument("--until", help="only records before (same forms as --since)")
    p.add_argument("--tenant", help="only this tenant's records")
    p.add_argument("--tool", help="only this tool's calls (and the runs that used it)")
    if not any(a.dest == "json" for a in p._actions):
        p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=cmd_stats)


def parse_when(text: str, now: float | None = None) -> float:
    """A point in time from "30m" / "2h" / "7d" (that long ago) or an ISO date or time."""
    m = _SPAN.match(text.strip())
    if m:
        return (now if now is not None else time.time()) - float(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use 30m, 2h, 7d or 2026-01-31)") from None


def cmd_stats(args: argparse.Namespace) -> int:
    try:
        filters = Filters(
            since=parse_when(args.since) if args.since else None,
            until=parse_when(args.until) if args.until else None,
            tenant=args.tenant,
            tool=args.tool,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    log = _open(args.db)
    if log is None:
        return 2
    with contextlib.closing(log):
        stats = compute_stats(log.store.iter_all(), filters)
    if args.json:
        print(json.dumps(stats.to_dict(), sort_keys=True, default=str))
    else:
        render(stats, filters, sys.stdout)
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    rating_text = str(args.rating).strip().lower()
    rating = {"up": 5, "down": 1}.get(rating_text)
    if rating is None:
        if not rating_text.isdigit():
            print("error: --rating is 1 to 5, up or down", file=sys.stderr)
            return 2
        rating = int(rating_text)
    log = _open(args.db)
    if log is None:
        return 2
    with contextlib.closing(log):
        try:
            entry = log.record_feedback(
                args.run_id, rating, args.comment, user_id=args.user, tenant=args.tenant
            )
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if entry is None:
        print("error: the feedback could not be written", file=sys.stderr)
        return 1
    print(f"recorded feedback {rating}/5 on run {args.run_id} (record {entry.seq})")
    return 0


def _open(db: str | None) -> AuditLog | None:
    if not db:
        print(f"error: give --db PATH_OR_DSN (or set ${ENV_DB})", file=sys.stderr)
        return None
    try:
        return AuditLog.open(db, must_exist=True)
    except Exception as e:  # noqa: BLE001 - any failure to open is a clear message
        print(f"error: cannot open audit log {db!r}: {e}", file=sys.stderr)
        return None


# rendering -------------------------------------------------------------------------------------


def bar(value: float, top: float, width: int = _BAR) -> str:
    """A horizontal bar of `value` against `top` (eighths of a block for the last cell)."""
    if top <= 0 or value <= 0:
        return ""
    eighths = max(1, round(8 * width * value / top))
    full, rest = divmod(eighths, 8)
    return "█" * full + (" ▏▎▍▌▋▊▉"[rest] if rest else "")


def _ms(v: float | int | None) -> str:
    return "-" if v is None else f"{float(v):.1f}"


def render(s: Stats, f: Filters, out: TextIO) -> None:
    """The stats as terminal sections: totals, tools, who, errors, models, cost, feedback."""
    window = _window(f)
    rate = f"{100 * s.errors / s.calls:.1f}%" if s.calls else "-"
    per_run = f"${s.cost_per_run_usd:.4f}" if s.cost_per_run_usd is not None else "-"
    print(f"callgate stats{window}", file=out)
    print(
        f"{s.calls} calls, {s.errors} errors ({rate}); {s.runs} runs; cost ${s.cost_usd:.4f} "
        f"({per_run} per run); tool latency p50 {_ms(s.tool_p50_ms)} ms, "
        f"p95 {_ms(s.tool_p95_ms)} ms",
        file=out,
    )
    _tools(s, out)
    for title, counts in (("users", s.users), ("tenants", s.tenants)):
        _counts(title, counts, out)
    if s.top_errors:
        print("\nerror messages the model read most often", file=out)
        rows = [(str(n), clip(msg, 90)) for msg, n in s.top_errors]
        print_table(("TIMES", "MESSAGE"), rows, out, empty="")
    _models(s, out)
    _runs(s, out)


def _window(f: Filters) -> str:
    parts = []
    if f.since is not None:
        parts.append("since " + time.strftime("%Y-%m-%d %H:%M", time.localtime(f.since)))
    if f.until is not None:
        parts.append("until " + time.strftime("%Y-%m-%d %H:%M", time.localtime(f.until)))
    if f.tenant:
        parts.append(f"tenant {f.tenant}")
    if f.tool:
        parts.append(f"tool {f.tool}")
    return f" ({', '.join(parts)})" if parts else ""


def _tools(s: Stats, out: TextIO) -> None:
    print("\ntools", file=out)
    top = max((t.calls for t in s.tools.values()), default=0)
    rows = [
        (
            name,
            str(t.calls),
            f"{100 * t.error_rate:.1f}",
            _ms(t.p50_ms),
            _ms(t.p95_ms),
            f"{t.mean_rating:.1f} ({t.rated_runs})" if t.mean_rating is not None else "-",
            bar(t.calls, top),
        )
        for name, t in sorted(s.tools.items(), key=lambda kv: -kv[1].calls)
    ]
    header = ("TOOL", "CALLS", "ERR %", "P50 MS", "P95 MS", "RATING", "")
    print_table(header, rows, out, empty="no calls recorded")


def _counts(title: str, counts: dict[str, int], out: TextIO, limit: int = 10) -> None:
    if not counts or list(counts) == ["-"]:
        return
    print(f"\ncalls by {title[:-1]}", file=out)
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:limit]
    top = ranked[0][1]
    rows = [(name, str(n), bar(n, top)) for name, n in ranked]
    print_table((title[:-1].upper(), "CALLS", ""), rows, out, empty="")


def _models(s: Stats, out: TextIO) -> None:
    if not s.models:
        return
    print("\nmodels", file=out)
    rows = [
        (
            name,
            str(m["turns"]),
            _ms(m["p50_ms"]),
            _ms(m["p95_ms"]),
            str(m["input_tokens"]),
            str(m["output_tokens"]),
        )
        for name, m in sorted(s.models.items())
    ]
    header = ("MODEL", "TURNS", "P50 MS", "P95 MS", "TOKENS IN", "TOKENS OUT")
    print_table(header, rows, out, empty="")


def _runs(s: Stats, out: TextIO) -> None:
    if s.expensive:
        print("\nmost expensive queries", file=out)
        rows = [_run_cells(r) for r in s.expensive]
        print_table(("COST", "RUN", "TOOLS", "REQUEST"), rows, out, empty="")
    if s.feedback:
        print("\nfeedback (newest first) beside the tools each run used", file=out)
        rows = [
            ("★" * int(r["rating"]) + "☆" * (5 - int(r["rating"])), *_run_cells(r)[1:3],
             clip(str(r["comment"]) or "-", 50))
            for r in s.feedback
        ]  # fmt: skip
        print_table(("RATING", "RUN", "TOOLS", "COMMENT"), rows, out, empty="")


def _run_cells(r: dict[str, Any]) -> Sequence[str]:
    return (
        f"${float(r['cost_usd']):.4f}",
        str(r["run_id"]),
        clip(", ".join(r["tools"]) or "-", 40),
        clip(str(r["request"]) or "-", 50),
    )
