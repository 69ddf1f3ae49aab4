"""Audit stores: memory (in `callgate.audit.log`), SQLite and PostgreSQL."""

from __future__ import annotations

from callgate.audit.log import AuditStore


def open_store(target: str) -> AuditStore:
    """A store for a SQLite file path or a PostgreSQL DSN."""
    if target.startswith(("postgresql://", "postgres://")) or "dbname=" in target:
        from callgate.audit.stores.postgres import PgAuditStore

        return PgAuditStore(target)
    from callgate.audit.stores.sqlite import SqliteAuditStore

    return SqliteAuditStore(target)
