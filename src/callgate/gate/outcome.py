"""One finished call as the gate's last stage sees it, and the `CallRecord` made from it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from callgate.context import RunContext
from callgate.gate.protocols import CallRecord, Effect, Invocation
from callgate.messages import ToolCall, ToolResult
from callgate.redaction import redact_text
from callgate.tools.definition import Tool


@dataclass(slots=True)
class Outcome:
    """What the stages learned about one call: filled in as it goes, finished exactly once.

    `args` are the validated arguments once validation passed, else the decoded (or raw) ones;
    `effect` and `rule` are the decision recorded for it (None when none was reached)."""

    call: ToolCall
    ctx: RunContext[Any]
    t0: float
    result: ToolResult | None = None
    tool: Tool | None = None
    args: Any = None
    effect: Effect | None = None
    rule: str | None = None
    inv: Invocation | None = None

    def end(
        self, content: str, kind: str | None, effect: Effect | None, rule: str | None
    ) -> ToolResult:
        """Finish with a refusal the gate wrote itself (nothing ran)."""
        self.result = ToolResult(
            self.call.id,
            self.call.name,
            content,
            kind,
            duration_s=time.perf_counter() - self.t0,
            rule=rule,
        )
        self.effect = effect
        self.rule = rule
        return self.result

    @classmethod
    def of(cls, inv: Invocation, result: ToolResult | None, t0: float) -> Outcome:
        """The outcome of a call that got as far as an invocation."""
        d = inv.decision
        return cls(
            inv.call,
            inv.ctx,
            t0,
            result,
            inv.tool,
            inv.args,
            d.effect if d is not None else None,
            d.rule if d is not None else None,
            inv,
        )

    @property
    def name(self) -> str:
        """The tool's name as the model should read it and records should keep it: a name no
        tool has is the model's own text, cut short and with secret-looking values masked."""
        if self.tool is not None:
            return self.tool.name
        return redact_text(self.call.name[:64])

    def record(self) -> CallRecord:
        res = self.result
        assert res is not None, "an outcome is recorded only once it has a result"
        tool, inv = self.tool, self.inv
        return CallRecord(
            call_id=self.call.id,
            tool=self.name,
            version=tool.version if tool else None,
            ctx=self.ctx,
            arguments=self.args,
            decision=self.effect,
            rule=self.rule,
            error_kind=res.error_kind,
            result_summary=res.content[:500],
            started_at=time.time() - (time.perf_counter() - self.t0),
            duration_s=res.duration_s,
            attempts=res.attempts,
            sensitive=tool.annotations.sensitive if tool else frozenset(),
            approval_id=inv.approval_id if inv and inv.approval_id else res.approval_id,
            approved_by=inv.approved_by if inv else None,
            provenance=inv.provenance if inv else None,
            rate_limit=inv.rate_limit if inv else None,
            sanitized=inv.sanitized if inv else (),
            error_class=res.error_class,
        )
