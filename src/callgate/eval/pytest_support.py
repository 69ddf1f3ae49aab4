"""Run a golden file inside a pytest suite, one test per case::

    from callgate.eval import assert_case_passes, golden_params

    @pytest.mark.parametrize("case", golden_params("evals/property_demo.yaml"))
    def test_golden(case):
        assert_case_passes("evals/property_demo.yaml", case, model=lambda case: my_model())

Each case is its own test (named by its id), so a regression names the case that broke; the
assertion message lists every failed check of every failing repetition.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from callgate.eval.dataset import Case, load_golden
from callgate.eval.runner import GoldenRunner, ModelFactory, ReferenceModel


def golden_params(path: str | Path) -> list[Any]:
    """The file's cases as ``pytest.param``s with the case id as the test id."""
    import pytest

    return [pytest.param(c, id=c.id) for c in load_golden(path).cases]


def assert_case_passes(
    path: str | Path,
    case: Case,
    model: ModelFactory = ReferenceModel,
    *,
    min_pass_rate: float = 1.0,
    **runner_options: Any,
) -> float:
    """Run `case` of the golden file at `path`; raise `AssertionError` when its pass rate is
    under `min_pass_rate`. Returns the pass rate. `runner_options` go to `GoldenRunner`."""
    runner = GoldenRunner(load_golden(path), model, **runner_options)
    report = asyncio.run(runner.run([case.id]))
    (result,) = report.cases
    if result.pass_rate < min_pass_rate:
        lines = [
            f"run {i + 1}: " + "; ".join(r.failures)
            for i, r in enumerate(result.runs)
            if not r.passed
        ]
        raise AssertionError(
            f"golden case {case.id!r}: pass rate {result.pass_rate:.0%} under "
            f"{min_pass_rate:.0%}\n" + "\n".join(lines)
        )
    return result.pass_rate
