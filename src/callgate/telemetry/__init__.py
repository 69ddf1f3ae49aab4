"""OpenTelemetry traces and metrics for the gate and the agent loop (extra ``otel``).

One `Telemetry` object is three things at once:

- a gate middleware (`Telemetry.middleware()`): an ``execute_tool`` span that is *active while
  the tool runs*, so a tool that makes an HTTP call with an instrumented client continues the
  trace (sync tools run in worker threads with the caller's context copied);
- a gate and agent observer (`on_call`, `on_turn`): a ``chat`` span per model turn, an
  ``execute_tool`` span for calls refused before any middleware ran (unknown tool, invalid
  arguments, policy denial), and the metrics;
- a context manager for the run (`Telemetry.agent_run`): the ``invoke_agent`` span every other
  span of the run hangs under.

Names follow the OpenTelemetry GenAI semantic conventions (``gen_ai.*``); what the conventions do
not cover (decision, rule, cache hit, refusals) is under ``callgate.*``. Arguments and results
are recorded only with ``record_content=True`` and are always redacted by the audit log's rules
(`callgate.redaction`).

Zero cost when nobody configured an OpenTelemetry SDK: with the API's default (no-op) providers
every hook returns at once, before any attribute is built.
"""

from callgate.telemetry.core import Telemetry, TelemetryMiddleware

__all__ = ["Telemetry", "TelemetryMiddleware"]
