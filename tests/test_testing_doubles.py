"""The test doubles behave like real models and like failing tools."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from callgate import Message, ModelRequest, ModelResponse, ToolCall, TransientToolError, Usage
from callgate.models import Model, ResponseFinished, StreamingModel, ToolCallDelta
from callgate.testing import (
    FailNTimes,
    FunctionModel,
    ScriptedModel,
    call,
    hang,
    raise_,
    to_response,
)


def req(text: str = "hi") -> ModelRequest:
    return ModelRequest(messages=[Message.user(text)])


def test_call_helper() -> None:
    c = call("f", {"a": 1}, id="x")
    assert c == ToolCall("x", "f", '{"a": 1}')
    assert call("f").arguments == "{}"
    assert call("f", '{"raw": true}').arguments == '{"raw": true}'
    assert call("f").id != call("f").id


def test_to_response_shorthands() -> None:
    r = to_response("text", "m")
    assert (
        r.text == "text" and r.tool_calls == [] and r.stop_reason == "end_turn" and r.model == "m"
    )
    c = call("f")
    r = to_response(c, "m")
    assert r.tool_calls == [c] and r.stop_reason == "tool_calls" and r.text == ""
    r = to_response(("thinking", [c, c]), "m")
    assert r.text == "thinking" and len(r.tool_calls) == 2
    own = ModelResponse(Message.assistant("x"), Usage(1, 2))
    assert to_response(own, "m") is own
    assert r.usage.input_tokens == 10 and r.usage.output_tokens > 0 and r.usage.requests == 1


async def test_scripted_model_replays_and_records() -> None:
    c1, c2 = call("a", id="1"), call("b", id="2")
    m = ScriptedModel([[c1, c2], "done"], name="s1")
    assert isinstance(m, Model) and isinstance(m, StreamingModel)
    r1 = await m.request(req("one"))
    assert [c.id for c in r1.tool_calls] == ["1", "2"]  # parallel calls of one turn
    r2 = await m.request(req("two"))
    assert r2.text == "done" and r2.model == "s1"
    assert [q.messages[0].content for q in m.requests] == ["one", "two"]
    assert m.remaining == 0
    with pytest.raises(AssertionError, match="ran out of replies after 2 requests"):
        await m.request(req("three"))


async def test_function_model_sync_and_async() -> None:
    def sync_fn(r: ModelRequest) -> Any:
        return f"echo {r.messages[-1].content}"

    async def async_fn(r: ModelRequest) -> Any:
        await asyncio.sleep(0)
        return call("t", {"q": r.messages[-1].content})

    assert (await FunctionModel(sync_fn).request(req("x"))).text == "echo x"
    r = await FunctionModel(async_fn).request(req("y"))
    assert json.loads(r.tool_calls[0].arguments) == {"q": "y"}  # type: ignore[arg-type]


async def test_stream_replays_the_same_response() -> None:
    c = ToolCall("k", "f", '{"long": "' + "x" * 40 + '"}')
    m = ScriptedModel([("some text here!", [c])])
    evs = [e async for e in m.stream(req())]
    assert isinstance(evs[-1], ResponseFinished)
    assert evs[-1].response.tool_calls == [c]
    assert "".join(e.arguments_delta for e in evs if isinstance(e, ToolCallDelta)) == c.arguments
    assert len(m.requests) == 1


async def test_stream_of_dict_arguments_is_json() -> None:
    c = ToolCall("k", "f", {"a": [1, 2]})
    m = ScriptedModel([c])
    evs = [e async for e in m.stream(req())]
    deltas = "".join(e.arguments_delta for e in evs if isinstance(e, ToolCallDelta))
    assert json.loads(deltas) == {"a": [1, 2]}


def test_fail_n_times() -> None:
    f = FailNTimes(2, result={"ok": True})
    for _ in range(2):
        with pytest.raises(TransientToolError):
            f(x=1)
    assert f(x=1) == {"ok": True}
    assert f() == {"ok": True}
    assert f.calls == 4
    g = FailNTimes(1, exc=ValueError("bad"))
    with pytest.raises(ValueError, match="bad"):
        g()
    assert g() == "ok"


async def test_hang_until_cancelled() -> None:
    t = asyncio.create_task(hang(a=1))
    await asyncio.sleep(0.01)
    assert not t.done()
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t


def test_raise_helper() -> None:
    f = raise_(KeyError("k"))
    with pytest.raises(KeyError):
        f(anything=1)
