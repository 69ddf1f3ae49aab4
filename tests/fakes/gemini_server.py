"""A local Gemini API (`models/{model}:generateContent` / `:streamGenerateContent?alt=sse`) for
tests through the official google-genai SDK.

Replies are scripted; requests are first *checked* against the documented rules, and a request
that breaks one gets the 400 `INVALID_ARGUMENT` error the real API sends, with its wording for
unknown schema fields ("Invalid JSON payload received. Unknown name ..."). A test therefore
passes only if the adapter sent a body Gemini accepts:

- `contents` is non-empty, roles are `user` / `model`, every part holds exactly one datum;
- a content with `functionResponse` parts answers the model turn right before it: as many
  responses as that turn had `functionCall` parts, with the same names, each `response` an object;
- `systemInstruction` is a content of text parts;
- function declarations have a name, and their `parameters` use only the OpenAPI subset Gemini
  knows (no `additionalProperties`, `$ref`, `$defs`, `const`, `default`, `title`, ...) with
  valid type names;
- `toolConfig.functionCallingConfig.mode` is AUTO / ANY / NONE / VALIDATED, and
  `allowedFunctionNames` only comes with ANY and names declared functions.

Field names are accepted in lowerCamelCase or snake_case, as the API's JSON parser does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .http import FakeHTTPServer, RecordedRequest, Reply, SSEEvent

__all__ = ["FakeGemini", "call_part", "check_generate_request", "response_body", "text_part"]

_ROUTE = re.compile(
    r"^/(v1|v1beta|v1alpha)/models/([^/:]+):(generateContent|streamGenerateContent)$"
)

_SCHEMA_FIELDS = {
    "type",
    "format",
    "description",
    "nullable",
    "enum",
    "properties",
    "required",
    "items",
    "anyOf",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minProperties",
    "maxProperties",
    "propertyOrdering",
}
_TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}
_PART_DATA = {
    "text",
    "inlineData",
    "functionCall",
    "functionResponse",
    "fileData",
    "executableCode",
    "codeExecutionResult",
}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _get(obj: dict[str, Any], camel: str) -> Any:
    """A field by its lowerCamelCase name, also found under its snake_case spelling."""
    if camel in obj:
        return obj[camel]
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)
    return obj.get(snake)


def text_part(value: str) -> dict[str, Any]:
    return {"text": value}


def call_part(
    name: str, args: dict[str, Any], *, call_id: str | None = None, signature: str | None = None
) -> dict[str, Any]:
    call: dict[str, Any] = {"name": name, "args": args}
    if call_id is not None:
        call["id"] = call_id
    part: dict[str, Any] = {"functionCall": call}
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def response_body(
    parts: list[dict[str, Any]] | None,
    *,
    finish_reason: str | None = "STOP",
    usage: dict[str, Any] | None = None,
    response_id: str | None = "resp-1",
    model_version: str = "gemini-test-001",
) -> dict[str, Any]:
    body: dict[str, Any] = {"modelVersion": model_version}
    if parts is not None:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish_reason is not None:
            candidate["finishReason"] = finish_reason
        body["candidates"] = [candidate]
    if usage is not None:
        body["usageMetadata"] = usage
    if response_id is not None:
        body["responseId"] = response_id
    return body


def error_body(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


# --- request rules -------------------------------------------------------------------------


def _check_schema(node: Any, where: str, problems: list[str]) -> None:
    if not isinstance(node, dict):
        problems.append(f"Invalid value at '{where}': expected a schema object")
        return
    for key, value in node.items():
        name = _camel(key)
        if name not in _SCHEMA_FIELDS:
            problems.append(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': "
                "Cannot find field."
            )
            continue
        if name == "type" and str(value).upper() not in _TYPES:
            problems.append(f"Invalid value at '{where}.type' ({value!r})")
        elif name == "properties":
            if not isinstance(value, dict):
                problems.append(f"Invalid value at '{where}.properties'")
                continue
            for prop, sub in value.items():
                _check_schema(sub, f"{where}.properties[{prop}].value", problems)
        elif name == "items":
            _check_schema(value, f"{where}.items", problems)
        elif name == "anyOf":
            for i, sub in enumerate(value if isinstance(value, list) else []):
                _check_schema(sub, f"{where}.any_of[{i}]", problems)
        elif name == "enum" and not all(isinstance(v, str) for v in value):
            problems.append(f"Invalid value at '{where}.enum': enum values must be strings")
    if str(node.get("type", "")).upper() == "OBJECT" and "properties" in node:
        if not node["properties"]:
            problems.append(f"{where}.properties: should be non-empty for OBJECT type")


def _data_fields(part: dict[str, Any]) -> list[str]:
    return [_camel(k) for k in part if _camel(k) in _PART_DATA]


def check_generate_request(body: Any) -> list[str]:
    """Every documented rule `body` breaks (empty when the API would accept it)."""
    if not isinstance(body, dict):
        return ["Invalid JSON payload received: the body must be an object"]
    problems: list[str] = []
    contents = _get(body, "contents")
    if not isinstance(contents, list) or not contents:
        return ["* GenerateContentRequest.contents: contents is not specified"]
    previous_calls: list[str] = []
    for n, content in enumerate(contents):
        where = f"contents[{n}]"
        role = content.get("role")
        if role not in ("user", "model"):
            problems.append(f"{where}.role: Please use a valid role: user, model.")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            problems.append(f"{where}.parts: contents.parts must not be empty.")
            parts = []
        calls: list[str] = []
        responses: list[str] = []
        for p, part in enumerate(parts):
            data = _data_fields(part)
            if len(data) != 1:
                problems.append(f"{where}.parts[{p}]: a part must hold exactly one datum")
                continue
            if data[0] == "functionCall":
                call = _get(part, "functionCall")
                if role != "model":
                    problems.append(f"{where}.parts[{p}]: functionCall only in model turns")
                if not call.get("name") or not isinstance(call.get("args", {}), dict):
                    problems.append(f"{where}.parts[{p}].function_call: name and object args")
                calls.append(call.get("name"))
            elif data[0] == "functionResponse":
                resp = _get(part, "functionResponse")
                if role != "user":
                    problems.append(f"{where}.parts[{p}]: functionResponse only in user turns")
                if not isinstance(resp.get("response"), dict):
                    problems.append(
                        f"{where}.parts[{p}].function_response.response: must be an object"
                    )
                responses.append(resp.get("name"))
        if responses or previous_calls:
            if len(responses) != len(previous_calls):
                problems.append(
                    "Please ensure that the number of function response parts is equal to the "
                    "number of function call parts of the function call turn."
                )
            elif responses != previous_calls:
                problems.append(
                    f"{where}: function response names {responses} do not match the calls "
                    f"{previous_calls} of the previous turn"
                )
        previous_calls = calls if role == "model" else []
    system = _get(body, "systemInstruction")
    if system is not None:
        parts = system.get("parts") if isinstance(system, dict) else None
        if not parts or not all(isinstance(p, dict) and "text" in p for p in parts):
            problems.append("system_instruction: must be a content of text parts")
    declared: list[str] = []
    for t, tool in enumerate(_get(body, "tools") or []):
        for d, decl in enumerate(_get(tool, "functionDeclarations") or []):
            where = f"tools[{t}].function_declarations[{d}]"
            if not decl.get("name"):
                problems.append(f"{where}.name: Function name cannot be empty.")
            declared.append(decl.get("name"))
            params = decl.get("parameters")
            if params is not None:
                _check_schema(params, f"{where}.parameters", problems)
    tool_config = _get(body, "toolConfig")
    if tool_config is not None:
        fcc = _get(tool_config, "functionCallingConfig") or {}
        mode = fcc.get("mode")
        if mode not in ("AUTO", "ANY", "NONE", "VALIDATED", None):
            problems.append(f"Invalid value at 'tool_config.function_calling_config.mode' ({mode})")
        allowed = _get(fcc, "allowedFunctionNames")
        if allowed:
            if mode != "ANY":
                problems.append("allowed_function_names may only be set with mode ANY")
            unknown = [a for a in allowed if a not in declared]
            if unknown:
                problems.append(f"allowed_function_names: unknown functions {unknown}")
    return problems


# --- the server ----------------------------------------------------------------------------


class FakeGemini:
    """Scripted, rule-checking Gemini API. Use as a context manager; give the SDK
    `HttpOptions(base_url=url)`."""

    def __init__(self) -> None:
        self.http = FakeHTTPServer()

    def __enter__(self) -> FakeGemini:
        self.http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.stop()

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.http.requests

    @property
    def bodies(self) -> list[Any]:
        return [r.json for r in self.requests]

    def _checked(self, reply: Reply, method: str) -> Any:
        def respond(request: RecordedRequest) -> Reply:
            match = _ROUTE.match(request.path)
            if request.method != "POST" or match is None:
                return Reply.json_body(
                    error_body(404, "NOT_FOUND", f"no route {request.method} {request.path}"),
                    status=404,
                )
            if match.group(3) != method:
                return Reply.json_body(
                    error_body(400, "INVALID_ARGUMENT", f"expected {method}, got {match.group(3)}"),
                    status=400,
                )
            if method == "streamGenerateContent" and request.query.get("alt") != ["sse"]:
                return Reply.json_body(
                    error_body(400, "INVALID_ARGUMENT", "streaming tests expect alt=sse"),
                    status=400,
                )
            problems = check_generate_request(request.json)
            if problems:
                return Reply.json_body(
                    error_body(400, "INVALID_ARGUMENT", "\n".join(problems)), status=400
                )
            return reply

        return respond

    def reply(self, parts: list[dict[str, Any]] | None, **kw: Any) -> None:
        self.http.enqueue(
            self._checked(Reply.json_body(response_body(parts, **kw)), "generateContent")
        )

    def reply_body(self, body: dict[str, Any]) -> None:
        self.http.enqueue(self._checked(Reply.json_body(body), "generateContent"))

    def reply_stream(self, chunks: Iterable[dict[str, Any]], **kw: Any) -> None:
        events = [SSEEvent(c) for c in chunks]
        self.http.enqueue(self._checked(Reply.sse(events, **kw), "streamGenerateContent"))

    def reply_error(
        self, code: int, status: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        self.http.enqueue(
            Reply.json_body(error_body(code, status, message), status=code, headers=headers)
        )
