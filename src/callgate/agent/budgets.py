"""Run budgets, model prices, and how much of a budget the next model turn may spend.

The token and cost budgets are checked *before* a turn as well as after it: the next request's
input is estimated (the previous turn's input and output plus what was added since, at four
characters a token; the first turn from the whole request), and the request's `max_tokens` is
capped to what is left after it. A turn that cannot fit is never sent. The estimate can be wrong
(a tokenizer is not four characters a token), so the budget is checked again after the turn; the
overshoot is then at most the estimate's error, never a whole unbounded answer.

Providers do not report prices, so `Budgets(max_cost_usd=...)` needs a `Price` for the model
(`Agent(price=Price(...))`); a model that fills `Usage.cost_usd` itself is believed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from callgate.messages import Message, Usage
from callgate.models import ModelRequest

#: the rough size of a token, for estimates only
CHARS_PER_TOKEN = 4


@dataclass(slots=True)
class Budgets:
    """Run-level limits. None means unlimited."""

    max_iterations: int = 10
    max_tool_calls: int | None = 50
    max_total_tokens: int | None = None
    max_cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class Price:
    """What one model charges, in US dollars per million tokens. `cached_input` applies to input
    tokens read from the provider's prompt cache (None: the input price)."""

    input: float
    output: float
    cached_input: float | None = None

    def __post_init__(self) -> None:
        if min(self.input, self.output, self.cached_input or 0.0) < 0:
            raise ValueError("prices must not be negative")

    def cost(self, usage: Usage) -> float:
        cached = min(usage.cache_read_tokens, usage.input_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return (
            (usage.input_tokens - cached) * self.input
            + cached * cached_price
            + usage.output_tokens * self.output
        ) / 1_000_000


def estimate_tokens(messages: Sequence[Message], request: ModelRequest | None = None) -> int:
    """A rough token count of messages (and of a request's system prompt and tools)."""
    chars = 0
    for m in messages:
        chars += len(m.content)
        for c in m.tool_calls:
            args = c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments)
            chars += len(c.name) + len(args)
    if request is not None:
        chars += len(request.system or "")
        for t in request.tools:
            chars += len(t.name) + len(t.description) + len(json.dumps(t.parameters))
    return -(-chars // CHARS_PER_TOKEN)


def output_allowance(
    budgets: Budgets, spent: Usage, next_input: int, price: Price | None
) -> int | None:
    """How many output tokens the next turn may use without crossing a budget, given its
    estimated input; None when no token or cost budget applies. Zero or less: do not send it."""
    allowed: int | None = None
    if budgets.max_total_tokens is not None:
        allowed = budgets.max_total_tokens - spent.total_tokens - next_input
    if budgets.max_cost_usd is not None and price is not None and price.output > 0:
        left_usd = budgets.max_cost_usd - spent.cost_usd - next_input * price.input / 1e6
        by_cost = int(left_usd * 1e6 / price.output)
        allowed = by_cost if allowed is None else min(allowed, by_cost)
    return allowed


def over_budget(budgets: Budgets, spent: Usage) -> str | None:
    """The budget a run has crossed, if any ("budget:tokens", "budget:cost")."""
    if budgets.max_total_tokens is not None and spent.total_tokens > budgets.max_total_tokens:
        return "budget:tokens"
    if budgets.max_cost_usd is not None and spent.cost_usd > budgets.max_cost_usd:
        return "budget:cost"
    return None


def budget_stop_text(reason: str, budgets: Budgets, spent: Usage) -> str:
    """The final answer of a run a token or cost budget stopped (no request can be afforded)."""
    if reason == "budget:cost":
        used = f"${spent.cost_usd:.4f} of ${budgets.max_cost_usd or 0:.4f}"
        what = "cost budget"
    else:
        used = f"{spent.total_tokens} of {budgets.max_total_tokens} tokens"
        what = "token budget"
    return (
        f"I had to stop before finishing: this request used up its {what} ({used}). "
        "Ask again with a larger budget or a narrower request."
    )
