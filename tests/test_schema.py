"""Signature -> JSON Schema and validator: types, constraints, docstrings."""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from callgate import tool
from callgate.tools.schema import ArgumentsInvalid, FieldIssue, did_you_mean, find_unknown_keys


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


class Level(enum.IntEnum):
    ONE = 1
    TWO = 2


class Address(BaseModel):
    street: str
    city: str = Field(description="City name")


class Person(BaseModel):
    name: str
    address: Address
    emails: list[str] = []


def props_of(t: Any) -> dict[str, Any]:
    p: dict[str, Any] = t.spec.parameters["properties"]
    return p


def issues_of(t: Any, args: dict[str, Any]) -> list[FieldIssue]:
    with pytest.raises(ArgumentsInvalid) as ei:
        t.validator.validate(args)
    return ei.value.issues


# --- types ----------------------------------------------------------------------------------


def test_scalar_types_and_required() -> None:
    @tool
    def f(s: str, i: int, x: float, b: bool, opt: str = "d") -> None: ...

    p = props_of(f)
    assert p["s"] == {"type": "string"}
    assert p["i"] == {"type": "integer"}
    assert p["x"] == {"type": "number"}
    assert p["b"] == {"type": "boolean"}
    assert p["opt"] == {"default": "d", "type": "string"}
    assert f.spec.parameters["required"] == ["s", "i", "x", "b"]
    assert f.spec.parameters["type"] == "object"
    assert f.spec.parameters["additionalProperties"] is False


def test_no_auto_titles_but_property_named_title_kept() -> None:
    @tool
    def f(title: str, person: Person) -> None: ...

    params = f.spec.parameters

    def titles(node: Any, in_props: bool = False) -> list[Any]:
        out: list[Any] = []
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "title" and not in_props:
                    out.append(v)
                out += titles(v, k in ("properties", "$defs"))
        elif isinstance(node, list):
            for v in node:
                out += titles(v)
        return out

    assert titles(params) == []
    assert params["properties"]["title"] == {"type": "string"}


def test_literal_and_enums() -> None:
    @tool
    def f(
        mode: Literal["fast", "slow"],
        prio: Priority = Priority.LOW,
        level: Level = Level.ONE,
    ) -> dict[str, Any]:
        return {"mode": mode, "prio": prio, "level": level}

    p = props_of(f)
    assert p["mode"] == {"enum": ["fast", "slow"], "type": "string"}
    defs = f.spec.parameters["$defs"]
    assert defs["Priority"]["enum"] == ["low", "high"]
    assert defs["Level"]["enum"] == [1, 2]
    v = f.validator.validate({"mode": "fast", "prio": "high", "level": 2})
    assert v == {"mode": "fast", "prio": Priority.HIGH, "level": Level.TWO}

    (issue,) = issues_of(f, {"mode": "medium"})
    assert issue.path == ("mode",)
    assert issue.allowed == ["fast", "slow"]
    (issue,) = issues_of(f, {"mode": "fast", "prio": "urgent"})
    assert issue.allowed == ["low", "high"]


