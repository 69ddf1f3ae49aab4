"""Audit records in process memory: for tests and short-lived tools; gone when the process
ends. Same contract as the durable stores (chain, checkpoints, filters)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

from callgate.audit.record import (
    GENESIS,
    AuditEntry,
    Checkpoint,
    Head,
    NewRecord,
    Query,
    make_checkpoint,
)


class MemoryAuditStore:
    """`AuditStore` in lists, guarded by one lock."""

    def __init__(self, *, checkpoint_every: int = 100, checkpoint_key: bytes | None = None):
        if checkpoint_every < 0:
            raise ValueError("checkpoint_every must be >= 0")
        self.checkpoint_every = checkpoint_every
        self.checkpoint_key = checkpoint_key
        self._lock = threading.Lock()
        self._rows: list[AuditEntry] = []
        self._checkpoints: dict[int, Checkpoint] = {}

    def append(self, record: NewRecord) -> AuditEntry:
        with self._lock:
            last = self._rows[-1] if self._rows else None
            entry = record.seal(last.seq + 1, last.hash) if last else record.seal(1, GENESIS)
            self._rows.append(entry)
            if self.checkpoint_every and entry.seq % self.checkpoint_every == 0:
                self._add_checkpoint(entry)
            return entry

    def append_many(self, records: Sequence[NewRecord]) -> list[AuditEntry]:
        """Append records in order (the batch path of the group-committing audit log)."""
        return [self.append(r) for r in records]

    def _add_checkpoint(self, e: AuditEntry) -> Checkpoint:
        cp = make_checkpoint(e.seq, e.hash, time.time(), self.checkpoint_key)
        return self._checkpoints.setdefault(e.seq, cp)

    def checkpoint(self) -> Checkpoint | None:
        with self._lock:
            return self._add_checkpoint(self._rows[-1]) if self._rows else None

    def query(self, q: Query) -> list[AuditEntry]:
        with self._lock:
            rows = [e for e in self._rows if e.seq > q.after_seq and _matches(e, q)]
        if q.newest_first:
            rows.reverse()
        return rows if q.limit is None else rows[: q.limit]

    def iter_all(self) -> Iterator[AuditEntry]:
        with self._lock:
            rows = list(self._rows)
        return iter(rows)

    def checkpoints(self) -> Iterator[Checkpoint]:
        with self._lock:
            return iter(sorted(self._checkpoints.values(), key=lambda c: c.seq))

    def head(self) -> Head | None:
        with self._lock:
            return Head(self._rows[-1].seq, self._rows[-1].hash) if self._rows else None

    def close(self) -> None:
        self.checkpoint()


def _matches(e: AuditEntry, q: Query) -> bool:
    return all(
        want is None or got == want
        for want, got in (
            (q.conversation_id, e.conversation_id),
            (q.user_id, e.user_id),
            (q.tool, e.tool),
            (q.decision, e.decision),
            (q.kind, e.kind),
        )
    )
