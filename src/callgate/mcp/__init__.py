"""MCP at the edge: serve a gate as an MCP server, govern any MCP server, import MCP tools.

- `GateMcpServer`: a `Gate` over MCP (stdio, streamable HTTP), approvals via elicitation.
- `import_tools`: an MCP server's tools as callgate tools, the session open for the block.
- `run_proxy_stdio` / `proxy_http_app`: the gate in front of another MCP server.

Needs the ``mcp`` extra (the official MCP SDK).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callgate._lazy import lazy_exports

if TYPE_CHECKING:
    from callgate.mcp.client import ImportedTools, import_tools, tool_from_mcp
    from callgate.mcp.proxy import proxy_http_app, run_proxy_stdio
    from callgate.mcp.server import GateMcpServer, Identity

# loaded on first use: `callgate mcp ...` builds its parser from this package, and the SDK takes
# about a second to import
_EXPORTS = {
    "GateMcpServer": "callgate.mcp.server",
    "Identity": "callgate.mcp.server",
    "ImportedTools": "callgate.mcp.client",
    "import_tools": "callgate.mcp.client",
    "tool_from_mcp": "callgate.mcp.client",
    "proxy_http_app": "callgate.mcp.proxy",
    "run_proxy_stdio": "callgate.mcp.proxy",
}

__all__ = [
    "GateMcpServer",
    "Identity",
    "ImportedTools",
    "import_tools",
    "proxy_http_app",
    "run_proxy_stdio",
    "tool_from_mcp",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
