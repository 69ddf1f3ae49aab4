"""The half of a provider adapter that is the same for every provider: its retry policy, and
the one way a request is sent and a stream is opened through that policy.

An adapter subclasses `ProviderModel` and only translates its wire format; it never calls
`call_with_retries` or `run_stream` itself, so a request and a stream are retried the same
observable way whichever provider serves them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from callgate.models import ModelStreamEvent, StreamAssembler
from callgate.providers._retry import Classify, RetryPolicy, Sleep, call_with_retries
from callgate.providers._stream import run_stream

__all__ = ["ProviderModel"]

T = TypeVar("T")


class ProviderModel:
    """The model id (`name`) and the retries of one provider: `retry` wins over `max_retries`;
    `sleep` waits between tries (tests pass one that records instead of sleeping); `classify`
    says which SDK exceptions are provider failures and whether they are worth retrying."""

    def __init__(
        self,
        provider: str,
        classify: Classify,
        model: str,
        *,
        retry: RetryPolicy | None,
        max_retries: int,
        sleep: Sleep,
    ) -> None:
        if not model:
            raise ValueError(f"{provider}: model must be a non-empty model id")
        self._model = model
        self.retry = retry if retry is not None else RetryPolicy(max_retries=max_retries)
        self._provider = provider
        self._classify = classify
        self._sleep = sleep

    @property
    def name(self) -> str:
        return self._model

    async def _send(self, op: Callable[[], Awaitable[T]]) -> T:
        """`op()` under the retry policy: the SDK call of one non-streamed turn."""
        return await call_with_retries(
            op,
            provider=self._provider,
            policy=self.retry,
            classify=self._classify,
            sleep=self._sleep,
        )

    def _stream(
        self,
        open_stream: Callable[[], Awaitable[Any]],
        make_assembler: Callable[[], StreamAssembler],
    ) -> AsyncIterator[ModelStreamEvent]:
        """One streamed turn through the shared loop (`callgate.providers._stream.run_stream`)."""
        return run_stream(
            open_stream,
            make_assembler,
            provider=self._provider,
            policy=self.retry,
            classify=self._classify,
            sleep=self._sleep,
        )
