"""A third-party MCP server written with the official SDK only (no callgate), used as the
upstream the proxy governs and the server `import_tools` reads.

Run: python -m tests.mcp_fixtures.upstream [--http PORT]. `delete_file` appends to the file named
by $UPSTREAM_LOG so tests can count how many times it really ran; `crash` kills the process in
the middle of a call.
"""

from __future__ import annotations

import os
import sys

from mcp.server import MCPServer
from mcp_types import ToolAnnotations

app = MCPServer("files-upstream")


@app.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@app.tool(annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False))
def delete_file(path: str) -> str:
    """Delete a file (pretend: records the deletion)."""
    log = os.environ.get("UPSTREAM_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(path + "\n")
    return f"deleted {path}"


@app.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
def crash(reason: str) -> str:
    """Dies in the middle of the call (simulates a crashing upstream)."""
    sys.stderr.write(f"upstream crashing: {reason}\n")
    sys.stderr.flush()
    os._exit(3)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        app.run(transport="streamable-http", port=int(sys.argv[2]))
    else:
        app.run()
