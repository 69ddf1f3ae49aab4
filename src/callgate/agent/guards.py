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

from callgate.errors import ErrorKind
from callgate.gate.protocols import Refusal
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
                    "you keep alternating between the same calls. Answer with what you have, or "
                    "ask the user for what is missing",
                )
            out.append(trip)
        return out

    def _check_one(self, c: ToolCall, decoded: Any, sig: str) -> Trip | None:
        n = self._seen.get(sig, 0) + 1
        self._seen[sig] = n
        if n > self.max_repeats:
            return self._trip(
                "repeat",
                f"you already called {c.name} with these arguments and have its result above. "
                "Use that result, or answer the user",
            )
        near_sig = _key(c.name, coarse(decoded))
        m = self._near.get(near_sig, 0) + 1
        self._near[near_sig] = m
        if m >= self.near_limit:
            return self._trip(
                "near-repeat",
                f"you called {c.name} {m} times with arguments that differ only in spelling or "
                "word order. Answer with what you have, or ask the user",
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
            msg += " The run stops if this happens again."
        return Trip(verdict, reason, msg)


_CORRECTABLE = ErrorKind.CORRECTABLE.value
_DENIED = ErrorKind.DENIED.value

TOOLS_OFF = Refusal(
    "tool_choice:none",
    "Not run: tools are switched off for this step. Answer in text.",
    _CORRECTABLE,
)
CALL_BUDGET = Refusal(
    "budget:tool_calls",
    "Not run: the tool-call budget of this run is used up. Answer with what you have.",
    _DENIED,
    stop=True,
)


def budget_refusal(reason: str) -> Refusal:
    """The refusal of calls proposed in the turn that crossed a token or cost budget."""
    what = "cost" if reason == "budget:cost" else "token"
    return Refusal(reason, f"Not run: the {what} budget of this run is used up.", _DENIED, True)


@dataclass
class RunGuards:
    """The run's own refusals, decided per turn before the gate sees the calls: tools switched
    off for the step, the loop breaker, and the tool-call budget. Each refusal goes to the gate
    (`Gate.execute(..., refusal=...)`), which records it like every other outcome, so the audit
    log shows every call a model proposed, whoever refused it."""

    breaker: LoopBreaker | None
    max_tool_calls: int | None
    calls_made: int = 0

    def screen(
        self, calls: list[ToolCall], tools_off: bool, over: str | None = None
    ) -> list[Refusal | None]:
        """One entry per call: None to gate it normally, or the run's refusal."""
        if over is not None:
            return [budget_refusal(over)] * len(calls)
        if tools_off:
            return [TOOLS_OFF] * len(calls)
        out: list[Refusal | None] = [None] * len(calls)
        if self.breaker is not None:
            for i, trip in enumerate(self.breaker.check_turn(calls)):
                if trip is not None:
                    rule = f"loop:{trip.reason}"
                    out[i] = Refusal(rule, trip.message, _CORRECTABLE, trip.verdict == "stop")
        for i in range(len(calls)):
            if out[i] is not None:
                continue
            if self.max_tool_calls is not None and self.calls_made >= self.max_tool_calls:
                out[i] = CALL_BUDGET
            else:
                self.calls_made += 1
        return out


def stop_reason(refusals: list[Refusal | None]) -> str | None:
    """Why the run must stop after this turn, if a refusal asked for it: "loop" when the loop
    breaker took part, else the budget's rule."""
    stops = [r for r in refusals if r is not None and r.stop]
    if not stops:
        return None
    if any(r is not None and r.rule.startswith("loop:") for r in refusals):
        return "loop"
    return stops[0].rule
