"""OpenAI Chat Completions, and any server that speaks it (vLLM, llama.cpp, Ollama, LM Studio...).

Translation only, in both directions:

- request: the system prompt becomes the first system message; assistant turns carry
  ``tool_calls`` with the arguments as JSON text; every tool result becomes its own ``tool``
  message bound by ``tool_call_id``; tools are rendered by `callgate.dialects.export.to_openai_chat`.
- response: text and any number of tool calls per turn, arguments kept as the raw string the
  model produced (the gate decodes and validates them, so malformed JSON reaches it intact).
- streaming: tool-call fragments are assembled per ``index``, so parallel calls whose fragments
  arrive interleaved are never merged or dropped; ``ToolCallFinished`` carries exactly the
  concatenation of the ``ToolCallDelta`` fragments that preceded it.

Servers without a tool-call parser leave calls in the text; ``text_tool_calls`` turns on
`callgate.providers.textcalls` for them. Failures go through `callgate.providers._common`: the
SDK's own retries are switched off so every provider retries the same, observable way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from openai import AsyncOpenAI, OpenAIError

from callgate.dialects.export import StrictMode, to_openai_chat
from callgate.messages import Message, StopReason, ToolCall, Usage
from callgate.models import (
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    NamedToolChoice,
    ResponseFinished,
    TextDelta,
    ToolCallDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from callgate.providers._common import (
    ProviderFailure,
    RetryPolicy,
    call_with_retries,
    classify_exception,
    ensure_text,
    error_message_from_body,
    make_usage,
    map_stop_reason,
)
from callgate.providers.textcalls import parse_text_tool_calls

__all__ = ["OpenAIChatModel", "TextToolCalls"]

log = logging.getLogger("callgate.providers.openai")

TextToolCalls = Literal["off", "hermes", "json", "auto"]

_FINISH_REASONS: dict[str, StopReason] = {
    "stop": "end_turn",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "length": "max_tokens",
    "content_filter": "content_filter",
}

Sleep = Callable[[float], Awaitable[None]]


# --- helpers shared with openai_responses ------------------------------------------------------


def make_client(
    client: AsyncOpenAI | None,
    *,
    base_url: str | None,
    api_key: str | None,
    timeout: float | None,
) -> AsyncOpenAI:
    """The client to use, with SDK retries off (callgate retries) and our timeout applied.

    A local OpenAI-compatible server usually ignores the key, so when a `base_url` is given and
    no key is available anywhere a placeholder is sent rather than failing at construction.
    """
    if client is not None:
        if timeout is None:
            return client.with_options(max_retries=0)
        return client.with_options(max_retries=0, timeout=timeout)
    if api_key is None and base_url is not None and not os.environ.get("OPENAI_API_KEY"):
        api_key = "not-needed"
    if timeout is None:
        return AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0)
    return AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout)


def classify_openai(exc: BaseException) -> ProviderFailure | None:
    """`classify_exception`, plus the SDK's status-less errors (e.g. an error event mid-stream)."""
    failure = classify_exception(exc)
    if failure is None and isinstance(exc, OpenAIError):
        body = getattr(exc, "body", None)
        return ProviderFailure(message=str(getattr(exc, "message", None) or exc), body=body)
    return failure


def arguments_text(arguments: Any) -> str:
    """Tool-call arguments as the JSON text OpenAI expects; missing or blank means ``{}``.

    Blank text gets "{}" appended rather than replaced, so a streamed call whose whitespace
    fragments were already delivered still ends as the exact concatenation of its fragments.
    """
    if arguments is None:
        return "{}"
    if isinstance(arguments, str):
        return arguments if arguments.strip() else arguments + "{}"
    return json.dumps(arguments, ensure_ascii=False, default=str)


def fallback_call_id(seed: str, index: int) -> str:
    """A deterministic id for a call the server sent without one."""
    digest = hashlib.sha256(f"{seed}\x00{index}".encode()).hexdigest()
    return f"call_{digest[:24]}"


