"""MCP at the edge: serve a gate as an MCP server, govern any MCP server, import MCP tools.

- `GateMcpServer`: a `Gate` over MCP (stdio, streamable HTTP), approvals via elicitation.
- `import_tools`: an MCP server's tools as callgate tools, the session open for the block.
- `run_proxy_stdio` / `proxy_http_app`: the gate in front of another MCP server.

Needs the ``mcp`` extra (the official MCP SDK).
"""

from callgate.mcp.client import ImportedTools, import_tools, tool_from_mcp
from callgate.mcp.proxy import proxy_http_app, run_proxy_stdio
from callgate.mcp.server import GateMcpServer, Identity

__all__ = [
    "GateMcpServer",
    "Identity",
    "ImportedTools",
    "import_tools",
    "proxy_http_app",
    "run_proxy_stdio",
    "tool_from_mcp",
]
