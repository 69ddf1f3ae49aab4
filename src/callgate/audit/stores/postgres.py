"""Audit records in PostgreSQL (psycopg 3), for several application processes or machines.

Appends are serialised with a transaction-scoped advisory lock: each append takes the lock, reads
the newest record, inserts the next one (and every `checkpoint_every` records a checkpoint of it)
and commits, so concurrent writers on any number of connections line up and the chain never
forks. The primary key on `seq` is a second guard: a writer that somehow skipped the lock would
fail rather than fork the chain.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from typing import TypeVar

from callgate._storage import StoreNotFoundError, pg_prepare_table, pg_table_exists
from callgate.audit.stores._sql import SqlAuditStore, schema

T = TypeVar("T")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,50}$")


class PgAuditStore(SqlAuditStore):
    """`AuditStore` on a PostgreSQL table (created if missing, unless `must_exist`).

    `lock_key` names the advisory lock; stores sharing a table must share it (the default is
    derived from the table name). `checkpoint_every` and `checkpoint_key` as for
    `callgate.audit.stores.sqlite.SqliteAuditStore`.
    """

    def __init__(
        self,
        dsn: str,
        *,
        table: str = "callgate_audit",
        lock_key: int | None = None,
        checkpoint_every: int = 100,
        checkpoint_key: bytes | None = None,
        must_exist: bool = False,
    ) -> None:
        import psycopg

        if not _IDENT.match(table):
            raise ValueError(f"table name {table!r} must be a plain lower-case identifier")
        if checkpoint_every < 0:
            raise ValueError("checkpoint_every must be >= 0")
        self.table = table
        self.checkpoints_table = f"{table}_checkpoints"
        self._ph = "%s"
        self.lock_key = lock_key if lock_key is not None else _stable_key(table)
        self.checkpoint_every = checkpoint_every
        self.checkpoint_key = checkpoint_key
        self._dsn = dsn
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._lock = threading.Lock()
        self._dirty = False
        if must_exist and not pg_table_exists(self._conn, table):
            self._conn.close()
            raise StoreNotFoundError(f"the database has no audit table {table!r}")
        if not must_exist:
            pg_prepare_table(
                self._conn,
                table,
                schema(table, postgres=True),
                lock_key=self.lock_key,
                must_exist=False,
            )
        self._has_checkpoints = pg_table_exists(self._conn, self.checkpoints_table)

    def _live(self) -> None:
        """Reconnect after the server dropped the connection (a restart, a failover).

        Only a connection known to be dead is replaced, before a new transaction starts, so an
        append is never retried after a commit whose outcome is unknown (no duplicates)."""
        if self._conn.broken:
            import psycopg

            self._conn = psycopg.connect(self._dsn, autocommit=True)

    def _exclusive(self, step: Callable[[], T]) -> T:
        """One transaction under the table's advisory lock: writers on every connection line
        up, so the chain never forks."""
        self._live()
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key,))
            return step()

    def close(self) -> None:
        if self._conn.closed:
            return
        super().close()


def _stable_key(name: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"callgate-audit:{name}".encode()).digest()[:8], "big", signed=True
    )
