"""OpenAI Chat Completions, and any server that speaks it (vLLM, llama.cpp, Ollama, LM Studio...).

Translation only, in both directions:

- request: the system prompt becomes the first system message; assistant turns carry
  ``tool_calls`` with the arguments as JSON text; every tool result becomes its own ``tool``
  message bound by ``tool_call_id``; tools are rendered by
  `callgate.dialects.export.to_openai_chat`. The request is first normalised
  (`callgate.models.normalise_request`).
- response: text and any number of tool calls per turn, arguments kept as the raw string the
  model produced (the gate decodes and validates them, so malformed JSON reaches it intact).
- streaming: tool-call fragments are assembled per ``index``, so parallel calls whose fragments
  arrive interleaved are never merged or dropped; ``ToolCallFinished`` carries exactly the
  concatenation of the ``ToolCallDelta`` fragments that preceded it.

Servers without a tool-call parser leave calls in the text; ``text_tool_calls`` turns on
`callgate.providers.textcalls` for them. Failures go through `callgate.providers._retry`: the
SDK's own retries are switched off so every provider retries the same, observable way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from openai import AsyncOpenAI, OpenAIError
from typing_extensions import TypedDict, Unpack

from callgate import models
from callgate.dialects.compat import SCHEMA_COMPATS, SchemaCompat, simplify_schema
from callgate.dialects.export import StrictMode, to_openai_chat
from callgate.errors import ModelError
from callgate.messages import Message, StopReason, ToolCall, ToolResult, Usage
from callgate.models import (
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    NamedToolChoice,
    normalise_request,
)
from callgate.providers._base import ProviderModel
from callgate.providers._common import ensure_text, make_usage, map_stop_reason
from callgate.providers._retry import (
    ProviderFailure,
    RetryPolicy,
    Sleep,
    classify_exception,
    error_message_from_body,
)
from callgate.providers.textcalls import parse_text_tool_calls
from callgate.tools.definition import ToolSpec

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


def is_openai_host(base_url: str) -> bool:
    """Whether `base_url` is OpenAI's own API (many workers per model) rather than a server
    someone runs, where one slow request may occupy the only slot (see `RetryPolicy`)."""
    host = (urlsplit(base_url).hostname or "").lower()
    return host == "api.openai.com"


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


# --- what both OpenAI adapters share -----------------------------------------------------------


class OpenAIOptions(TypedDict, total=False):
    """The constructor keywords both OpenAI adapters take (see `OpenAIChatModel`); each
    adapter adds its own and passes these on to `OpenAIBase` untouched."""

    client: AsyncOpenAI | None
    base_url: str | None
    api_key: str | None
    strict: StrictMode | None
    parallel_tool_calls: bool
    max_retries: int
    timeout: float | None
    retry: RetryPolicy | None
    retry_timeouts: bool | None
    max_tokens: int | None
    extra_body: Mapping[str, Any] | None
    sleep: Sleep


class OpenAIBase(ProviderModel):
    """The client, options and retries the Chat and Responses adapters share, and the body
    fields they fill the same way; each subclass only translates its API's body and reply."""

    def __init__(
        self,
        model: str,
        *,
        client: AsyncOpenAI | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        strict: StrictMode | None = None,
        parallel_tool_calls: bool = True,
        max_retries: int = 3,
        timeout: float | None = 60.0,
        retry: RetryPolicy | None = None,
        retry_timeouts: bool | None = None,
        max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(
            "openai", classify_openai, model, retry=retry, max_retries=max_retries, sleep=sleep
        )
        self.strict = strict
        self.parallel_tool_calls = parallel_tool_calls
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        self._client = make_client(client, base_url=base_url, api_key=api_key, timeout=timeout)
        if retry_timeouts is None:
            retry_timeouts = self.retry.retry_timeouts
        if retry_timeouts is None:
            retry_timeouts = is_openai_host(str(self._client.base_url))
        self.retry = dataclasses.replace(self.retry, retry_timeouts=retry_timeouts)

    @property
    def model(self) -> str:
        return self._model

    def _shared_fields(
        self,
        request: ModelRequest,
        body: dict[str, Any],
        *,
        export: Callable[..., dict[str, Any]],
        named: Callable[[str], dict[str, Any]],
        max_tokens_field: str,
    ) -> dict[str, Any]:
        """Tools, tool_choice, parallel calls, the token cap and temperature, into `body`."""
        if request.tools:
            # a run asking for strict schemas gets them wherever a tool allows ("auto"); forcing
            # them on every tool is the model option strict=True
            strict = (
                self.strict if self.strict is not None else ("auto" if request.strict else False)
            )
            body["tools"] = [export(spec, strict=strict) for spec in request.tools]
            choice = request.tool_choice  # validated by normalise_request: only translated here
            body["tool_choice"] = (
                named(choice.name) if isinstance(choice, NamedToolChoice) else choice
            )
            body["parallel_tool_calls"] = bool(
                self.parallel_tool_calls and request.parallel_tool_calls
            )
        max_tokens = request.max_tokens or self.max_tokens
        if max_tokens is not None:
            body[max_tokens_field] = max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    def _kwargs(self, body: dict[str, Any], request: ModelRequest) -> dict[str, Any]:
        """Provider-specific fields (seed, top_p, response_format, server extensions) go
        through untouched, the request's winning; `extra_body` keeps the SDK from rejecting
        names it does not know."""
        merged = {**self.extra_body, **request.extra}
        if merged:
            body["extra_body"] = merged
        return body


# --- the model ---------------------------------------------------------------------------------


class OpenAIChatModel(OpenAIBase):
    """`callgate.models.StreamingModel` over the Chat Completions API.

    - `client`: an `openai.AsyncOpenAI` to reuse (its retries are turned off on a copy);
      otherwise one is built from `base_url` / `api_key` (environment variables as usual).
    - `strict`: True/False forces strict tool schemas on or off, "auto" uses them wherever the
      schema allows (see `callgate.dialects.export`); None follows `ModelRequest.strict`.
    - `parallel_tool_calls`: False forbids several calls per turn whatever the request says.
    - `text_tool_calls`: also read calls the model wrote as text ("hermes" tags, "json", or
      "auto" for both); used only when the server returned no structured calls. In streaming
      mode the text is then held back until the turn ends, because a call may be anywhere in it.
    - `max_retries` / `retry`: see `callgate.providers._retry.RetryPolicy`; `retry` wins.
      `sleep` waits between retries (tests pass one that records instead of sleeping).
    - `retry_timeouts`: whether a timed-out request is sent again. Default (None): the
      `retry` policy's own choice if it makes one, else True for OpenAI's API and False for any
      other `base_url` (vLLM, llama.cpp, Ollama...): such a server often has one slot that keeps
      working on the abandoned request, so a resent copy only queues behind it and the same
      work is done up to `max_retries + 1` times. Pass True for a hosted compatible API.
    - `schema_compat`: "llama.cpp" sends tool schemas simplified for llama.cpp's own
      schema-to-grammar converter (`callgate.dialects.compat`: ``\\d`` → ``[0-9]``, ...;
      what it cannot express is dropped with a warning). The gate still validates every call
      against the original schema.
    - `timeout`: seconds per HTTP attempt (None keeps the SDK default).
    - `max_tokens`: the output cap when a request sets none (None: the server's default).
    - `max_tokens_field`: OpenAI's own models want "max_completion_tokens"; many compatible
      servers only understand "max_tokens".
    - `extra_body`: fields merged into every request body (`ModelRequest.extra` on top).
    """

    def __init__(
        self,
        model: str,
        *,
        text_tool_calls: TextToolCalls = "off",
        max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_completion_tokens",
        schema_compat: SchemaCompat | None = None,
        **options: Unpack[OpenAIOptions],
    ) -> None:
        super().__init__(model, **options)
        if schema_compat is not None and schema_compat not in SCHEMA_COMPATS:
            raise ValueError(f"schema_compat must be one of {SCHEMA_COMPATS} or None")
        self.schema_compat = schema_compat
        # (tool name, its parameters as JSON) -> the simplified parameters: each schema is
        # simplified (and its warnings logged) once, not on every turn
        self._compat_cache: dict[tuple[str, str], dict[str, Any]] = {}
        if text_tool_calls not in ("off", "hermes", "json", "auto"):
            raise ValueError(
                "text_tool_calls must be 'off', 'hermes', 'json' or 'auto', "
                f"not {text_tool_calls!r}"
            )
        if max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise ValueError("max_tokens_field must be 'max_tokens' or 'max_completion_tokens'")
        self.text_tool_calls: TextToolCalls = text_tool_calls
        self.max_tokens_field = max_tokens_field

    # -- request building -------------------------------------------------------------------

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body (minus `stream`) for `request`; raises ValueError on an invalid one."""
        request = normalise_request(request)
        body: dict[str, Any] = {"model": self.model, "messages": chat_messages(request)}
        return self._shared_fields(
            request,
            body,
            export=self._export_tool,
            named=_named_choice,
            max_tokens_field=self.max_tokens_field,
        )

    def _export_tool(self, spec: ToolSpec, *, strict: StrictMode) -> dict[str, Any]:
        """One tool on the wire, its parameters simplified for `schema_compat` if set."""
        wire = to_openai_chat(spec, strict=strict)
        if self.schema_compat is None:
            return wire
        function = wire["function"]
        parameters = function.get("parameters")
        if isinstance(parameters, dict):
            key = (spec.name, json.dumps(parameters, sort_keys=True, default=str))
            cached = self._compat_cache.get(key)
            if cached is None:
                simple = simplify_schema(parameters, self.schema_compat, tool=spec.name)
                cached = self._compat_cache[key] = simple.schema
            # a new dict: the exporter may hand the same (cached) one to every model
            return {**wire, "function": {**function, "parameters": cached}}
        return wire

    def _create_kwargs(self, request: ModelRequest) -> dict[str, Any]:
        return self._kwargs(self.build_body(request), request)

    # -- one turn ---------------------------------------------------------------------------

    async def request(self, request: ModelRequest) -> ModelResponse:
        kwargs = self._create_kwargs(request)
        try:
            completion = await self._send(lambda: self._client.chat.completions.create(**kwargs))
        except ModelError as exc:
            hinted = self._with_schema_hint(exc, kwargs)
            if hinted is exc:
                raise
            raise hinted from exc
        return self._parse_completion(completion)

    def _with_schema_hint(self, exc: ModelError, kwargs: Mapping[str, Any]) -> ModelError:
        """`exc`, or a copy saying what probably broke: a compatible server that builds a
        grammar from tool schemas (llama.cpp) can fail on, or even crash at, a ``pattern`` its
        converter does not handle, and then only a dropped connection or a bare 500 comes back."""
        if self.schema_compat is not None or is_openai_host(str(self._client.base_url)):
            return exc
        if exc.status not in (None, 500) or '"pattern"' not in json.dumps(kwargs.get("tools")):
            return exc
        hint = (
            " (a tool schema has a `pattern`: servers that turn schemas into grammars, like "
            "llama.cpp, can fail on one their converter does not handle; "
            "OpenAIChatModel(..., schema_compat='llama.cpp') sends them simplified)"
        )
        return ModelError(
            str(exc) + hint, status=exc.status, retryable=exc.retryable, body=exc.body
        )

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
        """Stream one turn through the shared loop (`callgate.providers._stream`): failures up to
        the first delivered event are retried; later ones raise `ModelError`."""
        kwargs = self._create_kwargs(request)
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        hold_text = self.text_tool_calls != "off"
        try:
            async for event in self._stream(
                lambda: self._client.chat.completions.create(**kwargs),
                lambda: _ChatStream(hold_text=hold_text, model=self),
            ):
                yield event
        except ModelError as exc:
            hinted = self._with_schema_hint(exc, kwargs)
            if hinted is exc:
                raise
            raise hinted from exc


# --- request pieces ----------------------------------------------------------------------------


def chat_messages(request: ModelRequest) -> list[dict[str, Any]]:
    """Neutral messages as Chat Completions messages (system prompt first)."""
    out: list[dict[str, Any]] = []
    if request.system:
        out.append({"role": "system", "content": request.system})
    out.extend(
        convert_messages(
            request.messages,
            text=lambda msg: {"role": msg.role, "content": ensure_text(msg.content)},
            assistant=lambda msg: [_chat_assistant(msg)],
            result=lambda result: {
                "role": "tool",
                "tool_call_id": result.call_id,
                "content": ensure_text(result.content),
            },
        )
    )
    return out


def _chat_assistant(msg: Message) -> dict[str, Any]:
    # "content" is always present (empty next to tool calls): OpenAI accepts that, and chat
    # templates of compatible servers index it unconditionally.
    entry: dict[str, Any] = {"role": "assistant", "content": ensure_text(msg.content)}
    if msg.tool_calls:
        entry["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": arguments_text(call.arguments)},
            }
            for call in msg.tool_calls
        ]
    return entry


def _named_choice(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


def convert_messages(
    messages: list[Message],
    *,
    text: Callable[[Message], dict[str, Any]],
    assistant: Callable[[Message], list[dict[str, Any]]],
    result: Callable[[ToolResult], dict[str, Any]],
) -> list[dict[str, Any]]:
    """The one walk over a conversation both OpenAI APIs make: each API says how a system/user
    message, an assistant turn and a tool result look on its wire; the order, and the errors for
    a tool message without a result or an unknown role, are the same for both."""
    out: list[dict[str, Any]] = []
    for n, msg in enumerate(messages):
        if msg.role in ("system", "user"):
            out.append(text(msg))
        elif msg.role == "assistant":
            out.extend(assistant(msg))
        elif msg.role == "tool":
            if msg.tool_result is None:
                raise ValueError(f"messages[{n}] has role 'tool' but no tool_result")
            out.append(result(msg.tool_result))
        else:
            raise ValueError(f"messages[{n}] has unknown role {msg.role!r}")
    return out


def usage_of(usage: Any, *, input_field: str, output_field: str) -> Usage:
    """An OpenAI usage object as `Usage`. The two APIs name the counts differently (Chat:
    ``prompt_tokens`` / ``completion_tokens``; Responses: ``input_tokens`` / ``output_tokens``)
    and keep the cached count in ``<input_field>_details.cached_tokens``."""
    if usage is None:
        return make_usage()
    details = getattr(usage, f"{input_field}_details", None)
    return make_usage(
        getattr(usage, input_field, None),
        getattr(usage, output_field, None),
        getattr(details, "cached_tokens", None) if details is not None else None,
    )


def _chat_usage(usage: Any) -> Usage:
    return usage_of(usage, input_field="prompt_tokens", output_field="completion_tokens")


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

    def __init__(self, *, hold_text: bool, model: OpenAIChatModel) -> None:
        self.hold_text = hold_text
        self._model = model
        self.done = False
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
                        events.append(models.TextDelta(content))
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
            events.append(models.ToolCallStarted(slot.position, slot.id, slot.name))
            if slot.pending:
                events.append(models.ToolCallDelta(slot.position, slot.id, "".join(slot.pending)))
                slot.pending.clear()
        if args:
            slot.parts.append(args)
            if slot.announced:
                events.append(models.ToolCallDelta(slot.position, slot.id, args))
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

    def close(self) -> list[ModelStreamEvent]:
        """The closing events, `ResponseFinished` last; `ModelError` for an empty stream."""
        if not self.chunks:
            raise ProviderFailure(
                "the stream ended with no data (does the server support streaming?)"
            ).to_model_error("openai")
        response = self._model._finish(
            text=self.text(),
            refusal=self.refusal(),
            calls=self.calls(),
            finish_reason=self.finish_reason if self.finish_reason is not None else "",
            usage=self.usage,
            model=self.model or self._model.model,
            seed=self.response_id,
            raw=None,
        )
        return [*self._complete(response), models.ResponseFinished(response)]

    def _complete(self, response: ModelResponse) -> list[ModelStreamEvent]:
        """Events that complete the stream so it matches `response` exactly.

        Held-back text (text tool-call mode) is released; calls not announced yet (found only in
        the text, or whose name never arrived) are announced now; every call gets its
        `ToolCallFinished`, preceded by whatever part of its arguments was not streamed yet
        (all of it, or "{}" for a call whose arguments never arrived), so the concatenation
        promise holds.
        """
        events: list[ModelStreamEvent] = []
        if self.hold_text and response.text:
            events.append(models.TextDelta(response.text))
        for position, call in enumerate(response.tool_calls):
            slot = self._slots[position] if position < len(self._slots) else None
            if slot is not None and slot.announced:
                sent = "".join(slot.parts)
            else:
                events.append(models.ToolCallStarted(position, call.id, call.name))
                sent = ""
            full = arguments_text(call.arguments)
            remainder = full[len(sent) :] if full.startswith(sent) else full
            if remainder:
                events.append(models.ToolCallDelta(position, call.id, remainder))
            events.append(models.ToolCallFinished(position, call))
        return events
