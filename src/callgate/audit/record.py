"""An audit record and its hash chain, independent of where records are kept.

Records form a hash chain: each carries `seq`, `prev_hash` and
`hash = SHA-256(prev_hash || canonical JSON of the record without its hash)`, so editing,
deleting, inserting or reordering a stored record breaks the chain at a place
`callgate.audit.verify` names exactly.

A chain alone cannot show that its newest records were cut off: a shorter chain is still a valid
chain. Stores therefore also keep `Checkpoint`s of the head (every N records and when a writer
closes), in a second table, optionally signed with an HMAC key the database's writers do not
hold; `verify` compares the log with them. Stores import only this module.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from callgate.serde import canonical_json

__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditStore",
    "Checkpoint",
    "Head",
    "NewRecord",
    "Query",
    "chain_hash",
    "checkpoint_mac",
    "jsonable",
]

GENESIS = "0" * 64
"""The `prev_hash` of the first record."""


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

    def stored(self, seq: int, prev_hash: str, digest: str) -> AuditEntry:
        """This record as the entry stored under `seq` (`digest` is taken as given: `seal`
        computes it, a store that hashes the JSON it writes passes its own)."""
        return AuditEntry(
            self.ts,
            self.kind,
            self.conversation_id,
            self.run_id,
            self.user_id,
            self.tenant,
            self.tool,
            self.decision,
            self.data,
            seq,
            prev_hash,
            digest,
        )

    def seal(self, seq: int, prev_hash: str) -> AuditEntry:
        draft = self.stored(seq, prev_hash, "")
        return self.stored(seq, prev_hash, draft.computed_hash())


@dataclass(frozen=True, slots=True)
class AuditEntry(NewRecord):
    """One stored record: a `NewRecord` with its place in the chain. `data` holds the
    kind-specific payload (already redacted)."""

    seq: int
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


def _encodable(text: str) -> str:
    """The text with lone surrogates (which a model can send escaped, and no database or hash
    can encode) replaced by U+FFFD, so a call carrying one is still recorded."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def jsonable(value: Any) -> Any:
    """A JSON-safe copy: unknown objects become strings, non-finite floats become strings, so
    every record serialises the same way on every backend."""
    cls = value.__class__
    if cls is str:
        return value if value.isascii() else _encodable(value)
    if cls is int or cls is bool or value is None:
        return value
    if cls is dict:  # the common case, without the slower abstract-class checks
        return {
            jsonable(k if k.__class__ is str else str(k)): jsonable(v) for k, v in value.items()
        }
    if cls is list:
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, int, str)):
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


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The head as it was at time `ts`: the log held record `seq` with hash `hash` then.

    `mac` is HMAC-SHA256 over seq and hash with the log's checkpoint key (None when the log has
    no key): whoever can edit the database but does not hold the key cannot forge one."""

    seq: int
    hash: str
    ts: float
    mac: str | None = None

    def head(self) -> Head:
        return Head(self.seq, self.hash)


def checkpoint_mac(key: bytes, seq: int, digest: str) -> str:
    """The signature of a checkpoint (domain-separated, so it is useless anywhere else)."""
    msg = f"callgate-audit-checkpoint:{seq}:{digest}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def make_checkpoint(seq: int, digest: str, ts: float, key: bytes | None) -> Checkpoint:
    return Checkpoint(seq, digest, ts, checkpoint_mac(key, seq, digest) if key else None)


@runtime_checkable
class AuditStore(Protocol):
    """Where records live. `append` must assign seq and hashes atomically (one transaction,
    serialised against every other writer) and return the sealed entry; it also writes a
    checkpoint when the new seq is a multiple of `checkpoint_every` (0: never)."""

    checkpoint_every: int
    checkpoint_key: bytes | None

    def append(self, record: NewRecord) -> AuditEntry: ...

    def query(self, q: Query) -> list[AuditEntry]: ...

    def iter_all(self) -> Iterator[AuditEntry]:
        """Every stored row in seq order, exactly as stored, a page at a time (verification
        reads this and must not hold the log in memory)."""
        ...

    def head(self) -> Head | None: ...

    def checkpoint(self) -> Checkpoint | None:
        """Record the current head as a checkpoint now (None for an empty log)."""
        ...

    def checkpoints(self) -> Iterator[Checkpoint]:
        """Every checkpoint, in seq order."""
        ...

    def close(self) -> None:
        """Release the connection; a store that appended records checkpoints its head first."""
        ...
