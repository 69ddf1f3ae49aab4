"""The `Telemetry` object: spans and metrics for tool calls, model turns and runs.

See the package docstring for what is recorded. Everything here is a no-op until an
OpenTelemetry SDK provider is configured (globally, or passed to `Telemetry`)."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.trace import (
    NoOpTracerProvider,
    ProxyTracerProvider,
    Span,
    SpanKind,
    Status,
    StatusCode,
    TracerProvider,
)

from callgate.context import RunContext
from callgate.gate.protocols import CallRecord, Invocation, Next, TurnRecord
from callgate.messages import ToolResult
from callgate.redaction import DEFAULT_PATTERNS, ValuePattern, redact, redact_text

__all__ = ["Telemetry", "TelemetryMiddleware"]

_SCOPE = "callgate"
#: calls whose span the middleware made, so the observer does not make a second one
_MAX_SPANNED = 10_000
#: how often a switched-off `Telemetry` looks for a newly configured SDK (seconds)
_RECHECK_S = 1.0
#: the run whose ``invoke_agent`` span is current (run id, span)
_RUN: ContextVar[tuple[str, Span] | None] = ContextVar("callgate_telemetry_run", default=None)


def _is_noop(provider: object) -> bool:
    """Whether a provider is the API's placeholder (nobody configured an SDK)."""
    return isinstance(provider, (ProxyTracerProvider, NoOpTracerProvider))


