"""Gemini (Gemini Developer API / Vertex AI) adapter, through the official `google-genai` SDK.

What the wire format asks for, and what this module guarantees:

- The system prompt goes in `system_instruction`; `contents` alternate roles `user` and `model`.
- A model turn's calls are `functionCall` parts; their results go back as `functionResponse`
  parts `{name, response}` in the following `user` content, one per call, in call order. The
  `response` must be an object: a result is sent as `{"result": ...}`, a failure as
  `{"error": text}` (the keys the Gemini documentation suggests).
- Gemini calls may carry no id. Each call gets a stable one, `gemini_<turn hash>_<index>`, derived
  from the conversation that was sent and the reply's `responseId`: the same reply always gets the
  same ids (streamed or not) and calls in different turns never share one. When results are
  rendered, the id leads back to the call's name and position; a synthesized id is never sent to
  the API, an id the API gave is echoed.
- Tool schemas are reduced to the subset Gemini accepts by `callgate.dialects.export.to_gemini`.
- Thinking models attach a `thoughtSignature` to parts of a reply (to a call, to a text part, to
  a thought part) that must be echoed on that part when the turn is sent again; for function
  calls the API refuses a turn whose signature is missing. The state travels with the
  conversation, so a run saved by `callgate.serde` and resumed in another process still sends
  it: a call's signature is `ToolCall.provider_data["gemini"]["thought_signature"]`, and when
  the turn had thought parts or signed text, `Message.provider_data["gemini"]["parts"]` records
  the turn's part layout (see `turn_layout`). Signatures are stored as standard base64 text.

The SDK's own retries are disabled per request; `call_with_retries` applies the shared policy.
Streaming delivers whole `functionCall` parts (no argument deltas), so each call is emitted as
started, one delta carrying its complete JSON, finished.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from callgate import models
from callgate.dialects.gemini import to_gemini
from callgate.errors import ModelError
from callgate.messages import Message, StopReason, ToolCall, ToolResult, Usage
from callgate.models import ModelRequest, ModelResponse, ModelStreamEvent, normalise_request
from callgate.providers._base import ProviderModel
from callgate.providers._common import make_usage, map_stop_reason
from callgate.providers._retry import ProviderFailure, RetryPolicy, Sleep, classify_exception
from callgate.serde import arguments_object as decode_arguments
from callgate.tools.definition import ToolSpec

try:
    from google import genai
    from google.genai import types
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "GeminiModel needs the google-genai SDK: pip install 'callgate[gemini]'"
    ) from exc

__all__ = [
    "GeminiModel",
    "GeminiStreamAssembler",
    "is_synthetic_id",
    "render_contents",
    "turn_layout",
]

PROVIDER = "gemini"

_STOP_REASONS: dict[str, StopReason] = {
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "MODEL_ARMOR": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
    "MISSING_THOUGHT_SIGNATURE": "error",
    "MALFORMED_RESPONSE": "error",
}

_DECLARATION_CACHE_SIZE = 512

_SYNTHETIC_ID = re.compile(r"^gemini_[0-9a-f]{16}_\d+$")

# Exceptions aiohttp raises when the SDK uses it as transport; matched by name (no import).
_AIOHTTP_TRANSIENT = frozenset(
    {"ClientConnectionError", "ServerDisconnectedError", "ClientPayloadError", "ServerTimeoutError"}
)


def is_synthetic_id(call_id: str) -> bool:
    """True for ids this adapter made up for calls Gemini sent without one."""
    return bool(_SYNTHETIC_ID.match(call_id))


def synthetic_id(turn_key: str, response_id: str, index: int) -> str:
    digest = hashlib.sha256(f"{turn_key}\x00{response_id}".encode()).hexdigest()[:16]
    return f"gemini_{digest}_{index}"


def turn_key(request: ModelRequest) -> str:
    """A digest of the conversation sent: differs for every turn of a run, so synthesized ids
    of one turn cannot collide with those of another."""
    rows: list[Any] = [request.system or ""]
    for m in request.messages:
        calls = [[c.id, c.name, c.arguments] for c in m.tool_calls]
        result = m.tool_result.call_id if m.tool_result is not None else None
        rows.append([m.role, m.content, calls, result])
    text = json.dumps(rows, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


# --- request -------------------------------------------------------------------------------


def response_object(result: ToolResult) -> dict[str, Any]:
    """`functionResponse.response` for a result: `{"error": text}` for a failure, otherwise
    `{"result": value}` where JSON object/array text is sent as structure, anything else as text."""
    if result.is_error:
        return {"error": result.content}
    text = result.content
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            return {"result": json.loads(text)}
        except ValueError:
            pass
    return {"result": text}


# --- provider state ------------------------------------------------------------------------


def encode_signature(signature: bytes) -> str:
    """A thought signature as JSON text (standard base64)."""
    return base64.b64encode(signature).decode("ascii")


def decode_signature(text: Any, where: str) -> bytes:
    """The bytes of a stored signature; the URL-safe alphabet is accepted as well."""
    if not isinstance(text, str) or not text:
        raise ModelError(f"gemini: {where}: thought_signature must be non-empty base64 text")
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ModelError(f"gemini: {where}: thought_signature is not base64: {exc}") from exc


def _state(provider_data: dict[str, Any] | None, where: str) -> dict[str, Any] | None:
    if not provider_data:
        return None
    state = provider_data.get(PROVIDER)
    if state is None:
        return None
    if not isinstance(state, dict):
        raise ModelError(f"gemini: {where}: provider_data['gemini'] must be an object")
    return state


def call_signature(call: ToolCall) -> bytes | None:
    """The thought signature stored on `call`, if any."""
    where = f"call {call.id!r}"
    state = _state(call.provider_data, where)
    if state is None or state.get("thought_signature") is None:
        return None
    return decode_signature(state["thought_signature"], where)


def turn_layout(message: Message) -> list[dict[str, Any]] | None:
    """The part layout recorded for a model turn, validated, or None when it has none.

    Entries, in the order of the reply: `{"text": str, "thought": true?, "thought_signature":
    base64?}` for a run of text or thought parts (streamed fragments are merged, so a streamed
    reply and the same reply in one piece record the same layout), and `{"function_call": n}`
    for `message.tool_calls[n]`.
    """
    state = _state(message.provider_data, "assistant turn")
    if state is None or state.get("parts") is None:
        return None
    parts = state["parts"]
    problem = "provider_data['gemini']['parts'] must be a list of part entries"
    if not isinstance(parts, list):
        raise ModelError(f"gemini: assistant turn: {problem}")
    for entry in parts:
        if not isinstance(entry, dict):
            raise ModelError(f"gemini: assistant turn: {problem}")
        if "function_call" in entry:
            index = entry["function_call"]
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise ModelError(f"gemini: assistant turn: {problem} (bad function_call index)")
        elif not isinstance(entry.get("text"), str):
            raise ModelError(f"gemini: assistant turn: {problem} (text entry without text)")
    return parts


def _layout_fits(layout: list[dict[str, Any]], message: Message) -> bool:
    """Whether the recorded layout still describes `message` (same text, same number of calls);
    if not, the turn was edited after the reply and its text is no longer the signed text."""
    text = "".join(e["text"] for e in layout if "function_call" not in e and not e.get("thought"))
    calls = [e["function_call"] for e in layout if "function_call" in e]
    return text == message.content and sorted(calls) == list(range(len(message.tool_calls)))


def _text_part(entry: dict[str, Any]) -> types.Part:
    signature = entry.get("thought_signature")
    return types.Part(
        text=entry["text"],
        thought=True if entry.get("thought") else None,
        thought_signature=(
            decode_signature(signature, "assistant turn") if signature is not None else None
        ),
    )


def _call_part(call: ToolCall) -> types.Part:
    return types.Part(
        function_call=types.FunctionCall(
            name=call.name,
            args=decode_arguments(call.arguments),
            id=None if is_synthetic_id(call.id) else call.id,
        ),
        thought_signature=call_signature(call),
    )


def _model_parts(message: Message) -> list[types.Part]:
    """A model turn's parts: as the reply laid them out (thought parts, signed text, calls in
    their places) when that layout is recorded and still fits; otherwise text then calls, with
    any recorded thought parts first."""
    calls = [_call_part(call) for call in message.tool_calls]
    layout = turn_layout(message)
    if layout is not None and _layout_fits(layout, message):
        return [
            calls[entry["function_call"]] if "function_call" in entry else _text_part(entry)
            for entry in layout
        ]
    parts = [_text_part(e) for e in layout or [] if e.get("thought") and "function_call" not in e]
    if message.content:
        parts.append(types.Part(text=message.content))
    parts.extend(calls)
    return parts


def _response_parts(results: list[ToolResult], calls: list[ToolCall]) -> list[types.Part]:
    """One `functionResponse` part per result, in the order of the calls they answer."""
    position = {call.id: (n, call) for n, call in enumerate(calls)}

    def order(item: tuple[int, ToolResult]) -> tuple[int, int]:
        n, result = item
        found = position.get(result.call_id)
        return (found[0], n) if found else (len(calls), n)

    parts: list[types.Part] = []
    for _, result in sorted(enumerate(results), key=order):
        found = position.get(result.call_id)
        name = found[1].name if found else result.name
        echo_id = None if is_synthetic_id(result.call_id) else result.call_id
        parts.append(
            types.Part(
                function_response=types.FunctionResponse(
                    name=name, response=response_object(result), id=echo_id or None
                )
            )
        )
    return parts


def render_contents(messages: list[Message]) -> tuple[list[types.Content], str | None]:
    """Neutral messages -> (Gemini `contents`, system text found among them).

    Consecutive tool results form one `user` content answering the latest model turn; entries of
    one role that follow each other are merged, so roles always alternate. Model turns carry the
    thought signatures and thought parts stored in their `provider_data`.
    """
    contents: list[types.Content] = []
    system_parts: list[str] = []
    last_calls: list[ToolCall] = []
    pending: list[ToolResult] = []

    def push(role: str, parts: list[types.Part]) -> None:
        if not parts:
            return
        if contents and contents[-1].role == role:
            existing = contents[-1].parts or []
            contents[-1] = types.Content(role=role, parts=[*existing, *parts])
        else:
            contents.append(types.Content(role=role, parts=parts))

    def flush() -> None:
        if pending:
            push("user", _response_parts(pending, last_calls))
            pending.clear()

    for message in messages:
        if message.role == "tool":
            if message.tool_result is None:
                raise ModelError("a tool message has no tool_result to send to Gemini")
            pending.append(message.tool_result)
            continue
        flush()
        if message.role == "system":
            if message.content:
                system_parts.append(message.content)
        elif message.role == "assistant":
            last_calls = list(message.tool_calls)
            push("model", _model_parts(message))
        elif message.content:
            push("user", [types.Part(text=message.content)])
    flush()
    return contents, ("\n\n".join(system_parts) or None)


def tool_config(request: ModelRequest) -> types.ToolConfig:
    """`tool_config` for a request that has tools, validated by `normalise_request`."""
    choice = request.tool_choice
    if isinstance(choice, models.NamedToolChoice):
        config = types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=[choice.name]
        )
    elif choice == "none":
        config = types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.NONE)
    elif choice == "required":
        config = types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY)
    else:
        config = types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.AUTO)
    return types.ToolConfig(function_calling_config=config)


def function_declaration(spec: ToolSpec) -> types.FunctionDeclaration:
    declaration = to_gemini(spec)
    try:
        return types.FunctionDeclaration.model_validate(declaration)
    except ValueError as exc:
        raise ModelError(
            f"gemini: tool {spec.name!r}: its schema is not one google-genai accepts: {exc}"
        ) from exc


# --- response ------------------------------------------------------------------------------


def _enum_text(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _usage(meta: types.GenerateContentResponseUsageMetadata | None) -> Usage:
    """Prompt tokens include cached ones and tool-use prompts; output includes thinking tokens
    (both are billed that way)."""
    if meta is None:
        return make_usage()
    prompt = (meta.prompt_token_count or 0) + (meta.tool_use_prompt_token_count or 0)
    output = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return make_usage(prompt, output, meta.cached_content_token_count)


@dataclass(slots=True)
class _Run:
    """Consecutive text (or thought) parts of a reply, merged; at most one signature."""

    thought: bool
    text: list[str] = field(default_factory=list)
    signature: bytes | None = None

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"text": "".join(self.text)}
        if self.thought:
            entry["thought"] = True
        if self.signature is not None:
            entry["thought_signature"] = encode_signature(self.signature)
        return entry


@dataclass(slots=True)
class _Turn:
    """What the parts of one reply add up to; shared by the plain and the streamed path.

    Text and thought parts are merged into runs the same way whether the reply came in one piece
    or in chunks (a streamed reply often ends with an empty part holding only the signature), so
    both paths build the same message, `provider_data` included.
    """

    key: str
    text: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    layout: list[_Run | int] = field(default_factory=list)
    finish: str | None = None
    usage: types.GenerateContentResponseUsageMetadata | None = None
    response_id: str = ""
    model: str = ""
    blocked: str | None = None

    def absorb(self, chunk: types.GenerateContentResponse) -> list[ModelStreamEvent]:
        if chunk.response_id and not self.response_id:
            self.response_id = chunk.response_id
        if chunk.model_version:
            self.model = chunk.model_version
        if chunk.usage_metadata is not None:
            self.usage = chunk.usage_metadata
        feedback = chunk.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            self.blocked = _enum_text(feedback.block_reason)
        events: list[ModelStreamEvent] = []
        if not chunk.candidates:
            return events
        candidate = chunk.candidates[0]
        if candidate.finish_reason is not None:
            self.finish = _enum_text(candidate.finish_reason)
        content = candidate.content
        for part in (content.parts if content is not None else None) or []:
            if part.function_call is not None:
                events.extend(self._call(part))
            elif part.text is not None or part.thought_signature:
                events.extend(self._text(part))
        return events

    def _text(self, part: types.Part) -> list[ModelStreamEvent]:
        thought = bool(part.thought)
        text = part.text or ""
        signature = part.thought_signature or None
        last = self.layout[-1] if self.layout else None
        if (
            isinstance(last, _Run)
            and last.thought == thought
            and not (signature and last.signature)
        ):
            run = last
        elif text or signature:
            run = _Run(thought)
            self.layout.append(run)
        else:
            return []
        run.text.append(text)
        if signature:
            run.signature = signature
        if thought or not text:
            return []
        self.text.append(text)
        return [models.TextDelta(text)]

    def _call(self, part: types.Part) -> list[ModelStreamEvent]:
        fc = part.function_call
        assert fc is not None
        index = len(self.calls)
        call_id = fc.id or synthetic_id(self.key, self.response_id, index)
        args = dict(fc.args or {})
        name = fc.name or ""
        signature = part.thought_signature

        def state() -> dict[str, Any] | None:
            if not signature:
                return None
            return {PROVIDER: {"thought_signature": encode_signature(signature)}}

        self.calls.append(ToolCall(call_id, name, args, state()))
        self.layout.append(index)
        text = json.dumps(args, ensure_ascii=False)
        return [
            models.ToolCallStarted(index, call_id, name),
            models.ToolCallDelta(index, call_id, text),
            models.ToolCallFinished(index, ToolCall(call_id, name, text, state())),
        ]

    def provider_data(self) -> dict[str, Any] | None:
        """The turn's part layout, recorded only when it holds more than the neutral message
        says (thought parts or signed text)."""
        runs = [entry for entry in self.layout if isinstance(entry, _Run)]
        if not any(run.thought or run.signature is not None for run in runs):
            return None
        parts = [
            {"function_call": entry} if isinstance(entry, int) else entry.entry()
            for entry in self.layout
        ]
        return {PROVIDER: {"parts": parts}}

    def response(self, raw: Any) -> ModelResponse:
        if self.blocked and not self.calls and not self.text:
            stop: StopReason = "content_filter"
        else:
            stop = map_stop_reason(self.finish, _STOP_REASONS, has_tool_calls=bool(self.calls))
        message = Message.assistant("".join(self.text), list(self.calls))
        message.provider_data = self.provider_data()
        return ModelResponse(
            message=message,
            usage=_usage(self.usage),
            stop_reason=stop,
            model=self.model,
            raw=raw,
        )


class GeminiStreamAssembler:
    """Turns `generate_content_stream` chunks into callgate stream events (see `_Turn`)."""

    def __init__(self, key: str) -> None:
        self._turn = _Turn(key)
        self.chunks = 0
        self.done = False

    def close(self) -> list[ModelStreamEvent]:
        """`ResponseFinished`, or `ModelError` when the stream brought no chunk at all."""
        if self.chunks == 0:
            raise ModelError("gemini: the stream ended without any chunk", retryable=True)
        return [models.ResponseFinished(self.finish())]

    def feed(self, chunk: types.GenerateContentResponse) -> list[ModelStreamEvent]:
        self.chunks += 1
        return self._turn.absorb(chunk)

    def finish(self) -> ModelResponse:
        return self._turn.response({"response_id": self._turn.response_id, "streamed": True})


# --- failures ------------------------------------------------------------------------------


def classify_gemini(exc: BaseException) -> ProviderFailure | None:
    """`classify_exception`, plus aiohttp transport errors and replies the SDK could not parse."""
    failure = classify_exception(exc)
    if failure is not None:
        return failure
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _AIOHTTP_TRANSIENT:
        return ProviderFailure(message=f"connection failed: {exc}", retryable=True)
    if "UnknownApiResponseError" in names:
        return ProviderFailure(message=f"malformed reply: {exc}", retryable=False)
    return None


# --- the model -----------------------------------------------------------------------------


class GeminiModel(ProviderModel):
    """A Gemini model through `google-genai`'s async client.

    `client` may be a configured `genai.Client` (Developer API or Vertex AI); otherwise one is
    built from `api_key` and `base_url` / `http_options` (`base_url` points it at a proxy or a
    test server). The SDK never retries on its own here: `retry` (default: `max_retries`
    retries with exponential backoff honouring Retry-After, waiting with `sleep`) decides.
    `max_tokens` caps the output when a request sets no cap. `config` holds extra
    `GenerateContentConfig` fields for every request (e.g. `{"thinking_config": ...}`);
    `ModelRequest.extra` adds to them per request. `extra_body` is merged into every request's
    JSON body as it is, for fields the SDK does not know yet.
    """

    def __init__(
        self,
        model: str,
        *,
        client: genai.Client | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        http_options: types.HttpOptions | None = None,
        max_tokens: int | None = None,
        max_retries: int = 3,
        timeout: float | None = 120.0,
        retry: RetryPolicy | None = None,
        config: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(
            PROVIDER, classify_gemini, model, retry=retry, max_retries=max_retries, sleep=sleep
        )
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        self.config = dict(config or {})
        if client is not None and (
            api_key is not None or base_url is not None or http_options is not None
        ):
            raise ValueError("pass either client or api_key/base_url/http_options, not both")
        if client is None:
            options = http_options.model_copy() if http_options else types.HttpOptions()
            if base_url is not None:
                options.base_url = base_url
            if timeout is not None and options.timeout is None:
                options.timeout = int(timeout * 1000)  # the SDK takes milliseconds
            client = genai.Client(api_key=api_key, http_options=options)
        self._client = client
        self._declarations: dict[int, tuple[ToolSpec, types.FunctionDeclaration]] = {}

    @property
    def client(self) -> genai.Client:
        return self._client

    def _declaration(self, spec: ToolSpec) -> types.FunctionDeclaration:
        """`function_declaration(spec)`, built once per spec object: the same specs are sent
        every turn and building the SDK's pydantic objects is most of the cost of a request."""
        hit = self._declarations.get(id(spec))
        if hit is not None and hit[0] is spec:
            return hit[1]
        declaration = function_declaration(spec)
        if len(self._declarations) >= _DECLARATION_CACHE_SIZE:
            self._declarations.pop(next(iter(self._declarations)))
        # The spec is kept alive with its entry, so its id cannot be reused meanwhile.
        self._declarations[id(spec)] = (spec, declaration)
        return declaration

    # request building ------------------------------------------------------------------------

    def build(
        self, request: ModelRequest
    ) -> tuple[list[types.Content], types.GenerateContentConfig]:
        """`contents` and `config` for `generate_content` (the SDK turns them into the body)."""
        request = normalise_request(request)
        contents, _ = render_contents(request.messages)
        http = types.HttpOptions(
            # One retry policy for every provider: the SDK makes exactly one attempt.
            retry_options=types.HttpRetryOptions(attempts=1),
            extra_body=self.extra_body or None,
        )
        fields: dict[str, Any] = {
            # Calls are the application's to run, never the SDK's.
            "automatic_function_calling": types.AutomaticFunctionCallingConfig(disable=True),
            "http_options": http,
        }
        if request.system:
            fields["system_instruction"] = request.system
        max_tokens = request.max_tokens or self.max_tokens
        if max_tokens is not None:
            fields["max_output_tokens"] = max_tokens
        if request.temperature is not None:
            fields["temperature"] = request.temperature
        if request.tools:
            declarations = [self._declaration(spec) for spec in request.tools]
            fields["tools"] = [types.Tool(function_declarations=declarations)]
            fields["tool_config"] = tool_config(request)
        fields.update(self.config)
        fields.update(request.extra)
        try:
            config = types.GenerateContentConfig(**fields)
        except ValueError as exc:
            raise ModelError(f"gemini: invalid request option: {exc}") from exc
        return contents, config

    async def request(self, request: ModelRequest) -> ModelResponse:
        contents, config = self.build(request)
        reply = await self._send(
            lambda: self._client.aio.models.generate_content(
                model=self._model, contents=contents, config=config
            )
        )
        turn = _Turn(turn_key(request))
        turn.absorb(reply)
        return turn.response(reply)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Stream one turn through the shared loop (`callgate.providers._stream`).

        Everything up to the first visible event is retried like `request` (the SDK only sends
        the HTTP request when the first chunk is read); a failure after events were delivered
        raises `ModelError` instead, since a half-delivered turn cannot be resumed.
        """
        contents, config = self.build(request)
        key = turn_key(request)
        async for event in self._stream(
            lambda: self._client.aio.models.generate_content_stream(
                model=self._model, contents=contents, config=config
            ),
            lambda: GeminiStreamAssembler(key),
        ):
            yield event