def test_optional_accepts_null_and_defaults() -> None:
    @tool
    def f(a: int | None = None, b: int | None = 3, c: str = "x") -> None: ...

    p = props_of(f)
    assert p["a"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert f.validator.validate({"a": None, "b": None}) == {"a": None, "b": None, "c": "x"}
    # only the non-nullable optional is treated as "null means omitted"
    assert f.validator.null_means_omitted == frozenset({"c"})


def test_nested_models_lists_dicts() -> None:
    @tool
    def f(person: Person, scores: dict[str, int], tags: list[Priority]) -> None: ...

    params = f.spec.parameters
    assert params["properties"]["person"] == {"$ref": "#/$defs/Person"}
    assert params["$defs"]["Address"]["properties"]["city"]["description"] == "City name"
    assert params["properties"]["scores"] == {
        "additionalProperties": {"type": "integer"},
        "type": "object",
    }
    assert params["properties"]["tags"]["items"] == {"$ref": "#/$defs/Priority"}
    ok = f.validator.validate(
        {
            "person": {"name": "a", "address": {"street": "s", "city": "c"}},
            "scores": {"x": 1},
            "tags": ["low"],
        }
    )
    assert isinstance(ok["person"], Person)
    assert ok["person"].address.city == "c"
    assert ok["tags"] == [Priority.LOW]

    issues = issues_of(
        f,
        {
            "person": {"name": "a", "address": {"street": 5}},
            "scores": {"x": "many"},
            "tags": ["low", "mid"],
        },
    )
    paths = {i.path for i in issues}
    assert ("person", "address", "street") in paths
    assert ("person", "address", "city") in paths
    assert ("scores", "x") in paths
    assert ("tags", 1) in paths


def test_annotated_field_constraints() -> None:
    @tool
    def f(
        n: Annotated[int, Field(ge=1, le=10, description="How many")],
        code: Annotated[str, Field(pattern=r"^[A-Z]{3}$", min_length=3)],
        ratio: Annotated[float, Field(gt=0, lt=1)] = 0.5,
        items: Annotated[list[int], Field(max_length=2)] = [],
    ) -> None: ...

    p = props_of(f)
    assert p["n"] == {"description": "How many", "maximum": 10, "minimum": 1, "type": "integer"}
    assert p["code"]["pattern"] == "^[A-Z]{3}$"
    assert p["ratio"]["exclusiveMinimum"] == 0
    assert p["items"]["maxItems"] == 2
    assert f.validator.validate({"n": 3, "code": "ABC"})["ratio"] == 0.5
    issues = issues_of(f, {"n": 11, "code": "abc", "ratio": 1, "items": [1, 2, 3]})
    assert {i.path for i in issues} == {("n",), ("code",), ("ratio",), ("items",)}
    by = {i.path: i for i in issues}
    assert "less than or equal to 10" in by[("n",)].message
    assert by[("n",)].given == 11


def test_field_as_default_keeps_docstring_description() -> None:
    @tool
    def f(a: int = Field(3, ge=0)) -> None:
        """Do it.

        Args:
            a: The a value.
        """

    assert props_of(f)["a"] == {
        "default": 3,
        "description": "The a value.",
        "minimum": 0,
        "type": "integer",
    }


def test_strict_types_not_silently_coerced_across_kinds() -> None:
    @tool
    def f(n: int, s: str) -> None: ...

    issues = issues_of(f, {"n": "abc", "s": 5})
    assert {i.path: i.kind for i in issues} == {("n",): "type", ("s",): "type"}
    assert {i.path: i.expected for i in issues} == {("n",): "an integer", ("s",): "a string"}


# --- docstrings -----------------------------------------------------------------------------


def test_google_docstring() -> None:
    @tool
    def f(city: str, days: int = 1) -> str:
        """Get the forecast.

        Longer explanation of the tool.

        Args:
            city: Name of the city.
            days: Number of days, 1-7.

        Returns:
            The forecast.
        """
        return ""

    assert f.description == "Get the forecast.\n\nLonger explanation of the tool."
    assert props_of(f)["city"]["description"] == "Name of the city."
    assert props_of(f)["days"]["description"] == "Number of days, 1-7."


def test_numpy_docstring() -> None:
    @tool
    def f(city: str, days: int = 1) -> str:
        """Get the forecast.

        Parameters
        ----------
        city : str
            Name of the city.
        days : int
            Number of days.
        """
        return ""

    assert f.description == "Get the forecast."
    assert props_of(f)["city"]["description"] == "Name of the city."
    assert props_of(f)["days"]["description"] == "Number of days."


def test_sphinx_docstring() -> None:
    @tool
    def f(city: str, days: int = 1) -> str:
        """Get the forecast.

        :param city: Name of the city.
        :param days: Number of days.
        :returns: the forecast
        """
        return ""

    assert f.description == "Get the forecast."
    assert props_of(f)["city"]["description"] == "Name of the city."
    assert props_of(f)["days"]["description"] == "Number of days."


def test_explicit_description_wins_and_missing_docstring() -> None:
    @tool(description="Explicit.")
    def f(a: int) -> None:
        """Docstring."""

    @tool
    def g(a: int) -> None: ...

    assert f.description == "Explicit."
    assert g.description == ""
    assert "description" not in props_of(g)["a"]


# --- unknown parameters ---------------------------------------------------------------------


def test_unknown_top_level_parameter_reported_with_suggestion() -> None:
    @tool
    def f(city: str) -> None: ...

    issues = issues_of(f, {"city": "a", "citty": "b"})
    assert [(i.path, i.kind, i.suggestion) for i in issues] == [(("citty",), "unknown", "city")]


def test_unknown_nested_keys_are_reported_not_dropped() -> None:
    @tool
    def f(person: Person, people: list[Person] = []) -> None: ...

    good = {"name": "a", "address": {"street": "s", "city": "c"}}
    issues = issues_of(
        f,
        {
            "person": {**good, "nick": "x", "address": {"street": "s", "city": "c", "zip": 1}},
            "people": [good, {**good, "age": 3}],
        },
    )
    paths = sorted(str(i.path) for i in issues)
    assert paths == sorted(
        str(p) for p in [("person", "nick"), ("person", "address", "zip"), ("people", 1, "age")]
    )
    assert all(i.kind == "unknown" for i in issues)


def test_unknown_nested_key_reported_with_other_errors() -> None:
    @tool
    def f(person: Person, n: int) -> None: ...

    issues = issues_of(
        f, {"person": {"name": "a", "address": {"street": "s", "city": "c"}, "x": 1}, "n": "z"}
    )
    assert {i.path for i in issues} == {("n",), ("person", "x")}


def test_optional_nested_model_unknown_keys() -> None:
    @tool
    def f(addr: Address | None = None) -> None: ...

    (issue,) = issues_of(f, {"addr": {"street": "s", "city": "c", "zipp": 1}})
    assert issue.path == ("addr", "zipp")


def test_find_unknown_keys_respects_additional_properties() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "properties": {"x": {}}, "additionalProperties": True},
            "b": {"type": "object", "properties": {"y": {}}},
        },
    }
    issues = find_unknown_keys({"a": {"z": 1}, "b": {"y": 1, "w": 2}, "c": 1}, schema)
    assert sorted(i.path for i in issues) == [("b", "w"), ("c",)]