def unique_ids(calls: list[ToolCall]) -> list[ToolCall]:
    """Make call ids unique within a turn: results are matched to calls by id alone."""
    seen: set[str] = set()
    for n, call in enumerate(calls):
        if call.id in seen:
            suffix = 2
            while f"{call.id}_{suffix}" in seen:
                suffix += 1
            log.warning("duplicate tool-call id %r at position %d renamed", call.id, n)
            call.id = f"{call.id}_{suffix}"
        seen.add(call.id)
    return calls


# --- the model ---------------------------------------------------------------------------------


class OpenAIChatModel:
    """`callgate.models.StreamingModel` over the Chat Completions API.

    - `client`: an `openai.AsyncOpenAI` to reuse (its retries are turned off on a copy);
      otherwise one is built from `base_url` / `api_key` (environment variables as usual).
    - `strict`: True/False forces strict tool schemas on or off, "auto" uses them wherever the
      schema allows (see `callgate.dialects.export`); None follows `ModelRequest.strict`.
    - `parallel_tool_calls`: False forbids several calls per turn whatever the request says.
    - `text_tool_calls`: also read calls the model wrote as text ("hermes" tags, "json", or
      "auto" for both); used only when the server returned no structured calls. In streaming
      mode the text is then held back until the turn ends, because a call may be anywhere in it.
    - `max_retries` / `retry`: see `callgate.providers._common.RetryPolicy`; `retry` wins.
    - `timeout`: seconds per HTTP attempt (None keeps the SDK default).
    - `max_tokens_field`: OpenAI's own models want "max_completion_tokens"; many compatible
      servers only understand "max_tokens".
    """

    def __init__(
        self,
        model: str,
        *,
        client: AsyncOpenAI | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        strict: StrictMode | None = None,
        parallel_tool_calls: bool = True,
        text_tool_calls: TextToolCalls = "off",
        max_retries: int = 3,
        timeout: float | None = 60.0,
        retry: RetryPolicy | None = None,
        max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_completion_tokens",
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not model:
            raise ValueError("model must be a non-empty model id")
        if text_tool_calls not in ("off", "hermes", "json", "auto"):
            raise ValueError(
                "text_tool_calls must be 'off', 'hermes', 'json' or 'auto', "
                f"not {text_tool_calls!r}"
            )
        if max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise ValueError("max_tokens_field must be 'max_tokens' or 'max_completion_tokens'")
        self.model = model
        self.strict = strict
        self.parallel_tool_calls = parallel_tool_calls
        self.text_tool_calls: TextToolCalls = text_tool_calls
        self.retry = retry if retry is not None else RetryPolicy(max_retries=max_retries)
        self.max_tokens_field = max_tokens_field
        self._sleep = sleep
        self._client = make_client(client, base_url=base_url, api_key=api_key, timeout=timeout)

    @property
    def name(self) -> str:
        return self.model

    # -- request building -------------------------------------------------------------------

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body (minus `stream`) for `request`; raises ValueError on an invalid one."""
        body: dict[str, Any] = {"model": self.model, "messages": chat_messages(request)}
        if request.tools:
            # a run asking for strict schemas gets them wherever a tool allows ("auto"); forcing
            # them on every tool is the model option strict=True
            strict = (
                self.strict if self.strict is not None else ("auto" if request.strict else False)
            )
            body["tools"] = [to_openai_chat(spec, strict=strict) for spec in request.tools]
            body["tool_choice"] = chat_tool_choice(request)
            body["parallel_tool_calls"] = bool(
                self.parallel_tool_calls and request.parallel_tool_calls
            )
        elif isinstance(request.tool_choice, NamedToolChoice) or request.tool_choice == "required":
            raise ValueError(f"tool_choice {request.tool_choice!r} needs at least one tool")
        if request.max_tokens is not None:
            body[self.max_tokens_field] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    def _create_kwargs(self, request: ModelRequest) -> dict[str, Any]:
        kwargs = self.build_body(request)
        if request.extra:
            # Provider-specific fields (seed, top_p, response_format, server extensions) go
            # through untouched; extra_body keeps the SDK from rejecting names it does not know.
            kwargs["extra_body"] = dict(request.extra)
        return kwargs

    # -- one turn ---------------------------------------------------------------------------

    async def request(self, request: ModelRequest) -> ModelResponse:
        kwargs = self._create_kwargs(request)
        completion = await call_with_retries(
            lambda: self._client.chat.completions.create(**kwargs),
            provider="openai",
            policy=self.retry,
            classify=classify_openai,
            sleep=self._sleep,
        )
        return self._parse_completion(completion)

    def _parse_completion(self, completion: Any) -> ModelResponse:
        choices = getattr(completion, "choices", None) or []
        if not choices:
            # Some compatible servers answer 200 with an error body instead of an HTTP error.
            body = _dump(completion)
            detail = error_message_from_body(body)
            what = "the response contained no choices" + (f": {detail}" if detail else "")
            raise ProviderFailure(what, body=body).to_model_error("openai")
        choice = choices[0]
        message = getattr(choice, "message", None)
        seed = str(getattr(completion, "id", "") or "")
        calls: list[ToolCall] = []
        for n, tc in enumerate(getattr(message, "tool_calls", None) or []):
            fn = getattr(tc, "function", None)
            if fn is None:  # a non-function (custom) tool call: we never offer those
                log.warning("ignoring non-function tool call of type %r", getattr(tc, "type", None))
                continue
            call_id = getattr(tc, "id", None) or fallback_call_id(seed, n)
            name = getattr(fn, "name", None) or ""
            calls.append(ToolCall(call_id, name, arguments_text(getattr(fn, "arguments", None))))
        legacy = getattr(message, "function_call", None)
        if not calls and legacy is not None and getattr(legacy, "name", None):
            calls.append(
                ToolCall(
                    fallback_call_id(seed, 0),
                    legacy.name,
                    arguments_text(getattr(legacy, "arguments", None)),
                )
            )
        text = ensure_text(getattr(message, "content", None))
        refusal = getattr(message, "refusal", None)
        return self._finish(
            text=text,
            refusal=refusal if isinstance(refusal, str) else None,
            calls=calls,
            finish_reason=getattr(choice, "finish_reason", None),
            usage=_chat_usage(getattr(completion, "usage", None)),
            model=str(getattr(completion, "model", None) or self.model),
            seed=seed,
            raw=completion,
        )

    def _finish(
        self,
        *,
        text: str,
        refusal: str | None,
        calls: list[ToolCall],
        finish_reason: str | None,
        usage: Usage,
        model: str,
        seed: str,
        raw: Any,
    ) -> ModelResponse:
        """Shared by the plain and the streamed path so both return identical responses."""
        if not calls and self.text_tool_calls != "off" and text:
            text, calls = parse_text_tool_calls(text, self.text_tool_calls, id_seed=seed)
        calls = unique_ids(calls)
        stop = map_stop_reason(finish_reason, _FINISH_REASONS, has_tool_calls=bool(calls))
        if refusal and not text and not calls:
            text, stop = refusal, "content_filter"
        return ModelResponse(
            message=Message.assistant(text, calls),
            usage=usage,
            stop_reason=stop,
            model=model,
            raw=raw,
        )

    # -- streaming --------------------------------------------------------------------------

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Stream one turn. Failures before the first byte are retried; later ones raise
        `ModelError` (events already delivered cannot be taken back)."""
        kwargs = self._create_kwargs(request)
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        stream = await call_with_retries(
            lambda: self._client.chat.completions.create(**kwargs),
            provider="openai",
            policy=self.retry,
            classify=classify_openai,
            sleep=self._sleep,
        )
        state = _ChatStream(hold_text=self.text_tool_calls != "off")
        try:
            try:
                async for chunk in stream:
                    for event in state.feed(chunk):
                        yield event
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:
                failure = classify_openai(exc)
                if failure is None:
                    raise
                raise failure.to_model_error("openai") from exc
        finally:
            await stream.close()
        if not state.chunks:
            raise ProviderFailure(
                "the stream ended with no data (does the server support streaming?)"
            ).to_model_error("openai")
        response = self._finish(
            text=state.text(),
            refusal=state.refusal(),
            calls=state.calls(),
            finish_reason=state.finish_reason if state.finish_reason is not None else "",
            usage=state.usage,
            model=state.model or self.model,
            seed=state.response_id,
            raw=None,
        )
        for event in state.close(response):
            yield event
        yield ResponseFinished(response)


# --- request pieces ----------------------------------------------------------------------------


def chat_messages(request: ModelRequest) -> list[dict[str, Any]]:
    """Neutral messages as Chat Completions messages (system prompt first)."""
    out: list[dict[str, Any]] = []
    if request.system:
        out.append({"role": "system", "content": request.system})
    for n, msg in enumerate(request.messages):
        if msg.role in ("system", "user"):
            out.append({"role": msg.role, "content": ensure_text(msg.content)})
        elif msg.role == "assistant":
            # "content" is always present (empty next to tool calls): OpenAI accepts that, and
            # chat templates of compatible servers index it unconditionally.
            entry: dict[str, Any] = {"role": "assistant", "content": ensure_text(msg.content)}
            if msg.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.name,
                            "arguments": arguments_text(call.arguments),
                        },
                    }
                    for call in msg.tool_calls
                ]
            out.append(entry)
        elif msg.role == "tool":
            result = msg.tool_result
            if result is None:
                raise ValueError(f"messages[{n}] has role 'tool' but no tool_result")
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": result.call_id,
                    "content": ensure_text(result.content),
                }
            )
        else:
            raise ValueError(f"messages[{n}] has unknown role {msg.role!r}")
    return out


