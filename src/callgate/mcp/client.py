"""Import the tools of any MCP server as callgate `Tool`s.

Each imported tool keeps the server's own JSON Schema (so the gate validates arguments before
anything is forwarded), maps MCP's hints to callgate annotations, and forwards a validated call
over one MCP session that stays open for as long as the `import_tools` block. A server that
answers with an error result, or dies mid-call, ends that call with a terminal error the model can
read; nothing is retried unless the server marked the tool idempotent.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError

from callgate.errors import SchemaError, TerminalToolError, TransientToolError
from callgate.tools.definition import ExecutionOptions, Tool, ToolAnnotations

log = logging.getLogger("callgate.mcp")

#: where an MCP server is: a URL (streamable HTTP), a command line (stdio), stdio parameters,
#: or an in-process SDK server (tests)
Target = str | Sequence[str] | StdioServerParameters | Server[Any]


def parse_target(target: Target) -> str | StdioServerParameters | Server[Any]:
    """A URL stays a URL; a command line (string or argv list) becomes stdio parameters."""
    if isinstance(target, str):
        if target.startswith(("http://", "https://")):
            return target
        argv = shlex.split(target)
    elif isinstance(target, StdioServerParameters | Server):
        return target
    else:
        argv = list(target)
    if not argv:
        raise ValueError("empty MCP server command")
    # a command given on a command line runs as it would from the user's shell: with their
    # environment (the SDK's default passes only a minimal one)
    return StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))


def annotations_from_mcp(hints: types.ToolAnnotations | None) -> ToolAnnotations:
    """MCP hints as callgate annotations. A hint a server left out takes MCP's documented
    default, which is the cautious one (may write, may be destructive, open world)."""
    if hints is None:
        return ToolAnnotations(destructive=True, open_world=True)
    read_only = bool(hints.read_only_hint)
    destructive = not read_only and hints.destructive_hint is not False
    idempotent = bool(hints.idempotent_hint)
    return ToolAnnotations(
        read_only=read_only,
        destructive=destructive,
        idempotent=idempotent,
        open_world=hints.open_world_hint is not False,
        retry_allowed=idempotent or read_only,
    )


def result_text(result: types.CallToolResult) -> str:
    """The text of a tool result; non-text blocks are named, not dropped silently."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        else:
            parts.append(f"[{block.type} content]")
    return "\n".join(parts)


@dataclass(slots=True)
class ImportedTools:
    """What an import produced: the tools, and the server tools that could not be imported
    (name and why), so nothing disappears without a trace."""

    tools: list[Tool] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    client: Client | None = None


def _forwarder(client: Client, name: str, timeout_s: float | None) -> Callable[..., Any]:
    async def forward(**arguments: Any) -> Any:
        try:
            result = await client.call_tool(name, arguments, read_timeout_seconds=timeout_s)
        except MCPError as exc:
            raise TerminalToolError(
                f"the MCP server refused the call: {exc.error.message}", detail=repr(exc)
            ) from exc
        except TimeoutError as exc:
            raise TransientToolError("the MCP server did not answer in time") from exc
        except Exception as exc:  # a dead or broken server: say so, never hang or crash the gate
            raise TerminalToolError(
                "the MCP server failed while handling the call (its connection broke); "
                "the call may or may not have taken effect",
                detail=repr(exc),
            ) from exc
        text = result_text(result)
        if result.is_error:
            raise TerminalToolError(f"the MCP server reported an error: {text}")
        if isinstance(result.structured_content, dict):
            return result.structured_content
        return text

    forward.__name__ = f"mcp_{name}"
    return forward


def tool_from_mcp(
    client: Client, spec: types.Tool, *, prefix: str = "", timeout_s: float | None = 30.0
) -> Tool:
    """One MCP tool as a callgate tool that forwards over `client`."""
    ann = annotations_from_mcp(spec.annotations)
    options = ExecutionOptions(
        timeout_s=timeout_s, max_retries=2 if ann.retry_safe else 0, inline=False
    )
    return Tool.from_schema(
        prefix + spec.name,
        spec.description or spec.title or spec.name,
        dict(spec.input_schema),
        _forwarder(client, spec.name, timeout_s),
        annotations=ann,
        options=options,
    )


async def _list_all(client: Client) -> list[types.Tool]:
    specs: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(1000):  # a server whose cursor never ends cannot hang the import
        page = await client.list_tools(cursor=cursor)
        specs.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return specs


@asynccontextmanager
async def import_tools(
    target: Target,
    *,
    prefix: str = "",
    timeout_s: float | None = 30.0,
    include: Callable[[types.Tool], bool] | None = None,
) -> AsyncIterator[ImportedTools]:
    """Connect to an MCP server, import its tools, and keep the session open for the block.

    Use the tools like local ones (``Gate(imported.tools, policy=...)``, ``Agent(model,
    imported.tools)``); they stop working when the block ends and the session is closed.
    """
    client = Client(parse_target(target), mode="legacy")
    async with client:
        out = ImportedTools(client=client)
        for spec in await _list_all(client):
            if include is not None and not include(spec):
                continue
            try:
                out.tools.append(tool_from_mcp(client, spec, prefix=prefix, timeout_s=timeout_s))
            except SchemaError as exc:
                log.warning("MCP tool %s not imported: %s", spec.name, exc)
                out.skipped.append((spec.name, str(exc)))
        yield out
