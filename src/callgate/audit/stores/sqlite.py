"""Audit records in a SQLite file: the default store, one file, no server.

Durability: WAL journal with `synchronous=FULL`, so a committed record survives a crash of the
process or the machine. Each append is one `BEGIN IMMEDIATE` transaction that reads the newest
record and inserts the next one (and, every `checkpoint_every` records, a checkpoint of it); the
immediate lock serialises writers across threads *and* processes, so two writers can never chain
onto the same predecessor (no fork), and a writer killed mid-append leaves either the whole
record or nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from callgate._storage import open_sqlite_store, sqlite_table_exists
from callgate.audit.stores._sql import SqlAuditStore, schema

T = TypeVar("T")


class SqliteAuditStore(SqlAuditStore):
    """`AuditStore` on a SQLite database file (created if missing, unless `must_exist`).

    `checkpoint_every`: write a checkpoint of the head every N records (0: only on close);
    `checkpoint_key`: sign checkpoints with this HMAC key (keep it out of the database)."""

    def __init__(
        self,
        path: str | Path,
        *,
        timeout_s: float = 30.0,
        checkpoint_every: int = 100,
        checkpoint_key: bytes | None = None,
        must_exist: bool = False,
    ) -> None:
        if checkpoint_every < 0:
            raise ValueError("checkpoint_every must be >= 0")
        self.path = str(path)
        self.table = "audit_log"
        self.checkpoints_table = "audit_log_checkpoints"
        self._ph = "?"
        self.checkpoint_every = checkpoint_every
        self.checkpoint_key = checkpoint_key
        self._conn = open_sqlite_store(
            self.path,
            table=self.table,
            schema=";\n".join(schema(self.table, postgres=False)),
            holds="audit log",
            timeout_s=timeout_s,
            must_exist=must_exist,
        )
        self._lock = threading.Lock()
        self._dirty = False
        self._has_checkpoints = sqlite_table_exists(self._conn, self.checkpoints_table)

    def _exclusive(self, step: Callable[[], T]) -> T:
        """`BEGIN IMMEDIATE` takes the write lock at once: writers in every process line up."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            out = step()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return out