def chat_tool_choice(request: ModelRequest) -> str | dict[str, Any]:
    choice = request.tool_choice
    if isinstance(choice, NamedToolChoice):
        names = {spec.name for spec in request.tools}
        if choice.name not in names:
            raise ValueError(
                f"tool_choice names {choice.name!r}, which is not among the request's tools"
            )
        return {"type": "function", "function": {"name": choice.name}}
    if choice in ("auto", "none", "required"):
        return choice
    raise ValueError(f"unknown tool_choice {choice!r}")


def _chat_usage(usage: Any) -> Usage:
    if usage is None:
        return make_usage()
    details = getattr(usage, "prompt_tokens_details", None)
    return make_usage(
        getattr(usage, "prompt_tokens", None),
        getattr(usage, "completion_tokens", None),
        getattr(details, "cached_tokens", None) if details is not None else None,
    )


def _dump(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    return dump() if callable(dump) else obj


# --- stream assembly ---------------------------------------------------------------------------


@dataclass
class _Slot:
    position: int
    wire_id: str = ""  # the id as the server sent it (used to tell calls apart)
    id: str = ""  # the id we announce: unique in the turn
    name: str = ""
    parts: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    announced: bool = False


class _ChatStream:
    """Turns chat.completion.chunk objects into neutral stream events.

    Calls are keyed by the chunk's tool-call ``index``. A fragment for a known index that brings
    a *different* id starts a new call: some compatible servers number every call 0. A call is
    announced once its name is known; argument fragments that arrive earlier are held and sent
    right after the announcement, so nothing is lost or reordered.
    """

    def __init__(self, *, hold_text: bool) -> None:
        self.hold_text = hold_text
        self._text: list[str] = []
        self._refusal: list[str] = []
        self._slots: list[_Slot] = []
        self._by_index: dict[int, _Slot] = {}
        self.finish_reason: str | None = None
        self.usage = make_usage()
        self.model = ""
        self.response_id = ""
        self.chunks = 0

    def feed(self, chunk: Any) -> list[ModelStreamEvent]:
        events: list[ModelStreamEvent] = []
        self.chunks += 1
        if not self.response_id and getattr(chunk, "id", None):
            self.response_id = str(chunk.id)
        if not self.model and getattr(chunk, "model", None):
            self.model = str(chunk.model)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = _chat_usage(usage)
        for choice in getattr(chunk, "choices", None) or []:
            if (getattr(choice, "index", 0) or 0) != 0:
                continue  # we never ask for n > 1
            delta = getattr(choice, "delta", None)
            if delta is not None:
                content = getattr(delta, "content", None)
                if content:
                    self._text.append(content)
                    if not self.hold_text:
                        events.append(TextDelta(content))
                refusal = getattr(delta, "refusal", None)
                if refusal:
                    self._refusal.append(refusal)
                for tc in getattr(delta, "tool_calls", None) or []:
                    events.extend(self._tool_fragment(tc))
            reason = getattr(choice, "finish_reason", None)
            if reason:
                self.finish_reason = str(reason)
        return events

    def _tool_fragment(self, tc: Any) -> list[ModelStreamEvent]:
        index = getattr(tc, "index", None)
        wire_id = getattr(tc, "id", None) or ""
        fn = getattr(tc, "function", None)
        name = (getattr(fn, "name", None) or "") if fn is not None else ""
        args = (getattr(fn, "arguments", None) or "") if fn is not None else ""
        if not isinstance(args, str):
            args = arguments_text(args)
        key = index if isinstance(index, int) else len(self._slots)
        slot = self._by_index.get(key)
        if slot is None or (wire_id and slot.wire_id and wire_id != slot.wire_id):
            slot = _Slot(position=len(self._slots))
            self._slots.append(slot)
            self._by_index[key] = slot
        if wire_id and not slot.wire_id:
            slot.wire_id = wire_id
        if name and not slot.name:
            slot.name = name
        events: list[ModelStreamEvent] = []
        if not slot.announced and slot.name:
            self._claim_id(slot)
            slot.announced = True
            events.append(ToolCallStarted(slot.position, slot.id, slot.name))
            if slot.pending:
                events.append(ToolCallDelta(slot.position, slot.id, "".join(slot.pending)))
                slot.pending.clear()
        if args:
            slot.parts.append(args)
            if slot.announced:
                events.append(ToolCallDelta(slot.position, slot.id, args))
            else:
                slot.pending.append(args)
        return events

    def _claim_id(self, slot: _Slot) -> None:
        """Fix the slot's id, unique in this turn, before anything is announced with it."""
        if slot.id:
            return
        base = slot.wire_id or fallback_call_id(self.response_id, slot.position)
        taken = {s.id for s in self._slots if s is not slot and s.id}
        candidate, suffix = base, 2
        while candidate in taken:
            candidate, suffix = f"{base}_{suffix}", suffix + 1
        if candidate != base:
            log.warning("duplicate tool-call id %r in stream renamed to %r", base, candidate)
        slot.id = candidate

    def text(self) -> str:
        return "".join(self._text)

    def refusal(self) -> str | None:
        return "".join(self._refusal) or None

    def calls(self) -> list[ToolCall]:
        out = []
        for slot in self._slots:
            self._claim_id(slot)
            out.append(ToolCall(slot.id, slot.name, arguments_text("".join(slot.parts))))
        return out

    def close(self, response: ModelResponse) -> list[ModelStreamEvent]:
        """Events that complete the stream so it matches `response` exactly.

        Held-back text (text tool-call mode) is released; calls not announced yet (found only in
        the text, or whose name never arrived) are announced now; every call gets its
        `ToolCallFinished`, preceded by whatever part of its arguments was not streamed yet
        (all of it, or "{}" for a call whose arguments never arrived), so the concatenation
        promise holds.
        """
        events: list[ModelStreamEvent] = []
        if self.hold_text and response.text:
            events.append(TextDelta(response.text))
        for position, call in enumerate(response.tool_calls):
            slot = self._slots[position] if position < len(self._slots) else None
            if slot is not None and slot.announced:
                sent = "".join(slot.parts)
            else:
                events.append(ToolCallStarted(position, call.id, call.name))
                sent = ""
            full = arguments_text(call.arguments)
            remainder = full[len(sent) :] if full.startswith(sent) else full
            if remainder:
                events.append(ToolCallDelta(position, call.id, remainder))
            events.append(ToolCallFinished(position, call))
        return events
