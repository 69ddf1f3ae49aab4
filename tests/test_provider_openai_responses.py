"""OpenAIResponsesModel through the real `openai` SDK against a scripted local server."""

from __future__ import annotations

import json
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
from callgate.providers._retry import RetryPolicy
from callgate.providers.openai.responses import OpenAIResponsesModel, responses_input
from callgate.serde import message_from_dict, message_to_dict
from callgate.tools.definition import ToolSpec
from tests.fakes.http import Reply
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    error_reply,
    fc_item,
    message_item,
    response_object,
    responses_stream,
)

WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = ToolSpec(
    "get_time",
    "Current time in a timezone.",
    {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
)


class Sleeps:
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


def make_model(server: FakeOpenAIServer, sleeps: Sleeps, **kw: Any) -> OpenAIResponsesModel:
    kw.setdefault("retry", RetryPolicy(max_retries=2, base_delay_s=0.01, max_delay_s=0.02))
    return OpenAIResponsesModel(
        "gpt-test", base_url=server.url, api_key="sk-test", sleep=sleeps, timeout=5, **kw
    )


def history() -> list[Message]:
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
        Message.tool(ToolResult("call_b", "get_time", "09:00")),
        Message.user("Thanks. And Oslo?"),
    ]


async def test_request_body_and_parallel_calls(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(
        Reply.json_body(
            response_object(
                [
                    {"type": "reasoning", "id": "rs_1", "summary": []},
                    message_item("One moment."),
                    fc_item("call_1", "get_weather", '{"city":"Oslo"}', id="fc_1"),
                    fc_item("call_2", "get_time", ' {"tz": "Europe/Oslo"}', id="fc_2"),
                ],
                usage=(300, 40, 128),
            )
        )
    )
    model = make_model(server, sleeps, store=False)
    assert isinstance(model, StreamingModel)
    resp = await model.request(
        ModelRequest(
            messages=history(),
            tools=[WEATHER, TIME],
            system="Be brief.",
            max_tokens=100,
            temperature=0.5,
            extra={"metadata": {"trace": "t1"}},
        )
    )
    (req,) = server.requests
    assert req.path == "/v1/responses"
    assert req.json == {
        "model": "gpt-test",
        "instructions": "Be brief.",
        "input": [
            {"type": "message", "role": "user", "content": "Weather in Paris and time in Tokyo?"},
            {"type": "message", "role": "assistant", "content": "Checking."},
            {
                "type": "function_call",
                "call_id": "call_a",
                "name": "get_weather",
                "arguments": '{"city": "Paris"}',
            },
            {
                "type": "function_call",
                "call_id": "call_b",
                "name": "get_time",
                "arguments": '{"tz": "Asia/Tokyo"}',
            },
            {"type": "function_call_output", "call_id": "call_a", "output": "18C, cloudy"},
            {"type": "function_call_output", "call_id": "call_b", "output": "09:00"},
            {"type": "message", "role": "user", "content": "Thanks. And Oslo?"},
        ],
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Current weather for a city.",
                "parameters": WEATHER.parameters,
                "strict": False,
            },
            {
                "type": "function",
                "name": "get_time",
                "description": "Current time in a timezone.",
                "parameters": TIME.parameters,
                "strict": False,
            },
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "max_output_tokens": 100,
        "temperature": 0.5,
        "store": False,
        "metadata": {"trace": "t1"},
    }
    assert resp.text == "One moment."
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == [
        ("call_1", "get_weather", '{"city":"Oslo"}'),
        ("call_2", "get_time", ' {"tz": "Europe/Oslo"}'),
    ]
    assert resp.stop_reason == "tool_calls"
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.cache_read_tokens) == (
        300,
        40,
        128,
    )


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        (NamedToolChoice("get_time"), {"type": "function", "name": "get_time"}),
    ],
)
async def test_tool_choice_mapping(
    server: FakeOpenAIServer, sleeps: Sleeps, choice: Any, wire: Any
) -> None:
    server.enqueue(Reply.json_body(response_object([message_item("ok")])))
    await make_model(server, sleeps, parallel_tool_calls=False).request(
        ModelRequest(messages=[Message.user("x")], tools=[WEATHER, TIME], tool_choice=choice)
    )
    body = server.requests[0].json
    assert body["tool_choice"] == wire and body["parallel_tool_calls"] is False


