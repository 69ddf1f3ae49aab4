"""The JSON Schema -> GBNF compiler, checked against llama.cpp's own grammar engine.

Only the tokenizer of the default GGUF is loaded (vocab_only), never the network: the grammar
engine needs a vocabulary to turn text into tokens, nothing more.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from callgate.errors import SchemaError
from callgate.providers.local.grammar import (
    compile_call_grammar,
    compile_schema,
    gbnf_literal,
    grammar_accepts,
    unsupported_keywords,
)

llama_cpp = pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def vocab() -> Any:
    from callgate.errors import ModelError
    from callgate.providers.local.model import default_model_path

    try:
        path = default_model_path()
    except ModelError as e:
        pytest.skip(str(e))
    return llama_cpp.Llama(path, vocab_only=True, verbose=False)


def accepts(vocab: Any, schema: dict[str, Any], value: Any) -> bool:
    text = value if isinstance(value, str) else json.dumps(value)
    return grammar_accepts(vocab, compile_schema(schema), text)


WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 0},
    },
    "required": ["city"],
}


def test_required_enum_and_optional_properties(vocab: Any) -> None:
    assert accepts(vocab, WEATHER, {"city": "Paris"})
    assert accepts(vocab, WEATHER, {"city": "Paris", "unit": "celsius"})
    assert accepts(vocab, WEATHER, {"city": "Paris", "days": 3})
    assert accepts(vocab, WEATHER, {"city": "Paris", "unit": "fahrenheit", "days": 10})
    assert not accepts(vocab, WEATHER, {})  # required missing
    assert not accepts(vocab, WEATHER, {"unit": "celsius"})
    assert not accepts(vocab, WEATHER, {"city": "Paris", "unit": "kelvin"})  # not in enum
    assert not accepts(vocab, WEATHER, {"city": "Paris", "wind": True})  # unknown property
    assert not accepts(vocab, WEATHER, {"city": 3})  # wrong type
    assert not accepts(vocab, WEATHER, {"city": "Paris", "days": -1})  # minimum 0: no sign
    assert not accepts(vocab, WEATHER, {"city": "Paris", "days": 1.5})
    assert not accepts(vocab, WEATHER, '{"city": "Paris"')  # incomplete


def test_all_optional_object_allows_empty_and_any_subset(vocab: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "boolean"}, "b": {"type": "null"}, "c": {"type": "number"}},
    }
    for value in [
        {},
        {"a": True},
        {"b": None},
        {"c": -2.5e3},
        {"a": False, "c": 1},
        {"b": None, "c": 0},
    ]:
        assert accepts(vocab, schema, value), value
    assert not accepts(vocab, schema, '{, "a": true}')
    assert not accepts(vocab, schema, '{"a": true,}')
    assert not accepts(vocab, schema, {"c": "1"})


def test_nested_objects_arrays_and_refs(vocab: Any) -> None:
    schema = {
        "type": "object",
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
                "required": ["sku", "qty"],
            }
        },
        "properties": {
            "items": {
                "type": "array",
                "items": {"$ref": "#/$defs/Item"},
                "minItems": 1,
                "maxItems": 3,
            },
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["items"],
    }
    assert accepts(vocab, schema, {"items": [{"sku": "A1", "qty": 2}]})
    assert accepts(
        vocab, schema, {"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": -4}], "note": None}
    )
    assert accepts(vocab, schema, {"items": [{"sku": "A", "qty": 1}], "note": "fragile"})
    assert not accepts(vocab, schema, {"items": []})  # minItems
    too_many = {"items": [{"sku": str(i), "qty": i} for i in range(4)]}
    assert not accepts(vocab, schema, too_many)  # maxItems
    assert not accepts(vocab, schema, {"items": [{"sku": "A"}]})  # nested required
    assert not accepts(vocab, schema, {"items": [{"sku": "A", "qty": 1}], "note": 5})


def test_free_form_values_and_string_escapes(vocab: Any) -> None:
    schema = {"type": "object", "properties": {"data": {}, "tags": {"type": "array"}}}
    assert accepts(vocab, schema, {"data": {"x": [1, "two", None, {"y": False}]}})
    assert accepts(vocab, schema, {"tags": ["a", 1, True]})
    assert accepts(vocab, schema, {"data": 'quote " backslash \\ newline \n unicode é'})
    assert not accepts(vocab, schema, '{"data": "raw\nnewline"}')  # control char unescaped


def test_string_length_limits(vocab: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "minLength": 2, "maxLength": 3}},
    }
    assert accepts(vocab, schema, {"code": "ab"})
    assert accepts(vocab, schema, {"code": "abc"})
    assert not accepts(vocab, schema, {"code": "a"})
    assert not accepts(vocab, schema, {"code": "abcd"})


def test_call_grammar_ties_name_to_its_arguments(vocab: Any) -> None:
    g = compile_call_grammar(
        [
            ("get_weather", WEATHER),
            (
                "math.add",
                {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            ),
        ]
    )
    ok = json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}})
    assert grammar_accepts(vocab, g.text, ok)
    assert grammar_accepts(vocab, g.text, '{"name": "math.add", "arguments": {"a": 2}}')
    # math.add's arguments under get_weather's name, an unknown tool, and a bare object: refused
    assert not grammar_accepts(vocab, g.text, '{"name": "get_weather", "arguments": {"a": 2}}')
    assert not grammar_accepts(vocab, g.text, '{"name": "delete_all", "arguments": {}}')
    assert not grammar_accepts(vocab, g.text, '{"city": "Oslo"}')
    wrapped = compile_call_grammar([("get_weather", WEATHER)], prefix="[", suffix="]")
    assert grammar_accepts(vocab, wrapped.text, "[" + ok + "]")
    assert not grammar_accepts(vocab, wrapped.text, ok)


def test_literals_are_escaped() -> None:
    assert gbnf_literal('a"b\\c\n') == '"a\\"b\\\\c\\n"'


def test_bad_schemas_are_refused_clearly() -> None:
    with pytest.raises(SchemaError, match="unknown JSON Schema type"):
        compile_schema({"type": "object", "properties": {"x": {"type": "decimal"}}})
    with pytest.raises(SchemaError, match="unresolvable"):
        compile_schema({"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}})
    with pytest.raises(SchemaError, match="enum"):
        compile_schema({"enum": []})
    with pytest.raises(SchemaError, match="at least one tool"):
        compile_call_grammar([])


def test_unsupported_keywords_are_reported() -> None:
    schema = {
        "type": "object",
        "properties": {
            "email": {"type": "string", "format": "email"},
            "n": {"type": "integer", "minimum": 0, "maximum": 9},
            "z": {"type": "string", "pattern": "^z"},
        },
    }
    assert unsupported_keywords(schema) == {"format", "maximum", "pattern"}
    assert unsupported_keywords(WEATHER) == set()


def test_numbers_and_arrays_are_bounded_so_decoding_always_ends(vocab: Any) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "x": {"type": "number"}}}
    assert accepts(vocab, schema, {"n": 1234567890123456})
    assert not accepts(vocab, schema, '{"n": 12345678901234567}')  # 17 digits
    assert accepts(vocab, schema, '{"x": 0.125e-3}')
    assert not accepts(vocab, schema, '{"x": 1.' + "1" * 16 + "}")
    many = {"type": "object", "properties": {"v": {"type": "array", "items": {"type": "integer"}}}}
    assert accepts(vocab, many, {"v": list(range(32))})
    assert not accepts(vocab, many, {"v": list(range(33))})


def test_copied_strings_are_runs_of_the_users_words(vocab: Any) -> None:
    from callgate.messages import Message
    from callgate.providers.local.values import Candidates, ground_schema

    text = 'Book P-101 on 2026-12-15 to fix the "tap", please.\nThen call Ana.'
    found = Candidates.from_messages([Message.user(text)])
    schema = ground_schema({"type": "string"}, found, copy_strings=True)
    g = compile_schema(schema)
    for ok in ("fix the", "Book P-101 on 2026-12-15 to fix", "2026-12-15 to fix", "Then call Ana"):
        assert grammar_accepts(vocab, g, json.dumps(ok)), ok
    for bad in (
        "fix tap",  # not contiguous
        "the fix",  # out of order
        "2026-12-15",  # a digit word alone is another parameter's value
        "Book P-101 on 2026-12-15",  # ... and does not end a run either
        "please. Then",  # runs do not cross a line break
        "Property id, e.g. P-101",  # text from a tool description
        "the tap",  # the quote between them ends a run
    ):
        assert not grammar_accepts(vocab, g, json.dumps(bad)), bad
