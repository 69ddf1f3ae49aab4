"""``callgate eval``: golden-dataset runs and the BFCL benchmark from the command line.

callgate eval golden evals/property_demo.yaml --model local --json report.json
callgate eval golden evals/property_demo.yaml --baseline report.json   # exit 1 on regression
callgate eval bfcl --category simple --sample 30 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from callgate.eval.bfcl import BFCL_CATEGORIES, BfclRunner
from callgate.eval.dataset import load_golden
from callgate.eval.progress import ProgressBar
from callgate.eval.record import write_recorded
from callgate.eval.report import compare, load_baseline
from callgate.eval.runner import GoldenRunner, model_factory


def add_cli(sub: Any) -> None:
    p = sub.add_parser("eval", help="golden datasets and the BFCL benchmark")
    esub = p.add_subparsers(dest="eval_command", required=True)
    g = esub.add_parser("golden", help="run a golden YAML file of cases")
    g.add_argument("file")
    g.add_argument("--model", default="local", help="local | reference | module:attr")
    g.add_argument("--stub", action="store_true", help="tools return their recorded results")
    g.add_argument("--repetitions", type=int, default=None, help="runs per case")
    g.add_argument("--case", action="append", default=None, help="run only this case id")
    g.add_argument("--json", default=None, help="write the report as JSON (a baseline)")
    g.add_argument("--junit", default=None, help="write a JUnit XML report")
    g.add_argument("--baseline", default=None, help="a saved JSON report to compare with")
    g.add_argument("--tolerance", type=float, default=0.0, help="allowed pass-rate drop")
    g.add_argument("--min-pass-rate", type=float, default=None, help="fail below this rate")
    g.add_argument(
        "--record-stubs",
        metavar="OUT",
        help="write the golden file again to OUT with the tools' results recorded as stubs",
    )
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=_golden)
    b = esub.add_parser("bfcl", help="BFCL single-turn categories through a callgate model")
    b.add_argument("--category", action="append", choices=BFCL_CATEGORIES, default=None)
    b.add_argument("--model", default="local", help="local | module:attr")
    b.add_argument("--limit", type=int, default=20, help="cases per category (contiguous)")
    b.add_argument("--offset", type=int, default=0)
    b.add_argument("--sample", type=int, default=0, help="random cases per category instead")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument(
        "--pool-from", type=int, default=0, help="sample only cases at this index or later"
    )
    b.add_argument("--json", default=None, help="write the report as JSON")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=_bfcl)


def _golden(args: argparse.Namespace) -> int:
    golden = load_golden(args.file)
    runner = GoldenRunner(
        golden, model_factory(args.model), stub=args.stub, repetitions=args.repetitions
    )
    bar = None if args.quiet else ProgressBar("golden ")
    report = asyncio.run(runner.run(args.case, progress=bar))
    print(report.summary())
    if args.json:
        report.write_json(args.json)
    if args.junit:
        report.write_junit(args.junit)
    if args.record_stubs:
        n = write_recorded(args.file, report, args.record_stubs)
        print(f"recorded {n} tool result(s) in {args.record_stubs}")
    problems: list[str] = []
    if args.baseline:
        problems += compare(report, load_baseline(args.baseline), args.tolerance)
    if args.min_pass_rate is not None and report.pass_rate < args.min_pass_rate:
        problems.append(f"pass rate {report.pass_rate:.1%} under {args.min_pass_rate:.1%}")
    for p in problems:
        print(f"REGRESSION {p}", file=sys.stderr)
    return 1 if problems else 0


def _bfcl(args: argparse.Namespace) -> int:
    runner = BfclRunner(model_factory(args.model)(None))
    cats = args.category or list(BFCL_CATEGORIES)
    bar = None if args.quiet else ProgressBar("bfcl ")
    report = asyncio.run(
        runner.run(
            cats, args.limit, args.offset, args.sample, args.seed, bar, pool_from=args.pool_from
        )
    )
    print(report.summary())
    if args.json:
        report.write_json(args.json)
    return 0
