"""Where a store lives: one target parser and one SQLite connection set-up for every store.

Approvals, audit records, paused runs (and the Redis rate limiter) are all opened from a single
string a user types on a command line or in a config file. Parsing it in one place means every
store accepts the same spellings, and opening SQLite in one place means every store gets the
same durability and the same patience with concurrent writers (WAL journal, a busy timeout so a
second process waits for the lock instead of failing, `synchronous=FULL` by default).

Read-only tools (``callgate audit verify``, ``callgate approvals list``) open with
``must_exist=True``: a mistyped path must be an error, never a fresh empty database that then
"verifies" as an intact log of zero records.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, TypeVar

from callgate._lazy import import_object
from callgate.errors import CallgateError

if TYPE_CHECKING:
    import psycopg
    from psycopg.abc import Query

__all__ = [
    "PgStore",
    "SqliteStore",
    "StorageTarget",
    "StoreNotFoundError",
    "connect_sqlite",
    "open_sqlite_store",
    "open_store",
    "parse_target",
    "pg_prepare_table",
    "pg_table_exists",
    "pg_table_name",
    "sqlite_table_exists",
]

T = TypeVar("T")
TargetKind = Literal["memory", "sqlite", "postgres", "redis"]
Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

_MEMORY: Final = frozenset({":memory:", "memory:", "sqlite://", "sqlite:///:memory:"})
_SCHEME: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_PG_IDENT: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# a libpq key/value DSN: "host=db dbname=app user=me"
_PG_KEYWORDS: Final = re.compile(r"^\s*(host|hostaddr|port|dbname|user|service)\s*=")


class StoreNotFoundError(CallgateError):
    """The named store does not exist (and the caller asked not to create it)."""


@dataclass(frozen=True, slots=True)
class StorageTarget:
    """A parsed store location. `location` is the file path for SQLite, the DSN or URL for
    PostgreSQL and Redis, and empty for an in-process store."""

    kind: TargetKind
    location: str

    def __str__(self) -> str:
        return self.location or ":memory:"


def parse_target(target: str | os.PathLike[str]) -> StorageTarget:
    """One reading of a store location for every store.

    ``:memory:`` (or ``memory:``) is an in-process store; ``postgresql://`` / ``postgres://``
    URLs and libpq ``key=value`` strings are PostgreSQL; ``redis://`` / ``rediss://`` are
    Redis; ``sqlite:///relative.db`` and ``sqlite:////absolute.db`` are SQLite, as is any
    other string, read as a file path. An unknown ``scheme://`` is an error rather than a file
    with a strange name."""
    text = os.fspath(target)
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a store location must be a non-empty string")
    if text in _MEMORY:
        return StorageTarget("memory", "")
    scheme_match = _SCHEME.match(text)
    if scheme_match is None:
        if _PG_KEYWORDS.match(text):
            return StorageTarget("postgres", text)
        return StorageTarget("sqlite", text)
    scheme = scheme_match.group(1).lower()
    if scheme in ("postgresql", "postgres"):
        return StorageTarget("postgres", text)
    if scheme in ("redis", "rediss"):
        return StorageTarget("redis", text)
    if scheme == "sqlite" and text.startswith("sqlite:///"):
        return StorageTarget("sqlite", text.removeprefix("sqlite:///"))
    raise ValueError(
        f"unknown store location {text!r}: use a file path, sqlite:///PATH, "
        "postgresql://..., redis://... or :memory:"
    )


def open_store(
    target: str | os.PathLike[str],
    *,
    what: str,
    memory: Callable[[], T],
    sqlite: str,
    postgres: str,
    must_exist: bool = False,
    **options: Any,
) -> T:
    """The one store factory: `target` read by `parse_target`, then `memory()`, or the
    ``module:Class`` named by `sqlite` / `postgres` called with the location, `must_exist` and
    `options`. The database backends are imported only when named, so a process that keeps a
    store in SQLite never needs a PostgreSQL driver. `what` names the store in the error for a
    kind of target it cannot live in (e.g. Redis)."""
    where = parse_target(target)
    if where.kind == "memory":
        return memory()
    backend = {"sqlite": sqlite, "postgres": postgres}.get(where.kind)
    if backend is None:
        raise ValueError(f"{what} cannot be kept in {where.kind}; use SQLite or PostgreSQL")
    store: T = import_object(backend)(where.location, must_exist=must_exist, **options)
    return store


def connect_sqlite(
    path: str | os.PathLike[str],
    *,
    timeout_s: float = 10.0,
    synchronous: Synchronous = "FULL",
    must_exist: bool = False,
) -> sqlite3.Connection:
    """A connection in autocommit mode (callers open transactions explicitly), shareable
    between threads (every store guards it with its own lock), in WAL mode with a busy timeout
    so concurrent processes wait for each other instead of failing with "database is locked".

    With `must_exist`, a missing file raises `StoreNotFoundError` instead of being created."""
    file = os.fspath(path)
    if must_exist:
        uri = "file:" + urllib.parse.quote(str(Path(file).absolute())) + "?mode=rw"
        try:
            conn = sqlite3.connect(
                uri, uri=True, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.OperationalError:
            raise StoreNotFoundError(f"no SQLite database at {file!r}") from None
    else:
        conn = sqlite3.connect(
            file, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
    try:
        conn.execute(f"PRAGMA busy_timeout={max(0, int(timeout_s * 1000))}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
    except sqlite3.DatabaseError:
        conn.close()
        raise
    return conn


def sqlite_table_exists(conn: sqlite3.Connection, table: str) -> bool:
    """Whether `table` exists: a read-only tool checks this instead of creating the table, so
    pointing it at the wrong file says so."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return row is not None


