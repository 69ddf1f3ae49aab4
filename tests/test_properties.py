"""Property-based tests: whatever a model sends, the gate answers and never runs a tool with
arguments it did not validate."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from callgate import Gate, RunContext, Tool, ToolCall, tool
from callgate.agent.guards import LoopBreaker

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PARAMS = {"name", "count", "ratio", "flag", "tags", "mode", "inner", "opt"}
REQUIRED = {"name", "count", "mode"}


class Inner(BaseModel):
    label: str
    size: int = 1


CALLS: list[dict[str, Any]] = []
TYPE_FAILURES: list[str] = []


def _check_types(kw: dict[str, Any]) -> None:
    """Inside the tool: every argument has exactly its declared type."""
    ok = (
        type(kw["name"]) is str
        and type(kw["count"]) is int
        and type(kw["ratio"]) is float
        and math.isfinite(kw["ratio"])
        and type(kw["flag"]) is bool
        and type(kw["tags"]) is list
        and all(type(t) is str for t in kw["tags"])
        and kw["mode"] in ("a", "b")
        and (kw["inner"] is None or (type(kw["inner"]) is Inner and type(kw["inner"].size) is int))
        and type(kw["opt"]) is int
    )
    if not ok:
        TYPE_FAILURES.append(repr(kw))


@tool
def typed(
    name: str,
    count: int,
    mode: Literal["a", "b"],
    ratio: float = 0.5,
    flag: bool = False,
    tags: list[str] = [],
    inner: Inner | None = None,
    opt: int = 0,
) -> str:
    kw = dict(
        name=name, count=count, mode=mode, ratio=ratio, flag=flag, tags=tags, inner=inner, opt=opt
    )
    _check_types(kw)
    CALLS.append(kw)
    return "ran"


def _schema_fn(**kw: Any) -> str:
    CALLS.append(kw)
    return "ran"


raw_tool = Tool.from_schema(
    "raw",
    "Raw schema tool.",
    {
        "type": "object",
        "properties": {
            "q": {"type": "string", "maxLength": 50},
            "n": {"type": "integer", "minimum": 0},
            "kind": {"enum": ["x", "y"]},
        },
        "required": ["q"],
    },
    _schema_fn,
)

GATE = Gate([typed, raw_tool])

# --- strategies -----------------------------------------------------------------------------

any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)
good_values = {
    "name": st.text(max_size=10),
    "count": st.integers(-5, 5),
    "ratio": st.floats(allow_nan=False, allow_infinity=False),
    "flag": st.booleans(),
    "tags": st.lists(st.text(max_size=5), max_size=3),
    "mode": st.sampled_from(["a", "b"]),
    "inner": st.none() | st.fixed_dictionaries({"label": st.text(max_size=5)}),
    "opt": st.integers(0, 3),
}
key_names = st.sampled_from(sorted(PARAMS)) | any_text
mixed_args = st.dictionaries(
    key_names,
    st.one_of(json_values, *good_values.values()),
    max_size=9,
)
near_valid_args = st.fixed_dictionaries(
    {k: good_values[k] | json_values for k in sorted(REQUIRED)},
    optional={k: v | json_values for k, v in good_values.items() if k not in REQUIRED},
)
huge_or_deep = st.sampled_from(
    [
        "x" * 70_000,
        json.dumps({"name": "y" * 70_000, "count": 1, "mode": "a"}),
        "[" * 50_000,
        '{"a":' * 5_000 + "1" + "}" * 5_000,
        json.dumps({"name": "n", "count": 1, "mode": "a", "tags": [[[[[[[[[[[[]]]]]]]]]]]]}),
        "\x00\x01\x02",
        "\ud800\udfff",
        '{"name": "\\ud800", "count": 1, "mode": "a"}',
        '{"name": "\ud800", "count": 1, "mode": "a"}',
    ]
)


# --- the independent check ------------------------------------------------------------------


class _Dup(Exception):
    pass


def _strict_decode(raw: str | dict[str, Any]) -> Any:
    """stdlib JSON, refusing duplicate keys and non-finite numbers."""
    if isinstance(raw, dict):
        return raw

    def pairs(p: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({k for k, _ in p}) != len(p):
            raise _Dup
        return dict(p)

    def const(c: str) -> Any:
        raise ValueError(c)

    if not raw.strip():
        return {}
    return json.loads(raw, object_pairs_hook=pairs, parse_constant=const)


def _finite(v: Any) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, dict):
        return all(_finite(x) for x in v.values())
    if isinstance(v, list):
        return all(_finite(x) for x in v)
    return True


def _is_int(v: Any) -> bool:
    return type(v) is int


def strictly_valid(args: Any) -> bool:
    """Exact JSON types, no coercion: such a call must run."""
    if not isinstance(args, dict) or not set(args) <= PARAMS or not REQUIRED <= set(args):
        return False
    a = args
    checks = [
        type(a["name"]) is str,
        _is_int(a["count"]),
        a["mode"] in ("a", "b") and type(a["mode"]) is str,
        "ratio" not in a or (type(a["ratio"]) in (int, float) and math.isfinite(a["ratio"])),
        "flag" not in a or type(a["flag"]) is bool,
        "tags" not in a or (type(a["tags"]) is list and all(type(t) is str for t in a["tags"])),
        "opt" not in a or _is_int(a["opt"]),
        "inner" not in a
        or a["inner"] is None
        or (
            type(a["inner"]) is dict
            and set(a["inner"]) <= {"label", "size"}
            and type(a["inner"].get("label")) is str
            and ("size" not in a["inner"] or _is_int(a["inner"]["size"]))
        ),
    ]
    return all(checks) and len(json.dumps(args)) < 60_000 and _utf8_clean(args)


def _utf8_clean(v: Any) -> bool:
    """Lone surrogates (``"\\ud800"``) are refused on purpose: they are not text and break
    whatever a tool hands them to, so such a call is never required to run."""
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(v, dict):
        return all(_utf8_clean(k) and _utf8_clean(x) for k, x in v.items())
    if isinstance(v, list):
        return all(_utf8_clean(x) for x in v)
    return True


def consistent_with(args: Any, ran: dict[str, Any]) -> str | None:
    """If the tool ran, the model's arguments must explain every value it received."""
    if not isinstance(args, dict):
        return "ran with non-object arguments"
    if not set(args) <= PARAMS:
        return f"ran with unknown parameters {set(args) - PARAMS}"
    if not _finite(args):
        return "ran with a non-finite number"
    for k in REQUIRED:
        if args.get(k) is None:
            return f"ran without required {k}"
    if ran["name"] != args["name"]:
        return "name changed"
    if "tags" in args and args["tags"] is not None and ran["tags"] != args["tags"]:
        return "tags changed"
    if ran["mode"] != args["mode"]:
        return "mode changed"
    for k in ("count", "opt"):
        if k in args and args[k] is not None:
            given = args[k]
            if type(given) is bool:
                # Pydantic's lax mode turns true/false into 1/0 for an int parameter
                if int(given) != ran[k]:
                    return f"{k}: {given!r} -> {ran[k]!r}"
            elif isinstance(given, str):
                if not re.fullmatch(r"\s*[-+]?\d+\s*", given) or int(given) != ran[k]:
                    return f"{k}: string {given!r} -> {ran[k]!r}"
            elif given != ran[k]:
                return f"{k}: {given!r} -> {ran[k]!r}"
    for k in ("name", "count", "mode", "ratio", "flag", "tags", "inner", "opt"):
        if k not in args or args[k] is None:
            default = {"ratio": 0.5, "flag": False, "tags": [], "inner": None, "opt": 0}.get(k)
            if k in REQUIRED or ran[k] != default:
                return f"{k} not given but got {ran[k]!r}"
    inner = args.get("inner")
    if inner is not None:
        if not isinstance(inner, dict) or not set(inner) <= {"label", "size"}:
            return "inner: unknown keys were dropped instead of refused"
        if ran["inner"].label != inner.get("label"):
            return "inner.label changed"
    return None


