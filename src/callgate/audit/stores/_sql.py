"""SQL shared by the SQLite and PostgreSQL audit stores: one table definition, one query builder,
one row mapping each way and the shared body of a store (`SqlAuditStore`), so the two backends
cannot drift apart. Only the column types, the placeholder and the locking differ."""

from __future__ import annotations

import abc
import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, TypeVar

from callgate.audit.record import (
    GENESIS,
    AuditEntry,
    Checkpoint,
    Head,
    NewRecord,
    Query,
    make_checkpoint,
)

log = logging.getLogger("callgate.audit.stores")

COLUMNS = (
    "seq, ts, kind, conversation_id, run_id, user_id, tenant, tool, decision, data, prev_hash, hash"
)
CHECKPOINT_COLUMNS = "seq, hash, ts, mac"
PAGE = 1000

T = TypeVar("T")


# name, SQLite type, PostgreSQL type, constraint
_RECORD_TABLE: Final = (
    ("seq", "INTEGER", "BIGINT", "PRIMARY KEY"),
    ("ts", "REAL", "DOUBLE PRECISION", "NOT NULL"),
    ("kind", "TEXT", "TEXT", "NOT NULL"),
    *(
        (name, "TEXT", "TEXT", "")
        for name in ("conversation_id", "run_id", "user_id", "tenant", "tool", "decision")
    ),
    ("data", "TEXT", "TEXT", "NOT NULL"),
    ("prev_hash", "TEXT", "TEXT", "NOT NULL"),
    ("hash", "TEXT", "TEXT", "NOT NULL"),
)
_CHECKPOINT_TABLE: Final = (
    ("seq", "INTEGER", "BIGINT", "PRIMARY KEY"),
    ("hash", "TEXT", "TEXT", "NOT NULL"),
    ("ts", "REAL", "DOUBLE PRECISION", "NOT NULL"),
    ("mac", "TEXT", "TEXT", ""),
)
_INDEXES: Final = (("conversation", "conversation_id"), ("user", "user_id"), ("tool", "tool"))


def schema(table: str, *, postgres: bool) -> list[str]:
    """The statements that create the record table, its indexes and its checkpoint table."""

    def create(name: str, columns: tuple[tuple[str, str, str, str], ...]) -> str:
        cols = ", ".join(
            f"{col} {pg if postgres else lite} {rule}".rstrip() for col, lite, pg, rule in columns
        )
        return f"CREATE TABLE IF NOT EXISTS {name} ({cols})"

    return [
        create(table, _RECORD_TABLE),
        *(
            f"CREATE INDEX IF NOT EXISTS {table}_{suffix} ON {table} ({col}, seq)"
            for suffix, col in _INDEXES
        ),
        create(f"{table}_checkpoints", _CHECKPOINT_TABLE),
    ]


def build_query(q: Query, table: str, ph: str) -> tuple[str, list[Any]]:
    """SELECT for `q` against `table`, with `ph` as the parameter placeholder ("?" or "%s")."""
    where = [f"seq > {ph}"]
    params: list[Any] = [q.after_seq]
    for col, val in (
        ("conversation_id", q.conversation_id),
        ("user_id", q.user_id),
        ("tool", q.tool),
        ("decision", q.decision),
        ("kind", q.kind),
    ):
        if val is not None:
            where.append(f"{col} = {ph}")
            params.append(val)
    sql = (
        f"SELECT {COLUMNS} FROM {table} WHERE {' AND '.join(where)} "
        f"ORDER BY seq {'DESC' if q.newest_first else 'ASC'}"
    )
    if q.limit is not None:
        sql += f" LIMIT {ph}"
        params.append(q.limit)
    return sql, params


def page_query(table: str, ph: str, columns: str = COLUMNS) -> str:
    """The next page of rows after a seq, for walking a whole table without loading it."""
    return f"SELECT {columns} FROM {table} WHERE seq > {ph} ORDER BY seq LIMIT {PAGE}"


def insert_sql(table: str, ph: str) -> str:
    return f"INSERT INTO {table} ({COLUMNS}) VALUES ({', '.join([ph] * 12)})"


