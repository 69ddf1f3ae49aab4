"""Routing benchmark: can the router find the right tool hidden among many?

For each case, the right tool (the function of a BFCL single-function case) is hidden among
10, 50, 200 and 1,000 distractors drawn at random from the function docs of every other BFCL
case (simple, multiple, parallel, parallel_multiple and their live versions, pooled and
de-duplicated by name; a distractor never shares the right tool's name). The router ranks the
whole set against the case's user message; recall@k is the share of cases whose right tool is
among the k offered. Also reported: the tool-definition size a request carries with all tools
and with the k routed ones (characters / 4 as a token estimate), and the router's time per
request.

    .venv/bin/python bench/routing.py --cases 300 --seed 7

Without the `bfcl-eval` wheel it falls back to a generated set (verbs x nouns of an office
back end, queries written from templates) and says so: that set is far easier than BFCL's.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callgate.agent.router import Router
from callgate.tools.definition import ToolSpec

SIZES = (10, 50, 200, 1000)
KS = (1, 3, 5, 8)
POOL_CATEGORIES = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
)
CASE_CATEGORIES = ("simple_python", "live_simple")


@dataclass
class Case:
    id: str
    query: str
    target: ToolSpec


def _bfcl_helpers() -> Any:
    path = Path(__file__).with_name("bfcl_eval.py")
    spec = importlib.util.spec_from_file_location("bench_bfcl_eval", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows(category: str) -> list[dict[str, Any]]:
    from importlib import resources

    root = resources.files("bfcl_eval") / "data"
    text = (root / f"BFCL_v4_{category}.json").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def bfcl_data() -> tuple[list[Case], list[ToolSpec]]:
    """Single-function cases and the pooled function docs of every category."""
    conv = _bfcl_helpers().to_json_schema

    def spec(f: dict[str, Any]) -> ToolSpec:
        return ToolSpec(f["name"], f.get("description", ""), conv(f["parameters"]))

    pool: dict[str, ToolSpec] = {}
    for cat in POOL_CATEGORIES:
        for row in _rows(cat):
            for f in row["function"]:
                pool.setdefault(f["name"], spec(f))
    cases = []
    for cat in CASE_CATEGORIES:
        for row in _rows(cat):
            if len(row["function"]) != 1:
                continue
            turn = row["question"][0]
            query = " ".join(m["content"] for m in turn if m["role"] == "user")
            cases.append(Case(row["id"], query, spec(row["function"][0])))
    return cases, list(pool.values())


def generated_data(seed: int) -> tuple[list[Case], list[ToolSpec]]:
    """A generated stand-in: 12 verbs x 100 nouns, one templated query per tool."""
    verbs = [
        "get",
        "list",
        "create",
        "update",
        "delete",
        "export",
        "archive",
        "approve",
        "cancel",
        "assign",
        "count",
        "send",
    ]
    nouns = [
        f"{a}_{b}"
        for a in [
            "lease",
            "rent",
            "ticket",
            "unit",
            "vendor",
            "key",
            "meter",
            "notice",
            "invoice",
            "order",
        ]
        for b in [
            "record",
            "note",
            "file",
            "item",
            "batch",
            "entry",
            "draft",
            "report",
            "log",
            "plan",
        ]
    ]
    pool = [
        ToolSpec(f"{v}_{n}", f"{v.capitalize()} a {n.replace('_', ' ')}.", {"type": "object"})
        for v in verbs
        for n in nouns
    ]
    rng = random.Random(seed)
    cases = [Case(s.name, f"please {s.description.lower()}", s) for s in rng.sample(pool, 400)]
    return cases, pool


def chars(specs: list[ToolSpec]) -> int:
    return sum(len(s.name) + len(s.description) + len(json.dumps(s.parameters)) for s in specs)


async def measure(
    cases: list[Case], pool: list[ToolSpec], size: int, rng: random.Random, k_max: int
) -> dict[str, Any]:
    hits = {k: 0 for k in KS}
    full_chars: list[int] = []
    routed_chars: list[int] = []
    seconds: list[float] = []
    cached: list[float] = []
    for case in cases:
        others = [s for s in pool if s.name != case.target.name]
        specs = [case.target, *rng.sample(others, min(size, len(others)))]
        rng.shuffle(specs)
        router = Router(k=k_max)
        t0 = time.perf_counter()
        ranked = [n for n, _ in router.rank(case.query, specs)]
        seconds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        router.rank(case.query, specs)  # the index is kept while the tool set is unchanged
        cached.append(time.perf_counter() - t0)
        pos = ranked.index(case.target.name)
        for k in KS:
            hits[k] += pos < k
        full_chars.append(chars(specs))
        by_name = {s.name: s for s in specs}
        routed_chars.append(chars([by_name[n] for n in ranked[:5]]))
    n = len(cases)
    return {
        "distractors": size,
        "cases": n,
        **{f"recall@{k}": round(hits[k] / n, 3) for k in KS},
        "tool_tokens_all": round(statistics.mean(full_chars) / 4),
        "tool_tokens_k5": round(statistics.mean(routed_chars) / 4),
        "index_and_rank_ms": round(1000 * statistics.mean(seconds), 2),
        "rank_ms": round(1000 * statistics.mean(cached), 2),
    }


async def end_to_end(
    cases: list[Case], pool: list[ToolSpec], size: int, rng: random.Random, k: int, n_ctx: int
) -> list[dict[str, Any]]:
    """The local model asked each case with every tool, then with the router's k: share of
    first replies calling the right tool, input tokens and seconds per request."""
    from callgate.messages import Message
    from callgate.models import ModelRequest
    from callgate.providers.local.model import LocalModel

    model = LocalModel(n_ctx=n_ctx, max_tokens=256)
    rows = []
    for routed in (False, True):
        right = tokens = 0
        secs = 0.0
        for case in cases:
            others = [s for s in pool if s.name != case.target.name]
            specs = [case.target, *rng.sample(others, min(size, len(others)))]
            rng.shuffle(specs)
            if routed:
                keep = set((await Router(k=k).choose(case.query, specs)).tools)
                specs = [s for s in specs if s.name in keep]
            t0 = time.perf_counter()
            resp = await model.request(ModelRequest([Message.user(case.query)], tools=specs))
            secs += time.perf_counter() - t0
            right += any(c.name == case.target.name for c in resp.tool_calls)
            tokens += resp.usage.input_tokens
        n = len(cases)
        rows.append(
            {
                "distractors": size,
                "routing": f"k={k}" if routed else "off",
                "cases": n,
                "right_tool": round(right / n, 3),
                "input_tokens": round(tokens / n),
                "seconds": round(secs / n, 2),
            }
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=300, help="random sample of cases")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default="bench/results/routing.json")
    p.add_argument("--e2e", type=int, default=0, help="also ask the local model N cases")
    p.add_argument("--e2e-sizes", default="10,50")
    p.add_argument("--n-ctx", type=int, default=8192)
    a = p.parse_args()
    try:
        cases, pool = bfcl_data()
        source = f"BFCL v4 ({', '.join(CASE_CATEGORIES)} cases; pool of {{}} function docs)"
    except ModuleNotFoundError:
        cases, pool = generated_data(a.seed)
        source = "GENERATED set (bfcl-eval not installed; far easier than BFCL; pool {})"
    rng = random.Random(a.seed)
    cases = rng.sample(cases, min(a.cases, len(cases)))
    rows = [asyncio.run(measure(cases, pool, size, rng, max(KS))) for size in SIZES]
    print(source.format(len(pool)))
    head = [
        "distractors",
        *[f"recall@{k}" for k in KS],
        "tool_tokens_all",
        "tool_tokens_k5",
        "index_and_rank_ms",
        "rank_ms",
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(str(r[h]) for h in head) + " |")
    e2e: list[dict[str, Any]] = []
    if a.e2e:
        sample = rng.sample(cases, min(a.e2e, len(cases)))
        for size in (int(x) for x in a.e2e_sizes.split(",")):
            e2e += asyncio.run(end_to_end(sample, pool, size, random.Random(a.seed), 5, a.n_ctx))
        print("\nlocal model (SmolLM2-135M), first reply, tool_choice auto:")
        for r in e2e:
            print(r)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "source": source.format(len(pool)),
                "seed": a.seed,
                "cases": len(cases),
                "rows": rows,
                "e2e": e2e,
            },
            indent=1,
        )
    )
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
