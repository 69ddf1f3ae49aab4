"""Provider dialects: golden exports, acceptance by the official SDKs (types and the real wire
through a local HTTP server), strict mode and its null round trip, Gemini's keyword subset and
recursive-reference inlining."""

from __future__ import annotations

import copy
import datetime as dt
import enum
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, TypeAdapter

from callgate.dialects import (
    export_tools,
    restore_strict_nulls,
    strict_compatible,
    strict_schema,
    to_anthropic,
    to_gemini,
    to_openai_chat,
    to_openai_responses,
)
from callgate.dialects.gemini import GEMINI_SCHEMA_KEYWORDS, inline_refs
from callgate.errors import SchemaError
from callgate.tools.definition import Tool, ToolSpec, tool
from callgate.tools.schema import ArgumentsInvalid
from tests.fakes.http import FakeHTTPServer, Reply

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("CALLGATE_UPDATE_GOLDEN") == "1"


# --- the representative tools ----------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    city: str
    postcode: Annotated[str, Field(pattern=r"^[0-9]{5}$")] = Field(description="5-digit code")
    country: str = "FR"


class Customer(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=80)]
    email: str | None = None
    address: Address = Field(description="Where the order is delivered")


class LineItem(BaseModel):
    sku: str
    quantity: Annotated[int, Field(ge=1, le=99)] = 1


class Section(BaseModel):
    title: str
    children: list[Section] = []


@tool(read_only=True)
def search_products(
    query: str,
    category: Literal["books", "music", "games"],
    max_price: Annotated[float, Field(gt=0)] | None = None,
    in_stock: bool = True,
) -> list[str]:
    """Search the catalogue by free text.

    Args:
        query: words to look for in titles
        category: which shelf to search
        max_price: upper price bound in euros
        in_stock: only products that can ship today
    """
    return []


@tool
def set_light(color: Color, brightness: Annotated[int, Field(ge=0, le=100)] = 80) -> str:
    """Switch the desk light to a colour and brightness."""
    return f"{color.value}:{brightness}"


@tool
def create_order(customer: Customer, items: list[LineItem], note: str | None = None) -> str:
    """Place an order for a customer.

    Args:
        customer: who buys
        items: what they buy (at least one)
        note: a message for the courier
    """
    return "ok"


@tool
def update_inventory(counts: dict[str, int]) -> str:
    """Set stock levels by SKU."""
    return "ok"


@tool(read_only=True)
def lookup_flight(
    code: Annotated[str, Field(pattern=r"^[A-Z]{2}[0-9]{1,4}$")], date: dt.date
) -> str:
    """Flight status for a flight number on a day."""
    return "on time"


@tool
def save_outline(root: Section, depth_limit: int = 5) -> str:
    """Store a document outline (sections nest freely)."""
    return "saved"


@tool(read_only=True)
def ping() -> str:
    """Health check."""
    return "pong"


RAW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Transfer",
    "$defs": {
        "Money": {
            "type": "object",
            "description": "An amount in a currency",
            "properties": {
                "amount": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01},
                "currency": {"type": "string", "enum": ["EUR", "USD"]},
            },
            "required": ["amount", "currency"],
        }
    },
    "properties": {
        "kind": {"const": "transfer"},
        "money": {"$ref": "#/$defs/Money", "description": "How much to send"},
        "reference": {
            "type": "string",
            "minLength": 3,
            "maxLength": 35,
            "examples": ["INV-2024-001"],
            "default": "n/a",
        },
        "iban": {"type": "string", "format": "iban", "title": "IBAN"},
        "channel": {"oneOf": [{"type": "string", "enum": ["sepa"]}, {"type": "integer"}]},
    },
    "required": ["kind", "money", "iban"],
}

transfer_money = Tool.from_schema(
    "transfer_money",
    "Send money to an IBAN. Irreversible once booked.",
    RAW_SCHEMA,
    lambda **kw: "sent",
    annotations=None,
)

TOOLS: list[Tool] = [
    search_products,
    set_light,
    create_order,
    update_inventory,
    lookup_flight,
    save_outline,
    ping,
    transfer_money,
]
BY_NAME = {t.name: t for t in TOOLS}

EXPORTS: dict[str, Any] = {
    "openai_chat": lambda s: to_openai_chat(s),
    "openai_chat_strict": lambda s: to_openai_chat(s, strict="auto"),
    "openai_responses": lambda s: to_openai_responses(s),
    "openai_responses_strict": lambda s: to_openai_responses(s, strict="auto"),
    "anthropic": to_anthropic,
    "gemini": to_gemini,
}


