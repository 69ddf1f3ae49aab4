"""Whole conversations through the gateway, streamed as server-sent events.

``POST /v1/conversations`` runs the configured agent (model + the gateway's gate) on a message as
the authenticated caller and streams what happens: model turns, text, each call starting and its
result (with the decision's error kind and the approval id when it waits), and how the run ended.
A run that pauses for approval is kept in the run store; ``POST /v1/runs/{run_id}/resume`` (any
gateway process sharing that store) continues it once the approval was decided. Run ids are
scoped to the caller, so nobody can resume another caller's run.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from callgate.agent import Agent, ModelTurn, RunFinished, ToolFinished, ToolStarted, TurnStarted
from callgate.agent.loop import RunResult
from callgate.models import TextDelta
from callgate.server.api import GatewayApi, result_json, run_scope
from callgate.server.http import ApiError, principal, read_json

MAX_MESSAGE_CHARS = 20_000


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def run_json(result: RunResult) -> dict[str, Any]:
    return {
        "status": result.status,
        "output": result.output,
        "run_id": result.run_id.split(".", 1)[-1],
        "reason": result.reason,
        "turns": result.turns,
        "tool_calls": result.tool_calls,
        "pending": [p.get("approval_id") for p in result.pending],
    }


def event_frame(ev: object) -> bytes | None:
    """One agent event as an SSE frame (events a client has no use for are skipped)."""
    if isinstance(ev, TurnStarted):
        return _sse("turn", {"turn": ev.turn})
    if isinstance(ev, TextDelta):
        return _sse("text", {"text": ev.text})
    if isinstance(ev, ModelTurn):
        return _sse(
            "model",
            {
                "turn": ev.turn,
                "duration_s": round(ev.duration_s, 6),
                "text": ev.response.message.content,
            },
        )
    if isinstance(ev, ToolStarted):
        return _sse("tool_call", {"id": ev.call.id, "name": ev.call.name})
    if isinstance(ev, ToolFinished):
        return _sse("tool_result", result_json(ev.result))
    if isinstance(ev, RunFinished):
        return _sse("done", run_json(ev.result))
    return None


class Conversations:
    def __init__(self, api: GatewayApi, agent: Agent) -> None:
        self.api = api
        self.agent = agent

    def routes(self) -> list[Route]:
        return [
            Route("/v1/conversations", self.start, methods=["POST"]),
            Route("/v1/runs/{run_id}/resume", self.resume, methods=["POST"]),
        ]

    async def start(self, request: Request) -> StreamingResponse:
        who = principal(request)
        body = await read_json(request)
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or not 0 < len(message) <= MAX_MESSAGE_CHARS:
            raise ApiError(
                422, "invalid", f'send {{"message": text of 1-{MAX_MESSAGE_CHARS} characters}}'
            )
        ctx = self.api.context(who, body.get("conversation_id"), body.get("run_id"))
        ctx.request = message

        async def frames() -> AsyncIterator[bytes]:
            async for ev in self.agent.stream(message, ctx=ctx):
                frame = event_frame(ev)
                if frame is not None:
                    yield frame

        return StreamingResponse(
            frames(), media_type="text/event-stream", headers={"cache-control": "no-store"}
        )

    async def resume(self, request: Request) -> JSONResponse:
        who = principal(request)
        run_id = request.path_params["run_id"]
        if not run_id or len(run_id) > 128:
            raise ApiError(404, "not_found", "no such run")
        scoped = f"{run_scope(who)}.{run_id}"  # only the caller's own runs can be named
        saved = await anyio.to_thread.run_sync(self.agent.run_store.load, scoped)
        if saved is None:
            raise ApiError(404, "not_found", f"no paused run {run_id!r}")
        result = await self.agent.resume(scoped)
        return JSONResponse(run_json(result))
