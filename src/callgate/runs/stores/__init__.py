"""Run stores: memory, SQLite and PostgreSQL, and the one factory that opens them."""

from __future__ import annotations

import os

from callgate._storage import open_store
from callgate.runs.model import RunStore
from callgate.runs.stores.memory import MemoryRunStore

__all__ = ["MemoryRunStore", "open_run_store"]


def open_run_store(target: str | os.PathLike[str], *, must_exist: bool = False) -> RunStore:
    """A store from a location (see `callgate._storage.parse_target`): ``:memory:`` (or
    ``memory:``) in-process, a SQLite path or ``sqlite:///path``, or a ``postgresql://`` DSN."""
    return open_store(
        target,
        what="paused runs",
        memory=MemoryRunStore,
        sqlite="callgate.runs.stores.sqlite:SqliteRunStore",
        postgres="callgate.runs.stores.postgres:PgRunStore",
        must_exist=must_exist,
    )
