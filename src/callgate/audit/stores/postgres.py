"""Audit records in PostgreSQL (psycopg 3), for several application processes or machines.

Appends are serialised with a transaction-scoped advisory lock: each append takes the lock, reads
the newest record, inserts the next one and commits, so concurrent writers on any number of
connections line up and the chain never forks. The primary key on `seq` is a second guard: a
writer that somehow skipped the lock would fail rather than fork the chain.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

from callgate.audit.log import GENESIS, AuditEntry, Head, NewRecord, Query
from callgate.audit.stores._sql import COLUMNS, build_query, page_query, row_to_entry

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PgAuditStore:
    """`AuditStore` on a PostgreSQL table (created if missing).

    `lock_key` names the advisory lock; stores sharing a table must share it (the default is
    derived from the table name).
    """

    def __init__(self, dsn: str, *, table: str = "callgate_audit", lock_key: int | None = None):
        try:
            import psycopg
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError(
                "the PostgreSQL audit store needs psycopg: pip install 'callgate[postgres]'"
            ) from e
        if not _IDENT.match(table):
            raise ValueError(f"table name {table!r} must be a plain lower-case identifier")
        self.table = table
        self.lock_key = lock_key if lock_key is not None else _stable_key(table)
        self._dsn = dsn
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._lock = threading.Lock()
        with self._lock, self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key,))
            self._conn.execute(
                f"""
                CREATE TABLE IF NOT EXISTS {table} (
                    seq BIGINT PRIMARY KEY,
                    ts DOUBLE PRECISION NOT NULL,
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
                )"""
            )
            self._conn.execute(
                f"CREATE INDEX IF NOT EXISTS {table}_conversation ON {table} (conversation_id, seq)"
            )
            self._conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_user ON {table} (user_id, seq)")

    def _live(self) -> None:
        """Reconnect after the server dropped the connection (a restart, a failover).

        Only a connection known to be dead is replaced, before a new transaction starts, so an
        append is never retried after a commit whose outcome is unknown (no duplicates)."""
        if self._conn.broken:
            import psycopg

            self._conn = psycopg.connect(self._dsn, autocommit=True)

    def append(self, record: NewRecord) -> AuditEntry:
        with self._lock:
            self._live()
            return self._append(record)

    def _append(self, record: NewRecord) -> AuditEntry:
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key,))
            row = self._conn.execute(
                f"SELECT seq, hash FROM {self.table} ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = (int(row[0]) + 1, str(row[1])) if row else (1, GENESIS)
            entry = record.seal(seq, prev)
            self._conn.execute(
                f"INSERT INTO {self.table} ({COLUMNS}) VALUES "
                "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                _row(entry),
            )
            return entry

    def query(self, q: Query) -> list[AuditEntry]:
        sql, params = build_query(q, self.table, "%s")
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [row_to_entry(r) for r in rows]

    def iter_all(self) -> Iterator[AuditEntry]:
        last = 0
        while True:
            with self._lock:
                rows = self._conn.execute(
                    page_query(self.table, "%s"),
                    (last,),
                ).fetchall()
            if not rows:
                return
            for r in rows:
                yield row_to_entry(r)
            last = int(rows[-1][0])

    def head(self) -> Head | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT seq, hash FROM {self.table} ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        return Head(int(row[0]), str(row[1])) if row else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _stable_key(name: str) -> int:
    import hashlib

    return int.from_bytes(
        hashlib.sha256(f"callgate-audit:{name}".encode()).digest()[:8], "big", signed=True
    )


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
