"""Model fallback and split models: which model takes a turn, and that it is recorded.

The provider tests run the real OpenAI and Anthropic SDKs against the local fake servers, so a
fallback is checked end to end: the primary's 5xx, the secondary's request in its own dialect,
and the conversation continuing in the primary's dialect with the secondary's call ids."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from callgate import Agent, AuditLog, Gate, tool
from callgate.errors import InvalidModelRequest, ModelError
from callgate.gate.protocols import CallRecord, TurnRecord
from callgate.messages import Message
from callgate.models import ModelRequest, ResponseFinished
from callgate.providers._retry import RetryPolicy
from callgate.providers.anthropic import AnthropicModel
from callgate.providers.fallback import FallbackModel, SplitModel, not_callers_fault
from callgate.providers.openai.chat import OpenAIChatModel
from callgate.testing import FunctionModel, ScriptedModel, call
from tests.fakes.anthropic_server import FakeAnthropic, text, tool_use
from tests.fakes.openai_server import FakeOpenAIServer, chat_completion, error_reply

FAST = RetryPolicy(max_retries=1, base_delay_s=0.001, max_delay_s=0.002)


@tool(read_only=True)
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


class Turns:
    def __init__(self) -> None:
        self.turns: list[TurnRecord] = []

    def on_call(self, record: CallRecord) -> None:
        pass

    def on_turn(self, record: TurnRecord) -> None:
        self.turns.append(record)


def failing(exc: BaseException, name: str = "down") -> FunctionModel:
    def fn(_: ModelRequest) -> str:
        raise exc

    return FunctionModel(fn, name=name)


# --- real SDKs against the fake servers -------------------------------------------------------


def test_openai_500_falls_back_to_anthropic_in_its_own_dialect() -> None:
    with FakeOpenAIServer() as oai, FakeAnthropic() as ant:
        for _ in range(2):  # the first attempt and its one retry
            oai.enqueue(error_reply(500, "overloaded", type="server_error"))
        ant.reply([tool_use("toolu_1", "get_weather", {"city": "Paris"})], stop_reason="tool_use")
        oai.enqueue(oai_text("It is sunny in Paris."))
        primary = OpenAIChatModel("gpt-test", base_url=oai.url, api_key="k", retry=FAST)
        secondary = AnthropicModel(
            "claude-test-1", api_key="k", base_url=ant.url, max_tokens=256, retry=FAST
        )
        seen = Turns()
        agent = Agent(FallbackModel([primary, secondary]), Gate([get_weather], observers=[seen]))
        result = agent.run_sync("Weather in Paris?")
        ant_body = ant.bodies[0]
        oai_last = oai.requests[-1].json
    assert result.status == "completed" and result.output == "It is sunny in Paris."
    # Anthropic got the tool in its own dialect
    assert ant_body["tools"][0]["name"] == "get_weather"
    assert ant_body["tools"][0]["input_schema"]["properties"]["city"]["type"] == "string"
    # the conversation went back to OpenAI with Anthropic's call id, in OpenAI's dialect
    tool_msgs = [m for m in oai_last["messages"] if m["role"] == "tool"]
    assert tool_msgs[0]["tool_call_id"] == "toolu_1" and "sunny" in tool_msgs[0]["content"]
    assert oai_last["tools"][0]["function"]["name"] == "get_weather"
    # recorded: who answered each turn and why the first fell back
    first, second = seen.turns
    assert first.model.startswith("claude") and len(first.fallbacks) == 1
    assert first.fallbacks[0].startswith("gpt-test: ") and "500" in first.fallbacks[0]
    assert second.fallbacks == () and "gpt" in second.model


def oai_text(content: str) -> Any:
    from tests.fakes.http import Reply

    return Reply.json_body(chat_completion(content=content))


def test_caller_fault_is_not_passed_on() -> None:
    with FakeOpenAIServer() as oai, FakeAnthropic() as ant:
        oai.enqueue(error_reply(400, "bad schema"))
        primary = OpenAIChatModel("gpt-test", base_url=oai.url, api_key="k", retry=FAST)
        secondary = AnthropicModel("claude-test-1", api_key="k", base_url=ant.url, retry=FAST)
        model = FallbackModel([primary, secondary])
        with pytest.raises(ModelError, match="bad schema") as info:
            Agent(model).run_sync("hi")
        assert info.value.status == 400
        assert ant.requests == []  # the secondary was never asked


def test_429_after_retries_falls_back() -> None:
    with FakeOpenAIServer() as oai, FakeAnthropic() as ant:
        for _ in range(2):
            oai.enqueue(error_reply(429, "slow down", type="rate_limit_error"))
        ant.reply([text("hello from claude")])
        primary = OpenAIChatModel("gpt-test", base_url=oai.url, api_key="k", retry=FAST)
        secondary = AnthropicModel("claude-test-1", api_key="k", base_url=ant.url, retry=FAST)
        result = Agent(FallbackModel([primary, secondary])).run_sync("hi")
        assert len(oai.requests) == 2  # the primary's own retries ran first
    assert result.output == "hello from claude"


# --- classification and scripted models ----------------------------------------------------------


def test_classification() -> None:
    assert not_callers_fault(ModelError("x", status=503, retryable=True))
    assert not_callers_fault(ConnectionError("refused"))
    assert not_callers_fault(TimeoutError())
    assert not not_callers_fault(ModelError("x", status=401))
    assert not not_callers_fault(InvalidModelRequest("no such tool"))
    assert not not_callers_fault(ValueError("a bug"))


def test_connection_error_falls_back_and_audit_records_it() -> None:
    audit = AuditLog.open(":memory:")
    backup = ScriptedModel(["fine"], name="backup")
    model = FallbackModel([failing(ConnectionError("refused"), "primary"), backup])
    result = Agent(model, Gate([get_weather], observers=[audit])).run_sync("hi")
    assert result.output == "fine"
    turns = [e for e in audit.store.iter_all() if e.kind == "turn"]
    assert turns[0].data["model"] == "backup"
    assert turns[0].data["fallbacks"][0].startswith("primary: ConnectionError")


def test_every_model_failing_names_each_failure() -> None:
    model = FallbackModel(
        [
            failing(ModelError("a down", status=502, retryable=True), "a"),
            failing(TimeoutError("b slow"), "b"),
        ]
    )
    with pytest.raises(ModelError, match="a: ModelError: a down") as info:
        Agent(model).run_sync("hi")
    assert "b slow" in str(info.value) and info.value.retryable


def test_a_bug_in_the_primary_is_raised_not_hidden() -> None:
    backup = ScriptedModel(["never"])
    model = FallbackModel([failing(KeyError("oops")), backup])
    with pytest.raises(KeyError):
        Agent(model).run_sync("hi")
    assert backup.requests == []


async def test_stream_falls_back_before_the_first_event() -> None:
    backup = ScriptedModel([call("get_weather", {"city": "Oslo"})], name="backup")
    model = FallbackModel([failing(ModelError("x", status=500, retryable=True)), backup])
    req = ModelRequest(messages=[Message.user("hi")], tools=[get_weather.spec])
    events = [ev async for ev in model.stream(req)]
    final = events[-1]
    assert isinstance(final, ResponseFinished)
    assert final.response.model == "backup" and final.response.fallbacks[0].status == 500
    assert json.loads(str(final.response.tool_calls[0].arguments)) == {"city": "Oslo"}


# --- a small model for tools, a large one for the answer ----------------------------------------


def test_split_model_hands_the_answer_to_the_large_model() -> None:
    small = ScriptedModel([call("get_weather", {"city": "Rome"}), "small's answer"], name="small")
    large = ScriptedModel(["Rome is sunny today."], name="large")
    seen = Turns()
    agent = Agent(small, Gate([get_weather], observers=[seen]), final_model=large)
    result = agent.run_sync("Weather in Rome?")
    assert result.output == "Rome is sunny today."
    assert len(small.requests) == 2 and len(large.requests) == 1
    # the large model saw the whole conversation, tool result included
    assert any(m.role == "tool" for m in large.requests[0].messages)
    assert [t.model for t in seen.turns] == ["small", "large"]
    assert "split" in seen.turns[1].fallbacks[0]
    # the discarded small answer still counts
    assert result.usage.requests == 3


class Verdict(BaseModel):
    sunny: bool


def test_split_model_with_structured_output() -> None:
    small = ScriptedModel([call("final_result", {"sunny": False})], name="small")
    large = ScriptedModel([call("final_result", {"sunny": True})], name="large")
    agent = Agent(small, [get_weather], output_type=Verdict, final_model=large)
    assert agent.run_sync("Sunny in Rome?").output == Verdict(sunny=True)


async def test_split_model_sends_tools_off_requests_to_the_large_model() -> None:
    small = ScriptedModel([], name="small")
    large = ScriptedModel(["done"], name="large")
    req = ModelRequest(messages=[Message.user("hi")], tools=[get_weather.spec], tool_choice="none")
    resp = await SplitModel(small, large).request(req)
    assert resp.text == "done" and small.requests == []


async def test_stream_failing_midway_is_not_retried_elsewhere() -> None:
    class HalfStream:
        name = "half"

        async def request(self, request: ModelRequest) -> Any:
            raise AssertionError("not used")

        async def stream(self, request: ModelRequest) -> Any:
            from callgate.models import TextDelta

            yield TextDelta("Hel")
            raise ModelError("connection reset", retryable=True)

    backup = ScriptedModel(["never"])
    model = FallbackModel([HalfStream(), backup])
    got: list[Any] = []
    with pytest.raises(ModelError, match="connection reset"):
        async for ev in model.stream(ModelRequest(messages=[Message.user("hi")])):
            got.append(ev)
    assert len(got) == 1 and backup.requests == []  # part of the answer was already shown
