"""Paused runs in PostgreSQL (psycopg 3), shared by every worker that can reach the database."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from callgate._storage import PgStore
from callgate.runs.model import decode_state, encode_state

if TYPE_CHECKING:
    pass


class PgRunStore(PgStore):
    """Paused runs in PostgreSQL, shared by every worker that can reach the database.

    The column is ``json``, not ``jsonb``: the state comes back byte for byte as saved (key
    order included), which keeps resumed conversations identical to the paused ones.
    `must_exist` refuses a database without the table instead of creating it."""

    LOCK_KEY = 0x63_67_72_75  # "cgru": serialises CREATE TABLE between workers

    def __init__(self, dsn: str, *, table: str = "callgate_runs", must_exist: bool = False) -> None:
        super().__init__(dsn, table)
        from psycopg import sql

        self._sql = sql
        self._table = sql.Identifier(table)
        create = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (run_id TEXT PRIMARY KEY, "
            "state JSON NOT NULL, created_at DOUBLE PRECISION NOT NULL, "
            "updated_at DOUBLE PRECISION NOT NULL)"
        ).format(self._table)
        self._prepare([create], must_exist=must_exist)

    def save(self, run_id: str, state: dict[str, Any]) -> None:
        text = encode_state(run_id, state)
        now = time.time()
        q = self._sql.SQL(
            "INSERT INTO {} (run_id, state, created_at, updated_at) VALUES (%s, %s::json, %s, %s) "
            "ON CONFLICT (run_id) DO UPDATE SET state = EXCLUDED.state, "
            "updated_at = EXCLUDED.updated_at"
        ).format(self._table)
        with self._lock:
            self._connection().execute(q, (run_id, text, now, now))

    def load(self, run_id: str) -> dict[str, Any] | None:
        q = self._sql.SQL("SELECT state::text FROM {} WHERE run_id = %s").format(self._table)
        with self._lock:
            row = self._connection().execute(q, (run_id,)).fetchone()
        return decode_state(run_id, row[0]) if row else None

    def delete(self, run_id: str) -> None:
        q = self._sql.SQL("DELETE FROM {} WHERE run_id = %s").format(self._table)
        with self._lock:
            self._connection().execute(q, (run_id,))

    def list_paused(self) -> list[str]:
        q = self._sql.SQL("SELECT run_id FROM {} ORDER BY created_at, run_id").format(self._table)
        with self._lock:
            rows = self._connection().execute(q).fetchall()
        return [str(r[0]) for r in rows]
