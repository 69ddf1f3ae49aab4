"""A local Anthropic Messages API (POST /v1/messages) for tests through the official SDK.

Replies are scripted; requests are *checked* against the documented rules before a scripted
success is sent, and a request that breaks one gets the 400 `invalid_request_error` the real
API would send. So a test passes only if the adapter produced a body the API accepts:

- `model`, `max_tokens` and a non-empty `messages` list are required; the system prompt is the
  top-level `system` field (no `system` role inside `messages`);
- roles alternate, starting with `user`; text blocks are non-empty;
- `tool_use` blocks appear only in assistant turns, with an object `input`;
- every `tool_use` is answered by a `tool_result` with its id in the very next user message,
  and `tool_result` blocks come before any other content there;
- `tools` carry `name` and an object `input_schema`; `tool_choice` is auto/any/tool/none and a
  named tool must exist.

Wire shapes follow the Messages API reference: a reply is a `message` object with `content`
blocks, `stop_reason` and `usage`; a stream is SSE with `message_start`, `content_block_start`,
`content_block_delta` (`text_delta` / `input_json_delta`), `content_block_stop`,
`message_delta`, `message_stop` (and `ping`, `error`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .http import FakeHTTPServer, RecordedRequest, Reply, SSEEvent

__all__ = [
    "FakeAnthropic",
    "check_messages_request",
    "message_events",
    "text",
    "tool_use",
]

MODEL = "claude-test-1"


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(call_id: str, name: str, input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": input}


def _usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    base = {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    base.update(usage or {})
    return base


def message_body(
    content: list[dict[str, Any]],
    *,
    stop_reason: str | None = "end_turn",
    usage: dict[str, Any] | None = None,
    model: str = MODEL,
    message_id: str = "msg_01",
) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": _usage(usage),
    }


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def message_events(
    blocks: list[dict[str, Any]],
    *,
    stop_reason: str = "end_turn",
    usage: dict[str, Any] | None = None,
    json_chunks: int = 3,
    model: str = MODEL,
) -> list[SSEEvent]:
    """The SSE events of one message whose blocks are streamed one after another.

    A `tool_use` block's input is serialised and split into `json_chunks` `partial_json`
    fragments (an empty input gets no delta at all, as the API does for `{}`); a text block
    is split into two `text_delta`s.
    """
    final = _usage(usage)
    start_usage = dict(final, output_tokens=1)
    events = [
        SSEEvent(
            {
                "type": "message_start",
                "message": {
                    **message_body([], stop_reason=None, model=model),
                    "usage": start_usage,
                },
            },
            "message_start",
        ),
        SSEEvent({"type": "ping"}, "ping"),
    ]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            events.append(
                SSEEvent(
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                    "content_block_start",
                )
            )
            half = len(block["text"]) // 2
            for piece in (block["text"][:half], block["text"][half:]):
                events.append(text_delta(index, piece))
        else:
            events.append(tool_start(index, block["id"], block["name"]))
            for piece in split_json(block["input"], json_chunks):
                events.append(json_delta(index, piece))
        events.append(block_stop(index))
    events.append(message_delta(stop_reason, final["output_tokens"]))
    events.append(SSEEvent({"type": "message_stop"}, "message_stop"))
    return events


def split_json(value: dict[str, Any], parts: int) -> list[str]:
    if not value:
        return []
    raw = json.dumps(value)
    size = max(1, -(-len(raw) // parts))
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def tool_start(index: int, call_id: str, name: str) -> SSEEvent:
    return SSEEvent(
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}},
        },
        "content_block_start",
    )


def text_start(index: int) -> SSEEvent:
    return SSEEvent(
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "text", "text": ""},
        },
        "content_block_start",
    )


def text_delta(index: int, piece: str) -> SSEEvent:
    return SSEEvent(
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "text_delta", "text": piece},
        },
        "content_block_delta",
    )


def json_delta(index: int, piece: str) -> SSEEvent:
    return SSEEvent(
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "input_json_delta", "partial_json": piece},
        },
        "content_block_delta",
    )


def block_stop(index: int) -> SSEEvent:
    return SSEEvent({"type": "content_block_stop", "index": index}, "content_block_stop")


def message_start(usage: dict[str, Any] | None = None, model: str = MODEL) -> SSEEvent:
    return SSEEvent(
        {
            "type": "message_start",
            "message": {**message_body([], stop_reason=None, model=model), "usage": _usage(usage)},
        },
        "message_start",
    )


def message_delta(stop_reason: str, output_tokens: int) -> SSEEvent:
    return SSEEvent(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
        "message_delta",
    )


def message_stop() -> SSEEvent:
    return SSEEvent({"type": "message_stop"}, "message_stop")


# --- request rules -------------------------------------------------------------------------


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content if isinstance(content, list) else []


def check_messages_request(body: Any) -> list[str]:
    """Every documented rule `body` breaks (empty when the API would accept it)."""
    problems: list[str] = []
    if not isinstance(body, dict):
        return ["body: must be a JSON object"]
    if not isinstance(body.get("model"), str) or not body["model"]:
        problems.append("model: Field required")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        problems.append("max_tokens: Field required")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        problems.append("system: Input should be a valid string or list of text blocks")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        problems.append("messages: at least one message is required")
        return problems
    previous_tool_ids: list[str] = []
    for n, message in enumerate(messages):
        where = f"messages.{n}"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            problems.append(f"{where}.role: Input should be 'user' or 'assistant'")
            continue
        expected = "user" if n % 2 == 0 else "assistant"
        if role != expected:
            problems.append(f"{where}: roles must alternate between 'user' and 'assistant'")
        blocks = _blocks(message)
        if not blocks:
            problems.append(f"{where}: all messages must have non-empty content")
        seen_other = False
        answered: list[str] = []
        for b, block in enumerate(blocks):
            kind = block.get("type")
            if kind == "text":
                if not block.get("text"):
                    problems.append(f"{where}.content.{b}: text content blocks must be non-empty")
                seen_other = True
            elif kind == "tool_use":
                if role != "assistant":
                    problems.append(f"{where}.content.{b}: tool_use is only allowed for assistant")
                if not isinstance(block.get("input"), dict):
                    problems.append(
                        f"{where}.content.{b}.input: Input should be a valid dictionary"
                    )
                if not block.get("id") or not block.get("name"):
                    problems.append(f"{where}.content.{b}: tool_use needs id and name")
            elif kind == "tool_result":
                if role != "user":
                    problems.append(f"{where}.content.{b}: tool_result is only allowed for user")
                if seen_other:
                    problems.append(
                        f"{where}.content.{b}: tool_result blocks must come first in the user "
                        "message"
                    )
                if block.get("tool_use_id") not in previous_tool_ids:
                    problems.append(
                        f"{where}.content.{b}: unexpected `tool_use_id` found in `tool_result` "
                        "blocks: each tool_result must have a corresponding tool_use block in "
                        "the previous message"
                    )
                answered.append(block.get("tool_use_id"))
                content = block.get("content")
                if content is not None and not isinstance(content, str | list):
                    problems.append(f"{where}.content.{b}.content: must be a string or blocks")
                if "is_error" in block and not isinstance(block["is_error"], bool):
                    problems.append(f"{where}.content.{b}.is_error: must be a boolean")
            elif kind in ("thinking", "redacted_thinking"):
                if role != "assistant":
                    problems.append(f"{where}.content.{b}: {kind} is only allowed for assistant")
                if kind == "thinking" and not block.get("signature"):
                    problems.append(f"{where}.content.{b}.signature: Field required")
            else:
                problems.append(f"{where}.content.{b}: unsupported block type {kind!r}")
        if role == "user" and previous_tool_ids:
            missing = [i for i in previous_tool_ids if i not in answered]
            if missing:
                problems.append(
                    f"{where}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}"
                )
        previous_tool_ids = (
            [b["id"] for b in blocks if b.get("type") == "tool_use"] if role == "assistant" else []
        )
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        turns = [m for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
        last = _blocks(turns[-1]) if turns else []
        if any(b.get("type") == "tool_use" for b in last) and last[0].get("type") not in (
            "thinking",
            "redacted_thinking",
        ):
            problems.append(
                f"Expected `thinking` or `redacted_thinking`, but found `{last[0].get('type')}`. "
                "When `thinking` is enabled, a final `assistant` message must start with a "
                "thinking block"
            )
    tool_names: list[str] = []
    for t, tool in enumerate(body.get("tools") or []):
        if not tool.get("name"):
            problems.append(f"tools.{t}.name: Field required")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            problems.append(f"tools.{t}.input_schema.type: Input should be 'object'")
        tool_names.append(tool.get("name"))
    choice = body.get("tool_choice")
    if choice is not None:
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind not in ("auto", "any", "tool", "none"):
            problems.append("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
        if kind == "tool" and choice.get("name") not in tool_names:
            problems.append(f"tool_choice.name: tool {choice.get('name')!r} not found in tools")
        if kind == "none" and "disable_parallel_tool_use" in choice:
            problems.append("tool_choice.disable_parallel_tool_use: Extra inputs are not permitted")
    return problems


# --- the server ----------------------------------------------------------------------------


class FakeAnthropic:
    """Scripted, rule-checking Messages API. Use as a context manager; point the SDK at `url`."""

    def __init__(self) -> None:
        self.http = FakeHTTPServer()

    def __enter__(self) -> FakeAnthropic:
        self.http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.stop()

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.http.requests

    @property
    def bodies(self) -> list[Any]:
        return [r.json for r in self.requests]

    def _checked(self, reply: Reply) -> Any:
        def respond(request: RecordedRequest) -> Reply:
            if request.method != "POST" or request.path != "/v1/messages":
                return Reply.json_body(
                    error_body("not_found_error", f"no route {request.method} {request.path}"),
                    status=404,
                )
            problems = check_messages_request(request.json)
            if problems:
                return Reply.json_body(
                    error_body("invalid_request_error", "; ".join(problems)), status=400
                )
            return reply

        return respond

    def reply(
        self,
        content: list[dict[str, Any]],
        *,
        stop_reason: str | None = "end_turn",
        usage: dict[str, Any] | None = None,
        model: str = MODEL,
    ) -> None:
        self.http.enqueue(
            self._checked(
                Reply.json_body(
                    message_body(content, stop_reason=stop_reason, usage=usage, model=model)
                )
            )
        )

    def reply_stream(self, events: Iterable[SSEEvent], **kw: Any) -> None:
        self.http.enqueue(self._checked(Reply.sse(list(events), **kw)))

    def reply_error(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.http.enqueue(
            Reply.json_body(error_body(error_type, message), status=status, headers=headers)
        )

    def reply_raw(self, reply: Reply) -> None:
        self.http.enqueue(reply)


def thinking_start(index: int) -> SSEEvent:
    return SSEEvent(
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        "content_block_start",
    )


def thinking_delta(index: int, piece: str) -> SSEEvent:
    return SSEEvent(
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "thinking_delta", "thinking": piece},
        },
        "content_block_delta",
    )


def signature_delta(index: int, signature: str) -> SSEEvent:
    return SSEEvent(
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "signature_delta", "signature": signature},
        },
        "content_block_delta",
    )
