"""``callgate mcp serve`` and ``callgate mcp proxy``.

On stdio the caller's identity comes from configuration (``--user``, ``--role``, ``--tenant``, or
the ``CALLGATE_USER``/``CALLGATE_ROLES``/``CALLGATE_TENANT`` environment variables), because one
process serves one client. ``--transport http`` serves streamable HTTP on loopback with the same
configured identity; for authenticated, multi-user HTTP use ``callgate serve``, which mounts the
MCP endpoint behind the gateway's authentication.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callgate.mcp.loading import Governance
    from callgate.mcp.server import Identity

# The MCP SDK, the gate and the stores are imported when a command runs, not when the parser is
# built: every `callgate` command builds the whole parser, and the SDK alone takes a second.


def identity_from(args: argparse.Namespace) -> Identity:
    from callgate.mcp.server import Identity

    user = args.user or os.environ.get("CALLGATE_USER") or None
    roles = list(args.role or []) or [
        r for r in os.environ.get("CALLGATE_ROLES", "").split(",") if r.strip()
    ]
    tenant = args.tenant or os.environ.get("CALLGATE_TENANT") or None
    return Identity(user_id=user, roles=frozenset(r.strip() for r in roles), tenant=tenant)


def _governance(args: argparse.Namespace) -> Governance:
    from callgate.mcp.loading import Governance

    return Governance(policy=args.policy, approvals=args.approvals, audit=args.audit)


def _serve_http(app: Any, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)


def cmd_serve(args: argparse.Namespace) -> int:
    import anyio

    from callgate.mcp.loading import load_gate
    from callgate.mcp.server import GateMcpServer

    gate = load_gate(args.target, _governance(args))
    server = GateMcpServer(gate, name=args.name, identity=identity_from(args))
    if args.transport == "http":
        _serve_http(server.http_app(host=args.host), args.host, args.port)
    else:
        anyio.run(server.run_stdio)
    return 0


def cmd_proxy(args: argparse.Namespace) -> int:
    import anyio

    from callgate.mcp.proxy import governed, proxy_http_app, run_proxy_stdio

    make_gate = governed(_governance(args))
    identity = identity_from(args)
    if args.transport == "http":
        app = proxy_http_app(args.upstream, make_gate, identity=identity, prefix=args.prefix)
        _serve_http(app, args.host, args.port)
    else:
        anyio.run(
            lambda: run_proxy_stdio(args.upstream, make_gate, identity=identity, prefix=args.prefix)
        )
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--user", help="the caller's user id (stdio and unauthenticated HTTP)")
    p.add_argument("--role", action="append", help="a role of the caller (repeatable)")
    p.add_argument("--tenant", help="the caller's tenant")
    p.add_argument("--policy", help="policy file (.yaml/.toml) for a toolset")
    p.add_argument("--approvals", help="approval store: a SQLite path or postgresql:// DSN")
    p.add_argument("--audit", help="audit store: a SQLite path or postgresql:// DSN")


def add_cli(subparsers: Any) -> None:
    mcp = subparsers.add_parser("mcp", help="serve a gate over MCP, or govern an MCP server")
    sub = mcp.add_subparsers(dest="mcp_command", required=True)
    serve = sub.add_parser("serve", help="serve module:toolset (or gate) as an MCP server")
    serve.add_argument("target", help="MODULE:ATTRIBUTE naming a Gate, Toolset or tool list")
    serve.add_argument("--name", default="callgate")
    _common(serve)
    serve.set_defaults(func=cmd_serve)
    proxy = sub.add_parser("proxy", help="put the gate in front of another MCP server")
    proxy.add_argument("--upstream", required=True, help="a command line (stdio) or a URL")
    proxy.add_argument("--prefix", default="", help="prefix for the imported tool names")
    _common(proxy)
    proxy.set_defaults(func=cmd_proxy)


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - `callgate mcp ...` is used
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    parser = argparse.ArgumentParser(prog="callgate")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))
