"""The MCP endpoint inside the gateway (``/mcp``, streamable HTTP), behind the gateway's
authentication: the caller's identity comes from their API key or JWT, never from the client."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute

from callgate.gate.core import Gate
from callgate.mcp.server import GateMcpServer, Identity
from callgate.server.auth import Principal


def identify(request: Request) -> Identity | None:
    who = request.scope.get("callgate.principal")
    if not isinstance(who, Principal):
        return None
    return Identity(user_id=who.user_id, roles=who.roles, tenant=who.tenant)


@dataclass(frozen=True, slots=True)
class McpPart:
    routes: list[BaseRoute]
    lifespan: Callable[[], AbstractAsyncContextManager[Any]]


def mcp_routes(gate: Gate, *, path: str = "/mcp") -> McpPart:
    server = GateMcpServer(gate, name="callgate-gateway", identify=identify)
    inner = server.http_app(path=path)
    return McpPart(list(inner.routes), server.server.session_manager.run)
