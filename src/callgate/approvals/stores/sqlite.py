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
import threading
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from callgate.approvals.service import FIELD_NAMES, ApprovalRequest, check_changes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS callgate_approvals (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    version TEXT,
    arguments TEXT NOT NULL,
    args_hash TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    requested_by TEXT,
    tenant TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_at REAL,
    comment TEXT,
    claimed_by TEXT,
    claimed_at REAL,
    finished_at REAL,
    result_summary TEXT,
    UNIQUE (run_id, call_id, args_hash)
);
CREATE INDEX IF NOT EXISTS callgate_approvals_status
    ON callgate_approvals (status, created_at);
"""

_COLUMNS = ", ".join(FIELD_NAMES)


def _row_to_request(row: sqlite3.Row) -> ApprovalRequest:
    data = dict(row)
    data["arguments"] = json.loads(data["arguments"])
    return ApprovalRequest.from_dict(data)


class SqliteApprovalStore:
    """`ApprovalStore` on a SQLite file (created on first use)."""

    def __init__(self, path: str | Path, *, timeout_s: float = 10.0) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            self._db.close()
            raise

    def add(self, request: ApprovalRequest) -> ApprovalRequest:
        values = request.to_dict()
        values["arguments"] = json.dumps(values["arguments"], ensure_ascii=False, sort_keys=True)
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

    def transition(
        self,
        approval_id: str,
        expect: Collection[str],
        status: str,
        changes: Mapping[str, Any] | None = None,
        *,
        unexpired_at: float | None = None,
    ) -> ApprovalRequest | None:
        fields = check_changes(changes)
        expect = list(expect)
        if not expect:
            return None
        sets = ", ".join(["status = ?", *(f"{k} = ?" for k in fields)])
        where = f"id = ? AND status IN ({', '.join('?' for _ in expect)})"
        params: list[Any] = [status, *fields.values(), approval_id, *expect]
        if unexpired_at is not None:
            where += " AND expires_at > ?"
            params.append(unexpired_at)
        with self._lock:
            # fetchall: the statement must run to completion so its implicit transaction
            # commits (and releases the write lock) before we return.
            rows = self._db.execute(
                f"UPDATE callgate_approvals SET {sets} WHERE {where} RETURNING {_COLUMNS}",
                params,
            ).fetchall()
        return _row_to_request(rows[0]) if rows else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
