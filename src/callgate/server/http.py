"""ASGI plumbing shared by the gateway's API and console: authentication in front of every route
but health, request size limits, and JSON errors that say what to do."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callgate.server.auth import Authenticator, AuthError, Principal

SESSION_COOKIE = "callgate_session"
#: paths reachable without credentials (everything else answers 401 or redirects to login)
PUBLIC_PATHS = frozenset({"/health", "/console/login"})
PUBLIC_PREFIXES = ("/static/",)


class ApiError(HTTPException):
    """An error the API reports as ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message)
        self.code = code


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
}


async def http_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.code, exc.detail)
    if isinstance(exc, HTTPException):
        code = _CODES.get(exc.status_code, "error")
        response = error_response(exc.status_code, code, exc.detail)
        response.headers.update(exc.headers or {})  # e.g. `Allow` on 405
        return response
    return error_response(500, "internal", "internal error; the cause was logged")


def principal(request: Request) -> Principal:
    who = request.scope.get("callgate.principal")
    if not isinstance(who, Principal):  # the middleware guarantees it on protected routes
        raise ApiError(401, "unauthenticated", "authentication required")
    return who


async def read_json(request: Request) -> Any:
    body = await request.body()
    if not body:
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None


class AuthMiddleware:
    """Authenticates every request except health, the login page and static files. API paths
    answer 401 JSON; console pages redirect to the login form."""

    def __init__(self, app: ASGIApp, auth: Authenticator) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            who = self.auth.authenticate(
                request.headers.get("authorization"), request.cookies.get(SESSION_COOKIE)
            )
        except AuthError as exc:
            await error_response(401, "unauthenticated", str(exc))(scope, receive, send)
            return
        if who is None:
            if path.startswith("/console") and scope.get("method") == "GET":
                await RedirectResponse("/console/login", status_code=303)(scope, receive, send)
                return
            response = error_response(
                401,
                "unauthenticated",
                "send 'Authorization: Bearer <API key or JWT>' (only /health is public)",
            )
            response.headers["www-authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        scope["callgate.principal"] = who
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuses request bodies over `max_bytes` with 413, by the declared length or, for bodies
    without one, as soon as the stream passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = error_response(
            413, "too_large", f"request bodies are limited to {self.max_bytes} bytes"
        )
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    await too_large(scope, receive, send)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLargeError:
            if not started:
                await too_large(scope, receive, send)


class _BodyTooLargeError(Exception):
    pass


Handler = Callable[[Request], Any]
