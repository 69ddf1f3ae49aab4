"""The audit log: every turn and call, redacted and hash-chained; verify and replay."""

from callgate.audit.log import (
    AuditEntry,
    AuditLog,
    AuditStore,
    Head,
    Query,
    VerifyReport,
    verify_entries,
)
from callgate.audit.stores import open_store

open_audit_store = open_store

__all__ = [
    "AuditEntry",
    "AuditLog",
    "AuditStore",
    "Head",
    "Query",
    "VerifyReport",
    "open_audit_store",
    "open_store",
    "verify_entries",
]
