"""Audit records in a SQLite file: the default store, one file, no server.

Durability: WAL journal with `synchronous=FULL`, so a committed record survives a crash of the
process or the machine. Each append is one `BEGIN IMMEDIATE` transaction that reads the newest
record and inserts the next one; the immediate lock serialises writers across threads *and*
processes, so two writers can never chain onto the same predecessor (no fork), and a writer
killed mid-append leaves either the whole record or nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from callgate.audit.log import GENESIS, AuditEntry, Head, NewRecord, Query
from callgate.audit.stores._sql import COLUMNS, build_query, page_query, row_to_entry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    conversation_id TEXT,
    run_id TEXT,
    user_id TEXT,
    tenant TEXT,
    tool TEXT,
    decision TEXT,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_conversation ON audit_log (conversation_id, seq);
CREATE INDEX IF NOT EXISTS audit_log_user ON audit_log (user_id, seq);
CREATE INDEX IF NOT EXISTS audit_log_tool ON audit_log (tool, seq);
"""


class SqliteAuditStore:
    """`AuditStore` on a SQLite database file (created if missing)."""

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0) -> None:
        self.path = str(path)
        self._conn = sqlite3.connect(
            self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            self._conn.executescript(_SCHEMA)

    def append(self, record: NewRecord) -> AuditEntry:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
                entry = record.seal(seq, prev)
                conn.execute(
                    f"INSERT INTO audit_log ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    _row(entry),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return entry

    def query(self, q: Query) -> list[AuditEntry]:
        sql, params = build_query(q, "audit_log", "?")
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [row_to_entry(r) for r in rows]

    def iter_all(self) -> Iterator[AuditEntry]:
        last = 0
        while True:
            with self._lock:
                rows = self._conn.execute(
                    page_query("audit_log", "?"),
                    (last,),
                ).fetchall()
            if not rows:
                return
            for r in rows:
                yield row_to_entry(r)
            last = rows[-1][0]

    def head(self) -> Head | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        return Head(int(row[0]), str(row[1])) if row else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _row(e: AuditEntry) -> tuple[Any, ...]:
    return (
        e.seq,
        e.ts,
        e.kind,
        e.conversation_id,
        e.run_id,
        e.user_id,
        e.tenant,
        e.tool,
        e.decision,
        json.dumps(e.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        e.prev_hash,
        e.hash,
    )
