"""What each peer library does with a call that misspells a parameter ("unit" for "units").

Run in its own environment so the project's install stays light:

    python3 -m venv bench/.venv-peers
    bench/.venv-peers/bin/pip install pydantic-ai-slim openai-agents langchain-core
    bench/.venv-peers/bin/python bench/peers/unknown_param.py

Each line says what the tool body received (the misspelled parameter dropped, so the default
"celsius" was used) or what the library told the model instead.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

BAD = {"city": "Paris", "unit": "fahrenheit"}


def get_weather(city: str, units: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """Current weather for a city."""
    return f"ran with city={city} units={units}"


def langchain() -> str:
    from langchain_core.tools import tool

    return repr(tool(get_weather).invoke(BAD))


def openai_agents() -> str:
    from agents import function_tool
    from agents.tool_context import ToolContext

    ft = function_tool(get_weather)
    args = json.dumps(BAD)
    ctx = ToolContext(context=None, tool_name=ft.name, tool_call_id="c1", tool_arguments=args)
    return repr(asyncio.run(ft.on_invoke_tool(ctx, args)))


def pydantic_ai() -> str:
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    told: list[str] = []

    def model(messages: list[Any], info: AgentInfo) -> ModelResponse:
        if len(messages) == 1:
            call = ToolCallPart("get_weather", json.dumps(BAD), tool_call_id="c1")
            return ModelResponse(parts=[call])
        told.extend(str(getattr(p, "content", ""))[:200] for p in messages[-1].parts)
        return ModelResponse(parts=[TextPart("done")])

    Agent(FunctionModel(model), tools=[get_weather]).run_sync("weather in Paris, in F?")
    return "model was told: " + " | ".join(told)


if __name__ == "__main__":
    for name, check in [
        ("langchain-core", langchain),
        ("openai-agents", openai_agents),
        ("pydantic-ai", pydantic_ai),
    ]:
        try:
            print(f"{name}: {check()}")
        except Exception as e:
            print(f"{name}: raised {type(e).__name__}: {str(e)[:200]}")
