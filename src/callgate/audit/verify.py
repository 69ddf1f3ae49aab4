"""Check an audit log's hash chain in one pass and constant memory, and say what it proves.

The walk reads records in stored order and keeps only two short windows: the last records seen
(to find a predecessor that is not the record just before) and the next records (to find a
predecessor stored later, or a record something still links to). Each record's own hash is
recomputed (an edit shows there); each `prev_hash` must be the hash of the record stored just
before it (deletions, insertions and reorderings show there). A record whose seq was changed
still hashes correctly under its original seq, which is recovered from its link to its
predecessor, so a deletion followed by renumbering is reported as that deletion, not as a
cascade of edits.

Checkpoints (`callgate.audit.record.Checkpoint`) are merged into the walk by seq: a checkpointed
record that differs or is missing, and a checkpoint beyond the end of the log (its tail was
cut), are problems; with the key, a checkpoint whose signature does not match is a forgery.
What the walk cannot prove is said in `VerifyReport.notes`.
"""

from __future__ import annotations

import hmac
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from callgate.audit.record import GENESIS, AuditEntry, Checkpoint, Head, checkpoint_mac

__all__ = ["Problem", "VerifyReport", "verify_entries"]

_BEHIND: Final = 64  # recent records kept to find a predecessor that is not the one just before
_AHEAD: Final = 64  # records read ahead to find a predecessor stored later
_SEARCH: Final = 64  # how far a renumbered record's original seq is searched when its link is gone
_MAX_SEARCHES: Final = 200
_MAX_PROBLEMS: Final = 1000


@dataclass(frozen=True, slots=True)
class Problem:
    """One break in the chain. `kind`: edited, replaced, deleted, inserted, reordered,
    renumbered, truncated, anchor_mismatch, checkpoint_mismatch, checkpoint_missing or
    checkpoint_forged. `seq` is the stored seq to look at."""

    kind: str
    seq: int
    message: str


@dataclass(slots=True)
class VerifyReport:
    """The outcome of a walk. `checkpoints`: how many checkpoints matched the log;
    `last_checkpoint`: the newest of them; `signed`: they were all checked against the key;
    `notes`: what this verification could not prove; `omitted`: problems beyond the first
    1000, counted but not kept."""

    count: int
    head: Head | None
    problems: list[Problem] = field(default_factory=list)
    checkpoints: int = 0
    last_checkpoint: Head | None = None
    signed: bool = False
    notes: list[str] = field(default_factory=list)
    omitted: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def summary(self) -> str:
        if self.ok:
            head = f", head {self.head}" if self.head else ""
            lines = [f"OK: {self.count} records, chain intact{head}"]
        else:
            total = len(self.problems) + self.omitted
            lines = [f"TAMPERED: {total} problem(s) in {self.count} records"]
            lines += [f"  seq {p.seq}: {p.kind}: {p.message}" for p in self.problems]
            if self.omitted:
                lines.append(f"  ... and {self.omitted} more")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass(slots=True)
class _Seen:
    entry: AuditEntry
    orig: int | None  # the seq the record was written under, when its hash proves it


