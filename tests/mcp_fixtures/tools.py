"""A callgate toolset for the MCP and gateway tests: one read-only tool, one destructive tool
that needs approval, one admin-only tool. `gate()` reads $CG_APPROVALS, $CG_AUDIT and $CG_RUNLOG
so several processes can share one approval store and count real executions."""

from __future__ import annotations

import os

from callgate import Approvals, AuditLog, Gate, Policy, Rule, Toolset, tool
from callgate.approvals import open_approval_store


@tool(read_only=True)
def lookup_order(order_id: str) -> dict:
    """Look up an order.

    Args:
        order_id: The order id, e.g. "A-1".
    """
    return {"order_id": order_id, "status": "shipped"}


@tool(destructive=True, sensitive=("card_number",))
def refund(order_id: str, amount: float, card_number: str = "4111111111111111") -> str:
    """Refund an order.

    Args:
        order_id: The order id.
        amount: Amount to refund, in euros.
        card_number: Card to refund to.
    """
    log = os.environ.get("CG_RUNLOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"refund {order_id} {amount}\n")
    return f"refunded {amount} on {order_id}"


@tool(read_only=True, tier="admin")
def list_users() -> list[str]:
    """List every user (administrators only)."""
    return ["ana", "bo"]


toolset = Toolset([lookup_order, refund, list_users])

POLICY = Policy(
    [
        Rule("admin-tools", "allow", tools="list_users", roles="admin"),
        Rule("read", "allow", tools=["lookup_order", "slow_report"]),
        Rule("refunds", "approve", tools="refund", reason="money leaves the company"),
    ]
)


def gate() -> Gate:
    """$CG_REDIS (with $CG_REDIS_PREFIX, $CG_RATE) adds a global rate limit on lookup_order
    shared by every process using the same Redis."""
    approvals = os.environ.get("CG_APPROVALS")
    audit = os.environ.get("CG_AUDIT")
    middleware = []
    if os.environ.get("CG_REDIS"):
        from callgate import Limit, RateLimiter
        from callgate.gate.middleware.ratelimit_redis import RedisRateLimitBackend

        limit = Limit(
            calls=int(os.environ.get("CG_RATE", "5")), per=600, tool="lookup_order", by="global"
        )
        backend = RedisRateLimitBackend(os.environ["CG_REDIS"])
        middleware.append(RateLimiter([limit], backend, prefix=os.environ["CG_REDIS_PREFIX"]))
    return Gate(
        toolset,
        policy=POLICY,
        approver=Approvals(open_approval_store(approvals)) if approvals else None,
        observers=[AuditLog.open(audit)] if audit else [],
        middleware=middleware,
    )


@tool(read_only=True)
async def slow_report(seconds: float = 1.0) -> str:
    """A report that takes a while (graceful shutdown tests).

    Args:
        seconds: How long it takes.
    """
    import asyncio

    await asyncio.sleep(min(seconds, 5.0))
    return f"report after {seconds} s"


toolset.register(slow_report)
