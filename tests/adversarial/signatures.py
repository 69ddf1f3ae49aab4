"""The tool signatures the adversarial suite attacks, and a recorder of what their bodies saw.

The shapes are the ones where validators disagree in practice: nested models, discriminated and
plain unions, dict-of-models, recursive models, tuples, Literal/Enum, Annotated constraints,
models that allow or forbid extras, `Any`-typed payloads, raw JSON Schema tools with `$ref`,
`oneOf`, maps and open nested objects, sensitive parameters, a required identifier, and a
destructive tool the default policy never lets run without a person.

Every body records the keyword arguments it received (as plain JSON values) so the suite can
compare them with what the model sent: a body that ran is the only proof that the gate let a
call through.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from callgate import tool
from callgate.tools.definition import Tool

#: (tool name, arguments as plain JSON values) for every body that ran, in order
RECEIVED: list[tuple[str, dict[str, Any]]] = []


def plain(value: Any) -> Any:
    """What a body received, as the JSON the model would have had to send to produce it: only
    the fields that were set (defaults are checked separately), extras included, enums as their
    values, tuples as arrays."""
    if isinstance(value, BaseModel):
        out = {k: plain(v) for k, v in value.__dict__.items() if k in value.model_fields_set}
        for k, v in (value.__pydantic_extra__ or {}).items():
            out[k] = plain(v)
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _record(name: str, kwargs: dict[str, Any]) -> str:
    RECEIVED.append((name, {k: plain(v) for k, v in kwargs.items()}))
    return "ok"


# --- models -----------------------------------------------------------------------------------


class Color(enum.StrEnum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 5


class Address(BaseModel):
    street: Annotated[str, Field(min_length=1, max_length=80)]
    city: str
    zip: Annotated[str, Field(pattern=r"^[0-9]{5}$")]
    country: Literal["FR", "DE", "US"] = "FR"


class Person(BaseModel):
    name: Annotated[str, Field(min_length=1)]
    age: Annotated[int, Field(ge=0, le=150)]
    email: str | None = None
    address: Address
    tags: list[str] = []


class Circle(BaseModel):
    kind: Literal["circle"]
    radius: Annotated[float, Field(gt=0)]


class Rect(BaseModel):
    kind: Literal["rect"]
    w: Annotated[float, Field(gt=0)]
    h: Annotated[float, Field(gt=0)]


class Tri(BaseModel):
    kind: Literal["tri"]
    sides: tuple[float, float, float]


Shape = Annotated[Circle | Rect | Tri, Field(discriminator="kind")]


class Cat(BaseModel):
    meow: bool
    lives: Annotated[int, Field(ge=1, le=9)] = 9


class Dog(BaseModel):
    bark: Annotated[str, Field(max_length=12)]


class Item(BaseModel):
    sku: Annotated[str, Field(pattern=r"^[A-Z]{3}-[0-9]{4}$")]
    qty: Annotated[int, Field(ge=1, le=999)]
    note: str | None = None


class Node(BaseModel):
    value: int
    children: list[Node] = []


class Labels(BaseModel):
    """Extras allowed on purpose: the exported schema says so, so extras are not unknown keys."""

    model_config = ConfigDict(extra="allow")
    env: Literal["dev", "prod"]


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cpu: Annotated[float, Field(ge=0.1, le=64)]
    memory_mb: Annotated[int, Field(ge=16, multiple_of=16)]


# --- function tools -----------------------------------------------------------------------------


@tool
async def create_person(person: Person, notify: bool = False) -> str:
    """Create a person record."""
    return _record("create_person", {"person": person, "notify": notify})


@tool(read_only=True)
async def draw(
    shapes: Annotated[list[Shape], Field(min_length=1, max_length=20)],
    color: Color = Color.RED,
    scale: Annotated[float, Field(ge=0.1, le=10)] = 1.0,
) -> str:
    """Draw shapes."""
    return _record("draw", {"shapes": shapes, "color": color, "scale": scale})


@tool(idempotent=True)
async def restock(
    items: dict[str, Item],
    warehouse: Literal["north", "south"],
    priority: Priority = Priority.LOW,
) -> str:
    """Restock items per warehouse slot."""
    return _record("restock", {"items": items, "warehouse": warehouse, "priority": priority})


@tool
async def adopt(animal: Cat | Dog, name: Annotated[str, Field(min_length=1, max_length=40)]) -> str:
    """Adopt a pet (a plain, undiscriminated union)."""
    return _record("adopt", {"animal": animal, "name": name})


@tool(read_only=True)
async def walk_tree(root: Node, max_depth: Annotated[int, Field(ge=1, le=50)] = 10) -> str:
    """Walk a recursive tree."""
    return _record("walk_tree", {"root": root, "max_depth": max_depth})


@tool(read_only=True, inline=True)
def search(
    query: Annotated[str, Field(min_length=1, max_length=200)],
    limit: Annotated[int, Field(ge=1, le=100)] = 10,
    offset: int = 0,
    filters: dict[str, str] | None = None,
    exact: bool = False,
) -> str:
    """Search documents (a flat signature: the gate's fast path)."""
    kwargs = {"query": query, "limit": limit, "offset": offset, "filters": filters}
    return _record("search", {**kwargs, "exact": exact})


@tool(sensitive=("password", "api_key"))
async def login(
    user_id: str, password: Annotated[str, Field(min_length=8)], api_key: str | None = None
) -> str:
    """Log in (sensitive parameters, a required identifier)."""
    return _record("login", {"user_id": user_id, "password": password, "api_key": api_key})


@tool(destructive=True)
async def wire_money(
    account_id: str,
    amount: Annotated[float, Field(gt=0, le=1_000_000)],
    currency: Literal["EUR", "USD"],
) -> str:
    """Send money (destructive: the default policy needs a person, and there is none here)."""
    return _record("wire_money", {"account_id": account_id, "amount": amount, "currency": currency})


@tool(idempotent=True)
def configure(
    labels: Labels,
    limits: Limits,
    pair: tuple[int, str],
    code: int | str,
    ratio: float = 0.5,
    level: int | None = None,
) -> str:
    """Configure a service (sync, run in a worker thread)."""
    kwargs = {"labels": labels, "limits": limits, "pair": pair, "code": code}
    return _record("configure", {**kwargs, "ratio": ratio, "level": level})


@tool(read_only=True)
async def store_blob(payload: dict[str, Any], label: str = "") -> str:
    """Store an arbitrary JSON payload (where deep nesting and many items can go)."""
    return _record("store_blob", {"payload": payload, "label": label})


@tool(
    sinks={
        "sql": "sql",
        "path": "path",
        "url": "url",
        "html": "html",
        "email": "email",
        "argv": "shell",
    }
)
async def sink_all(
    sql: Annotated[str, Field(max_length=20_000)],
    path: str = "notes.txt",
    url: str | None = None,
    html: str = "",
    email: str | None = None,
    argv: list[str] = [],  # noqa: B006 - a default the schema shows; never mutated
) -> str:
    """Every sanitised sink at once (the gate runs it behind the `Sanitizer` middleware)."""
    kwargs = {"sql": sql, "path": path, "url": url, "html": html}
    return _record("sink_all", {**kwargs, "email": email, "argv": argv})


# --- raw JSON Schema tools ---------------------------------------------------------------------

RAW_ORDER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "customer": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "minLength": 1},
                "vip": {"type": "boolean"},
            },
            "required": ["id"],
        },
        "lines": {
            "type": "array",
            "minItems": 1,
            "maxItems": 50,
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string", "pattern": "^[a-z]+$"},
                    "qty": {"type": "integer", "minimum": 1},
                },
                "required": ["sku", "qty"],
            },
        },
        "mode": {"enum": ["fast", "safe"]},
        "note": {"type": ["string", "null"]},
        "pin": {"type": "string", "pattern": "^[0-9]{4}$"},
    },
    "required": ["customer", "lines"],
}

