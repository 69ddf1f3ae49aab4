"""Gate build time and per-turn tool-list cost with 10 / 1,000 / 10,000 tools.

    python bench/scale.py

"Build" makes the tools' `Tool` objects first (that is the tools' own import cost), then times
`Gate(toolset)` with `Toolset.register_many`. "Per turn" is what the agent loop pays for the tool
list on each turn when nothing changed: `Gate.specs(ctx)` and the OpenAI dialect export.
"""

from __future__ import annotations

import statistics
import time

from callgate import Gate, RunContext, Tool
from callgate.dialects.export import export_tools
from callgate.tools.toolset import Toolset

SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}


def make_tools(n: int) -> list[Tool]:
    return [
        Tool.from_schema(f"tool_{i}", f"Tool number {i}.", SCHEMA, lambda q: q) for i in range(n)
    ]


def per_turn(g: Gate, reps: int = 5) -> tuple[float, float]:
    ctx = RunContext()
    specs_t, export_t = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        specs = g.specs(ctx)
        t1 = time.perf_counter()
        export_tools(specs, "openai_chat")
        t2 = time.perf_counter()
        specs_t.append(t1 - t0)
        export_t.append(t2 - t1)
    return statistics.median(specs_t), statistics.median(export_t)


def main() -> None:
    print(f"{'tools':>7} {'build ms':>10} {'specs ms':>10} {'export ms':>10}")
    for n in (10, 1_000, 10_000):
        tools = make_tools(n)
        t0 = time.perf_counter()
        ts = Toolset()
        ts.register_many(tools)
        g = Gate(ts)
        build = time.perf_counter() - t0
        s, e = per_turn(g)
        print(f"{n:>7} {build * 1e3:>10.1f} {s * 1e3:>10.3f} {e * 1e3:>10.3f}")


if __name__ == "__main__":
    main()
