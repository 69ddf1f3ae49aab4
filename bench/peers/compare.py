"""The same work in callgate and its peers, side by side (`make bench-peers`).

Runs in bench/.venv-peers (Pydantic AI, OpenAI Agents SDK, LangChain, FastMCP and callgate
installed together, so the project's own venv stays light). Measurements are interleaved in
rounds (every library once per round, in a rotating order) so machine load hits all alike; the
median over rounds is printed.

- dispatch: one valid call of `add(a, b)` through each library's own tool-call path
  (callgate `Gate.execute`; LangChain `tool.ainvoke`; Agents SDK `FunctionTool.on_invoke_tool`;
  FastMCP's in-memory `Client.call_tool`; Pydantic AI has no public per-call path, so one agent
  turn with a function model that calls the tool is measured and reported as such);
- errors: what the model (or the caller) gets for a wrong type, an unknown key, a missing key
  and malformed JSON, with the time to produce it;
- import time of each library (fresh interpreter, median of 5).
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

ROUNDS = 7
N = 300


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


Runner = Callable[[str], Awaitable[str]]


async def callgate_runner(inline: bool = False) -> Runner:
    from callgate import Gate, RunContext, tool
    from callgate.messages import ToolCall

    g = Gate([tool(inline=inline)(add)])
    ctx = RunContext()

    async def run(args: str) -> str:
        ctx.corrections.clear()  # every measured call is the run's first mistake
        return (await g.execute(ToolCall("c1", "add", args), ctx)).content

    return run


async def callgate_inline_runner() -> Runner:
    """`@tool(inline=True)`: a cheap sync tool run on the event loop, no worker thread."""
    return await callgate_runner(inline=True)


async def langchain_runner() -> Runner:
    from langchain_core.tools import tool

    t = tool(add)

    async def run(args: str) -> str:
        try:
            return str(await t.ainvoke(json.loads(args)))
        except Exception as e:
            return f"raised {type(e).__name__}: {e}"

    return run


async def agents_runner() -> Runner:
    from agents import function_tool
    from agents.tool_context import ToolContext

    ft = function_tool(add)

    async def run(args: str) -> str:
        ctx = ToolContext(context=None, tool_name=ft.name, tool_call_id="c1", tool_arguments=args)
        try:
            return str(await ft.on_invoke_tool(ctx, args))
        except Exception as e:
            return f"raised {type(e).__name__}: {e}"

    return run


async def fastmcp_runner() -> Runner:
    from fastmcp import Client, FastMCP

    server = FastMCP("bench")
    server.tool(add)
    client = Client(server)
    await client.__aenter__()

    async def run(args: str) -> str:
        try:
            res = await client.call_tool("add", json.loads(args), raise_on_error=False)
        except Exception as e:
            return f"raised {type(e).__name__}: {e}"
        return " ".join(getattr(c, "text", "") for c in res.content)

    return run


async def pydantic_ai_runner() -> Runner:
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    told: list[str] = []
    current = {"args": "{}"}

    def model(messages: list[Any], info: AgentInfo) -> ModelResponse:
        if len(messages) == 1:
            return ModelResponse(parts=[ToolCallPart("add", current["args"], tool_call_id="c1")])
        told[:] = [str(getattr(p, "content", "")) for p in messages[-1].parts]
        return ModelResponse(parts=[TextPart("done")])

    agent = Agent(FunctionModel(model), tools=[add], retries=5)

    async def run(args: str) -> str:
        current["args"] = args
        try:
            await agent.run("go")
        except Exception as e:
            return f"raised {type(e).__name__}: {e}"
        return " | ".join(told)

    return run


RUNNERS: dict[str, Callable[[], Awaitable[Runner]]] = {
    "callgate": callgate_runner,
    "callgate (inline)": callgate_inline_runner,
    "langchain-core": langchain_runner,
    "openai-agents": agents_runner,
    "fastmcp (in-memory)": fastmcp_runner,
    "pydantic-ai (whole turn)": pydantic_ai_runner,
}
CASES = {
    "wrong type": '{"a": "two", "b": 3}',
    "unknown key": '{"a": 1, "b": 2, "c": 3}',
    "missing key": '{"a": 1}',
    "malformed JSON": '{"a": 1, "b": ',
}


async def timed(run: Runner, args: str, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        await run(args)
    return (time.perf_counter() - t0) / n


async def rounds(runners: dict[str, Runner]) -> dict[str, dict[str, float]]:
    """Median seconds per call for each library and case, interleaved in rounds."""
    cases = {"valid": '{"a": 1, "b": 2}', **CASES}
    samples: dict[str, dict[str, list[float]]] = {k: {c: [] for c in cases} for k in runners}
    names = list(runners)
    for r in range(ROUNDS):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            for case, args in cases.items():
                samples[name][case].append(await timed(runners[name], args, N // 10 or 1))
    return {k: {c: statistics.median(v) for c, v in per.items()} for k, per in samples.items()}


def import_cost(stmt: str) -> tuple[float, float]:
    """Median import time (s) and the process's peak RSS (MiB) after the import."""
    # VmHWM, not ru_maxrss: the latter counts the forked parent's memory before exec
    code = (
        "import time; t=time.perf_counter(); " + stmt + "; d=time.perf_counter()-t; "
        "print(d, [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True).stdout.split()
        for _ in range(5)
    ]  # fmt: skip
    return statistics.median(float(t) for t, _ in runs), statistics.median(
        int(r) / 1024 for _, r in runs
    )


