"""The audit log: an observer that writes every model turn, every call (whatever its outcome),
every approval event and any policy event the application reports as one redacted record.

A record says who (user, roles, tenant), which conversation and run, the user's original
request, the tool and its version, the arguments *redacted* (`callgate.redaction`), the decision
and the rule that took it, approval ids, a truncated and redacted result summary, the error kind
and timings. Records are hash-chained and checkpointed by the store (`callgate.audit.record`);
`verify` walks the chain (`callgate.audit.verify`). Replay (`callgate.audit.replay`) and the
command line (`callgate.audit.cli`) build on this module; it imports neither.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from callgate.audit.record import AuditEntry, AuditStore, Head, NewRecord, Query, jsonable
from callgate.audit.stores import open_audit_store
from callgate.audit.stores.memory import MemoryAuditStore
from callgate.audit.verify import VerifyReport, verify_entries
from callgate.audit.writer import BatchStore, GroupWriter
from callgate.context import RunContext
from callgate.gate.protocols import CallRecord, TurnRecord
from callgate.redaction import DEFAULT_PATTERNS, ValuePattern, redact, redact_text

__all__ = ["AuditLog"]

log = logging.getLogger("callgate.audit.log")


class Ledgerlike(Protocol):
    """A run's ledger as the audit log needs it (`callgate.agent.ledger.Ledger`; the audit
    package does not import the agent)."""

    def to_dict(self) -> dict[str, Any]: ...


class Subject(Protocol):
    """Whom a record is about: a `RunContext`, or `_Rater` for feedback given after the run."""

    @property
    def conversation_id(self) -> str | None: ...
    @property
    def run_id(self) -> str | None: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def tenant(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class _Rater:
    """Who rated a run's answer: the run it rates, outside any conversation."""

    run_id: str
    user_id: str | None
    tenant: str | None
    conversation_id: None = None


#: record kinds that are group-committed (the rest are written at once)
_GROUPED = frozenset({"call", "turn", "run"})


