"""The gate's extension points: invocations, middleware, policy, approval and observers.

Call-time chain (fixed order, each concern optional; see `callgate.gate.core`):

    screen (the run's own `Refusal`s) ▸ resolve ▸ decode/validate ▸ policy + checks (allow /
    deny / approve) ▸ approver ▸ middleware... ▸ timeout/retry ▸ run ▸ settle the approval

Decoding and validation are built into the gate (they must run first and cannot be skipped).
Policy is a single decision taken before any middleware runs, and the same object decides what a
run may *see* at list time (`PolicyEngine.visible`), so the two can never disagree. Middleware
(rate limits, sanitisation, provenance, caching) wraps the execution and sees validated arguments.
Observers receive one `CallRecord` per call, whatever its outcome. The facts the stages learn
travel in typed fields of the `Invocation` and the `CallRecord` (decision, approval,
provenance, rate limit, sanitiser findings), never in a string-keyed bag.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from callgate.context import RunContext
from callgate.messages import Message, ToolCall, ToolResult

if TYPE_CHECKING:
    from callgate.tools.definition import Tool

Effect = Literal["allow", "deny", "approve"]
#: how strict each effect is; combining decisions keeps the strictest
SEVERITY: dict[str, int] = {"allow": 0, "approve": 1, "deny": 2}


SourceKind = Literal["user", "named_object", "trusted_tool", "approved", "untrusted", "constant"]


@dataclass(frozen=True, slots=True)
class ArgumentSource:
    """Where one argument value of a call came from, as the provenance check saw it.

    `path` is the argument's path (``to``, ``items[0].id``); `value` is the value as recorded
    (truncated, never a secret); `detail` names what it matched (the user's text span, the named
    object's kind and id, the trusted tool, the approval id) or, for ``untrusted``, why nothing did.
    """

    path: str
    value: str
    source: SourceKind
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ProvenanceReport:
    """The provenance check's findings for one call, kept on the invocation and its record so
    every decision can be explained from the audit log."""

    arguments: tuple[ArgumentSource, ...] = ()
    #: whether the call's side effect is within the run's intent scope (None: no scope set)
    in_scope: bool | None = None
    #: the action the check asked for ("allow", "approve", "deny") and why
    effect: Effect = "allow"
    reason: str = ""

    @property
    def untrusted(self) -> tuple[ArgumentSource, ...]:
        return tuple(a for a in self.arguments if a.source == "untrusted")


@dataclass(frozen=True, slots=True)
class RateLimitHit:
    """The limit that refused a call and how long until it would admit one (seconds)."""

    limit: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class SinkFinding:
    """One argument a sanitiser refused: the parameter, its sink kind and what was wrong."""

    param: str
    kind: str
    problem: str


@dataclass(slots=True)
class Invocation:
    """One proposed call on its way through the gate.

    `args` are the validated keyword arguments (never the raw ones). `history` is the
    conversation so far (user messages are trusted, tool results are not); it is empty when a
    call is executed directly. The other fields are the facts the stages learn on the way; they
    are typed (not a string-keyed bag) so every writer and reader agree, and they end up in the
    `CallRecord`:

    - `decision`: the policy's decision made stricter by the call checks;
    - `approval_id` / `approved` / `approved_by`: the approval that authorised the call (an
      `approval_id` set before the approver runs is the one the caller presents);
    - `provenance`: what the provenance check found; `rate_limit`, `sanitized`: why a
      middleware refused the call;
    - `started`: the tool's body was entered (so an approval claim is completed, not released).
    """

    call: ToolCall
    ctx: RunContext[Any]
    tool: Tool
    args: dict[str, Any]
    history: Sequence[Message] = ()
    decision: PolicyDecision | None = None
    approval_id: str | None = None
    approved: bool = False
    approved_by: str | None = None
    provenance: ProvenanceReport | None = None
    rate_limit: RateLimitHit | None = None
    sanitized: tuple[SinkFinding, ...] = ()
    started: bool = False


Next = Callable[[Invocation], Awaitable[ToolResult]]


@runtime_checkable
class Middleware(Protocol):
    """Wraps the execution of a validated, authorised call.

    Return `await next(inv)` to continue, return a `ToolResult` to short-circuit (a cache hit),
    or raise a `callgate.errors.ToolError` subclass to refuse (`ToolDenied` for rate limits and
    sanitisation). Middleware may also define `visible(tool, ctx) -> bool` to hide tools at list
    time.
    """

    async def __call__(self, inv: Invocation, next: Next) -> ToolResult: ...


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """allow, deny or approve (needs a person), with the rule that decided and why."""

    effect: Effect
    rule: str
    reason: str = ""


@runtime_checkable
class PolicyEngine(Protocol):
    def decide(self, tool: Tool, args: dict[str, Any], ctx: RunContext[Any]) -> PolicyDecision:
        """The decision for a call with validated arguments."""
        ...

    def visible(self, tool: Tool, ctx: RunContext[Any]) -> bool:
        """Whether the run may see the tool at all (False when every call would be denied)."""
        ...


@runtime_checkable
class CallCheck(Protocol):
    """A call-time check that may make the policy's decision stricter (never looser).

    It sees the whole `Invocation` (validated arguments and conversation history), which a
    `PolicyEngine` does not: provenance of untrusted values is the standard example. Return None
    to leave the decision as it is, or an "approve" / "deny" decision with its rule.
    """

    def decide(self, inv: Invocation) -> PolicyDecision | None: ...


@runtime_checkable
class Approver(Protocol):
    """Turns an "approve" decision into a verdict.

    Return normally when the call is approved (it then runs exactly once); raise
    `callgate.errors.ToolDenied` when a person denied it; raise `callgate.errors.ApprovalRequired`
    to pause the run until someone decides.
    """

    async def check(self, inv: Invocation, decision: PolicyDecision) -> None: ...


@runtime_checkable
class SettlingApprover(Approver, Protocol):
    """An approver whose approvals are claimed (a durable store): the gate settles every claim
    it was given, whatever stage ends the call.

    `settle(inv, result, reason)` is called once per approved call: with the result when the
    tool ran (`inv.started`); with the refusal's `reason` when a later stage (rate limit,
    sanitiser, provenance guard, cancellation before the tool started) stopped it, so the
    approval goes back to "approved" and a retry still runs it once; with no result when the
    tool started and was then interrupted (its effect is unknown).
    """

    async def settle(self, inv: Invocation, result: ToolResult | None, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """A call refused before the gate's own stages, by a guard of the run (the loop breaker, a
    budget, tools switched off for the step). The gate records it like any other outcome.

    `rule` names the guard ("loop:repeat", "budget:tool_calls", "tool_choice:none"); `message` is
    what the model reads; `kind` is the error kind; `stop` asks the run to end after this turn.
    """

    rule: str
    message: str
    kind: str = "denied"
    stop: bool = False


@dataclass(slots=True)
class CallRecord:
    """Everything the gate knows about one finished call, for audit, metrics and traces.

    `arguments` are the validated arguments when validation passed, else the decoded (or raw)
    ones; observers must redact them (see `callgate.redaction`) before storing them. The typed
    facts after `sensitive` are copied from the `Invocation` and the result.
    """

    call_id: str
    tool: str
    version: str | None
    ctx: RunContext[Any]
    arguments: Any
    decision: Effect | None
    rule: str | None
    error_kind: str | None
    result_summary: str
    started_at: float
    duration_s: float
    attempts: int = 1
    sensitive: frozenset[str] = frozenset()
    approval_id: str | None = None
    approved_by: str | None = None
    provenance: ProvenanceReport | None = None
    rate_limit: RateLimitHit | None = None
    sanitized: tuple[SinkFinding, ...] = ()
    #: the exception class a crashing tool raised (its text is never recorded for the model)
    error_class: str | None = None

    def facts(self) -> dict[str, Any]:
        """The optional facts that are set, as JSON-able values (for audit records)."""
        out: dict[str, Any] = {}
        if self.approved_by is not None:
            out["approved_by"] = self.approved_by
        if self.provenance is not None:
            out["provenance"] = asdict(self.provenance)
        if self.rate_limit is not None:
            out["rate_limit"] = asdict(self.rate_limit)
        if self.sanitized:
            out["sanitize"] = [asdict(f) for f in self.sanitized]
        if self.error_class is not None:
            out["error_class"] = self.error_class
        return out


@dataclass(slots=True)
class TurnRecord:
    """One model turn as seen by the agent loop."""

    ctx: RunContext[Any]
    turn: int
    model: str
    text: str
    tool_calls: list[ToolCall]
    stop_reason: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    duration_s: float
    #: sensitive parameter names of each called tool, so observers can redact the proposed
    #: arguments the same way the gate redacts validated ones
    sensitive: dict[str, frozenset[str]] = field(default_factory=dict)
    #: the tools a router offered this turn, best first (None: the run is not routed)
    routed_tools: tuple[str, ...] | None = None
    #: models that failed this turn before `model` answered, as "model: why"
    fallbacks: tuple[str, ...] = ()

    def optional_facts(self) -> dict[str, list[str]]:
        """The facts only some turns have (routing, fallbacks), by name, present only when the
        turn has them: one place decides that for every observer (audit log, telemetry)."""
        facts: dict[str, list[str]] = {}
        if self.routed_tools is not None:
            facts["routed_tools"] = list(self.routed_tools)
        if self.fallbacks:
            facts["fallbacks"] = list(self.fallbacks)
        return facts


class Observer(Protocol):
    """Receives records; must not raise (failures are logged and swallowed by the gate)."""

    def on_call(self, record: CallRecord) -> None: ...

    def on_turn(self, record: TurnRecord) -> None: ...
