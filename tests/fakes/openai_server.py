"""An OpenAI-shaped scripted server: builders for the documented wire format on `FakeHTTPServer`.

Chat Completions (`POST /v1/chat/completions`) and Responses (`POST /v1/responses`) bodies,
stream chunks/events and error bodies, written out as plain dicts so tests read like the wire.
Point the official SDK at `server.url` (which ends in ``/v1``).
"""

from __future__ import annotations

from typing import Any

from tests.fakes.http import FakeHTTPServer, Reply, SSEEvent

__all__ = [
    "FakeOpenAIServer",
    "chat_chunk",
    "chat_completion",
    "chat_stream",
    "error_reply",
    "fc_item",
    "message_item",
    "response_object",
    "responses_stream",
    "tool_call_chunk",
    "wire_call",
]


class FakeOpenAIServer(FakeHTTPServer):
    def __init__(self) -> None:
        super().__init__(base_path="/v1")


# --- errors ------------------------------------------------------------------------------------


def error_reply(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    body = {"error": {"message": message, "type": type, "param": None, "code": code}}
    return Reply.json_body(body, status=status, headers=headers)


# --- chat completions ----------------------------------------------------------------------------


def _usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def chat_completion(
    *,
    content: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str = "stop",
    usage: tuple[int, int, int] | None = (10, 5, 0),
    model: str = "gpt-test",
    id: str = "chatcmpl-1",
    refusal: str | None = None,
) -> dict[str, Any]:
    """A chat.completion; `tool_calls` are wire dicts (see `wire_call`)."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    body: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = _usage(*usage)
    return body


def wire_call(id: str | None, name: str, arguments: Any) -> dict[str, Any]:
    call: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if id is not None:
        call["id"] = id
    return call


def tool_call_chunk(
    index: int, *, id: str | None = None, name: str | None = None, arguments: str | None = None
) -> dict[str, Any]:
    """One tool-call fragment as it appears in `delta.tool_calls`."""
    tc: dict[str, Any] = {"index": index}
    if id is not None:
        tc["id"] = id
        tc["type"] = "function"
    fn: dict[str, Any] = {}
    if name is not None:
        fn["name"] = name
    if arguments is not None:
        fn["arguments"] = arguments
    if fn:
        tc["function"] = fn
    return tc


def chat_chunk(
    *,
    content: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    role: str | None = None,
    finish_reason: str | None = None,
    id: str = "chatcmpl-s1",
    model: str = "gpt-test",
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    return {
        "id": id,
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def chat_stream(
    chunks: list[dict[str, Any]],
    *,
    usage: tuple[int, int, int] | None = (10, 5, 0),
    id: str = "chatcmpl-s1",
    model: str = "gpt-test",
    done: bool = True,
    drop_after: int | None = None,
) -> Reply:
    """SSE reply: the chunks, a usage-only chunk (as with include_usage) and ``[DONE]``."""
    events: list[Any] = list(chunks)
    if usage is not None:
        events.append(
            {
                "id": id,
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": model,
                "choices": [],
                "usage": _usage(*usage),
            }
        )
    if done:
        events.append("[DONE]")
    return Reply.sse(events, drop_after=drop_after)


# --- responses ---------------------------------------------------------------------------------


def message_item(text: str, *, id: str = "msg_1", refusal: bool = False) -> dict[str, Any]:
    part = (
        {"type": "refusal", "refusal": text}
        if refusal
        else {"type": "output_text", "text": text, "annotations": []}
    )
    return {
        "type": "message",
        "id": id,
        "status": "completed",
        "role": "assistant",
        "content": [part],
    }


def fc_item(
    call_id: str, name: str, arguments: str, *, id: str = "fc_1", status: str = "completed"
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def response_object(
    output: list[dict[str, Any]],
    *,
    status: str = "completed",
    incomplete_reason: str | None = None,
    usage: tuple[int, int, int] | None = (20, 7, 3),
    id: str = "resp_1",
    model: str = "gpt-test",
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": id,
        "object": "response",
        "created_at": 1_700_000_000,
        "status": status,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
    }
    if usage is not None:
        inp, out, cached = usage
        body["usage"] = {
            "input_tokens": inp,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": inp + out,
        }
    return body


def responses_stream(events: list[dict[str, Any]], *, drop_after: int | None = None) -> Reply:
    """SSE reply with ``event:`` lines and sequence numbers, as the Responses API sends."""
    sse = [
        SSEEvent({**e, "sequence_number": n}, event=str(e["type"])) for n, e in enumerate(events)
    ]
    return Reply.sse(sse, drop_after=drop_after)
