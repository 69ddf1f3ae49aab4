"""Approval stores: memory, SQLite and PostgreSQL, and the one factory that opens them.

Each backend imports only `callgate.approvals.model`; this factory imports the database ones
lazily so a process that keeps approvals in SQLite never needs a PostgreSQL driver.
"""

from __future__ import annotations

import os

from callgate._storage import open_store
from callgate.approvals.model import ApprovalStore
from callgate.approvals.stores.memory import MemoryApprovalStore

__all__ = ["MemoryApprovalStore", "open_approval_store"]


def open_approval_store(
    target: str | os.PathLike[str], *, must_exist: bool = False
) -> ApprovalStore:
    """A store from a location (see `callgate._storage.parse_target`): ``:memory:``, a SQLite
    path or ``sqlite:///path``, or a ``postgresql://`` DSN. With `must_exist`, a store that does
    not exist yet is an error (`callgate._storage.StoreNotFoundError`) instead of being created."""
    return open_store(
        target,
        what="approvals",
        memory=MemoryApprovalStore,
        sqlite="callgate.approvals.stores.sqlite:SqliteApprovalStore",
        postgres="callgate.approvals.stores.postgres:PgApprovalStore",
        must_exist=must_exist,
    )
