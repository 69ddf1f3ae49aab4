"""The audit log: every turn and call, redacted, hash-chained and checkpointed; verify and
replay."""

from callgate.audit.log import AuditLog
from callgate.audit.record import (
    GENESIS,
    AuditEntry,
    AuditStore,
    Checkpoint,
    Head,
    NewRecord,
    Query,
    chain_hash,
)
from callgate.audit.stores import MemoryAuditStore, open_audit_store
from callgate.audit.verify import Problem, VerifyReport, verify_entries

__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditLog",
    "AuditStore",
    "Checkpoint",
    "Head",
    "MemoryAuditStore",
    "NewRecord",
    "Problem",
    "Query",
    "VerifyReport",
    "chain_hash",
    "open_audit_store",
    "verify_entries",
]