async def parallel_wall(name: str) -> float:
    """Wall time of 8 concurrent calls of a tool that sleeps 50 ms, through the library."""
    runner = await make_sleeper(name)
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        await asyncio.gather(*(runner(json.dumps({"i": i})) for i in range(8)))
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


async def nap(i: int) -> int:
    """Sleep 50 ms and return i."""
    await asyncio.sleep(0.05)
    return i


async def make_sleeper(name: str) -> Runner:
    if name.startswith("callgate"):
        from callgate import Gate, RunContext
        from callgate.messages import ToolCall

        g = Gate([nap])

        async def run_cg(args: str) -> str:
            return (await g.execute(ToolCall("c", "nap", args), RunContext())).content

        return run_cg
    if name == "langchain-core":
        from langchain_core.tools import tool

        t = tool(nap)
        return lambda args: t.ainvoke(json.loads(args))
    if name == "openai-agents":
        from agents import function_tool
        from agents.tool_context import ToolContext

        ft = function_tool(nap)

        async def run_ag(args: str) -> str:
            ctx = ToolContext(
                context=None, tool_name=ft.name, tool_call_id="c", tool_arguments=args
            )
            return str(await ft.on_invoke_tool(ctx, args))

        return run_ag
    if name.startswith("fastmcp"):
        from fastmcp import Client, FastMCP

        server = FastMCP("naps")
        server.tool(nap)
        client = Client(server)
        await client.__aenter__()

        async def run_mcp(args: str) -> str:
            return str(await client.call_tool("nap", json.loads(args)))

        return run_mcp
    raise LookupError(name)


IMPORTS = {
    "callgate": "from callgate import Gate, tool",
    "callgate (inline)": "from callgate import Gate, tool",
    "langchain-core": "from langchain_core.tools import tool",
    "openai-agents": "from agents import function_tool",
    "fastmcp (in-memory)": "from fastmcp import FastMCP, Client",
    "pydantic-ai (whole turn)": "from pydantic_ai import Agent",
}


async def main() -> None:
    logging.disable(logging.WARNING)  # FastMCP logs every invalid call; the text is measured
    runners: dict[str, Runner] = {}
    for name, make in RUNNERS.items():
        try:
            runners[name] = await make()
        except Exception as e:
            print(f"{name}: not available ({type(e).__name__}: {e})")
    times = await rounds(runners)
    print(f"\nper call, median of {ROUNDS} interleaved rounds (us)")
    cols = ["valid", *CASES]
    print(f"{'library':<26}" + "".join(f"{c:>16}" for c in cols))
    for name, per in times.items():
        print(f"{name:<26}" + "".join(f"{1e6 * per[c]:>16.1f}" for c in cols))
    print("\nwhat each library returns (first 300 characters)")
    for case, args in CASES.items():
        print(f"\n## {case}: {args}")
        for name, run in runners.items():
            text = " ".join((await run(args)).split())
            print(f"- {name}: {text[:300]}")
    print("\n8 concurrent calls of a 50 ms async tool, wall time (ms, median of 5)")
    for name in RUNNERS:
        if name in runners and not name.startswith("pydantic"):
            print(f"{name:<26}{1e3 * await parallel_wall(name):>10.1f}")
    print("\nimport time (ms) and peak RSS after the import (MiB), median of 5 interpreters")
    for name, stmt in IMPORTS.items():
        if name in runners:
            seconds, rss = import_cost(stmt)
            print(f"{name:<26}{1e3 * seconds:>10.1f}{rss:>10.1f}")


if __name__ == "__main__":
    asyncio.run(main())
