"""A scripted model for gateway processes started with ``--model tests.mcp_fixtures.model:model``:
looks an order up, asks for a refund (which waits for approval), then answers."""

from __future__ import annotations

from callgate.testing import ScriptedModel, call


def model() -> ScriptedModel:
    return ScriptedModel(
        [
            call("lookup_order", {"order_id": "A-42"}, id="call_0"),
            call(
                "refund",
                {"order_id": "A-42", "amount": 129.5, "card_number": "4000123412341234"},
                id="call_1",
            ),
            "Refunded 129.50 EUR on order A-42.",
        ]
    )
