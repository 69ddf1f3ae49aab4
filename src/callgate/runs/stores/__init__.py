"""Run stores: memory, SQLite and PostgreSQL, and the one factory that opens them."""

from __future__ import annotations

import os

from callgate._storage import parse_target
from callgate.runs.model import RunStore
from callgate.runs.stores.memory import MemoryRunStore

__all__ = ["MemoryRunStore", "open_run_store"]


def open_run_store(target: str | os.PathLike[str], *, must_exist: bool = False) -> RunStore:
    """A store from a location (see `callgate._storage.parse_target`): ``:memory:`` (or
    ``memory:``) in-process, a SQLite path or ``sqlite:///path``, or a ``postgresql://`` DSN."""
    where = parse_target(target)
    if where.kind == "memory":
        return MemoryRunStore()
    if where.kind == "postgres":
        from callgate.runs.stores.postgres import PgRunStore

        return PgRunStore(where.location, must_exist=must_exist)
    if where.kind == "sqlite":
        from callgate.runs.stores.sqlite import SqliteRunStore

        return SqliteRunStore(where.location, must_exist=must_exist)
    raise ValueError(f"paused runs cannot be kept in {where.kind}; use SQLite or PostgreSQL")
