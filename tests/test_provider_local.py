"""LocalModel against the real SmolLM2-135M weights (llama.cpp, CPU). Not timed."""

from __future__ import annotations

import json
from typing import Literal

import pytest

from callgate.errors import ModelError
from callgate.messages import Message, ToolCall, ToolResult
from callgate.models import (
    Model,
    ModelRequest,
    NamedToolChoice,
    ResponseFinished,
    StreamingModel,
    TextDelta,
    ToolCallDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from callgate.tools.definition import Tool, tool

pytest.importorskip("llama_cpp")
slow = pytest.mark.slow  # these load the real weights


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """Get the current weather in a city.

    Args:
        city: Name of the city, e.g. Paris.
        unit: Temperature unit.
    """
    return f"sunny in {city}"


@tool
def convert_currency(amount: float, source: str, target: str) -> float:
    """Convert an amount of money from one currency to another.

    Args:
        amount: How much money.
        source: Three-letter code of the currency to convert from.
        target: Three-letter code of the currency to convert to.
    """
    return amount


@tool
def add_numbers(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


TOOLS: list[Tool] = [get_weather, convert_currency, add_numbers]
BY_NAME = {t.name: t for t in TOOLS}


@pytest.fixture(scope="module")
def model() -> object:
    from callgate.providers.local.model import LocalModel, default_model_path

    try:
        default_model_path()
    except ModelError as e:
        pytest.skip(str(e))
    return LocalModel(max_tokens=128)


def req(prompt: str, **kw: object) -> ModelRequest:
    return ModelRequest([Message.user(prompt)], tools=[t.spec for t in TOOLS], **kw)  # type: ignore[arg-type]


def assert_valid(calls: list[ToolCall]) -> None:
    for c in calls:
        assert isinstance(c.arguments, str)
        BY_NAME[c.name].validator.validate(json.loads(c.arguments))  # raises if invalid


@slow
def test_is_a_streaming_model(model: object) -> None:
    assert isinstance(model, Model)
    assert isinstance(model, StreamingModel)
    assert model.name.startswith("local:")  # type: ignore[attr-defined]


@slow
async def test_weather_question_gets_a_valid_weather_call(model: object) -> None:
    r = await model.request(req("What is the weather like in Paris right now?"))  # type: ignore[attr-defined]
    assert r.tool_calls, r.text
    assert r.tool_calls[0].name == "get_weather"
    assert "paris" in json.loads(r.tool_calls[0].arguments)["city"].lower()
    assert r.stop_reason == "tool_calls"
    assert [c.id for c in r.tool_calls] == [f"call_{i}" for i in range(len(r.tool_calls))]
    assert r.usage.input_tokens > 50 and r.usage.output_tokens > 0
    assert_valid(r.tool_calls)


@slow
async def test_tool_choice_none_yields_text_only(model: object) -> None:
    r = await model.request(req("What is the weather like in Paris?", tool_choice="none"))  # type: ignore[attr-defined]
    assert r.tool_calls == []
    assert r.text.strip()
    assert "<tool_call>" not in r.text
    assert r.stop_reason in ("end_turn", "max_tokens")


@slow
async def test_named_tool_choice_forces_that_tool(model: object) -> None:
    # the question is about the weather, but the caller insists on the currency tool
    r = await model.request(  # type: ignore[attr-defined]
        req("What is the weather like in Paris?", tool_choice=NamedToolChoice("convert_currency"))
    )
    assert r.tool_calls and {c.name for c in r.tool_calls} == {"convert_currency"}
    assert_valid(r.tool_calls)


@slow
async def test_required_always_calls_even_for_chit_chat(model: object) -> None:
    r = await model.request(req("Hello there, how are you?", tool_choice="required"))  # type: ignore[attr-defined]
    assert r.tool_calls
    assert_valid(r.tool_calls)


@slow
async def test_parallel_disabled_gives_at_most_one_call(model: object) -> None:
    r = await model.request(  # type: ignore[attr-defined]
        req(
            "Weather in Paris, in Rome and in Oslo?",
            tool_choice="required",
            parallel_tool_calls=False,
        )
    )
    assert len(r.tool_calls) == 1
    assert_valid(r.tool_calls)


@slow
@pytest.mark.parametrize(
    "prompt",
    [
        "Convert 100 US dollars to euros.",
        "Add 17 and 25.",
        "What's the temperature in Tokyo in fahrenheit?",
        "Please add 3 and 4, and also tell me the weather in Berlin.",
    ],
)
async def test_arguments_always_validate(model: object, prompt: str) -> None:
    r = await model.request(req(prompt, tool_choice="required"))  # type: ignore[attr-defined]
    assert r.tool_calls
    assert_valid(r.tool_calls)
    keys = [(c.name, json.dumps(json.loads(c.arguments), sort_keys=True)) for c in r.tool_calls]
    assert len(keys) == len(set(keys)), "identical calls must not be repeated"


@slow
async def test_calls_already_answered_this_turn_are_not_repeated(model: object) -> None:
    first = await model.request(req("What is the weather like in Paris?", tool_choice="required"))  # type: ignore[attr-defined]
    history = [
        Message.user("What is the weather like in Paris?"),
        Message.assistant("", first.tool_calls),
        *[Message.tool(ToolResult(c.id, c.name, "sunny, 21 degrees")) for c in first.tool_calls],
    ]
    again = await model.request(ModelRequest(history, tools=[t.spec for t in TOOLS]))  # type: ignore[attr-defined]
    before = {(c.name, c.arguments) for c in first.tool_calls}
    assert not ({(c.name, c.arguments) for c in again.tool_calls} & before)
    assert again.tool_calls or again.text.strip()


@slow
async def test_stream_matches_request(model: object) -> None:
    for request in (req("What is the weather like in Rome?"), req("Say hi.", tool_choice="none")):
        expected = await model.request(request)  # type: ignore[attr-defined]
        events = [e async for e in model.stream(request)]  # type: ignore[attr-defined]
        assert isinstance(events[-1], ResponseFinished)
        final = events[-1].response
        assert final.text == expected.text
        assert [(c.id, c.name, c.arguments) for c in final.tool_calls] == [
            (c.id, c.name, c.arguments) for c in expected.tool_calls
        ]
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert text == final.text
        for i, call in enumerate(final.tool_calls):
            started = [e for e in events if isinstance(e, ToolCallStarted) and e.index == i]
            deltas = [e for e in events if isinstance(e, ToolCallDelta) and e.index == i]
            finished = [e for e in events if isinstance(e, ToolCallFinished) and e.index == i]
            assert started and started[0].name == call.name and started[0].id == call.id
            assert "".join(d.arguments_delta for d in deltas) == call.arguments
            assert finished and finished[0].call.arguments == call.arguments


@slow
async def test_breaking_out_of_a_stream_releases_the_model(model: object) -> None:
    stream = model.stream(req("Write a long story about a dragon.", tool_choice="none"))  # type: ignore[attr-defined]
    async for _ in stream:
        break
    await stream.aclose()
    r = await model.request(req("Add 2 and 3.", tool_choice="required"))  # type: ignore[attr-defined]
    assert r.tool_calls


@slow
async def test_bad_requests_get_clear_errors(model: object) -> None:
    with pytest.raises(ModelError, match="not among the request's tools"):
        await model.request(req("hi", tool_choice=NamedToolChoice("nope")))  # type: ignore[attr-defined]
    with pytest.raises(ModelError, match="no tools"):
        await model.request(ModelRequest([Message.user("hi")], tool_choice="required"))  # type: ignore[attr-defined]


def test_missing_weights_file_is_a_clear_error() -> None:
    from callgate.providers.local.model import LocalModel

    with pytest.raises(ModelError, match="model file not found"):
        LocalModel("/nonexistent/model.gguf")


@slow
async def test_agent_runs_a_real_tool_through_the_gate(model: object) -> None:
    from callgate.agent.loop import Agent

    seen: list[str] = []

    @tool
    def weather_report(city: str) -> str:
        """Get today's weather report for a city.

        Args:
            city: Name of the city.
        """
        seen.append(city)
        return f"It is sunny and 21 degrees in {city}."

    agent = Agent(model, [weather_report])  # type: ignore[arg-type]
    result = await agent.run("What is the weather in Lisbon today?")
    assert seen and "lisbon" in seen[0].lower()  # the tool ran with validated arguments
    assert result.tool_calls >= 1
    assert any(r.name == "weather_report" and not r.is_error for r in result.results)
    assert result.status in ("completed", "stopped")


# --- decoding decisions, without the model ------------------------------------------------------


def _c(name: str, **args: object) -> object:
    from callgate.providers.local.model import _Call, _call_key

    text = json.dumps(args)
    return _Call(name, text, _call_key(name, text))


def test_grounding_counts_only_free_values_found_in_the_conversation() -> None:
    from callgate.providers.local.model import _grounded, _grounded_share

    text = "what's the weather in new york on day 3, in celsius? budget 2.5 or 10"
    assert _grounded("New York", text) and _grounded(3, text) and _grounded(2.5, text)
    assert _grounded(10.0, text)  # 10.0 is written "10"
    assert not _grounded(1, text)  # the "1" of "10" is not the number 1
    assert not _grounded("Paris", text) and not _grounded(True, text) and not _grounded("n", text)
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "kelvin"]},
            "days": {"type": "integer", "default": 7},
        },
    }
    # enum members and defaults are picked from the schema, so they do not count either way
    assert _grounded_share(_c("w", city="New York", unit="kelvin", days=7), schema, text) == 1.0
    assert _grounded_share(_c("w", city="Paris", days=3), schema, text) == 0.5
    assert _grounded_share(_c("w", unit="kelvin"), schema, text) is None


