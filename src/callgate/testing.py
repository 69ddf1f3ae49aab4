"""Test doubles: scripted and function models, and tools that fail on purpose.

They implement the same `Model` protocol as real providers (streaming included), so an
application's tests exercise exactly the code paths production uses.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from callgate.errors import TransientToolError
from callgate.messages import Message, ToolCall, Usage
from callgate.models import (
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    ResponseFinished,
    TextDelta,
    ToolCallDelta,
    ToolCallFinished,
    ToolCallStarted,
)

_ids = itertools.count(1)


def call(
    name: str, arguments: str | dict[str, Any] | None = None, id: str | None = None
) -> ToolCall:
    """Build a `ToolCall`; dict arguments are sent as JSON text, as OpenAI-style providers do."""
    args: str | dict[str, Any]
    if arguments is None:
        args = "{}"
    elif isinstance(arguments, dict):
        args = json.dumps(arguments)
    else:
        args = arguments
    return ToolCall(id or f"call_{next(_ids)}", name, args)


Reply = str | ToolCall | Sequence[ToolCall] | ModelResponse | tuple[str, Sequence[ToolCall]]


def to_response(reply: Reply, model: str) -> ModelResponse:
    """Normalise the shorthand forms a script may use into a `ModelResponse`."""
    if isinstance(reply, ModelResponse):
        return reply
    if isinstance(reply, str):
        msg = Message.assistant(reply)
    elif isinstance(reply, ToolCall):
        msg = Message.assistant("", [reply])
    elif isinstance(reply, tuple) and len(reply) == 2 and isinstance(reply[0], str):
        text, calls = reply
        msg = Message.assistant(text, list(calls))
    else:
        msg = Message.assistant("", list(reply))
    stop = "tool_calls" if msg.tool_calls else "end_turn"
    out_tokens = max(1, len(msg.content) // 4) + 8 * len(msg.tool_calls)
    return ModelResponse(msg, Usage(10, out_tokens, requests=1), stop, model)  # type: ignore[arg-type]


@dataclass
class _Base:
    name: str = "test-model"
    requests: list[ModelRequest] = field(default_factory=list)

    async def _reply(self, request: ModelRequest) -> ModelResponse:  # pragma: no cover
        raise NotImplementedError

    async def request(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        return await self._reply(request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Replays the reply as a provider would stream it: text in small pieces, each call's
        arguments in fragments."""
        resp = await self.request(request)
        text = resp.message.content
        for i in range(0, len(text), 8):
            yield TextDelta(text[i : i + 8])
        for idx, c in enumerate(resp.message.tool_calls):
            yield ToolCallStarted(idx, c.id, c.name)
            raw = c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments)
            for i in range(0, len(raw), 5):
                yield ToolCallDelta(idx, c.id, raw[i : i + 5])
            yield ToolCallFinished(idx, c)
        yield ResponseFinished(resp)


class ScriptedModel(_Base):
    """Replies from a list, one per request. Running out is an error (the test asked the model
    more often than it expected). Every request is kept in `.requests` for assertions."""

    def __init__(self, replies: Iterable[Reply], name: str = "scripted") -> None:
        super().__init__(name=name)
        self._replies = list(replies)
        self._pos = 0

    async def _reply(self, request: ModelRequest) -> ModelResponse:
        if self._pos >= len(self._replies):
            raise AssertionError(
                f"ScriptedModel ran out of replies after {self._pos} requests; "
                f"last message: {request.messages[-1] if request.messages else None!r}"
            )
        r = self._replies[self._pos]
        self._pos += 1
        return to_response(r, self.name)

    @property
    def remaining(self) -> int:
        return len(self._replies) - self._pos


ModelFunction = Callable[[ModelRequest], Reply | Awaitable[Reply]]


class FunctionModel(_Base):
    """A Python function decides each reply from the request (messages, tools, tool_choice)."""

    def __init__(self, fn: ModelFunction, name: str = "function") -> None:
        super().__init__(name=name)
        self._fn = fn

    async def _reply(self, request: ModelRequest) -> ModelResponse:
        r = self._fn(request)
        if asyncio.iscoroutine(r) or isinstance(r, Awaitable):
            r = await r
        return to_response(r, self.name)


# --- fault injectors ------------------------------------------------------------------------


class FailNTimes:
    """A callable failing with `exc` the first `n` calls, then returning `result`.

    Wrap it in a tool to test retries: ``Tool.from_schema(..., FailNTimes(2, "ok"))`` or call it
    from a typed tool function.
    """

    def __init__(self, n: int, result: Any = "ok", exc: Exception | None = None) -> None:
        self.n = n
        self.result = result
        self.exc = exc or TransientToolError("backend unavailable")
        self.calls = 0

    def __call__(self, **_: Any) -> Any:
        self.calls += 1
        if self.calls <= self.n:
            raise self.exc
        return self.result


async def hang(**_: Any) -> Any:
    """Never returns (until cancelled): for timeout tests."""
    await asyncio.Event().wait()


def raise_(exc: BaseException) -> Callable[..., Any]:
    def f(**_: Any) -> Any:
        raise exc

    return f
