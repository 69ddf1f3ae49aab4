"""One retry policy for every provider adapter: what a failure is, whether to retry it, how long
to wait.

Provider SDKs disagree on how they report failures and on how hard they retry. Adapters turn the
SDK's own retries off and call through `call_with_retries` so that every provider behaves the
same way:

- 408, 409, 429 and 5xx responses, timeouts and connection failures are retried with exponential
  backoff and jitter, at most `RetryPolicy.max_retries` times; never endlessly.
- Except timeouts when `RetryPolicy.retry_timeouts` is False: a server that did not answer in
  time may still be computing the answer, and a single-slot local server would queue the resent
  copy behind it (see `RetryPolicy`).
- A `Retry-After` (seconds or HTTP date) or `retry-after-ms` header is honoured as the wait,
  clamped to `RetryPolicy.max_retry_after_s` so a server cannot park a run for an hour.
- Any other status (400 "schema refused", 401, 404, ...) is raised at once as `ModelError` with
  the provider's own message: retrying a bad request only wastes quota.
- Exceptions that are not provider failures (a bug in the adapter) propagate untouched.

`classify_exception` recognises the OpenAI and Anthropic SDK errors, google-genai's `APIError`
and httpx transport errors by shape (attributes and class names), so this module imports no
SDK. An adapter with an unusual SDK can pass its own classifier. Streams use the same policy
through `callgate.providers._stream`.

Typical use inside an adapter::

    response = await call_with_retries(
        lambda: client.messages.create(**body), provider="anthropic", policy=self.retry
    )
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from callgate.errors import ModelError

__all__ = [
    "Classify",
    "ProviderFailure",
    "RetryPolicy",
    "Sleep",
    "call_with_retries",
    "classified",
    "classify_exception",
    "error_message_from_body",
    "is_retryable_status",
    "parse_retry_after",
]

log = logging.getLogger("callgate.providers")

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
# which exceptions are provider failures, and what kind (None: not one, e.g. a bug in our code)
Classify = Callable[[BaseException], "ProviderFailure | None"]

# Class names (anywhere in the exception's MRO) that mean "the request never got an answer".
# Matching by name keeps this module free of SDK imports: openai/anthropic share these names,
# httpx uses the others.
_TRANSPORT_ERROR_NAMES = frozenset(
    {
        "APIConnectionError",
        "APITimeoutError",
        "TransportError",
        "TimeoutException",
        "NetworkError",
        "RemoteProtocolError",
    }
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to retry a failed provider request.

    `max_retries` counts retries after the first attempt (0 disables retrying). The n-th retry
    waits `base_delay_s * 2**n` capped at `max_delay_s`, then scaled by a random factor in
    `[1 - jitter, 1]` so many clients that failed together do not come back together. A server's
    Retry-After replaces the computed wait, clamped to `max_retry_after_s`.

    `retry_timeouts` says whether a request that timed out is sent again. A hosted API spreads
    requests over many workers, so a resent request usually lands on a free one (True). A local
    or self-hosted OpenAI-compatible server often has a single slot that keeps computing the
    abandoned request: the copy queues behind it, times out in turn, and the server ends up
    doing the same work up to `max_retries + 1` times (False). None leaves the choice to the
    adapter (`OpenAIChatModel` picks False when given a `base_url` other than OpenAI's, True
    otherwise); `call_with_retries` treats a None it is handed as True.
    """

    max_retries: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    max_retry_after_s: float = 60.0
    jitter: float = 0.25
    retry_timeouts: bool | None = None

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.max_retry_after_s < 0:
            raise ValueError("retry delays must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")

    def delay(
        self, retry: int, retry_after: float | None = None, *, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry number `retry` (0-based)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after_s))
        backoff = min(self.base_delay_s * (2.0**retry), self.max_delay_s)
        factor = 1.0 - self.jitter * (rng or random).random()
        return backoff * factor

    def allows(self, failure: ProviderFailure) -> bool:
        """Whether this policy resends after `failure` (retries left are counted elsewhere)."""
        if failure.timed_out and self.retry_timeouts is False:
            return False
        return failure.retryable


@dataclass(frozen=True, slots=True)
class ProviderFailure:
    """A provider request failed; `retryable` says whether backoff could fix it."""

    message: str
    status: int | None = None
    retryable: bool = False
    retry_after: float | None = None
    body: Any = None
    timed_out: bool = False  # the request was sent and no answer came in time

    def to_model_error(
        self, provider: str, *, attempts: int = 1, resend_timeouts: bool = True
    ) -> ModelError:
        """The error callers see. A timeout the policy refused to resend says so, and is not
        `retryable`: resending it is exactly what the policy decided against."""
        where = f"{provider}: " if provider else ""
        status = f"HTTP {self.status}: " if self.status is not None else ""
        retryable = self.retryable
        tail = f" (gave up after {attempts} attempts)" if retryable and attempts > 1 else ""
        if self.timed_out and not resend_timeouts:
            retryable = False
            tail = (
                " (not resent: the server may still be working on it, and a copy would queue "
                "behind it; RetryPolicy(retry_timeouts=True) resends timeouts)"
            )
        return ModelError(
            f"{where}{status}{self.message}{tail}",
            status=self.status,
            retryable=retryable,
            body=self.body,
        )


