"""The `Model` protocol: what the agent loop needs from any provider.

A provider adapter implements `request` (and optionally `stream`) by translating a `ModelRequest`
into its wire format and the reply back into a `ModelResponse`. Adapters never apply policy and
never run tools.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from callgate.messages import Message, StopReason, ToolCall, Usage
from callgate.tools.definition import ToolSpec


@dataclass(frozen=True, slots=True)
class NamedToolChoice:
    """Force the model to call this one tool."""

    name: str


ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice


@dataclass(slots=True)
class ModelRequest:
    """Everything a provider needs for one request.

    `system` is kept apart from `messages` because providers disagree on where it goes (Anthropic
    and Gemini take it as a separate field). `messages` never contains system messages.
    `strict` asks for strict tool schemas where the provider supports them (OpenAI).
    """

    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    system: str | None = None
    tool_choice: ToolChoice = "auto"
    parallel_tool_calls: bool = True
    strict: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ModelResponse:
    """One assistant turn, normalised: text and/or tool calls, why it stopped, what it cost."""

    message: Message
    usage: Usage = field(default_factory=Usage)
    stop_reason: StopReason = "end_turn"
    model: str = ""
    raw: Any = None

    @property
    def tool_calls(self) -> list[ToolCall]:
        return self.message.tool_calls

    @property
    def text(self) -> str:
        return self.message.content


# --- streaming ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """A tool call began streaming. `index` is its position within the turn."""

    index: int
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a call's JSON arguments, in order, for the call at `index`."""

    index: int
    id: str
    arguments_delta: str


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    """A call's arguments are complete. `call.arguments` is the exact concatenation of deltas."""

    index: int
    call: ToolCall


@dataclass(frozen=True, slots=True)
class ResponseFinished:
    """The turn ended; `response` equals what `request` would have returned."""

    response: ModelResponse


ModelStreamEvent = TextDelta | ToolCallStarted | ToolCallDelta | ToolCallFinished | ResponseFinished


@runtime_checkable
class Model(Protocol):
    """A language model that can be asked for one turn."""

    @property
    def name(self) -> str: ...

    async def request(self, request: ModelRequest) -> ModelResponse: ...


@runtime_checkable
class StreamingModel(Model, Protocol):
    """A model that can also stream a turn. The final event is always `ResponseFinished`."""

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]: ...
