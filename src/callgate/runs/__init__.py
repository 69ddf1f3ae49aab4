"""Paused runs, kept durable so a run can resume in another process."""

from callgate.runs.store import (
    MemoryRunStore,
    PgRunStore,
    RunStore,
    RunStoreError,
    SqliteRunStore,
    open_run_store,
)

__all__ = [
    "MemoryRunStore",
    "PgRunStore",
    "RunStore",
    "RunStoreError",
    "SqliteRunStore",
    "open_run_store",
]
