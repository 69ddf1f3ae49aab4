"""Recorded tool results: turn a run against the real tools into stubs, so the same golden
file can later run without reaching live systems (``callgate eval golden --stub``).

The stub of a call is what the gate answered the model (the rendered result), keyed by the
arguments the model gave; only calls that ran successfully are recorded, and each distinct
argument set once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from callgate.errors import CallgateError
from callgate.eval.report import GoldenReport


def stubs_from_report(report: GoldenReport) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per case id, per tool: ``[{match: args, result: text}, ...]`` from every repetition."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for case in report.cases:
        tools: dict[str, list[dict[str, Any]]] = {}
        for run in case.runs:
            for c in run.calls:
                if not c.get("ok") or c.get("args") is None:
                    continue
                entries = tools.setdefault(c["name"], [])
                if all(e["match"] != c["args"] for e in entries):
                    entries.append({"match": c["args"], "result": c["result"]})
        if tools:
            out[case.id] = tools
    return out


def write_recorded(source: str | Path, report: GoldenReport, target: str | Path) -> int:
    """Write `source` (a golden file) to `target` with each case's recorded stubs added
    (replacing stubs it had for the same tools). Returns the number of recorded results."""
    import yaml

    data = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise CallgateError(f"{source}: not a golden file")
    recorded = stubs_from_report(report)
    count = 0
    for case in data["cases"]:
        tools = recorded.get(str(case.get("id")))
        if tools:
            case["stubs"] = {**case.get("stubs", {}), **tools}
            count += sum(len(v) for v in tools.values())
    Path(target).write_text(
        yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8"
    )
    return count