RAW_DEPLOY: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "target": {
            "type": "object",
            "properties": {
                "host": {"type": "string", "pattern": "^[a-z0-9.-]+$", "maxLength": 63},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            },
            "required": ["host"],
            "additionalProperties": False,
        },
        "strategy": {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {"type": {"const": "rolling"}, "batch": {"type": "integer"}},
                    "required": ["type", "batch"],
                },
                {
                    "type": "object",
                    "properties": {"type": {"const": "bluegreen"}},
                    "required": ["type"],
                },
            ]
        },
    },
    "properties": {
        "targets": {"type": "array", "items": {"$ref": "#/$defs/target"}, "maxItems": 8},
        "strategy": {"$ref": "#/$defs/strategy"},
        "env": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 100}},
        "dry_run": {"type": "boolean", "default": True},
    },
    "required": ["targets", "strategy"],
}

RAW_ANY: dict[str, Any] = {
    "type": "object",
    "properties": {"data": {}, "tag": {"type": "string", "enum": ["a", "b", "c"]}},
    "required": ["data"],
}


def _raw_body(name: str) -> Any:
    async def body(**kwargs: Any) -> str:
        return _record(name, kwargs)

    return body


def _raw(name: str, schema: dict[str, Any], **ann: Any) -> Tool:
    from callgate.tools.definition import ToolAnnotations

    return Tool.from_schema(
        name,
        f"Raw schema tool {name}.",
        schema,
        _raw_body(name),
        annotations=ToolAnnotations(**ann),
    )


@dataclass(frozen=True, slots=True)
class Target:
    """One attacked tool and what the suite must know about it beyond its schema."""

    tool: Tool
    #: the default policy refuses it whatever the arguments (a documented reason not to run)
    always_denied: bool = False
    #: parameters whose values must never appear in a model-facing text
    sensitive: frozenset[str] = field(default_factory=frozenset)
    #: declared by a raw JSON Schema rather than a Python signature
    raw: bool = False
    #: gated behind the `Sanitizer` middleware (which may deny arguments the schema accepts)
    sanitized: bool = False


def targets() -> list[Target]:
    """Every attacked tool, freshly registered raw ones included (cheap, deterministic)."""
    return [
        Target(create_person),
        Target(draw),
        Target(restock),
        Target(adopt),
        Target(walk_tree),
        Target(search),
        Target(login, sensitive=frozenset({"password", "api_key"})),
        Target(wire_money, always_denied=True),
        Target(configure),
        Target(store_blob),
        Target(sink_all, sanitized=True),
        Target(
            _raw("raw_order", RAW_ORDER, idempotent=True, sensitive=frozenset({"pin"})),
            sensitive=frozenset({"pin"}),
            raw=True,
        ),
        Target(_raw("raw_deploy", RAW_DEPLOY), raw=True),
        Target(_raw("raw_any", RAW_ANY, read_only=True), raw=True),
    ]