def test_did_you_mean() -> None:
    assert did_you_mean("serch", ["search", "fetch"]) == "search"
    assert did_you_mean("get-weather", ["get_weather"]) == "get_weather"
    assert did_you_mean("zzz", ["search"]) is None
    assert did_you_mean("x", []) is None


def test_validated_args_are_fresh_objects() -> None:
    @tool
    def f(tags: list[str] = []) -> None: ...

    a = f.validator.validate({})
    a["tags"].append("x")
    assert f.validator.validate({})["tags"] == []


def test_description_precedence_field_then_annotated_then_docstring() -> None:
    shared = Field(1, ge=0)

    @tool
    def f(
        a: Annotated[int, Field(description="from Annotated")],
        b: int = Field(2, description="from Field"),
        c: int = shared,
    ) -> None:
        """Do it.

        Args:
            a: from docstring a
            b: from docstring b
            c: from docstring c
        """

    p = props_of(f)
    assert p["a"]["description"] == "from Annotated"
    assert p["b"]["description"] == "from Field"
    assert p["c"]["description"] == "from docstring c"
    assert shared.description is None  # the caller's FieldInfo was not mutated


# --- unknown keys at every depth -------------------------------------------------------------


class ShapeA(BaseModel):
    kind: Literal["a"]
    n: int


class ShapeB(BaseModel):
    kind: Literal["b"]
    label: str


class Open(BaseModel):
    model_config = {"extra": "allow"}
    x: int


class Aliased(BaseModel):
    user_name: str = Field(alias="userName")


def test_unknown_key_in_a_union_member_is_reported_not_dropped() -> None:
    @tool
    def draw(shape: ShapeA | ShapeB) -> None: ...

    (issue,) = issues_of(draw, {"shape": {"kind": "a", "n": 1, "delete_all": True}})
    assert (issue.path, issue.kind, issue.given) == (("shape", "delete_all"), "unknown", True)
    # the other member is reached the same way, with a suggestion from that member's fields
    (issue,) = issues_of(draw, {"shape": {"kind": "b", "label": "x", "lable": "y"}})
    assert (issue.path, issue.suggestion) == (("shape", "lable"), "label")
    assert draw.validator.validate({"shape": {"kind": "a", "n": 1}})["shape"] == ShapeA(
        kind="a", n=1
    )


def test_unknown_key_in_a_discriminated_union_inside_a_list() -> None:
    @tool
    def draw(shapes: list[Annotated[ShapeA | ShapeB, Field(discriminator="kind")]]) -> None: ...

    args = {"shapes": [{"kind": "b", "label": "x"}, {"kind": "a", "n": 2, "all": 1}]}
    (issue,) = issues_of(draw, args)
    assert issue.path == ("shapes", 1, "all")


