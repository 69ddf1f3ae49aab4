"""The `Model` protocol: what the agent loop needs from any provider.

A provider adapter implements `request` (and optionally `stream`) by translating a `ModelRequest`
into its wire format and the reply back into a `ModelResponse`. Adapters never apply policy and
never run tools. Every adapter first passes the request through `normalise_request`, so the rules
a request must follow (which `tool_choice` is valid, where system text goes) are decided here,
once, and each adapter only translates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from callgate.errors import InvalidModelRequest
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


def normalise_request(request: ModelRequest) -> ModelRequest:
    """The request as every provider translates it.

    - `tool_choice` is checked against the tools offered, with one message for every provider:
      a named tool that is not offered, or "required" with no tools, raises
      `InvalidModelRequest` (no provider silently falls back to "auto").
    - System messages found among `messages` are hoisted into `system` (after the request's own
      system text, in order), so no provider has to know where they may appear.

    Returns `request` itself when nothing needed changing.
    """
    choice = request.tool_choice
    names = [spec.name for spec in request.tools]
    if isinstance(choice, NamedToolChoice):
        if choice.name not in names:
            offered = ", ".join(names) or "no tools"
            raise InvalidModelRequest(
                f"tool_choice names {choice.name!r}, which is not among the request's tools "
                f"({offered})"
            )
    elif choice not in ("auto", "none", "required"):
        raise InvalidModelRequest(
            f"unknown tool_choice {choice!r}; use 'auto', 'none', 'required' or "
            "NamedToolChoice(name)"
        )
    elif choice == "required" and not names:
        raise InvalidModelRequest(
            "tool_choice 'required' needs at least one tool, and the request has no tools"
        )
    if not any(m.role == "system" for m in request.messages):
        return request
    parts = [request.system] if request.system else []
    parts += [m.content for m in request.messages if m.role == "system" and m.content]
    return dataclasses.replace(
        request,
        system="\n\n".join(parts) or None,
        messages=[m for m in request.messages if m.role != "system"],
    )


@dataclass(frozen=True, slots=True)
class Fallback:
    """A model that did not answer a turn and why (a failure passed on by
    `callgate.providers.fallback.FallbackModel`, or a turn handed over by `SplitModel`)."""

    model: str
    error: str
    status: int | None = None


@dataclass(slots=True)
class ModelResponse:
    """One assistant turn, normalised: text and/or tool calls, why it stopped, what it cost.

    `fallbacks` lists the models that failed this turn before `model` answered it."""

    message: Message
    usage: Usage = field(default_factory=Usage)
    stop_reason: StopReason = "end_turn"
    model: str = ""
    raw: Any = None
    fallbacks: list[Fallback] = field(default_factory=list)

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


class StreamAssembler(Protocol):
    """What a provider supplies to the shared stream loop (`callgate.providers._stream`): it
    turns the SDK's stream events into callgate's, and says when the turn is over."""

    @property
    def done(self) -> bool:
        """True once the provider signalled the end of the turn (stop reading)."""
        ...

    def feed(self, event: Any) -> list[ModelStreamEvent]:
        """The callgate events one SDK event produces (often none)."""
        ...

    def close(self) -> list[ModelStreamEvent]:
        """The events that complete the turn, ending with `ResponseFinished`; raises
        `ModelError` when the stream ended without a complete turn."""
        ...


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
