"""What a model turn and a tool call cost, in US dollars.

Providers report tokens, not money. `PriceTable` turns a model name into a `Price`:

1. your overrides first (self-hosted and fine-tuned models, negotiated prices), matched by
   exact name or by a glob such as ``"llama-*"``;
2. then the maintained table of the `genai-prices` package (extra ``prices``), which works
   offline from the snapshot it ships with (nothing is fetched unless you call its updater);
3. otherwise no price (None): the run's cost stays 0 and a cost budget cannot be enforced.

Tools may declare their own cost per call (an API that bills per request): ``tools={"geocode":
0.005}``. The agent's ledger adds it to the run's cost.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from callgate.agent.budgets import Price

__all__ = ["PriceTable", "catalogue_price"]

log = logging.getLogger("callgate.pricing")

#: the catalogue is asked about this many tokens (small: long-context tiers start higher up)
_PROBE = 1000
_PER_MTOK = 1_000_000 / _PROBE


@dataclass(slots=True)
class PriceTable:
    """Model prices (overrides, then the `genai-prices` catalogue) and per-call tool costs.

    `models`: model name or glob -> `Price` (USD per million tokens); `tools`: tool name ->
    USD per call that ran; `catalogue`: consult `genai-prices` for models not overridden;
    `provider`: the catalogue's provider id when names are ambiguous ("openai", "anthropic")."""

    models: Mapping[str, Price] = field(default_factory=dict)
    tools: Mapping[str, float] = field(default_factory=dict)
    catalogue: bool = True
    provider: str | None = None

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.tools.items() if v < 0}
        if bad:
            raise ValueError(f"tool costs must not be negative: {bad}")

    def for_model(self, name: str | None) -> Price | None:
        """The price of `name`, or None when nobody knows it."""
        if not name:
            return None
        found = self.models.get(name)
        if found is not None:
            return found
        for pattern, price in self.models.items():
            if fnmatch.fnmatchcase(name, pattern):
                return price
        if self.catalogue:
            return catalogue_price(name, self.provider)
        return None

    def tool_cost(self, name: str) -> float:
        """The declared cost of one call of tool `name` that ran (0.0 when none is declared)."""
        return float(self.tools.get(name, 0.0))


@functools.lru_cache(maxsize=256)
def catalogue_price(model: str, provider: str | None = None) -> Price | None:
    """A model's current price from `genai-prices` (None when it is not installed or does not
    know the model). Tiered prices are taken at their first (short-context) tier, as of now."""
    try:
        from genai_prices import Usage, calc_price
    except ImportError:
        return None
    try:
        calc = calc_price(
            Usage(input_tokens=_PROBE, output_tokens=_PROBE), model_ref=model, provider_id=provider
        )
    except Exception:  # noqa: BLE001 - an unknown model is an ordinary answer here
        return None
    try:
        cached = calc_price(
            Usage(input_tokens=_PROBE, cache_read_tokens=_PROBE),
            model_ref=model,
            provider_id=provider,
        ).total_price
    except Exception:  # noqa: BLE001 - no cache price: cached input costs the input price
        cached = None
    return Price(
        input=round(float(calc.input_price) * _PER_MTOK, 9),
        output=round(float(calc.output_price) * _PER_MTOK, 9),
        cached_input=round(float(cached) * _PER_MTOK, 9) if cached is not None else None,
    )
