"""Durable paused runs: where the agent keeps a run that waits for a person.

A run that hits a call needing approval is saved (`save`) and the process may exit; later, maybe
in another process, `Agent.resume(run_id)` loads it, re-sends the pending calls through the gate
(where `callgate.approvals.service.Approvals` finds the decision) and deletes it when the run moves on.

The state is a JSON-serialisable dict owned by the agent; stores never look inside it. Every
store checks that it really is JSON (no NaN, no objects) when it is saved, so a state that would
not survive a restart fails at once, not at resume time. Backends: `MemoryRunStore` (tests,
single process), `SqliteRunStore` (one file, WAL), `PgRunStore` (psycopg 3).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from callgate.errors import CallgateError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "MemoryRunStore",
    "PgRunStore",
    "RunStore",
    "RunStoreError",
    "SqliteRunStore",
    "open_run_store",
]


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


def _encode(run_id: str, state: dict[str, Any]) -> str:
    if not isinstance(run_id, str) or not run_id:
        raise RunStoreError("run_id must be a non-empty string")
    if not isinstance(state, dict):
        raise RunStoreError(f"run state for {run_id!r} must be a dict, not {type(state).__name__}")
    try:
        return json.dumps(state, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise RunStoreError(f"run state for {run_id!r} is not JSON-serialisable: {exc}") from None


def _decode(run_id: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise RunStoreError(f"stored state of run {run_id!r} is corrupt: {exc}") from None
    if not isinstance(value, dict):
        raise RunStoreError(f"stored state of run {run_id!r} is not an object")
    return value


class MemoryRunStore:
    """In-process store. States are copied through JSON, like the durable stores, so a caller
    mutating its dict after `save` does not change what was saved."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[float, str]] = {}

    def save(self, run_id: str, state: dict[str, Any]) -> None:
        text = _encode(run_id, state)
        with self._lock:
            created = self._runs.get(run_id, (time.time(), ""))[0]
            self._runs[run_id] = (created, text)

    def load(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            item = self._runs.get(run_id)
        return _decode(run_id, item[1]) if item else None

    def delete(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def list_paused(self) -> list[str]:
        with self._lock:
            items = sorted(self._runs.items(), key=lambda kv: kv[1][0])
        return [k for k, _ in items]


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS callgate_runs (
    run_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""


class SqliteRunStore:
    """Paused runs in a SQLite file (WAL; the same file as the approvals is fine)."""

    def __init__(self, path: str | Path, *, timeout_s: float = 10.0) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SQLITE_SCHEMA)
        except sqlite3.DatabaseError:
            self._db.close()
            raise

    def save(self, run_id: str, state: dict[str, Any]) -> None:
        text = _encode(run_id, state)
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
        return _decode(run_id, row[0]) if row else None

    def delete(self, run_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM callgate_runs WHERE run_id = ?", (run_id,))

    def list_paused(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT run_id FROM callgate_runs ORDER BY created_at, run_id"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_PG_LOCK_KEY = 0x63_67_72_75  # "cgru"


class PgRunStore:
    """Paused runs in PostgreSQL, shared by every worker that can reach the database.

    The column is ``json``, not ``jsonb``: the state comes back byte for byte as saved (key
    order included), which keeps resumed conversations identical to the paused ones."""

    def __init__(self, dsn: str, *, table: str = "callgate_runs") -> None:
        if not _IDENT.match(table):
            raise ValueError(f"table name {table!r} is not a plain SQL identifier")
        from psycopg import sql

        self.dsn = dsn
        self._sql = sql
        self._table = sql.Identifier(table)
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (run_id TEXT PRIMARY KEY, "
                        "state JSON NOT NULL, created_at DOUBLE PRECISION NOT NULL, "
                        "updated_at DOUBLE PRECISION NOT NULL)"
                    ).format(self._table)
                )

    def _connection(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.dsn, autocommit=True)
        return self._conn

    def save(self, run_id: str, state: dict[str, Any]) -> None:
        text = _encode(run_id, state)
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
        return _decode(run_id, row[0]) if row else None

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


def open_run_store(target: str) -> RunStore:
    """``postgresql://...`` for PostgreSQL, a file path (or ``sqlite:///path``) for SQLite,
    ``memory:`` for an in-process store."""
    if target.startswith(("postgresql://", "postgres://")):
        return PgRunStore(target)
    if target == "memory:":
        return MemoryRunStore()
    return SqliteRunStore(target.removeprefix("sqlite:///"))
