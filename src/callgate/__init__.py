"""callgate: the gate every LLM tool call passes through.

A model proposes a call; callgate decodes and validates it, applies policy, approval and limits,
runs it with timeouts and retries where safe, and hands the model a result it can act on.

Public names are loaded on first use, so `import callgate` stays cheap for processes that only
need a part of it (the CLI, a worker that only audits).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callgate._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Agent": "callgate.agent.loop",
    "Budgets": "callgate.agent.budgets",
    "Price": "callgate.agent.budgets",
    "RunResult": "callgate.agent.loop",
    "OutputMissing": "callgate.agent.loop",
    "Router": "callgate.agent.router",
    "FallbackModel": "callgate.providers.fallback",
    "SplitModel": "callgate.providers.fallback",
    "Approvals": "callgate.approvals.service",
    "CallbackApprover": "callgate.approvals.service",
    "open_approval_store": "callgate.approvals.stores",
    "open_audit_store": "callgate.audit",
    "AuditLog": "callgate.audit.log",
    "RunContext": "callgate.context",
    "ApprovalRequired": "callgate.errors",
    "CallgateError": "callgate.errors",
    "ErrorKind": "callgate.errors",
    "SchemaError": "callgate.errors",
    "TerminalToolError": "callgate.errors",
    "ToolDenied": "callgate.errors",
    "ToolError": "callgate.errors",
    "ToolRetry": "callgate.errors",
    "TransientToolError": "callgate.errors",
    "Gate": "callgate.gate.core",
    "Telemetry": "callgate.telemetry",
    "CacheMiddleware": "callgate.gate.middleware.cache",
    "MemoryCache": "callgate.gate.middleware.cache",
    "RedisCache": "callgate.gate.middleware.cache_redis",
    "RedisRateLimitBackend": "callgate.gate.middleware.ratelimit_redis",
    "ProvenanceCheck": "callgate.gate.middleware.provenance",
    "ProvenanceGuard": "callgate.gate.middleware.provenance",
    "ProvenanceSink": "callgate.tools.provenance",
    "ProvenanceSource": "callgate.tools.provenance",
    "ScopeRules": "callgate.gate.middleware.provenance.scope",
    "Limit": "callgate.gate.middleware.ratelimit",
    "RateLimiter": "callgate.gate.middleware.ratelimit",
    "Sanitizer": "callgate.gate.middleware.sanitize",
    "Approver": "callgate.gate.protocols",
    "CallCheck": "callgate.gate.protocols",
    "CallRecord": "callgate.gate.protocols",
    "Invocation": "callgate.gate.protocols",
    "Middleware": "callgate.gate.protocols",
    "Observer": "callgate.gate.protocols",
    "PolicyDecision": "callgate.gate.protocols",
    "Refusal": "callgate.gate.protocols",
    "SettlingApprover": "callgate.gate.protocols",
    "TurnRecord": "callgate.gate.protocols",
    "Message": "callgate.messages",
    "ToolCall": "callgate.messages",
    "ToolResult": "callgate.messages",
    "Usage": "callgate.messages",
    "Model": "callgate.models",
    "ModelRequest": "callgate.models",
    "ModelResponse": "callgate.models",
    "NamedToolChoice": "callgate.models",
    "DefaultPolicy": "callgate.policy.engine",
    "Policy": "callgate.policy.engine",
    "Rule": "callgate.policy.engine",
    "open_run_store": "callgate.runs",
    "ExecutionOptions": "callgate.tools.definition",
    "Tool": "callgate.tools.definition",
    "ToolAnnotations": "callgate.tools.definition",
    "ToolSpec": "callgate.tools.definition",
    "tool": "callgate.tools.definition",
    "Toolset": "callgate.tools.toolset",
    "FunctionModel": "callgate.testing",
    "ScriptedModel": "callgate.testing",
}

__all__ = [
    "Agent",
    "ApprovalRequired",
    "Approvals",
    "Approver",
    "AuditLog",
    "Budgets",
    "CacheMiddleware",
    "CallCheck",
    "CallRecord",
    "CallbackApprover",
    "CallgateError",
    "DefaultPolicy",
    "ErrorKind",
    "ExecutionOptions",
    "FallbackModel",
    "FunctionModel",
    "Gate",
    "Invocation",
    "Limit",
    "MemoryCache",
    "Message",
    "Middleware",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "NamedToolChoice",
    "Observer",
    "OutputMissing",
    "Policy",
    "PolicyDecision",
    "Price",
    "ProvenanceCheck",
    "ProvenanceGuard",
    "ProvenanceSink",
    "ProvenanceSource",
    "RateLimiter",
    "RedisCache",
    "RedisRateLimitBackend",
    "Refusal",
    "Router",
    "Rule",
    "RunContext",
    "RunResult",
    "Sanitizer",
    "SchemaError",
    "ScopeRules",
    "ScriptedModel",
    "SettlingApprover",
    "SplitModel",
    "Telemetry",
    "TerminalToolError",
    "Tool",
    "ToolAnnotations",
    "ToolCall",
    "ToolDenied",
    "ToolError",
    "ToolResult",
    "ToolRetry",
    "ToolSpec",
    "Toolset",
    "TransientToolError",
    "TurnRecord",
    "Usage",
    "open_approval_store",
    "open_audit_store",
    "open_run_store",
    "tool",
]

if TYPE_CHECKING:
    from callgate.agent.budgets import Budgets, Price
    from callgate.agent.loop import Agent, OutputMissing, RunResult
    from callgate.agent.router import Router
    from callgate.approvals.service import Approvals, CallbackApprover
    from callgate.approvals.stores import open_approval_store
    from callgate.audit import open_audit_store
    from callgate.audit.log import AuditLog
    from callgate.context import RunContext
    from callgate.errors import (
        ApprovalRequired,
        CallgateError,
        ErrorKind,
        SchemaError,
        TerminalToolError,
        ToolDenied,
        ToolError,
        ToolRetry,
        TransientToolError,
    )
    from callgate.gate.core import Gate
    from callgate.gate.middleware.cache import CacheMiddleware, MemoryCache
    from callgate.gate.middleware.cache_redis import RedisCache
    from callgate.gate.middleware.provenance import ProvenanceCheck, ProvenanceGuard
    from callgate.gate.middleware.provenance.scope import ScopeRules
    from callgate.gate.middleware.ratelimit import Limit, RateLimiter
    from callgate.gate.middleware.ratelimit_redis import RedisRateLimitBackend
    from callgate.gate.middleware.sanitize import Sanitizer
    from callgate.gate.protocols import (
        Approver,
        CallCheck,
        CallRecord,
        Invocation,
        Middleware,
        Observer,
        PolicyDecision,
        Refusal,
        SettlingApprover,
        TurnRecord,
    )
    from callgate.messages import Message, ToolCall, ToolResult, Usage
    from callgate.models import Model, ModelRequest, ModelResponse, NamedToolChoice
    from callgate.policy.engine import DefaultPolicy, Policy, Rule
    from callgate.providers.fallback import FallbackModel, SplitModel
    from callgate.runs import open_run_store
    from callgate.telemetry import Telemetry
    from callgate.testing import FunctionModel, ScriptedModel
    from callgate.tools.definition import ExecutionOptions, Tool, ToolAnnotations, ToolSpec, tool
    from callgate.tools.provenance import ProvenanceSink, ProvenanceSource
    from callgate.tools.toolset import Toolset


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
