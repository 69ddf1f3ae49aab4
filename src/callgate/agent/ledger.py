"""The ledger of one run: where its time went, how many round trips and calls it took, its
tokens and what it cost. Returned on `RunResult.ledger` and recorded by observers that keep
runs (`on_run`, e.g. the audit log), so `callgate stats` can show cost per query.

Time is split three ways, and the parts add up to the run's wall time:

- `model_s`: waiting for the model (every turn, the final answer included);
- `tools_s`: the tool phases of the turns (wall time: parallel calls overlap);
- `other_s`: everything else (the loop, guards, routing, the caller consuming events).

`call_s` is the sum of the calls' own durations in the gate (queueing for a resource pool,
rate limits and retries included); when it exceeds `tools_s` the calls ran in parallel.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from callgate.messages import ToolResult, Usage

__all__ = ["Ledger", "LedgerClock"]


@dataclass(frozen=True, slots=True)
class Ledger:
    """The account of one run (see the module docstring for the time split)."""

    run_id: str
    wall_s: float
    model_s: float
    tools_s: float
    other_s: float
    call_s: float
    round_trips: int
    calls: dict[str, int]
    errors: dict[str, int]
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    model_cost_usd: float
    tool_cost_usd: float

    @property
    def cost_usd(self) -> float:
        return self.model_cost_usd + self.tool_cost_usd

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cost_usd"] = self.cost_usd
        return out


@dataclass(slots=True)
class LedgerClock:
    """What the agent loop measures while a run goes (kept on the run's state)."""

    started: float = field(default_factory=time.perf_counter)
    model_s: float = 0.0
    tools_s: float = 0.0

    def close(
        self,
        run_id: str,
        usage: Usage,
        results: Iterable[ToolResult],
        tool_cost: Mapping[str, float] | None = None,
    ) -> Ledger:
        """The ledger as of now. `tool_cost` is the declared cost per call of tools that ran
        (a call refused by the gate, or failing validation, is not charged)."""
        wall = time.perf_counter() - self.started
        calls: dict[str, int] = {}
        errors: dict[str, int] = {}
        call_s = 0.0
        tool_usd = 0.0
        prices = tool_cost or {}
        for r in results:
            calls[r.name] = calls.get(r.name, 0) + 1
            call_s += r.duration_s
            if r.error_kind is not None:
                errors[r.name] = errors.get(r.name, 0) + 1
            if r.error_kind is None or r.error_kind in ("transient", "terminal"):
                tool_usd += prices.get(r.name, 0.0)  # it ran (a crash is still billed)
        return Ledger(
            run_id=run_id,
            wall_s=wall,
            model_s=self.model_s,
            tools_s=self.tools_s,
            other_s=max(0.0, wall - self.model_s - self.tools_s),
            call_s=call_s,
            round_trips=usage.requests,
            calls=calls,
            errors=errors,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            model_cost_usd=usage.cost_usd,
            tool_cost_usd=tool_usd,
        )