def checkpoint_insert_sql(table: str, ph: str) -> str:
    """Insert a checkpoint unless that seq already has one (two writers closing at once)."""
    return (
        f"INSERT INTO {table} ({CHECKPOINT_COLUMNS}) VALUES ({ph}, {ph}, {ph}, {ph}) "
        "ON CONFLICT (seq) DO NOTHING"
    )


def seal_once(record: NewRecord, seq: int, prev_hash: str) -> tuple[AuditEntry, str]:
    """`NewRecord.seal` with the payload encoded to JSON once: the same text is hashed (inside
    the canonical JSON of the body, assembled around it) and stored. Equal to `seal` by
    construction; `tests/test_audit_group_commit.py` checks it on varied records."""
    data_json = _canonical(record.data)
    body = (
        '{"conversation_id":' + _j(record.conversation_id)
        + ',"data":' + data_json
        + ',"decision":' + _j(record.decision)
        + ',"kind":' + _j(record.kind)
        + ',"prev_hash":' + _j(prev_hash)
        + ',"run_id":' + _j(record.run_id)
        + ',"seq":' + _j(seq)
        + ',"tenant":' + _j(record.tenant)
        + ',"tool":' + _j(record.tool)
        + ',"ts":' + _j(record.ts)
        + ',"user_id":' + _j(record.user_id)
        + "}"
    )  # fmt: skip
    digest = hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()
    return record.stored(seq, prev_hash, digest), data_json


