"""The gateway's JSON API: tools a caller may see, calls through the full gate, the approvals
inbox and audit queries. Every handler acts as the authenticated caller: their user, roles and
tenant are the `RunContext` the gate and the policy decide against, and they see only their
tenant's approvals and records (a caller without a tenant and with the admin role sees all)."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from callgate.approvals import (
    ApprovalConflictError,
    ApprovalError,
    ApprovalExpiredError,
    ApprovalNotFoundError,
    ApprovalRequest,
    Approvals,
)
from callgate.audit import AuditEntry, AuditLog
from callgate.context import RunContext
from callgate.dialects import export_tools
from callgate.gate.core import Gate
from callgate.messages import ToolCall, ToolResult
from callgate.server.auth import Principal
from callgate.server.http import ApiError, principal, read_json

DIALECTS = ("neutral", "openai_chat", "openai_responses", "anthropic", "gemini")
MAX_CALLS_PER_REQUEST = 64
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:")


@dataclass(frozen=True, slots=True)
class Roles:
    """Which roles may decide approvals and read the audit log; `admin` also crosses tenants
    (when the admin has no tenant of their own)."""

    approvers: frozenset[str] = frozenset({"approver", "admin"})
    auditors: frozenset[str] = frozenset({"auditor", "approver", "admin"})
    admin: str = "admin"


def run_scope(who: Principal) -> str:
    """A per-caller prefix for run ids, so no caller can present another caller's run (and
    ride an approval given for it)."""
    raw = f"{who.user_id}\x00{who.tenant or ''}".encode()
    return "u" + hashlib.sha256(raw).hexdigest()[:10]


def _check_id(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 128 or set(value) - _ID_CHARS:
        raise ApiError(422, "invalid", f"'{what}' must be 1-128 letters, digits or _-.:")
    return value


def result_json(res: ToolResult) -> dict[str, Any]:
    return {
        "call_id": res.call_id,
        "name": res.name,
        "ok": not res.is_error,
        "content": res.content,
        "error_kind": res.error_kind,
        "rule": res.rule,
        "approval_id": res.approval_id,
        "duration_s": round(res.duration_s, 6),
    }


def approval_json(req: ApprovalRequest) -> dict[str, Any]:
    out = dataclasses.asdict(req)
    out["describe"] = req.describe()
    return out


def entry_json(e: AuditEntry) -> dict[str, Any]:
    """An entry as the API shows it: every field but `prev_hash` (the chain is checked by
    ``/v1/audit/verify``, not by readers)."""
    out = e.to_dict()
    del out["prev_hash"]
    return out


@dataclass(slots=True)
class GatewayApi:
    gate: Gate
    audit: AuditLog | None = None
    roles: Roles = field(default_factory=Roles)

    @property
    def approvals(self) -> Approvals | None:
        approver = self.gate.approver
        return approver if isinstance(approver, Approvals) else None

    def context(
        self, who: Principal, conversation_id: str | None = None, run_id: str | None = None
    ) -> RunContext[Any]:
        scope = run_scope(who)
        ctx: RunContext[Any] = RunContext(user_id=who.user_id, roles=who.roles, tenant=who.tenant)
        ctx.run_id = f"{scope}.{run_id}" if run_id else f"{scope}.{uuid.uuid4().hex[:16]}"
        if conversation_id or run_id:  # a run's calls form one conversation unless told
            ctx.conversation_id = f"{scope}.{conversation_id or run_id}"
        return ctx

    def sees_tenant(self, who: Principal, tenant: str | None) -> bool:
        if who.tenant is None and self.roles.admin in who.roles:
            return True
        return tenant == who.tenant

    def routes(self) -> list[Route]:
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/v1/me", self.me, methods=["GET"]),
            Route("/v1/tools", self.tools, methods=["GET"]),
            Route("/v1/execute", self.execute, methods=["POST"]),
            Route("/v1/approvals", self.list_approvals, methods=["GET"]),
            Route("/v1/approvals/{approval_id}", self.show_approval, methods=["GET"]),
            Route("/v1/approvals/{approval_id}/{verdict:str}", self.decide, methods=["POST"]),
            Route("/v1/audit", self.audit_entries, methods=["GET"]),
            Route("/v1/audit/verify", self.audit_verify, methods=["GET"]),
            Route("/v1/stats", self.stats, methods=["GET"]),
        ]

    # --- handlers ---------------------------------------------------------------------------

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def me(self, request: Request) -> JSONResponse:
        who = principal(request)
        return JSONResponse({**who.to_json(), "method": who.method})

    async def tools(self, request: Request) -> JSONResponse:
        who = principal(request)
        dialect = request.query_params.get("dialect", "neutral")
        if dialect not in DIALECTS:
            raise ApiError(422, "invalid", f"unknown dialect; use one of {', '.join(DIALECTS)}")
        visible = self.gate.list_tools(self.context(who))
        if dialect == "neutral":
            tools: list[dict[str, Any]] = [
                {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.spec.parameters,
                    "version": t.version,
                    "read_only": t.annotations.read_only,
                    "destructive": t.annotations.destructive,
                }
                for t in visible
            ]
        else:
            tools = export_tools([t.spec for t in visible], dialect)  # type: ignore[arg-type]
        return JSONResponse({"dialect": dialect, "tools": tools})

    async def execute(self, request: Request) -> JSONResponse:
        who = principal(request)
        body = await read_json(request)
        calls = _parse_calls(body)
        ctx = self.context(
            who,
            _check_id(body.get("conversation_id"), "conversation_id"),
            _check_id(body.get("run_id"), "run_id"),
        )
        results = await self.gate.execute_many(calls, ctx)
        await self.gate.flush_records()  # an acknowledged call is on disk
        return JSONResponse(
            {
                "run_id": ctx.run_id.split(".", 1)[1],
                "results": [result_json(r) for r in results],
            }
        )

    def _approvals(self) -> Approvals:
        approvals = self.approvals
        if approvals is None:
            raise ApiError(404, "not_found", "this gateway has no approval store")
        return approvals

    async def list_approvals(self, request: Request) -> JSONResponse:
        who = principal(request)
        status = request.query_params.get("status") or None
        approvals = self._approvals()
        try:
            rows = await anyio.to_thread.run_sync(lambda: approvals.list(status, 200))
        except ApprovalError as exc:
            raise ApiError(422, "invalid", str(exc)) from None
        visible = [approval_json(r) for r in rows if self.sees_tenant(who, r.tenant)]
        return JSONResponse({"approvals": visible})

    async def _get_visible(self, who: Principal, approval_id: str) -> ApprovalRequest:
        approvals = self._approvals()
        try:
            req = await anyio.to_thread.run_sync(approvals.get, approval_id)
        except ApprovalNotFoundError:
            req = None
        if req is None or not self.sees_tenant(who, req.tenant):
            raise ApiError(404, "not_found", f"no approval request {approval_id!r}")
        return req

    async def show_approval(self, request: Request) -> JSONResponse:
        req = await self._get_visible(principal(request), request.path_params["approval_id"])
        return JSONResponse(approval_json(req))

    async def decide(self, request: Request) -> JSONResponse:
        who = principal(request)
        verdict = request.path_params["verdict"]
        if verdict not in ("approve", "deny"):
            raise ApiError(404, "not_found", "use /approve or /deny")
        body = await read_json(request)
        comment = body.get("comment") if isinstance(body, dict) else None
        if comment is not None and not isinstance(comment, str):
            raise ApiError(422, "invalid", "'comment' must be a string")
        req = await self._get_visible(who, request.path_params["approval_id"])
        decided = await self.decide_as(who, req.id, verdict, comment)
        return JSONResponse(approval_json(decided))

    async def decide_as(
        self, who: Principal, approval_id: str, verdict: str, comment: str | None
    ) -> ApprovalRequest:
        """Approve or deny as `who` (shared by the API and the console)."""
        if not who.roles & self.roles.approvers:
            raise ApiError(403, "forbidden", "deciding approvals needs the approver role")
        approvals = self._approvals()
        fn = approvals.approve if verdict == "approve" else approvals.deny
        try:
            return await anyio.to_thread.run_sync(
                lambda: fn(approval_id, by=who.user_id, comment=comment or None)
            )
        except ApprovalExpiredError as exc:
            raise ApiError(409, "expired", str(exc)) from None
        except ApprovalConflictError as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        except ApprovalError as exc:
            raise ApiError(403, "forbidden", str(exc)) from None

    def _audit(self, who: Principal) -> AuditLog:
        if self.audit is None:
            raise ApiError(404, "not_found", "this gateway keeps no audit log")
        if not who.roles & self.roles.auditors:
            raise ApiError(403, "forbidden", "reading the audit log needs the auditor role")
        return self.audit

    async def audit_entries(self, request: Request) -> JSONResponse:
        who = principal(request)
        audit = self._audit(who)
        q = request.query_params
        try:
            limit = int(q.get("limit", "100"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            raise ApiError(422, "invalid", "'limit' must be an integer from 1 to 1000")
        rows = await anyio.to_thread.run_sync(
            lambda: audit.entries(
                conversation_id=q.get("conversation_id"),
                user_id=q.get("user"),
                tool=q.get("tool"),
                decision=q.get("decision"),
                kind=q.get("kind"),
                limit=limit,
                newest_first=True,
            )
        )
        return JSONResponse(
            {"entries": [entry_json(e) for e in rows if self.sees_tenant(who, e.tenant)]}
        )

    async def audit_verify(self, request: Request) -> JSONResponse:
        audit = self._audit(principal(request))
        report = await anyio.to_thread.run_sync(audit.verify)
        return JSONResponse(
            {
                "ok": report.ok,
                "count": report.count,
                "summary": report.summary(),
                "head": str(report.head) if report.head else None,
                "problems": [
                    {"kind": p.kind, "seq": p.seq, "message": p.message} for p in report.problems
                ],
            }
        )

    async def stats(self, request: Request) -> JSONResponse:
        who = principal(request)
        audit = self._audit(who)
        rows = await anyio.to_thread.run_sync(
            lambda: audit.entries(kind="call", limit=10_000, newest_first=True)
        )
        return JSONResponse(call_stats([e for e in rows if self.sees_tenant(who, e.tenant)]))


def call_stats(rows: list[AuditEntry]) -> dict[str, Any]:
    """Calls, errors and latency per tool, and decisions overall, from call records."""
    per_tool: dict[str, dict[str, Any]] = {}
    decisions: Counter[str] = Counter()
    for e in rows:
        tool = e.tool or "?"
        s = per_tool.setdefault(tool, {"calls": 0, "errors": 0, "durations": []})
        s["calls"] += 1
        if e.data.get("error_kind") not in (None, "pending_approval"):  # waiting is no error
            s["errors"] += 1
        d = e.data.get("duration_s")
        if isinstance(d, int | float):
            s["durations"].append(float(d))
        decisions[e.decision or "none"] += 1
    out: dict[str, Any] = {"tools": {}, "decisions": dict(decisions), "calls": len(rows)}
    for tool, s in sorted(per_tool.items()):
        ds = sorted(s["durations"])
        p50 = ds[len(ds) // 2] if ds else None
        out["tools"][tool] = {"calls": s["calls"], "errors": s["errors"], "p50_s": p50}
    return out


def _parse_calls(body: Any) -> list[ToolCall]:
    if not isinstance(body, dict) or not isinstance(body.get("calls"), list):
        raise ApiError(422, "invalid", 'send {"calls": [{"id", "name", "arguments"}]}')
    raw_calls = body["calls"]
    if not 0 < len(raw_calls) <= MAX_CALLS_PER_REQUEST:
        raise ApiError(422, "invalid", f"send 1 to {MAX_CALLS_PER_REQUEST} calls")
    calls: list[ToolCall] = []
    seen: set[str] = set()
    for i, c in enumerate(raw_calls):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or len(c["name"]) > 200:
            raise ApiError(422, "invalid", f"calls[{i}] needs a string 'name' (≤ 200 chars)")
        raw_id = c.get("id")
        call_id = _check_id(raw_id, f"calls[{i}].id") or f"call_{i}"  # None: numbered
        if call_id in seen:
            raise ApiError(422, "invalid", f"calls[{i}].id {call_id!r} is used twice")
        seen.add(call_id)
        args = c.get("arguments", {})
        if not isinstance(args, dict | str):
            raise ApiError(422, "invalid", f"calls[{i}].arguments must be an object or a string")
        calls.append(ToolCall(call_id, c["name"], args))
    return calls