class _Walk:
    """The state of one pass: the two windows, the chain's tip, and what was found."""

    def __init__(self, checkpoints: Iterable[Checkpoint], key: bytes | None) -> None:
        self.ahead: deque[AuditEntry] = deque()
        self.ahead_hashes: Counter[str] = Counter()
        self.ahead_prevs: Counter[str] = Counter()
        self.behind: deque[_Seen] = deque()
        self.behind_by_hash: dict[str, _Seen] = {}
        self.behind_prevs: Counter[str] = Counter()
        self.tip: _Seen | None = None
        self.shift: int | None = 0  # stored seq minus written seq; None: accept anew
        self.searches = 0
        self.count = 0
        self.last: AuditEntry | None = None
        self.last_orig = 0
        self.seen_hash: str | None = None  # set when the anchor's hash is met
        self.anchor_hash: str | None = None
        self.report = VerifyReport(0, None)
        self.cps = _Checkpoints(iter(checkpoints), key, self)

    # the windows ----------------------------------------------------------------------

    def push(self, e: AuditEntry) -> None:
        self.ahead.append(e)
        self.ahead_hashes[e.hash] += 1
        self.ahead_prevs[e.prev_hash] += 1
        if len(self.ahead) > _AHEAD:
            self.step(self._pop_ahead())

    def drain(self) -> None:
        while self.ahead:
            self.step(self._pop_ahead())

    def _pop_ahead(self) -> AuditEntry:
        e = self.ahead.popleft()
        _decrement(self.ahead_hashes, e.hash)
        _decrement(self.ahead_prevs, e.prev_hash)
        return e

    def _remember(self, seen: _Seen) -> None:
        self.behind.append(seen)
        self.behind_by_hash[seen.entry.hash] = seen
        self.behind_prevs[seen.entry.prev_hash] += 1
        if len(self.behind) > _BEHIND:
            old = self.behind.popleft()
            if self.behind_by_hash.get(old.entry.hash) is old:
                del self.behind_by_hash[old.entry.hash]
            _decrement(self.behind_prevs, old.entry.prev_hash)

    def _is_linked(self, digest: str) -> bool:
        """Does any record near this one name `digest` as its predecessor?"""
        return digest in self.ahead_prevs or digest in self.behind_prevs

    def problem(self, kind: str, seq: int, message: str) -> None:
        if len(self.report.problems) < _MAX_PROBLEMS:
            self.report.problems.append(Problem(kind, seq, message))
        else:
            self.report.omitted += 1

    # one record -----------------------------------------------------------------------

    def step(self, e: AuditEntry) -> None:
        self.count += 1
        self.last = e
        if e.hash == self.anchor_hash:
            self.seen_hash = e.hash
        seen = _Seen(e, self._original_seq(e))
        if seen.orig is None:
            self._unproven(seen)
        else:
            self._proven(seen, seen.orig)
            self.last_orig = max(self.last_orig, seen.orig)
            self.cps.reach(seen.orig, e)
        self._remember(seen)

    def _original_seq(self, e: AuditEntry) -> int | None:
        if e.computed_hash() == e.hash:
            return e.seq
        if e.prev_hash == GENESIS:
            cand: int | None = 1
        else:
            pred = self.behind_by_hash.get(e.prev_hash)
            cand = pred.orig + 1 if pred is not None and pred.orig is not None else None
        if cand is not None and e.computed_hash(cand) == e.hash:
            return cand
        if self.searches >= _MAX_SEARCHES:
            return None
        self.searches += 1
        for d in range(1, _SEARCH + 1):
            for c in (e.seq + d, e.seq - d):
                if c > 0 and e.computed_hash(c) == e.hash:
                    return c
        return None

    def _unproven(self, seen: _Seen) -> None:
        """A record whose hash matches no seq: edited in place, or not ours at all."""
        e = seen.entry
        expected = self.tip.entry.hash if self.tip else GENESIS
        if e.prev_hash != expected and not self._is_linked(e.hash):
            self.problem("inserted", e.seq, "a record that is not in the chain")
            self.shift = None
            return
        self.problem("edited", e.seq, "the record's content does not match its hash")
        self.tip = seen

    def _proven(self, seen: _Seen, oi: int) -> None:
        e = seen.entry
        expected = self.tip.entry.hash if self.tip else GENESIS
        if e.prev_hash == expected:
            if self.shift is not None and e.seq - oi != self.shift:
                self.problem("renumbered", e.seq, f"this record was written as seq {oi}")
        elif e.prev_hash == GENESIS or e.prev_hash in self.behind_by_hash:
            self._after_earlier(e, oi)
        elif e.prev_hash in self.ahead_hashes:
            later = next(a.seq for a in self.ahead if a.hash == e.prev_hash)
            self.problem(
                "reordered",
                e.seq,
                f"written as seq {oi}, its predecessor is stored later (seq {later})",
            )
        else:
            self._gap(e, oi)
        self.shift = e.seq - oi
        self.tip = seen

    def _after_earlier(self, e: AuditEntry, oi: int) -> None:
        """The predecessor was stored earlier than the record just before: whatever lies
        between and nothing links to was inserted; otherwise the record moved."""
        pred = self.behind_by_hash.get(e.prev_hash)
        between = list(self.behind)
        if pred is not None:
            between = between[between.index(pred) + 1 :]
        skipped = [s for s in between if not self._is_linked(s.entry.hash)]
        for s in skipped:
            self.problem("inserted", s.entry.seq, "no record of the chain points to it")
        if not skipped and e.seq != oi:
            self.problem("reordered", e.seq, f"written as seq {oi}, stored out of order")

    def _gap(self, e: AuditEntry, oi: int) -> None:
        """The predecessor is nowhere near: records were deleted, or the one before was
        rewritten and re-hashed."""
        prev_orig = self.tip.orig if self.tip else 0
        if prev_orig is not None and oi - prev_orig > 1:
            a, b = prev_orig + 1, oi - 1
            what = f"record {a} was" if a == b else f"records {a}..{b} were"
            self.problem("deleted", e.seq, f"{what} deleted just before this one")
        elif self.tip is not None:
            self.problem(
                "replaced",
                self.tip.entry.seq,
                "the record was rewritten and its hash recomputed "
                f"(record seq {e.seq} points to a different predecessor)",
            )
        else:
            self.problem("deleted", e.seq, "its predecessor is missing")