def is_retryable_status(status: int) -> bool:
    """408 timeout, 409 conflict (lock contention), 429 rate limit and every 5xx."""
    return status in (408, 409, 429) or status >= 500


def parse_retry_after(
    headers: Mapping[str, str] | None, *, now: float | None = None
) -> float | None:
    """Seconds to wait according to `retry-after-ms` or `Retry-After`, or None.

    `Retry-After` may be a number of seconds or an HTTP date. Unparseable or negative values are
    ignored (None) rather than trusted.
    """
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = -1.0
        if ms >= 0 and ms == ms:  # not NaN
            return ms / 1000.0
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        current = time.time() if now is None else now
        return max(0.0, when.timestamp() - current)
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        return None
    return seconds


def error_message_from_body(body: Any) -> str | None:
    """The human message inside a provider's error body, whatever its nesting.

    Handles `{"error": {"message": ...}}` (OpenAI, Gemini, Anthropic's outer body), the inner
    `{"message": ...}` (what the OpenAI SDK keeps as `body`) and a list wrapping either.
    """
    for _ in range(4):
        if isinstance(body, list) and body:
            body = body[0]
            continue
        if isinstance(body, Mapping):
            message = body.get("message")
            if isinstance(message, str) and message:
                return message
            inner = body.get("error")
            if isinstance(inner, str) and inner:
                return inner
            if isinstance(inner, Mapping | list):
                body = inner
                continue
        return None
    return None


def _headers_of(exc: BaseException) -> Mapping[str, str] | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if isinstance(headers, Mapping):
        return headers
    return None


def _status_of(exc: BaseException) -> int | None:
    for attr in ("status_code", "code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return None


def classify_exception(exc: BaseException) -> ProviderFailure | None:
    """Map an SDK or transport exception to a `ProviderFailure`; None if it is not one.

    Recognised by shape: an integer `status_code` (openai, anthropic) or `code` (google-genai)
    plus `response.headers` and `body`/`details`; transport failures by class name (see
    `_TRANSPORT_ERROR_NAMES`) or the builtin `TimeoutError` / `ConnectionError`.
    """
    status = _status_of(exc)
    if status is not None:
        body = getattr(exc, "body", None)
        if body is None:
            body = getattr(exc, "details", None)
        message = error_message_from_body(body) or getattr(exc, "message", None) or str(exc)
        headers = _headers_of(exc)
        retryable = is_retryable_status(status)
        if headers is not None:
            # A server may say explicitly whether retrying makes sense (OpenAI sends this).
            hint = {str(k).lower(): str(v) for k, v in headers.items()}.get("x-should-retry")
            if hint == "true":
                retryable = True
            elif hint == "false":
                retryable = False
        return ProviderFailure(
            message=str(message),
            status=status,
            retryable=retryable,
            retry_after=parse_retry_after(headers) if retryable else None,
            body=body,
        )
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _TRANSPORT_ERROR_NAMES or isinstance(exc, TimeoutError | ConnectionError):
        timed_out = any("Timeout" in n for n in names) or isinstance(exc, TimeoutError)
        what = "request timed out" if timed_out else "connection failed"
        detail = str(exc)
        return ProviderFailure(
            message=f"{what}: {detail}" if detail else what, retryable=True, timed_out=timed_out
        )
    return None


def classified(exc: Exception, classify: Classify) -> ProviderFailure:
    """The provider failure `exc` is; `exc` itself, re-raised, when `classify` says it is none
    (a bug in the caller's code must surface as itself, never as a provider error)."""
    failure = classify(exc)
    if failure is None:
        raise exc
    return failure


async def call_with_retries(
    op: Callable[[], Awaitable[T]],
    *,
    provider: str,
    policy: RetryPolicy,
    classify: Classify = classify_exception,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """Await `op()` until it succeeds, retrying retryable failures per `policy`.

    Raises `ModelError` (chained to the last exception) for a non-retryable failure or when
    retries run out. `sleep` and `rng` are injectable so tests can observe the waits without
    spending them.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return await op()
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            failure = classified(exc, classify)
            if not policy.allows(failure) or attempt > policy.max_retries:
                raise failure.to_model_error(
                    provider, attempts=attempt, resend_timeouts=policy.retry_timeouts is not False
                ) from exc
            wait = policy.delay(attempt - 1, failure.retry_after, rng=rng)
            log.info(
                "%s request failed (%s); retry %d/%d in %.2fs",
                provider,
                failure.status if failure.status is not None else failure.message,
                attempt,
                policy.max_retries,
                wait,
            )
            await sleep(wait)
