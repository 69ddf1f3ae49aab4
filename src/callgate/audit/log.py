"""A tamper-evident audit log of everything the gate and the agent loop did.

Every model turn, every call (whatever its outcome), every approval event and any policy event the
application reports becomes one record: who (user, roles, tenant), which conversation and run, the
user's original request, the tool and its version, the arguments *redacted*
(`callgate.redaction`), the decision and the rule that took it, approval ids, a truncated and
redacted result summary, the error kind and timings.

Records form a hash chain: each carries `seq`, `prev_hash` and
`hash = SHA-256(prev_hash || canonical JSON of the record without its hash)`, so editing,
deleting, inserting or reordering a stored record breaks the chain at a place `verify` names
exactly. Deleting the *newest* records leaves a shorter chain that is still valid; to catch that,
store `head()` (the last seq and hash) somewhere the database's writers cannot reach and pass it to
`verify(anchor=...)`.

Stores (`callgate.audit.stores.sqlite`, `callgate.audit.stores.postgres`) assign seq and hashes inside
one transaction per record, serialised across processes, so the chain never forks and a crash
never leaves half a record.

`replay` (in `callgate.audit.replay`) re-runs a recorded conversation's proposed calls through
today's gate and reports where the outcome differs; `add_cli` (in `callgate.audit.cli`) wires
`callgate audit verify|head|show|replay`. Both stay importable from here.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from callgate.context import RunContext
from callgate.gate.protocols import CallRecord, TurnRecord
from callgate.redaction import DEFAULT_PATTERNS, ValuePattern, redact, redact_text
from callgate.serde import canonical_json

if TYPE_CHECKING:
    from callgate.gate.protocols import Invocation, PolicyDecision

log = logging.getLogger("callgate.audit.log")

GENESIS = "0" * 64
"""The `prev_hash` of the first record."""

# ------------------------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One stored record. `data` holds the kind-specific payload (already redacted)."""

    seq: int
    ts: float
    kind: str
    conversation_id: str | None
    run_id: str | None
    user_id: str | None
    tenant: str | None
    tool: str | None
    decision: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str

    def body(self, seq: int | None = None) -> dict[str, Any]:
        """Everything the hash covers (optionally as if stored under another seq)."""
        return {
            "seq": self.seq if seq is None else seq,
            "ts": self.ts,
            "kind": self.kind,
            "conversation_id": self.conversation_id,
            "run_id": self.run_id,
            "user_id": self.user_id,
            "tenant": self.tenant,
            "tool": self.tool,
            "decision": self.decision,
            "data": self.data,
            "prev_hash": self.prev_hash,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}

    def computed_hash(self, seq: int | None = None) -> str:
        return chain_hash(self.prev_hash, self.body(seq))


