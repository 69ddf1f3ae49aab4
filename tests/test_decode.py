"""Decoding raw arguments: JSON object only, limits, NaN/Infinity, duplicate keys."""

from __future__ import annotations

import json
from typing import Any

import pytest

from callgate.gate.decode import DecodeLimits, decode_arguments
from callgate.tools.schema import ArgumentsInvalid


def fails(raw: Any, limits: DecodeLimits = DecodeLimits()) -> str:
    with pytest.raises(ArgumentsInvalid) as ei:
        decode_arguments(raw, limits)
    (issue,) = ei.value.issues
    assert issue.kind == "format" and issue.path == ()
    return issue.message


@pytest.mark.parametrize("raw", ["", "   ", "\n\t"])
def test_empty_text_means_no_arguments(raw: str) -> None:
    assert decode_arguments(raw) == {}


def test_object_text_and_dict_pass_through() -> None:
    assert decode_arguments('{"a": 1, "b": [1, {"c": null}]}') == {"a": 1, "b": [1, {"c": None}]}
    d = {"a": "x"}
    assert decode_arguments(d) == d


@pytest.mark.parametrize(
    ("raw", "word"),
    [
        ("[1, 2]", "an array"),
        ('"text"', "a string"),
        ("3", "a number"),
        ("1.5", "a number"),
        ("true", "a boolean"),
        ("null", "null"),
    ],
)
def test_non_object_is_refused(raw: str, word: str) -> None:
    msg = fails(raw)
    assert "must be a JSON object" in msg and msg.endswith(word)


def test_non_string_non_dict_is_refused() -> None:
    assert "got list" in fails([1, 2])
    assert "got int" in fails(5)


@pytest.mark.parametrize("raw", ["{", "{'a': 1}", "{a: 1}", '{"a": 1,}', '{"a": 1} trailing'])
def test_invalid_json(raw: str) -> None:
    msg = fails(raw)
    assert "not valid JSON" in msg and "send one JSON object" in msg


@pytest.mark.parametrize(
    "raw", ['{"x": NaN}', '{"x": Infinity}', '{"x": -Infinity}', '{"x": [1, NaN]}']
)
def test_nan_and_infinity_refused_in_text(raw: str) -> None:
    assert "NaN or Infinity" in fails(raw)


@pytest.mark.parametrize("v", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_refused_in_mappings(v: float) -> None:
    assert "NaN or Infinity" in fails({"a": {"b": [1.0, v]}})


def test_nan_inside_a_string_is_fine() -> None:
    assert decode_arguments('{"x": "NaN Infinity"}') == {"x": "NaN Infinity"}


@pytest.mark.parametrize(
    "raw",
    ['{"a": 1, "a": 2}', '{"o": {"k": 1, "k": 1}}', '{"l": [{"z": 1, "z": 2}]}'],
)
def test_duplicate_keys_refused_at_any_depth(raw: str) -> None:
    assert "appears more than once" in fails(raw)


def test_colons_in_strings_do_not_cause_false_duplicates() -> None:
    raw = '{"url": "http://a:80/x", "t": "12:30:00", "k": {"a": "b:c"}}'
    assert decode_arguments(raw) == json.loads(raw)


def test_duplicate_key_hidden_by_colons_in_strings_is_still_found() -> None:
    # the colon count equals the parsed key count only if nothing is duplicated; a string with a
    # colon must not mask a duplicate either way
    raw = '{"a": "x:y", "a": "z"}'
    assert "appears more than once" in fails(raw)


def test_size_limit() -> None:
    lim = DecodeLimits(max_bytes=100)
    ok = json.dumps({"s": "x" * 80})
    assert decode_arguments(ok, lim)["s"] == "x" * 80
    msg = fails(json.dumps({"s": "x" * 200}), lim)
    assert "the limit is 100" in msg


def test_size_limit_counts_bytes_not_characters() -> None:
    lim = DecodeLimits(max_bytes=100)
    raw = json.dumps({"s": "é" * 60}, ensure_ascii=False)  # ~70 chars, ~130 bytes
    assert len(raw) < 100 < len(raw.encode())
    assert "limit is 100" in fails(raw, lim)


def test_depth_limit_text_and_mapping() -> None:
    lim = DecodeLimits(max_depth=5)
    ok = '{"a":' * 4 + "1" + "}" * 4
    assert decode_arguments(ok, lim)
    deep = '{"a":' * 6 + "1" + "}" * 6
    assert "nested more than 5 levels" in fails(deep, lim)
    lst = '{"a":' + "[" * 10 + "]" * 10 + "}"
    assert "nested more than 5 levels" in fails(lst, lim)
    d: dict[str, Any] = {}
    cur = d
    for _ in range(10):
        cur["a"] = {}
        cur = cur["a"]
    assert "nested" in fails(d, lim)


def test_extremely_deep_text_is_a_clear_error_not_a_crash() -> None:
    raw = "[" * 100_000 + "]" * 100_000
    msg = fails(raw, DecodeLimits(max_bytes=1_000_000))
    assert "JSON" in msg


def test_item_limit() -> None:
    lim = DecodeLimits(max_items=50)
    assert decode_arguments(json.dumps({"l": list(range(40))}), lim)
    assert "more than 50 values" in fails(json.dumps({"l": list(range(60))}), lim)


def test_mapping_size_limit_and_non_string_keys() -> None:
    lim = DecodeLimits(max_bytes=100)
    assert decode_arguments({"s": "x" * 50}, lim)
    assert "the limit is 100" in fails({"s": ["x" * 60, "y" * 60]}, lim)
    assert "parameter names must be strings" in fails({"a": {1: "x"}})


def test_lone_surrogates_do_not_crash_the_size_check() -> None:
    lim = DecodeLimits(max_bytes=40)
    raw = '{"s": "' + "\ud800" * 30 + '"}'
    assert "limit is 40" in fails(raw, lim)


@pytest.mark.parametrize(
    "raw",
    ['{"s": "\ud800"}', '{"s": "\\ud800"}', '{"s": "ok \\udfff"}', {"s": "\udc00"}, {"\ud800": 1}],
)
def test_lone_surrogates_are_refused_clearly(raw: Any) -> None:
    assert "not valid Unicode" in fails(raw)


def test_escaped_surrogate_pairs_are_fine() -> None:
    assert decode_arguments('{"s": "\\ud83d\\ude00"}') == {"s": "\U0001f600"}


@pytest.mark.parametrize(
    "raw", ['{"x": 1e999}', '{"x": [-1E400]}', '{"x": {"y": 1' + "0" * 400 + ".5}}"]
)
def test_numbers_overflowing_to_infinity_are_refused(raw: str) -> None:
    assert "NaN or Infinity" in fails(raw)


def test_big_integers_and_ordinary_exponents_are_fine() -> None:
    assert decode_arguments('{"x": 1e10, "y": 2.5E-3}') == {"x": 1e10, "y": 2.5e-3}
    big = int("9" * 300)  # beyond int64, within a double's range
    assert decode_arguments('{"x": ' + str(big) + "}") == {"x": big}


def test_integers_beyond_a_doubles_range_are_refused() -> None:
    """A 400-digit integer becomes infinity in any float field (a nested model's included)."""
    for text in ('{"x": ' + "9" * 400 + "}", '{"a": {"b": [-' + "9" * 400 + "]}}"):
        with pytest.raises(ArgumentsInvalid, match="too large"):
            decode_arguments(text)
