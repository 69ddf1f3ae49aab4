"""Anthropic Messages API adapter, through the official `anthropic` SDK.

Only translation lives here: neutral messages and tool specs become a Messages API body, and a
reply (or its server-sent events) becomes a `ModelResponse`. The rules the API enforces and this
module therefore guarantees:

- The system prompt is the separate top-level `system` field, never a message.
- Roles alternate. A turn's tool results are `tool_result` blocks inside ONE user message placed
  right after the assistant's `tool_use` turn (results first, then any user text that follows).
- `tool_use.input` is an object. A call whose raw arguments were not valid JSON is replayed with
  `{}`: the gate has already told the model what was wrong, and replaying the bad text would
  make the API refuse the whole conversation.
- Text blocks are never empty (the API rejects them).
- With extended thinking, an assistant turn's `thinking` / `redacted_thinking` blocks are sent
  back unchanged (signature included) at the start of that turn; the API refuses a tool-use turn
  without them. They travel with the conversation in
  `Message.provider_data["anthropic"]["thinking"]`, so a run saved by `callgate.serde` and
  resumed in another process still sends them.

The SDK's own retries are switched off; `call_with_retries` applies one policy to every provider
(429, 5xx and 529 "overloaded" with backoff honouring Retry-After; 400 at once with the API's
message).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from callgate import models
from callgate.dialects.export import to_anthropic
from callgate.errors import ModelError
from callgate.messages import Message, StopReason, ToolCall, ToolResult, Usage
from callgate.models import ModelRequest, ModelResponse, ModelStreamEvent, normalise_request
from callgate.providers._base import ProviderModel
from callgate.providers._common import make_usage, map_stop_reason
from callgate.providers._retry import (
    ProviderFailure,
    RetryPolicy,
    Sleep,
    classify_exception,
    is_retryable_status,
)
from callgate.serde import arguments_object as decode_arguments

try:
    import anthropic
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "AnthropicModel needs the Anthropic SDK: pip install 'callgate[anthropic]'"
    ) from exc

__all__ = [
    "AnthropicModel",
    "AnthropicStreamAssembler",
    "parse_message",
    "render_messages",
    "tool_choice_param",
]

PROVIDER = "anthropic"

_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "stop_sequence": "end_turn",
    "tool_use": "tool_calls",
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",
    "refusal": "content_filter",
    "pause_turn": "other",
}

# An `error` event inside a 200 stream carries only its type; give it the status the same error
# would have had before the stream started so the retry rules stay the same.
_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


# --- request -------------------------------------------------------------------------------


def _tool_result_block(result: ToolResult) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": result.call_id}
    if result.content:
        block["content"] = result.content
    if result.is_error:
        block["is_error"] = True
    return block


def stored_thinking(message: Message) -> list[dict[str, Any]]:
    """The thinking blocks recorded on an assistant turn (`[]` when there are none)."""
    state = (message.provider_data or {}).get(PROVIDER)
    if state is None:
        return []
    blocks = state.get("thinking", []) if isinstance(state, dict) else None
    if not isinstance(blocks, list) or not all(
        isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking") for b in blocks
    ):
        raise ModelError(
            "anthropic: provider_data['anthropic']['thinking'] of an assistant turn must be a "
            "list of thinking / redacted_thinking blocks"
        )
    return [dict(block) for block in blocks]


def _blocks_of(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        if message.tool_result is None:
            raise ModelError("a tool message has no tool_result to send to Anthropic")
        return [_tool_result_block(message.tool_result)]
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    if message.role == "assistant":
        for call in message.tool_calls:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call.id,
                    "name": call.name,
                    "input": decode_arguments(call.arguments),
                }
            )
        if blocks:
            # The turn's thinking goes back unchanged, ahead of everything else it said.
            blocks[:0] = stored_thinking(message)
    return blocks


def render_messages(messages: list[Message]) -> tuple[list[dict[str, Any]], str | None]:
    """Neutral messages -> (Anthropic `messages`, system text found among them).

    `ModelRequest.messages` should not hold system messages; any that slipped in are returned
    separately so they still reach the top-level `system` field rather than being dropped.
    Consecutive entries of one role are merged into one message, and inside a user message the
    `tool_result` blocks are put first, as the API requires. An assistant turn's recorded
    thinking blocks (see `stored_thinking`) are put back in front of it.
    """
    out: list[dict[str, Any]] = []
    system_parts: list[str] = []
    for message in messages:
        if message.role == "system":
            if message.content:
                system_parts.append(message.content)
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks_of(message)
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for entry in out:
        if entry["role"] == "user":
            # Stable: results keep their order, text keeps its order, results come first.
            entry["content"].sort(key=lambda b: b["type"] != "tool_result")
    return out, ("\n\n".join(system_parts) or None)


def tool_choice_param(request: ModelRequest) -> dict[str, Any]:
    """`tool_choice` for a request that has tools, validated by `normalise_request`."""
    choice = request.tool_choice
    param: dict[str, Any]
    if isinstance(choice, models.NamedToolChoice):
        param = {"type": "tool", "name": choice.name}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        param = {"type": "any"}
    else:
        param = {"type": "auto"}
    if not request.parallel_tool_calls:
        param["disable_parallel_tool_use"] = True
    return param


# --- response ------------------------------------------------------------------------------


def _usage(raw: Mapping[str, Any] | None) -> Usage:
    """Input tokens include cache writes and reads (Anthropic counts them apart), so totals
    compare across providers; reads are also reported on their own."""
    raw = raw or {}
    cache_write = raw.get("cache_creation_input_tokens") or 0
    cache_read = raw.get("cache_read_input_tokens") or 0
    base = raw.get("input_tokens") or 0
    total_in = sum(v for v in (base, cache_write, cache_read) if isinstance(v, int))
    return make_usage(total_in, raw.get("output_tokens"), cache_read)


def thinking_blocks(content: Any) -> list[dict[str, Any]]:
    """A reply's `thinking` / `redacted_thinking` blocks, in the form they are replayed in."""
    out: list[dict[str, Any]] = []
    for block in content or []:
        if block.get("type") == "thinking":
            out.append(
                {
                    "type": "thinking",
                    "thinking": block.get("thinking") or "",
                    "signature": block.get("signature") or "",
                }
            )
        elif block.get("type") == "redacted_thinking":
            out.append({"type": "redacted_thinking", "data": block.get("data") or ""})
    return out


