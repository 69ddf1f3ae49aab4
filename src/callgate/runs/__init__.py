"""Paused runs, kept durable so a run can resume in another process."""

from callgate.runs.model import RunStore, RunStoreError
from callgate.runs.stores import MemoryRunStore, open_run_store
from callgate.runs.stores.postgres import PgRunStore
from callgate.runs.stores.sqlite import SqliteRunStore

__all__ = [
    "MemoryRunStore",
    "PgRunStore",
    "RunStore",
    "RunStoreError",
    "SqliteRunStore",
    "open_run_store",
]
