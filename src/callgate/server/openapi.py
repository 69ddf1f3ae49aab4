"""The gateway's OpenAPI 3.1 document (written by hand: it is the contract, and the fuzz test
checks the implementation against it)."""

from __future__ import annotations

from typing import Any

from callgate.approvals.model import STATUSES

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
_ID = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9_.:-]+$"}
_ID_OR_NULL = {"anyOf": [_ID, {"type": "null"}]}
_CALL = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "id": _ID_OR_NULL,
        "name": {"type": "string", "maxLength": 200},
        "arguments": {"oneOf": [{"type": "object"}, {"type": "string"}]},
    },
}
_RESULT = {
    "type": "object",
    "required": ["call_id", "name", "ok", "content"],
    "properties": {
        "call_id": {"type": "string"},
        "name": {"type": "string"},
        "ok": {"type": "boolean"},
        "content": {"type": "string"},
        "error_kind": {"type": ["string", "null"]},
        "rule": {"type": ["string", "null"]},
        "approval_id": {"type": ["string", "null"]},
        "duration_s": {"type": "number"},
    },
}
_APPROVAL = {
    "type": "object",
    "required": ["id", "tool", "status", "arguments", "rule", "describe"],
    "properties": {
        "id": {"type": "string"},
        "tool": {"type": "string"},
        "version": {"type": ["string", "null"]},
        "status": {"type": "string"},
        "arguments": {},
        "rule": {"type": "string"},
        "requested_by": {"type": ["string", "null"]},
        "tenant": {"type": ["string", "null"]},
        "describe": {"type": "string"},
    },
}


def _errors(*codes: int) -> dict[str, Any]:
    desc = {
        400: "Bad request",
        401: "Not authenticated",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        413: "Too large",
        422: "Invalid request",
    }
    return {
        str(c): {
            "description": desc[c],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for c in codes
    }


def _ok(schema: dict[str, Any], *errors: int) -> dict[str, Any]:
    return {
        "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
        **_errors(401, *errors),
    }


_OBJ: dict[str, Any] = {"type": "object"}
_DIALECTS = ["neutral", "openai_chat", "openai_responses", "anthropic", "gemini"]


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _json_body(schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": responses, **extra}


def _execute_op() -> dict[str, Any]:
    body = {
        "type": "object",
        "required": ["calls"],
        "properties": {
            "calls": {"type": "array", "minItems": 1, "maxItems": 64, "items": _CALL},
            "conversation_id": _ID_OR_NULL,
            "run_id": _ID_OR_NULL,
        },
    }
    answer = {
        "type": "object",
        "required": ["run_id", "results"],
        "properties": {
            "run_id": {"type": "string"},
            "results": {"type": "array", "items": _RESULT},
        },
    }
    return _op(
        "Run proposed calls through the full gate",
        _ok(answer, 400, 413, 422),
        requestBody=_json_body(body, required=True),
    )


def _approval_paths() -> dict[str, Any]:
    path = [{"name": "approval_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    comment = _json_body(
        {"type": "object", "properties": {"comment": {"type": "string", "maxLength": 2000}}}
    )
    inbox = {"type": "object", "properties": {"approvals": {"type": "array", "items": _APPROVAL}}}
    decide = _ok(_APPROVAL, 400, 403, 404, 409, 422)
    return {
        "/v1/approvals": {
            "get": _op(
                "The approvals inbox (the caller's tenant)",
                _ok(inbox, 404, 422),
                parameters=[_query("status", {"type": "string", "enum": list(STATUSES)})],
            )
        },
        "/v1/approvals/{approval_id}": {
            "get": _op("Exactly what will run if approved", _ok(_APPROVAL, 404), parameters=path)
        },
        "/v1/approvals/{approval_id}/approve": {
            "post": _op("Approve (approver role)", decide, parameters=path, requestBody=comment)
        },
        "/v1/approvals/{approval_id}/deny": {
            "post": _op("Deny, with a comment", decide, parameters=path, requestBody=comment)
        },
    }


def _paths() -> dict[str, Any]:
    filters = [
        _query(n, {"type": "string"})
        for n in ("conversation_id", "user", "tool", "decision", "kind")
    ]
    limit = _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000})
    health = _op("Liveness (no authentication)", {"200": {"description": "OK"}}, security=[])
    tools = _op(
        "Tools the caller may see, in a provider's dialect",
        _ok(_OBJ, 422),
        parameters=[_query("dialect", {"type": "string", "enum": _DIALECTS})],
    )
    return {
        "/health": {"get": health},
        "/v1/me": {"get": _op("The authenticated caller", _ok(_OBJ))},
        "/v1/tools": {"get": tools},
        "/v1/execute": {"post": _execute_op()},
        **_approval_paths(),
        "/v1/audit": {
            "get": _op(
                "Audit records (auditor role)",
                _ok(_OBJ, 403, 404, 422),
                parameters=[*filters, limit],
            )
        },
        "/v1/audit/verify": {"get": _op("Verify the hash chain", _ok(_OBJ, 403, 404))},
        "/v1/stats": {"get": _op("Calls, errors, latency per tool", _ok(_OBJ, 403, 404))},
        **_conversation_paths(),
    }


def _conversation_paths() -> dict[str, Any]:
    """Present when the gateway runs an agent (``--model``); 404 otherwise."""
    message = {
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {"type": "string", "minLength": 1, "maxLength": 20000},
            "conversation_id": _ID_OR_NULL,
            "run_id": _ID_OR_NULL,
        },
    }
    stream = {
        "200": {
            "description": "Server-sent events: turn, text, model, tool_call, tool_result, done",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **_errors(401, 400, 404, 413, 422),
    }
    run = [{"name": "run_id", "in": "path", "required": True, "schema": _ID}]
    return {
        "/v1/conversations": {
            "post": _op(
                "Run the agent on a message, streamed",
                stream,
                requestBody=_json_body(message, required=True),
            )
        },
        "/v1/runs/{run_id}/resume": {
            "post": _op("Resume a paused run of the caller", _ok(_OBJ, 404), parameters=run)
        },
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "callgate gateway", "version": "1"},
        "paths": _paths(),
        "components": {
            "schemas": {"Error": _ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
