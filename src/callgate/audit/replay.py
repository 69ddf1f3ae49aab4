"""Replay: re-run a recorded conversation's proposed calls through today's gate.

`replay` rebuilds each recorded model turn (identity, history, proposed calls) from an
`callgate.audit.log.AuditLog`, runs the calls through a copy of the gate that reports only to the
replay, answers approvals from the record instead of asking again, and reports every call whose
decision, error kind or result differs (`ReplayReport`). With recorded results the tools do not
run at all. It lives apart from `callgate.audit.log` because it drives a gate, while the audit log
itself only writes and checks records; the names stay importable from `callgate.audit.log`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from callgate.audit.log import AuditEntry, AuditLog
from callgate.context import RunContext
from callgate.gate.protocols import CallRecord, TurnRecord
from callgate.serde import canonical_json

if TYPE_CHECKING:
    from callgate.gate.protocols import Invocation, PolicyDecision
    from callgate.messages import ToolCall, ToolResult


@dataclass(slots=True)
class Outcome:
    decision: str | None
    error_kind: str | None
    result: str

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "error_kind": self.error_kind, "result": self.result}


@dataclass(slots=True)
class ReplayedCall:
    call_id: str
    tool: str
    recorded: Outcome | None
    replayed: Outcome
    differences: list[str]
    arguments_redacted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "tool": self.tool,
            "recorded": self.recorded.to_dict() if self.recorded else None,
            "replayed": self.replayed.to_dict(),
            "differences": self.differences,
            "arguments_redacted": self.arguments_redacted,
        }


@dataclass(slots=True)
class ReplayReport:
    conversation_id: str
    calls: list[ReplayedCall] = field(default_factory=list)

    @property
    def changed(self) -> list[ReplayedCall]:
        return [c for c in self.calls if c.differences]

    @property
    def ok(self) -> bool:
        return not self.changed

    def summary(self) -> str:
        lines = [
            f"replayed {len(self.calls)} call(s) of {self.conversation_id}: "
            f"{len(self.changed)} differ"
        ]
        for c in self.calls:
            mark = "DIFF" if c.differences else "same"
            note = " (arguments were redacted)" if c.arguments_redacted else ""
            lines.append(f"  {mark} {c.call_id} {c.tool}{note}")
            rec = c.recorded
            for d in c.differences:
                old = getattr(rec, d, None) if rec else None
                new = getattr(c.replayed, d)
                lines.append(f"       {d}: {_short(old)!s} -> {_short(new)!s}")
        return "\n".join(lines)


def _short(v: Any, n: int = 80) -> Any:
    if isinstance(v, str) and len(v) > n:
        return v[:n] + "…"
    return v


class _Capture:
    """Collects the replay gate's call records (decision and rule by call id)."""

    def __init__(self) -> None:
        self.records: dict[str, CallRecord] = {}

    def on_call(self, record: CallRecord) -> None:
        self.records[record.call_id] = record

    def on_turn(self, record: TurnRecord) -> None:  # pragma: no cover - gates send no turns
        pass


class _RecordedResults:
    """Innermost middleware for replay with recorded results: the tool does not run; the gate
    returns what was recorded (so nothing happens twice in the world)."""

    def __init__(self, recorded: Mapping[str, Outcome]) -> None:
        self.recorded = recorded

    async def __call__(self, inv: Invocation, next: Any) -> ToolResult:
        from callgate.messages import ToolResult

        rec = self.recorded.get(inv.call.id)
        if rec is None:
            from callgate.errors import TerminalToolError

            raise TerminalToolError("no recorded result for this call")
        return ToolResult(inv.call.id, inv.call.name, rec.result, rec.error_kind)


class _RecordedApprover:
    """Replays a person's recorded verdict instead of asking again."""

    def __init__(self, recorded: Mapping[str, Outcome]) -> None:
        self.recorded = recorded

    async def check(self, inv: Invocation, decision: PolicyDecision) -> None:
        from callgate.errors import ApprovalRequired, ToolDenied

        rec = self.recorded.get(inv.call.id)
        if rec is not None and rec.decision == "approve":
            if rec.error_kind == "pending_approval":
                raise ApprovalRequired("replay", "approval was still pending when recorded")
            if rec.error_kind != "denied":
                return
        raise ToolDenied("denied by the approver (as recorded)", rule="replay:approver")