def test_extra_calls_must_bring_new_values_from_the_request() -> None:
    from callgate.providers.local.model import _adds_information

    text = "weather in boston and in tokyo, in celsius"
    first = [_c("weather", city="Boston")]
    assert _adds_information(_c("weather", city="Tokyo"), first, text)
    assert not _adds_information(_c("weather", city="Boston"), first, text)  # nothing new
    assert not _adds_information(_c("weather", city="Lima"), first, text)  # not in the request
    # same tool, same city, only an optional argument added: not a second item
    assert not _adds_information(_c("weather", city="Boston", unit="celsius"), first, text)
    # another tool may reuse earlier values, but must add one of its own from the request
    assert _adds_information(_c("time", city="Tokyo"), first, text)
    assert not _adds_information(_c("time", city="Boston"), first, text)


# --- budgets, answers, values, the KV cache (real model) -----------------------------------------


@slow
@pytest.mark.parametrize(
    ("prompt", "choice", "limit"),
    [
        ("Write a long story about a dragon.", "none", 12),
        ("Convert 10 USD to EUR and 20 GBP to JPY, and add 2 and 3.", "required", 40),
        ("What is the weather in Paris and in Rome, in celsius?", "auto", 30),
    ],
)
async def test_output_tokens_never_exceed_max_tokens(
    model: object, prompt: str, choice: Literal["auto", "none", "required"], limit: int
) -> None:
    # every generated token counts: kept calls, discarded drafts and text
    r = await model.request(req(prompt, tool_choice=choice, max_tokens=limit))  # type: ignore[attr-defined]
    assert 0 < r.usage.output_tokens <= limit
    assert r.raw["truncated"] == (r.stop_reason == "max_tokens") or r.tool_calls


