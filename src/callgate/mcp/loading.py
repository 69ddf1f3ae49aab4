"""Turn ``module:attribute`` plus command-line options into a `Gate`.

The attribute may be a `Gate` (used as it is: its policy, approver and observers are the
application's), a `Toolset`, a list of tools, or a function returning any of these. For a bare
toolset the options supply the governance: a policy file, an approval store and an audit store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from callgate._lazy import import_object
from callgate.approvals import Approvals, open_approval_store
from callgate.audit.log import AuditLog
from callgate.gate.core import Gate
from callgate.gate.protocols import Observer
from callgate.policy.engine import Policy
from callgate.tools.definition import Tool
from callgate.tools.toolset import Toolset


@dataclass(frozen=True, slots=True)
class Governance:
    """Where policy, approvals and audit live when the target brings only tools."""

    policy: str | None = None
    approvals: str | None = None
    audit: str | None = None


def load_object(spec: str) -> Any:
    """Import ``package.module:attribute`` (the command line makes the current directory
    importable, as ``python -m`` does)."""
    obj = import_object(spec)
    if callable(obj) and not isinstance(obj, Gate | Toolset | Tool):
        obj = obj()
    return obj


def build_gate(tools: Toolset | Iterable[Tool], gov: Governance) -> Gate:
    policy = Policy.from_file(gov.policy) if gov.policy else None
    approver = Approvals(open_approval_store(gov.approvals)) if gov.approvals else None
    observers: list[Observer] = [AuditLog.open(gov.audit)] if gov.audit else []
    return Gate(tools, policy=policy, approver=approver, observers=observers)


def load_gate(spec: str, gov: Governance | None = None) -> Gate:
    """The gate named by `spec`; a bare toolset gets the governance in `gov`."""
    gov = gov or Governance()
    obj = load_object(spec)
    if isinstance(obj, Gate):
        if gov.policy or gov.approvals or gov.audit:
            raise ValueError(
                f"{spec} is a Gate with its own policy, approvals and audit; "
                "--policy/--approvals/--audit apply only to a toolset"
            )
        return obj
    if isinstance(obj, Toolset):
        return build_gate(obj, gov)
    if isinstance(obj, Tool):
        return build_gate([obj], gov)
    if isinstance(obj, list | tuple) and all(isinstance(t, Tool) for t in obj):
        return build_gate(list(obj), gov)
    raise TypeError(f"{spec} is a {type(obj).__name__}, not a Gate, Toolset or list of tools")