class Telemetry:
    """Traces and metrics for the gate and the agent loop.

    Wire it in three places (each optional)::

        tel = Telemetry()
        gate = Gate(tools, middleware=[tel.middleware(), ...], observers=[tel])
        agent = Agent(model, gate, observers=[tel])
        with tel.agent_run(ctx, "support-bot"):
            await agent.run(...)

    Put its middleware first (outermost) so the span covers rate limits, cache and retries.

    Parameters:
        tracer_provider / meter_provider: explicit SDK providers; by default the global ones
            (a no-op until the application configures an SDK).
        record_content: also record the (redacted) arguments, results and model text.
        patterns: the value patterns masked in recorded content (as for the audit log).
        max_content_chars: recorded content longer than this is cut.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        record_content: bool = False,
        patterns: Iterable[ValuePattern] = DEFAULT_PATTERNS,
        max_content_chars: int = 1000,
    ) -> None:
        self._tp = tracer_provider
        self._mp = meter_provider
        self.record_content = record_content
        self.patterns = tuple(patterns)
        self.max_content_chars = max_content_chars
        self._tracer: trace.Tracer | None = None
        self._meters: _Instruments | None = None
        self._spanned: OrderedDict[tuple[int, str], None] = OrderedDict()
        self._trace_off_until = 0.0
        self._metrics_off_until = 0.0

    # switching on ------------------------------------------------------------------------

    def _tracer_or_none(self) -> trace.Tracer | None:
        """The tracer, or None while no SDK is configured. The global provider is looked at
        again at most once a second (an SDK configured later is picked up within a second), so
        switched-off telemetry costs a clock read per hook."""
        if self._tracer is not None:
            return self._tracer
        now = time.monotonic()
        if now < self._trace_off_until:
            return None
        self._trace_off_until = now + _RECHECK_S
        provider = self._tp if self._tp is not None else trace.get_tracer_provider()
        if _is_noop(provider):
            return None
        self._tracer = provider.get_tracer(_SCOPE)
        return self._tracer

    def _instruments(self) -> _Instruments | None:
        if self._meters is not None:
            return self._meters
        now = time.monotonic()
        if now < self._metrics_off_until:
            return None
        self._metrics_off_until = now + _RECHECK_S
        provider = self._mp if self._mp is not None else metrics.get_meter_provider()
        if isinstance(provider, NoOpMeterProvider) or type(provider).__name__.startswith("_Proxy"):
            return None
        self._meters = _Instruments(provider.get_meter(_SCOPE))
        return self._meters

    @property
    def enabled(self) -> bool:
        """Whether spans or metrics are recorded at all."""
        return self._tracer_or_none() is not None or self._instruments() is not None

    def middleware(self) -> TelemetryMiddleware:
        """The gate middleware that keeps the ``execute_tool`` span active while a tool runs."""
        return TelemetryMiddleware(self)

    # the run -----------------------------------------------------------------------------

    @contextmanager
    def agent_run(self, ctx: RunContext[Any], agent: str = "agent") -> Iterator[Span | None]:
        """The ``invoke_agent`` span of one run, current while the block runs (so the run's
        model and tool spans are its children). Yields None when tracing is off.

        `Agent.run` opens it for every observer that has it; opening it again for the same run
        (the application wrapped the run itself) reuses the span instead of nesting a second."""
        tracer = self._tracer_or_none()
        if tracer is None:
            yield None
            return
        current = _RUN.get()
        if current is not None and current[0] == ctx.run_id:
            yield current[1]
            return
        attrs = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent,
            **_who(ctx),
        }
        with tracer.start_as_current_span(
            f"invoke_agent {agent}", kind=SpanKind.INTERNAL, attributes=attrs
        ) as span:
            token = _RUN.set((ctx.run_id, span))
            try:
                yield span
            finally:
                _RUN.reset(token)

    # the call ----------------------------------------------------------------------------

    async def wrap_call(self, inv: Invocation, nxt: Next) -> ToolResult:
        """Run the rest of the chain inside the call's ``execute_tool`` span."""
        tracer = self._tracer_or_none()
        if tracer is None:
            return await nxt(inv)
        span = tracer.start_span(
            f"execute_tool {inv.tool.name}",
            kind=SpanKind.INTERNAL,
            attributes=self._call_start_attrs(inv),
        )
        key = (id(inv.ctx), inv.call.id)
        self._spanned[key] = None
        if len(self._spanned) > _MAX_SPANNED:
            self._spanned.popitem(last=False)
        with trace.use_span(span, end_on_exit=True, record_exception=False):
            try:
                res = await nxt(inv)
            except BaseException as e:
                # a refusal (ToolError) or cancellation; its text may hold secrets: type only
                span.set_attribute("error.type", _error_type(e))
                span.set_status(Status(StatusCode.ERROR))
                raise
            self._call_end_attrs(span, inv, res)
            return res

    def _call_start_attrs(self, inv: Invocation) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": inv.tool.name,
            "gen_ai.tool.call.id": inv.call.id,
            "gen_ai.tool.type": "function",
            **_who(inv.ctx),
        }
        if inv.tool.version:
            attrs["callgate.tool.version"] = inv.tool.version
        d = inv.decision
        if d is not None:
            attrs["callgate.decision"] = d.effect
            attrs["callgate.rule"] = d.rule
        if self.record_content:
            attrs["gen_ai.tool.call.arguments"] = self._content(
                redact(inv.args, inv.tool.annotations.sensitive, patterns=self.patterns)
            )
        return attrs

    def _call_end_attrs(self, span: Span, inv: Invocation, res: ToolResult) -> None:
        span.set_attribute("callgate.retries", max(0, res.attempts - 1))
        if inv.approved:
            span.set_attribute("callgate.approved", True)
        if res.error_kind is not None:
            span.set_attribute("error.type", res.error_kind)
            span.set_status(Status(StatusCode.ERROR))
        if self.record_content:
            span.set_attribute("gen_ai.tool.call.result", self._content(res.content))

    def on_cache(self, inv: Invocation, hit: bool) -> None:
        """A cache lookup's outcome (called by `callgate.gate.middleware.cache`): marks the
        active call span and counts the hit or miss."""
        if self._tracer is not None:
            span = trace.get_current_span()
            if span.is_recording():
                span.set_attribute("callgate.cache_hit", hit)
        meters = self._instruments()
        if meters is not None:
            counter = meters.cache_hits if hit else meters.cache_misses
            counter.add(1, {"gen_ai.tool.name": inv.tool.name})

    # observer ----------------------------------------------------------------------------

    def on_call(self, record: CallRecord) -> None:
        """Metrics for every call; a span for calls refused before the middleware ran."""
        spanned = self._spanned.pop((id(record.ctx), record.call_id), 0) is None
        if not spanned:
            tracer = self._tracer_or_none()
            if tracer is not None:
                self._refusal_span(tracer, record)
        meters = self._instruments()
        if meters is not None:
            meters.record_call(record)

    def _refusal_span(self, tracer: trace.Tracer, record: CallRecord) -> None:
        start = int(record.started_at * 1e9)
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": record.tool,
            "gen_ai.tool.call.id": record.call_id,
            "gen_ai.tool.type": "function",
            **_who(record.ctx),
        }
        if record.decision is not None:
            attrs["callgate.decision"] = record.decision
        if record.rule is not None:
            attrs["callgate.rule"] = record.rule
        if record.error_kind is not None:
            attrs["error.type"] = record.error_kind
        if self.record_content:
            attrs["gen_ai.tool.call.arguments"] = self._content(
                redact(record.arguments, record.sensitive, patterns=self.patterns)
            )
            attrs["gen_ai.tool.call.result"] = self._content(record.result_summary)
        span = tracer.start_span(
            f"execute_tool {record.tool}",
            kind=SpanKind.INTERNAL,
            attributes=attrs,
            start_time=start,
        )
        if record.error_kind is not None:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=start + int(record.duration_s * 1e9))

    def on_turn(self, record: TurnRecord) -> None:
        """A ``chat`` span (after the fact, with the turn's real start and end) and the model
        metrics: duration, tokens, cost."""
        tracer = self._tracer_or_none()
        if tracer is not None:
            self._chat_span(tracer, record)
        meters = self._instruments()
        if meters is not None:
            meters.record_turn(record)

    def _chat_span(self, tracer: trace.Tracer, record: TurnRecord) -> None:
        end = time.time_ns()
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": record.model,
            "gen_ai.usage.input_tokens": record.input_tokens,
            "gen_ai.usage.output_tokens": record.output_tokens,
            "gen_ai.response.finish_reasons": [record.stop_reason],
            "callgate.turn": record.turn,
            "callgate.cost_usd": record.cost_usd,
            **_who(record.ctx),
        }
        for name, value in record.optional_facts().items():
            attrs[f"callgate.{name}"] = value
        if self.record_content:
            attrs["gen_ai.output.text"] = self._content(record.text)
            attrs["gen_ai.output.tool_calls"] = self._content(
                [
                    {
                        "id": c.id,
                        "name": c.name,
                        "arguments": redact(
                            c.arguments,
                            record.sensitive.get(c.name, frozenset()),
                            patterns=self.patterns,
                        ),
                    }
                    for c in record.tool_calls
                ]
            )
        span = tracer.start_span(
            f"chat {record.model}",
            kind=SpanKind.CLIENT,
            attributes=attrs,
            start_time=end - int(record.duration_s * 1e9),
        )
        span.end(end_time=end)

    def _content(self, value: Any) -> str:
        """Recorded content: JSON text (strings as they are), masked, cut to the limit."""
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        text = redact_text(text, self.patterns)
        limit = self.max_content_chars
        return text if len(text) <= limit else text[:limit] + "…"