# --- golden files ----------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", sorted(EXPORTS))
@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_export_matches_golden(dialect: str, name: str) -> None:
    exported = EXPORTS[dialect](BY_NAME[name].spec)
    text = json.dumps(exported, indent=2, ensure_ascii=False) + "\n"
    path = GOLDEN / dialect / f"{name}.json"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with CALLGATE_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{dialect}/{name} drifted from its golden"


def test_golden_directory_has_no_stale_files() -> None:
    expected = {f"{d}/{n}.json" for d in EXPORTS for n in BY_NAME}
    found = {str(p.relative_to(GOLDEN)) for p in GOLDEN.glob("*/*.json")}
    assert found == expected


@pytest.mark.parametrize("dialect", sorted(EXPORTS))
def test_exports_are_pure_and_deterministic(dialect: str) -> None:
    for t in TOOLS:
        before = copy.deepcopy(t.spec.parameters)
        first = json.dumps(EXPORTS[dialect](t.spec))
        second = json.dumps(EXPORTS[dialect](t.spec))
        assert first == second
        assert t.spec.parameters == before, f"{dialect} mutated the schema of {t.name}"


def test_export_tools_keeps_order_and_rejects_unknown_dialect() -> None:
    specs = [t.spec for t in TOOLS]
    out = export_tools(specs, "anthropic")
    assert [d["name"] for d in out] == [t.name for t in TOOLS]
    chat = export_tools(specs, "openai_chat", strict="auto")
    assert [d["function"].get("strict", False) for d in chat] == [
        strict_compatible(t.spec.parameters) is None for t in TOOLS
    ]
    with pytest.raises(ValueError, match="unknown dialect"):
        export_tools(specs, "cohere")  # type: ignore[arg-type]


# --- acceptance by the official SDKs ---------------------------------------------------------


def _chat_completion_reply() -> Reply:
    return Reply.json_body(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-test",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "hi"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    )


@pytest.mark.parametrize("strict", [False, "auto"])
def test_openai_chat_export_goes_through_the_sdk_unchanged(strict: Any) -> None:
    import openai
    from openai.types.chat import ChatCompletionFunctionToolParam

    tools = export_tools([t.spec for t in TOOLS], "openai_chat", strict=strict)
    adapter = TypeAdapter(ChatCompletionFunctionToolParam)
    for t in tools:
        adapter.validate_python(t)
    with FakeHTTPServer(base_path="/v1") as server:
        server.enqueue(_chat_completion_reply())
        client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
        client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}], tools=tools
        )
        body = server.requests[0].json
    assert server.requests[0].path == "/v1/chat/completions"
    assert body["tools"] == tools


def test_openai_responses_export_goes_through_the_sdk_unchanged() -> None:
    import openai
    from openai.types.responses import FunctionToolParam

    tools = export_tools([t.spec for t in TOOLS], "openai_responses", strict="auto")
    adapter = TypeAdapter(FunctionToolParam)
    for t in tools:
        adapter.validate_python(t)
        assert isinstance(t["strict"], bool)
    reply = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": "gpt-test",
        "status": "completed",
        "output": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }
    with FakeHTTPServer(base_path="/v1") as server:
        server.enqueue(Reply.json_body(reply))
        client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
        client.responses.create(model="gpt-test", input="hi", tools=tools)  # type: ignore[arg-type]
        body = server.requests[0].json
    assert server.requests[0].path == "/v1/responses"
    assert body["tools"] == tools


def test_anthropic_export_goes_through_the_sdk_unchanged() -> None:
    import anthropic
    from anthropic.types import ToolParam

    tools = export_tools([t.spec for t in TOOLS], "anthropic")
    adapter = TypeAdapter(ToolParam)
    for t in tools:
        adapter.validate_python(t)
        assert t["input_schema"]["type"] == "object"
    reply = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    with FakeHTTPServer() as server:
        server.enqueue(Reply.json_body(reply))
        client = anthropic.Anthropic(base_url=server.url, api_key="sk-test", max_retries=0)
        client.messages.create(
            model="claude-test",
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
            tools=tools,  # type: ignore[arg-type]
        )
        body = server.requests[0].json
    assert server.requests[0].path == "/v1/messages"
    assert body["tools"] == tools


