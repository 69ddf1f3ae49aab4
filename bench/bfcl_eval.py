"""Score `LocalModel` on the Berkeley Function Calling Leaderboard's single-turn Python categories.

    .venv/bin/python bench/bfcl_eval.py --sample 30 --seed 12

Data and scoring come from the `bfcl-eval` package (install it with `pip install --no-deps
bfcl-eval`; the checker needs nothing beyond the standard library). For each category, a
fixed-seed random sample of cases is drawn (`--sample`/`--seed`) from the cases at index
`--holdout-from` (52) and above: cases 0-51 of every category were read while the decoding
rules were developed, so they are never scored. (`--n`/`--offset` still select a contiguous
range, for looking at cases while developing.) The BFCL function docs become `ToolSpec`s,
`LocalModel` is asked once with tool_choice="auto", and its calls are scored by BFCL's own
`ast_checker` (irrelevance: the case passes when no call is made, BFCL's rule for that
category). Ground truth is read here only, after the model has answered.

`bfcl_eval.constants.model_config` imports every provider SDK BFCL supports; the checker uses it
for one thing, whether a model's function names had dots replaced by underscores. This script
puts a minimal stand-in for that module in place (our names keep their dots) so the checker can
be imported without those SDKs. The checking logic itself is BFCL's, unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import types
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

# This file shares its name with the package it evaluates: keep its folder off the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

MODEL_NAME = "callgate-local"
CATEGORIES = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "irrelevance",
    "live_simple",
    "live_multiple",
    "live_irrelevance",
)
#: categories where a case passes when the model makes no call
NO_CALL = ("irrelevance", "live_irrelevance")

_TYPES = {
    "dict": "object",
    "object": "object",
    "float": "number",
    "double": "number",
    "number": "number",
    "integer": "integer",
    "int": "integer",
    "long": "integer",
    "short": "integer",
    "byte": "integer",
    "string": "string",
    "str": "string",
    "char": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "tuple": "array",
    "ArrayList": "array",
    "Array": "array",
}


def _install_checker() -> Any:
    """Import BFCL's AST checker with a stand-in for its provider-SDK-heavy model registry."""

    @dataclass
    class _Cfg:
        underscore_to_dot: bool = False

    class _Registry(dict[str, Any]):
        def __missing__(self, key: str) -> _Cfg:
            return _Cfg()

    stub = types.ModuleType("bfcl_eval.constants.model_config")
    stub.MODEL_CONFIG_MAPPING = _Registry()  # type: ignore[attr-defined]
    sys.modules["bfcl_eval.constants.model_config"] = stub
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

    return ast_checker, Language.PYTHON


def to_json_schema(node: Any) -> Any:
    """BFCL's parameter dialect (dict/float/tuple/any, "optional" markers) -> JSON Schema."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "type":
            if v == "any":
                continue
            out["type"] = _TYPES.get(v, v)
        elif k == "properties" and isinstance(v, dict):
            out["properties"] = {p: to_json_schema(s) for p, s in v.items()}
        elif k == "items":
            out["items"] = to_json_schema(v)
        elif k in ("description", "enum", "required", "default", "format", "maximum", "minimum"):
            out[k] = v
    if out.get("type") == "object" and "properties" not in out:
        out.pop("required", None)
    if "required" in out and "properties" in out:
        out["required"] = [r for r in out["required"] if r in out["properties"]]
    if out.get("type") == "number" and "default" in out and isinstance(out["default"], str):
        out.pop("default")
    return out


def load(
    category: str, n: int, offset: int = 0, sample: int = 0, seed: int = 0, holdout_from: int = 52
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The cases to score: a fixed-seed random sample of `sample` cases from index
    `holdout_from` on, or (sample=0) the contiguous range [offset, offset + n)."""
    root = resources.files("bfcl_eval") / "data"
    every = [
        json.loads(line)
        for line in (root / f"BFCL_v4_{category}.json").read_text().splitlines()
        if line.strip()
    ]
    if sample:
        pool = every[holdout_from:]
        rng = random.Random(f"{seed}:{category}")
        cases = sorted(rng.sample(range(len(pool)), min(sample, len(pool))))
        chosen = [pool[i] for i in cases]
    else:
        chosen = every[offset : offset + n]
    answers: dict[str, Any] = {}
    pa = root / "possible_answer" / f"BFCL_v4_{category}.json"
    if pa.is_file():
        for line in pa.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                answers[row["id"]] = row["ground_truth"]
    return chosen, answers


