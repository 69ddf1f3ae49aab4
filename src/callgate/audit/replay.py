"""Replay: re-run a recorded conversation's proposed calls through today's gate, without
repeating anything that changed the world.

`replay` rebuilds each recorded model turn (identity, history, proposed calls) from an
`callgate.audit.log.AuditLog`, runs the calls through a copy of the gate that reports only to the
replay, answers approvals from the record instead of asking again, and reports every call whose
decision, error kind or result differs (`ReplayReport`).

Which tools really run again is decided per call, never by default for a side effect:

- by default only tools annotated ``read_only`` run again; every other tool answers with its
  recorded result, so validation, policy and middleware are re-checked but a payment is not
  sent twice;
- `rerun` names the read-only tools to run again (naming a tool that is not read-only is an
  error);
- `rerun_side_effects=True` runs every tool again, side effects included; the command line
  prints a warning first;
- `use_recorded_results=True` runs no tool at all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from callgate.audit.log import AuditLog
from callgate.audit.record import AuditEntry
from callgate.context import RunContext
from callgate.errors import ApprovalRequired, TerminalToolError, ToolDenied
from callgate.gate.core import Gate
from callgate.gate.protocols import CallRecord, Invocation, Next, PolicyDecision, TurnRecord
from callgate.messages import Message, ToolCall, ToolResult
from callgate.serde import canonical_json

if TYPE_CHECKING:
    from callgate.tools.definition import Tool

__all__ = ["Outcome", "ReplayReport", "ReplayedCall", "RerunChoice", "replay"]


@dataclass(slots=True)
class Outcome:
    decision: str | None
    error_kind: str | None
    result: str

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "error_kind": self.error_kind, "result": self.result}


@dataclass(slots=True)
class ReplayedCall:
    """One call compared. `reran`: its tool really ran again (else the recorded result, or no
    result because the gate refused it, stood in)."""

    call_id: str
    tool: str
    recorded: Outcome | None
    replayed: Outcome
    differences: list[str]
    arguments_redacted: bool = False
    reran: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "tool": self.tool,
            "recorded": self.recorded.to_dict() if self.recorded else None,
            "replayed": self.replayed.to_dict(),
            "differences": self.differences,
            "arguments_redacted": self.arguments_redacted,
            "reran": self.reran,
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
        reran = sum(1 for c in self.calls if c.reran)
        lines = [
            f"replayed {len(self.calls)} call(s) of {self.conversation_id}: "
            f"{len(self.changed)} differ; {reran} tool call(s) ran again, the others answered "
            "from the record"
        ]
        for c in self.calls:
            mark = "DIFF" if c.differences else "same"
            notes = ["ran again"] if c.reran else []
            if c.arguments_redacted:
                notes.append("arguments were redacted")
            note = f" ({'; '.join(notes)})" if notes else ""
            lines.append(f"  {mark} {c.call_id} {c.tool}{note}")
            for d in c.differences:
                old = getattr(c.recorded, d, None) if c.recorded else None
                lines.append(f"       {d}: {_short(old)!s} -> {_short(getattr(c.replayed, d))!s}")
        return "\n".join(lines)


def _short(v: Any, n: int = 80) -> Any:
    if isinstance(v, str) and len(v) > n:
        return v[:n] + "…"
    return v


@dataclass(frozen=True, slots=True)
class RerunChoice:
    """Which tools run again: `names` (None: every read-only tool), or all of them with
    `side_effects`."""

    names: frozenset[str] | None = None
    side_effects: bool = False
    nothing: bool = False

    def allows(self, tool: Tool) -> bool:
        if self.nothing:
            return False
        if self.side_effects:
            return True
        if self.names is not None and tool.name not in self.names:
            return False
        return tool.annotations.read_only


class _Capture:
    """Collects the replay gate's call records (decision and rule by call id)."""

    def __init__(self) -> None:
        self.records: dict[str, CallRecord] = {}

    def on_call(self, record: CallRecord) -> None:
        self.records[record.call_id] = record

    def on_turn(self, record: TurnRecord) -> None:  # pragma: no cover - gates send no turns
        pass


class _RecordedResults:
    """Innermost middleware: a tool the choice allows runs again; every other call gets its
    recorded result and the tool does not run (nothing happens twice in the world)."""

    def __init__(self, recorded: Mapping[str, Outcome], choice: RerunChoice) -> None:
        self.recorded = recorded
        self.choice = choice
        self.reran: set[str] = set()

    async def __call__(self, inv: Invocation, next: Next) -> ToolResult:
        if self.choice.allows(inv.tool):
            self.reran.add(inv.call.id)
            return await next(inv)
        rec = self.recorded.get(inv.call.id)
        if rec is None:
            raise TerminalToolError("no recorded result for this call; the tool was not run again")
        return ToolResult(inv.call.id, inv.call.name, rec.result, rec.error_kind)


class _RecordedApprover:
    """Replays a person's recorded verdict instead of asking again."""

    def __init__(self, recorded: Mapping[str, Outcome]) -> None:
        self.recorded = recorded

    async def check(self, inv: Invocation, decision: PolicyDecision) -> None:
        rec = self.recorded.get(inv.call.id)
        if rec is not None and rec.decision == "approve":
            if rec.error_kind == "pending_approval":
                raise ApprovalRequired("replay", "approval was still pending when recorded")
            if rec.error_kind != "denied":
                return
        raise ToolDenied("denied by the approver (as recorded)", rule="replay:approver")