@slow
async def test_a_cut_answer_is_flagged_as_truncated(model: object) -> None:
    r = await model.request(
        req("Write a long story about a dragon.", tool_choice="none", max_tokens=6)
    )  # type: ignore[attr-defined]
    assert r.stop_reason == "max_tokens" and r.raw["truncated"] is True
    assert r.usage.output_tokens == 6
    full = await model.request(req("Say hello.", tool_choice="none", max_tokens=120))  # type: ignore[attr-defined]
    assert full.raw["truncated"] is False and full.stop_reason == "end_turn"


@slow
async def test_the_shared_prompt_prefix_is_reused_from_the_kv_cache(model: object) -> None:
    await model.request(req("What is the weather like in Oslo?"))  # type: ignore[attr-defined]
    # another question, another mode: the system prompt and tool list are the same tokens
    r = await model.request(req("Add 7 and 9.", tool_choice="required"))  # type: ignore[attr-defined]
    assert r.usage.cache_read_tokens > 0.8 * r.usage.input_tokens


@slow
async def test_numbers_are_copied_as_written(model: object) -> None:
    r = await model.request(  # type: ignore[attr-defined]
        req("Convert $2,000,000 from USD to EUR.", tool_choice=NamedToolChoice("convert_currency"))
    )
    assert json.loads(r.tool_calls[0].arguments)["amount"] == 2_000_000


@slow
async def test_answer_after_a_tool_is_one_sentence_with_its_values(model: object) -> None:
    call = ToolCall("call_0", "get_weather", '{"city": "Paris"}')
    history = [
        Message.user("What is the weather like in Paris?"),
        Message.assistant("", [call]),
        Message.tool(
            ToolResult(
                "call_0", "get_weather", '{"city": "Paris", "sky": "cloudy", "celsius": 14.5}'
            )
        ),
    ]
    r = await model.request(ModelRequest(history, tools=[t.spec for t in TOOLS]))  # type: ignore[attr-defined]
    assert not r.tool_calls  # one thing was asked and answered: no further call
    assert r.text.endswith(".") and "\n" not in r.text and r.text.count(".") <= 2
    assert any(v in r.text for v in ("Paris", "cloudy", "14.5"))
    assert not any(ch.isdigit() for ch in r.text.replace("14.5", ""))  # no invented numbers


@slow
async def test_a_one_clause_request_gets_one_call_and_no_draft(model: object) -> None:
    r = await model.request(req("What is the weather like in Paris?", tool_choice="required"))  # type: ignore[attr-defined]
    assert len(r.tool_calls) == 1
    assert not any("p_more" in d for d in r.raw["decisions"])  # no second call was drafted