async def check(call: ToolCall) -> None:
    CALLS.clear()
    TYPE_FAILURES.clear()
    res = await GATE.execute(call, RunContext())
    assert res.call_id == call.id
    assert isinstance(res.content, str) and res.content
    assert TYPE_FAILURES == []
    try:
        decoded: Any = _strict_decode(call.arguments)
        decodable = True
    except (ValueError, TypeError, RecursionError, _Dup):
        decoded, decodable = None, False
    if CALLS:
        assert res.error_kind is None, res.content
        assert decodable, f"ran on undecodable arguments {call.arguments!r:.200}"
        assert _utf8_clean(decoded), "ran with a string that is not valid Unicode"
        if call.name == "typed":
            problem = consistent_with(decoded, CALLS[0])
            assert problem is None, problem
        else:
            assert isinstance(decoded, dict) and set(decoded) <= {"q", "n", "kind"}
            assert CALLS[0] == decoded
    else:
        assert res.error_kind is not None
        if call.name == "typed" and decodable:
            assert not strictly_valid(decoded), (decoded, res.content)


# --- properties -----------------------------------------------------------------------------


@SETTINGS
@given(value=json_values)
async def test_any_json_value_as_arguments(value: Any) -> None:
    text = json.dumps(value, allow_nan=True)
    await check(ToolCall("id-json", "typed", text))