def test_unknown_key_in_dict_of_models_values() -> None:
    @tool
    def book(people: dict[str, Address]) -> None: ...

    args = {"people": {"ann": {"street": "s", "city": "c"}, "bob": {"street": "s", "cty": "c"}}}
    issues = issues_of(book, args)
    unknown = [i for i in issues if i.kind == "unknown"]
    assert [(i.path, i.suggestion) for i in unknown] == [(("people", "bob", "cty"), "city")]


def test_unknown_key_in_dict_of_models_when_otherwise_valid() -> None:
    @tool
    def book(people: dict[str, Address]) -> None: ...

    args = {"people": {"bob": {"street": "s", "city": "c", "admin": True}}}
    (issue,) = issues_of(book, args)
    assert issue.path == ("people", "bob", "admin")


class Point(TypedDict):
    x: int
    y: int


def test_unknown_key_in_typed_dict_and_optional_union() -> None:
    @tool
    def plot(p: Point, q: Address | int | None = None) -> None: ...

    (issue,) = issues_of(plot, {"p": {"x": 1, "y": 2, "z": 3}})
    assert issue.path == ("p", "z")
    (issue,) = issues_of(plot, {"p": {"x": 1, "y": 2}, "q": {"street": "s", "city": "c", "w": 0}})
    assert issue.path == ("q", "w")


def test_models_that_allow_extra_keys_and_aliases_are_respected() -> None:
    @tool
    def f(o: Open, a: Aliased, m: dict[str, Open]) -> None: ...

    out = f.validator.validate({"o": {"x": 1, "y": 2}, "a": {"userName": "u"}, "m": {}})
    assert out["o"].model_extra == {"y": 2}
    assert out["a"].user_name == "u"
    (issue,) = issues_of(f, {"o": {"x": 1}, "a": {"userName": "u", "usr": 1}, "m": {}})
    assert issue.path == ("a", "usr")


def _raw(parameters: dict[str, Any]) -> Any:
    from callgate.tools.definition import Tool

    return Tool.from_schema("raw", "A raw tool.", parameters, lambda **kw: kw)


_RAW_NESTED = {
    "type": "object",
    "properties": {
        "target": {
            "type": "object",
            "properties": {"host": {"type": "string"}, "port": {"type": "integer"}},
        },
        "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
        "meta": {"type": "object", "properties": {"a": {}}, "additionalProperties": True},
        "tags": {"type": "object", "patternProperties": {"^t": {"type": "string"}}},
        "both": {
            "allOf": [
                {"type": "object", "properties": {"p": {"type": "integer"}}},
                {"type": "object", "properties": {"q": {"type": "integer"}}},
            ]
        },
    },
    "$defs": {"Item": {"type": "object", "properties": {"sku": {"type": "string"}}}},
}


def test_raw_schema_refuses_unknown_keys_at_every_level() -> None:
    t = _raw(_RAW_NESTED)
    (issue,) = issues_of(t, {"target": {"host": "h", "prot": 1}})
    assert (issue.path, issue.kind, issue.suggestion) == (("target", "prot"), "unknown", "port")
    (issue,) = issues_of(t, {"items": [{"sku": "a"}, {"sku": "b", "qty": 9}]})
    assert issue.path == ("items", 1, "qty")


def test_raw_schema_keeps_what_it_declares_open() -> None:
    t = _raw(_RAW_NESTED)
    args = {"meta": {"a": 1, "b": 2}, "tags": {"t1": "x"}, "both": {"p": 1, "q": 2}}
    assert t.validator.validate(args) == args
    # the caller's schema is not modified by closing
    assert "additionalProperties" not in _RAW_NESTED["properties"]["target"]  # type: ignore[operator]


# --- dangling references and the one $ref rule ----------------------------------------------


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("#/$defs/Missing", "points to nothing"),
        ("other.json#/$defs/Item", "only local references"),
        ("https://example.com/s.json", "only local references"),
        ("#/$defs/Loop", "cycle"),
    ],
)
def test_raw_schema_with_a_bad_ref_is_refused_at_registration(ref: str, message: str) -> None:
    from callgate.errors import SchemaError

    schema = {
        "type": "object",
        "properties": {"x": {"type": "object", "properties": {"y": {"$ref": ref}}}},
        "$defs": {"Loop": {"$ref": "#/$defs/Loop2"}, "Loop2": {"$ref": "#/$defs/Loop"}},
    }
    with pytest.raises(SchemaError, match=message) as ei:
        _raw(schema)
    assert "'raw'" in str(ei.value) and "properties.x.properties.y" in str(ei.value)


