"""Minimal reproductions of what the adversarial suite found, one test per bug.

Each test states the promise and the smallest call that breaks it. A test still failing when
this file was written is marked `xfail(strict=True)` with the place believed to be at fault;
when the fix lands it starts passing, strict xfail turns that into a failure, and the marker
(and the matching entry of `test_generated_calls.KNOWN`) must be removed.
"""

from __future__ import annotations

import asyncio
import enum
import json
import time
from typing import Any, Literal

import pytest

from callgate import Gate, tool
from callgate.context import RunContext
from callgate.errors import (
    SchemaError,
    TerminalToolError,
    ToolDenied,
    ToolRetry,
    TransientToolError,
)
from callgate.messages import ToolCall, ToolResult
from callgate.tools.definition import ExecutionOptions, Tool
from tests.adversarial.signatures import RAW_ORDER, RECEIVED, draw, search, targets

SECRET_CORE = "Zq8xW2mN5vB7cT4kL9pR3sY6"


def _call(tool: Tool, arguments: Any) -> tuple[ToolResult, bool]:
    """The result of one call and whether the tool body ran."""
    RECEIVED.clear()

    async def go() -> ToolResult:
        return await Gate([tool]).execute(ToolCall("c-1", tool.name, arguments), RunContext())

    res = asyncio.run(go())
    return res, bool(RECEIVED)


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 5


@tool
async def choose(priority: Priority = Priority.HIGH, level: Literal[1, 2] = 2) -> str:
    """A tool whose parameters are integer choices (an IntEnum, an integer Literal)."""
    RECEIVED.append(("choose", {"priority": priority, "level": level}))
    return "ok"


def _raw_order() -> Tool:
    return next(t.tool for t in targets() if t.tool.name == "raw_order")


# --- values of another JSON type were converted instead of refused (fixed) ------------------------


def test_number_sent_as_string_is_refused() -> None:
    res, ran = _call(search, '{"query": "q", "limit": "5"}')
    assert not ran and res.error_kind == "correctable"


def test_boolean_sent_for_a_number_is_refused() -> None:
    res, ran = _call(search, '{"query": "q", "limit": true}')
    assert not ran and res.error_kind == "correctable"


def test_number_sent_for_a_boolean_is_refused() -> None:
    res, ran = _call(search, '{"query": "q", "exact": 1}')
    assert not ran and res.error_kind == "correctable"


def test_string_sent_for_a_boolean_is_refused() -> None:
    res, ran = _call(search, '{"query": "q", "exact": "yes"}')
    assert not ran and res.error_kind == "correctable"


@pytest.mark.parametrize("param", ["priority", "level"])
def test_boolean_sent_for_an_integer_choice_is_refused(param: str) -> None:
    res, ran = _call(choose, json.dumps({param: True}))
    assert not ran and res.error_kind == "correctable"


@pytest.mark.parametrize(
    "shape", ['{"kind": "tri", "sides": [1, 1, NUM]}', '{"kind": "circle", "radius": NUM}']
)
def test_a_huge_integer_never_reaches_a_tool_as_infinity(shape: str) -> None:
    raw = '{"shapes": [' + shape.replace("NUM", "9" * 400) + "]}"
    res, ran = _call(draw, raw)
    assert not ran and res.error_kind == "correctable"


# --- what the model reads ------------------------------------------------------------------------


def test_raw_schema_error_does_not_echo_a_sensitive_value() -> None:
    args = {"customer": {"id": "a"}, "lines": [{"sku": "x", "qty": 1}], "pin": SECRET_CORE}
    res, ran = _call(_raw_order(), json.dumps(args))
    assert not ran and res.error_kind == "correctable"
    assert "pin" in res.content
    assert SECRET_CORE[:10] not in res.content


