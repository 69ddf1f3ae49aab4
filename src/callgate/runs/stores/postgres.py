"""Paused runs in PostgreSQL (psycopg 3), shared by every worker that can reach the database."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from callgate._storage import pg_prepare_table, pg_table_name
from callgate.runs.model import decode_state, encode_state

if TYPE_CHECKING:
    import psycopg

_PG_LOCK_KEY = 0x63_67_72_75  # "cgru"


class PgRunStore:
    """Paused runs in PostgreSQL, shared by every worker that can reach the database.

    The column is ``json``, not ``jsonb``: the state comes back byte for byte as saved (key
    order included), which keeps resumed conversations identical to the paused ones.
    `must_exist` refuses a database without the table instead of creating it."""

    def __init__(self, dsn: str, *, table: str = "callgate_runs", must_exist: bool = False) -> None:
        from psycopg import sql

        self.dsn = dsn
        self._sql = sql
        self._table = sql.Identifier(pg_table_name(table))
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        create = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (run_id TEXT PRIMARY KEY, "
            "state JSON NOT NULL, created_at DOUBLE PRECISION NOT NULL, "
            "updated_at DOUBLE PRECISION NOT NULL)"
        ).format(self._table)
        with self._lock:
            pg_prepare_table(
                self._connection(), table, [create], lock_key=_PG_LOCK_KEY, must_exist=must_exist
            )

    def _connection(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.dsn, autocommit=True)
        return self._conn

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

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