def test_ref_rule_pointer_escaping_definitions_and_booleans() -> None:
    from callgate.jsonschema import Refs

    root = {
        "definitions": {"a/b": {"type": "string"}, "m~n": {"type": "integer"}},
        "$defs": {"with space": {"type": "boolean"}, "Any": True, "No": False},
        "properties": {"list": {"prefixItems": [{"type": "null"}]}},
    }
    refs = Refs(root)
    assert refs.resolve("#") is root
    assert refs.resolve("#/definitions/a~1b") == {"type": "string"}
    assert refs.resolve("#/definitions/m~0n") == {"type": "integer"}
    assert refs.resolve("#/$defs/with%20space") == {"type": "boolean"}
    assert refs.resolve("#/properties/list/prefixItems/0") == {"type": "null"}
    assert refs.resolve("#/$defs/Any") == {}
    assert refs.resolve("#/$defs/No") == {"not": {}}


def test_ref_rule_refusals() -> None:
    from callgate.errors import SchemaError
    from callgate.jsonschema import Refs

    refs = Refs({"$defs": {"A": {"type": "string"}, "N": 3}, "list": [1]})
    for bad in ("#/$defs/B", "#/$defs/A/x", "#/list/5", "#/list/x"):
        with pytest.raises(SchemaError, match="points to nothing"):
            refs.resolve(bad)
    with pytest.raises(SchemaError, match="does not point to a schema"):
        refs.resolve("#/$defs/N")
    for remote in ("#anchor", "a.json", "https://x/y#/A"):
        with pytest.raises(SchemaError, match="only local"):
            refs.resolve(remote)


def test_deref_merges_siblings_and_caps_chains() -> None:
    from callgate.errors import SchemaError
    from callgate.jsonschema import MAX_REF_HOPS, Refs, check_refs

    defs = {"M": {"type": "object", "description": "model"}, "R": {"$ref": "#/$defs/M"}}
    refs = Refs({"$defs": defs})
    assert refs.deref({"$ref": "#/$defs/R", "description": "field"}) == {
        "type": "object",
        "description": "field",
    }
    chain = {f"C{i}": {"$ref": f"#/$defs/C{i + 1}"} for i in range(MAX_REF_HOPS + 1)}
    chain[f"C{MAX_REF_HOPS + 1}"] = {"type": "string"}
    with pytest.raises(SchemaError, match="chain longer"):
        Refs({"$defs": chain}).deref({"$ref": "#/$defs/C0"})
    # recursion through structure is a legitimate schema (a tree), not a cycle
    tree = {
        "$ref": "#/$defs/Node",
        "$defs": {"Node": {"type": "object", "properties": {"kids": {"items": {"$ref": "#"}}}}},
    }
    check_refs(tree)


def test_allows_null_is_one_rule_for_every_reader() -> None:
    from callgate.jsonschema import Refs, allows_null

    root = {
        "$defs": {
            "N": {"type": ["integer", "null"]},
            "S": {"type": "integer"},
            "Self": {"anyOf": [{"$ref": "#/$defs/Self"}]},
        }
    }
    refs = Refs(root)
    cases = [
        ({"$ref": "#/$defs/N"}, True),
        ({"$ref": "#/$defs/S"}, False),
        ({"$ref": "#/$defs/Missing"}, True),  # cannot be sure: say yes
        ({"$ref": "#/$defs/Self"}, True),  # a cycle ends, and cannot be sure
        ({"anyOf": [{"type": "string"}, {"type": "null"}]}, True),
        ({"enum": ["a"]}, False),
        ({"const": None}, True),
        ({"nullable": True, "type": "string"}, True),
        ({"allOf": [{"type": "string"}]}, False),
        ({}, True),
    ]
    for schema, expected in cases:
        assert allows_null(schema, refs) is expected, schema


def test_optional_raw_parameter_with_ref_to_non_null_means_omitted() -> None:
    t = _raw(
        {
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/S"}, "b": {"$ref": "#/$defs/N"}},
            "$defs": {"S": {"type": "integer"}, "N": {"type": ["integer", "null"]}},
        }
    )
    assert t.validator.null_means_omitted == frozenset({"a"})


