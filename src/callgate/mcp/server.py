"""A callgate `Gate` served as an MCP server (stdio or streamable HTTP).

Nothing here decides anything: list time asks the gate which tools this caller may see, and call
time hands every `tools/call` to `Gate.execute`, which decodes, validates, applies policy,
approval, rate limits and sanitisation, runs the tool and records the outcome. This module only
translates between MCP and the gate, and turns "needs a person's approval" into the MCP way of
asking one: an elicitation when the client can show one, otherwise a result that names the
pending approval so the caller can come back once a person decided.

Approvals are bound to the caller and the exact call: an MCP client has no run or call ids the
gate could use, so the run id is derived from the caller's identity and the call id from the tool
and its arguments. Calling again with the same arguments finds the same request, so an approved
call runs once; after it ran, the same call asks for a new approval.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.stdio import stdio_server
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.applications import Starlette
from starlette.requests import Request

from callgate.approvals import ApprovalError, ApprovalRequest, Approvals
from callgate.context import RunContext
from callgate.errors import ErrorKind
from callgate.gate.core import Gate
from callgate.messages import ToolCall, ToolResult
from callgate.serde import canonical_json
from callgate.tools.definition import Tool

log = logging.getLogger("callgate.mcp")

_APPROVAL_KEY = "callgate_approval"
_PENDING = ErrorKind.PENDING_APPROVAL.value
_FINAL = ("denied", "expired", "interrupted")
_MAX_GENERATIONS = 1000

#: what the person is asked in an elicitation: yes/no and an optional comment
APPROVAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approve": {
            "type": "boolean",
            "title": "Approve",
            "description": "Run this call once, exactly as shown.",
        },
        "comment": {"type": "string", "title": "Comment", "description": "Optional note."},
    },
    "required": ["approve"],
}


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling. On stdio it comes from configuration (one process serves one client); on
    HTTP from the request's authentication."""

    user_id: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    tenant: str | None = None

    @property
    def key(self) -> str:
        """A stable, opaque id for this caller (the run id approvals are bound to)."""
        raw = canonical_json([self.user_id, sorted(self.roles), self.tenant])
        return "mcp_" + hashlib.sha256(raw.encode()).hexdigest()[:20]

    def context(self) -> RunContext:
        key = self.key
        return RunContext(
            user_id=self.user_id,
            roles=self.roles,
            tenant=self.tenant,
            run_id=key,
            conversation_id=key,
        )


#: reads the caller's identity from an HTTP request (None: refuse)
Identify = Callable[[Request], Identity | None]


class IdentityMissingError(Exception):
    """An HTTP request reached the MCP endpoint without an authenticated identity."""


def mcp_annotations(tool: Tool) -> types.ToolAnnotations:
    """callgate's annotations as MCP's hints. MCP's defaults (destructive and open-world unless
    said otherwise) are the unsafe ones, so every hint is stated explicitly."""
    ann = tool.annotations
    return types.ToolAnnotations(
        read_only_hint=ann.read_only,
        destructive_hint=ann.destructive and not ann.read_only,
        idempotent_hint=ann.idempotent or ann.read_only,
        open_world_hint=ann.open_world,
    )


def mcp_tool(tool: Tool) -> types.Tool:
    meta = {"callgate/version": tool.version} if tool.version else None
    return types.Tool(
        name=tool.name,
        description=tool.description,
        input_schema=tool.spec.parameters,
        annotations=mcp_annotations(tool),
        _meta=meta,
    )


def _text_result(text: str, *, error: bool, structured: Any = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=text)], is_error=error, structured_content=structured
    )


def to_mcp_result(res: ToolResult) -> types.CallToolResult:
    """A gate result as an MCP tool result: errors (validation, denial, failures) are results
    with ``isError`` so the model can read and correct them, never protocol errors."""
    if res.error_kind == _PENDING:
        pending = {"status": "pending_approval", "approval_id": res.approval_id}
        return _text_result(res.content, error=False, structured=pending)
    if res.is_error:
        return _text_result(res.content, error=True)
    structured: dict[str, Any] | None = res.data if isinstance(res.data, dict) else None
    return _text_result(res.content, error=False, structured=structured)


def _args_key(name: str, args: dict[str, Any]) -> str:
    try:
        raw = canonical_json({"tool": name, "arguments": args})
    except (TypeError, ValueError):
        raw = repr((name, args))
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