def test_gemini_export_builds_function_declarations_and_reaches_the_wire() -> None:
    from google import genai
    from google.genai import types

    declarations = [to_gemini(t.spec) for t in TOOLS]
    built = [types.FunctionDeclaration.model_validate(d) for d in declarations]
    reply = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1},
    }
    with FakeHTTPServer() as server:
        server.enqueue(Reply.json_body(reply))
        client = genai.Client(
            api_key="test-key", http_options=types.HttpOptions(base_url=server.url)
        )
        client.models.generate_content(
            model="gemini-test",
            contents="hi",
            config=types.GenerateContentConfig(
                tools=[types.Tool(function_declarations=built)],
                automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            ),
        )
        body = server.requests[0].json
    assert server.requests[0].path.endswith("/models/gemini-test:generateContent")
    sent = body["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in sent] == [t.name for t in TOOLS]
    for ours, wire in zip(declarations, sent, strict=True):
        # The SDK writes some field names in snake_case (max_length, any_of), which the API's
        # JSON parser accepts as well; compare in the documented camelCase.
        on_wire = _camel_schema(wire.get("parameters"))
        assert on_wire == ours.get("parameters"), ours["name"]
        _assert_gemini_subset(on_wire, ours["name"])


def _camel_schema(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        head, *rest = key.split("_")
        camel = head + "".join(w.title() for w in rest)
        if key == "properties":
            out[camel] = {name: _camel_schema(sub) for name, sub in value.items()}
        elif isinstance(value, list):
            out[camel] = [_camel_schema(v) for v in value]
        else:
            out[camel] = _camel_schema(value)
    return out


def _assert_gemini_subset(node: Any, where: str) -> None:
    if node is None:
        return
    assert isinstance(node, dict), where
    unknown = set(node) - GEMINI_SCHEMA_KEYWORDS
    assert not unknown, f"{where}: keywords Gemini rejects: {sorted(unknown)}"
    if "type" in node:
        assert node["type"] in {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"}
        if node["type"] != "OBJECT":
            assert "properties" not in node and "required" not in node, where
    if "enum" in node:
        assert all(isinstance(v, str) for v in node["enum"]), where
    if "required" in node:
        assert set(node["required"]) <= set(node.get("properties", {})), where
    for name, sub in node.get("properties", {}).items():
        _assert_gemini_subset(sub, f"{where}.{name}")
    if "items" in node:
        _assert_gemini_subset(node["items"], f"{where}[]")
    for i, sub in enumerate(node.get("anyOf", [])):
        _assert_gemini_subset(sub, f"{where}.anyOf[{i}]")


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_every_gemini_export_uses_only_supported_keywords(name: str) -> None:
    decl = to_gemini(BY_NAME[name].spec)
    assert set(decl) <= {"name", "description", "parameters"}
    _assert_gemini_subset(decl.get("parameters"), name)


# --- Gemini specifics ------------------------------------------------------------------------


def test_gemini_rewrites_what_it_cannot_carry_into_descriptions() -> None:
    params = to_gemini(transfer_money.spec)["parameters"]
    props = params["properties"]
    assert props["kind"] == {"type": "STRING", "enum": ["transfer"]}  # const -> enum of one
    amount = props["money"]["properties"]["amount"]
    assert amount["minimum"] == 0 and "greater than 0" in amount["description"]
    assert "Multiple of 0.01" in amount["description"]
    assert props["money"]["description"].startswith("How much to send")  # the field's own wins
    assert props["iban"]["description"] == "IBAN. Format: iban."  # title used, format moved
    ref = props["reference"]
    assert ref["minLength"] == 3 and ref["maxLength"] == 35
    assert 'Default: "n/a"' in ref["description"] and "INV-2024-001" in ref["description"]
    assert props["channel"]["anyOf"] == [
        {"type": "STRING", "enum": ["sepa"]},
        {"type": "INTEGER"},
    ]


def test_gemini_optional_becomes_nullable_and_integer_bounds_become_inclusive() -> None:
    params = to_gemini(search_products.spec)["parameters"]
    price = params["properties"]["max_price"]
    assert price["type"] == "NUMBER" and price["nullable"] is True
    assert params["required"] == ["query", "category"]
    spec = ToolSpec(
        "count_things",
        "Count.",
        {
            "type": "object",
            "properties": {
                "n": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
                "tag": {"type": ["string", "null"]},
                "level": {"enum": [1, 2, None]},
            },
        },
    )
    props = to_gemini(spec)["parameters"]["properties"]
    assert props["n"] == {"type": "INTEGER", "minimum": 1, "maximum": 9}
    assert props["tag"] == {"type": "STRING", "nullable": True}
    assert props["level"] == {"type": "INTEGER", "description": "One of: 1, 2.", "nullable": True}


def test_gemini_leaves_out_parameters_of_a_tool_without_any() -> None:
    assert to_gemini(ping.spec) == {"name": "ping", "description": "Health check."}


def test_gemini_open_map_is_described_not_declared() -> None:
    counts = to_gemini(update_inventory.spec)["parameters"]["properties"]["counts"]
    assert counts == {
        "type": "OBJECT",
        "description": "An object with any keys; values: integer.",
    }


# --- inline_refs -----------------------------------------------------------------------------


def _depth_of_sections(node: dict[str, Any]) -> int:
    children = node.get("properties", {}).get("children")
    if children is None:
        return 1
    return 1 + _depth_of_sections(children["items"])


@pytest.mark.parametrize("max_depth", [1, 2, 4])
def test_inline_refs_cuts_recursion_at_the_requested_depth(max_depth: int) -> None:
    schema = save_outline.spec.parameters
    out = inline_refs(schema, max_depth=max_depth)
    text = json.dumps(out)
    assert "$ref" not in text and "$defs" not in text
    root = out["properties"]["root"]
    # max_depth full expansions of Section, then one cut level that keeps only `title`.
    assert _depth_of_sections(root) == max_depth + 1
    leaf = root
    while "children" in leaf["properties"]:
        leaf = leaf["properties"]["children"]["items"]
    assert leaf["properties"] == {"title": {"type": "string"}}
    assert "children not shown" in leaf["description"]
    assert schema == save_outline.spec.parameters  # input untouched


def test_inline_refs_keeps_field_keywords_over_the_definition() -> None:
    out = inline_refs(create_order.spec.parameters)
    address = out["properties"]["customer"]["properties"]["address"]
    assert address["description"] == "Where the order is delivered"
    assert address["properties"]["postcode"]["pattern"] == "^[0-9]{5}$"


def test_inline_refs_refuses_remote_and_dangling_references() -> None:
    with pytest.raises(SchemaError, match="only local references"):
        inline_refs({"type": "object", "properties": {"a": {"$ref": "http://x/y.json"}}})
    with pytest.raises(SchemaError, match="points to nothing"):
        inline_refs({"type": "object", "properties": {"a": {"$ref": "#/$defs/Nope"}}})


def test_inline_refs_handles_root_recursion() -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "next": {"$ref": "#"}},
        "required": ["name"],
    }
    out = inline_refs(schema, max_depth=2)
    assert "$ref" not in json.dumps(out)
    # the root itself, two expansions of "#", then the cut without `next`
    cut = out["properties"]["next"]["properties"]["next"]["properties"]["next"]
    assert cut["properties"] == {"name": {"type": "string"}}
    assert cut["description"] == "Nested object; next not shown at this depth."


# --- OpenAI strict mode ----------------------------------------------------------------------


def _objects(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "object" or (
            isinstance(node.get("type"), list) and "object" in node["type"]
        ):
            found.append(node)
        for v in node.values():
            found.extend(_objects(v))
    elif isinstance(node, list):
        for v in node:
            found.extend(_objects(v))
    return found


STRICT_OK = ["search_products", "set_light", "create_order", "lookup_flight", "save_outline"]


@pytest.mark.parametrize("name", STRICT_OK + ["ping"])
def test_strict_schema_closes_every_object_and_requires_every_property(name: str) -> None:
    out = strict_schema(BY_NAME[name].spec.parameters)
    jsonschema.Draft202012Validator.check_schema(out)
    objects = _objects(out)
    assert objects
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])
    text = json.dumps(out)
    assert '"default"' not in text and '"oneOf"' not in text
    for node in _all_nodes(out):
        if "$ref" in node:
            assert set(node) == {"$ref"}, f"$ref with siblings: {node}"