def pg_table_exists(conn: psycopg.Connection[Any], table: str) -> bool:
    """The PostgreSQL twin of `sqlite_table_exists` (`table` may be schema-qualified)."""
    from psycopg.rows import tuple_row

    with conn.cursor(row_factory=tuple_row) as cur:  # whatever the connection's row factory
        row = cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def open_sqlite_store(
    path: str | os.PathLike[str],
    *,
    table: str,
    schema: str,
    holds: str,
    timeout_s: float = 10.0,
    must_exist: bool = False,
) -> sqlite3.Connection:
    """`connect_sqlite`, then the store's table: created by the `schema` script, or, with
    `must_exist`, required to be there already (``StoreNotFoundError``: "... holds no `holds`").
    The connection is closed again if either step fails, so a refused store leaks nothing."""
    conn = connect_sqlite(path, timeout_s=timeout_s, must_exist=must_exist)
    try:
        if not must_exist:
            conn.executescript(schema)
        elif not sqlite_table_exists(conn, table):
            raise StoreNotFoundError(f"{os.fspath(path)!r} holds no {holds}")
    except (sqlite3.DatabaseError, StoreNotFoundError):
        conn.close()
        raise
    return conn


class SqliteStore:
    """The half every SQLite store shares: one connection (`open_sqlite_store`) to the file at
    `path`, guarded by one lock that every statement takes, and `close`. A subclass names its
    `TABLE`, the `SCHEMA` script creating it, what it `HOLDS` (for the "holds no ..." error of a
    read-only open) and, if it wants one, its `ROW_FACTORY`."""

    TABLE: ClassVar[str]
    SCHEMA: ClassVar[str]
    HOLDS: ClassVar[str]
    ROW_FACTORY: ClassVar[Any] = None

    def __init__(
        self, path: str | os.PathLike[str], *, timeout_s: float = 10.0, must_exist: bool = False
    ) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._db = open_sqlite_store(
            self.path,
            table=self.TABLE,
            schema=self.SCHEMA,
            holds=self.HOLDS,
            timeout_s=timeout_s,
            must_exist=must_exist,
        )
        row_factory = type(self).ROW_FACTORY  # from the class: see `PgStore._connection`
        if row_factory is not None:
            self._db.row_factory = row_factory

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PgStore:
    """The half every PostgreSQL store shares: one autocommit connection to `dsn`, reopened if
    the server dropped it and guarded by one lock that every statement takes; the table made
    ready once (`pg_prepare_table`, under the subclass's `LOCK_KEY`); and `close`. psycopg is
    imported only when a connection is opened, so the module loads without the driver."""

    LOCK_KEY: ClassVar[int]
    ROW_FACTORY: ClassVar[Any] = None

    def __init__(self, dsn: str, table: str) -> None:
        self.dsn = dsn
        self.table_name = pg_table_name(table)
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def _prepare(self, statements: Iterable[Query], *, must_exist: bool) -> None:
        with self._lock:
            pg_prepare_table(
                self._connection(),
                self.table_name,
                statements,
                lock_key=self.LOCK_KEY,
                must_exist=must_exist,
            )

    def _connection(self) -> psycopg.Connection[Any]:
        """The shared connection (callers hold the lock), reopened if the server dropped it."""
        import psycopg

        if self._conn is None or self._conn.closed or self._conn.broken:
            # read from the class: a function stored on it (psycopg's row factories are) would
            # otherwise come back bound to the store
            row_factory = type(self).ROW_FACTORY
            if row_factory is None:
                self._conn = psycopg.connect(self.dsn, autocommit=True)
            else:
                self._conn = psycopg.connect(self.dsn, autocommit=True, row_factory=row_factory)
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def pg_table_name(table: str) -> str:
    """`table` if it is a plain, unquoted-safe SQL identifier; ValueError otherwise (a table
    name is put into SQL text, never sent as a parameter)."""
    if not _PG_IDENT.match(table):
        raise ValueError(f"table name {table!r} is not a plain SQL identifier")
    return table


def pg_prepare_table(
    conn: psycopg.Connection[Any],
    table: str,
    statements: Iterable[Query],
    *,
    lock_key: int,
    must_exist: bool,
) -> None:
    """Make a store's table ready. With `must_exist` a database without it is
    ``StoreNotFoundError`` (and `conn` is closed); otherwise `statements` (``CREATE ... IF NOT
    EXISTS``) run in one transaction under the store's advisory lock, so workers starting
    together do not race each other creating it."""
    if must_exist:
        if not pg_table_exists(conn, f'"{table}"'):
            conn.close()
            raise StoreNotFoundError(f"the database has no table {table!r}")
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        for statement in statements:
            conn.execute(statement)