class _Checkpoints:
    """Checkpoints merged into the walk by seq, one at a time (constant memory)."""

    def __init__(self, it: Iterator[Checkpoint], key: bytes | None, walk: _Walk) -> None:
        self.it = it
        self.key = key
        self.walk = walk
        self.current = next(it, None)
        self.matched = 0
        self.forged = 0
        self.any_mac = False
        self.last: Checkpoint | None = None

    def _authentic(self, cp: Checkpoint) -> bool:
        self.any_mac = self.any_mac or cp.mac is not None
        if self.key is None:
            return True
        good = checkpoint_mac(self.key, cp.seq, cp.hash)
        if cp.mac is not None and hmac.compare_digest(cp.mac, good):
            return True
        self.forged += 1
        self.walk.problem(
            "checkpoint_forged",
            cp.seq,
            "this checkpoint does not carry a valid signature: it was written without the key",
        )
        return False

    def reach(self, orig: int, e: AuditEntry) -> None:
        """The walk reached the record written as `orig`."""
        while self.current is not None and self.current.seq <= orig:
            cp, self.current = self.current, next(self.it, None)
            if not self._authentic(cp):
                continue
            if cp.seq < orig:
                self.walk.problem(
                    "checkpoint_missing",
                    cp.seq,
                    f"record {cp.seq} was checkpointed but is not in the log",
                )
            elif cp.hash != e.hash:
                self.walk.problem(
                    "checkpoint_mismatch",
                    e.seq,
                    "this record differs from the checkpoint taken when it was written: the "
                    "log was rewritten from here or earlier",
                )
            else:
                self.matched += 1
                self.last = cp

    def finish(self, last_orig: int) -> None:
        """Checkpoints beyond the end of the log: its tail was cut."""
        beyond: Checkpoint | None = None
        while self.current is not None:
            cp, self.current = self.current, next(self.it, None)
            if self._authentic(cp) and (beyond is None or cp.seq > beyond.seq):
                beyond = cp
        if beyond is not None:
            self.walk.problem(
                "truncated",
                last_orig + 1,
                f"records {last_orig + 1}..{beyond.seq} are missing (a checkpoint shows the "
                f"log reached seq {beyond.seq}; it ends at {last_orig})",
            )


def _decrement(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


def verify_entries(
    entries: Iterable[AuditEntry],
    anchor: Head | None = None,
    *,
    checkpoints: Iterable[Checkpoint] = (),
    key: bytes | None = None,
) -> VerifyReport:
    """Walk the chain once, in constant memory, and say exactly which stored records break it,
    how, and what the walk could not prove.

    `anchor` is a head kept outside the database (``callgate audit head``); `checkpoints` are
    the store's own (`AuditStore.checkpoints`), checked against `key` when one is given."""
    walk = _Walk(checkpoints, key)
    walk.anchor_hash = anchor.hash if anchor else None
    for e in entries:
        walk.push(e)
    walk.drain()
    walk.cps.finish(walk.last_orig)
    report = walk.report
    report.count = walk.count
    report.head = Head(walk.last.seq, walk.last.hash) if walk.last else None
    if anchor is not None and walk.seen_hash is None:
        _anchor_problem(walk, anchor)
    inserted = {p.seq for p in report.problems if p.kind == "inserted"}
    unique = {(p.kind, p.seq): p for p in reversed(report.problems)}  # one per kind and record
    kept = [p for p in unique.values() if not (p.kind == "edited" and p.seq in inserted)]
    report.problems = sorted(kept, key=lambda p: p.seq)
    cps = walk.cps
    report.checkpoints = cps.matched
    report.last_checkpoint = cps.last.head() if cps.last else None
    report.signed = key is not None and cps.matched > 0 and cps.forged == 0
    report.notes = _notes(report, anchor, key, walk.last_orig, cps.any_mac)
    return report


def _anchor_problem(walk: _Walk, anchor: Head) -> None:
    if walk.last_orig < anchor.seq:
        last = walk.last_orig
        walk.problem(
            "truncated",
            last + 1,
            f"records {last + 1}..{anchor.seq} are missing (anchored head "
            f"{anchor.seq} not found; the log ends at {last})",
        )
    else:
        walk.problem(
            "anchor_mismatch",
            anchor.seq,
            "the anchored record is not in the log (it was rewritten)",
        )
    walk.report.problems.sort(key=lambda p: p.seq)


def _notes(
    report: VerifyReport, anchor: Head | None, key: bytes | None, last: int, any_mac: bool
) -> list[str]:
    """What this verification cannot prove, in plain words."""
    if anchor is not None and anchor.seq >= last:
        return []
    after = "" if anchor is None else f" after the anchor (seq {anchor.seq})"
    cp = report.last_checkpoint
    if cp is None:
        return [
            f"no checkpoint{' and no anchor' if anchor is None else ''}: records removed from "
            f"the end of the log{after} cannot be detected. Keep the output of `callgate audit "
            "head` elsewhere and pass it as --anchor, or write the log with checkpoints."
        ]
    tail = last - cp.seq
    if not report.ok:
        covered = ""
    elif tail == 0:
        covered = f"the log ends at its last checkpoint (seq {cp.seq}), as expected."
    else:
        covered = (
            f"the log holds every record up to the checkpoint at seq {cp.seq}; the {tail} "
            "record(s) after it are covered by the chain alone (cutting them leaves no trace "
            "without an anchor)."
        )
    if report.signed:
        return [f"{covered} Checkpoints are signed and the signatures match.".strip()]
    why = "not checked (no key given)" if key is None and any_mac else "not signed"
    return [
        f"{covered} Checkpoints are {why}: someone who can write to the database could cut "
        "the tail and rewrite the checkpoints to match.".strip()
    ]
