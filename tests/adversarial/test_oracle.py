"""The judge is tested too: a lenient oracle would let the suite pass whatever the gate does."""

from __future__ import annotations

import copy
import json

from tests.adversarial.generator import MAX_BYTES, MAX_DEPTH, MAX_ITEMS, generate
from tests.adversarial.oracle import Judge, closed, decode, same
from tests.adversarial.signatures import create_person, restock, search, targets, walk_tree

PERSON = {"name": "Ana", "age": 30, "address": {"street": "1 Main", "city": "X", "zip": "75001"}}


def test_closed_refuses_extras_at_every_depth_but_keeps_explicit_ones() -> None:
    before = copy.deepcopy(restock.spec.parameters)
    schema = closed(restock.spec.parameters)
    assert restock.spec.parameters == before  # closed() works on a copy
    assert schema["$defs"]["Item"]["additionalProperties"] is False
    # a map keeps its value schema (its keys are data, not parameter names), itself closed
    item = schema["properties"]["items"]["additionalProperties"]
    assert set(item["properties"]) == {"sku", "qty", "note"}
    assert item["additionalProperties"] is False
    # an open object is closed, an explicitly open one stays open
    raw = {"type": "object", "properties": {"a": {"type": "object", "properties": {}}}}
    assert closed(raw)["properties"]["a"]["additionalProperties"] is False
    loose = {"type": "object", "properties": {}, "additionalProperties": True}
    assert closed(loose)["additionalProperties"] is True
    # a recursive reference stays a reference (and is closed where it points)
    tree = closed(walk_tree.spec.parameters)
    assert tree["properties"]["root"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert tree["$defs"]["Node"]["additionalProperties"] is False


def test_judge_refuses_unknown_keys_inside_a_dict_of_models() -> None:
    judge = Judge(restock.spec.parameters)
    ok = {"items": {"a": {"sku": "ABC-1234", "qty": 1}}, "warehouse": "north"}
    assert judge.verdict(json.dumps(ok)).must_run
    bad = {"items": {"a": {"sku": "ABC-1234", "qty": 1, "drop": True}}, "warehouse": "north"}
    v = judge.verdict(json.dumps(bad))
    assert not v.must_run and v.why == "schema"
    assert judge.classify(v.args or {}) == ("unknown-key:nested",)


def test_judge_names_coercions() -> None:
    judge = Judge(search.spec.parameters)
    for args, cls in [
        ({"query": "q", "limit": "5"}, "coerced:string->number"),
        ({"query": "q", "limit": True}, "coerced:boolean->number"),
        ({"query": "q", "exact": 1}, "coerced:number->boolean"),
        ({"query": "q", "exact": "yes"}, "coerced:string->boolean"),
    ]:
        v = judge.verdict(json.dumps(args))
        assert not v.must_run and judge.classify(v.args or {}) == (cls,)


def test_decode_refuses_what_the_gate_documents() -> None:
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert decode('{"a": ' + deep + "}") == (None, "depth")
    assert decode('{"a": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}")[1] is None
    assert decode('{"a": 1, "a": 1}') == (None, "duplicate-key")
    assert decode('{"a": NaN}') == (None, "non-finite")
    assert decode('{"a": 1e999}') == (None, "non-finite")
    assert decode('{"a": "\\ud800"}') == (None, "surrogate")
    assert decode('{"\\udc00": 1}') == (None, "surrogate")
    assert decode("[1]") == (None, "not-object")
    assert decode('{"a": [' + ",".join(["1"] * MAX_ITEMS) + "]}") == (None, "items")
    assert decode('{"a": "' + "é" * (MAX_BYTES // 2) + '"}') == (None, "size")
    assert decode('{"a": "' + "x" * (MAX_BYTES - 10) + '"}')[1] is None
    assert decode("{'a': 1}") == (None, "malformed")
    assert decode("") == ({}, None)


def test_documented_normalisation_and_refusals() -> None:
    judge = Judge(search.spec.parameters)
    v = judge.verdict('{"query": "q", "limit": null}')
    assert v.must_run and v.args == {"query": "q"}
    login = next(t for t in targets() if t.tool.name == "login")
    v = Judge(login.tool.spec.parameters).verdict('{"user_id": " ", "password": "12345678"}')
    assert not v.must_run and v.why == "empty-id"
    wire = next(t for t in targets() if t.always_denied)
    args = {"account_id": "a", "amount": 5, "currency": "EUR"}
    v = Judge(wire.tool.spec.parameters, always_denied=True).verdict(json.dumps(args))
    assert not v.must_run and v.refusals == {"denied"}


def test_mismatch_sees_dropped_changed_and_invented_values() -> None:
    judge = Judge(create_person.spec.parameters)
    sent = {"person": PERSON}
    assert judge.mismatch(sent, {"person": PERSON, "notify": False}) is None
    assert judge.mismatch(sent, {"person": PERSON, "notify": True}) is not None
    assert judge.mismatch(sent, {"person": {**PERSON, "age": 31}, "notify": False}) is not None
    short = {k: v for k, v in PERSON.items() if k != "age"}
    assert judge.mismatch(sent, {"person": short, "notify": False}) is not None


def test_same_does_not_confuse_booleans_and_numbers() -> None:
    assert same(1, 1.0) and same({"a": [1]}, {"a": [1.0]})
    assert not same(True, 1) and not same(0, False) and not same("1", 1)
    assert not same({"a": 1}, {"a": 1, "b": None})


def test_generation_is_deterministic() -> None:
    t = targets()[0]
    a = [(c.call_id, c.mutation, repr(c.arguments)) for c in generate(t, 300, 7)]
    b = [(c.call_id, c.mutation, repr(c.arguments)) for c in generate(t, 300, 7)]
    assert a == b
    assert a != [(c.call_id, c.mutation, repr(c.arguments)) for c in generate(t, 300, 8)]


def test_valid_instances_are_valid() -> None:
    """Most unmutated instances must pass the judge, or the suite tests little but refusals."""
    for t in targets():
        judge = Judge(t.tool.spec.parameters)
        valid = [c for c in generate(t, 400, 3) if c.mutation == "valid"]
        accepted = sum(judge.verdict(c.arguments).schema_ok for c in valid)
        assert accepted >= 0.9 * len(valid), (t.tool.name, accepted, len(valid))
