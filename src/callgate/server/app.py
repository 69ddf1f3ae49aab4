"""The gateway application: the JSON API, the web console and the MCP endpoint behind one
authentication, one request size limit and JSON errors.

Shutdown is graceful: uvicorn stops accepting connections and lets requests in flight finish
(every audit record is written before its response is sent, every approval is in its store
before it is reported), then the lifespan closes the MCP sessions. The stores belong to whoever
built the gate (`callgate serve` closes them after the server stopped).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import BaseRoute, Route

from callgate.agent import Agent
from callgate.audit import AuditLog
from callgate.gate.core import Gate
from callgate.server.api import GatewayApi, Roles
from callgate.server.auth import Authenticator
from callgate.server.http import AuthMiddleware, BodyLimitMiddleware, http_error, principal
from callgate.server.openapi import openapi_document


def create_app(
    gate: Gate,
    auth: Authenticator,
    *,
    audit: AuditLog | None = None,
    roles: Roles | None = None,
    max_body_bytes: int = 1_000_000,
    mcp: bool = True,
    console: bool = True,
    secure_cookies: bool = False,
    agent: Agent | None = None,
) -> Starlette:
    """The gateway for `gate`. `audit` is the log to query (pass the same `AuditLog` the gate
    writes to as an observer); without it, the first `AuditLog` among the gate's observers is
    used. With an `agent` (a model around the same gate), whole conversations run at
    ``/v1/conversations`` (server-sent events) and paused runs resume at ``/v1/runs/ID/resume``."""
    if audit is None:
        audit = next((o for o in gate.observers if isinstance(o, AuditLog)), None)
    api = GatewayApi(gate, audit, roles or Roles())
    routes: list[BaseRoute] = [*api.routes(), Route("/openapi.json", _openapi, methods=["GET"])]
    routes.append(Route("/", _root, methods=["GET"]))
    if agent is not None:
        from callgate.server.conversations import Conversations

        if agent.gate is not gate:
            raise ValueError("the agent must use the gateway's gate")
        routes.extend(Conversations(api, agent).routes())
    stack_entries: list[Any] = []
    if console:
        from callgate.server.console import Console

        routes.extend(Console(api, auth, secure_cookies=secure_cookies).routes())
    if mcp:
        from callgate.server.mcp_mount import mcp_routes

        mcp_part = mcp_routes(gate)
        routes.extend(mcp_part.routes)
        stack_entries.append(mcp_part.lifespan)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for enter in stack_entries:
                await stack.enter_async_context(enter())
            yield

    return Starlette(
        routes=routes,
        middleware=[
            Middleware(BodyLimitMiddleware, max_bytes=max_body_bytes),
            Middleware(AuthMiddleware, auth=auth),
        ],
        exception_handlers={HTTPException: http_error, Exception: http_error},
        lifespan=lifespan,
    )


async def _openapi(request: Request) -> JSONResponse:
    principal(request)
    return JSONResponse(openapi_document())


async def _root(request: Request) -> RedirectResponse:
    return RedirectResponse("/console/", status_code=303)