def _all_nodes(node: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        out.append(node)
        for v in node.values():
            out.extend(_all_nodes(v))
    elif isinstance(node, list):
        for v in node:
            out.extend(_all_nodes(v))
    return out


def test_strict_makes_optionals_nullable_and_notes_defaults() -> None:
    out = strict_schema(set_light.spec.parameters)
    b = out["properties"]["brightness"]
    assert b["type"] == ["integer", "null"]
    assert b["minimum"] == 0 and b["maximum"] == 100
    assert "Default: 80" in b["description"]
    order = strict_schema(create_order.spec.parameters)
    addr = order["properties"]["customer"]["properties"]["address"]
    assert addr["properties"]["country"]["type"] == ["string", "null"]
    assert addr["properties"]["street"]["type"] == "string"  # required stays non-null


def test_strict_moves_unsupported_constraints_into_descriptions() -> None:
    out = strict_schema(create_order.spec.parameters)
    customer = out["properties"]["customer"]
    name = customer["properties"]["name"]
    assert "minLength" not in name and "maxLength" not in name
    assert name["description"] == "At least 1 characters. At most 80 characters."
    # $ref with a description next to it is inlined (strict refuses the sibling keyword) ...
    assert customer["description"] == "who buys"
    address = customer["properties"]["address"]
    assert address["description"] == "Where the order is delivered"
    assert address["properties"]["postcode"]["pattern"] == "^[0-9]{5}$"
    # ... and definitions no longer referenced are dropped, the rest kept
    assert sorted(out["$defs"]) == ["LineItem"]
    assert out["properties"]["items"]["items"] == {"$ref": "#/$defs/LineItem"}
    assert "$defs" not in strict_schema(transfer_money.spec.parameters)


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        (update_inventory.spec.parameters, "counts: a free-form object"),
        (
            {"type": "object", "properties": {"x": {"description": "anything"}}},
            "x: has no type",
        ),
        ({"type": "object", "properties": {"x": {}}}, "x: accepts any value"),
        (
            {
                "type": "object",
                "properties": {"p": {"type": "array", "prefixItems": [{"type": "number"}] * 2}},
            },
            "p: tuples",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string", "not": {"enum": ["x"]}}}},
            "a: 'not' is not supported",
        ),
        ({"type": "array", "items": {"type": "string"}}, "root of a strict schema"),
        (
            {"type": "object", "properties": {"tags": {"type": "array"}}},
            "tags: an array needs an item schema",
        ),
        (
            {
                "type": "object",
                "properties": {"m": {"allOf": [{"type": "object"}, {"type": "object"}]}},
            },
            "m: allOf with several schemas",
        ),
    ],
)
def test_strict_refuses_what_it_cannot_express(schema: dict[str, Any], reason: str) -> None:
    with pytest.raises(SchemaError) as info:
        strict_schema(schema)
    assert reason in str(info.value)
    assert strict_compatible(schema) == str(info.value)


