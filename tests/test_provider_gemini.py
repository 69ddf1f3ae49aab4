"""GeminiModel through the official google-genai SDK against a local Gemini API.

The fake server (tests/fakes/gemini_server.py) refuses any body that breaks the documented rules
(function responses that do not answer the previous turn, unknown schema fields, ...), so a
successful call also proves the body was acceptable; exact bodies are asserted as well.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel

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
from callgate.providers.gemini import (
    GeminiModel,
    is_synthetic_id,
    render_contents,
    response_object,
)
from callgate.serde import message_from_dict, message_to_dict
from callgate.tools.definition import Tool, tool
from tests.fakes.gemini_server import (
    FakeGemini,
    call_part,
    check_generate_request,
    response_body,
    text_part,
)

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["c", "f"]},
    },
    "required": ["city"],
}


def weather_tool(fn: Any = None) -> Tool:
    return Tool.from_schema(
        "get_weather",
        "Current weather for a city.",
        WEATHER_SCHEMA,
        fn or (lambda city, unit="c": f"{city}: 21{unit.upper()}"),
    )


WEATHER_WIRE = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "OBJECT",
        "properties": {
            "city": {"type": "STRING", "description": "City name"},
            "unit": {"type": "STRING", "enum": ["c", "f"]},
        },
        "required": ["city"],
    },
}

USAGE = {"promptTokenCount": 40, "candidatesTokenCount": 9, "totalTokenCount": 49}


@pytest.fixture
def server():
    with FakeGemini() as fake:
        yield fake
        assert fake.http.pending == 0, "the test left scripted replies unconsumed"


def make_model(server: FakeGemini, **kw: Any) -> GeminiModel:
    kw.setdefault("retry", RetryPolicy(max_retries=2, base_delay_s=0.001, max_delay_s=0.002))
    return GeminiModel("gemini-test", api_key="test-key", base_url=server.url, **kw)


def weather_request(**kw: Any) -> ModelRequest:
    return ModelRequest(
        messages=[Message.user("Weather in Paris and Rome?")],
        tools=[weather_tool().spec],
        system="You are terse.",
        **kw,
    )


# --- request / response ---------------------------------------------------------------------


async def test_exact_body_and_parallel_calls_without_ids(server):
    server.reply(
        [
            text_part("Checking both."),
            call_part("get_weather", {"city": "Paris"}),
            call_part("get_weather", {"city": "Rome", "unit": "f"}),
        ],
        usage=USAGE,
    )
    model = make_model(server)
    response = await model.request(weather_request(max_tokens=300, temperature=0.1))

    req = server.requests[0]
    assert req.path == "/v1beta/models/gemini-test:generateContent" or req.path.endswith(
        "/models/gemini-test:generateContent"
    )
    assert req.headers["x-goog-api-key"] == "test-key"
    assert req.json == {
        "contents": [{"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]}],
        "systemInstruction": {"role": "user", "parts": [{"text": "You are terse."}]},
        "tools": [{"functionDeclarations": [WEATHER_WIRE]}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "generationConfig": {"temperature": 0.1, "maxOutputTokens": 300},
    }
    assert response.text == "Checking both."
    calls = response.tool_calls
    assert [(c.name, c.arguments) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome", "unit": "f"}),
    ]
    assert len({c.id for c in calls}) == 2
    assert all(is_synthetic_id(c.id) for c in calls)
    assert response.stop_reason == "tool_calls"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (40, 9)
    assert response.model == "gemini-test-001"


async def test_synthesized_ids_are_stable_per_reply_and_differ_between_turns(server):
    parts = [call_part("get_weather", {"city": "Paris"})]
    for _ in range(3):
        server.reply(parts, response_id=None)
    model = make_model(server)
    first = await model.request(weather_request())
    again = await model.request(weather_request())
    later_turn = weather_request()
    later_turn.messages = [
        *later_turn.messages,
        Message.assistant("", first.tool_calls),
        Message.tool(ToolResult(first.tool_calls[0].id, "get_weather", "sunny")),
    ]
    third = await model.request(later_turn)
    assert first.tool_calls[0].id == again.tool_calls[0].id
    assert third.tool_calls[0].id != first.tool_calls[0].id


async def test_results_map_back_to_calls_by_id_in_call_order(server):
    server.reply([text_part("Paris is clear; Rome failed.")])
    model = make_model(server)
    a = ToolCall("gemini_0123456789abcdef_0", "get_weather", {"city": "Paris"})
    b = ToolCall("gemini_0123456789abcdef_1", "get_weather", '{"city": "Rome"}')
    c = ToolCall("gemini_0123456789abcdef_2", "get_time", "{broken")
    history = [
        Message.user("Weather in Paris and Rome, and the time?"),
        Message.assistant("", [a, b, c]),
        # results arrive in completion order, not call order
        Message.tool(ToolResult(b.id, "get_weather", "upstream timeout", "transient")),
        Message.tool(ToolResult(c.id, "get_time", "12:00")),
        Message.tool(ToolResult(a.id, "get_weather", '{"temp_c": 21, "sky": "clear"}')),
        Message.user("Keep it short."),
    ]
    time_tool = Tool.from_schema("get_time", "Time now.", {"type": "object", "properties": {}}, str)
    response = await model.request(
        ModelRequest(messages=history, tools=[weather_tool().spec, time_tool.spec])
    )
    assert server.bodies[0]["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris and Rome, and the time?"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"result": {"temp_c": 21, "sky": "clear"}},
                    }
                },
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"error": "upstream timeout"},
                    }
                },
                {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
                {"text": "Keep it short."},
            ],
        },
    ]
    # A tool without parameters is declared without `parameters` (Gemini rejects empty OBJECTs).
    assert server.bodies[0]["tools"][0]["functionDeclarations"][1] == {
        "name": "get_time",
        "description": "Time now.",
    }
    assert response.text == "Paris is clear; Rome failed."
    assert response.stop_reason == "end_turn"


async def test_ids_gemini_gave_are_kept_and_echoed(server):
    server.reply([call_part("get_weather", {"city": "Oslo"}, call_id="fc-77")])
    server.reply([text_part("Cold.")])
    model = make_model(server)
    first = await model.request(weather_request())
    assert first.tool_calls == [ToolCall("fc-77", "get_weather", {"city": "Oslo"})]
    follow = weather_request()
    follow.messages += [
        first.message,
        Message.tool(ToolResult("fc-77", "get_weather", "-5C")),
    ]
    await model.request(follow)
    sent = server.bodies[1]["contents"]
    assert sent[1] == {
        "role": "model",
        "parts": [
            {"functionCall": {"id": "fc-77", "name": "get_weather", "args": {"city": "Oslo"}}}
        ],
    }
    assert sent[2] == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "id": "fc-77",
                    "name": "get_weather",
                    "response": {"result": "-5C"},
                }
            }
        ],
    }


async def test_thought_signature_is_echoed_with_its_call(server):
    signature = base64.b64encode(b"opaque-thought-state").decode()
    server.reply([call_part("get_weather", {"city": "Lima"}, signature=signature)])
    server.reply([text_part("Warm.")])
    model = make_model(server)
    first = await model.request(weather_request())
    assert first.tool_calls[0].provider_data == {"gemini": {"thought_signature": signature}}
    follow = weather_request()
    follow.messages += [
        first.message,
        Message.tool(ToolResult(first.tool_calls[0].id, "get_weather", "25C")),
    ]
    await model.request(follow)
    model_turn = server.bodies[1]["contents"][1]
    assert model_turn["parts"][0]["thoughtSignature"] == signature
    assert "id" not in model_turn["parts"][0]["functionCall"]


# --- thought state travels with the conversation ---------------------------------------------

# Bytes whose standard base64 holds "+" and "/", so an alphabet mix-up cannot go unnoticed.
CALL_SIGNATURE = bytes([0xFB, 0xEF, 0xBE, 0xFF, 0xFE, 0x3E, 0x3F]) + b"call-state"
TEXT_SIGNATURE = bytes([0xFA, 0xFF, 0xBF]) + b"text-state"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def wire_signatures(node: Any) -> Any:
    """`node` with every `thoughtSignature` decoded to bytes. The SDK writes bytes fields in the
    URL-safe alphabet; the API's JSON parser (proto3 JSON) accepts either, so what must match is
    the signature's bytes."""
    if isinstance(node, list):
        return [wire_signatures(v) for v in node]
    if isinstance(node, dict):
        return {
            k: (
                base64.b64decode(v.replace("-", "+").replace("_", "/"), validate=True)
                if k == "thoughtSignature"
                else wire_signatures(v)
            )
            for k, v in node.items()
        }
    return node