@pytest.mark.parametrize("which", ["raw-pattern", "discriminator-tag"])
def test_error_text_stays_short_for_a_huge_value(which: str) -> None:
    huge = "é" * 30_000
    if which == "raw-pattern":
        tool = _raw_order()
        args: dict[str, Any] = {"customer": {"id": "a"}, "lines": [{"sku": huge, "qty": 1}]}
    else:
        tool, args = draw, {"shapes": [{"kind": huge}]}
    res, ran = _call(tool, json.dumps(args, ensure_ascii=False))
    assert not ran and res.error_kind == "correctable"
    assert len(res.content) < 2_000, f"{len(res.content)} characters"


def test_tool_error_message_masks_secrets() -> None:
    leaked = []
    for make in (ToolRetry, TransientToolError, ToolDenied, TerminalToolError):
        res, _ = _call(_failing(make(f"upstream refused api key sk-proj-{SECRET_CORE}")), "{}")
        assert res.is_error and "upstream refused" in res.content
        if SECRET_CORE[:10] in res.content:
            leaked.append(make.__name__)
    assert not leaked, f"secret shown for {leaked}"


def _failing(exc: Exception) -> Tool:
    async def fail() -> str:
        raise exc

    return Tool.from_function(fail, name="fail", options=ExecutionOptions(max_retries=0))


def test_a_huge_unknown_key_is_not_echoed_in_full() -> None:
    res, ran = _call(search, json.dumps({"query": "q", "k" * 60_000: 1}))
    assert not ran and res.error_kind == "correctable"
    assert len(res.content) < 2_000, f"{len(res.content)} characters"


def _many_unknown_keys(tool_name: str) -> str:
    if tool_name == "raw_order":
        customer = {"id": "a", **{f"i{i}d": 1 for i in range(4_500)}}
        return json.dumps({"customer": customer, "lines": [{"sku": "a", "qty": 1}]})
    address = {"street": "s", "city": "c", "zip": "75001", **{f"cit{i}": 1 for i in range(4_500)}}
    return json.dumps({"person": {"name": "a", "age": 1, "address": address}})


@pytest.mark.parametrize("tool_name", ["create_person", "raw_order"])
def test_thousands_of_unknown_keys_are_refused_quickly(tool_name: str) -> None:
    """The budget is 10 ms per check on any input up to the size limit; the bound here
    is generous (best of 3 runs, 60 ms) so a loaded machine does not make it flaky."""
    tool = next(t.tool for t in targets() if t.tool.name == tool_name)
    raw = _many_unknown_keys(tool_name)
    assert len(raw.encode()) < 65_536
    assert _best_of_3(tool, raw, 0.060) < 0.060


def _many_invalid_items(tool_name: str) -> str:
    empties = ",".join(["{}"] * 9_900)  # under the 10,000-item limit, each item invalid
    return {
        "raw_order": '{"customer": {"id": "a"}, "lines": [' + empties + "]}",
        "raw_deploy": '{"targets": [' + empties + '], "strategy": {"type": "bluegreen"}}',
        "walk_tree": '{"root": {"value": 1, "children": [' + empties + "]}}",
    }[tool_name]


@pytest.mark.parametrize("tool_name", ["raw_order", "raw_deploy", "walk_tree"])
def test_many_invalid_items_are_refused_quickly(tool_name: str) -> None:
    """Generous bound (best of 3 runs, 100 ms) for what is budgeted at 10 ms a check."""
    tool = next(t.tool for t in targets() if t.tool.name == tool_name)
    assert _best_of_3(tool, _many_invalid_items(tool_name), 0.100) < 0.100


def _best_of_3(tool: Tool, raw: str, bound: float) -> float:
    """The fastest of up to 3 runs (a loaded machine only ever slows a run down); stops early
    once a run is 5x over `bound`, which no machine load explains."""
    gate = Gate([tool])

    async def run() -> float:
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            res = await gate.execute(ToolCall("c-1", tool.name, raw), RunContext())
            best = min(best, time.perf_counter() - t0)
            assert res.error_kind == "correctable"
            if best < bound or best > 5 * bound:
                break
        return best

    return asyncio.run(run())


# --- the schema the model is shown ----------------------------------------------------------------


