"""LoopBreaker: exact repeats, near repeats, ping-pong; warn first, then stop."""

from __future__ import annotations

from typing import Any

from callgate.agent.guards import LoopBreaker, coarse, normalise
from callgate.messages import ToolCall


def c(name: str, args: Any) -> ToolCall:
    import json

    return ToolCall("id", name, args if isinstance(args, str) else json.dumps(args))


def verdicts(b: LoopBreaker, turns: list[list[ToolCall]]) -> list[list[str | None]]:
    return [[t.verdict if t else None for t in b.check_turn(turn)] for turn in turns]


def test_normalise_and_coarse() -> None:
    assert normalise({"b": " Paris  FR ", "a": 1.0}) == {"a": 1, "b": "paris fr"}
    assert coarse({"q": "Flats in Paris!", "x": None, "y": "", "z": []}) == {"q": "flats paris"}
    assert coarse({"page": 2.0}) == {"page": 2}


def test_exact_repeat_warns_then_stops() -> None:
    b = LoopBreaker()
    v = verdicts(
        b,
        [
            [c("s", {"q": "a", "n": 1})],
            [c("s", {"n": 1.0, "q": " A "})],  # key order, case, whitespace, 1 == 1.0
            [c("s", {"q": "a", "n": 1})],
        ],
    )
    assert v == [[None], ["warn"], ["stop"]]


def test_different_tools_or_arguments_do_not_trip() -> None:
    b = LoopBreaker()
    v = verdicts(
        b,
        [[c("s", {"q": "a"})], [c("t", {"q": "a"})], [c("s", {"q": "b"})], [c("s", {"q": "a b"})]],
    )
    assert v == [[None]] * 4


def test_max_repeats_allows_more_identical_calls() -> None:
    b = LoopBreaker(max_repeats=3, near_limit=10)
    v = verdicts(b, [[c("s", {})] for _ in range(4)])
    assert v == [[None], [None], [None], ["warn"]]


def test_near_repeats_trip_at_the_limit() -> None:
    b = LoopBreaker(near_limit=3)
    v = verdicts(
        b,
        [
            [c("s", {"q": "cheap flats in Paris"})],
            [c("s", {"q": "Paris cheap flats"})],
            [c("s", {"q": "flats, cheap, paris", "filter": ""})],
        ],
    )
    assert v == [[None], [None], ["warn"]]


def test_numbers_are_never_coarsened() -> None:
    b = LoopBreaker()
    v = verdicts(b, [[c("s", {"q": "x", "page": p})] for p in range(1, 8)])
    assert v == [[None]] * 7


def test_ping_pong_detected_without_exact_repeat_rule() -> None:
    b = LoopBreaker(max_repeats=100, near_limit=100, pingpong_cycles=2)
    a, bb = c("a", {"x": 1}), c("b", {"y": 2})
    v = verdicts(b, [[a], [bb], [a], [bb], [a]])
    assert v == [[None], [None], [None], ["warn"], ["stop"]]


def test_ping_pong_message_is_plain() -> None:
    b = LoopBreaker(max_repeats=100, near_limit=100)
    a, bb = c("a", {}), c("b", {})
    for t in ([a], [bb], [a]):
        b.check_turn(t)
    (trip,) = b.check_turn([bb])
    assert trip is not None and trip.reason == "ping-pong"
    assert trip.message.startswith("Not run: loop detected (ping-pong)")
    assert "ask the user" in trip.message


def test_same_turn_duplicates_trip() -> None:
    b = LoopBreaker()
    assert verdicts(b, [[c("s", {"q": 1}), c("s", {"q": 1}), c("s", {"q": 2})]]) == [
        [None, "warn", None]
    ]


def test_undecodable_arguments_never_raise() -> None:
    b = LoopBreaker()
    for raw in ["{not json", '{"s": "\ud800"}', "", "[1,2]", "\x00"]:
        b.check_turn([c("s", raw)])
    b.check_turn([ToolCall("i", "s", {"s": "\udfff", "n": float("nan")})])
    assert b.check_turn([c("s", "{not json")])[0] is not None  # exact repeat of garbage
