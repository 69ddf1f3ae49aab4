"""Values the local model may copy from the conversation, and the answer grammar (no model).

Grammars are checked against llama.cpp's own grammar engine with a vocabulary-only load of the
default weights, so what is tested is what the engine will enforce.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from callgate.messages import Message, ToolResult
from callgate.providers.local.values import (
    Candidates,
    answer_grammar,
    answer_values,
    answer_words,
    conversation_numbers,
    ground_schema,
)


def nums(text: str) -> list[tuple[float, bool]]:
    return [(n.value, n.percent) for n in conversation_numbers(text)]


def test_numbers_are_normalised_as_written() -> None:
    assert nums("a loan of $2,000,000 at 3% for 30 years") == [
        (2_000_000.0, False),
        (3.0, True),
        (30.0, False),
    ]
    assert nums("budget 2.5 million, or 1.5k, or 7 thousand") == [
        (2_500_000.0, False),
        (1500.0, False),
        (7000.0, False),
    ]
    assert nums("temperature -5 and 12.75") == [(-5.0, False), (12.75, False)]
    assert nums("a dozen eggs and two pans") == [(12.0, False), (2.0, False)]


def test_ids_dates_and_codes_are_not_read_as_numbers() -> None:
    # the digits of an id, a date or a fraction are not free numbers the user gave
    assert nums("property P-104 on 2026-12-15, ratio 3/4, v1.2.3, 5kg") == [(5.0, False)]


def found(*texts: str) -> Candidates:
    return Candidates.from_messages([Message.user(t) for t in texts])


def test_numeric_parameters_are_narrowed_to_the_conversations_numbers() -> None:
    schema = {
        "type": "object",
        "properties": {
            "amount": {"type": "integer", "minimum": 0},
            "years": {"type": "integer", "maximum": 40},
            "rate": {"type": "number", "description": "Interest rate as a decimal fraction"},
            "share": {"type": "number", "maximum": 1},
        },
    }
    out = ground_schema(schema, found("Borrow $2,000,000 at 3% over 30 years."))
    props = out["properties"]
    assert props["amount"] == {"minimum": 0, "enum": [2000000, 3, 30]}
    assert props["years"]["enum"] == [3, 30]  # 2,000,000 is above the maximum
    assert props["rate"]["enum"] == [2000000, 3, 0.03, 30]  # a percent: both readings
    assert props["share"]["enum"] == [0.03]  # at most 1: only the fraction fits
    assert schema["properties"]["amount"] == {"type": "integer", "minimum": 0}  # not mutated


def test_required_parameters_stay_free_when_the_conversation_has_no_value_of_their_shape() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer"},
            "day": {"type": "string", "format": "date"},
            "code": {"type": "string", "pattern": "^P-\\d{3}$"},
            "city": {"type": "string"},
        },
        "required": ["n", "day", "code", "city"],
    }
    assert ground_schema(schema, found("Hello there, no values here.")) == schema
    assert ground_schema(schema, found("1.5 apples"))["properties"]["n"] == {"type": "integer"}


def test_optional_parameters_that_could_only_be_invented_are_left_out() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "max_price": {"anyOf": [{"type": "integer", "maximum": 100}, {"type": "null"}]},
            "day": {"type": "string", "format": "date"},
            "kind": {"enum": ["a", "b"]},
            "note": {"type": "string"},
        },
        "required": ["city"],
    }
    props = ground_schema(schema, found("Flats in Porto, please."))["properties"]
    assert list(props) == ["city", "note"]  # no number, no date, no kind named
    props = ground_schema(schema, found("Flats in Porto under 90, from 2026-12-01."))["properties"]
    assert props["max_price"]["anyOf"][0]["enum"] == [90]
    assert props["day"]["enum"] == ["2026-12-01"]
    props = ground_schema(schema, found("Flats in Porto under 500."))["properties"]
    assert "max_price" not in props  # 500 is above the maximum: it cannot be the value


def test_pattern_and_format_strings_offer_matching_spans_only() -> None:
    schema = {
        "type": "object",
        "properties": {
            "pid": {"anyOf": [{"type": "string", "pattern": "^P-\\d{3}$"}, {"type": "null"}]},
            "day": {"type": "string", "format": "date"},
            "city": {"type": "string"},
        },
    }
    text = "Compare P-101 with P-104 (not XP-1050) and book 2026-12-15 in Lisbon."
    props = ground_schema(schema, found(text))["properties"]
    assert props["pid"]["anyOf"][0] == {"pattern": "^P-\\d{3}$", "enum": ["P-101", "P-104"]}
    assert props["pid"]["anyOf"][1] == {"type": "null"}
    assert props["day"] == {"format": "date", "enum": ["2026-12-15"]}
    assert props["city"] == {"type": "string"}  # free text stays free


def test_values_come_from_user_and_tool_messages_only() -> None:
    r = ToolResult("c1", "lookup", "the limit is 750")
    msgs = [
        Message.system("budget 999"),
        Message.user("find 12 flats"),
        Message.assistant("I guess 555"),
        Message.tool(r),
    ]
    assert [n.value for n in Candidates.from_messages(msgs).numbers] == [12.0, 750.0]


def tool_msg(content: Any, error: str | None = None) -> Message:
    text = content if isinstance(content, str) else json.dumps(content)
    return Message.tool(ToolResult("c", "t", text, error_kind=error))


def test_answer_values_are_successful_results_since_the_user_spoke() -> None:
    msgs = [
        Message.user("first question"),
        tool_msg({"id": "OLD-1"}),
        Message.user("second question"),
        tool_msg([{"id": "P-101", "price": 345000.0, "ok": True, "n": 2}]),
        tool_msg("Do not retry this call as it is: unknown parameter", error="correctable"),
    ]
    assert answer_values(msgs) == ["P-101", "345000"]  # no bools, no 1-2 char values


@pytest.fixture(scope="module")
def vocab() -> Any:
    llama_cpp = pytest.importorskip("llama_cpp")
    from callgate.errors import ModelError
    from callgate.providers.local.model import default_model_path

    try:
        path = default_model_path()
    except ModelError as e:
        pytest.skip(str(e))
    return llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)


def test_answer_grammar_requires_one_sentence_mentioning_a_value(vocab: Any) -> None:
    from callgate.providers.local.grammar import grammar_accepts

    question = answer_words([Message.user("Which flats are in Lisbon?")])
    assert question == ["Which", "flats", "are", "in", "Lisbon"]
    g = answer_grammar(question, ["P-101", "345000"])
    assert grammar_accepts(vocab, g, "The flats in Lisbon are P-101, which costs 345000.")
    assert grammar_accepts(vocab, g, "P-101 is in Lisbon.")
    assert not grammar_accepts(vocab, g, "There are flats in Lisbon.")  # no value
    assert not grammar_accepts(vocab, g, "P-101 costs 999.")  # a number no tool returned
    assert not grammar_accepts(vocab, g, "The tool schema says P-101.")  # words from nowhere
    assert not grammar_accepts(vocab, g, "P-101 is\n```json```.")  # markup, lines
    assert not grammar_accepts(vocab, g, "P-101 is in Lisbon")  # no full stop
    assert not grammar_accepts(vocab, g, "P-101 is one. P-101 is two.")  # two sentences
    free = answer_grammar(question, [])
    assert grammar_accepts(vocab, free, "Sorry, no flats are in Lisbon.")
    assert not grammar_accepts(vocab, free, "Sorry" + ", sorry" * 25 + ".")  # length cap


def test_enums_offer_only_the_members_the_user_named() -> None:
    schema = {
        "type": "object",
        "properties": {
            "kind": {"enum": ["apartment", "house", "studio"]},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["unit"],
    }
    props = ground_schema(schema, found("Find apartments or a HOUSE, not a studio-flat."))[
        "properties"
    ]
    assert props["kind"]["enum"] == ["apartment", "house"]  # plural and case; not "studio-flat"
    assert props["unit"]["enum"] == ["celsius", "fahrenheit"]  # required, none named: all
    assert "kind" not in ground_schema(schema, found("Anything in Porto?"))["properties"]


def test_tools_keyed_by_a_value_the_user_wrote_are_recognised() -> None:
    from callgate.providers.local.values import keyed_by

    by_id = {
        "type": "object",
        "properties": {"pid": {"type": "string", "pattern": "^P-\\d{3}$"}},
        "required": ["pid"],
    }
    optional_id = {**by_id, "required": []}
    search = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    assert keyed_by(by_id, "Tell me about P-105.")
    assert not keyed_by(by_id, "Tell me about XP-1050 or P-10.")  # not the shape
    assert not keyed_by(optional_id, "Tell me about P-105.")  # only required ones key a tool
    assert not keyed_by(search, "Tell me about P-105.")  # free text keys nothing


def test_an_empty_result_must_be_reported_as_nothing_found() -> None:
    from callgate.providers.local.values import only_empty_results

    q = Message.user("Anything in Faro?")
    assert only_empty_results([q, tool_msg([])])
    assert not only_empty_results([q])  # no tool answered yet
    assert not only_empty_results([q, tool_msg([]), tool_msg([{"id": "P-1"}])])
    assert not only_empty_results([q, tool_msg("[]", error="correctable")])
    assert not only_empty_results([tool_msg([{"id": "P-1"}]), q, Message.assistant("x")])