def _canonical(value: Any) -> str:
    """`callgate.serde.canonical_json`, spelled out (a store imports only its model)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _j(value: Any) -> str:
    """One scalar of the body as `json.dumps(value, ensure_ascii=False)` writes it, without
    building an encoder per value (the common types are spelled out; the rest go to json)."""
    cls = value.__class__
    if value is None:
        return "null"
    if cls is str:
        return _encode_str(value)
    if cls is int:
        return int.__repr__(value)
    if cls is float and math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(value, ensure_ascii=False)


_encode_str: Callable[[str], str] = json.encoder.encode_basestring


def entry_row(e: AuditEntry, data_json: str | None = None) -> tuple[Any, ...]:
    """An entry as the twelve column values (data as compact, sorted JSON text; pass the text
    when it is already encoded)."""
    return (
        e.seq,
        e.ts,
        e.kind,
        e.conversation_id,
        e.run_id,
        e.user_id,
        e.tenant,
        e.tool,
        e.decision,
        _canonical(e.data) if data_json is None else data_json,
        e.prev_hash,
        e.hash,
    )


def row_to_entry(r: Any) -> AuditEntry:
    try:
        data = json.loads(r[9])
    except (TypeError, ValueError):
        data = {"__undecodable__": str(r[9])}  # verify then reports the record as edited
    if not isinstance(data, dict):
        data = {"__undecodable__": data}
    return AuditEntry(
        float(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], data, int(r[0]), r[10], r[11]
    )


def checkpoint_row(cp: Checkpoint) -> tuple[Any, ...]:
    return (cp.seq, cp.hash, cp.ts, cp.mac)


def row_to_checkpoint(r: Any) -> Checkpoint:
    return Checkpoint(int(r[0]), str(r[1]), float(r[2]), None if r[3] is None else str(r[3]))


def walk_pages(fetch: Callable[[int], list[Any]], convert: Callable[[Any], T]) -> Iterator[T]:
    """Every row of a table in seq order, one page in memory at a time: `fetch(after_seq)`
    returns the next page (see `page_query`)."""
    last = 0
    while True:
        rows = fetch(last)
        if not rows:
            return
        for r in rows:
            yield convert(r)
        last = int(rows[-1][0])


class SqlAuditStore(abc.ABC):
    """Everything a SQL audit store does the same on SQLite and PostgreSQL: sealing and writing
    a record (and a checkpoint every `checkpoint_every`), filtered queries, the paged walk over
    records and checkpoints, the head, and the checkpoint on close. A backend sets the
    attributes below and says how to run a step exclusively (`_exclusive`)."""

    table: str
    checkpoints_table: str
    checkpoint_every: int
    checkpoint_key: bytes | None
    _ph: str  # the parameter placeholder
    _conn: Any  # a DB-API connection whose `execute` returns a cursor
    _lock: threading.Lock
    _has_checkpoints: bool
    _dirty: bool = False  # this store appended records since it last checkpointed on close

    @abc.abstractmethod
    def _exclusive(self, step: Callable[[], T]) -> T:
        """Run `step` in one transaction serialised against every other writer of the log
        (any thread, any process); the caller holds `_lock`."""

    def append(self, record: NewRecord) -> AuditEntry:
        return self.append_many([record])[0]

    def append_many(self, records: Sequence[NewRecord]) -> list[AuditEntry]:
        """Append records in order in one transaction: all of them or none survive a crash,
        and the batch costs one commit (one fsync) however many records it holds."""
        if not records:
            return []
        with self._lock:
            entries = self._exclusive(lambda: self._write(records))
            self._dirty = True
            return entries

    def _write(self, records: Sequence[NewRecord]) -> list[AuditEntry]:
        head = self._head()
        seq, prev = (head.seq, head.hash) if head else (0, GENESIS)
        entries: list[AuditEntry] = []
        rows: list[tuple[Any, ...]] = []
        for record in records:
            seq += 1
            entry, data_json = seal_once(record, seq, prev)
            prev = entry.hash
            entries.append(entry)
            rows.append(entry_row(entry, data_json))
        self._insert_rows(rows)
        every = self.checkpoint_every
        for entry in entries:
            if every and entry.seq % every == 0:
                self._insert_checkpoint(entry.seq, entry.hash)
        return entries

    def _insert_rows(self, rows: list[tuple[Any, ...]]) -> None:
        sql = insert_sql(self.table, self._ph)
        if len(rows) == 1:
            self._conn.execute(sql, rows[0])
        else:
            self._conn.cursor().executemany(sql, rows)

    def _insert_checkpoint(self, seq: int, digest: str) -> Checkpoint:
        cp = make_checkpoint(seq, digest, time.time(), self.checkpoint_key)
        self._conn.execute(
            checkpoint_insert_sql(self.checkpoints_table, self._ph), checkpoint_row(cp)
        )
        return cp

    def _checkpoint_head(self) -> Checkpoint | None:
        head = self._head()
        return self._insert_checkpoint(head.seq, head.hash) if head else None

    def checkpoint(self) -> Checkpoint | None:
        with self._lock:
            return self._exclusive(self._checkpoint_head)

    def close(self) -> None:
        if self._dirty:
            try:
                self.checkpoint()
            except Exception:  # closing must not fail over a checkpoint
                log.exception("could not checkpoint the audit log %s on close", self.table)
        with self._lock:
            self._dirty = False
            self._conn.close()

    def query(self, q: Query) -> list[AuditEntry]:
        sql, params = build_query(q, self.table, self._ph)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [row_to_entry(r) for r in rows]

    def _fetch(self, sql: str) -> Callable[[int], list[Any]]:
        def fetch(after: int) -> list[Any]:
            with self._lock:
                rows: list[Any] = self._conn.execute(sql, (after,)).fetchall()
                return rows

        return fetch

    def iter_all(self) -> Iterator[AuditEntry]:
        return walk_pages(self._fetch(page_query(self.table, self._ph)), row_to_entry)

    def checkpoints(self) -> Iterator[Checkpoint]:
        if not self._has_checkpoints:
            return iter(())
        sql = page_query(self.checkpoints_table, self._ph, CHECKPOINT_COLUMNS)
        return walk_pages(self._fetch(sql), row_to_checkpoint)

    def head(self) -> Head | None:
        with self._lock:
            return self._head()

    def _head(self) -> Head | None:
        sql = f"SELECT seq, hash FROM {self.table} ORDER BY seq DESC LIMIT 1"
        row = self._conn.execute(sql).fetchone()
        return Head(int(row[0]), str(row[1])) if row else None
