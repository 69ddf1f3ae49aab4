"""Speed of the embedded local model: time to first call, tokens per second, KV-cache reuse.

    .venv/bin/python bench/local_model.py

Loads `LocalModel()` (SmolLM2-135M-Instruct) once and asks a few requests against the
property demo's tools, the way an agent does: a cold first request (the whole prompt is
evaluated), then warm ones that share the system prompt and tool list (llama.cpp reuses that
prefix from its KV cache). For each request it prints wall time, prompt tokens and how many of
them came from the cache, generated tokens, and generated tokens per second of wall time.
Wall times on a shared machine are rough: the load average is printed alongside.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent / "examples"))

from property_app import TOOLS  # noqa: E402

from callgate import Message, ModelRequest, NamedToolChoice  # noqa: E402

QUESTIONS = [
    ("Find apartments in Lisbon under 400000 euros.", "required"),
    ("List the open maintenance requests of P-101 and of P-104.", "required"),
    ("Schedule a plumber at P-101 on 2026-12-15 to fix the tap.", "schedule_maintenance"),
    ("Find houses in Porto.", "auto"),
]


async def main() -> None:
    from callgate.providers.local.model import LocalModel

    t0 = time.perf_counter()
    model = LocalModel(max_tokens=160, copy_strings=True)
    print(f"load {time.perf_counter() - t0:.2f} s · load average {os.getloadavg()[0]:.1f}")
    specs = [t.spec for t in TOOLS]
    rows = []
    for question, choice in QUESTIONS:
        tc = NamedToolChoice(choice) if choice not in ("auto", "required") else choice
        req = ModelRequest([Message.user(question)], tools=specs, tool_choice=tc)  # type: ignore[arg-type]
        t = time.perf_counter()
        r = await model.request(req)
        dt = time.perf_counter() - t
        u = r.usage
        rows.append(
            {
                "question": question,
                "s": round(dt, 3),
                "prompt_tokens": u.input_tokens,
                "cached_tokens": u.cache_read_tokens,
                "generated_tokens": u.output_tokens,
                "tokens_per_s": round(u.output_tokens / dt, 1),
                "calls": [(c.name, c.arguments) for c in r.tool_calls],
            }
        )
        print(
            f"{dt:6.2f} s to the reply ({len(r.tool_calls)} calls) · prompt {u.input_tokens} "
            f"({u.cache_read_tokens} cached) · {u.output_tokens} generated · "
            f"{u.output_tokens / dt:.1f} tok/s"
        )
    warm = sum(float(r["s"]) for r in rows[1:]) / (len(rows) - 1)  # type: ignore[arg-type]
    print(
        f"cold first call {rows[0]['s']:.2f} s · warm mean {warm:.2f} s"
        f" · load average {os.getloadavg()[0]:.1f}"
    )
    out = HERE / "results" / "local_model_speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
