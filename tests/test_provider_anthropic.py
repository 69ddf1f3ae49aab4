"""AnthropicModel through the official `anthropic` SDK against a local Messages API.

The fake server (tests/fakes/anthropic_server.py) refuses any body that breaks the documented
rules, so every successful call here also proves the body was acceptable; the exact bodies are
asserted as well.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from callgate.errors import ModelError
from callgate.messages import Message, ToolCall, ToolResult
from callgate.models import (
    ModelRequest,
    NamedToolChoice,
    ResponseFinished,
    TextDelta,
    ToolCallDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from callgate.providers._retry import RetryPolicy
from callgate.providers.anthropic import AnthropicModel, render_messages
from callgate.serde import message_from_dict, message_to_dict
from callgate.tools.definition import Tool
from tests.fakes.anthropic_server import (
    FakeAnthropic,
    block_stop,
    check_messages_request,
    json_delta,
    message_delta,
    message_events,
    message_start,
    message_stop,
    signature_delta,
    text,
    text_delta,
    text_start,
    thinking_delta,
    thinking_start,
    tool_start,
    tool_use,
)
from tests.fakes.http import Reply, SSEEvent

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
    },
    "required": ["city"],
    "additionalProperties": False,
}


def weather_tool() -> Tool:
    return Tool.from_schema(
        "get_weather", "Current weather for a city.", WEATHER_SCHEMA, lambda city, unit="c": city
    )


WEATHER_WIRE = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": WEATHER_SCHEMA,
}


@pytest.fixture
def server():
    with FakeAnthropic() as fake:
        yield fake
        assert fake.http.pending == 0, "the test left scripted replies unconsumed"


def make_model(server: FakeAnthropic, **kw: Any) -> AnthropicModel:
    kw.setdefault("retry", RetryPolicy(max_retries=2, base_delay_s=0.001, max_delay_s=0.002))
    return AnthropicModel(
        "claude-test-1", api_key="test-key", base_url=server.url, max_tokens=256, **kw
    )


def weather_request(**kw: Any) -> ModelRequest:
    return ModelRequest(
        messages=[Message.user("Weather in Paris and Rome?")],
        tools=[weather_tool().spec],
        system="You are terse.",
        **kw,
    )


# --- request / response ---------------------------------------------------------------------


async def test_text_and_parallel_calls_exact_body_and_result(server):
    server.reply(
        [
            text("Checking both."),
            tool_use("toolu_1", "get_weather", {"city": "Paris"}),
            tool_use("toolu_2", "get_weather", {"city": "Rome", "unit": "f"}),
        ],
        stop_reason="tool_use",
        usage={"input_tokens": 30, "output_tokens": 12},
    )
    model = make_model(server)
    response = await model.request(weather_request(temperature=0.2))

    assert len(server.requests) == 1
    req = server.requests[0]
    assert req.path == "/v1/messages"
    assert "test-key" in (req.headers.get("x-api-key"), req.headers.get("authorization", "")[7:])
    assert req.headers["anthropic-version"]
    assert req.json == {
        "model": "claude-test-1",
        "max_tokens": 256,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]}
        ],
        "temperature": 0.2,
        "tools": [WEATHER_WIRE],
        "tool_choice": {"type": "auto"},
    }
    assert response.text == "Checking both."
    assert response.tool_calls == [
        ToolCall("toolu_1", "get_weather", {"city": "Paris"}),
        ToolCall("toolu_2", "get_weather", {"city": "Rome", "unit": "f"}),
    ]
    assert response.stop_reason == "tool_calls"
    assert response.model == "claude-test-1"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (30, 12)
    assert response.usage.requests == 1


async def test_tool_results_merged_into_one_user_message_with_following_text(server):
    server.reply([text("Paris is sunny; Rome failed.")])
    history = [
        Message.user("Weather in Paris and Rome?"),
        Message.assistant(
            "Checking.",
            [
                ToolCall("toolu_1", "get_weather", '{"city": "Paris"}'),  # raw JSON text
                ToolCall("toolu_2", "get_weather", '{"city": "Ro'),  # broken JSON: sent as {}
            ],
        ),
        Message.tool(ToolResult("toolu_1", "get_weather", '{"temp_c": 21, "sky": "clear"}')),
        Message.tool(
            ToolResult("toolu_2", "get_weather", "Arguments were not valid JSON.", "correctable")
        ),
        Message.user("Also, be brief."),
    ]
    model = make_model(server)
    response = await model.request(ModelRequest(messages=history, tools=[weather_tool().spec]))

    assert server.bodies[0]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": '{"temp_c": 21, "sky": "clear"}',
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "Arguments were not valid JSON.",
                    "is_error": True,
                },
                {"type": "text", "text": "Also, be brief."},
            ],
        },
    ]
    assert response.text == "Paris is sunny; Rome failed."
    assert response.stop_reason == "end_turn"
    assert response.tool_calls == []


def test_render_puts_results_first_and_folds_stray_system_messages():
    messages = [
        Message.system("Be kind."),
        Message.user("hi"),
        Message.assistant("", [ToolCall("t1", "f", {})]),
        Message.user("actually wait"),  # user text arrives before the result
        Message.tool(ToolResult("t1", "f", "ok")),
        Message.assistant(""),  # empty turn: dropped, never an empty content list
    ]
    rendered, system = render_messages(messages)
    assert system == "Be kind."
    assert rendered == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "ok"},
                {"type": "text", "text": "actually wait"},
            ],
        },
    ]
    assert check_messages_request({"model": "m", "max_tokens": 1, "messages": rendered}) == []


@pytest.mark.parametrize(
    ("choice", "parallel", "wire"),
    [
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", True, {"type": "any"}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (NamedToolChoice("get_weather"), True, {"type": "tool", "name": "get_weather"}),
        ("none", False, {"type": "none"}),
    ],
)
async def test_tool_choice_mapping(server, choice, parallel, wire):
    server.reply([text("ok")])
    model = make_model(server)
    await model.request(weather_request(tool_choice=choice, parallel_tool_calls=parallel))
    assert server.bodies[0]["tool_choice"] == wire
    assert server.bodies[0]["tools"] == [WEATHER_WIRE]


async def test_no_tools_means_no_tool_fields_and_extra_body_is_merged(server):
    server.reply([text("hello")])
    model = make_model(server, extra_body={"metadata": {"user_id": "u-1"}})
    request = ModelRequest(messages=[Message.user("hi")], extra={"top_k": 5}, max_tokens=64)
    await model.request(request)
    assert server.bodies[0] == {
        "model": "claude-test-1",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "metadata": {"user_id": "u-1"},
        "top_k": 5,
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("end_turn", "end_turn"),
        ("stop_sequence", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("refusal", "content_filter"),
        ("pause_turn", "other"),
        ("something_new", "other"),
    ],
)
async def test_stop_reason_mapping(server, raw, expected):
    server.reply([text("x")], stop_reason=raw)
    response = await make_model(server).request(ModelRequest(messages=[Message.user("hi")]))
    assert response.stop_reason == expected


async def test_usage_counts_cache_reads_and_writes(server):
    server.reply(
        [text("x")],
        usage={
            "input_tokens": 7,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 900,
            "output_tokens": 3,
        },
    )
    response = await make_model(server).request(ModelRequest(messages=[Message.user("hi")]))
    assert response.usage.input_tokens == 1007
    assert response.usage.cache_read_tokens == 900
    assert response.usage.output_tokens == 3


# --- streaming ------------------------------------------------------------------------------


async def collect(model: AnthropicModel, request: ModelRequest) -> list[Any]:
    return [event async for event in model.stream(request)]


async def test_stream_text_and_two_calls(server):
    blocks = [
        text("Checking both."),
        tool_use("toolu_1", "get_weather", {"city": "Paris"}),
        tool_use("toolu_2", "get_weather", {"city": "Rome", "unit": "f"}),
    ]
    server.reply_stream(
        message_events(
            blocks, stop_reason="tool_use", usage={"input_tokens": 30, "output_tokens": 12}
        )
    )
    model = make_model(server)
    events = await collect(model, weather_request())

    assert server.bodies[0]["stream"] is True
    assert {k: v for k, v in server.bodies[0].items() if k != "stream"} == model.build_body(
        weather_request()
    )
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert "".join(texts) == "Checking both."
    assert len(texts) == 2  # the fake splits text into two deltas
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [(e.index, e.id, e.name) for e in started] == [
        (0, "toolu_1", "get_weather"),
        (1, "toolu_2", "get_weather"),
    ]
    for index, call_id, args in (
        (0, "toolu_1", {"city": "Paris"}),
        (1, "toolu_2", {"city": "Rome", "unit": "f"}),
    ):
        deltas = [e for e in events if isinstance(e, ToolCallDelta) and e.index == index]
        assert all(d.id == call_id for d in deltas)
        assert len(deltas) > 1
        joined = "".join(d.arguments_delta for d in deltas)
        assert joined == json.dumps(args)
        finished = [e for e in events if isinstance(e, ToolCallFinished) and e.index == index]
        assert len(finished) == 1
        assert finished[0].call == ToolCall(call_id, "get_weather", joined)
    final = events[-1]
    assert isinstance(final, ResponseFinished)
    assert final.response.text == "Checking both."
    assert final.response.tool_calls == [
        ToolCall("toolu_1", "get_weather", {"city": "Paris"}),
        ToolCall("toolu_2", "get_weather", {"city": "Rome", "unit": "f"}),
    ]
    assert final.response.stop_reason == "tool_calls"
    assert (final.response.usage.input_tokens, final.response.usage.output_tokens) == (30, 12)


async def test_stream_equals_plain_request(server):
    blocks = [text("Both."), tool_use("toolu_9", "get_weather", {"city": "Oslo"})]
    server.reply(blocks, stop_reason="tool_use", usage={"input_tokens": 5, "output_tokens": 6})
    server.reply_stream(
        message_events(
            blocks, stop_reason="tool_use", usage={"input_tokens": 5, "output_tokens": 6}
        )
    )
    model = make_model(server)
    plain = await model.request(weather_request())
    streamed = (await collect(model, weather_request()))[-1].response
    assert streamed.message == plain.message
    assert streamed.stop_reason == plain.stop_reason
    assert streamed.usage == plain.usage


async def test_stream_interleaved_blocks_keep_their_own_fragments(server):
    server.reply_stream(
        [
            message_start(),
            tool_start(0, "toolu_a", "get_weather"),
            tool_start(1, "toolu_b", "get_weather"),
            json_delta(1, '{"city": '),
            json_delta(0, '{"ci'),
            json_delta(1, '"Rome"}'),
            json_delta(0, 'ty": "Paris"}'),
            block_stop(1),
            block_stop(0),
            message_delta("tool_use", 20),
            message_stop(),
        ]
    )
    events = await collect(make_model(server), weather_request())
    finished = {e.index: e.call for e in events if isinstance(e, ToolCallFinished)}
    assert finished == {
        0: ToolCall("toolu_a", "get_weather", '{"city": "Paris"}'),
        1: ToolCall("toolu_b", "get_weather", '{"city": "Rome"}'),
    }
    final = events[-1].response
    assert [c.id for c in final.tool_calls] == ["toolu_a", "toolu_b"]
    assert [c.arguments for c in final.tool_calls] == [{"city": "Paris"}, {"city": "Rome"}]


async def test_stream_call_without_deltas_gets_empty_object(server):
    server.reply_stream(
        [
            message_start(),
            text_start(0),
            text_delta(0, "Now."),
            block_stop(0),
            tool_start(1, "toolu_n", "now"),
            block_stop(1),
            message_delta("tool_use", 4),
            message_stop(),
        ]
    )
    events = await collect(make_model(server), weather_request())
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert finished == [ToolCallFinished(0, ToolCall("toolu_n", "now", "{}"))]
    assert not [e for e in events if isinstance(e, ToolCallDelta)]
    assert events[-1].response.tool_calls == [ToolCall("toolu_n", "now", {})]
    assert events[-1].response.text == "Now."


async def test_stream_broken_arguments_stay_raw_for_the_gate(server):
    server.reply_stream(
        [
            message_start(),
            tool_start(0, "toolu_x", "get_weather"),
            json_delta(0, '{"city": "Par'),
            block_stop(0),
            message_delta("max_tokens", 4),
            message_stop(),
        ]
    )
    events = await collect(make_model(server), weather_request())
    final = events[-1].response
    assert final.tool_calls == [ToolCall("toolu_x", "get_weather", '{"city": "Par')]
    assert final.stop_reason == "max_tokens"


async def test_stream_cut_off_before_message_stop_is_an_error(server):
    events = message_events([text("Hello there")])
    server.reply_stream(events, drop_after=4)  # message_start, ping, block start, one delta
    model = make_model(server)
    seen: list[Any] = []
    with pytest.raises(ModelError) as err:
        async for event in model.stream(ModelRequest(messages=[Message.user("hi")])):
            seen.append(event)
    assert err.value.retryable
    assert not any(isinstance(e, ResponseFinished) for e in seen)
    assert len(server.requests) == 1  # text was already delivered: never silently re-asked


async def test_stream_overloaded_before_any_output_is_retried(server):
    server.reply_stream(
        [
            message_start(),
            SSEEvent(
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                "error",
            ),
        ]
    )
    server.reply_stream(message_events([text("second try")]))
    events = await collect(make_model(server), ModelRequest(messages=[Message.user("hi")]))
    assert events[-1].response.text == "second try"
    assert len(server.requests) == 2


async def test_stream_error_after_output_is_reported_not_retried(server):
    server.reply_stream(
        [
            message_start(),
            text_start(0),
            text_delta(0, "Part"),
            SSEEvent(
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                "error",
            ),
        ]
    )
    model = make_model(server)
    seen: list[Any] = []
    with pytest.raises(ModelError) as err:
        async for event in model.stream(ModelRequest(messages=[Message.user("hi")])):
            seen.append(event)
    assert seen == [TextDelta("Part")]
    assert err.value.status == 529
    assert err.value.retryable
    assert "Overloaded" in str(err.value)
    assert len(server.requests) == 1


# --- failures -------------------------------------------------------------------------------


async def test_bad_request_is_not_retried_and_keeps_the_api_message(server):
    server.reply_error(400, "invalid_request_error", "tools.0.input_schema: JSON schema is invalid")
    model = make_model(server)
    with pytest.raises(ModelError) as err:
        await model.request(weather_request())
    assert err.value.status == 400
    assert not err.value.retryable
    assert "tools.0.input_schema: JSON schema is invalid" in str(err.value)
    assert len(server.requests) == 1


async def test_rate_limit_honours_retry_after_then_succeeds(server):
    server.reply_error(429, "rate_limit_error", "slow down", headers={"retry-after": "2"})
    server.reply([text("done")])
    model = make_model(server)
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    model._sleep = record
    response = await model.request(ModelRequest(messages=[Message.user("hi")]))
    assert response.text == "done"
    assert waits == [2.0]
    assert len(server.requests) == 2
    assert server.bodies[0] == server.bodies[1]


@pytest.mark.parametrize("status", [500, 529])
async def test_server_errors_retry_up_to_the_cap(server, status):
    for _ in range(3):
        server.reply_error(status, "overloaded_error" if status == 529 else "api_error", "busy")
    model = make_model(server)  # max_retries=2 -> 3 attempts
    with pytest.raises(ModelError) as err:
        await model.request(ModelRequest(messages=[Message.user("hi")]))
    assert err.value.status == status
    assert err.value.retryable
    assert "gave up after 3 attempts" in str(err.value)
    assert len(server.requests) == 3
    assert server.http.pending == 0


async def test_overloaded_then_success(server):
    server.reply_error(529, "overloaded_error", "Overloaded")
    server.reply([text("fine")])
    response = await make_model(server).request(ModelRequest(messages=[Message.user("hi")]))
    assert response.text == "fine"
    assert len(server.requests) == 2


async def test_timeout_is_retried_then_reported(server):
    for _ in range(2):
        server.reply_raw(Reply(delay_s=0.5, body=b"{}"))
    model = make_model(server, timeout=0.1, retry=RetryPolicy(max_retries=1, base_delay_s=0.001))
    with pytest.raises(ModelError) as err:
        await model.request(ModelRequest(messages=[Message.user("hi")]))
    assert err.value.retryable
    assert "timed out" in str(err.value)
    assert len(server.requests) == 2


async def test_given_client_has_its_retries_switched_off(server):
    client = anthropic.AsyncAnthropic(api_key="k", base_url=server.url, max_retries=5)
    model = AnthropicModel("claude-test-1", client=client, retry=RetryPolicy(max_retries=0))
    server.reply_error(500, "api_error", "boom")
    with pytest.raises(ModelError):
        await model.request(ModelRequest(messages=[Message.user("hi")]))
    assert len(server.requests) == 1  # neither the SDK nor callgate retried
    assert model.client.max_retries == 0


def test_constructor_rejects_nonsense():
    with pytest.raises(ValueError, match="either client"):
        AnthropicModel("claude", client=anthropic.AsyncAnthropic(api_key="k"), api_key="k")
    with pytest.raises(ValueError):
        AnthropicModel("", api_key="k")
    with pytest.raises(ValueError):
        AnthropicModel("claude", api_key="k", max_tokens=0)


# --- end to end through the agent -----------------------------------------------------------


async def test_agent_round_trip_sends_real_tool_output_back(server):
    from callgate.agent.loop import Agent

    calls: list[str] = []

    def get_weather(city: str, unit: str = "c") -> str:
        calls.append(city)
        return f"{city}: 21{unit.upper()}"

    tool = Tool.from_schema(
        "get_weather", "Current weather for a city.", WEATHER_SCHEMA, get_weather
    )
    server.reply(
        [
            tool_use("toolu_1", "get_weather", {"city": "Paris"}),
            tool_use("toolu_2", "get_weather", {"city": "Rome", "unit": "f"}),
        ],
        stop_reason="tool_use",
    )
    server.reply([text("Paris 21C, Rome 21F.")])
    agent = Agent(make_model(server), [tool], instructions="Be brief.", guidance=False)
    result = await agent.run("Weather in Paris and Rome?")

    assert result.status == "completed"
    assert result.output == "Paris 21C, Rome 21F."
    assert sorted(calls) == ["Paris", "Rome"]
    second = server.bodies[1]
    assert second["system"] == "Be brief."
    results = second["messages"][2]
    assert results["role"] == "user"
    assert [(b["tool_use_id"], b["content"], b.get("is_error")) for b in results["content"]] == [
        ("toolu_1", "Paris: 21C", None),
        ("toolu_2", "Rome: 21F", None),
    ]


# --- extended thinking ----------------------------------------------------------------------

THINKING = {"type": "enabled", "budget_tokens": 1024}


def follow_up(first: Any, result: str) -> ModelRequest:
    return ModelRequest(
        messages=[
            Message.user("Weather in Paris?"),
            first.message,
            Message.tool(ToolResult(first.tool_calls[0].id, "get_weather", result)),
        ],
        tools=[weather_tool().spec],
    )


async def test_thinking_blocks_are_replayed_with_their_tool_turn(server):
    thought = {"type": "thinking", "thinking": "Need the weather tool.", "signature": "sig-abc"}
    server.reply(
        [thought, tool_use("toolu_t", "get_weather", {"city": "Paris"})], stop_reason="tool_use"
    )
    server.reply([text("Sunny.")])
    model = make_model(server, extra_body={"thinking": THINKING})
    first = await model.request(weather_request())
    assert first.text == ""  # thinking is not answer text
    second = await model.request(follow_up(first, "sunny"))
    assert second.text == "Sunny."
    assert server.bodies[1]["thinking"] == THINKING
    assert server.bodies[1]["messages"][1]["content"] == [
        thought,
        {"type": "tool_use", "id": "toolu_t", "name": "get_weather", "input": {"city": "Paris"}},
    ]


async def test_streamed_thinking_is_assembled_and_replayed(server):
    server.reply_stream(
        [
            message_start(),
            thinking_start(0),
            thinking_delta(0, "Need the "),
            thinking_delta(0, "weather tool."),
            signature_delta(0, "sig-xyz"),
            block_stop(0),
            tool_start(1, "toolu_s", "get_weather"),
            json_delta(1, '{"city": "Paris"}'),
            block_stop(1),
            message_delta("tool_use", 30),
            message_stop(),
        ]
    )
    server.reply([text("Sunny.")])
    model = make_model(server, extra_body={"thinking": THINKING})
    events = await collect(model, weather_request())
    assert not [e for e in events if isinstance(e, TextDelta)]
    first = events[-1].response
    await model.request(follow_up(first, "sunny"))
    assert server.bodies[1]["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Need the weather tool.",
        "signature": "sig-xyz",
    }


THOUGHT = {"type": "thinking", "thinking": "Paris needs the tool.", "signature": "sig-Paris=="}
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}
PARIS_CALL = {
    "type": "tool_use",
    "id": "toolu_p",
    "name": "get_weather",
    "input": {"city": "Paris"},
}


def thoughtful_stream() -> list[SSEEvent]:
    """The reply [THOUGHT, REDACTED, text, PARIS_CALL] as the API streams it."""
    return [
        message_start(),
        thinking_start(0),
        thinking_delta(0, "Paris needs "),
        thinking_delta(0, "the tool."),
        signature_delta(0, "sig-Paris=="),
        block_stop(0),
        SSEEvent(
            {"type": "content_block_start", "index": 1, "content_block": REDACTED},
            "content_block_start",
        ),
        block_stop(1),
        text_start(2),
        text_delta(2, "Let me "),
        text_delta(2, "check."),
        block_stop(2),
        tool_start(3, "toolu_p", "get_weather"),
        json_delta(3, '{"city": '),
        json_delta(3, '"Paris"}'),
        block_stop(3),
        message_delta("tool_use", 40),
        message_stop(),
    ]


def through_storage(messages: list[Message]) -> list[Message]:
    """What a paused run keeps: JSON text, read back as another process would."""
    text = json.dumps([message_to_dict(m) for m in messages])
    return [message_from_dict(d) for d in json.loads(text)]


async def test_streamed_and_plain_replies_record_the_same_thinking(server):
    server.reply_stream(thoughtful_stream())
    server.reply([THOUGHT, REDACTED, text("Let me check."), PARIS_CALL], stop_reason="tool_use")
    model = make_model(server, extra_body={"thinking": THINKING})
    streamed = (await collect(model, weather_request()))[-1].response
    plain = await model.request(weather_request())
    assert streamed.message == plain.message
    assert plain.message.provider_data == {"anthropic": {"thinking": [THOUGHT, REDACTED]}}
    assert plain.text == "Let me check."


@pytest.mark.parametrize("streamed", [False, True])
async def test_thinking_survives_serde_and_a_new_model(server, streamed):
    if streamed:
        server.reply_stream(thoughtful_stream())
    else:
        server.reply([THOUGHT, REDACTED, text("Let me check."), PARIS_CALL], stop_reason="tool_use")
    server.reply([text("Sunny.")])
    first_model = make_model(server, extra_body={"thinking": THINKING})
    if streamed:
        first = (await collect(first_model, weather_request()))[-1].response
    else:
        first = await first_model.request(weather_request())

    restored = through_storage(follow_up(first, "sunny").messages)
    assert restored[1] == first.message
    # Another process: a new model object that has seen nothing but the stored conversation.
    resumed = make_model(server, extra_body={"thinking": THINKING})
    second = await resumed.request(ModelRequest(messages=restored, tools=[weather_tool().spec]))

    assert second.text == "Sunny."  # the fake refuses a tool turn that does not start thinking
    assert server.bodies[1]["messages"][1] == {
        "role": "assistant",
        "content": [THOUGHT, REDACTED, text("Let me check."), PARIS_CALL],
    }


async def test_thinking_of_a_text_turn_is_sent_back_with_it(server):
    server.reply([THOUGHT, text("It is sunny.")])
    server.reply([text("You are welcome.")])
    model = make_model(server, extra_body={"thinking": THINKING})
    first = await model.request(weather_request())
    history = through_storage([Message.user("Weather?"), first.message, Message.user("Thanks!")])
    await make_model(server, extra_body={"thinking": THINKING}).request(
        ModelRequest(messages=history)
    )
    assert server.bodies[1]["messages"][1]["content"] == [THOUGHT, text("It is sunny.")]


def test_thinking_without_anything_else_to_say_is_not_sent_alone():
    empty = Message("assistant", "", provider_data={"anthropic": {"thinking": [THOUGHT]}})
    rendered, _ = render_messages([Message.user("hi"), empty, Message.user("again")])
    assert rendered == [
        {"role": "user", "content": [text("hi"), text("again")]},
    ]


@pytest.mark.parametrize(
    "data",
    [
        {"anthropic": {"thinking": "not a list"}},
        {"anthropic": {"thinking": [{"type": "text", "text": "x"}]}},
        {"anthropic": ["thinking"]},
    ],
)
def test_malformed_stored_thinking_is_a_model_error(data):
    turn = Message("assistant", "x", provider_data=data)
    with pytest.raises(ModelError, match="thinking"):
        render_messages([Message.user("hi"), turn])


async def test_fake_refuses_a_tool_turn_without_its_thinking(server):
    server.reply([text("never sent")])
    model = make_model(server, extra_body={"thinking": THINKING})
    history = [
        Message.user("Weather in Paris?"),
        Message.assistant("", [ToolCall("toolu_unknown", "get_weather", {"city": "Paris"})]),
        Message.tool(ToolResult("toolu_unknown", "get_weather", "sunny")),
    ]
    with pytest.raises(ModelError) as err:
        await model.request(ModelRequest(messages=history, tools=[weather_tool().spec]))
    assert err.value.status == 400
    assert "must start with a thinking block" in str(err.value)
