"""OpenAI Responses API (``client.responses.create``), used statelessly.

The whole conversation is sent as input items on every turn, so a run can be replayed, resumed
from storage or moved to another provider without server-side state:

- the system prompt goes to ``instructions``; user and assistant text become message items;
- each proposed call becomes a ``function_call`` item and each result a ``function_call_output``
  item, both bound by ``call_id`` (the id callgate uses for the call);
- tools are rendered by `callgate.dialects.export.to_openai_responses`;
- a turn's ``reasoning`` items are sent back verbatim, in their place among the turn's items.
  They travel with the conversation in ``Message.provider_data["openai_responses"]["output"]``
  (the turn's output order, see `reasoning_layout`), so a run saved by `callgate.serde` and
  resumed in another process still sends them. With ``store=False`` the API cannot look an item
  up by id: only items carrying ``encrypted_content`` (ask for it with
  ``include_encrypted_reasoning=True``) can be sent back, the others are left out.

Output ``function_call`` items become `ToolCall(id=call_id)` with the arguments as raw text.
While streaming, a call is announced by ``response.output_item.added``, grows with
``response.function_call_arguments.delta`` (routed by ``item_id``, so parallel calls never mix)
and finishes with ``response.function_call_arguments.done``; ``response.completed`` supplies the
authoritative usage, status and reasoning items (the ``encrypted_content`` of an item in
``response.output_item.added`` may be incomplete).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from typing_extensions import Unpack

from callgate import models
from callgate.dialects.export import to_openai_responses
from callgate.errors import ModelError
from callgate.messages import Message, StopReason, ToolCall
from callgate.models import ModelRequest, ModelResponse, ModelStreamEvent, normalise_request
from callgate.providers._common import ensure_text, map_stop_reason
from callgate.providers._retry import ProviderFailure
from callgate.providers.openai.chat import (
    OpenAIBase,
    OpenAIOptions,
    arguments_text,
    convert_messages,
    fallback_call_id,
    unique_ids,
    usage_of,
)

__all__ = ["OpenAIResponsesModel", "reasoning_layout", "responses_input"]

PROVIDER = "openai_responses"
ENCRYPTED_REASONING = "reasoning.encrypted_content"

log = logging.getLogger("callgate.providers.openai")

_INCOMPLETE_REASONS: dict[str, StopReason] = {
    "max_output_tokens": "max_tokens",
    "content_filter": "content_filter",
}


class OpenAIResponsesModel(OpenAIBase):
    """`callgate.models.StreamingModel` over the Responses API.

    Options as for `OpenAIChatModel` (client, base_url, api_key, strict, parallel_tool_calls,
    max_retries / retry / sleep, timeout, max_tokens, extra_body); `store` is sent when given
    (the conversation is always sent in full, so storing it server-side is never needed).
    `include_encrypted_reasoning` asks for ``include: ["reasoning.encrypted_content"]``, which
    a reasoning model needs with ``store=False`` for its reasoning to be carried to the next
    turn (models without reasoning refuse the option, so it is off by default).
    """

    def __init__(
        self,
        model: str,
        *,
        store: bool | None = None,
        include_encrypted_reasoning: bool = False,
        **options: Unpack[OpenAIOptions],
    ) -> None:
        super().__init__(model, **options)
        self.store = store
        self.include_encrypted_reasoning = include_encrypted_reasoning

    # -- request building -------------------------------------------------------------------

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body (minus `stream`) for `request`; raises ValueError on an invalid one."""
        request = normalise_request(request)
        body: dict[str, Any] = {
            "model": self.model,
            "input": responses_input(request, store=self.store),
        }
        if request.system:
            body["instructions"] = request.system
        self._shared_fields(
            request,
            body,
            export=to_openai_responses,
            named=_named_choice,
            max_tokens_field="max_output_tokens",
        )
        if self.store is not None:
            body["store"] = self.store
        if self.include_encrypted_reasoning:
            body["include"] = [ENCRYPTED_REASONING]
        return body

    def _create_kwargs(self, request: ModelRequest) -> dict[str, Any]:
        return self._kwargs(self.build_body(request), request)

    # -- one turn ---------------------------------------------------------------------------

    async def request(self, request: ModelRequest) -> ModelResponse:
        kwargs = self._create_kwargs(request)
        response = await self._send(lambda: self._client.responses.create(**kwargs))
        return parse_response(response, default_model=self.model)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Stream one turn through the shared loop (`callgate.providers._stream`): failures up to
        the first delivered event are retried; later ones (including ``error`` and
        ``response.failed`` events) raise `ModelError`."""
        kwargs = self._create_kwargs(request)
        kwargs["stream"] = True
        async for event in self._stream(
            lambda: self._client.responses.create(**kwargs),
            lambda: _ResponsesStream(default_model=self.model),
        ):
            yield event


# --- request pieces ----------------------------------------------------------------------------


def reasoning_layout(message: Message) -> list[dict[str, Any]] | None:
    """The output order recorded for an assistant turn that had reasoning, validated.

    Entries: a ``reasoning`` item exactly as the API returned it; ``{"type": "message"}`` where
    the turn's text was; ``{"type": "function_call", "index": n}`` for ``message.tool_calls[n]``.
    """
    state = (message.provider_data or {}).get(PROVIDER)
    if state is None:
        return None
    output = state.get("output") if isinstance(state, dict) else None
    problem = "provider_data['openai_responses']['output'] must be a list of output entries"
    if not isinstance(output, list):
        raise ValueError(problem)
    for entry in output:
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind == "function_call":
            index = entry.get("index")
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise ValueError(f"{problem} (bad function_call index)")
        elif kind not in ("reasoning", "message"):
            raise ValueError(problem)
    return output


def _assistant_items(msg: Message, *, store: bool | None) -> list[dict[str, Any]]:
    """An assistant turn as input items: its reasoning items where the turn produced them, then
    its text and calls. A reasoning item must be followed by the item it led to, so one left
    with nothing after it (its text was removed since) is not sent."""
    text = (
        [{"type": "message", "role": "assistant", "content": ensure_text(msg.content)}]
        if msg.content
        else []
    )
    calls: list[dict[str, Any] | None] = [
        {
            "type": "function_call",
            "call_id": call.id,
            "name": call.name,
            "arguments": arguments_text(call.arguments),
        }
        for call in msg.tool_calls
    ]
    items: list[dict[str, Any]] = []
    for entry in reasoning_layout(msg) or []:
        kind = entry["type"]
        if kind == "reasoning":
            # Without store the API cannot look a bare id up; only encrypted content travels.
            if store is not False or entry.get("encrypted_content"):
                items.append(dict(entry))
        elif kind == "message":
            items.extend(text)
            text = []
        elif entry["index"] < len(calls):
            item = calls[entry["index"]]
            if item is not None:
                items.append(item)
                calls[entry["index"]] = None
    items.extend(text)
    items.extend(item for item in calls if item is not None)
    while items and items[-1]["type"] == "reasoning":
        items.pop()
    return items


def responses_input(request: ModelRequest, *, store: bool | None = None) -> list[dict[str, Any]]:
    """Neutral messages as Responses input items (`store` as the request will send it)."""
    return convert_messages(
        request.messages,
        text=lambda msg: {"type": "message", "role": msg.role, "content": ensure_text(msg.content)},
        assistant=lambda msg: _assistant_items(msg, store=store),
        result=lambda result: {
            "type": "function_call_output",
            "call_id": result.call_id,
            "output": ensure_text(result.content),
        },
    )


def _named_choice(name: str) -> dict[str, Any]:
    return {"type": "function", "name": name}


# --- response parsing --------------------------------------------------------------------------


def _failed(response: Any) -> ModelError:
    error = getattr(response, "error", None)
    message = getattr(error, "message", None) or "the response failed"
    code = getattr(error, "code", None)
    text = f"{message} ({code})" if code else str(message)
    return ProviderFailure(text, body=_dump(error)).to_model_error("openai")


def _dump(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    return dump() if callable(dump) else obj


def _item_json(item: Any) -> dict[str, Any]:
    """An output item as the JSON the API sent (fields it left null are dropped)."""
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        data = dump(mode="json", exclude_none=True)
    elif isinstance(item, Mapping):
        data = {k: v for k, v in item.items() if v is not None}
    else:
        data = {}
    return dict(data) if isinstance(data, dict) else {}


def _provider_data(layout: list[dict[str, Any]]) -> dict[str, Any] | None:
    """`Message.provider_data` for a turn: its output order, when it had reasoning items."""
    if not any(entry["type"] == "reasoning" for entry in layout):
        return None
    return {PROVIDER: {"output": layout}}


@dataclass
class _Output:
    """What a Responses `output` list says, in neutral terms."""

    text: str = ""
    refusal: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    #: the order of reasoning items, text and calls (see `reasoning_layout`)
    layout: list[dict[str, Any]] = field(default_factory=list)


def _read_output(response: Any) -> _Output:
    out = _Output()
    texts: list[str] = []
    refusals: list[str] = []
    seed = str(getattr(response, "id", "") or "")
    for n, item in enumerate(getattr(response, "output", None) or []):
        kind = getattr(item, "type", None)
        if kind == "reasoning":
            out.layout.append(_item_json(item))
        elif kind == "message":
            out.layout.append({"type": "message"})
            for part in getattr(item, "content", None) or []:
                ptype = getattr(part, "type", None)
                if ptype == "output_text":
                    texts.append(ensure_text(getattr(part, "text", "")))
                elif ptype == "refusal":
                    refusals.append(ensure_text(getattr(part, "refusal", "")))
        elif kind == "function_call":
            call_id = getattr(item, "call_id", None) or fallback_call_id(seed, n)
            out.layout.append({"type": "function_call", "index": len(out.calls)})
            out.calls.append(
                ToolCall(
                    str(call_id),
                    str(getattr(item, "name", None) or ""),
                    arguments_text(getattr(item, "arguments", None)),
                )
            )
    out.text = "".join(texts)
    out.refusal = "".join(refusals)
    return out


def _stop_reason(response: Any, *, has_calls: bool, refused: bool) -> StopReason:
    status = getattr(response, "status", None)
    if status == "incomplete":
        details = getattr(response, "incomplete_details", None)
        reason = getattr(details, "reason", None)
        return _INCOMPLETE_REASONS.get(str(reason), "other")
    if refused and not has_calls:
        return "content_filter"
    return map_stop_reason(
        "completed" if status in (None, "completed") else str(status),
        {"completed": "end_turn"},
        has_tool_calls=has_calls,
    )


def _assemble(
    response: Any,
    *,
    text: str,
    refusal: str,
    calls: list[ToolCall],
    layout: list[dict[str, Any]],
    default_model: str,
) -> ModelResponse:
    calls = unique_ids(calls)
    stop = _stop_reason(response, has_calls=bool(calls), refused=bool(refusal))
    if refusal and not text and not calls:
        text = refusal
    message = Message.assistant(text, calls)
    message.provider_data = _provider_data(layout)
    return ModelResponse(
        message=message,
        usage=usage_of(
            getattr(response, "usage", None),
            input_field="input_tokens",
            output_field="output_tokens",
        ),
        stop_reason=stop,
        model=str(getattr(response, "model", None) or default_model),
        raw=response,
    )


def parse_response(response: Any, *, default_model: str = "") -> ModelResponse:
    """A Responses `Response` object as a neutral `ModelResponse`; a failed one raises."""
    if getattr(response, "status", None) == "failed":
        raise _failed(response)
    out = _read_output(response)
    return _assemble(
        response,
        text=out.text,
        refusal=out.refusal,
        calls=out.calls,
        layout=out.layout,
        default_model=default_model,
    )


# --- stream assembly ---------------------------------------------------------------------------


@dataclass
class _Call:
    position: int
    item_id: str
    call_id: str
    name: str
    parts: list[str] = field(default_factory=list)
    finished: bool = False


class _ResponsesStream:
    """Turns Responses stream events into neutral events and the final `ModelResponse`."""

    def __init__(self, *, default_model: str) -> None:
        self.default_model = default_model
        self._text: list[str] = []
        self._refusal: list[str] = []
        self._calls: list[_Call] = []
        self._by_item: dict[str, _Call] = {}
        self._by_output_index: dict[int, _Call] = {}
        self._final: Any = None
        self._response_id = ""
        self.events = 0
        # (output_index, arrival, entry): the turn's order, for a stream with no final response
        self._layout: list[tuple[int, int, dict[str, Any]]] = []
        self._placed: set[int] = set()
        self.done = False

    def _place(self, output_index: Any, entry: dict[str, Any]) -> None:
        if isinstance(output_index, int):
            if output_index in self._placed:
                return
            self._placed.add(output_index)
        else:
            output_index = 1 << 30
        self._layout.append((output_index, len(self._layout), entry))

    def _find(self, event: Any) -> _Call | None:
        item_id = getattr(event, "item_id", None)
        if item_id and item_id in self._by_item:
            return self._by_item[item_id]
        index = getattr(event, "output_index", None)
        if isinstance(index, int):
            return self._by_output_index.get(index)
        return None

    def _add_call(self, item: Any, output_index: Any) -> list[ModelStreamEvent]:
        position = len(self._calls)
        call_id = getattr(item, "call_id", None) or fallback_call_id(self._response_id, position)
        taken = {c.call_id for c in self._calls}
        base, suffix = str(call_id), 2
        call_id = base
        while call_id in taken:
            call_id, suffix = f"{base}_{suffix}", suffix + 1
        call = _Call(
            position=position,
            item_id=str(getattr(item, "id", None) or ""),
            call_id=call_id,
            name=str(getattr(item, "name", None) or ""),
        )
        self._calls.append(call)
        if call.item_id:
            self._by_item[call.item_id] = call
        if isinstance(output_index, int):
            self._by_output_index[output_index] = call
        self._place(output_index, {"type": "function_call", "index": position})
        events: list[ModelStreamEvent] = [models.ToolCallStarted(position, call.call_id, call.name)]
        initial = getattr(item, "arguments", None)
        if isinstance(initial, str) and initial:
            call.parts.append(initial)
            events.append(models.ToolCallDelta(position, call.call_id, initial))
        return events

    def _complete(self, call: _Call, final_arguments: Any) -> list[ModelStreamEvent]:
        """Finish a call; `final_arguments` (from a done event) tops up what was not streamed."""
        if call.finished:
            return []
        events: list[ModelStreamEvent] = []
        sent = "".join(call.parts)
        if isinstance(final_arguments, str) and final_arguments != sent:
            if final_arguments.startswith(sent):
                rest = final_arguments[len(sent) :]
                call.parts.append(rest)
                events.append(models.ToolCallDelta(call.position, call.call_id, rest))
            else:
                log.warning(
                    "arguments of call %s disagree with their streamed fragments; keeping the "
                    "fragments",
                    call.call_id,
                )
        full = arguments_text("".join(call.parts))
        rest = full[len("".join(call.parts)) :]
        if rest:  # no arguments at all: "{}"
            call.parts.append(rest)
            events.append(models.ToolCallDelta(call.position, call.call_id, rest))
        call.finished = True
        tool_call = ToolCall(call.call_id, call.name, "".join(call.parts))
        events.append(models.ToolCallFinished(call.position, tool_call))
        return events

    def feed(self, event: Any) -> list[ModelStreamEvent]:
        self.events += 1
        kind = getattr(event, "type", None)
        if kind in ("response.created", "response.in_progress"):
            resp = getattr(event, "response", None)
            self._response_id = str(getattr(resp, "id", "") or self._response_id)
            return []
        if kind == "response.output_item.added":
            item = getattr(event, "item", None)
            if getattr(item, "type", None) == "function_call":
                return self._add_call(item, getattr(event, "output_index", None))
            if getattr(item, "type", None) == "message":
                self._place(getattr(event, "output_index", None), {"type": "message"})
            return []
        if kind == "response.function_call_arguments.delta":
            return self._arguments_delta(event)
        if kind == "response.function_call_arguments.done":
            call = self._find(event)
            return self._complete(call, getattr(event, "arguments", None)) if call else []
        if kind == "response.output_item.done":
            return self._item_done(event)
        if kind in ("response.output_text.delta", "response.refusal.delta"):
            delta = getattr(event, "delta", None)
            if not isinstance(delta, str) or not delta:
                return []
            if kind == "response.refusal.delta":
                self._refusal.append(delta)
                return []
            self._text.append(delta)
            return [models.TextDelta(delta)]
        if kind in ("response.completed", "response.incomplete"):
            self._final = getattr(event, "response", None)
        elif kind == "response.failed":
            raise _failed(getattr(event, "response", None))
        elif kind == "error":
            message = getattr(event, "message", None) or "the stream reported an error"
            code = getattr(event, "code", None)
            text = f"{message} ({code})" if code else str(message)
            raise ProviderFailure(text, body=_dump(event)).to_model_error("openai")
        return []

    def _arguments_delta(self, event: Any) -> list[ModelStreamEvent]:
        call = self._find(event)
        delta = getattr(event, "delta", None)
        if call is None:
            log.warning("arguments fragment for an unknown call item; ignored")
            return []
        if call.finished or not isinstance(delta, str) or not delta:
            return []
        call.parts.append(delta)
        return [models.ToolCallDelta(call.position, call.call_id, delta)]

    def _item_done(self, event: Any) -> list[ModelStreamEvent]:
        item = getattr(event, "item", None)
        item_type = getattr(item, "type", None)
        if item_type in ("reasoning", "message"):
            # only the finished reasoning item has its complete encrypted_content
            entry = _item_json(item) if item_type == "reasoning" else {"type": "message"}
            self._place(getattr(event, "output_index", None), entry)
        if item_type != "function_call":
            return []
        call = self._find(event) or self._by_item.get(str(getattr(item, "id", "")))
        if call is None:
            events = self._add_call(item, getattr(event, "output_index", None))
            return events + self._complete(self._calls[-1], None)
        return self._complete(call, getattr(item, "arguments", None))

    def close(self) -> list[ModelStreamEvent]:
        """Finish open calls, add what only the final response carried, then `ResponseFinished`.

        A server that streams little (no deltas, only `response.completed`) still yields the
        full turn: missing text and calls are delivered here from the final response.
        """
        if not self.events:
            raise ProviderFailure(
                "the stream ended with no data (does the server support streaming?)"
            ).to_model_error("openai")
        events: list[ModelStreamEvent] = []
        final = _read_output(self._final) if self._final is not None else _Output()
        streamed_text = "".join(self._text)
        if final.text and final.text != streamed_text and final.text.startswith(streamed_text):
            rest = final.text[len(streamed_text) :]
            self._text.append(rest)
            events.append(models.TextDelta(rest))
        known = {c.call_id for c in self._calls}
        final_args = {c.id: c.arguments for c in final.calls}
        for call in self._calls:
            events.extend(self._complete(call, final_args.get(call.call_id)))
        for extra in final.calls:
            if extra.id in known:
                continue
            item = _Item(extra.id, extra.name, extra.arguments)
            events.extend(self._add_call(item, None))
            events.extend(self._complete(self._calls[-1], None))
        calls = [ToolCall(c.call_id, c.name, "".join(c.parts)) for c in self._calls]
        refusal = "".join(self._refusal) or final.refusal
        # The final response is authoritative (and what a plain request would have parsed).
        layout = (
            final.layout
            if self._final is not None
            else [entry for _, _, entry in sorted(self._layout, key=lambda t: t[:2])]
        )
        response = _assemble(
            self._final if self._final is not None else _Incomplete(),
            text="".join(self._text),
            refusal=refusal,
            calls=calls,
            layout=layout,
            default_model=self.default_model,
        )
        events.append(models.ResponseFinished(response))
        return events


@dataclass
class _Item:
    """A function_call item rebuilt from the final response (same attribute names)."""

    call_id: str
    name: str
    arguments: str | dict[str, Any]
    id: str = ""
    type: Literal["function_call"] = "function_call"


class _Incomplete:
    """Stands in for the final response when the stream ended without one."""

    status = "truncated"
    usage = None
    model = None
