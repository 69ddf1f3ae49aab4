"""Group commit for the audit log: records leave the event loop and share one commit.

With a durable store every commit is an fsync (milliseconds). Writing each record on the
event-loop thread made every concurrent call wait behind the previous call's fsync (153 calls/s).
`GroupWriter` takes records from any thread into a queue and one background thread appends
whatever has accumulated as *one* transaction: N calls that finish together share one fsync,
and a crash leaves each batch entirely written or entirely absent (never half a record, never a
fork of the chain).

Durability is a promise at a boundary, not per record: `flush()` (or `await aflush()`) returns
once every record queued before it is committed. The audit log flushes before it reads and on
`close()`; the agent loop flushes its observers before it reports a run finished.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from callgate.audit.record import AuditEntry, NewRecord

__all__ = ["BatchStore", "GroupWriter"]

log = logging.getLogger("callgate.audit.writer")


class BatchStore(Protocol):
    """A store that can append many records in one transaction."""

    def append_many(self, records: Sequence[NewRecord]) -> list[AuditEntry]: ...


class GroupWriter:
    """One background thread appending queued records in batches.

    `on_error(batch, exc)` is told about a batch that could not be written (its records are
    lost; the log counts them). `max_pending` bounds the queue: a producer faster than the disk
    waits for room instead of growing memory without limit."""

    def __init__(
        self,
        store: BatchStore,
        on_error: Callable[[Sequence[NewRecord], BaseException], None],
        *,
        max_batch: int = 1000,
        max_pending: int = 20_000,
        linger_s: float = 0.002,
    ) -> None:
        self._store = store
        self._on_error = on_error
        self.max_batch = max(1, max_batch)
        self.max_pending = max(self.max_batch, max_pending)
        self._cond = threading.Condition()
        self._pending: list[NewRecord] = []
        self._queued = 0  # records ever queued
        self._done = 0  # records ever taken care of (written, or failed and reported)
        self._closed = False
        self._flushers = 0  # threads waiting in flush: the writer does not linger for them
        self.linger_s = linger_s
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.batches = 0  # commits made (for tests and benchmarks)

    def put(self, record: NewRecord) -> None:
        if self._pid != os.getpid():
            self._forked()
        with self._cond:
            if self._closed:
                raise RuntimeError("the audit log is closed")
            while len(self._pending) >= self.max_pending:
                self._cond.wait()
            self._pending.append(record)
            self._queued += 1
            if self._thread is None:
                self._start()
            n = len(self._pending)
            if n == 1 or n == self.max_batch:
                # wake the writer only when it waits for a first record or a full batch:
                # waking it per record makes it fight the producer for the interpreter lock
                self._cond.notify_all()

    def _forked(self) -> None:
        """In a forked child: the parent's thread did not come along, and its queue is the
        parent's to write. Start afresh (the store must be usable in the child, as without
        group commit)."""
        self._cond = threading.Condition()
        self._pending = []
        self._queued = self._done = 0
        self._thread = None
        self._pid = os.getpid()

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name="callgate-audit-writer", daemon=True
        )
        self._thread.start()
        # records still queued when the interpreter exits are committed first
        atexit.register(self.flush, 30.0)

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            self._write(batch)

    def _take(self) -> list[NewRecord] | None:
        """The next batch (waiting for one), or None once closed and drained."""
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if not self._pending:
                return None
            if self.linger_s > 0:
                # a moment for more records: fewer, bigger commits (and less contention for
                # the interpreter lock with the threads producing them)
                self._cond.wait_for(self._full_or_urgent, self.linger_s)
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            self._cond.notify_all()  # room for producers
            return batch

    def _full_or_urgent(self) -> bool:
        return len(self._pending) >= self.max_batch or self._closed or self._flushers > 0

    def _write(self, batch: list[NewRecord]) -> None:
        try:
            self._store.append_many(batch)
            self.batches += 1
        except Exception as e:  # noqa: BLE001 - reported; the writer thread must live on
            if len(batch) == 1:
                self._failed(batch, e)
            else:  # one bad record must not cost the others: write them one by one
                for record in batch:
                    try:
                        self._store.append_many([record])
                    except Exception as one:  # noqa: BLE001 - reported
                        self._failed([record], one)
        with self._cond:
            self._done += len(batch)
            self._cond.notify_all()

    def _failed(self, batch: list[NewRecord], exc: Exception) -> None:
        try:
            self._on_error(batch, exc)
        except Exception:
            log.exception("audit error handler failed")

    @property
    def pending(self) -> int:
        """Records queued and not yet committed."""
        with self._cond:
            return self._queued - self._done

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record queued so far is committed (True) or `timeout` passed."""
        with self._cond:
            target = self._queued
            if self._done >= target:
                return True
            self._flushers += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._done >= target, timeout)
            finally:
                self._flushers -= 1

    async def aflush(self) -> None:
        """`flush` without blocking the event loop (returns at once when nothing is queued)."""
        with self._cond:
            if self._done >= self._queued:
                return
        await asyncio.to_thread(self.flush)

    def close(self) -> None:
        """Commit everything queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        atexit.unregister(self.flush)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