class GateMcpServer:
    """Serve a gate over MCP.

    - `identity`: the caller on stdio (from configuration).
    - `identify`: reads the caller from an HTTP request (the gateway's authentication); without
      it, HTTP callers get `identity`.
    - `elicit`: ask approvals through MCP elicitation when the client supports it.
    """

    def __init__(
        self,
        gate: Gate,
        *,
        name: str = "callgate",
        identity: Identity | None = None,
        identify: Identify | None = None,
        elicit: bool = True,
        instructions: str | None = None,
    ) -> None:
        self.gate = gate
        self.identity = identity or Identity()
        self.identify = identify
        self.elicit = elicit
        self._reported: set[str] = set()  # final approvals already told to this process's caller
        self.server: Server[Any] = Server(
            name,
            instructions=instructions,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )

    @property
    def approvals(self) -> Approvals | None:
        approver = self.gate.approver
        return approver if isinstance(approver, Approvals) else None

    # identity -----------------------------------------------------------------------------

    def _who(self, ctx: ServerRequestContext[Any, Any]) -> Identity:
        request = ctx.request
        if self.identify is not None and isinstance(request, Request):
            found = self.identify(request)
            if found is None:
                raise IdentityMissingError("unauthenticated MCP request")
            return found
        return self.identity

    # list time ----------------------------------------------------------------------------

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        run = self._who(ctx).context()
        tools = [mcp_tool(t) for t in self.gate.list_tools(run)]
        return types.ListToolsResult(tools=tools, ttl_ms=0, cache_scope="private")

    # call time ----------------------------------------------------------------------------

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        run = self._who(ctx).context()
        args: dict[str, Any] = dict(params.arguments or {})
        call_id = await anyio.to_thread.run_sync(self._call_id, params.name, args, run)
        call = ToolCall(id=call_id, name=params.name, arguments=args)
        if params.input_responses and params.request_state:
            await self._apply_answer(params, call, run)
        res = await self.gate.execute(call, run)
        await self.gate.flush_records()  # an answered call is on disk
        if res.error_kind != _PENDING or not self._can_elicit(ctx):
            return to_mcp_result(res)
        approval_id = str(res.approval_id)
        message = await anyio.to_thread.run_sync(self._describe, approval_id, res.content)
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            ask = types.ElicitRequest(
                params=types.ElicitRequestFormParams(
                    message=message, requested_schema=APPROVAL_SCHEMA
                )
            )
            return types.InputRequiredResult(
                input_requests={_APPROVAL_KEY: ask}, request_state=approval_id
            )
        answer = await ctx.session.elicit_form(
            message, APPROVAL_SCHEMA, related_request_id=ctx.request_id
        )
        if await self._decide(approval_id, answer, call, run):
            res = await self.gate.execute(call, run)
            await self.gate.flush_records()
        return to_mcp_result(res)

    def _describe(self, approval_id: str, fallback: str) -> str:
        """Exactly what will run if the person says yes (masked arguments, rule, who asked)."""
        approvals = self.approvals
        try:
            return approvals.get(approval_id).describe() if approvals else fallback
        except ApprovalError:
            return fallback

    def _can_elicit(self, ctx: ServerRequestContext[Any, Any]) -> bool:
        if not self.elicit or self.approvals is None:
            return False
        caps = ctx.session.client_capabilities
        if caps is None or caps.elicitation is None:
            return False
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return True
        return ctx.session.can_send_request

    async def _apply_answer(
        self, params: types.CallToolRequestParams, call: ToolCall, run: RunContext
    ) -> None:
        answer = (params.input_responses or {}).get(_APPROVAL_KEY)
        if isinstance(answer, types.ElicitResult) and params.request_state:
            await self._decide(params.request_state, answer, call, run)

    async def _decide(
        self, approval_id: str, answer: types.ElicitResult, call: ToolCall, run: RunContext
    ) -> bool:
        """Record the person's answer on the approval, if the id really belongs to this caller's
        call (the id came back from the client, so it is not trusted). True when decided."""
        approvals = self.approvals
        if approvals is None:
            return False
        content = answer.content or {}
        comment = content.get("comment")
        who = f"{run.user_id or 'anonymous'} (MCP elicitation)"
        note = comment if isinstance(comment, str) and comment else None

        def decide() -> bool:
            try:
                req = approvals.get(approval_id)
            except ApprovalError:
                return False
            if req.run_id != run.run_id or req.call_id != call.id or req.tool != call.name:
                log.warning("elicitation answer for approval %s does not match the call", req.id)
                return False
            try:
                if answer.action == "accept" and content.get("approve") is True:
                    approvals.approve(approval_id, by=who, comment=note)
                else:
                    approvals.deny(approval_id, by=who, comment=note or "declined in the client")
            except ApprovalError as exc:
                log.info("approval %s not decided: %s", approval_id, exc)
                return False
            return True

        return await anyio.to_thread.run_sync(decide)

    # approval binding -------------------------------------------------------------------

    def _call_id(self, name: str, args: dict[str, Any], run: RunContext) -> str:
        """The call id this call's approval is bound to: the same for a repeat of the same call
        until its approval is used up (ran, or was denied and the caller was told), then the
        next generation, which asks again."""
        base = "mcp_" + _args_key(name, args)
        approvals = self.approvals
        if approvals is None:
            return base
        digest = self._digest(name, args, run)
        if digest is None:
            return base
        for gen in range(_MAX_GENERATIONS):
            call_id = base if gen == 0 else f"{base}_{gen}"
            req = approvals.store.find(run.run_id, call_id, digest)
            if req is None or not self._spent(req):
                if req is not None and req.status in _FINAL:
                    self._reported.add(req.id)  # this call tells the caller; the next asks anew
                return call_id
        return f"{base}_{_MAX_GENERATIONS}"

    def _spent(self, req: ApprovalRequest) -> bool:
        return req.status == "done" or (req.status in _FINAL and req.id in self._reported)

    def _digest(self, name: str, args: dict[str, Any], run: RunContext) -> str | None:
        from callgate.approvals.model import args_hash

        tool, _note = self.gate.toolset.resolve(name, run)
        if tool is None:
            return None
        try:
            validated = tool.validator.validate(json.loads(json.dumps(args)))
        except Exception:  # noqa: BLE001 - invalid arguments never reach the approver
            return None
        return args_hash(tool.name, tool.version, validated)

    # transports ---------------------------------------------------------------------------

    async def run_stdio(self) -> None:
        """Serve one client on this process's stdin/stdout until it disconnects."""
        async with stdio_server() as (read_stream, write_stream):
            await self.server.run(
                read_stream, write_stream, self.server.create_initialization_options()
            )

    def http_app(self, *, path: str = "/mcp", host: str = "127.0.0.1") -> Starlette:
        """A Starlette app serving streamable HTTP at `path` (mount it behind authentication
        and pass `identify`)."""
        return self.server.streamable_http_app(streamable_http_path=path, host=host)
