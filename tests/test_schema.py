"""Signature -> JSON Schema and validator: types, constraints, docstrings."""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

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
