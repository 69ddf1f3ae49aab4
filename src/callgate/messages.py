"""Provider-neutral conversation types.

Every provider adapter translates its wire format into these and back; nothing past the adapters
ever sees a provider's own shapes. They are plain slotted dataclasses rather than Pydantic models
because they sit on the hot path of every call; `callgate.serde` turns them into JSON when a run is
persisted or audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
StopReason = Literal["end_turn", "tool_calls", "max_tokens", "content_filter", "error", "other"]


@dataclass(slots=True)
class ToolCall:
    """A call the model proposed. Nothing has been checked yet.

    `arguments` is kept exactly as the provider delivered it: the raw JSON text for OpenAI-style
    providers (so duplicate keys or NaN can still be detected), a decoded mapping for providers
    whose wire format already carries an object (Anthropic, Gemini).
    """

    id: str
    name: str
    arguments: str | dict[str, Any] = "{}"
    #: opaque provider state that must travel back with this call on the next request
    #: (e.g. Gemini thought signatures); JSON-serialisable, persisted with paused runs
    provider_data: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ArgumentIssue:
    """One problem with a call's arguments, as the application sees it (the model reads the
    rendered text): the field path, the kind of problem and the validator's message."""

    path: tuple[str | int, ...]
    kind: str
    message: str


@dataclass(slots=True)
class ToolResult:
    """The outcome of one proposed call, matched to it by `call_id`.

    `content` is what the model reads (already rendered and sanitised). `error_kind` is None on
    success and one of the `callgate.errors.ErrorKind` values otherwise. `data` keeps the tool's
    structured return value for the application; it is never sent to a model as-is.

    The fields after `attempts` are facts for the application, never sent to a model: `rule`
    names what refused or decided the call (a policy rule, "loop:repeat", "ratelimit:..."),
    `approval_id` the approval that paused or authorised it, `issues` the argument problems,
    `correction_budget_exhausted` that no correction is left, `error_class` the exception a
    crashing tool raised, `deprecated` the tool's deprecation note.
    """

    call_id: str
    name: str
    content: str
    error_kind: str | None = None
    data: Any = None
    duration_s: float = 0.0
    attempts: int = 1
    rule: str | None = None
    approval_id: str | None = None
    issues: tuple[ArgumentIssue, ...] = ()
    correction_budget_exhausted: bool = False
    error_class: str | None = None
    deprecated: str | None = None

    @property
    def is_error(self) -> bool:
        return self.error_kind is not None


@dataclass(slots=True)
class Message:
    """One conversation entry.

    - `system` / `user`: `content` only.
    - `assistant`: optional `content` text and any number of `tool_calls` (a turn may have both).
    - `tool`: exactly one `tool_result`.
    """

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_result: ToolResult | None = None
    #: opaque provider state of this turn that must be sent back verbatim (e.g. Anthropic
    #: thinking blocks, OpenAI Responses reasoning items); JSON-serialisable, persisted with
    #: paused runs. Keyed by provider name so one conversation can move between providers.
    provider_data: dict[str, Any] | None = None

    @classmethod
    def system(cls, text: str) -> Message:
        return cls("system", text)

    @classmethod
    def user(cls, text: str) -> Message:
        return cls("user", text)

    @classmethod
    def assistant(cls, text: str = "", tool_calls: list[ToolCall] | None = None) -> Message:
        return cls("assistant", text, list(tool_calls or []))

    @classmethod
    def tool(cls, result: ToolResult) -> Message:
        return cls("tool", result.content, tool_result=result)


@dataclass(slots=True)
class Usage:
    """Token usage of one or more model requests, normalised across providers."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    requests: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.requests + other.requests,
            self.cost_usd + other.cost_usd,
        )