def thought_part(value: str, signature: bytes | None = None) -> dict[str, Any]:
    part: dict[str, Any] = {"text": value, "thought": True}
    if signature is not None:
        part["thoughtSignature"] = b64(signature)
    return part


def signed_text_part(value: str, signature: bytes) -> dict[str, Any]:
    return {"text": value, "thoughtSignature": b64(signature)}


# One reply, in one piece and as a stream: a thought summary, text signed at its end (streamed
# as fragments plus an empty part that holds only the signature), a signed call, an unsigned one.
THOUGHTFUL_PARTS = [
    thought_part("Lima first, then Quito."),
    signed_text_part("Checking both.", TEXT_SIGNATURE),
    call_part("get_weather", {"city": "Lima"}, call_id="fc-1", signature=b64(CALL_SIGNATURE)),
    call_part("get_weather", {"city": "Quito"}, call_id="fc-2"),
]
THOUGHTFUL_CHUNKS = [
    {"parts": [thought_part("Lima first, ")]},
    {"parts": [thought_part("then Quito.")]},
    {"parts": [text_part("Checking ")]},
    {"parts": [text_part("both."), signed_text_part("", TEXT_SIGNATURE)]},
    {"parts": THOUGHTFUL_PARTS[2:]},
]
THOUGHTFUL_STATE = {
    "gemini": {
        "parts": [
            {"text": "Lima first, then Quito.", "thought": True},
            {"text": "Checking both.", "thought_signature": b64(TEXT_SIGNATURE)},
            {"function_call": 0},
            {"function_call": 1},
        ]
    }
}
THOUGHTFUL_WIRE_TURN = {
    "role": "model",
    "parts": [
        {"text": "Lima first, then Quito.", "thought": True},
        {"text": "Checking both.", "thoughtSignature": TEXT_SIGNATURE},
        {
            "functionCall": {"id": "fc-1", "name": "get_weather", "args": {"city": "Lima"}},
            "thoughtSignature": CALL_SIGNATURE,
        },
        {"functionCall": {"id": "fc-2", "name": "get_weather", "args": {"city": "Quito"}}},
    ],
}


