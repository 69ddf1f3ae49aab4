"""What an approval is, independent of where it is kept: the request, its statuses, the errors,
the store contract, and the helpers that bind a request to one call (argument hash, masking, the
owner of an executing call).

Stores (`callgate.approvals.stores`) import only this module, and the rules that move a request
from one status to the next live once, in `callgate.approvals.service.Approvals`. The public
names are listed once, by the package (`callgate.approvals`); backends import the rest from here.
"""

from __future__ import annotations

import abc
import builtins
import dataclasses
import hashlib
import json
import os
import socket
import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol, cast, runtime_checkable

from pydantic_core import to_jsonable_python

from callgate.errors import CallgateError
from callgate.redaction import is_secret_key, redact
from callgate.serde import canonical_json
from callgate.tools.definition import Tool

Status = Literal["pending", "approved", "denied", "expired", "executing", "done", "interrupted"]
STATUSES: Final[tuple[str, ...]] = (
    "pending",
    "approved",
    "denied",
    "expired",
    "executing",
    "done",
    "interrupted",
)
#: Columns a transition may change (stores build SQL from these names only).
MUTABLE_FIELDS: Final = frozenset(
    {
        "expires_at",
        "decided_by",
        "decided_at",
        "comment",
        "claimed_by",
        "claimed_at",
        "finished_at",
        "result_summary",
    }
)


class ApprovalError(CallgateError):
    """An approval could not be decided as asked."""


class ApprovalNotFoundError(ApprovalError):
    """No approval request has this id."""


class ApprovalExpiredError(ApprovalError):
    """The request waited longer than its time to live; the user has to ask again."""


class ApprovalConflictError(ApprovalError):
    """The request was already decided differently (or already ran)."""


# --- the request -----------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class ApprovalRequest:
    """One call waiting for (or having received) a person's verdict.

    `arguments` are masked for display; `args_hash` binds the request to the real arguments.
    Times are Unix seconds.
    """

    id: str
    run_id: str
    conversation_id: str
    call_id: str
    tool: str
    version: str | None
    arguments: Any
    args_hash: str
    rule: str
    reason: str
    requested_by: str | None
    tenant: str | None
    created_at: float
    expires_at: float
    status: Status = "pending"
    decided_by: str | None = None
    decided_at: float | None = None
    comment: str | None = None
    claimed_by: str | None = None
    claimed_at: float | None = None
    finished_at: float | None = None
    result_summary: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApprovalRequest:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def describe(self) -> str:
        """What will happen if this is approved, in words a person can check."""
        version = f" (version {self.version})" if self.version else ""
        who = self.requested_by or "an anonymous user"
        if self.tenant:
            who += f" of tenant {self.tenant}"
        args = json.dumps(self.arguments, indent=2, ensure_ascii=False, sort_keys=True)
        return (
            f"If approved, `{self.tool}`{version} runs once with these arguments:\n{args}\n"
            f"Why approval is needed: {self.reason or self.rule} (rule {self.rule}).\n"
            f"Requested by {who} in run {self.run_id}, call {self.call_id}.\n"
            f"Approval id {self.id}; decide before {format_time(self.expires_at)}."
        )


FIELD_NAMES: Final[tuple[str, ...]] = tuple(f.name for f in dataclasses.fields(ApprovalRequest))


def format_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def args_hash(tool: str, version: str | None, args: Mapping[str, Any]) -> str:
    """SHA-256 over the tool, its version and the exact canonical arguments (models, enums and
    dates made plain first)."""
    plain = to_jsonable_python(
        {"tool": tool, "version": version, "arguments": dict(args)}, fallback=repr
    )
    payload = canonical_json(plain)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def mask_arguments(tool: Tool, args: Mapping[str, Any]) -> Any:
    """Arguments as a person may see them: the tool's sensitive parameters, secret-looking keys
    (password, secret, token, api_key, ssn, card, ...) and secret-looking values masked."""
    plain = to_jsonable_python(dict(args), fallback=repr)
    return redact(plain, tool.annotations.sensitive, keys=is_secret_key)


