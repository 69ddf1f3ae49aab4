"""Tool calls written into text by local models: Hermes tags, bare JSON, fenced JSON, junk."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callgate.providers.textcalls import parse_text_tool_calls


def decoded(calls: list) -> list[tuple[str, object]]:
    return [(c.name, json.loads(c.arguments)) for c in calls]


def test_hermes_several_calls_and_surrounding_text() -> None:
    text = (
        "I'll check both.\n\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>{"name": "get_time", "arguments": {"tz": "UTC"}}</tool_call>\n\n'
        "Done."
    )
    rest, calls = parse_text_tool_calls(text, "hermes")
    assert decoded(calls) == [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "UTC"})]
    assert rest == "I'll check both.\n\nDone."


def test_hermes_unterminated_last_tag_and_parameters_key() -> None:
    text = (
        '<tool_call>{"name": "a", "parameters": {"x": 1}}'
        '<tool_call>{"name": "b", "arguments": {"y": [1, 2]}}'
    )
    rest, calls = parse_text_tool_calls(text, "hermes")
    assert decoded(calls) == [("a", {"x": 1}), ("b", {"y": [1, 2]})]
    assert rest == ""


def test_hermes_list_inside_one_tag_and_several_objects() -> None:
    text = (
        '<tool_call>[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"k": "v"}}]'
        "</tool_call>"
        '<tool_call>{"name": "c", "arguments": {}}\n{"name": "d", "arguments": {}}</tool_call>'
    )
    _, calls = parse_text_tool_calls(text, "hermes")
    assert [c.name for c in calls] == ["a", "b", "c", "d"]


def test_python_style_literals_are_read_without_running_code() -> None:
    text = "<tool_call>{'name': 'lookup', 'arguments': {'q': 'x', 'exact': True, 'n': None}}"
    _, calls = parse_text_tool_calls(text, "hermes")
    assert decoded(calls) == [("lookup", {"q": "x", "exact": True, "n": None})]
    evil = "<tool_call>__import__('os').system('echo pwned')</tool_call>"
    rest, calls = parse_text_tool_calls(evil, "hermes")
    assert calls == [] and rest == evil


def test_string_arguments_are_kept_raw_and_blank_means_empty_object() -> None:
    text = (
        '<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>'
        '<tool_call>{"name": "g", "arguments": ""}</tool_call>'
        '<tool_call>{"name": "h", "arguments": null}</tool_call>'
    )
    _, calls = parse_text_tool_calls(text, "hermes")
    assert [c.arguments for c in calls] == ['{"a": 1}', "{}", "{}"]


def test_junk_inside_tags_stays_in_the_text() -> None:
    text = (
        "<tool_call>not json at all</tool_call> and "
        '<tool_call>{"name": "ok", "arguments": {}}</tool_call>'
        '<tool_call>{"arguments": {}}</tool_call>'  # no name
        '<tool_call>{"name": "bad name!", "arguments": {}}</tool_call>'
    )
    rest, calls = parse_text_tool_calls(text, "hermes")
    assert [c.name for c in calls] == ["ok"]
    assert "not json at all" in rest
    assert '{"arguments": {}}' in rest and "bad name!" in rest


def test_bare_json_object_and_array() -> None:
    rest, calls = parse_text_tool_calls('{"name": "search", "arguments": {"q": "cats"}}', "json")
    assert decoded(calls) == [("search", {"q": "cats"})] and rest == ""
    rest, calls = parse_text_tool_calls(
        'Calling: [{"name": "a", "arguments": {}}, {"name": "b", "parameters": {"z": 0}}] ok',
        "json",
    )
    assert decoded(calls) == [("a", {}), ("b", {"z": 0})]
    assert rest == "Calling: ok"


def test_openai_style_wrapper() -> None:
    text = '{"type": "function", "function": {"name": "f", "arguments": "{\\"n\\": 2}"}}'
    _, calls = parse_text_tool_calls(text, "json")
    assert [(c.name, c.arguments) for c in calls] == [("f", '{"n": 2}')]


def test_fenced_json_block() -> None:
    text = (
        "Here you go:\n```json\n"
        '{"name": "get_weather", "arguments": {"city": "Oslo"}}\n'
        "```\nAnything else?"
    )
    rest, calls = parse_text_tool_calls(text, "auto")
    assert decoded(calls) == [("get_weather", {"city": "Oslo"})]
    assert rest == "Here you go:\nAnything else?"


def test_json_that_is_not_a_call_is_left_alone() -> None:
    text = 'The config is {"name": "prod", "replicas": 3} and [1, 2, 3].'
    assert parse_text_tool_calls(text, "auto") == (text, [])
    fenced = '```json\n{"name": "x"}\n```'
    assert parse_text_tool_calls(fenced, "auto") == (fenced, [])


def test_modes_are_respected() -> None:
    tagged = '<tool_call>{"name": "a", "arguments": {}}</tool_call>'
    bare = '{"name": "a", "arguments": {}}'
    assert len(parse_text_tool_calls(tagged, "hermes").calls) == 1
    assert len(parse_text_tool_calls(bare, "hermes").calls) == 0
    assert len(parse_text_tool_calls(bare, "json").calls) == 1
    # auto prefers tags; the JSON inside them is not counted twice
    assert len(parse_text_tool_calls(tagged, "auto").calls) == 1
    with pytest.raises(ValueError, match="unknown text tool-call mode"):
        parse_text_tool_calls(bare, "xml")  # type: ignore[arg-type]


def test_ids_are_stable_unique_and_seeded() -> None:
    text = (
        '<tool_call>{"name": "a", "arguments": {}}</tool_call>'
        '<tool_call>{"name": "a", "arguments": {}}</tool_call>'
    )
    first = parse_text_tool_calls(text, "hermes", id_seed="resp-1").calls
    again = parse_text_tool_calls(text, "hermes", id_seed="resp-1").calls
    other = parse_text_tool_calls(text, "hermes", id_seed="resp-2").calls
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == 2
    assert {c.id for c in first}.isdisjoint({c.id for c in other})
    assert all(c.id.startswith("call_") for c in first)


def test_empty_and_plain_text() -> None:
    assert parse_text_tool_calls("", "auto") == ("", [])
    assert parse_text_tool_calls("Just an answer.", "auto") == ("Just an answer.", [])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("{}[]<>\"':,/ \nabc_tool_call`json0"), max_size=200))
def test_never_crashes_on_junk(text: str) -> None:
    rest, calls = parse_text_tool_calls(text, "auto")
    assert isinstance(rest, str)
    for call in calls:
        assert call.name and isinstance(call.arguments, str) and call.arguments.strip()
        assert call.name in text


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True),
            st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
        ),
        min_size=1,
        max_size=4,
    ),
    st.text(alphabet="abc .\n", max_size=20),
)
def test_round_trip_of_generated_calls(calls: list, prefix: str) -> None:
    body = "".join(
        f"<tool_call>{json.dumps({'name': n, 'arguments': a})}</tool_call>\n" for n, a in calls
    )
    rest, parsed = parse_text_tool_calls(prefix + body, "auto")
    assert decoded(parsed) == [(n, a) for n, a in calls]
    # the surrounding text survives word for word (runs of blank lines may be folded)
    assert rest.split() == prefix.split()


def test_adversarial_nesting_neither_crashes_nor_stalls() -> None:
    junk = "{" * 5000 + " [ " * 3000 + '{"name": "f", "arguments": {}}' + "]" * 10
    rest, calls = parse_text_tool_calls(junk, "auto")
    assert [c.name for c in calls] == ["f"]
    deep = "<tool_call>" + "[" * 50_000 + "</tool_call>"
    assert parse_text_tool_calls(deep, "auto") == (deep, [])


def test_nested_objects_of_a_found_array_are_not_counted_twice() -> None:
    text = '[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {}}]'
    assert [c.name for c in parse_text_tool_calls(text, "json").calls] == ["a", "b"]
