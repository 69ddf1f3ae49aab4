"""Durable human approval: requests bound to the call and its arguments, claimed exactly once."""

from callgate.approvals.model import (
    ApprovalConflictError,
    ApprovalError,
    ApprovalExpiredError,
    ApprovalNotFoundError,
    ApprovalRequest,
    ApprovalStore,
)
from callgate.approvals.service import Approvals, CallbackApprover
from callgate.approvals.stores import MemoryApprovalStore, open_approval_store

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