class TelemetryMiddleware:
    """The gate middleware half of `Telemetry` (see `Telemetry.middleware`)."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    async def __call__(self, inv: Invocation, next: Next) -> ToolResult:
        return await self.telemetry.wrap_call(inv, next)


class _Instruments:
    """The metric instruments, made once per meter."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.calls = meter.create_counter(
            "callgate.tool.calls", "{call}", "Tool calls by tool, outcome and decision"
        )
        self.errors = meter.create_counter(
            "callgate.tool.errors", "{call}", "Failed tool calls by tool and error kind"
        )
        self.refusals = meter.create_counter(
            "callgate.refusals", "{call}", "Calls refused, by reason (policy, rate_limit, ...)"
        )
        self.tool_duration = meter.create_histogram(
            "callgate.tool.duration", "s", "Time in the gate per call, by tool"
        )
        self.model_duration = meter.create_histogram(
            "gen_ai.client.operation.duration", "s", "Model call duration"
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", "{token}", "Tokens per model call"
        )
        self.cost = meter.create_counter("callgate.cost", "USD", "Model spend")
        self.cache_hits = meter.create_counter("callgate.cache.hits", "{call}", "Cache hits")
        self.cache_misses = meter.create_counter("callgate.cache.misses", "{call}", "Cache misses")
        self.approvals = meter.create_counter(
            "callgate.approvals.pending", "{call}", "Calls that paused for a person's approval"
        )

    def record_call(self, r: CallRecord) -> None:
        outcome = r.error_kind or "ok"
        base = {"gen_ai.tool.name": r.tool}
        self.calls.add(
            1, {**base, "callgate.outcome": outcome, "callgate.decision": str(r.decision)}
        )
        self.tool_duration.record(r.duration_s, {**base, "callgate.outcome": outcome})
        if r.error_kind is None:
            return
        self.errors.add(1, {**base, "error.type": r.error_kind})
        reason = refusal_reason(r)
        if reason == "approval":
            self.approvals.add(1, base)
        elif reason is not None:
            self.refusals.add(1, {**base, "callgate.reason": reason})

    def record_turn(self, r: TurnRecord) -> None:
        model = {"gen_ai.operation.name": "chat", "gen_ai.request.model": r.model}
        self.model_duration.record(r.duration_s, model)
        self.tokens.record(r.input_tokens, {**model, "gen_ai.token.type": "input"})
        self.tokens.record(r.output_tokens, {**model, "gen_ai.token.type": "output"})
        if r.cost_usd:
            self.cost.add(r.cost_usd, {"gen_ai.request.model": r.model})


def refusal_reason(r: CallRecord) -> str | None:
    """Why the gate refused a call (None: it ran, or failed while running)."""
    if r.error_kind == "pending_approval":
        return "approval"
    if r.rate_limit is not None:
        return "rate_limit"
    if r.sanitized:
        return "sanitize"
    if r.decision == "approve" and r.error_kind == "denied":
        return "approval"
    if r.decision == "deny":
        rule = r.rule or ""
        return "guard" if rule.startswith(("loop:", "budget:", "tool_choice:")) else "policy"
    return None


def _who(ctx: RunContext[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ctx.conversation_id:
        out["gen_ai.conversation.id"] = ctx.conversation_id
    if ctx.run_id:
        out["callgate.run_id"] = ctx.run_id
    if ctx.tenant:
        out["callgate.tenant"] = ctx.tenant
    return out


def _error_type(e: BaseException) -> str:
    kind = getattr(e, "kind", None)
    value = getattr(kind, "value", None)
    return value if isinstance(value, str) else type(e).__name__