def _replay_gate(gate: Gate, capture: _Capture, extra: Sequence[Any], approver: Any) -> Gate:
    """A copy of `gate` with the same tools, policy, checks and middleware that reports only to
    the replay (never to the live audit log) and replays recorded approvals."""
    return Gate(
        gate.toolset,
        policy=gate.policy,
        approver=approver,
        middleware=(*gate.middleware, *extra),
        observers=[capture],
        checks=getattr(gate, "checks", ()),
        limits=gate.limits,
        max_parallel=gate.max_parallel,
        resource_limits=dict(gate.resource_limits),
        max_corrections_per_run=gate.max_corrections_per_run,
        max_result_chars=gate.max_result_chars,
    )


@dataclass(slots=True)
class _Recording:
    """What the audit log kept of one conversation."""

    ctx: RunContext[Any]
    outcomes: dict[str, Outcome]
    batches: list[tuple[str, list[ToolCall]]]


def _read(log_: AuditLog, conversation_id: str) -> _Recording:
    entries = log_.entries(conversation_id=conversation_id)
    if not entries:
        raise LookupError(f"no audit records for conversation {conversation_id!r}")
    outcomes: dict[str, Outcome] = {}
    calls: list[AuditEntry] = []
    turns: list[AuditEntry] = []
    for e in entries:
        if e.kind == "call":
            outcomes[str(e.data.get("call_id"))] = Outcome(
                e.decision, e.data.get("error_kind"), str(e.data.get("result_summary", ""))
            )
            calls.append(e)
        elif e.kind == "turn":
            turns.append(e)
    first = entries[0]
    ctx: RunContext[Any] = RunContext(
        user_id=first.user_id,
        roles=frozenset(first.data.get("roles") or ()),
        tenant=first.tenant,
        request=first.data.get("request") or None,
        conversation_id=conversation_id,
    )
    return _Recording(ctx, outcomes, _batches(turns, calls))


def _batches(turns: list[AuditEntry], calls: list[AuditEntry]) -> list[tuple[str, list[ToolCall]]]:
    """The proposed calls turn by turn (from the call records when no turn was recorded)."""
    if turns:
        return [
            (
                str(t.data.get("text", "")),
                [
                    ToolCall(str(c["id"]), str(c["name"]), c.get("arguments", "{}"))
                    for c in t.data.get("tool_calls", [])
                ],
            )
            for t in turns
        ]
    out: list[tuple[str, list[ToolCall]]] = []
    for e in calls:
        args = e.data.get("arguments")
        raw = args if isinstance(args, (str, dict)) else canonical_json(args)
        out.append(("", [ToolCall(str(e.data.get("call_id")), e.tool or "", raw)]))
    return out


def _compare(call: ToolCall, new: Outcome, old: Outcome | None, reran: bool) -> ReplayedCall:
    fields = ("decision", "error_kind", "result")
    diffs = (
        list(fields) if old is None else [f for f in fields if getattr(old, f) != getattr(new, f)]
    )
    args = call.arguments if isinstance(call.arguments, str) else canonical_json(call.arguments)
    return ReplayedCall(call.id, call.name, old, new, diffs, "***" in args, reran)


def _choice(
    gate: Gate, rerun: Collection[str] | None, side_effects: bool, recorded_only: bool
) -> RerunChoice:
    if rerun is None or side_effects or recorded_only:
        return RerunChoice(None, side_effects, recorded_only)
    for name in rerun:
        if name in gate.toolset and not gate.toolset.get(name).annotations.read_only:
            raise ValueError(
                f"{name!r} is not annotated read_only, so running it again could repeat its "
                "side effect; pass rerun_side_effects=True to run it anyway"
            )
    return RerunChoice(frozenset(rerun))


async def replay(
    log_: AuditLog,
    conversation_id: str,
    gate: Gate,
    *,
    rerun: Collection[str] | None = None,
    rerun_side_effects: bool = False,
    use_recorded_results: bool = False,
) -> ReplayReport:
    """Re-run a recorded conversation's proposed calls through `gate` and compare outcomes.

    Each turn's calls run with the conversation history rebuilt from the record (user request,
    assistant turns, tool results), under the recorded identity. Approvals are replayed from the
    record, never asked again. Tools run again only as the module docstring says.

    Limits: arguments were redacted when recorded, so calls with masked values replay with
    "***" (flagged `arguments_redacted`); results are compared on the recorded (redacted,
    truncated) summary.
    """
    choice = _choice(gate, rerun, rerun_side_effects, use_recorded_results)
    rec = _read(log_, conversation_id)
    capture = _Capture()
    results_mw = _RecordedResults(rec.outcomes, choice)
    rgate = _replay_gate(gate, capture, [results_mw], _RecordedApprover(rec.outcomes))
    ctx = rec.ctx
    history: list[Message] = [Message.user(ctx.request)] if ctx.request else []
    report = ReplayReport(conversation_id)
    for turn_no, (text, calls) in enumerate(rec.batches, start=1):
        if not calls:
            continue
        ctx.turn = turn_no
        history.append(Message.assistant(text, calls))
        results = await rgate.execute_many(calls, ctx, list(history))
        for call, res in zip(calls, results, strict=True):
            cap = capture.records.get(call.id)
            summary = log_._text(res.content[:500], log_.max_summary_chars)
            new = Outcome(cap.decision if cap else None, res.error_kind, summary)
            old = rec.outcomes.get(call.id)
            report.calls.append(_compare(call, new, old, call.id in results_mw.reran))
            history.append(Message.tool(res))
    return report
