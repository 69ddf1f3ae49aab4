"""Approval stores: memory (in `callgate.approvals.service`), SQLite and PostgreSQL."""

from __future__ import annotations

from callgate.approvals.service import ApprovalStore


def open_approval_store(target: str) -> ApprovalStore:
    """A store from a location: ``postgresql://...`` (or ``postgres://``) for PostgreSQL, a file
    path (or ``sqlite:///path``) for SQLite."""
    if target.startswith(("postgresql://", "postgres://")):
        from callgate.approvals.stores.postgres import PgApprovalStore

        return PgApprovalStore(target)
    from callgate.approvals.stores.sqlite import SqliteApprovalStore

    path = target.removeprefix("sqlite:///") if target.startswith("sqlite:///") else target
    return SqliteApprovalStore(path)
