"""Durable human approval: requests bound to the call and its arguments, claimed exactly once."""

from callgate.approvals.service import (
    ApprovalConflictError,
    ApprovalError,
    ApprovalExpiredError,
    ApprovalNotFoundError,
    ApprovalRequest,
    Approvals,
    ApprovalStore,
    CallbackApprover,
    MemoryApprovalStore,
)
from callgate.approvals.stores import open_approval_store

__all__ = [
    "ApprovalConflictError",
    "ApprovalError",
    "ApprovalExpiredError",
    "ApprovalNotFoundError",
    "ApprovalRequest",
    "ApprovalStore",
    "Approvals",
    "CallbackApprover",
    "MemoryApprovalStore",
    "open_approval_store",
]