@dataclass(frozen=True, slots=True)
class Head:
    """The newest record's seq and hash: an anchor to keep outside the database."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Head:
        seq, sep, digest = text.strip().partition(":")
        if not sep or not seq.isdigit() or len(digest) != 64:
            raise ValueError(f"an anchor looks like SEQ:SHA256HEX, got {text!r}")
        return cls(int(seq), digest.lower())


def chain_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


def jsonable(value: Any) -> Any:
    """A JSON-safe copy: unknown objects become strings, non-finite floats become strings, so
    every record serialises the same way on every backend."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in items]
    return str(value)


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A record before the store gives it a seq and hashes."""

    ts: float
    kind: str
    conversation_id: str | None
    run_id: str | None
    user_id: str | None
    tenant: str | None
    tool: str | None
    decision: str | None
    data: dict[str, Any]

    def seal(self, seq: int, prev_hash: str) -> AuditEntry:
        draft = AuditEntry(
            seq,
            self.ts,
            self.kind,
            self.conversation_id,
            self.run_id,
            self.user_id,
            self.tenant,
            self.tool,
            self.decision,
            self.data,
            prev_hash,
            "",
        )
        return AuditEntry(**{**_fields(draft), "hash": draft.computed_hash()})


def _fields(e: AuditEntry) -> dict[str, Any]:
    return {name: getattr(e, name) for name in AuditEntry.__slots__}


@dataclass(frozen=True, slots=True)
class Query:
    """Filters for reading records back (all optional, combined with AND)."""

    conversation_id: str | None = None
    user_id: str | None = None
    tool: str | None = None
    decision: str | None = None
    kind: str | None = None
    after_seq: int = 0
    limit: int | None = None
    newest_first: bool = False


@runtime_checkable
class AuditStore(Protocol):
    """Where records live. `append` must assign seq and hashes atomically (one transaction,
    serialised against every other writer) and return the sealed entry."""

    def append(self, record: NewRecord) -> AuditEntry: ...

    def query(self, q: Query) -> list[AuditEntry]: ...

    def iter_all(self) -> Iterator[AuditEntry]:
        """Every stored row in seq order, exactly as stored (verification reads this)."""
        ...

    def head(self) -> Head | None: ...

    def close(self) -> None: ...


# ------------------------------------------------------------------------------- verification


@dataclass(frozen=True, slots=True)
class Problem:
    """One break in the chain. `kind`: edited, replaced, deleted, inserted, reordered,
    renumbered, truncated or anchor_mismatch. `seq` is the stored seq to look at."""

    kind: str
    seq: int
    message: str


@dataclass(slots=True)
class VerifyReport:
    count: int
    head: Head | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def summary(self) -> str:
        if self.ok:
            head = f", head {self.head}" if self.head else ""
            return f"OK: {self.count} records, chain intact{head}"
        lines = [f"TAMPERED: {len(self.problems)} problem(s) in {self.count} records"]
        lines += [f"  seq {p.seq}: {p.kind}: {p.message}" for p in self.problems]
        return "\n".join(lines)


_WINDOW = 64  # how far a renumbered record's original seq is searched when its link is gone
_MAX_WINDOW_SEARCHES = 200


def verify_entries(entries: Iterable[AuditEntry], anchor: Head | None = None) -> VerifyReport:
    """Walk the chain and say exactly which stored records break it, and how.

    Each record's own hash is recomputed (an edit shows there); each `prev_hash` must be the
    hash of the record stored just before it (deletions, insertions and reorderings show there).
    A record whose seq was changed still hashes correctly under its original seq, which is
    recovered from its link to its predecessor, so a deletion or insertion followed by
    renumbering is reported as that deletion or insertion, not as a cascade of edits.
    """
    rows = list(entries)
    n = len(rows)
    index: dict[str, int] = {}
    for i, e in enumerate(rows):
        index.setdefault(e.hash, i)
    linked = {e.prev_hash for e in rows}
    orig: list[int | None] = [e.seq if e.computed_hash() == e.hash else None for e in rows]

    # Recover original seqs of renumbered records through their links (a few passes suffice
    # unless records were shuffled wholesale).
    for _ in range(8):
        changed = False
        for i, e in enumerate(rows):
            if orig[i] is not None:
                continue
            if e.prev_hash == GENESIS:
                cand: int | None = 1
            else:
                j = index.get(e.prev_hash)
                pj = orig[j] if j is not None else None
                cand = pj + 1 if pj is not None else None
            if cand is not None and e.computed_hash(cand) == e.hash:
                orig[i] = cand
                changed = True
        if not changed:
            break
    searches = 0
    for i, e in enumerate(rows):
        if orig[i] is not None or searches >= _MAX_WINDOW_SEARCHES:
            continue
        searches += 1
        for d in range(1, _WINDOW + 1):
            hit = next(
                (c for c in (e.seq + d, e.seq - d) if c > 0 and e.computed_hash(c) == e.hash),
                None,
            )
            if hit is not None:
                orig[i] = hit
                break

    problems: list[Problem] = []
    shift: int | None = 0  # stored seq minus written seq; None: just explained, accept anew
    prev_i: int | None = None
    for i, e in enumerate(rows):
        oi = orig[i]
        expected_prev = GENESIS if prev_i is None else rows[prev_i].hash
        if oi is None:
            if e.prev_hash != expected_prev and e.hash not in linked:
                # neither linked to its predecessor nor linked to by anything: not ours
                problems.append(Problem("inserted", e.seq, "a record that is not in the chain"))
                shift = None
                continue
            problems.append(
                Problem("edited", e.seq, "the record's content does not match its hash")
            )
            prev_i = i
            continue
        if e.prev_hash == expected_prev:
            if shift is not None and e.seq - oi != shift:
                problems.append(
                    Problem("renumbered", e.seq, f"this record was written as seq {oi}")
                )
            shift = e.seq - oi
            prev_i = i
            continue
        j = -1 if e.prev_hash == GENESIS else index.get(e.prev_hash)
        if j is None:
            prev_orig = 0 if prev_i is None else orig[prev_i]
            if prev_orig is not None and oi - prev_orig > 1:
                a, b = prev_orig + 1, oi - 1
                what = f"record {a} was" if a == b else f"records {a}..{b} were"
                problems.append(Problem("deleted", e.seq, f"{what} deleted just before this one"))
            elif prev_i is not None:
                problems.append(
                    Problem(
                        "replaced",
                        rows[prev_i].seq,
                        "the record was rewritten and its hash recomputed "
                        f"(record seq {e.seq} points to a different predecessor)",
                    )
                )
            else:
                problems.append(Problem("deleted", e.seq, "its predecessor is missing"))
        elif j < i:
            skipped = [k for k in range(j + 1, i) if rows[k].hash not in linked]
            for k in skipped:
                problems.append(
                    Problem("inserted", rows[k].seq, "no record of the chain points to it")
                )
            if not skipped and e.seq != oi:
                problems.append(
                    Problem("reordered", e.seq, f"written as seq {oi}, stored out of order")
                )
        else:
            problems.append(
                Problem(
                    "reordered",
                    e.seq,
                    f"written as seq {oi}, its predecessor is stored later (seq {rows[j].seq})",
                )
            )
        shift = e.seq - oi
        prev_i = i

    inserted = {p.seq for p in problems if p.kind == "inserted"}
    problems = [p for p in problems if not (p.kind == "edited" and p.seq in inserted)]
    problems.sort(key=lambda p: p.seq)

    head = Head(rows[-1].seq, rows[-1].hash) if rows else None
    if anchor is not None and anchor.hash not in index:
        last = max((o for o in orig if o is not None), default=0)
        if last < anchor.seq:
            problems.append(
                Problem(
                    "truncated",
                    last + 1,
                    f"records {last + 1}..{anchor.seq} are missing (anchored head "
                    f"{anchor.seq} not found; the log ends at {last})",
                )
            )
        else:
            problems.append(
                Problem(
                    "anchor_mismatch",
                    anchor.seq,
                    "the anchored record is not in the log (it was rewritten)",
                )
            )
    return VerifyReport(n, head, problems)


# ---------------------------------------------------------------------------------- AuditLog


class AuditLog:
    """Observer for the gate and the agent loop that writes redacted, chained records.

    `AuditLog(store)` is passed as a gate observer (`on_call`) and an agent observer
    (`on_turn`); approvals and the application report other events with `record_event`.
    Observers must not raise, so write failures are logged and counted in `failures`; pass
    `strict=True` to make them raise instead (for applications that must not run unaudited).
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
    ) -> None:
        self.store = store
        self.patterns = tuple(patterns)
        self.max_summary_chars = max_summary_chars
        self.max_text_chars = max_text_chars
        self.sensitive_params = {k: frozenset(v) for k, v in (sensitive_params or {}).items()}
        self.strict = strict
        self.failures = 0
        self._lock = threading.Lock()

    @classmethod
    def open(cls, target: str, **kwargs: Any) -> AuditLog:
        """An audit log on a SQLite path or a PostgreSQL DSN (postgresql://...)."""
        from callgate.audit.stores import open_store

        return cls(open_store(target), **kwargs)

    # writing -----------------------------------------------------------------------------

    def on_call(self, record: CallRecord) -> None:
        ctx = record.ctx
        sensitive = record.sensitive | self.sensitive_params.get(record.tool, frozenset())
        state = {k: v for k, v in record.state.items() if k not in _STATE_SKIP}
        data: dict[str, Any] = {
            **self._who(ctx),
            "call_id": record.call_id,
            "version": record.version,
            "arguments": redact(record.arguments, sensitive, patterns=self.patterns),
            "rule": record.rule,
            "error_kind": record.error_kind,
            "result_summary": self._text(record.result_summary, self.max_summary_chars),
            "started_at": record.started_at,
            "duration_s": record.duration_s,
            "attempts": record.attempts,
        }
        approval_id = record.state.get("approval_id")
        if approval_id is not None:
            data["approval_id"] = approval_id
        if state:
            data["state"] = redact(jsonable(state), patterns=self.patterns)
        self._write("call", ctx, record.tool, record.decision, data)

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
        self._write("turn", ctx, None, None, data)

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
        return self._write(kind, ctx, tool, decision, payload)

    def record_decision(self, inv: Invocation, decision: PolicyDecision) -> AuditEntry | None:
        """Convenience for policy engines: record one decision with its rule and reason."""
        return self.record_event(
            "policy",
            {
                "call_id": inv.call.id,
                "rule": decision.rule,
                "reason": decision.reason,
                "arguments": redact(inv.args, inv.tool.annotations.sensitive),
            },
            inv.ctx,
            tool=inv.tool.name,
            decision=decision.effect,
        )

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
        ctx: RunContext | None,
        tool: str | None,
        decision: str | None,
        data: dict[str, Any],
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
            data=jsonable(data),
        )
        try:
            with self._lock:
                return self.store.append(rec)
        except Exception:
            self.failures += 1
            if self.strict:
                raise
            log.exception("audit write failed (%s record)", kind)
            return None

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
        return self.store.query(
            Query(conversation_id, user_id, tool, decision, kind, 0, limit, newest_first)
        )

    def head(self) -> Head | None:
        """The newest record's seq and hash. Keep it elsewhere (a ticket, another system) and
        pass it to `verify` later to detect records removed from the end."""
        return self.store.head()

    def verify(self, anchor: Head | None = None) -> VerifyReport:
        return verify_entries(self.store.iter_all(), anchor)

    def close(self) -> None:
        self.store.close()


_STATE_SKIP = frozenset({"decision", "approval_id"})
