"""Approval requests in process memory: for tests and single-process tools that do not need to
survive a restart. Same contract as the durable stores, copies in and out so a caller can never
change a stored request by mutating what it got back."""

from __future__ import annotations

import builtins
import dataclasses
import threading

from callgate.approvals.model import ApprovalRequest, StoreBase, Transition


class MemoryApprovalStore(StoreBase):
    """`ApprovalStore` in a dict, guarded by one lock (every method is atomic)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, ApprovalRequest] = {}
        self._keys: dict[tuple[str, str, str], str] = {}

    def add(self, request: ApprovalRequest) -> ApprovalRequest:
        key = (request.run_id, request.call_id, request.args_hash)
        with self._lock:
            existing = self._keys.get(key)
            if existing is not None:
                return dataclasses.replace(self._rows[existing])
            if request.id in self._rows:
                raise ValueError(f"approval id {request.id!r} exists")
            self._rows[request.id] = dataclasses.replace(request)
            self._keys[key] = request.id
            return dataclasses.replace(request)

    def get(self, approval_id: str) -> ApprovalRequest | None:
        with self._lock:
            row = self._rows.get(approval_id)
            return dataclasses.replace(row) if row else None

    def find(self, run_id: str, call_id: str, args_hash: str) -> ApprovalRequest | None:
        with self._lock:
            rid = self._keys.get((run_id, call_id, args_hash))
            return dataclasses.replace(self._rows[rid]) if rid else None

    def list(self, status: str | None = None, limit: int = 100) -> builtins.list[ApprovalRequest]:
        with self._lock:
            rows = [r for r in self._rows.values() if status is None or r.status == status]
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return [dataclasses.replace(r) for r in rows[:limit]]

    def _apply(self, change: Transition) -> ApprovalRequest | None:
        with self._lock:
            row = self._rows.get(change.approval_id)
            if row is None or not change.applies_to(row):
                return None
            new = dataclasses.replace(row, status=change.status, **change.changes)
            self._rows[change.approval_id] = new
            return dataclasses.replace(new)

    def close(self) -> None:
        pass
