"""Paused runs, independent of where they are kept: the store contract and the one JSON check.

A run that hits a call needing approval is saved (`save`) and the process may exit; later, maybe
in another process, `Agent.resume(run_id)` loads it, re-sends the pending calls through the gate
(where `callgate.approvals.service.Approvals` finds the decision) and deletes it when the run
moves on.

The state is a JSON-serialisable dict owned by the agent; stores never look inside it. Every
store checks that it really is JSON (no NaN, no objects) when it is saved (`encode_state`), so a
state that would not survive a restart fails at once, not at resume time.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

from callgate.errors import CallgateError

__all__ = ["RunStore", "RunStoreError", "decode_state", "encode_state"]


class RunStoreError(CallgateError):
    """A run state could not be saved or loaded."""


@runtime_checkable
class RunStore(Protocol):
    def save(self, run_id: str, state: dict[str, Any]) -> None:
        """Insert or replace the state of a paused run."""
        ...

    def load(self, run_id: str) -> dict[str, Any] | None: ...

    def delete(self, run_id: str) -> None:
        """Forget a run (no error when it is not there)."""
        ...

    def list_paused(self) -> list[str]:
        """Ids of the saved runs, oldest first."""
        ...


def encode_state(run_id: str, state: dict[str, Any]) -> str:
    if not isinstance(run_id, str) or not run_id:
        raise RunStoreError("run_id must be a non-empty string")
    if not isinstance(state, dict):
        raise RunStoreError(f"run state for {run_id!r} must be a dict, not {type(state).__name__}")
    try:
        return json.dumps(state, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise RunStoreError(f"run state for {run_id!r} is not JSON-serialisable: {exc}") from None


def decode_state(run_id: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise RunStoreError(f"stored state of run {run_id!r} is corrupt: {exc}") from None
    if not isinstance(value, dict):
        raise RunStoreError(f"stored state of run {run_id!r} is not an object")
    return value