def request_for(case: dict[str, Any]) -> Any:
    from callgate.messages import Message
    from callgate.models import ModelRequest
    from callgate.tools.definition import ToolSpec

    turn = case["question"][0]
    system = "\n".join(m["content"] for m in turn if m["role"] == "system") or None
    messages = [Message(m["role"], m["content"]) for m in turn if m["role"] != "system"]
    tools = [
        ToolSpec(f["name"], f.get("description", ""), to_json_schema(f["parameters"]))
        for f in case["function"]
    ]
    return ModelRequest(messages, tools=tools, system=system, tool_choice="auto")


async def score(
    model: Any,
    case: dict[str, Any],
    cat: str,
    answers: dict[str, Any],
    checker: tuple[Any, Any],
    verbose: bool,
) -> dict[str, Any]:
    """Ask the model one case and score its calls with BFCL's checker."""
    ast_checker, python = checker
    t = time.perf_counter()
    resp = await model.request(request_for(case))
    dt = time.perf_counter() - t
    calls = [{c.name: json.loads(c.arguments)} for c in resp.tool_calls]
    if cat in NO_CALL:
        ok, err = not calls, ("made a call" if calls else None)
    else:
        res = ast_checker(case["function"], calls, answers[case["id"]], python, cat, MODEL_NAME)
        ok, err = bool(res["valid"]), res.get("error")
    if verbose:
        print(f"  {case['id']}: {'ok ' if ok else 'FAIL'} {calls} {err or ''}", flush=True)
    return {
        "id": case["id"],
        "ok": ok,
        "calls": calls,
        "text": resp.text[:200],
        "error": err,
        "s": round(dt, 3),
        "decisions": (resp.raw or {}).get("decisions"),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from callgate.providers.local.model import LocalModel

    checker = _install_checker()
    model = LocalModel(
        args.model,
        n_threads=args.threads,
        abstain_bias=args.abstain_bias,
        min_grounding=args.min_grounding,
        explore=args.explore,
        copy_strings=args.copy_strings,
    )
    report: dict[str, Any] = {
        "model": model.name,
        "n": args.n,
        "offset": args.offset,
        "sample": args.sample,
        "seed": args.seed,
        "holdout_from": args.holdout_from,
        "settings": {
            "abstain_bias": args.abstain_bias,
            "min_grounding": args.min_grounding,
            "explore": args.explore,
            "copy_strings": args.copy_strings,
        },
        "categories": {},
    }
    for cat in args.categories:
        cases, answers = load(cat, args.n, args.offset, args.sample, args.seed, args.holdout_from)
        t0 = time.perf_counter()
        rows = [await score(model, case, cat, answers, checker, args.verbose) for case in cases]
        passed = sum(bool(r["ok"]) for r in rows)
        secs = time.perf_counter() - t0
        acc = passed / len(cases) if cases else 0.0
        report["categories"][cat] = {
            "accuracy": acc,
            "passed": passed,
            "cases": len(cases),
            "s_per_case": secs / max(len(cases), 1),
            "rows": rows,
        }
        per_case = secs / max(len(cases), 1)
        line = f"{cat:<18} {acc * 100:5.1f}%  ({passed}/{len(cases)})  {per_case:.2f} s/case"
        print(line, flush=True)
        _save(args.out, report)
    accs = [c["accuracy"] for c in report["categories"].values()]
    report["mean_accuracy"] = sum(accs) / len(accs) if accs else 0.0
    print(f"{'mean':<18} {report['mean_accuracy'] * 100:5.1f}%")
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sample", type=int, default=0, help="random cases per category")
    p.add_argument("--seed", type=int, default=12, help="seed of the random sample")
    p.add_argument(
        "--holdout-from", type=int, default=52, help="sample only cases at this index or later"
    )
    p.add_argument("--copy-strings", action="store_true", help="LocalModel(copy_strings=True)")
    p.add_argument("--n", type=int, default=40, help="cases per category (first N)")
    p.add_argument(
        "--offset", type=int, default=0, help="skip this many cases (tune on a held-out range)"
    )
    p.add_argument("--categories", nargs="+", default=list(CATEGORIES[:6]), choices=CATEGORIES)
    p.add_argument("--model", default=None, help="GGUF path (default: SmolLM2-135M-Instruct)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--abstain-bias", type=float, default=0.0)
    p.add_argument("--min-grounding", type=float, default=0.25)
    p.add_argument("--explore", type=int, default=0)
    p.add_argument("--out", default="bench/results/bfcl_local.json")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    report = asyncio.run(run(args))
    _save(args.out, report)
    print(f"report: {args.out}")


def _save(path: str, report: dict[str, Any]) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