def through_storage(messages: list[Message]) -> list[Message]:
    """What a paused run keeps: JSON text, read back as another process would."""
    text = json.dumps([message_to_dict(m) for m in messages])
    return [message_from_dict(d) for d in json.loads(text)]


def answered(first: Message) -> list[Message]:
    results = [ToolResult(c.id, c.name, f"{c.arguments['city']}: 20C") for c in first.tool_calls]
    return [
        Message.user("Weather in Lima and Quito?"),
        first,
        *[Message.tool(r) for r in results],
    ]


async def test_streamed_and_plain_replies_record_the_same_thought_state(server):
    server.reply_stream(
        [chunk(c["parts"]) for c in THOUGHTFUL_CHUNKS]
        + [response_body([], finish_reason="STOP", usage=USAGE)]
    )
    server.reply(THOUGHTFUL_PARTS, usage=USAGE)
    model = make_model(server)
    events = await collect(model, weather_request())
    plain = await model.request(weather_request())

    streamed = events[-1].response
    assert streamed.message == plain.message
    message = plain.message
    assert message.content == "Checking both."  # thoughts are not answer text
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Checking ", "both."]
    assert message.provider_data == THOUGHTFUL_STATE
    assert [c.provider_data for c in message.tool_calls] == [
        {"gemini": {"thought_signature": b64(CALL_SIGNATURE)}},
        None,
    ]
    finished = [e.call for e in events if isinstance(e, ToolCallFinished)]
    assert [c.provider_data for c in finished] == [c.provider_data for c in message.tool_calls]
    json.dumps(message_to_dict(message))  # JSON-serialisable as it stands


@pytest.mark.parametrize("streamed", [False, True])
async def test_thought_state_survives_serde_and_a_new_model(server, streamed):
    if streamed:
        server.reply_stream([chunk(c["parts"]) for c in THOUGHTFUL_CHUNKS] + [response_body([])])
    else:
        server.reply(THOUGHTFUL_PARTS)
    server.reply([text_part("Both 20C.")])
    first_model = make_model(server)
    if streamed:
        first = (await collect(first_model, weather_request()))[-1].response
    else:
        first = await first_model.request(weather_request())

    restored = through_storage(answered(first.message))
    assert restored[1] == first.message
    resumed = make_model(server)  # another process: nothing but the stored conversation
    reply = await resumed.request(ModelRequest(messages=restored, tools=[weather_tool().spec]))

    assert reply.text == "Both 20C."
    contents = server.bodies[1]["contents"]
    assert wire_signatures(contents[1]) == THOUGHTFUL_WIRE_TURN
    assert contents[2]["parts"][0]["functionResponse"]["id"] == "fc-1"