def test_closing_leaves_tests_and_combined_parts_open() -> None:
    from callgate.jsonschema import close_objects

    schema = {
        "type": "object",
        "properties": {"a": {"type": "object", "properties": {"x": {}}}},
        "not": {"properties": {"z": {"const": 1}}},
        "if": {"properties": {"kind": {"const": "b"}}},
        "then": {"properties": {"extra": {"type": "object", "properties": {"y": {}}}}},
        "allOf": [{"properties": {"b": {"type": "object", "properties": {"w": {}}}}}],
        "anyOf": [{"properties": {"a": {}}}, {"required": ["a"]}],
    }
    closed = close_objects(schema)
    assert "additionalProperties" not in closed  # combined with allOf/then: open
    assert closed["properties"]["a"]["additionalProperties"] is False
    assert (
        "additionalProperties" not in closed["not"] and "additionalProperties" not in closed["if"]
    )
    assert "additionalProperties" not in closed["then"]
    assert closed["then"]["properties"]["extra"]["additionalProperties"] is False
    assert "additionalProperties" not in closed["allOf"][0]
    assert closed["allOf"][0]["properties"]["b"]["additionalProperties"] is False
    assert "additionalProperties" not in closed["anyOf"][0]  # its parent lists properties
    union = close_objects({"anyOf": [{"properties": {"a": {}}}, {"properties": {"b": {}}}]})
    assert [m["additionalProperties"] for m in union["anyOf"]] == [False, False]


# --- JSON types are kept: strict validation, as JSON Schema counts ----------------------------


def test_values_of_another_json_type_are_refused_not_converted() -> None:
    @tool
    def f(
        n: int = 0,
        on: bool = False,
        x: float = 0.0,
        level: Level = Level.ONE,
        pick: Literal[1, 2] = 2,
        when: datetime.date | None = None,
        pair: tuple[int, str] | None = None,
        prio: Priority = Priority.LOW,
    ) -> None: ...

    for bad in (
        {"n": "5"},
        {"n": True},
        {"n": 1.5},
        {"on": 1},
        {"on": "yes"},
        {"x": "1.0"},
        {"x": False},
        {"level": True},
        {"pick": True},
    ):
        (issue,) = issues_of(f, bad)
        assert issue.path == (next(iter(bad)),), bad
    ok = f.validator.validate(
        {"n": 3.0, "x": 2, "when": "2026-01-31", "pair": [1, "a"], "prio": "high", "level": 2}
    )
    assert ok["n"] == 3 and type(ok["n"]) is int  # JSON Schema counts 3.0 as an integer
    assert ok["x"] == 2.0 and ok["when"] == datetime.date(2026, 1, 31)
    assert ok["pair"] == (1, "a") and ok["prio"] is Priority.HIGH and ok["level"] is Level.TWO
    assert f.validator.fast_json('{"level": true}') is None  # the fast path does not hide it


def test_integral_floats_are_integers_inside_nested_values_too() -> None:
    @tool
    def g(counts: dict[str, int], items: list[Address | int]) -> None: ...

    out = g.validator.validate({"counts": {"a": 1.0, "b": -0.0}, "items": [2.0]})
    assert out["counts"] == {"a": 1, "b": 0} and out["items"] == [2]
    (issue,) = issues_of(g, {"counts": {"a": 1.25}, "items": []})
    assert issue.path == ("counts", "a")


def test_exported_schema_of_nested_models_is_closed_where_the_gate_is() -> None:
    @tool
    def h(person: Person, o: Open) -> None: ...

    defs = h.spec.parameters["$defs"]
    assert defs["Person"]["additionalProperties"] is False
    assert defs["Address"]["additionalProperties"] is False
    assert defs["Open"]["additionalProperties"] is True  # extra="allow" stays open


def test_error_messages_never_quote_the_value() -> None:
    from callgate.tools.definition import Tool

    secret = "sk-proj-" + "x" * 40
    raw = Tool.from_schema(
        "raw",
        "Raw.",
        {
            "type": "object",
            "properties": {
                "pin": {"type": "string", "pattern": "^[0-9]{4}$"},
                "code": {"type": "string", "maxLength": 3},
            },
        },
        lambda **kw: kw,
    )
    issues = issues_of(raw, {"pin": secret, "code": "y" * 30_000})
    assert {i.path: i.message for i in issues} == {
        ("pin",): "must match the pattern ^[0-9]{4}$",
        ("code",): "must be at most 3 characters long",
    }

    @tool
    def draw(shape: Annotated[ShapeA | ShapeB, Field(discriminator="kind")]) -> None: ...

    (issue,) = issues_of(draw, {"shape": {"kind": secret}})
    assert secret not in issue.message and issue.allowed == ["a", "b"]
    assert issue.path == ("shape", "kind") and issue.given == secret
