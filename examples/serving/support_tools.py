"""A small support-desk toolset to serve over HTTP and MCP.

    # the gateway and web console (API keys stored hashed in keys.json)
    callgate keys add --file keys.json --user ana --role support --tenant acme
    callgate keys add --file keys.json --user lead --role approver --role auditor --tenant acme
    callgate serve examples.serving.support_tools:toolset --keys keys.json \\
        --policy examples/serving/policy.yaml --approvals approvals.db --audit audit.db
    # then open http://127.0.0.1:8080/console/ and log in with the lead's key

    # the same tools as an MCP server for Claude Desktop, an IDE or any agent (stdio)
    callgate mcp serve examples.serving.support_tools:toolset --user ana --tenant acme \\
        --policy examples/serving/policy.yaml --approvals approvals.db --audit audit.db

Refunds need a person's approval: through the console, `callgate approvals approve ID`, or an
MCP client that supports elicitation.
"""

from __future__ import annotations

from callgate import Toolset, tool

ORDERS = {"A-1": {"status": "shipped", "total": 42.0}, "A-2": {"status": "lost", "total": 120.0}}


@tool(read_only=True)
def lookup_order(order_id: str) -> dict[str, object]:
    """Look up an order's status and total.

    Args:
        order_id: The order id, e.g. "A-1".
    """
    order = ORDERS.get(order_id)
    if order is None:
        return {"order_id": order_id, "found": False}
    return {"order_id": order_id, "found": True, **order}


@tool(destructive=True)
def refund(order_id: str, amount: float) -> str:
    """Refund part or all of an order.

    Args:
        order_id: The order id.
        amount: Amount to refund, in euros.
    """
    return f"refunded {amount:.2f} EUR on {order_id}"


toolset = Toolset([lookup_order, refund])