async def test_synthesized_call_ids_keep_their_signature_through_serde(server):
    server.reply([call_part("get_weather", {"city": "Lima"}, signature=b64(CALL_SIGNATURE))])
    server.reply([text_part("Warm.")])
    first = await make_model(server).request(weather_request())
    assert is_synthetic_id(first.tool_calls[0].id)
    restored = through_storage(answered(first.message))
    await make_model(server).request(ModelRequest(messages=restored))
    part = wire_signatures(server.bodies[1]["contents"][1]["parts"][0])
    assert part == {
        "functionCall": {"name": "get_weather", "args": {"city": "Lima"}},
        "thoughtSignature": CALL_SIGNATURE,
    }


def test_an_edited_turn_drops_its_text_signature_but_keeps_thoughts_and_calls():
    call = ToolCall("fc-1", "get_weather", {"city": "Lima"})
    call.provider_data = {"gemini": {"thought_signature": b64(CALL_SIGNATURE)}}
    edited = Message("assistant", "Checking Lima.", [call], provider_data=THOUGHTFUL_STATE)
    contents, _ = render_contents([Message.user("Weather?"), edited])
    parts = [p.model_dump(exclude_none=True) for p in contents[1].parts or []]
    assert parts == [
        {"text": "Lima first, then Quito.", "thought": True},
        {"text": "Checking Lima."},
        {
            "function_call": {"id": "fc-1", "name": "get_weather", "args": {"city": "Lima"}},
            "thought_signature": CALL_SIGNATURE,
        },
    ]


@pytest.mark.parametrize(
    "broken",
    [
        Message("assistant", "x", provider_data={"gemini": "nope"}),
        Message("assistant", "x", provider_data={"gemini": {"parts": [{"function_call": "0"}]}}),
        Message(
            "assistant",
            "",
            [ToolCall("c", "f", {}, {"gemini": {"thought_signature": "not base64!"}})],
        ),
    ],
)
def test_malformed_stored_state_is_a_model_error(broken):
    with pytest.raises(ModelError, match="gemini"):
        render_contents([Message.user("hi"), broken])


