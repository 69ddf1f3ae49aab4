"""The one stream loop every provider adapter uses.

A provider supplies two things: how to open its SDK stream, and a `StreamAssembler` that turns
the SDK's events into callgate's (`callgate.models`). This module does the rest, the same way
for every provider:

- The retry window is the same everywhere: opening the stream *and reading it up to the first
  event a caller would see* happen inside `call_with_retries`, so a failure before anything was
  delivered (an HTTP error, a dropped connection, an error event right after the stream began)
  is retried by the provider's `RetryPolicy`, and nothing is ever delivered twice.
- After the first delivered event, a failure raises `ModelError` (classified by the provider's
  classifier): a half-delivered turn cannot be taken back or resumed.
- The SDK stream is closed whatever happens, including when the caller stops early.
- The turn ends with the assembler's closing events, the last of which is `ResponseFinished`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from callgate.errors import ModelError
from callgate.models import ModelStreamEvent, StreamAssembler
from callgate.providers._retry import (
    Classify,
    RetryPolicy,
    Sleep,
    call_with_retries,
    classified,
)

__all__ = ["run_stream"]


async def run_stream(
    open_stream: Callable[[], Awaitable[Any]],
    make_assembler: Callable[[], StreamAssembler],
    *,
    provider: str,
    policy: RetryPolicy,
    classify: Classify,
    sleep: Sleep,
) -> AsyncIterator[ModelStreamEvent]:
    """Stream one turn: `open_stream()` gives an async iterable of SDK events, a fresh
    `make_assembler()` per attempt turns them into callgate events."""
    stream, events, assembler, ready = await call_with_retries(
        lambda: _open(open_stream, make_assembler),
        provider=provider,
        policy=policy,
        classify=classify,
        sleep=sleep,
    )
    try:
        for out in ready:
            yield out
        while not assembler.done:
            try:
                event = await anext(events)
            except StopAsyncIteration:
                break
            for out in assembler.feed(event):
                yield out
    except (asyncio.CancelledError, GeneratorExit, ModelError):
        raise
    except Exception as exc:
        raise classified(exc, classify).to_model_error(provider) from exc
    finally:
        await _close(stream, events)
    for out in assembler.close():
        yield out


async def _open(
    open_stream: Callable[[], Awaitable[Any]], make_assembler: Callable[[], StreamAssembler]
) -> tuple[Any, AsyncIterator[Any], StreamAssembler, list[ModelStreamEvent]]:
    """Open a stream and read it up to its first visible event, or its end."""
    stream = await open_stream()
    events = aiter(stream)
    assembler = make_assembler()
    try:
        while not assembler.done:
            try:
                event = await anext(events)
            except StopAsyncIteration:
                break
            ready = assembler.feed(event)
            if ready:
                return stream, events, assembler, ready
    except BaseException:
        await _close(stream, events)
        raise
    return stream, events, assembler, []


async def _close(stream: Any, events: AsyncIterator[Any]) -> None:
    """Close the iterator and the SDK stream under it (each SDK offers one or the other)."""
    for obj in (events, stream):
        close = getattr(obj, "aclose", None) or getattr(obj, "close", None)
        if close is None:
            continue
        result = close()
        if isinstance(result, Awaitable):
            await result