def thinking_state(blocks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """`Message.provider_data` for a turn with these thinking blocks (None without any)."""
    return {PROVIDER: {"thinking": blocks}} if blocks else None


def parse_message(data: Mapping[str, Any], *, raw: Any = None) -> ModelResponse:
    """A Messages API reply (as a JSON object) -> `ModelResponse`.

    Text blocks are concatenated; every `tool_use` block becomes a `ToolCall` with its `input`
    object as arguments, in order. Thinking and server-tool blocks are not part of the neutral
    message: thinking blocks are kept, as `thinking_blocks` gives them, in the message's
    `provider_data` (see `thinking_state`).
    """
    text: list[str] = []
    calls: list[ToolCall] = []
    for block in data.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text") or "")
        elif kind == "tool_use":
            raw_input = block.get("input")
            arguments = raw_input if isinstance(raw_input, dict) else {}
            calls.append(ToolCall(str(block.get("id") or ""), str(block.get("name")), arguments))
    stop = map_stop_reason(data.get("stop_reason"), _STOP_REASONS, has_tool_calls=bool(calls))
    message = Message.assistant("".join(text), calls)
    message.provider_data = thinking_state(thinking_blocks(data.get("content")))
    return ModelResponse(
        message=message,
        usage=_usage(data.get("usage")),
        stop_reason=stop,
        model=str(data.get("model") or ""),
        raw=raw if raw is not None else data,
    )


@dataclass(slots=True)
class _Block:
    kind: str
    call_index: int = -1
    id: str = ""
    name: str = ""
    parts: list[str] = field(default_factory=list)
    signature: str = ""


class AnthropicStreamAssembler:
    """Turns Messages API stream events (JSON objects) into callgate stream events.

    Each `tool_use` block's arguments are the exact concatenation of its `partial_json`
    fragments (`"{}"` when it had none), kept per block index so interleaved blocks cannot mix.
    `finish()` builds the same `ModelResponse` the non-streaming call would have returned.
    """

    def __init__(self) -> None:
        self._blocks: dict[int, _Block] = {}
        self._text: list[str] = []
        self._calls: list[ToolCall] = []
        self._usage: dict[str, Any] = {}
        self._stop_reason: str | None = None
        self._model = ""
        self._id = ""
        self.stopped = False
        self._thinking: dict[int, dict[str, Any]] = {}

    @property
    def done(self) -> bool:
        return self.stopped

    def close(self) -> list[ModelStreamEvent]:
        """`ResponseFinished`, or `ModelError` when the stream ended before `message_stop`."""
        if not self.stopped:
            raise ModelError(
                "anthropic: the stream ended before message_stop; the turn is incomplete",
                retryable=True,
            )
        return [models.ResponseFinished(self.finish())]

    @property
    def thinking(self) -> list[dict[str, Any]]:
        """The turn's completed thinking blocks in block order, as they are replayed."""
        return [self._thinking[index] for index in sorted(self._thinking)]

    def feed(self, event: Any) -> list[ModelStreamEvent]:
        """One stream event, as a JSON object or as the SDK's event object."""
        if not isinstance(event, Mapping):
            event = event.model_dump(mode="json")
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self._model = str(message.get("model") or "")
            self._id = str(message.get("id") or "")
            self._merge_usage(message.get("usage"))
            return []
        if kind == "content_block_start":
            return self._start(int(event.get("index", 0)), event.get("content_block") or {})
        if kind == "content_block_delta":
            return self._delta(int(event.get("index", 0)), event.get("delta") or {})
        if kind == "content_block_stop":
            return self._stop(int(event.get("index", 0)))
        if kind == "message_delta":
            delta = event.get("delta") or {}
            if delta.get("stop_reason") is not None:
                self._stop_reason = str(delta["stop_reason"])
            self._merge_usage(event.get("usage"))
            return []
        if kind == "message_stop":
            self.stopped = True
        return []

    def _merge_usage(self, usage: Mapping[str, Any] | None) -> None:
        # message_delta counts are cumulative: the latest non-null value wins.
        for key, value in (usage or {}).items():
            if value is not None:
                self._usage[key] = value

    def _start(self, index: int, block: Mapping[str, Any]) -> list[ModelStreamEvent]:
        kind = str(block.get("type") or "")
        if kind == "tool_use":
            entry = _Block(
                "tool_use", len(self._calls), str(block.get("id") or ""), str(block.get("name"))
            )
            self._blocks[index] = entry
            # Reserve the slot so the call keeps the order in which it started.
            self._calls.append(ToolCall(entry.id, entry.name, "{}"))
            return [models.ToolCallStarted(entry.call_index, entry.id, entry.name)]
        self._blocks[index] = _Block(kind)
        if kind == "redacted_thinking":
            self._thinking[index] = {"type": "redacted_thinking", "data": block.get("data") or ""}
        elif kind == "thinking":
            self._blocks[index].parts.append(str(block.get("thinking") or ""))
            self._blocks[index].signature = str(block.get("signature") or "")
        if kind == "text" and block.get("text"):
            self._text.append(str(block["text"]))
            return [models.TextDelta(str(block["text"]))]
        return []

    def _delta(self, index: int, delta: Mapping[str, Any]) -> list[ModelStreamEvent]:
        entry = self._blocks.get(index)
        kind = delta.get("type")
        if kind == "text_delta":
            text = str(delta.get("text") or "")
            if not text:
                return []
            self._text.append(text)
            return [models.TextDelta(text)]
        if kind in ("thinking_delta", "signature_delta") and entry is not None:
            if kind == "thinking_delta":
                entry.parts.append(str(delta.get("thinking") or ""))
            else:
                entry.signature += str(delta.get("signature") or "")
            return []
        if kind == "input_json_delta":
            if entry is None or entry.kind != "tool_use":
                raise ModelError(
                    f"anthropic stream: input_json_delta for block {index}, which is not a tool_use"
                )
            fragment = str(delta.get("partial_json") or "")
            if not fragment:
                return []
            entry.parts.append(fragment)
            return [models.ToolCallDelta(entry.call_index, entry.id, fragment)]
        return []

    def _stop(self, index: int) -> list[ModelStreamEvent]:
        entry = self._blocks.get(index)
        if entry is not None and entry.kind == "thinking":
            self._thinking[index] = {
                "type": "thinking",
                "thinking": "".join(entry.parts),
                "signature": entry.signature,
            }
            return []
        if entry is None or entry.kind != "tool_use":
            return []
        arguments = "".join(entry.parts) or "{}"
        self._calls[entry.call_index] = ToolCall(entry.id, entry.name, arguments)
        return [
            models.ToolCallFinished(entry.call_index, ToolCall(entry.id, entry.name, arguments))
        ]

    def finish(self) -> ModelResponse:
        """The whole turn. Arguments that decode to an object are given as that object (as in a
        non-streamed reply); anything else stays the raw text so the gate can report it."""
        calls: list[ToolCall] = []
        for call in self._calls:
            arguments: str | dict[str, Any] = call.arguments
            try:
                decoded = json.loads(call.arguments) if isinstance(call.arguments, str) else None
            except ValueError:
                decoded = None
            if isinstance(decoded, dict):
                arguments = decoded
            calls.append(ToolCall(call.id, call.name, arguments))
        stop = map_stop_reason(self._stop_reason, _STOP_REASONS, has_tool_calls=bool(calls))
        message = Message.assistant("".join(self._text), calls)
        message.provider_data = thinking_state(self.thinking)
        return ModelResponse(
            message=message,
            usage=_usage(self._usage),
            stop_reason=stop,
            model=self._model,
            raw={"id": self._id, "streamed": True},
        )


# --- failures ------------------------------------------------------------------------------


def classify_anthropic(exc: BaseException) -> ProviderFailure | None:
    """`classify_exception`, plus `error` events that arrive inside a 200 stream."""
    failure = classify_exception(exc)
    if failure is None or failure.status != 200:
        return failure
    body: Mapping[str, Any] = failure.body if isinstance(failure.body, Mapping) else {}
    inner = body.get("error")
    error: Mapping[str, Any] = inner if isinstance(inner, Mapping) else body
    error_type = str(error.get("type") or "")
    status = _STREAM_ERROR_STATUS.get(error_type, 500)
    message = str(error.get("message") or error_type or failure.message)
    return ProviderFailure(
        message=f"{error_type}: {message}" if error_type else message,
        status=status,
        retryable=is_retryable_status(status),
        body=failure.body,
    )


def _sdk_arguments(body: dict[str, Any]) -> dict[str, Any]:
    """Split a body into the SDK's keyword arguments and `extra_body`.

    Only the fields every SDK release takes as arguments are passed as such; the rest
    (`temperature`, `metadata`, `thinking`, ...) travel in `extra_body`, which the SDK merges
    into the JSON unchanged. Releases differ in which sampling options they still accept as
    arguments, and this keeps the wire body identical whatever the installed version.
    """
    arguments = {k: v for k, v in body.items() if k in _SDK_ARGUMENTS}
    extra = {k: v for k, v in body.items() if k not in _SDK_ARGUMENTS}
    if extra:
        arguments["extra_body"] = extra
    return arguments


_SDK_ARGUMENTS = frozenset({"model", "max_tokens", "messages", "system", "tools", "tool_choice"})


# --- the model -----------------------------------------------------------------------------


class AnthropicModel(ProviderModel):
    """A Claude model behind the Messages API.

    `client` may be a configured `anthropic.AsyncAnthropic`; otherwise one is built from
    `api_key` / `base_url` (the SDK's environment variables apply when they are None). Either
    way the SDK's own retries are disabled and `retry` (default: `max_retries` retries with
    exponential backoff) decides instead, so a failure is retried exactly once per policy.
    `extra_body` is merged into every request body (e.g. `{"thinking": ...}`,
    `{"metadata": ...}`); `ModelRequest.extra` is merged on top of it per request.

    With extended thinking, a turn's thinking blocks are recorded in its message's
    `provider_data` and sent back with it (see the module notes), so the model object itself
    keeps no conversation state: any instance, in any process, can continue a conversation.
    """

    def __init__(
        self,
        model: str,
        *,
        client: anthropic.AsyncAnthropic | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens: int = 1024,
        max_retries: int = 3,
        timeout: float | None = 120.0,
        retry: RetryPolicy | None = None,
        extra_body: Mapping[str, Any] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        super().__init__(
            PROVIDER, classify_anthropic, model, retry=retry, max_retries=max_retries, sleep=sleep
        )
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        if client is not None and (api_key is not None or base_url is not None):
            raise ValueError("pass either client or api_key/base_url, not both")
        if client is None:
            client = anthropic.AsyncAnthropic(
                api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout
            )
        else:
            client = client.with_options(max_retries=0)
        self._client = client

    @property
    def client(self) -> anthropic.AsyncAnthropic:
        return self._client

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The Messages API request body for `request` (what the SDK sends, minus `stream`)."""
        request = normalise_request(request)
        messages, _ = render_messages(request.messages)
        system = request.system
        body: dict[str, Any] = {
            "model": self._model,
            "max_tokens": request.max_tokens or self.max_tokens,
            "messages": messages,
        }
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.tools:
            body["tools"] = [to_anthropic(spec) for spec in request.tools]
            body["tool_choice"] = tool_choice_param(request)
        body.update(self.extra_body)
        body.update(request.extra)
        return body

    async def request(self, request: ModelRequest) -> ModelResponse:
        body = self.build_body(request)
        reply = await self._send(lambda: self._client.messages.create(**_sdk_arguments(body)))
        return parse_message(reply.model_dump(mode="json"), raw=reply)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Stream one turn through the shared loop (`callgate.providers._stream`).

        Everything up to the first visible event (HTTP errors, an `error` event right after
        `message_start`) is retried like `request`; a failure after events were delivered
        raises `ModelError` instead, since a half-delivered turn cannot be resumed.
        """
        body = self.build_body(request)
        async for event in self._stream(
            lambda: self._client.messages.create(**_sdk_arguments(body), stream=True),
            AnthropicStreamAssembler,
        ):
            yield event
