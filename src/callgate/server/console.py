"""The web console: server-rendered pages (Jinja, plain forms, one stylesheet, no build step)
behind the gateway's authentication.

Logging in takes an API key (checked like a bearer key) and sets an HMAC-signed, HttpOnly,
SameSite=Strict session cookie; every form also carries a token derived from that cookie, so a
page on another site cannot post a decision in the user's name. Pages show only the caller's
tenant, and arguments only as stored: masked for approvals, redacted in the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import anyio
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from callgate.approvals import ApprovalRequest
from callgate.audit import AuditEntry
from callgate.server.api import GatewayApi, call_stats
from callgate.server.auth import Authenticator, AuthError, Principal
from callgate.server.http import SESSION_COOKIE, ApiError, principal

_HERE = Path(__file__).resolve().parent


def _fmt_time(ts: float | None) -> str:
    from datetime import UTC, datetime

    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=repr)


class Console:
    def __init__(
        self, api: GatewayApi, auth: Authenticator, *, secure_cookies: bool = False
    ) -> None:
        self.api = api
        self.auth = auth
        self.secure_cookies = secure_cookies
        self.env = Environment(
            loader=FileSystemLoader(_HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["time"] = _fmt_time
        self.env.filters["pretty"] = _pretty

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/console/login", self.login_form, methods=["GET"]),
            Route("/console/login", self.login, methods=["POST"]),
            Route("/console/logout", self.logout, methods=["POST"]),
            Route("/console/", self.dashboard, methods=["GET"]),
            Route("/console/approvals", self.inbox, methods=["GET"]),
            Route("/console/approvals/{approval_id}", self.approval, methods=["GET"]),
            Route("/console/approvals/{approval_id}", self.decide, methods=["POST"]),
            Route("/console/conversations", self.conversations, methods=["GET"]),
            Route("/console/conversations/{conversation_id}", self.conversation, methods=["GET"]),
            Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
        ]

    # --- helpers --------------------------------------------------------------------------

    def _csrf(self, request: Request) -> str:
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return hashlib.sha256(b"csrf\x00" + cookie.encode()).hexdigest()[:32]

    def render(self, request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        who = request.scope.get("callgate.principal")
        html = self.env.get_template(name).render(
            who=who, csrf=self._csrf(request), path=request.url.path, **ctx
        )
        return HTMLResponse(html, status_code=status)

    async def _form(self, request: Request) -> dict[str, str]:
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}

    # --- login ----------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        return self.render(request, "login.html", error=None)

    async def login(self, request: Request) -> Response:
        form = await self._form(request)
        key = form.get("api_key", "").strip()
        try:
            who = await anyio.to_thread.run_sync(self.auth.bearer, key) if key else None
        except AuthError:
            who = None
        if who is None:
            return self.render(
                request, "login.html", status=401, error="That key was not accepted."
            )
        response = RedirectResponse("/console/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            self.auth.sessions.sign(who),
            httponly=True,
            samesite="strict",
            secure=self.secure_cookies,
            max_age=int(self.auth.sessions.ttl_s),
            path="/",
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # --- pages ----------------------------------------------------------------------------

    async def dashboard(self, request: Request) -> Response:
        who = principal(request)
        pending = await self._approvals(who, "pending")
        chain = stats = None
        if self.api.audit is not None and who.roles & self.api.roles.auditors:
            audit = self.api.audit
            report = await anyio.to_thread.run_sync(audit.verify)
            chain = {"ok": report.ok, "summary": report.summary(), "count": report.count}
            rows = await anyio.to_thread.run_sync(
                lambda: audit.entries(kind="call", limit=5000, newest_first=True)
            )
            stats = call_stats([e for e in rows if self.api.sees_tenant(who, e.tenant)])
        return self.render(request, "dashboard.html", pending=pending, chain=chain, stats=stats)

    async def _approvals(self, who: Principal, status: str | None) -> list[ApprovalRequest]:
        approvals = self.api.approvals
        if approvals is None:
            return []
        rows = await anyio.to_thread.run_sync(lambda: approvals.list(status, 200))
        return [r for r in rows if self.api.sees_tenant(who, r.tenant)]

    async def inbox(self, request: Request) -> Response:
        who = principal(request)
        rows = await self._approvals(who, None)
        pending = [r for r in rows if r.status == "pending"]
        decided = [r for r in rows if r.status != "pending"][:50]
        can_decide = bool(who.roles & self.api.roles.approvers)
        return self.render(
            request, "approvals.html", pending=pending, decided=decided, can_decide=can_decide
        )

    async def approval(
        self, request: Request, error: str | None = None, status: int = 200
    ) -> Response:
        who = principal(request)
        try:
            req = await self.api._get_visible(who, request.path_params["approval_id"])
        except ApiError as exc:
            return self.render(
                request,
                "message.html",
                status=exc.status_code,
                title="Not found",
                message=exc.detail,
            )
        can_decide = bool(who.roles & self.api.roles.approvers)
        return self.render(
            request, "approval.html", status=status, req=req, can_decide=can_decide, error=error
        )

    async def decide(self, request: Request) -> Response:
        who = principal(request)
        form = await self._form(request)
        if not hmac.compare_digest(form.get("csrf", ""), self._csrf(request)):
            return self.render(
                request,
                "message.html",
                status=403,
                title="Refused",
                message="The form expired; reload the page and try again.",
            )
        verdict = form.get("verdict", "")
        if verdict not in ("approve", "deny"):
            return await self.approval(request, "Choose approve or deny.", 422)
        approval_id = request.path_params["approval_id"]
        try:
            await self.api._get_visible(who, approval_id)
            await self.api.decide_as(who, approval_id, verdict, form.get("comment") or None)
        except ApiError as exc:
            return await self.approval(request, exc.detail, exc.status_code)
        return RedirectResponse(f"/console/approvals/{approval_id}", status_code=303)

    async def _entries(
        self, who: Principal, conversation_id: str | None = None, limit: int = 2000
    ) -> list[AuditEntry] | None:
        audit = self.api.audit
        if audit is None or not who.roles & self.api.roles.auditors:
            return None
        rows = await anyio.to_thread.run_sync(
            lambda: audit.entries(
                conversation_id=conversation_id, limit=limit, newest_first=conversation_id is None
            )
        )
        return [e for e in rows if self.api.sees_tenant(who, e.tenant)]

    def _no_conversations(self, request: Request) -> Response:
        """The page both conversation views answer someone without the auditor role."""
        return self.render(
            request,
            "message.html",
            status=403,
            title="No access",
            message="Conversations need the auditor role.",
        )

    async def conversations(self, request: Request) -> Response:
        rows = await self._entries(principal(request))
        if rows is None:
            return self._no_conversations(request)
        convs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        for e in rows:
            if not e.conversation_id:
                continue
            c = convs.setdefault(
                e.conversation_id,
                {
                    "id": e.conversation_id,
                    "user": e.user_id,
                    "tenant": e.tenant,
                    "calls": 0,
                    "errors": 0,
                    "last": e.ts,
                    "tools": set(),
                },
            )
            if e.kind == "call":
                c["calls"] += 1
                c["errors"] += e.data.get("error_kind") not in (None, "pending_approval")
                c["tools"].add(e.tool or "?")
        return self.render(request, "conversations.html", conversations=list(convs.values()))

    async def conversation(self, request: Request) -> Response:
        cid = request.path_params["conversation_id"]
        rows = await self._entries(principal(request), cid)
        if rows is None:
            return self._no_conversations(request)
        if not rows:
            return self.render(
                request,
                "message.html",
                status=404,
                title="Not found",
                message="No records for this conversation.",
            )
        return self.render(request, "conversation.html", cid=cid, items=timeline(rows))


def timeline(rows: list[AuditEntry]) -> list[dict[str, Any]]:
    """Records in time order, each with a bar on the conversation's time axis (offset and width
    in %): running time, or for a call waiting for a person, the wait until the same call came
    back."""
    ordered = sorted(rows, key=lambda r: r.seq)
    t0 = min(e.ts - float(e.data.get("duration_s") or 0) for e in ordered)
    span = max(max(e.ts for e in ordered) - t0, 1e-6)
    items = []
    for i, e in enumerate(ordered):
        dur = float(e.data.get("duration_s") or 0)
        begin, end, bar = e.ts - dur, e.ts, "run"
        if e.data.get("error_kind") == "pending_approval":
            call_id = e.data.get("call_id")
            later = next((x for x in ordered[i + 1 :] if x.data.get("call_id") == call_id), None)
            begin, end, bar = (
                e.ts,
                later.ts - float(later.data.get("duration_s") or 0) if later else e.ts,
                "wait",
            )
        elif e.data.get("error_kind"):
            bar = "error"
        width = max(round(100 * (end - begin) / span, 2), 0.6)
        offset = min(round(100 * (begin - t0) / span, 2), 100 - width)
        items.append({"entry": e, "offset": offset, "width": width, "bar": bar})
    return items