async def test_no_tools_and_invalid_choices(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(Reply.json_body(response_object([message_item("hello")])))
    model = make_model(server, sleeps)
    resp = await model.request(ModelRequest(messages=[Message.user("hi")]))
    assert server.requests[0].json == {
        "model": "gpt-test",
        "input": [{"type": "message", "role": "user", "content": "hi"}],
    }
    assert resp.text == "hello" and resp.stop_reason == "end_turn"
    with pytest.raises(ValueError, match="not among"):
        await model.request(
            ModelRequest(
                messages=[Message.user("x")], tools=[TIME], tool_choice=NamedToolChoice("z")
            )
        )
    with pytest.raises(ValueError, match="no tool_result"):
        await model.request(ModelRequest(messages=[Message("tool", "orphan")]))
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "reason", "calls", "expected"),
    [
        ("completed", None, False, "end_turn"),
        ("completed", None, True, "tool_calls"),
        ("incomplete", "max_output_tokens", False, "max_tokens"),
        ("incomplete", "content_filter", False, "content_filter"),
    ],
)
async def test_status_mapping(
    server: FakeOpenAIServer,
    sleeps: Sleeps,
    status: str,
    reason: str | None,
    calls: bool,
    expected: str,
) -> None:
    output = [message_item("t")]
    if calls:
        output.append(fc_item("c1", "get_time", '{"tz":"UTC"}'))
    server.enqueue(
        Reply.json_body(response_object(output, status=status, incomplete_reason=reason))
    )
    resp = await make_model(server, sleeps).request(
        ModelRequest(messages=[Message.user("x")], tools=[TIME])
    )
    assert resp.stop_reason == expected


async def test_refusal_and_empty_arguments(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(
        Reply.json_body(response_object([message_item("I won't do that.", refusal=True)])),
        Reply.json_body(response_object([fc_item("c9", "get_time", "")])),
    )
    model = make_model(server, sleeps)
    refused = await model.request(ModelRequest(messages=[Message.user("x")]))
    assert refused.text == "I won't do that." and refused.stop_reason == "content_filter"
    empty = await model.request(ModelRequest(messages=[Message.user("x")], tools=[TIME]))
    assert empty.tool_calls == [ToolCall("c9", "get_time", "{}")]


async def test_failed_response_is_a_model_error(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(
        Reply.json_body(
            response_object(
                [], status="failed", error={"code": "server_error", "message": "model crashed"}
            )
        )
    )
    with pytest.raises(ModelError, match="model crashed"):
        await make_model(server, sleeps).request(ModelRequest(messages=[Message.user("x")]))


# --- streaming ----------------------------------------------------------------------------------


def interleaved_events() -> list[dict[str, Any]]:
    """Text, then two function calls whose argument deltas alternate."""
    base = response_object([], status="in_progress", usage=None)
    final = response_object(
        [
            message_item("On it."),
            fc_item("call_w", "get_weather", '{"city": "Paris"}', id="fc_w"),
            fc_item("call_t", "get_time", '{"tz": "UTC"}', id="fc_t"),
        ],
        usage=(80, 20, 0),
    )
    added = fc_item("", "", "", status="in_progress")

    def fc_added(idx: int, item_id: str, call_id: str, name: str) -> dict[str, Any]:
        item = {**added, "id": item_id, "call_id": call_id, "name": name}
        return {"type": "response.output_item.added", "output_index": idx, "item": item}

    def args_delta(idx: int, item_id: str, delta: str) -> dict[str, Any]:
        return {
            "type": "response.function_call_arguments.delta",
            "output_index": idx,
            "item_id": item_id,
            "delta": delta,
        }

    def args_done(idx: int, item_id: str, arguments: str) -> dict[str, Any]:
        return {
            "type": "response.function_call_arguments.done",
            "output_index": idx,
            "item_id": item_id,
            "arguments": arguments,
        }

    text = {"type": "response.output_text.delta", "output_index": 0, "item_id": "msg_1"}
    return [
        {"type": "response.created", "response": base},
        {"type": "response.in_progress", "response": base},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"type": "message", "id": "msg_1", "role": "assistant", "content": []},
        },
        {**text, "content_index": 0, "delta": "On ", "logprobs": []},
        {**text, "content_index": 0, "delta": "it.", "logprobs": []},
        fc_added(1, "fc_w", "call_w", "get_weather"),
        fc_added(2, "fc_t", "call_t", "get_time"),
        args_delta(1, "fc_w", '{"ci'),
        args_delta(2, "fc_t", '{"tz'),
        args_delta(1, "fc_w", 'ty": "Paris"}'),
        args_delta(2, "fc_t", '": "UTC"}'),
        args_done(2, "fc_t", '{"tz": "UTC"}'),
        args_done(1, "fc_w", '{"city": "Paris"}'),
        {"type": "response.completed", "response": final},
    ]