@SETTINGS
@given(args=mixed_args)
async def test_mixed_objects_as_text_and_as_mappings(args: dict[str, Any]) -> None:
    await check(ToolCall("id-text", "typed", json.dumps(args, allow_nan=True)))
    await check(ToolCall("id-map", "typed", args))


@SETTINGS
@given(args=near_valid_args)
async def test_near_valid_arguments(args: dict[str, Any]) -> None:
    await check(ToolCall("id-near", "typed", json.dumps(args, allow_nan=True)))
    await check(ToolCall("id-near-raw", "raw", json.dumps(args, allow_nan=True)))


@SETTINGS
@given(args=st.fixed_dictionaries({k: good_values[k] for k in PARAMS}))
async def test_well_typed_arguments_always_run(args: dict[str, Any]) -> None:
    CALLS.clear()
    res = await GATE.execute(ToolCall("ok", "typed", json.dumps(args)), RunContext())
    assert res.error_kind is None, res.content
    assert len(CALLS) == 1 and TYPE_FAILURES == []


@SETTINGS
@given(text=any_text | st.text(max_size=300))
async def test_arbitrary_strings_as_arguments(text: str) -> None:
    await check(ToolCall("id-s", "typed", text))
    await check(ToolCall("id-s2", "raw", text))


@settings(max_examples=16, deadline=None)
@given(text=huge_or_deep)
async def test_huge_deep_and_hostile_text(text: str) -> None:
    await check(ToolCall("id-h", "typed", text))


@SETTINGS
@given(name=any_text | st.sampled_from(["typed", "raw", "typed@1", "typed@2", "Typed", ""]))
async def test_random_tool_names(name: str) -> None:
    CALLS.clear()
    res = await GATE.execute(
        ToolCall("id-n", name, '{"name": "x", "count": 1, "mode": "a"}'), RunContext()
    )
    assert res.call_id == "id-n"
    if name in ("typed", "typed@1"):
        assert res.error_kind is None and len(CALLS) == 1
    else:
        assert res.error_kind is not None and CALLS == []


@SETTINGS
@given(turns=st.lists(st.lists(st.tuples(any_text, json_values), max_size=3), max_size=5))
def test_loop_breaker_never_raises(turns: list[list[tuple[str, Any]]]) -> None:
    b = LoopBreaker()
    for turn in turns:
        calls = [
            ToolCall(str(i), n, json.dumps(v, allow_nan=True)) for i, (n, v) in enumerate(turn)
        ]
        out = b.check_turn(calls)
        assert len(out) == len(calls)


@settings(max_examples=40, deadline=None)
@given(
    calls=st.lists(st.tuples(st.sampled_from(["typed", "raw", "nope"]), json_values), max_size=6)
)
async def test_execute_many_keeps_ids_and_order(calls: list[tuple[str, Any]]) -> None:
    tcs = [ToolCall(f"c{i}", n, json.dumps(v, allow_nan=True)) for i, (n, v) in enumerate(calls)]
    rs = await GATE.execute_many(tcs, RunContext())
    assert [r.call_id for r in rs] == [c.id for c in tcs]
    assert [r.name for r in rs] == [c.name for c in tcs]
