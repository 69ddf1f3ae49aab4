"""Paused runs in a SQLite file (WAL; the same file as the approvals is fine)."""

from __future__ import annotations

import time
from typing import Any

from callgate._storage import SqliteStore
from callgate.runs.model import decode_state, encode_state

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS callgate_runs (
    run_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""


class SqliteRunStore(SqliteStore):
    """`RunStore` on a SQLite file, created on first use unless `must_exist`."""

    TABLE = "callgate_runs"
    SCHEMA = _SQLITE_SCHEMA
    HOLDS = "paused runs"

    def save(self, run_id: str, state: dict[str, Any]) -> None:
        text = encode_state(run_id, state)
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO callgate_runs (run_id, state, created_at, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
                "state = excluded.state, updated_at = excluded.updated_at",
                (run_id, text, now, now),
            )

    def load(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state FROM callgate_runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        return decode_state(run_id, row[0]) if row else None

    def delete(self, run_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM callgate_runs WHERE run_id = ?", (run_id,))

    def list_paused(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT run_id FROM callgate_runs ORDER BY created_at, run_id"
            ).fetchall()
        return [str(r[0]) for r in rows]
