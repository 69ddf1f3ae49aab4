"""callgate: the gate every LLM tool call passes through.

A model proposes a call; callgate decodes and validates it, applies policy, approval and limits,
runs it with timeouts and retries where safe, and hands the model a result it can act on.

Public names are loaded on first use, so `import callgate` stays cheap for processes that only
need a part of it (the CLI, a worker that only audits).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Agent": "callgate.agent",
    "Budgets": "callgate.agent",
    "RunResult": "callgate.agent",
    "RunContext": "callgate.context",
    "ErrorKind": "callgate.errors",
    "SchemaError": "callgate.errors",
    "TerminalToolError": "callgate.errors",
    "ToolDenied": "callgate.errors",
    "ToolError": "callgate.errors",
    "ToolRetry": "callgate.errors",
    "TransientToolError": "callgate.errors",
    "Invocation": "callgate.gate.base",
    "PolicyDecision": "callgate.gate.base",
    "Gate": "callgate.gate.core",
    "Message": "callgate.messages",
    "ToolCall": "callgate.messages",
    "ToolResult": "callgate.messages",
    "Usage": "callgate.messages",
    "Model": "callgate.model",
    "ModelRequest": "callgate.model",
    "ModelResponse": "callgate.model",
    "NamedToolChoice": "callgate.model",
    "ExecutionOptions": "callgate.tools",
    "Tool": "callgate.tools",
    "ToolAnnotations": "callgate.tools",
    "ToolSpec": "callgate.tools",
    "tool": "callgate.tools",
    "Toolset": "callgate.toolsets",
}

__all__ = [
    "Agent",
    "Budgets",
    "ErrorKind",
    "ExecutionOptions",
    "Gate",
    "Invocation",
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "NamedToolChoice",
    "PolicyDecision",
    "RunContext",
    "RunResult",
    "SchemaError",
    "TerminalToolError",
    "Tool",
    "ToolAnnotations",
    "ToolCall",
    "ToolDenied",
    "ToolError",
    "ToolResult",
    "ToolRetry",
    "ToolSpec",
    "Toolset",
    "TransientToolError",
    "Usage",
    "tool",
]

if TYPE_CHECKING:
    from callgate.agent import Agent, Budgets, RunResult
    from callgate.context import RunContext
    from callgate.errors import (
        ErrorKind,
        SchemaError,
        TerminalToolError,
        ToolDenied,
        ToolError,
        ToolRetry,
        TransientToolError,
    )
    from callgate.gate.base import Invocation, PolicyDecision
    from callgate.gate.core import Gate
    from callgate.messages import Message, ToolCall, ToolResult, Usage
    from callgate.model import Model, ModelRequest, ModelResponse, NamedToolChoice
    from callgate.tools import ExecutionOptions, Tool, ToolAnnotations, ToolSpec, tool
    from callgate.toolsets import Toolset


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'callgate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
