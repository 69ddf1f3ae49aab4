"""One error taxonomy for everything that can go wrong with a proposed call.

The kind decides what happens next, so every failure is classified exactly once:

- ``correctable``: the model can fix its own call (bad arguments, unknown tool, a business rule the
  tool reported with `ToolRetry`). Rendered back with what to change; counts against the correction
  budget.
- ``transient``: the world failed (timeout, a flaky backend). Retried with backoff when the tool is
  idempotent or allows it; rendered as "try again later" when retries are exhausted.
- ``denied``: policy, approval, rate limit or sanitisation said no. Never retried automatically.
- ``terminal``: a bug or an unrecoverable state. The model is told the tool failed, without details;
  full detail goes to logs.

Tool authors raise `ToolRetry`, `TransientToolError`, `ToolDenied` or `TerminalToolError`; any other
exception is treated as terminal and its text is never shown to the model.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    CORRECTABLE = "correctable"
    TRANSIENT = "transient"
    DENIED = "denied"
    TERMINAL = "terminal"
    #: not an error of the model: the call waits for a person (the run pauses)
    PENDING_APPROVAL = "pending_approval"


class CallgateError(Exception):
    """Base of every exception callgate raises to the application (not to the model)."""


class SchemaError(CallgateError):
    """A tool definition or JSON Schema was refused at registration time."""


class ToolError(Exception):
    """Raised by a tool (or the gate) to end a call with a classified error.

    `message` is written for the model: say what went wrong and what to do instead. `detail` is for
    logs only and never reaches the model.
    """

    kind: ErrorKind = ErrorKind.TERMINAL

    def __init__(self, message: str, *, detail: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.code = code


class ToolRetry(ToolError):
    """The model should call again with different arguments (uses the correction budget)."""

    kind = ErrorKind.CORRECTABLE


class TransientToolError(ToolError):
    """A temporary failure: safe to retry with backoff if the tool is idempotent.

    `retry_after` (seconds), when given, is honoured as the minimum wait before the next attempt.
    """

    kind = ErrorKind.TRANSIENT

    def __init__(
        self,
        message: str = "temporary failure",
        *,
        retry_after: float | None = None,
        detail: Any = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, detail=detail, code=code)
        self.retry_after = retry_after


class ToolDenied(ToolError):
    """Policy, approval, rate limit or sanitisation refused the call. Never retried."""

    kind = ErrorKind.DENIED

    def __init__(
        self, message: str, *, rule: str | None = None, detail: Any = None, code: str | None = None
    ) -> None:
        super().__init__(message, detail=detail, code=code)
        self.rule = rule


class TerminalToolError(ToolError):
    """The call cannot succeed; the model is told so and should not retry it."""

    kind = ErrorKind.TERMINAL


class ApprovalRequired(Exception):
    """Raised inside the gate when a call must wait for a person.

    The agent loop catches it, persists the run and returns a paused result. `request` is the
    approval request object of the approval store (see `callgate.approvals.service`).
    """

    def __init__(self, approval_id: str, message: str, request: Any = None) -> None:
        super().__init__(message)
        self.approval_id = approval_id
        self.message = message
        self.request = request


class ModelError(CallgateError):
    """A model provider failed in a way retries did not fix (bad request, auth, exhausted retries).

    `status` is the HTTP status when there was one; `retryable` says whether the failure was of a
    kind that backoff could fix (429/5xx/timeouts) and retries ran out.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retryable: bool = False, body: Any = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.body = body


class InvalidModelRequest(ModelError, ValueError):
    """A `ModelRequest` no provider can send as it is (a `tool_choice` naming a tool that is not
    offered, "required" with no tools). Raised by `callgate.models.normalise_request` before
    anything is sent, with the same message whatever the provider."""
