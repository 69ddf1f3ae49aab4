"""Recognising loops, not just counting turns.

A small model stuck in a loop repeats the same call, nudges an argument's spelling ("Paris" ->
"paris ", "flats in Paris" -> "Paris flats", 1 -> 1.0), or bounces between two tools.
`LoopBreaker` watches the calls of a run and reports, per proposed call, whether it repeats
earlier work:

- same: the same tool with arguments equal after normalisation (key order, case, whitespace,
  1 == 1.0);
- near: the same tool with arguments equal after a coarser normalisation: strings compared as
  sets of words (punctuation, order and short filler words ignored), nulls and empty values
  dropped. Numbers are never coarsened, so paging (page 1, 2, 3) is progress, not a loop;
- ping-pong: the last turns alternate between two call signatures (A, B, A, B).

The first trip is answered in the tool result (the call is not run; the model is told why and
what to do). A trip after that warning stops the run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic_core import from_json, to_json

from callgate.messages import ToolCall

Verdict = Literal["ok", "warn", "stop"]


def normalise(value: Any) -> Any:
    if isinstance(value, str):
        return " ".join(value.lower().split())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_FILLER = frozenset({"a", "an", "the", "in", "of", "for", "to", "and", "on", "at", "by", "with"})


def coarse(value: Any) -> Any:
    """The "near" normal form: word sets for strings, empties dropped, numbers kept exact."""
    if isinstance(value, str):
        words = sorted({w for w in _WORD.findall(value.lower()) if w not in _FILLER})
        return " ".join(words)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {
            str(k): coarse(v)
            for k, v in sorted(value.items())
            if v is not None and v != "" and v != [] and v != {}
        }
    if isinstance(value, list):
        return [coarse(v) for v in value]
    return value


def _decode(call: ToolCall) -> Any:
    raw = call.arguments
    if not isinstance(raw, str):
        return raw
    try:
        return from_json(raw)
    except (ValueError, TypeError, UnicodeError):  # not JSON, or not encodable (lone surrogates)
        return raw


def _key(name: str, value: Any) -> str:
    # normalise/coarse already sort keys, so insertion order is canonical here
    try:
        return name + ":" + to_json(value, serialize_unknown=True).decode()
    except (ValueError, TypeError, UnicodeError):  # hostile text: a stable, exact fallback
        return name + ":" + repr(value)


def signature(call: ToolCall) -> str:
    return _key(call.name, normalise(_decode(call)))


@dataclass(slots=True)
class Trip:
    verdict: Verdict
    reason: str
    message: str


@dataclass
class LoopBreaker:
    """Per-run loop detector.

    `max_repeats`: identical calls allowed before a trip (1: the second identical call trips).
    `near_limit`: calls of one tool equal under the coarse form allowed before a trip (counting
    the first). `pingpong_cycles`: A,B alternations that trip."""

    max_repeats: int = 1
    near_limit: int = 3
    pingpong_cycles: int = 2
    _seen: dict[str, int] = field(default_factory=dict)
    _near: dict[str, int] = field(default_factory=dict)
    _turns: list[tuple[str, ...]] = field(default_factory=list)
    warned: bool = False

    def check_turn(self, calls: list[ToolCall]) -> list[Trip | None]:
        """One entry per call: None to run it, or a Trip saying why it is not run."""
        out: list[Trip | None] = []
        decoded = [_decode(c) for c in calls]
        sigs = [_key(c.name, normalise(d)) for c, d in zip(calls, decoded, strict=True)]
        self._turns.append(tuple(sorted(sigs)))
        pingpong = self._pingpong()
        for c, d, sig in zip(calls, decoded, sigs, strict=True):
            trip = self._check_one(c, d, sig)
            if trip is None and pingpong:
                trip = self._trip(
                    "ping-pong",
                    "you are alternating between the same calls without making progress. Stop "
                    "calling tools and answer the user with what you already have, or ask them "
                    "for what is missing",
                )
            out.append(trip)
        return out

    def _check_one(self, c: ToolCall, decoded: Any, sig: str) -> Trip | None:
        n = self._seen.get(sig, 0) + 1
        self._seen[sig] = n
        if n > self.max_repeats:
            return self._trip(
                "repeat",
                f"you already called {c.name} with these same arguments ({n - 1} time"
                f"{'s' if n > 2 else ''}) and have its result above. Calling it again will not "
                "change anything: use that result, change the arguments meaningfully, or answer",
            )
        near_sig = _key(c.name, coarse(decoded))
        m = self._near.get(near_sig, 0) + 1
        self._near[near_sig] = m
        if m >= self.near_limit:
            return self._trip(
                "near-repeat",
                f"you have called {c.name} {m} times with arguments that differ only in spelling, "
                "word order or empty values. That is not making progress: answer with what you "
                "have, or ask the user",
            )
        return None

    def _pingpong(self) -> bool:
        k = self.pingpong_cycles * 2
        if len(self._turns) < k:
            return False
        last = self._turns[-k:]
        a, b = last[0], last[1]
        if a == b:
            return False
        return all(t == (a if i % 2 == 0 else b) for i, t in enumerate(last))

    def _trip(self, reason: str, text: str) -> Trip:
        verdict: Verdict = "stop" if self.warned else "warn"
        self.warned = True
        msg = f"Not run: loop detected ({reason}): {text}."
        if verdict == "warn":
            msg += " If this happens again the run will be stopped."
        return Trip(verdict, reason, msg)