async def collect(model: OpenAIResponsesModel, request: ModelRequest) -> list[Any]:
    return [event async for event in model.stream(request)]


async def test_stream_interleaved_parallel_calls(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(responses_stream(interleaved_events()))
    events = await collect(
        make_model(server, sleeps),
        ModelRequest(messages=history(), tools=[WEATHER, TIME], tool_choice="required"),
    )
    body = server.requests[0].json
    assert body["stream"] is True and body["tool_choice"] == "required"
    assert [i["type"] for i in body["input"]][2:6] == [
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
    ]
    assert events[:-1] == [
        TextDelta("On "),
        TextDelta("it."),
        ToolCallStarted(0, "call_w", "get_weather"),
        ToolCallStarted(1, "call_t", "get_time"),
        ToolCallDelta(0, "call_w", '{"ci'),
        ToolCallDelta(1, "call_t", '{"tz'),
        ToolCallDelta(0, "call_w", 'ty": "Paris"}'),
        ToolCallDelta(1, "call_t", '": "UTC"}'),
        ToolCallFinished(1, ToolCall("call_t", "get_time", '{"tz": "UTC"}')),
        ToolCallFinished(0, ToolCall("call_w", "get_weather", '{"city": "Paris"}')),
    ]
    final = events[-1]
    assert isinstance(final, ResponseFinished)
    resp = final.response
    assert resp.text == "On it."
    assert [c.id for c in resp.tool_calls] == ["call_w", "call_t"]
    assert resp.stop_reason == "tool_calls"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (80, 20)


async def test_stream_equals_plain_request(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    events = interleaved_events()
    server.enqueue(responses_stream(events), Reply.json_body(events[-1]["response"]))
    model = make_model(server, sleeps)
    req = ModelRequest(messages=[Message.user("x")], tools=[WEATHER, TIME])
    streamed = (await collect(model, req))[-1].response
    plain = await model.request(req)
    assert streamed.message == plain.message
    assert (streamed.usage, streamed.stop_reason) == (plain.usage, plain.stop_reason)


async def test_stream_with_only_completed_event_still_yields_everything(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    final = response_object([message_item("Hi."), fc_item("c1", "get_time", '{"tz":"CET"}')])
    server.enqueue(responses_stream([{"type": "response.completed", "response": final}]))
    events = await collect(
        make_model(server, sleeps), ModelRequest(messages=[Message.user("x")], tools=[TIME])
    )
    assert events[:-1] == [
        TextDelta("Hi."),
        ToolCallStarted(0, "c1", "get_time"),
        ToolCallDelta(0, "c1", '{"tz":"CET"}'),
        ToolCallFinished(0, ToolCall("c1", "get_time", '{"tz":"CET"}')),
    ]
    assert events[-1].response.tool_calls == [ToolCall("c1", "get_time", '{"tz":"CET"}')]


async def test_stream_done_without_deltas_and_call_without_arguments(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    added = {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": fc_item("c1", "get_time", "", id="fc_1", status="in_progress"),
    }
    added2 = {
        "type": "response.output_item.added",
        "output_index": 1,
        "item": fc_item("c2", "get_time", "", id="fc_2", status="in_progress"),
    }
    done = {
        "type": "response.function_call_arguments.done",
        "output_index": 0,
        "item_id": "fc_1",
        "arguments": '{"tz": "UTC"}',
    }
    server.enqueue(responses_stream([added, added2, done]))  # and no response.completed
    events = await collect(
        make_model(server, sleeps), ModelRequest(messages=[Message.user("x")], tools=[TIME])
    )
    finished = [e.call for e in events if isinstance(e, ToolCallFinished)]
    assert finished == [
        ToolCall("c1", "get_time", '{"tz": "UTC"}'),
        ToolCall("c2", "get_time", "{}"),
    ]
    for f in finished:
        parts = [e.arguments_delta for e in events if isinstance(e, ToolCallDelta) and e.id == f.id]
        assert "".join(parts) == f.arguments
    assert events[-1].response.stop_reason == "tool_calls"


async def test_stream_failure_events(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    failed = response_object(
        [], status="failed", error={"code": "rate_limit_exceeded", "message": "quota gone"}
    )
    server.enqueue(
        responses_stream([{"type": "response.failed", "response": failed}]),
        responses_stream(
            [{"type": "error", "code": "server_error", "message": "boom", "param": None}]
        ),
    )
    model = make_model(server, sleeps)
    with pytest.raises(ModelError, match="quota gone"):
        await collect(model, ModelRequest(messages=[Message.user("x")]))
    with pytest.raises(ModelError, match="boom"):
        await collect(model, ModelRequest(messages=[Message.user("x")]))


async def test_stream_without_events_is_an_error(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(Reply.json_body(response_object([message_item("not streamed")])))
    with pytest.raises(ModelError, match="no data"):
        await collect(make_model(server, sleeps), ModelRequest(messages=[Message.user("x")]))


async def test_stream_broken_midway(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(responses_stream(interleaved_events(), drop_after=6))
    seen: list[Any] = []
    with pytest.raises(ModelError):
        async for e in make_model(server, sleeps).stream(
            ModelRequest(messages=[Message.user("x")], tools=[WEATHER, TIME])
        ):
            seen.append(e)
    assert seen[:2] == [TextDelta("On "), TextDelta("it.")]
    assert not any(isinstance(e, ResponseFinished) for e in seen)


# --- reasoning items travel with the conversation -------------------------------------------

REASONING = {
    "type": "reasoning",
    "id": "rs_1",
    "summary": [{"type": "summary_text", "text": "Oslo needs the weather tool."}],
    "encrypted_content": "gAAAAABoEncrypted+Reasoning/State==",
}
REASONING_2 = {
    "type": "reasoning",
    "id": "rs_2",
    "summary": [],
    "encrypted_content": "gAAAAABoSecond+Step==",
}


def reasoning_output() -> list[dict[str, Any]]:
    return [
        REASONING,
        message_item("Checking."),
        fc_item("call_1", "get_weather", '{"city": "Oslo"}', id="fc_1"),
    ]


def reasoning_stream() -> list[dict[str, Any]]:
    """`reasoning_output` streamed: the reasoning item is announced with part of its encrypted
    content and only complete in `response.output_item.done`."""
    base = response_object([], status="in_progress", usage=None)
    partial = {**REASONING, "encrypted_content": "gAAAAABo"}
    call = fc_item("call_1", "get_weather", "", id="fc_1", status="in_progress")
    text = {"type": "response.output_text.delta", "output_index": 1, "item_id": "msg_1"}
    return [
        {"type": "response.created", "response": base},
        {"type": "response.output_item.added", "output_index": 0, "item": partial},
        {"type": "response.output_item.done", "output_index": 0, "item": REASONING},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {"type": "message", "id": "msg_1", "role": "assistant", "content": []},
        },
        {**text, "content_index": 0, "delta": "Check", "logprobs": []},
        {**text, "content_index": 0, "delta": "ing.", "logprobs": []},
        {"type": "response.output_item.added", "output_index": 2, "item": call},
        {
            "type": "response.function_call_arguments.delta",
            "output_index": 2,
            "item_id": "fc_1",
            "delta": '{"city": "Oslo"}',
        },
        {
            "type": "response.function_call_arguments.done",
            "output_index": 2,
            "item_id": "fc_1",
            "arguments": '{"city": "Oslo"}',
        },
        {"type": "response.completed", "response": response_object(reasoning_output())},
    ]


def through_storage(messages: list[Message]) -> list[Message]:
    """What a paused run keeps: JSON text, read back as another process would."""
    text = json.dumps([message_to_dict(m) for m in messages])
    return [message_from_dict(d) for d in json.loads(text)]


def answered(first: Message) -> list[Message]:
    return [
        Message.user("Weather in Oslo?"),
        first,
        Message.tool(ToolResult(first.tool_calls[0].id, "get_weather", "-2C")),
    ]


ANSWERED_INPUT = [
    {"type": "message", "role": "user", "content": "Weather in Oslo?"},
    REASONING,
    {"type": "message", "role": "assistant", "content": "Checking."},
    {
        "type": "function_call",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city": "Oslo"}',
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "-2C"},
]


async def test_streamed_and_plain_replies_record_the_same_reasoning(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    server.enqueue(
        responses_stream(reasoning_stream()),
        Reply.json_body(response_object(reasoning_output())),
    )
    model = make_model(server, sleeps, store=False, include_encrypted_reasoning=True)
    req = ModelRequest(messages=[Message.user("Weather in Oslo?")], tools=[WEATHER])
    streamed = (await collect(model, req))[-1].response
    plain = await model.request(req)
    assert streamed.message == plain.message
    assert plain.message.provider_data == {
        "openai_responses": {
            "output": [
                REASONING,
                {"type": "message"},
                {"type": "function_call", "index": 0},
            ]
        }
    }
    for body in (server.requests[0].json, server.requests[1].json):
        assert body["include"] == ["reasoning.encrypted_content"] and body["store"] is False


async def test_stream_without_final_response_keeps_the_finished_reasoning_item(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    server.enqueue(responses_stream(reasoning_stream()[:-1]))
    events = await collect(
        make_model(server, sleeps), ModelRequest(messages=[Message.user("x")], tools=[WEATHER])
    )
    message = events[-1].response.message
    assert message.provider_data["openai_responses"]["output"][0] == REASONING


@pytest.mark.parametrize("streamed", [False, True])
async def test_reasoning_survives_serde_and_a_new_model(
    server: FakeOpenAIServer, sleeps: Sleeps, streamed: bool
) -> None:
    first_reply = (
        responses_stream(reasoning_stream())
        if streamed
        else Reply.json_body(response_object(reasoning_output()))
    )
    server.enqueue(first_reply, Reply.json_body(response_object([message_item("-2C.")])))
    options: dict[str, Any] = {"store": False, "include_encrypted_reasoning": True}
    req = ModelRequest(messages=[Message.user("Weather in Oslo?")], tools=[WEATHER])
    first_model = make_model(server, sleeps, **options)
    if streamed:
        first = (await collect(first_model, req))[-1].response
    else:
        first = await first_model.request(req)

    restored = through_storage(answered(first.message))
    assert restored[1] == first.message
    # Another process: a new model object that has seen nothing but the stored conversation.
    resumed = make_model(server, sleeps, **options)
    await resumed.request(ModelRequest(messages=restored, tools=[WEATHER]))
    assert server.requests[1].json["input"] == ANSWERED_INPUT


async def test_reasoning_items_keep_their_place_among_calls(
    server: FakeOpenAIServer, sleeps: Sleeps
) -> None:
    output = [
        REASONING,
        fc_item("call_1", "get_weather", '{"city": "Oslo"}', id="fc_1"),
        REASONING_2,
        fc_item("call_2", "get_time", '{"tz": "Europe/Oslo"}', id="fc_2"),
    ]
    server.enqueue(
        Reply.json_body(response_object(output)),
        Reply.json_body(response_object([message_item("Done.")])),
    )
    model = make_model(server, sleeps, store=False, include_encrypted_reasoning=True)
    first = await model.request(ModelRequest(messages=[Message.user("x")], tools=[WEATHER, TIME]))
    history = through_storage(
        [
            Message.user("x"),
            first.message,
            Message.tool(ToolResult("call_1", "get_weather", "-2C")),
            Message.tool(ToolResult("call_2", "get_time", "09:00")),
        ]
    )
    await make_model(server, sleeps, store=False).request(
        ModelRequest(messages=history, tools=[WEATHER, TIME])
    )
    sent = server.requests[1].json["input"]
    assert [(i["type"], i.get("id") or i.get("call_id")) for i in sent] == [
        ("message", None),
        ("reasoning", "rs_1"),
        ("function_call", "call_1"),
        ("reasoning", "rs_2"),
        ("function_call", "call_2"),
        ("function_call_output", "call_1"),
        ("function_call_output", "call_2"),
    ]
    assert sent[1] == REASONING and sent[3] == REASONING_2


def test_reasoning_without_encrypted_content_needs_a_store() -> None:
    bare = {"type": "reasoning", "id": "rs_1", "summary": []}
    turn = Message.assistant("", [ToolCall("call_1", "get_weather", '{"city": "Oslo"}')])
    turn.provider_data = {
        "openai_responses": {"output": [bare, {"type": "function_call", "index": 0}]}
    }
    request = ModelRequest(messages=[Message.user("x"), turn])
    kinds = [i["type"] for i in responses_input(request, store=False)]
    assert kinds == ["message", "function_call"]  # an id alone cannot be resolved: left out
    assert responses_input(request)[1] == bare  # stored server-side: the id is enough
    assert responses_input(request, store=True)[1] == bare


def test_reasoning_is_never_sent_without_the_item_it_led_to() -> None:
    # e.g. the agent's final answer drops the calls a turn still proposed
    turn = Message.assistant("")
    turn.provider_data = {
        "openai_responses": {"output": [REASONING, {"type": "function_call", "index": 0}]}
    }
    request = ModelRequest(messages=[Message.user("x"), turn, Message.user("y")])
    assert [i["type"] for i in responses_input(request)] == ["message", "message"]


@pytest.mark.parametrize(
    "data",
    [
        {"openai_responses": {"output": "nope"}},
        {"openai_responses": {"output": [{"type": "web_search_call"}]}},
        {"openai_responses": {"output": [{"type": "function_call", "index": "0"}]}},
    ],
)
def test_malformed_stored_reasoning_is_refused(data: dict[str, Any]) -> None:
    turn = Message("assistant", "ok", provider_data=data)
    with pytest.raises(ValueError, match="openai_responses"):
        responses_input(ModelRequest(messages=[Message.user("x"), turn]))


# --- failures and retries -----------------------------------------------------------------------


async def test_400_not_retried(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(error_reply(400, "Invalid schema for function 'get_time': schema refused"))
    with pytest.raises(ModelError, match="schema refused") as info:
        await make_model(server, sleeps).request(
            ModelRequest(messages=[Message.user("x")], tools=[TIME])
        )
    assert info.value.status == 400 and not info.value.retryable
    assert len(server.requests) == 1 and sleeps.waits == []


async def test_429_with_retry_after_then_success(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(
        error_reply(429, "Rate limit", type="rate_limit_error", headers={"Retry-After": "1"}),
        Reply.json_body(response_object([message_item("fine")])),
    )
    resp = await make_model(server, sleeps).request(ModelRequest(messages=[Message.user("x")]))
    assert resp.text == "fine" and sleeps.waits == [1.0] and len(server.requests) == 2


async def test_500_then_success_and_bounded(server: FakeOpenAIServer, sleeps: Sleeps) -> None:
    server.enqueue(
        error_reply(500, "oops", type="server_error"),
        responses_stream(interleaved_events()),
    )
    events = await collect(
        make_model(server, sleeps, retry=RetryPolicy(max_retries=1, base_delay_s=0.05, jitter=0)),
        ModelRequest(messages=[Message.user("x")], tools=[WEATHER, TIME]),
    )
    assert sleeps.waits == [0.05]
    assert isinstance(events[-1], ResponseFinished) and len(events[-1].response.tool_calls) == 2

    server.enqueue(*[error_reply(500, "still down", type="server_error") for _ in range(3)])
    with pytest.raises(ModelError, match="gave up after 3 attempts"):
        await make_model(server, sleeps).request(ModelRequest(messages=[Message.user("x")]))
    assert len(server.requests) == 2 + 3
