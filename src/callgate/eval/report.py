"""Golden-run reports: a summary table for people, JSON for baselines, JUnit for CI, and the
comparison with a saved baseline that turns a drop in pass rate into a failing exit code."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class CaseRun:
    """One repetition of one case."""

    passed: bool
    failures: list[str]
    calls: list[dict[str, Any]]
    answer: str
    status: str
    turns: int
    failed_calls: int
    results: list[str]
    latency_s: float
    cost_usd: float
    tokens: int
    error: str | None = None


@dataclass(slots=True)
class CaseReport:
    id: str
    kind: str | None
    runs: list[CaseRun] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return sum(r.passed for r in self.runs) / len(self.runs) if self.runs else 0.0


@dataclass(slots=True)
class GoldenReport:
    name: str
    model: str
    cases: list[CaseReport] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        """The mean of the cases' pass rates (each case weighs the same, whatever its
        repetitions)."""
        return sum(c.pass_rate for c in self.cases) / len(self.cases) if self.cases else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "pass_rate": self.pass_rate,
            "cases": [
                {"id": c.id, "kind": c.kind, "pass_rate": c.pass_rate}
                | {"runs": [asdict(r) for r in c.runs]}
                for c in self.cases
            ],
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, default=str) + "\n")

    def write_junit(self, path: str | Path) -> None:
        """One testcase per case; a case fails when any repetition failed."""
        failed = sum(c.pass_rate < 1.0 for c in self.cases)
        secs = sum(r.latency_s for c in self.cases for r in c.runs)
        suite = ET.Element(
            "testsuite",
            name=f"golden:{self.name}",
            tests=str(len(self.cases)),
            failures=str(failed),
            errors="0",
            time=f"{secs:.3f}",
        )
        for c in self.cases:
            el = ET.SubElement(
                suite,
                "testcase",
                classname=self.name,
                name=c.id,
                time=f"{sum(r.latency_s for r in c.runs):.3f}",
            )
            if c.pass_rate < 1.0:
                text = "\n".join(
                    f"run {i + 1}: " + "; ".join(r.failures)
                    for i, r in enumerate(c.runs)
                    if not r.passed
                )
                fail = ET.SubElement(el, "failure", message=f"pass rate {c.pass_rate:.0%}")
                fail.text = text
        ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)

    def summary(self) -> str:
        """A plain-text table: one row per case, then the totals."""
        width = max([len(c.id) for c in self.cases] + [4])
        lines = [f"{'case':<{width}}  pass   calls  turns  secs  first failure"]
        for c in self.cases:
            runs = c.runs or []
            calls = sum(len(r.calls) for r in runs) / max(len(runs), 1)
            turns = sum(r.turns for r in runs) / max(len(runs), 1)
            secs = sum(r.latency_s for r in runs) / max(len(runs), 1)
            first = next((r.failures[0] for r in runs if r.failures), "")
            lines.append(
                f"{c.id:<{width}}  {c.pass_rate:4.0%}  {calls:5.1f}  {turns:5.1f}  "
                f"{secs:4.1f}  {first[:90]}"
            )
        full = sum(c.pass_rate == 1.0 for c in self.cases)
        lines.append(
            f"{self.name} on {self.model}: pass rate {self.pass_rate:.1%} "
            f"({full}/{len(self.cases)} cases passed every repetition)"
        )
        return "\n".join(lines)


def compare(report: GoldenReport, baseline: dict[str, Any], tolerance: float = 0.0) -> list[str]:
    """Why `report` is worse than `baseline` (a saved `to_dict`): every case whose pass rate
    fell by more than `tolerance`, a case of the baseline that is gone, and the overall pass
    rate falling. New cases are not regressions. Empty: no regression."""
    now = {c.id: c.pass_rate for c in report.cases}
    out: list[str] = []
    for row in baseline.get("cases", []):
        cid, before = str(row["id"]), float(row["pass_rate"])
        if cid not in now:
            out.append(f"{cid}: in the baseline but not run")
        elif now[cid] < before - tolerance:
            out.append(f"{cid}: pass rate {before:.0%} -> {now[cid]:.0%}")
    before_all = float(baseline.get("pass_rate", 0.0))
    if report.pass_rate < before_all - tolerance:
        out.append(f"overall pass rate {before_all:.1%} -> {report.pass_rate:.1%}")
    return out


def load_baseline(path: str | Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or "cases" not in data:
        raise ValueError(f"{path}: not a golden report (write one with --json)")
    return data
