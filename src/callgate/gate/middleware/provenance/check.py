"""The provenance check: per-argument sources, intent scope, remembered approvals, actions."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from callgate.context import RunContext
from callgate.errors import ToolDenied
from callgate.gate.middleware.provenance.objects import Output, read_outputs
from callgate.gate.middleware.provenance.scope import ScopeFn, in_scope, lexical_scope
from callgate.gate.middleware.provenance.text import DEFAULT_MIN_DIGITS, TextIndex, classify
from callgate.gate.middleware.provenance.trace import (
    Evidence,
    TrustedValue,
    trace_free_text,
    trace_value,
)
from callgate.gate.protocols import (
    SEVERITY,
    ArgumentSource,
    CallRecord,
    Effect,
    Invocation,
    Next,
    PolicyDecision,
    ProvenanceReport,
    TurnRecord,
)
from callgate.messages import Message, ToolResult
from callgate.serde import arguments_object
from callgate.tools.definition import Tool
from callgate.tools.provenance import ProvenanceSink, ProvenanceSource

Action = Literal["approve", "deny"]
_MAX_RUNS = 10_000
#: the worst source of a parameter's values, for policy conditions
_RANK = {"untrusted": 5, "constant": 4, "approved": 3, "trusted_tool": 2, "named_object": 1}


class ProvenanceRules(Protocol):
    """Rules that see the provenance of a call: `callgate.policy.Policy` implements it.

    Return the first matching rule's decision, or None when no rule matches (the check's own
    actions then apply).
    """

    def decide_provenance(
        self,
        tool: Tool,
        args: dict[str, Any],
        ctx: RunContext[Any],
        provenance: Mapping[str, Any],
    ) -> PolicyDecision | None: ...


@dataclass(slots=True)
class _RunMemory:
    values: dict[tuple[str, str], str] = field(default_factory=dict)
    tools: set[str] = field(default_factory=set)


def _check_action(action: str, what: str) -> Action:
    if action not in ("approve", "deny"):
        raise ValueError(f"{what} must be 'approve' or 'deny', got {action!r}")
    return action  # type: ignore[return-value]


class ProvenanceCheck:
    """Call check (`Gate(checks=[...])`) and observer (`Gate(observers=[...])`) in one.

    For each sink argument it records where the value came from (`ProvenanceReport` on
    `inv.provenance`, then on the call record and in the audit log). A value no source vouches
    for asks for `action` ("approve": a person decides; "deny"), overridable per tool
    (`actions={"send_money": "deny"}`) and per parameter (`actions={"send_money.iban": "deny"}`
    or `ProvenanceSink(action=...)` on the tool). With a `scope` (a `ScopeFn`, `ScopeRules`, or
    "lexical" for `lexical_scope(tools)`), a side-effecting tool outside the run's intent scope
    asks for `scope_action`.
    `rules` (a `Policy`) may decide instead, with conditions such as
    ``provenance.to == "untrusted"``. ``unseen="untrusted"`` also flags structured values found
    nowhere at all (not even in tool output), instead of recording them as written by the model.

    Pass `tools` (the gate's tools) so the outputs of other tools are read with their
    `provenance_source` (kinds, trusted sources) and `open_world` annotations.

    Remembered approvals: register the same object as an observer; once a person approved a call
    and it ran, its sink values (and its tool, for the scope) are trusted for the rest of that run.
    The durable channel works without it: a tool result in the history that carries an
    `approval_id` and no error marks that call's values as approved (it survives a paused run).
    """

    def __init__(
        self,
        action: Action = "approve",
        *,
        tools: Iterable[Tool] = (),
        sources: Mapping[str, ProvenanceSource] | None = None,
        scope: ScopeFn | Literal["lexical"] | None = None,
        scope_action: Action = "approve",
        actions: Mapping[str, Action] | None = None,
        rules: ProvenanceRules | None = None,
        min_digits: int = DEFAULT_MIN_DIGITS,
        unseen: Literal["constant", "untrusted"] = "constant",
    ) -> None:
        if unseen not in ("constant", "untrusted"):
            raise ValueError("unseen must be 'constant' or 'untrusted'")
        self.unseen: Literal["constant", "untrusted"] = unseen
        self.action = _check_action(action, "action")
        self.scope_action = _check_action(scope_action, "scope_action")
        self.actions = {k: _check_action(v, f"actions[{k!r}]") for k, v in (actions or {}).items()}
        self.tools: dict[str, Tool] = {t.name: t for t in tools}
        self.sources: dict[str, ProvenanceSource] = {
            name: t.annotations.provenance_source
            for name, t in self.tools.items()
            if t.annotations.provenance_source is not None
        }
        self.sources.update(sources or {})
        self.open_world = frozenset(n for n, t in self.tools.items() if t.annotations.open_world)
        # "lexical": the built-in classifier over the tools given here
        self.scope: ScopeFn | None = (
            lexical_scope(self.tools.values()) if scope == "lexical" else scope
        )
        if scope == "lexical" and not self.tools:
            raise ValueError('scope="lexical" reads tool names: pass tools=[...] too')
        self.rules = rules
        self.min_digits = min_digits
        self._runs: OrderedDict[str, _RunMemory] = OrderedDict()
        self._pending: OrderedDict[tuple[str, str], tuple[str, list[tuple[str, str]]]] = (
            OrderedDict()
        )

    # CallCheck ------------------------------------------------------------------------------

    def decide(self, inv: Invocation) -> PolicyDecision | None:
        report, decision = self.evaluate(inv)
        if report is not None:
            inv.provenance = report
            self._remember_pending(inv, report)
        return decision

    def evaluate(self, inv: Invocation) -> tuple[ProvenanceReport | None, PolicyDecision | None]:
        """The report and the decision for a call, without touching the invocation."""
        tool = inv.tool
        sinks = tool.annotations.provenance_sinks
        scoped = self.scope is not None and not tool.annotations.read_only
        if not sinks and not scoped:
            return None, None
        arguments = self._arguments(inv) if sinks else ()
        in_scope_ = self._in_scope(inv) if scoped else None
        report = ProvenanceReport(arguments, in_scope_)
        effect, rule, reason = self._effect(inv, report)
        if self.rules is not None:
            ruled = self.rules.decide_provenance(tool, inv.args, inv.ctx, _view(report, sinks))
            if ruled is not None:
                effect, rule, reason = ruled.effect, ruled.rule, ruled.reason
        report = ProvenanceReport(arguments, in_scope_, effect, reason)
        if effect == "allow":
            return report, None
        return report, PolicyDecision(effect, rule, reason)

    # Observer: remembered approvals -----------------------------------------------------------

    def on_call(self, record: CallRecord) -> None:
        key = (record.ctx.run_id, record.call_id)
        pending = self._pending.pop(key, None)
        if pending is None or record.decision != "approve" or record.error_kind is not None:
            return
        tool, values = pending
        memory = self._memory(record.ctx.run_id)
        who = record.approved_by or "a person"
        ref = f" ({record.approval_id})" if record.approval_id else ""
        for kv in values:
            memory.values[kv] = f"approved by {who}{ref} for {tool} earlier in this run"
        memory.tools.add(tool)

    def on_turn(self, record: TurnRecord) -> None:
        return None

    # pieces ------------------------------------------------------------------------------------

    def _memory(self, run_id: str) -> _RunMemory:
        memory = self._runs.get(run_id)
        if memory is None:
            memory = self._runs[run_id] = _RunMemory()
            while len(self._runs) > _MAX_RUNS:
                self._runs.popitem(last=False)
        return memory

    def _remember_pending(self, inv: Invocation, report: ProvenanceReport) -> None:
        if report.effect != "approve":
            return
        sinks = inv.tool.annotations.provenance_sinks
        values = [
            (_sink_of(sinks, a.path).kind, classify(a.value)[1])
            for a in report.arguments
            if a.source == "untrusted"
        ]
        self._pending[(inv.ctx.run_id, inv.call.id)] = (inv.tool.name, values)
        while len(self._pending) > _MAX_RUNS:
            self._pending.popitem(last=False)

    def _arguments(self, inv: Invocation) -> tuple[ArgumentSource, ...]:
        ev = self._evidence(inv)
        out: list[ArgumentSource] = []
        for param, sink in sorted(inv.tool.annotations.provenance_sinks.items()):
            if param not in inv.args:
                continue
            for path, value in _leaves(param, inv.args[param]):
                if sink.free_text:
                    out += trace_free_text(path, value, ev)
                else:
                    out.append(trace_value(path, value, sink, ev))
        return tuple(out)

    def _evidence(self, inv: Invocation) -> Evidence:
        outputs = read_outputs(inv.history, self.sources, self.open_world)
        trusted_values: list[TrustedValue] = []
        untrusted: list[Output] = []
        for out in outputs:
            if out.source is None or not out.source.is_trusted:
                untrusted.append(out)
                continue
            fields = out.source.trusted_fields
            for obj in out.objects:
                names = tuple(v for k, v in obj.fields if k in obj.name_keys)
                for k, v in obj.fields:
                    if out.source.trusted or k in fields:
                        kind = obj.kind if k in obj.id_keys else None
                        trusted_values.append(TrustedValue(kind, v, out.label, names))
            if fields:
                untrusted.append(out)  # its other fields stay untrusted
        approved = dict(self._memory(inv.ctx.run_id).values) if inv.ctx.run_id in self._runs else {}
        approved.update(self._approved_in_history(inv.history, inv.tool))
        return Evidence(
            TextIndex(_trusted_texts(inv)),
            untrusted,
            trusted_values,
            approved,
            self.min_digits,
            self.unseen,
        )

    def _approved_in_history(
        self, history: Sequence[Message], current: Tool
    ) -> dict[tuple[str, str], str]:
        calls = {c.id: c for m in history if m.role == "assistant" for c in m.tool_calls}
        out: dict[tuple[str, str], str] = {}
        for m in history:
            res = m.tool_result
            if res is None or res.approval_id is None or res.error_kind is not None:
                continue
            call = calls.get(res.call_id)
            tool = self.tools.get(res.name) or (current if current.name == res.name else None)
            if call is None or tool is None:
                continue
            args = arguments_object(call.arguments)
            for param, sink in tool.annotations.provenance_sinks.items():
                for _, value in _leaves(param, args.get(param)):
                    detail = f"approved ({res.approval_id}) for {tool.name} earlier in this run"
                    out[(sink.kind, classify(value)[1])] = detail
        return out

    def _in_scope(self, inv: Invocation) -> bool | None:
        assert self.scope is not None
        texts = [inv.ctx.request or ""] + [m.content for m in inv.history if m.role == "user"]
        allowed = self.scope(inv.ctx, texts)
        if allowed is None:
            return None
        if in_scope(inv.tool.name, allowed):
            return True
        memory = self._runs.get(inv.ctx.run_id)
        return memory is not None and inv.tool.name in memory.tools

    def _effect(self, inv: Invocation, report: ProvenanceReport) -> tuple[Effect, str, str]:
        name = inv.tool.name
        sinks = inv.tool.annotations.provenance_sinks
        effect: Effect = "allow"
        reasons: list[str] = []
        rule = "provenance"
        for arg in report.untrusted:
            param = arg.path.split("[", 1)[0].split(".", 1)[0]
            act = (
                self.actions.get(f"{name}.{param}")
                or _sink_of(sinks, arg.path).action
                or self.actions.get(name, self.action)
            )
            if SEVERITY[act] > SEVERITY[effect]:
                effect = act
            reasons.append(f"{arg.path}={arg.value!r} did not come from the user ({arg.detail})")
        if report.in_scope is False:
            act = self.actions.get(name, self.scope_action)
            if SEVERITY[act] > SEVERITY[effect]:
                effect = act
            if not reasons:
                rule = "provenance:scope"
            reasons.append(f"the user did not ask for {name}")
        if effect == "allow":
            return "allow", rule, ""
        verdict = "refused" if effect == "deny" else "needs a person's approval"
        return effect, rule, f"{name} {verdict}: " + "; ".join(reasons) + "."


def _sink_of(sinks: Mapping[str, ProvenanceSink], path: str) -> ProvenanceSink:
    return sinks.get(path.split("[", 1)[0].split(".", 1)[0], ProvenanceSink())


def _view(report: ProvenanceReport, sinks: Mapping[str, ProvenanceSink]) -> dict[str, Any]:
    """provenance.<param> (worst source of its values), .in_scope and .untrusted, for rules."""
    view: dict[str, Any] = {}
    for arg in report.arguments:
        param = arg.path.split("[", 1)[0].split(".", 1)[0]
        old = view.get(param)
        if old is None or _RANK.get(arg.source, 0) > _RANK.get(old, 0):
            view[param] = arg.source
    for param in sinks:
        view.setdefault(param, None)
    view["in_scope"] = report.in_scope
    view["untrusted"] = sorted({a.path.split("[", 1)[0] for a in report.untrusted})
    return view


def _leaves(path: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (str, int, float)):
        return [(path, str(value))]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(f"{path}[{i}]", v)]
    if isinstance(value, Mapping):
        return [leaf for k, v in value.items() for leaf in _leaves(f"{path}.{k}", v)]
    return [(path, str(value))]


def _trusted_texts(inv: Invocation) -> list[str]:
    texts = [inv.ctx.request or ""]
    texts += [m.content for m in inv.history if m.role in ("user", "system")]
    return texts


def check_provenance(inv: Invocation, **options: Any) -> ProvenanceReport | None:
    """The provenance report of one call (None when the tool has nothing to check).

    Pure: reads the tool's annotations, `inv.args`, `inv.history` and `inv.ctx.request`;
    `options` are `ProvenanceCheck`'s.
    """
    return ProvenanceCheck(**options).evaluate(inv)[0]


class ProvenanceGuard:
    """Middleware form: ``action="deny"`` refuses a call the check would not allow (`ToolDenied`,
    rule "provenance"); ``action="record"`` lets it run and only records the report. To ask a
    person instead, use `ProvenanceCheck` in `Gate(checks=[...])`."""

    def __init__(self, action: Literal["deny", "record"] = "deny", **options: Any) -> None:
        if action not in ("deny", "record"):
            raise ValueError("action must be 'deny' or 'record'")
        self.action = action
        self.check = ProvenanceCheck(**options)

    async def __call__(self, inv: Invocation, next: Next) -> ToolResult:
        report, decision = self.check.evaluate(inv)
        if report is not None:
            inv.provenance = report
        if decision is not None and self.action == "deny":
            args = report.arguments if report is not None else ()
            detail = [
                {"param": a.path, "value": a.value, "source": a.source, "detail": a.detail}
                for a in args
            ]
            raise ToolDenied(
                decision.reason, rule=decision.rule, code="untrusted_value", detail=detail
            )
        return await next(inv)