def _replay_gate(gate: Any, capture: _Capture, extra: Sequence[Any], approver: Any) -> Any:
    """A copy of `gate` with the same tools, policy and middleware that reports only to the
    replay (never to the live audit log) and replays recorded approvals."""
    from callgate.gate.core import Gate

    return Gate(
        gate.toolset,
        policy=gate.policy,
        approver=approver,
        middleware=(*gate.middleware, *extra),
        observers=[capture],
        limits=gate.limits,
        max_parallel=gate.max_parallel,
        resource_limits=dict(gate.resource_limits),
        max_corrections_per_run=gate.max_corrections_per_run,
        max_result_chars=gate.max_result_chars,
    )


async def replay(
    log_: AuditLog,
    conversation_id: str,
    gate: Any,
    *,
    use_recorded_results: bool = False,
) -> ReplayReport:
    """Re-run a recorded conversation's proposed calls through `gate` and compare outcomes.

    The calls come from the recorded model turns (or, when no turn was recorded, from the call
    records). Each turn's calls run with the conversation history rebuilt from the record (user
    request, assistant turns, tool results), under the recorded identity. Approvals are replayed
    from the record, never asked again. With `use_recorded_results` the tools do not run: the
    recorded result stands in, so only validation, policy and middleware are re-checked.

    Limits: arguments were redacted when recorded, so calls with masked values replay with
    "***" (flagged `arguments_redacted`); results are compared on the recorded (redacted,
    truncated) summary.
    """
    from callgate.messages import Message, ToolCall

    entries = log_.entries(conversation_id=conversation_id)
    if not entries:
        raise LookupError(f"no audit records for conversation {conversation_id!r}")
    recorded: dict[str, Outcome] = {}
    call_entries: list[AuditEntry] = []
    turns: list[AuditEntry] = []
    for e in entries:
        if e.kind == "call":
            cid = str(e.data.get("call_id"))
            recorded[cid] = Outcome(
                e.decision, e.data.get("error_kind"), str(e.data.get("result_summary", ""))
            )
            call_entries.append(e)
        elif e.kind == "turn":
            turns.append(e)
    first = entries[0]
    ctx = RunContext(
        user_id=first.user_id,
        roles=frozenset(first.data.get("roles") or ()),
        tenant=first.tenant,
        request=first.data.get("request") or None,
        conversation_id=conversation_id,
    )
    batches: list[tuple[str, list[ToolCall]]] = []
    if turns:
        for t in turns:
            calls = [
                ToolCall(str(c["id"]), str(c["name"]), c.get("arguments", "{}"))
                for c in t.data.get("tool_calls", [])
            ]
            batches.append((str(t.data.get("text", "")), calls))
    else:
        for e in call_entries:
            args = e.data.get("arguments")
            raw = args if isinstance(args, (str, dict)) else canonical_json(args)
            batches.append(("", [ToolCall(str(e.data.get("call_id")), e.tool or "", raw)]))

    capture = _Capture()
    extra = [_RecordedResults(recorded)] if use_recorded_results else []
    rgate = _replay_gate(gate, capture, extra, _RecordedApprover(recorded))
    history: list[Message] = [Message.user(ctx.request)] if ctx.request else []
    report = ReplayReport(conversation_id)
    for turn_no, (text, calls) in enumerate(batches, start=1):
        if not calls:
            continue
        ctx.turn = turn_no
        history.append(Message.assistant(text, calls))
        results = await rgate.execute_many(calls, ctx, list(history))
        for call, res in zip(calls, results, strict=True):
            cap = capture.records.get(call.id)
            summary = log_._text(res.content[:500], log_.max_summary_chars)
            new = Outcome(cap.decision if cap else None, res.error_kind, summary)
            old = recorded.get(call.id)
            diffs = (
                ["decision", "error_kind", "result"]
                if old is None
                else [
                    f
                    for f in ("decision", "error_kind", "result")
                    if getattr(old, f) != getattr(new, f)
                ]
            )
            masked = "***" in (
                call.arguments
                if isinstance(call.arguments, str)
                else canonical_json(call.arguments)
            )
            report.calls.append(ReplayedCall(call.id, call.name, old, new, diffs, masked))
            history.append(Message.tool(res))
    return report
