"""One reading of a store location and one SQLite set-up for every store: approvals, audit, runs."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from callgate._storage import (
    StorageTarget,
    StoreNotFoundError,
    connect_sqlite,
    parse_target,
)
from callgate.approvals import MemoryApprovalStore, open_approval_store
from callgate.approvals.model import ApprovalRequest
from callgate.audit import AuditLog, MemoryAuditStore, open_audit_store
from callgate.runs import MemoryRunStore, open_run_store


@pytest.mark.parametrize(
    ("text", "kind", "location"),
    [
        (":memory:", "memory", ""),
        ("memory:", "memory", ""),
        ("sqlite://", "memory", ""),
        ("state.db", "sqlite", "state.db"),
        ("/var/lib/app/state.db", "sqlite", "/var/lib/app/state.db"),
        ("sqlite:///state.db", "sqlite", "state.db"),
        ("sqlite:////var/lib/state.db", "sqlite", "/var/lib/state.db"),
        ("postgresql://u@h/db", "postgres", "postgresql://u@h/db"),
        ("postgres://u@h/db", "postgres", "postgres://u@h/db"),
        ("host=h dbname=app user=u", "postgres", "host=h dbname=app user=u"),
        ("redis://127.0.0.1:6379/0", "redis", "redis://127.0.0.1:6379/0"),
        ("rediss://cache:6380/1", "redis", "rediss://cache:6380/1"),
    ],
)
def test_one_parser_for_every_store(text: str, kind: str, location: str) -> None:
    assert parse_target(text) == StorageTarget(kind, location)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "   ", "mysql://h/db", "s3://bucket/key"])
def test_unknown_locations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_target(text)


def test_every_factory_reads_locations_the_same_way(tmp_path: Path) -> None:
    assert isinstance(open_approval_store(":memory:"), MemoryApprovalStore)
    assert isinstance(open_audit_store(":memory:"), MemoryAuditStore)
    assert isinstance(open_run_store(":memory:"), MemoryRunStore)
    for i, opener in enumerate((open_approval_store, open_audit_store, open_run_store)):
        path = tmp_path / f"s{i}.db"
        store: Any = opener(f"sqlite:///{path}")
        store.close()
        assert path.is_file()  # sqlite:/// means the same file everywhere
        with pytest.raises(ValueError, match="SQLite or PostgreSQL"):
            opener("redis://127.0.0.1:6379/0")


def test_connect_sets_wal_busy_timeout_and_synchronous(tmp_path: Path) -> None:
    conn = connect_sqlite(tmp_path / "a.db", timeout_s=2.5, synchronous="NORMAL")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    conn.close()
    default = connect_sqlite(tmp_path / "b.db")
    assert default.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    default.close()


def test_must_exist_never_creates_a_file(tmp_path: Path) -> None:
    missing = tmp_path / "sub" / "typo.db"
    with pytest.raises(StoreNotFoundError, match="typo.db"):
        connect_sqlite(missing, must_exist=True)
    for opener in (open_approval_store, open_audit_store, open_run_store):
        with pytest.raises(StoreNotFoundError):
            opener(missing, must_exist=True)  # type: ignore[operator]
    assert not missing.exists() and not missing.parent.exists()


def _request() -> ApprovalRequest:
    return ApprovalRequest(
        "apr_1", "run", "conv", "c1", "t", None, {}, "h", "r", "why", None, None, 1.0, 2.0
    )


def _approval_write(path: Path) -> Callable[[], None]:
    store = open_approval_store(path)

    def write() -> None:
        store.add(_request())
        store.close()

    return write


def _audit_write(path: Path) -> Callable[[], None]:
    log = AuditLog.open(path)

    def write() -> None:
        assert log.record_event("note", {"n": 1}) is not None
        log.close()

    return write


def _run_write(path: Path) -> Callable[[], None]:
    store: Any = open_run_store(path)

    def write() -> None:
        store.save("run_1", {"a": 1})
        store.close()

    return write


@pytest.mark.parametrize("make_writer", [_approval_write, _audit_write, _run_write])
def test_every_store_waits_for_a_busy_database_instead_of_failing(
    tmp_path: Path, make_writer: Callable[[Path], Callable[[], None]]
) -> None:
    path = tmp_path / "busy.db"
    write = make_writer(path)  # creates the schema
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock for a while
    release = threading.Timer(0.4, lambda: other.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    try:
        write()  # must wait for the lock, not raise "database is locked"
    finally:
        release.join()
        other.close()
    assert time.monotonic() - started >= 0.3


@pytest.mark.slow
def test_must_exist_on_postgres_refuses_a_database_without_the_table(pg_db: str) -> None:
    for opener in (open_approval_store, open_audit_store, open_run_store):
        with pytest.raises(StoreNotFoundError):
            opener(pg_db, must_exist=True)  # type: ignore[operator]
    import psycopg

    with psycopg.connect(pg_db, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)  # nothing was created
    open_approval_store(pg_db).close()
    open_approval_store(pg_db, must_exist=True).close()  # now it exists