def test_strict_true_raises_naming_the_tool_and_auto_falls_back() -> None:
    with pytest.raises(SchemaError, match="'update_inventory' cannot use strict mode"):
        to_openai_chat(update_inventory.spec, strict=True)
    chat = to_openai_chat(update_inventory.spec, strict="auto")
    assert "strict" not in chat["function"]
    assert chat["function"]["parameters"] == update_inventory.spec.parameters
    resp = to_openai_responses(update_inventory.spec, strict="auto")
    assert resp["strict"] is False
    assert to_openai_responses(set_light.spec, strict=True)["strict"] is True


def test_strict_enforces_documented_size_limits() -> None:
    many = {f"p{i}": {"type": "string", "enum": [f"v{j}" for j in range(20)]} for i in range(60)}
    reason = strict_compatible({"type": "object", "properties": many, "required": list(many)})
    assert reason is not None and "1200 enum values" in reason
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(12):
        deep = {"type": "object", "properties": {"x": deep}, "required": ["x"]}
    reason = strict_compatible(deep)
    assert reason is not None and "nested deeper" in reason


# --- strict nulls back to omissions ----------------------------------------------------------

STRICT_ARGS: dict[str, dict[str, Any]] = {
    "search_products": {
        "query": "dune",
        "category": "books",
        "max_price": None,
        "in_stock": None,
    },
    "set_light": {"color": "red", "brightness": None},
    "create_order": {
        "customer": {
            "name": "Ada",
            "email": None,
            "address": {"street": "1 rue X", "city": "Paris", "postcode": "75001", "country": None},
        },
        "items": [{"sku": "A1", "quantity": None}, {"sku": "B2", "quantity": 3}],
        "note": None,
    },
    "lookup_flight": {"code": "AF123", "date": "2025-01-31"},
    "save_outline": {
        "root": {
            "title": "Intro",
            "children": [
                {"title": "Part 1", "children": None},
                {"title": "Part 2", "children": []},
            ],
        },
        "depth_limit": None,
    },
}


@pytest.mark.parametrize("name", STRICT_OK)
def test_strict_arguments_round_trip_through_the_tools_validator(name: str) -> None:
    t = BY_NAME[name]
    args = STRICT_ARGS[name]
    # What a strict model sends is valid for the strict schema ...
    jsonschema.Draft202012Validator(strict_schema(t.spec.parameters)).validate(args)
    restored = restore_strict_nulls(args, t.spec.parameters)
    # ... and, once restored, valid for the tool itself.
    validated = t.validator.validate(restored)
    assert set(validated) == set(t.spec.parameters["properties"])
    assert args == STRICT_ARGS[name]  # not mutated