# --- the store contract ----------------------------------------------------------------------


@runtime_checkable
class ApprovalStore(Protocol):
    """Persistence for approval requests. Every method is atomic on its own."""

    def add(self, request: ApprovalRequest) -> ApprovalRequest:
        """Insert; when a request for the same (run_id, call_id, args_hash) exists, return it
        unchanged instead (two processes asking at once end up with one request)."""
        ...

    def get(self, approval_id: str) -> ApprovalRequest | None: ...

    def find(self, run_id: str, call_id: str, args_hash: str) -> ApprovalRequest | None: ...

    def list(self, status: str | None = None, limit: int = 100) -> builtins.list[ApprovalRequest]:
        """Newest first."""
        ...

    def transition(
        self,
        approval_id: str,
        expect: Collection[str],
        status: str,
        changes: Mapping[str, Any] | None = None,
        *,
        unexpired_at: float | None = None,
    ) -> ApprovalRequest | None:
        """Set `status` (and `changes`, keys from `MUTABLE_FIELDS`) only if the current status is
        in `expect` (and, with `unexpired_at`, only if ``expires_at > unexpired_at``). Returns the
        updated request, or None when the condition did not hold."""
        ...

    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Transition:
    """One conditional state change, checked once for every backend: the new `status` and
    `changes` apply only if the request's status is in `expect` (and, with `unexpired_at`, only
    if it has not expired by then)."""

    approval_id: str
    expect: tuple[str, ...]
    status: Status
    changes: Mapping[str, Any]
    unexpired_at: float | None = None

    def __post_init__(self) -> None:
        bad = set(self.changes) - MUTABLE_FIELDS
        if bad:
            raise ValueError(f"approval fields cannot be changed: {', '.join(sorted(bad))}")

    def applies_to(self, row: ApprovalRequest) -> bool:
        """The condition, for stores that check it in Python (SQL stores put it in a WHERE)."""
        if row.status not in self.expect:
            return False
        return self.unexpired_at is None or row.expires_at > self.unexpired_at


class StoreBase(abc.ABC):
    """The shared half of every store: `transition` builds and validates the `Transition`, the
    backend only applies it atomically (`_apply`)."""

    def transition(
        self,
        approval_id: str,
        expect: Collection[str],
        status: str,
        changes: Mapping[str, Any] | None = None,
        *,
        unexpired_at: float | None = None,
    ) -> ApprovalRequest | None:
        if status not in STATUSES:
            raise ValueError(f"unknown approval status {status!r}")
        new = cast(Status, status)
        change = Transition(approval_id, tuple(expect), new, dict(changes or {}), unexpired_at)
        return self._apply(change) if change.expect else None

    @abc.abstractmethod
    def _apply(self, change: Transition) -> ApprovalRequest | None:
        """Apply `change` in one atomic step; the updated request, or None if it did not
        hold."""


def encode_arguments(arguments: Any) -> str:
    """The masked arguments as stored in a text column (sorted keys: stable, diffable)."""
    return json.dumps(arguments, ensure_ascii=False, sort_keys=True)


# --- ownership of executing calls ------------------------------------------------------------

_HOST: Final = socket.gethostname()
_INCARNATION: Final = uuid.uuid4().hex[:12]


def process_owner() -> str:
    """Who is executing a claimed call: host, pid and a per-process random token (so a restarted
    process that got the same pid is not mistaken for the one that died)."""
    return f"{_HOST}:{os.getpid()}:{_INCARNATION}"


def owner_is_dead(owner: str | None) -> bool:
    """True only when we can be sure: the owner ran on this host and is gone."""
    if not owner:
        return False
    parts = owner.rsplit(":", 2)
    if len(parts) != 3:
        return False
    host, pid_text, token = parts
    if host != _HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return token != _INCARNATION
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # someone else's live process
    return False
