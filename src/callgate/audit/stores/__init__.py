"""Audit stores: memory, SQLite and PostgreSQL, and the one factory that opens them.

Each backend imports only `callgate.audit.record`; this factory imports the database ones lazily
so a process that audits to SQLite never needs a PostgreSQL driver.
"""

from __future__ import annotations

import os

from callgate._storage import open_store
from callgate.audit.record import AuditStore
from callgate.audit.stores.memory import MemoryAuditStore

__all__ = ["MemoryAuditStore", "open_audit_store"]


def open_audit_store(
    target: str | os.PathLike[str],
    *,
    checkpoint_every: int = 100,
    checkpoint_key: bytes | None = None,
    must_exist: bool = False,
) -> AuditStore:
    """A store from a location (see `callgate._storage.parse_target`): ``:memory:``, a SQLite
    path or ``sqlite:///path``, or a PostgreSQL DSN. Checkpoints of the head are written every
    `checkpoint_every` records and when a writer closes, signed with `checkpoint_key` if given.
    With `must_exist`, a log that does not exist is an error (`StoreNotFoundError`)."""
    return open_store(
        target,
        what="an audit log",
        memory=lambda: MemoryAuditStore(
            checkpoint_every=checkpoint_every, checkpoint_key=checkpoint_key
        ),
        sqlite="callgate.audit.stores.sqlite:SqliteAuditStore",
        postgres="callgate.audit.stores.postgres:PgAuditStore",
        must_exist=must_exist,
        checkpoint_every=checkpoint_every,
        checkpoint_key=checkpoint_key,
    )