def test_restore_removes_exactly_the_nulls_that_mean_omitted() -> None:
    args = STRICT_ARGS["create_order"]
    with pytest.raises(ArgumentsInvalid):
        create_order.validator.validate(copy.deepcopy(args))  # nested nulls are not valid as-is
    restored = restore_strict_nulls(args, create_order.spec.parameters)
    assert restored["customer"]["email"] is None  # Optional: null kept
    assert "country" not in restored["customer"]["address"]  # defaulted: null removed
    assert restored["items"][0] == {"sku": "A1"}
    assert restored["items"][1] == {"sku": "B2", "quantity": 3}
    assert restored["note"] is None
    validated = create_order.validator.validate(restored)
    assert validated["customer"].address.country == "FR"
    assert validated["items"][0].quantity == 1

    outline = restore_strict_nulls(STRICT_ARGS["save_outline"], save_outline.spec.parameters)
    assert outline["root"]["children"][0] == {"title": "Part 1"}
    assert "depth_limit" not in outline


def test_restore_never_touches_required_or_unknown_nulls() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["a"],
    }
    assert restore_strict_nulls({"a": None, "b": None, "zz": None}, schema) == {
        "a": None,
        "zz": None,
    }


def test_restore_leaves_ambiguous_unions_alone() -> None:
    schema = {
        "type": "object",
        "properties": {
            "target": {
                "anyOf": [
                    {"type": "object", "properties": {"x": {"type": "integer"}}},
                    {"type": "object", "properties": {"x": {"type": "integer"}, "y": {}}},
                ]
            }
        },
    }
    args = {"target": {"x": None}}
    assert restore_strict_nulls(args, schema) == args
    # a single fitting branch is followed
    assert restore_strict_nulls({"target": {"x": None, "y": 1}}, schema) == {"target": {"y": 1}}


# --- property: restore never removes a null the original schema allowed ----------------------