def _open_objects(node: Any, path: str = "#") -> list[str]:
    """Object schemas that list properties but do not say whether others are allowed."""
    out: list[str] = []
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            out.append(path)
        for k, v in node.items():
            out += _open_objects(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _open_objects(v, f"{path}/{i}")
    return out


def test_exported_schema_closes_nested_objects_the_gate_closes() -> None:
    for t in targets():
        assert _open_objects(t.tool.spec.parameters) == [], t.tool.name


def test_nested_unknown_key_is_refused() -> None:
    """The other half of the finding above: the gate refuses what the schema now forbids."""
    res, ran = _call(
        draw, json.dumps({"shapes": [{"kind": "circle", "radius": 1, "delete_all": True}]})
    )
    assert not ran and res.error_kind == "correctable"
    assert "delete_all" in res.content


@pytest.mark.parametrize(
    "ref", ["#/$defs/missing", "#/definitions/x/y", "https://example.com/s.json", "#/properties"]
)
def test_a_raw_schema_with_a_reference_that_cannot_resolve_is_refused(ref: str) -> None:
    """A dangling $ref: once accepted at registration, every call then ended in an internal error.
    (A pointer to a non-schema, like `#/properties`, must not slip through either.)"""
    schema = {
        "type": "object",
        "properties": {"a": {"$ref": ref}},
        "definitions": {"x": {}},
    }

    async def body(**kwargs: Any) -> str:
        return "ok"

    try:
        tool = Tool.from_schema("dangling", "d", schema, body)
    except SchemaError:
        return
    res, _ = _call(tool, '{"a": 1}')
    assert res.error_kind != "terminal", res.content


def test_raw_order_schema_is_the_one_under_test() -> None:
    """Guards the reproductions above against a silent change of the fixture schema."""
    assert RAW_ORDER["properties"]["pin"]["pattern"] == "^[0-9]{4}$"
    assert "pin" in _raw_order().annotations.sensitive


# --- the audit record --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    ['{"query": "a\\ud800"}', {"query": "a\ud800"}, {"\udc00": 1}],
    ids=["escaped-in-text", "decoded-value", "decoded-key"],
)
def test_call_with_a_lone_surrogate_is_still_audited(arguments: Any) -> None:
    from callgate.audit import AuditLog, MemoryAuditStore

    store = MemoryAuditStore()
    audit = AuditLog(store)
    call = ToolCall("c-1", "search", arguments)
    res = asyncio.run(Gate([search], observers=[audit]).execute(call, RunContext()))
    assert res.error_kind == "correctable"
    assert [e.data["call_id"] for e in store.iter_all() if e.kind == "call"] == ["c-1"]
    assert audit.failures == 0


def test_unknown_tool_name_is_redacted_in_the_audit_record() -> None:
    from callgate.audit import AuditLog, MemoryAuditStore

    store = MemoryAuditStore()
    call = ToolCall("c-1", f"sk-proj-{SECRET_CORE}", "{}")
    res = asyncio.run(Gate([search], observers=[AuditLog(store)]).execute(call, RunContext()))
    assert res.error_kind == "correctable" and SECRET_CORE[:10] not in res.content
    records = [json.dumps(e.to_dict()) for e in store.iter_all()]
    assert len(records) == 1
    assert SECRET_CORE[:10] not in records[0]


def test_a_secret_sent_as_a_key_name_is_redacted_in_the_audit_record() -> None:
    from callgate.audit import AuditLog, MemoryAuditStore

    store = MemoryAuditStore()
    call = ToolCall("c-1", "search", json.dumps({"query": "q", f"sk-proj-{SECRET_CORE}": 1}))
    res = asyncio.run(Gate([search], observers=[AuditLog(store)]).execute(call, RunContext()))
    assert res.error_kind == "correctable" and SECRET_CORE[:10] not in res.content
    records = [json.dumps(e.to_dict()) for e in store.iter_all()]
    assert len(records) == 1
    assert SECRET_CORE[:10] not in records[0]
