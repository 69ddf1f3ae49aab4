"""The gate in front of any MCP server: import its tools, govern them, serve them again.

The upstream's tools are imported with their own schemas (so a malformed call is refused with a
precise error before it is forwarded), decided by the policy, approved by a person when the policy
says so, rate limited and audited by the gate, and only then forwarded over one upstream session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from callgate.gate.core import Gate
from callgate.mcp.client import Target, import_tools
from callgate.mcp.loading import Governance, build_gate
from callgate.mcp.server import GateMcpServer, Identify, Identity
from callgate.tools.definition import Tool

GateFactory = Callable[[list[Tool]], Gate]


def governed(gov: Governance) -> GateFactory:
    return lambda tools: build_gate(tools, gov)


async def run_proxy_stdio(
    upstream: Target,
    make_gate: GateFactory,
    *,
    identity: Identity | None = None,
    prefix: str = "",
    name: str = "callgate-proxy",
) -> None:
    """Serve the governed upstream on stdin/stdout until the client disconnects; the upstream
    session is closed on the way out."""
    async with import_tools(upstream, prefix=prefix) as imported:
        server = GateMcpServer(make_gate(imported.tools), name=name, identity=identity)
        await server.run_stdio()


def proxy_http_app(
    upstream: Target,
    make_gate: GateFactory,
    *,
    identity: Identity | None = None,
    identify: Identify | None = None,
    prefix: str = "",
    path: str = "/mcp",
    name: str = "callgate-proxy",
) -> Starlette:
    """A streamable-HTTP app for the governed upstream. The upstream is connected when the app
    starts and closed when it stops."""
    server = GateMcpServer(Gate([]), name=name, identity=identity, identify=identify)
    inner = server.http_app(path=path)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with import_tools(upstream, prefix=prefix) as imported:
            server.gate = make_gate(imported.tools)
            async with inner.router.lifespan_context(inner):
                yield

    return Starlette(routes=inner.routes, middleware=inner.user_middleware, lifespan=lifespan)