_leaf = st.sampled_from(
    [
        {"type": "string"},
        {"type": "integer"},
        {"type": ["string", "null"]},
        {"type": "null"},
        {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        {"enum": ["a", None]},
        {"enum": ["a", "b"]},
        {"const": None},
        {"const": 3},
        {},
        {"description": "anything"},
        {"$ref": "#/$defs/Nullable"},
        {"$ref": "#/$defs/Strict"},
        {"allOf": [{"type": "string"}]},
        {"oneOf": [{"type": "null"}, {"type": "boolean"}]},
        {"nullable": True, "type": "string"},
    ]
)


def _objects_of(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from("abcdef"), children, max_size=4).flatmap(
        lambda props: st.lists(st.sampled_from(sorted(props) or ["a"]), unique=True).map(
            lambda req: {"type": "object", "properties": props, "required": req}
        )
    )


_schemas = st.recursive(
    _leaf,
    lambda children: st.one_of(
        _objects_of(children),
        children.map(lambda s: {"type": "array", "items": s}),
        children.map(lambda s: {"anyOf": [s, {"type": "null"}]}),
    ),
    max_leaves=12,
)
_DEFS = {"Nullable": {"type": ["integer", "null"]}, "Strict": {"type": "integer"}}


def _values_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values shaped by the schema, with nulls sprinkled everywhere."""
    if schema.get("type") == "object":
        props = schema["properties"]
        return st.fixed_dictionaries(
            {}, optional={k: st.one_of(st.none(), _values_for(v)) for k, v in props.items()}
        )
    if schema.get("type") == "array":
        return st.lists(st.one_of(st.none(), _values_for(schema["items"])), max_size=3)
    if "anyOf" in schema and schema["anyOf"][0] != {"type": "integer"}:
        return st.one_of(st.none(), _values_for(schema["anyOf"][0]))
    return st.one_of(st.none(), st.integers(0, 3), st.sampled_from(["a", "b"]), st.booleans())


def _null_allowed(prop: dict[str, Any]) -> bool:
    """The oracle: jsonschema itself says whether null validates against the property."""
    return jsonschema.Draft202012Validator({"$defs": _DEFS, **prop}).is_valid(None)


def _removed_nulls(before: Any, after: Any, schema: dict[str, Any], out: list[Any]) -> None:
    while True:  # optionals nest: anyOf [anyOf [X, null], null]
        real = [b for b in schema.get("anyOf", []) if b != {"type": "null"}]
        if len(real) != 1:
            break
        schema = real[0]
    if isinstance(before, dict) and isinstance(after, dict):
        props = schema.get("properties", {})
        for k, v in before.items():
            if k not in after:
                out.append((k, props.get(k), v))
            elif k in props:
                _removed_nulls(v, after[k], props[k], out)
    elif isinstance(before, list) and isinstance(after, list) and "items" in schema:
        assert len(before) == len(after)
        for b, a in zip(before, after, strict=True):
            _removed_nulls(b, a, schema["items"], out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_restore_never_removes_a_null_the_original_allowed(data: st.DataObject) -> None:
    schema = {**data.draw(_objects_of(_schemas)), "$defs": _DEFS}
    args = data.draw(_values_for(schema))
    frozen = json.dumps(args, sort_keys=True)
    restored = restore_strict_nulls(args, schema)
    assert json.dumps(args, sort_keys=True) == frozen  # input not mutated
    removed: list[Any] = []
    _removed_nulls(args, restored, schema, removed)
    for key, prop, value in removed:
        assert value is None, f"removed non-null {key}={value!r}"
        assert prop is not None, f"removed unknown key {key}"
        assert not _null_allowed(prop), f"removed {key} although {prop} allows null"


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_restore_makes_strict_nulls_valid_for_the_original(data: st.DataObject) -> None:
    """Arguments a strict model may send (all keys present, optionals null) become valid
    arguments for the original schema after restoring."""
    props = data.draw(
        st.dictionaries(
            st.sampled_from(["q", "limit", "tag", "when"]),
            st.sampled_from(
                [
                    {"type": "string"},
                    {"type": "integer", "minimum": 0},
                    {"type": ["string", "null"]},
                    {"type": "string", "format": "date"},
                ]
            ),
            min_size=1,
        )
    )
    required = data.draw(st.lists(st.sampled_from(sorted(props)), unique=True))
    original = {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }
    strict = strict_schema(original)
    sent = {k: (None if k not in required else _sample(props[k])) for k in props}
    jsonschema.Draft202012Validator(strict).validate(sent)
    restored = restore_strict_nulls(sent, original)
    jsonschema.Draft202012Validator(original).validate(restored)


def _sample(prop: dict[str, Any]) -> Any:
    return 1 if prop.get("type") == "integer" else "2025-01-01"


# --- through the gate ------------------------------------------------------------------------


@tool(read_only=True)
def quote_order(customer: Customer, items: list[LineItem], rush: bool = False) -> dict[str, Any]:
    """Price an order without placing it."""
    return {
        "country": customer.address.country,
        "quantities": [i.quantity for i in items],
        "rush": rush,
    }


async def test_gate_accepts_strict_arguments_with_top_level_nulls() -> None:
    from callgate.context import RunContext
    from callgate.gate.core import Gate
    from callgate.messages import ToolCall

    sent = {
        "customer": {
            "name": "Ada",
            "email": None,
            "address": {"street": "1 rue X", "city": "Paris", "postcode": "75001", "country": "BE"},
        },
        "items": [{"sku": "A1", "quantity": 2}],
        "rush": None,
    }
    jsonschema.Draft202012Validator(strict_schema(quote_order.spec.parameters)).validate(sent)
    result = await Gate([quote_order]).execute(
        ToolCall("c1", "quote_order", json.dumps(sent)), RunContext()
    )
    assert not result.is_error, result.content
    assert result.data == {"country": "BE", "quantities": [2], "rush": False}


@tool(read_only=True)
def quote_basket(customer: Customer, items: list[LineItem]) -> dict[str, Any]:
    """Price a basket; every top-level parameter is required."""
    return {"country": customer.address.country, "quantities": [i.quantity for i in items]}


async def test_gate_accepts_strict_arguments_with_nested_nulls_only() -> None:
    from callgate.context import RunContext
    from callgate.gate.core import Gate
    from callgate.messages import ToolCall

    sent = {
        "customer": {
            "name": "Ada",
            "email": None,
            "address": {"street": "1 rue X", "city": "Paris", "postcode": "75001", "country": None},
        },
        "items": [{"sku": "A1", "quantity": None}],
    }
    jsonschema.Draft202012Validator(strict_schema(quote_basket.spec.parameters)).validate(sent)
    result = await Gate([quote_basket]).execute(
        ToolCall("c1", "quote_basket", json.dumps(sent)), RunContext()
    )
    assert not result.is_error, result.content
    assert result.data == {"country": "FR", "quantities": [1]}


# --- bad input: a clear SchemaError, never a crash -------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["string", "object", "#"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "properties",
                    "required",
                    "items",
                    "anyOf",
                    "oneOf",
                    "allOf",
                    "$ref",
                    "$defs",
                    "enum",
                    "const",
                    "default",
                    "additionalProperties",
                    "prefixItems",
                    "format",
                    "a",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_arbitrary_schemas_raise_schema_error_or_convert(schema: Any) -> None:
    if not isinstance(schema, dict):
        schema = {"type": "object", "properties": {"p": schema}}
    frozen = json.dumps(schema, sort_keys=True)
    spec = ToolSpec("fuzz_tool", "Fuzzed.", schema)
    for convert in (
        strict_schema,
        lambda s: inline_refs(s, max_depth=2),
        lambda s: to_gemini(spec, max_depth=2),
        lambda s: restore_strict_nulls({"p": None, "q": [None, {"r": None}]}, s),
    ):
        try:
            convert(schema)
        except SchemaError as e:
            assert str(e)
    assert json.dumps(schema, sort_keys=True) == frozen


def test_recursion_through_a_union_is_cut_without_inventing_an_object() -> None:
    schema = {
        "type": "object",
        "$defs": {
            "Json": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"$ref": "#/$defs/Json"}},
                ]
            }
        },
        "properties": {"value": {"$ref": "#/$defs/Json"}},
    }
    out = inline_refs(schema, max_depth=1)
    stub = out["properties"]["value"]["anyOf"][1]["items"]
    assert stub == {"description": "Nested Json: deeper levels are not shown."}


def test_repeated_exports_are_independent_copies() -> None:
    first = strict_schema(create_order.spec.parameters)
    first["properties"]["note"]["description"] = "changed by a caller"
    first["required"].clear()
    second = strict_schema(create_order.spec.parameters)
    assert second["required"] == ["customer", "items", "note"]
    assert second["properties"]["note"]["description"] == "a message for the courier"
    g1 = to_gemini(save_outline.spec)
    g1["parameters"]["properties"].clear()
    assert "root" in to_gemini(save_outline.spec)["parameters"]["properties"]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "object", "properties": {"a": {"type": "text"}}}, "'type' must name JSON types"),
        ({"type": "object", "properties": []}, "'properties' must map names to schemas"),
        ({"type": "object", "required": "a"}, "'required' must be a list"),
        ({"type": "object", "properties": {"a": {"anyOf": []}}}, "'anyOf' must be a non-empty"),
        ({"type": "object", "properties": {"a": {"maxLength": -1}}}, "non-negative integer"),
        ({"type": "object", "properties": {"a": {"items": [{}]}}}, "use prefixItems"),
    ],
)
def test_malformed_schemas_are_refused_with_the_location(
    schema: dict[str, Any], message: str
) -> None:
    for convert in (strict_schema, inline_refs, lambda s: to_gemini(ToolSpec("t", "d", s))):
        with pytest.raises(SchemaError) as info:
            convert(schema)
        assert message in str(info.value)


def test_a_cut_keeps_the_fields_own_description() -> None:
    schema = {
        "type": "object",
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "next": {"$ref": "#/$defs/Node", "description": "the following node"},
                },
                "required": ["label"],
            }
        },
        "properties": {"head": {"$ref": "#/$defs/Node"}},
    }
    out = inline_refs(schema, max_depth=1)
    cut = out["properties"]["head"]["properties"]["next"]
    assert cut["description"] == "the following node. Nested Node; next not shown at this depth."
    assert cut["properties"] == {"label": {"type": "string"}}


def test_exponential_inlining_is_refused_instead_of_exploding() -> None:
    # a binary tree of 8 alternating definitions would expand into millions of nodes
    defs = {
        f"D{i}": {
            "type": "object",
            "properties": {
                "left": {"$ref": f"#/$defs/D{(i + 1) % 8}"},
                "right": {"$ref": f"#/$defs/D{(i + 1) % 8}"},
            },
        }
        for i in range(8)
    }
    schema = {"type": "object", "$defs": defs, "properties": {"t": {"$ref": "#/$defs/D0"}}}
    with pytest.raises(SchemaError, match="too large"):
        inline_refs(schema, max_depth=3)
    assert "too large" in str(
        pytest.raises(SchemaError, to_gemini, ToolSpec("t", "d", schema)).value
    )
