"""Golden datasets from Python: run the property demo's golden set, keep the report as a
baseline, and catch a regression when the model's behaviour changes.

    .venv/bin/python examples/golden_runner.py                  # reference runs (seconds)
    .venv/bin/python examples/golden_runner.py --model local    # the embedded model (minutes)

The command line does the same: ``callgate eval golden evals/property_demo.yaml --json
base.json`` then ``--baseline base.json`` (exit 1 on a regression). Here the "changed model"
is the reference run with one habit broken - it stops filtering searches by price - and the
comparison names the cases that regressed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from callgate import ModelRequest, ModelResponse
from callgate.eval import GoldenRunner, ReferenceModel, compare, load_golden, model_factory
from callgate.eval.dataset import Case
from callgate.eval.progress import ProgressBar

GOLDEN = Path(__file__).resolve().parent.parent / "evals" / "property_demo.yaml"


class ForgetsPriceFilters:
    """The reference run, except that every `max_price` argument is dropped: a regression of
    the kind a prompt or schema change can cause."""

    name = "reference-without-price-filters"

    def __init__(self, case: Case | None) -> None:
        self._inner = ReferenceModel(case)

    async def request(self, request: ModelRequest) -> ModelResponse:
        response = await self._inner.request(request)
        for c in response.tool_calls:
            args = json.loads(str(c.arguments))
            args.pop("max_price", None)
            c.arguments = json.dumps(args)
        return response


def main(model: str = "reference", quiet: bool = False) -> list[str]:
    """Returns the regressions the changed model caused (for the tests)."""
    golden = load_golden(GOLDEN)
    bar = None if quiet else ProgressBar("golden ")
    base = asyncio.run(GoldenRunner(golden, model_factory(model)).run(progress=bar))
    print(base.summary())
    baseline = base.to_dict()  # what `--json base.json` writes
    changed = asyncio.run(GoldenRunner(golden, ForgetsPriceFilters).run())
    problems = compare(changed, baseline)
    print(f"\nthe changed model against the baseline: {len(problems)} regression(s)")
    for p in problems:
        print(f"  REGRESSION {p}")
    return problems


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="reference", help="reference | local | module:attr")
    args = p.parse_args()
    sys.exit(1 if not main(args.model) else 0)
