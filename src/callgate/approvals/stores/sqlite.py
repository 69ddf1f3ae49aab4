"""Approval requests in one SQLite file, safe to share between processes on one machine.

WAL mode lets readers (the CLI listing requests) work while a worker writes; every state change is
a single ``UPDATE ... WHERE status IN (...) RETURNING`` statement, which SQLite runs atomically, so
two processes racing to claim the same approved call cannot both win. ``synchronous=FULL``:
approvals are rare and losing a decision on power loss is worse than a slower commit.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from typing import Any

from callgate._storage import SqliteStore
from callgate.approvals.model import (
    FIELD_NAMES,
    ApprovalRequest,
    StoreBase,
    Transition,
    encode_arguments,
)
from callgate.approvals.stores._sql import schema

_COLUMNS = ", ".join(FIELD_NAMES)


def _row_to_request(row: sqlite3.Row) -> ApprovalRequest:
    data = dict(row)
    data["arguments"] = json.loads(data["arguments"])
    return ApprovalRequest.from_dict(data)


class SqliteApprovalStore(SqliteStore, StoreBase):
    """`ApprovalStore` on a SQLite file, created on first use unless `must_exist` (read-only
    tools: a missing file or a file without approvals is an error, not a new empty store)."""

    TABLE = "callgate_approvals"
    SCHEMA = ";\n".join(schema("callgate_approvals", postgres=False))
    HOLDS = "approval requests"
    ROW_FACTORY = sqlite3.Row

    def add(self, request: ApprovalRequest) -> ApprovalRequest:
        values = request.to_dict()
        values["arguments"] = encode_arguments(values["arguments"])
        marks = ", ".join(f":{n}" for n in FIELD_NAMES)
        with self._lock:
            self._db.execute(
                f"INSERT INTO callgate_approvals ({_COLUMNS}) VALUES ({marks}) "
                "ON CONFLICT (run_id, call_id, args_hash) DO NOTHING",
                values,
            )
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM callgate_approvals "
                "WHERE run_id = ? AND call_id = ? AND args_hash = ?",
                (request.run_id, request.call_id, request.args_hash),
            ).fetchone()
        return _row_to_request(row)

    def get(self, approval_id: str) -> ApprovalRequest | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM callgate_approvals WHERE id = ?", (approval_id,)
            ).fetchone()
        return _row_to_request(row) if row else None

    def find(self, run_id: str, call_id: str, args_hash: str) -> ApprovalRequest | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM callgate_approvals "
                "WHERE run_id = ? AND call_id = ? AND args_hash = ?",
                (run_id, call_id, args_hash),
            ).fetchone()
        return _row_to_request(row) if row else None

    def list(self, status: str | None = None, limit: int = 100) -> builtins.list[ApprovalRequest]:
        sql = f"SELECT {_COLUMNS} FROM callgate_approvals"
        params: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            params = (status,)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*params, max(0, int(limit)))).fetchall()
        return [_row_to_request(r) for r in rows]

    def _apply(self, change: Transition) -> ApprovalRequest | None:
        sets = ", ".join(["status = ?", *(f"{k} = ?" for k in change.changes)])
        where = f"id = ? AND status IN ({', '.join('?' for _ in change.expect)})"
        params: list[Any] = [
            change.status,
            *change.changes.values(),
            change.approval_id,
            *change.expect,
        ]
        if change.unexpired_at is not None:
            where += " AND expires_at > ?"
            params.append(change.unexpired_at)
        with self._lock:
            # fetchall: the statement must run to completion so its implicit transaction
            # commits (and releases the write lock) before we return.
            rows = self._db.execute(
                f"UPDATE callgate_approvals SET {sets} WHERE {where} RETURNING {_COLUMNS}",
                params,
            ).fetchall()
        return _row_to_request(rows[0]) if rows else None
