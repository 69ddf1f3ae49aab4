"""The agent loop: model turns, gated tool calls, guards, streaming events, pause and resume."""

from callgate.agent.budgets import Budgets, Price
from callgate.agent.guards import LoopBreaker, RunGuards
from callgate.agent.loop import (
    Agent,
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
    "LoopBreaker",
    "ModelTurn",
    "Price",
    "RunFinished",
    "RunGuards",
    "RunResult",
    "ToolFinished",
    "ToolStarted",
    "ToolStatus",
    "TurnStarted",
]