def test_other_providers_state_is_ignored():
    other = Message("assistant", "ok", provider_data={"anthropic": {"thinking": []}})
    contents, _ = render_contents([Message.user("hi"), other])
    assert [p.model_dump(exclude_none=True) for p in contents[1].parts or []] == [{"text": "ok"}]


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        (NamedToolChoice("get_weather"), {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
async def test_tool_choice_mapping(server, choice, config):
    server.reply([text_part("ok")])
    await make_model(server).request(weather_request(tool_choice=choice))
    assert server.bodies[0]["toolConfig"] == {"functionCallingConfig": config}
    assert server.bodies[0]["tools"] == [{"functionDeclarations": [WEATHER_WIRE]}]


class Address(BaseModel):
    street: str
    city: str


async def test_schema_keywords_gemini_rejects_are_not_sent(server):
    @tool
    def ship(
        address: Address,
        mode: Literal["express"] = "express",
        note: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Ship a parcel."""
        return "ok"

    canonical = json.dumps(ship.spec.parameters)
    for keyword in ("$ref", "$defs", "additionalProperties", "const", "default"):
        assert keyword in canonical  # the canonical schema really has them

    server.reply([text_part("ok")])
    await make_model(server).request(
        ModelRequest(messages=[Message.user("ship it")], tools=[ship.spec])
    )
    sent = server.bodies[0]["tools"][0]["functionDeclarations"][0]
    wire = json.dumps(sent)
    for keyword in (
        "$ref",
        "$defs",
        "additionalProperties",
        "additional_properties",
        "const",
        "default",
        "title",
    ):
        assert f'"{keyword}"' not in wire
    params = sent["parameters"]
    assert params["properties"]["address"]["properties"]["city"] == {"type": "STRING"}
    assert params["properties"]["mode"]["enum"] == ["express"]
    assert params["properties"]["note"] == {"type": "STRING", "nullable": True}


def test_fake_refuses_what_real_gemini_refuses():
    body = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "f",
                        "parameters": {
                            "type": "object",
                            "properties": {"a": {"type": "string"}},
                            "additionalProperties": False,
                        },
                    }
                ]
            }
        ],
    }
    problems = check_generate_request(body)
    assert problems and 'Unknown name "additionalProperties"' in problems[0]
    unanswered = {
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [call_part("f", {}), call_part("g", {})]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]},
        ]
    }
    assert any("number of function response parts" in p for p in check_generate_request(unanswered))


@pytest.mark.parametrize(
    ("finish", "parts", "expected"),
    [
        ("STOP", [text_part("x")], "end_turn"),
        ("STOP", [call_part("get_weather", {"city": "x"})], "tool_calls"),
        ("MAX_TOKENS", [text_part("x")], "max_tokens"),
        ("SAFETY", [text_part("x")], "content_filter"),
        ("MALFORMED_FUNCTION_CALL", [text_part("x")], "error"),
        ("OTHER", [text_part("x")], "other"),
    ],
)
async def test_finish_reason_mapping(server, finish, parts, expected):
    server.reply(parts, finish_reason=finish)
    response = await make_model(server).request(weather_request())
    assert response.stop_reason == expected


async def test_blocked_prompt_is_a_content_filter_stop(server):
    server.reply_body({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": USAGE})
    response = await make_model(server).request(weather_request())
    assert response.stop_reason == "content_filter"
    assert response.text == "" and response.tool_calls == []


async def test_usage_includes_cached_and_thinking_tokens(server):
    server.reply(
        [text_part("x")],
        usage={
            "promptTokenCount": 100,
            "cachedContentTokenCount": 60,
            "candidatesTokenCount": 10,
            "thoughtsTokenCount": 25,
            "totalTokenCount": 135,
        },
    )
    response = await make_model(server).request(weather_request())
    assert response.usage.input_tokens == 100
    assert response.usage.cache_read_tokens == 60
    assert response.usage.output_tokens == 35


def test_render_merges_roles_and_folds_stray_system():
    contents, system = render_contents(
        [
            Message.system("Be kind."),
            Message.user("a"),
            Message.user("b"),
            Message.assistant("c"),
            Message.assistant(""),
        ]
    )
    assert system == "Be kind."
    assert [(c.role, [p.text for p in c.parts or []]) for c in contents] == [
        ("user", ["a", "b"]),
        ("model", ["c"]),
    ]


# --- streaming ------------------------------------------------------------------------------


def chunk(parts: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    kw.setdefault("finish_reason", None)
    return response_body(parts, **kw)


async def collect(model: GeminiModel, request: ModelRequest) -> list[Any]:
    return [event async for event in model.stream(request)]


async def test_stream_text_and_whole_calls(server):
    chunks = [
        chunk([text_part("Check")]),
        chunk([text_part("ing.")]),
        chunk(
            [
                call_part("get_weather", {"city": "Paris"}),
                call_part("get_weather", {"city": "Rome", "unit": "f"}),
            ]
        ),
        response_body([], finish_reason="STOP", usage=USAGE),
    ]
    server.reply_stream(chunks)
    server.reply(
        [
            text_part("Checking."),
            call_part("get_weather", {"city": "Paris"}),
            call_part("get_weather", {"city": "Rome", "unit": "f"}),
        ],
        usage=USAGE,
    )
    model = make_model(server)
    events = await collect(model, weather_request())
    plain = await model.request(weather_request())

    req = server.requests[0]
    assert req.path.endswith("/models/gemini-test:streamGenerateContent")
    assert req.query == {"alt": ["sse"]}
    assert req.json == server.bodies[1]  # same body streamed or not

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Check", "ing."]
    calls = [e for e in events if not isinstance(e, TextDelta | ResponseFinished)]
    ids = [e.id for e in calls if isinstance(e, ToolCallStarted)]
    assert [type(e) for e in calls] == [
        ToolCallStarted,
        ToolCallDelta,
        ToolCallFinished,
    ] * 2
    assert calls[1] == ToolCallDelta(0, ids[0], '{"city": "Paris"}')
    assert calls[2] == ToolCallFinished(0, ToolCall(ids[0], "get_weather", '{"city": "Paris"}'))
    assert calls[4] == ToolCallDelta(1, ids[1], '{"city": "Rome", "unit": "f"}')
    final = events[-1]
    assert isinstance(final, ResponseFinished)
    assert final.response.message == plain.message  # ids included
    assert final.response.stop_reason == "tool_calls"
    assert final.response.usage == plain.usage


async def test_stream_unavailable_before_first_chunk_is_retried(server):
    server.reply_error(503, "UNAVAILABLE", "The model is overloaded.")
    server.reply_stream([response_body([text_part("hello")], usage=USAGE)])
    events = await collect(make_model(server), weather_request())
    assert events[-1].response.text == "hello"
    assert len(server.requests) == 2


async def test_stream_cut_off_after_output_raises(server):
    server.reply_stream(
        [chunk([text_part("Hel")]), chunk([text_part("lo")]), chunk([text_part("!")])],
        drop_after=1,
    )
    model = make_model(server)
    seen: list[Any] = []
    with pytest.raises(ModelError) as err:
        async for event in model.stream(weather_request()):
            seen.append(event)
    assert seen == [TextDelta("Hel")]
    assert err.value.retryable
    assert len(server.requests) == 1


# --- failures -------------------------------------------------------------------------------


async def test_bad_request_keeps_geminis_message_and_is_not_retried(server):
    message = (
        'Invalid JSON payload received. Unknown name "exclusiveMinimum" at '
        "'tools[0].function_declarations[0].parameters.properties[0].value': Cannot find field."
    )
    server.reply_error(400, "INVALID_ARGUMENT", message)
    with pytest.raises(ModelError) as err:
        await make_model(server).request(weather_request())
    assert err.value.status == 400
    assert not err.value.retryable
    assert message in str(err.value)
    assert len(server.requests) == 1


async def test_rate_limit_honours_retry_after(server):
    server.reply_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", headers={"retry-after": "3"})
    server.reply([text_part("done")])
    model = make_model(server)
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    model._sleep = record
    response = await model.request(weather_request())
    assert response.text == "done"
    assert waits == [3.0]
    assert server.bodies[0] == server.bodies[1]


async def test_server_errors_are_retried_up_to_the_cap(server):
    for _ in range(3):
        server.reply_error(500, "INTERNAL", "An internal error has occurred.")
    with pytest.raises(ModelError) as err:
        await make_model(server).request(weather_request())
    assert err.value.status == 500
    assert err.value.retryable
    assert "An internal error has occurred." in str(err.value)
    assert len(server.requests) == 3


async def test_timeout_is_retried_then_reported(server):
    from tests.fakes.http import Reply

    for _ in range(2):
        server.http.enqueue(Reply(delay_s=0.6, body=b"{}"))
    model = make_model(server, timeout=0.15, retry=RetryPolicy(max_retries=1, base_delay_s=0.001))
    with pytest.raises(ModelError) as err:
        await model.request(weather_request())
    assert err.value.retryable
    assert len(server.requests) == 2


def test_constructor_rejects_empty_model_and_mixed_client_options():
    with pytest.raises(ValueError):
        GeminiModel("", api_key="k")
    from google import genai

    with pytest.raises(ValueError, match="either client"):
        GeminiModel("gemini-test", client=genai.Client(api_key="k"), base_url="http://x")


@pytest.mark.parametrize(
    ("content", "error", "expected"),
    [
        ('{"temp": 21}', None, {"result": {"temp": 21}}),
        ("[1, 2, 3]", None, {"result": [1, 2, 3]}),
        ("42", None, {"result": "42"}),
        ("[not json", None, {"result": "[not json"}),
        ("", None, {"result": ""}),
        ('{"a": 1}', "terminal", {"error": '{"a": 1}'}),
    ],
)
def test_response_object_for_non_string_results(content, error, expected):
    assert response_object(ToolResult("c", "f", content, error)) == expected


# --- end to end through the agent -----------------------------------------------------------


async def test_agent_round_trip_with_id_less_calls(server):
    from callgate.agent.loop import Agent

    def get_weather(city: str, unit: str = "c") -> str:
        return f"{city}: 21{unit.upper()}"

    server.reply(
        [
            call_part("get_weather", {"city": "Paris"}),
            call_part("get_weather", {"city": "Rome", "unit": "f"}),
        ]
    )
    server.reply([text_part("Paris 21C, Rome 21F.")])
    agent = Agent(make_model(server), [weather_tool(get_weather)], guidance=False)
    result = await agent.run("Weather in Paris and Rome?")

    assert result.status == "completed"
    assert result.output == "Paris 21C, Rome 21F."
    answered = server.bodies[1]["contents"][2]
    assert answered == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"result": "Paris: 21C"}}},
            {"functionResponse": {"name": "get_weather", "response": {"result": "Rome: 21F"}}},
        ],
    }