class AuditLog:
    """Observer for the gate and the agent loop that writes redacted, chained records.

    `AuditLog(store)` is passed as a gate observer (`on_call`) and an agent observer
    (`on_turn`); approvals and the application report other events with `record_event`.
    Observers must not raise, so write failures are logged and counted in `failures`; pass
    `strict=True` to make them raise instead (for applications that must not run unaudited).

    Group commit (the default for SQLite and PostgreSQL, not with `strict`): call and turn
    records are queued and a background thread commits them in batches
    (`callgate.audit.writer`), so the event loop never waits for an fsync and concurrent calls
    share one. A record is durable once `flush()` / `await aflush()` returns; the log flushes
    before it reads and on `close()`, and the agent loop before it reports a run finished.
    `record_event` writes at once (it returns the stored entry).
    """

    def __init__(
        self,
        store: AuditStore,
        *,
        patterns: Sequence[ValuePattern] = DEFAULT_PATTERNS,
        max_summary_chars: int = 500,
        max_text_chars: int = 2000,
        sensitive_params: Mapping[str, Iterable[str]] | None = None,
        strict: bool = False,
        group_commit: bool = True,
    ) -> None:
        self.store = store
        self.patterns = tuple(patterns)
        self.max_summary_chars = max_summary_chars
        self.max_text_chars = max_text_chars
        self.sensitive_params = {k: frozenset(v) for k, v in (sensitive_params or {}).items()}
        self.strict = strict
        self.failures = 0
        self._lock = threading.Lock()
        self._writer: GroupWriter | None = None
        if group_commit and not strict and not isinstance(store, MemoryAuditStore):
            append_many = getattr(store, "append_many", None)
            if append_many is not None:
                self._writer = GroupWriter(cast(BatchStore, store), self._batch_failed)

    @classmethod
    def open(
        cls,
        target: str | os.PathLike[str],
        *,
        checkpoint_every: int = 100,
        checkpoint_key: bytes | None = None,
        must_exist: bool = False,
        **kwargs: Any,
    ) -> AuditLog:
        """An audit log on ``:memory:``, a SQLite path or a PostgreSQL DSN (see
        `callgate.audit.stores.open_audit_store` for the checkpoint options)."""
        store = open_audit_store(
            target,
            checkpoint_every=checkpoint_every,
            checkpoint_key=checkpoint_key,
            must_exist=must_exist,
        )
        return cls(store, **kwargs)

    # writing -----------------------------------------------------------------------------

    def on_call(self, record: CallRecord) -> None:
        ctx = record.ctx
        sensitive = record.sensitive | self.sensitive_params.get(record.tool, frozenset())
        state = record.facts()
        data: dict[str, Any] = {
            **self._who(ctx),
            "call_id": record.call_id,
            "version": record.version,
            "arguments": jsonable(redact(record.arguments, sensitive, patterns=self.patterns)),
            "rule": record.rule,
            "error_kind": record.error_kind,
            "result_summary": self._text(record.result_summary, self.max_summary_chars),
            "started_at": record.started_at,
            "duration_s": record.duration_s,
            "attempts": record.attempts,
        }
        approval_id = record.approval_id
        if approval_id is not None:
            data["approval_id"] = approval_id
        if state:
            data["state"] = redact(jsonable(state), patterns=self.patterns)
        # every value above is already JSON-safe: no second walk over the record
        self._write("call", ctx, record.tool, record.decision, data, safe=True)

    def on_turn(self, record: TurnRecord) -> None:
        ctx = record.ctx
        calls = [
            {
                "id": c.id,
                "name": c.name,
                "arguments": redact(
                    c.arguments,
                    self.sensitive_params.get(c.name, frozenset())
                    | record.sensitive.get(c.name, frozenset()),
                    patterns=self.patterns,
                ),
            }
            for c in record.tool_calls
        ]
        data = {
            **self._who(ctx),
            "turn": record.turn,
            "model": record.model,
            "text": self._text(record.text, self.max_text_chars),
            "tool_calls": calls,
            "stop_reason": record.stop_reason,
            "input_tokens": record.input_tokens,
            "output_tokens": record.output_tokens,
            "cost_usd": record.cost_usd,
            "duration_s": record.duration_s,
        }
        data.update(record.optional_facts())
        self._write("turn", ctx, None, None, data)

    def on_run(self, ctx: RunContext, status: str, reason: str | None, ledger: Ledgerlike) -> None:
        """The end of an agent run: its status and its ledger (`callgate.agent.ledger.Ledger`:
        time split, round trips, calls per tool, tokens, cost), for `callgate stats`."""
        data = {
            **self._who(ctx),
            "status": status,
            "reason": reason,
            "ledger": jsonable(ledger.to_dict()),
        }
        self._write("run", ctx, None, None, data)

    def record_feedback(
        self,
        run_id: str,
        rating: int,
        comment: str = "",
        *,
        user_id: str | None = None,
        tenant: str | None = None,
    ) -> AuditEntry | None:
        """A person's rating (1 worst to 5 best) and comment on a run's answer, recorded after
        the fact against the run id so `callgate stats` shows it beside the tools that run
        used. The comment is cut and redacted like any other text."""
        if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
            raise ValueError(f"a rating is an integer from 1 to 5, got {rating!r}")
        if not run_id or not isinstance(run_id, str):
            raise ValueError("feedback needs the run id of the answer it rates")
        data = {"rating": rating, "comment": self._text(comment, self.max_text_chars)}
        return self._write("feedback", _Rater(run_id, user_id, tenant), None, None, data)

    def record_event(
        self,
        kind: str,
        data: Mapping[str, Any],
        ctx: RunContext | None = None,
        *,
        tool: str | None = None,
        decision: str | None = None,
    ) -> AuditEntry | None:
        """Record an approval event ("approval"), a policy decision ("policy") or anything else
        worth keeping. `data` is redacted (secret-looking keys and values) before it is stored."""
        payload = {**(self._who(ctx) if ctx else {}), **redact(jsonable(dict(data)))}
        return self._write(kind, ctx, tool, decision, payload, safe=True)  # jsonable above

    def _who(self, ctx: RunContext | None) -> dict[str, Any]:
        if ctx is None:
            return {}
        return {
            "roles": sorted(ctx.roles),
            "request": self._text(ctx.request, self.max_text_chars) if ctx.request else None,
            "turn_no": ctx.turn,
        }

    def _text(self, text: str | None, limit: int) -> str:
        if not text:
            return ""
        if len(text) > limit:
            text = text[:limit] + f"… [{len(text) - limit} more chars]"
        return redact_text(text, self.patterns)

    def _write(
        self,
        kind: str,
        ctx: Subject | None,
        tool: str | None,
        decision: str | None,
        data: dict[str, Any],
        *,
        safe: bool = False,
    ) -> AuditEntry | None:
        rec = NewRecord(
            ts=time.time(),
            kind=kind,
            conversation_id=ctx.conversation_id if ctx else None,
            run_id=ctx.run_id if ctx else None,
            user_id=ctx.user_id if ctx else None,
            tenant=ctx.tenant if ctx else None,
            tool=tool,
            decision=decision,
            data=data if safe else jsonable(data),
        )
        if self._writer is not None and kind in _GROUPED:
            try:
                self._writer.put(rec)
            except Exception:
                self.failures += 1
                log.exception("audit write failed (%s record)", kind)
            return None
        return self._append_now(rec)

    def _append_now(self, rec: NewRecord) -> AuditEntry | None:
        """Write one record now (after the queued ones, to keep the order)."""
        writer = self._writer
        kind = rec.kind
        try:
            with self._lock:
                if writer is not None:
                    writer.flush()
                return self.store.append(rec)
        except Exception:
            self.failures += 1
            if self.strict:
                raise
            log.exception("audit write failed (%s record)", kind)
            return None

    def _batch_failed(self, batch: Sequence[NewRecord], exc: BaseException) -> None:
        self.failures += len(batch)
        log.error("audit write failed: %d records lost", len(batch), exc_info=exc)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record written so far is committed (False if `timeout` passed)."""
        return self._writer.flush(timeout) if self._writer is not None else True

    async def aflush(self) -> None:
        """`flush` for async code: waits without blocking the event loop."""
        if self._writer is not None:
            await self._writer.aflush()

    # reading -----------------------------------------------------------------------------

    def entries(
        self,
        *,
        conversation_id: str | None = None,
        user_id: str | None = None,
        tool: str | None = None,
        decision: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[AuditEntry]:
        self.flush()
        return self.store.query(
            Query(conversation_id, user_id, tool, decision, kind, 0, limit, newest_first)
        )

    def head(self) -> Head | None:
        """The newest record's seq and hash. Keep it elsewhere (a ticket, another system) and
        pass it to `verify` later to detect records removed from the end."""
        self.flush()
        return self.store.head()

    def verify(self, anchor: Head | None = None, *, key: bytes | None = None) -> VerifyReport:
        """Walk the whole chain in constant memory and compare it with the store's checkpoints
        (signatures checked with `key`, by default the store's own key) and `anchor`."""
        self.flush()
        return verify_entries(
            self.store.iter_all(),
            anchor,
            checkpoints=self.store.checkpoints(),
            key=key if key is not None else self.store.checkpoint_key,
        )

    def close(self) -> None:
        """Commit what is queued, then close the store (which checkpoints its head if this log
        wrote anything)."""
        if self._writer is not None:
            self._writer.close()
        self.store.close()
