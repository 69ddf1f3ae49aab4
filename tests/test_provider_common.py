"""What every provider adapter must do the same way: one request normaliser (tool_choice checked
once, system messages hoisted), one set of constructor keywords, one stream retry window.

Each case runs through the official SDK against the local fake server of that provider, so the
assertions are about what actually went over the wire (or that nothing did).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from callgate.errors import InvalidModelRequest, ModelError
from callgate.messages import Message
from callgate.models import (
    ModelRequest,
    NamedToolChoice,
    ResponseFinished,
    TextDelta,
    normalise_request,
)
from callgate.providers._retry import RetryPolicy
from callgate.providers.anthropic import AnthropicModel
from callgate.providers.gemini import GeminiModel
from callgate.providers.openai.chat import OpenAIChatModel
from callgate.providers.openai.responses import OpenAIResponsesModel
from callgate.tools.definition import ToolSpec
from tests.fakes import anthropic_server as fa
from tests.fakes import gemini_server as fg
from tests.fakes import openai_server as fo

WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@dataclass
class Case:
    """One provider: its fake server, how to script a text reply, where things land in a body."""

    name: str
    server: Any
    make: Callable[..., Any]
    reply_text: Callable[[str], None]
    reply_error: Callable[[int], None]
    max_tokens_of: Callable[[dict[str, Any]], Any]
    system_of: Callable[[dict[str, Any]], Any]

    def bodies(self) -> list[Any]:
        return [r.json for r in self.server.requests]


def _openai_case(name: str, server: fo.FakeOpenAIServer) -> Case:
    chat = name == "openai_chat"
    cls = OpenAIChatModel if chat else OpenAIResponsesModel

    def make(**kw: Any) -> Any:
        return cls("gpt-test", base_url=server.url, api_key="sk-test", timeout=5, **kw)

    def reply_text(text: str) -> None:
        if chat:
            server.enqueue(fo.Reply.json_body(fo.chat_completion(content=text)))
        else:
            server.enqueue(fo.Reply.json_body(fo.response_object([fo.message_item(text)])))

    def system_of(body: dict[str, Any]) -> Any:
        if not chat:
            return body.get("instructions")
        systems = [m["content"] for m in body["messages"] if m["role"] == "system"]
        assert body["messages"][0]["role"] == "system" and len(systems) == 1
        return systems[0]

    return Case(
        name,
        server,
        make,
        reply_text,
        lambda status: server.enqueue(fo.error_reply(status, "busy", type="server_error")),
        lambda body: body.get("max_completion_tokens" if chat else "max_output_tokens"),
        system_of,
    )


def _anthropic_case(server: fa.FakeAnthropic) -> Case:
    return Case(
        "anthropic",
        server,
        lambda **kw: AnthropicModel("claude-test-1", api_key="k", base_url=server.url, **kw),
        lambda text: server.reply([fa.text(text)]),
        lambda status: server.reply_error(status, "api_error", "busy"),
        lambda body: body.get("max_tokens"),
        lambda body: body.get("system"),
    )


def _gemini_case(server: fg.FakeGemini) -> Case:
    def system_of(body: dict[str, Any]) -> Any:
        inst = body.get("systemInstruction") or body.get("system_instruction")
        return inst["parts"][0]["text"] if inst else None

    return Case(
        "gemini",
        server,
        lambda **kw: GeminiModel("gemini-test", api_key="k", base_url=server.url, **kw),
        lambda text: server.reply([fg.text_part(text)]),
        lambda status: server.reply_error(status, "UNAVAILABLE", "busy"),
        lambda body: body.get("generationConfig", {}).get("maxOutputTokens"),
        system_of,
    )


PROVIDERS = ["openai_chat", "openai_responses", "anthropic", "gemini"]


@pytest.fixture(params=PROVIDERS)
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    name = request.param
    if name.startswith("openai"):
        with fo.FakeOpenAIServer() as s:
            yield _openai_case(name, s)
    elif name == "anthropic":
        with fa.FakeAnthropic() as a:
            yield _anthropic_case(a)
    else:
        with fg.FakeGemini() as g:
            yield _gemini_case(g)


def _fast(**kw: Any) -> dict[str, Any]:
    return {"retry": RetryPolicy(max_retries=2, base_delay_s=0.001, max_delay_s=0.002), **kw}


async def _drain(stream: AsyncIterator[Any]) -> list[Any]:
    return [e async for e in stream]


# --- one request normaliser ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tools", "choice", "message"),
    [
        (
            [WEATHER],
            NamedToolChoice("delete_all"),
            "tool_choice names 'delete_all', which is not among the request's tools (get_weather)",
        ),
        ([], NamedToolChoice("get_weather"), "not among the request's tools (no tools)"),
        ([], "required", "tool_choice 'required' needs at least one tool"),
        ([WEATHER], "sometimes", "unknown tool_choice 'sometimes'"),
    ],
)
async def test_invalid_tool_choice_is_the_same_error_everywhere_and_nothing_is_sent(
    case: Case, tools: list[ToolSpec], choice: Any, message: str
) -> None:
    model = case.make(**_fast())
    request = ModelRequest([Message.user("hi")], tools=tools, tool_choice=choice)
    with pytest.raises(InvalidModelRequest) as plain:
        await model.request(request)
    with pytest.raises(InvalidModelRequest) as streamed:
        await _drain(model.stream(request))
    assert message in str(plain.value)
    assert str(plain.value) == str(streamed.value)
    assert case.server.requests == []


async def test_system_messages_are_hoisted_for_every_provider(case: Case) -> None:
    case.reply_text("ok")
    request = ModelRequest(
        [Message.user("hi"), Message.system("Answer in French."), Message.user("and?")],
        system="Be brief.",
    )
    response = await case.make(**_fast()).request(request)
    assert response.text == "ok"
    (body,) = case.bodies()
    assert case.system_of(body) == "Be brief.\n\nAnswer in French."


def test_normalise_request_returns_the_same_request_when_nothing_changes() -> None:
    request = ModelRequest([Message.user("hi")], tools=[WEATHER], tool_choice="required")
    assert normalise_request(request) is request
    hoisted = normalise_request(ModelRequest([Message.system("S"), Message.user("hi")]))
    assert hoisted.system == "S" and [m.role for m in hoisted.messages] == ["user"]


# --- one set of constructor keywords ------------------------------------------------------------


async def test_uniform_constructor_keywords(case: Case) -> None:
    sleeps = Sleeps()
    model = case.make(max_tokens=77, max_retries=1, sleep=sleeps, extra_body={"top_k": 5})
    case.reply_error(503)
    case.reply_text("ok")
    response = await model.request(ModelRequest([Message.user("hi")]))
    assert response.text == "ok"
    assert len(sleeps.waits) == 1  # the given sleep waited before the one retry
    first, second = case.bodies()
    assert first == second
    assert case.max_tokens_of(second) == 77
    assert second["top_k"] == 5  # extra_body lands in the JSON body as it is
    # a request's own cap wins over the model's default
    case.reply_text("ok")
    await model.request(ModelRequest([Message.user("hi")], max_tokens=9))
    assert case.max_tokens_of(case.bodies()[-1]) == 9
    # max_retries=1 means two attempts in all, whatever the provider
    case.reply_error(503)
    case.reply_error(503)
    with pytest.raises(ModelError):
        await model.request(ModelRequest([Message.user("hi")]))
    assert len(case.server.requests) == 5


# --- one stream retry window --------------------------------------------------------------------


def _chat_stream_dropped_before_output() -> Any:
    # a role-only chunk shows nothing to the caller, then the connection drops
    chunks = [fo.chat_chunk(role="assistant"), fo.chat_chunk(content="never sent")]
    return fo.chat_stream(chunks, usage=None, done=False, drop_after=1)


async def test_openai_chat_stream_dropped_before_any_output_is_retried() -> None:
    with fo.FakeOpenAIServer() as server:
        sleeps = Sleeps()
        model = OpenAIChatModel(
            "gpt-test", base_url=server.url, api_key="k", sleep=sleeps, **_fast()
        )
        server.enqueue(_chat_stream_dropped_before_output())
        server.enqueue(fo.chat_stream([fo.chat_chunk(content="hello", finish_reason="stop")]))
        events = await _drain(model.stream(ModelRequest([Message.user("hi")])))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["hello"]
    assert isinstance(events[-1], ResponseFinished) and events[-1].response.text == "hello"
    assert len(server.requests) == 2 and len(sleeps.waits) == 1


async def test_openai_chat_stream_dropped_after_output_is_not_retried() -> None:
    with fo.FakeOpenAIServer() as server:
        model = OpenAIChatModel("gpt-test", base_url=server.url, api_key="k", **_fast())
        server.enqueue(
            fo.chat_stream(
                [fo.chat_chunk(content="hel"), fo.chat_chunk(content="lo")],
                usage=None,
                done=False,
                drop_after=1,
            )
        )
        seen: list[Any] = []
        with pytest.raises(ModelError):
            async for event in model.stream(ModelRequest([Message.user("hi")])):
                seen.append(event)
    assert seen == [TextDelta("hel")]  # delivered once, never replayed
    assert len(server.requests) == 1
