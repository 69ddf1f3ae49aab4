"""The agent loop: model turns, gated tool calls, guards, streaming events, pause and resume."""

from callgate.agent.loop import (
    Agent,
    Budgets,
    ModelTurn,
    RunFinished,
    RunResult,
    ToolFinished,
    ToolStarted,
    ToolStatus,
    TurnStarted,
)

__all__ = [
    "Agent",
    "Budgets",
    "ModelTurn",
    "RunFinished",
    "RunResult",
    "ToolFinished",
    "ToolStarted",
    "ToolStatus",
    "TurnStarted",
]
