"""Judge one observed run against a case's assertions.

Each check returns the reasons it failed, worded so that a failing report says what the model
did instead (the calls it made, the value it passed), not only that something was wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from callgate.eval.dataset import ArgCheck, Expect, ToolsExpect, ValueCheck
from callgate.messages import ToolCall

_MISSING = object()


def call_arguments(call: ToolCall) -> dict[str, Any] | None:
    """A proposed call's arguments as an object, whichever form the provider delivered them
    in; None when they are not a JSON object (the checks then report what the model sent)."""
    if isinstance(call.arguments, dict):
        return call.arguments
    try:
        value = json.loads(call.arguments)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(slots=True)
class ObservedCall:
    """A call the model proposed; `args` is None when its arguments were not valid JSON.
    `result` is what the gate answered (None when the call never reached it, e.g. the run
    paused first) and `ok` whether the tool ran successfully."""

    name: str
    args: dict[str, Any] | None
    result: str | None = None
    ok: bool = False


@dataclass(slots=True)
class Observation:
    """What one run of a case did, in the terms the assertions speak."""

    calls: list[ObservedCall] = field(default_factory=list)
    answer: str = ""
    output: Any = None
    status: str = "completed"
    turns: int = 0
    #: calls the gate did not run successfully (invalid, refused, failed)
    failed_calls: int = 0
    #: what the tools answered, in call order (the text the model was given)
    results: list[str] = field(default_factory=list)
    cost_usd: float = 0.0
    latency_s: float = 0.0
    tokens: int = 0


def check(expect: Expect, obs: Observation) -> list[str]:
    """Every failed assertion of `expect` on `obs` (empty: the run passes)."""
    failures: list[str] = []
    names = [c.name for c in obs.calls]
    if expect.tools is not None:
        failures += _check_tools(expect.tools, names)
    for a in expect.args:
        failures += _check_arg(a, obs.calls)
    for name in expect.not_called:
        if name in names:
            failures.append(f"{name} must not be called, but was")
    if expect.max_calls is not None and len(names) > expect.max_calls:
        failures.append(f"{len(names)} calls, at most {expect.max_calls} allowed: {names}")
    if expect.max_turns is not None and obs.turns > expect.max_turns:
        failures.append(f"{obs.turns} turns, at most {expect.max_turns} allowed")
    if expect.max_failed_calls is not None and obs.failed_calls > expect.max_failed_calls:
        failures.append(f"{obs.failed_calls} calls failed, at most {expect.max_failed_calls}")
    failures += _check_answer(expect, obs.answer)
    for f in expect.output:
        value = _lookup(_as_data(obs.output), f.path)
        failures += [f"output {f.path}: {m}" for m in check_value(f, value)]
    if expect.status is not None and obs.status != expect.status:
        failures.append(f"run ended {obs.status!r}, expected {expect.status!r}")
    if expect.max_cost_usd is not None and obs.cost_usd > expect.max_cost_usd:
        failures.append(f"cost ${obs.cost_usd:.4f} over ${expect.max_cost_usd:.4f}")
    if expect.max_latency_s is not None and obs.latency_s > expect.max_latency_s:
        failures.append(f"took {obs.latency_s:.2f}s, over {expect.max_latency_s:.2f}s")
    return failures


def _check_tools(t: ToolsExpect, names: list[str]) -> list[str]:
    out: list[str] = []
    if t.set is not None and set(names) != set(t.set):
        out.append(f"called {sorted(set(names))}, expected exactly {sorted(set(t.set))}")
    if t.order is not None and names != t.order:
        out.append(f"call sequence {names}, expected {t.order}")
    if t.subset is not None:
        missing = [n for n in t.subset if n not in names]
        if missing:
            out.append(f"{missing} not called (calls: {names})")
    return out


def _check_arg(a: ArgCheck, calls: list[ObservedCall]) -> list[str]:
    """Passes when some call of `a.tool` has a value at `a.arg` passing the check."""
    tool, path = a.tool, a.arg
    seen = [c for c in calls if c.name == tool]
    if not seen:
        return [f"{tool}.{path}: {tool} was not called"]
    reasons: list[str] = []
    for c in seen:
        if c.args is None:
            reasons.append("arguments were not valid JSON")
            continue
        value = _lookup(c.args, path)
        if value is _MISSING and "if_absent" in a.model_fields_set:
            value = a.if_absent
        problems = check_value(a, value)
        if not problems:
            return []
        reasons += problems
    return [f"{tool}.{path}: " + "; ".join(dict.fromkeys(reasons))]


def check_value(vc: ValueCheck, value: Any) -> list[str]:
    """Why `value` fails `vc` (empty when it passes); `_MISSING` stands for an absent value."""
    if vc.absent:
        return [] if value is _MISSING else [f"should be absent, got {value!r}"]
    if value is _MISSING:
        return ["missing"]
    if "equals" in vc.model_fields_set:
        return [] if _same(value, vc.equals) else [f"got {value!r}, expected {vc.equals!r}"]
    if vc.any_of is not None:
        ok = any(_same(value, v) for v in vc.any_of)
        return [] if ok else [f"got {value!r}, expected one of {vc.any_of!r}"]
    if vc.pattern is not None:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        ok = re.search(vc.pattern, text) is not None
        return [] if ok else [f"got {value!r}, which does not match /{vc.pattern}/"]
    assert vc.range is not None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return [f"got {value!r}, expected a number"]
    lo, hi = vc.range.min, vc.range.max
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return [f"got {value!r}, expected within [{lo}, {hi}]"]
    return []


def _same(a: Any, b: Any) -> bool:
    """Equality that treats 3 and 3.0 alike but never True and 1, and compares strings
    exactly (case matters: a pattern check is the tool for looser matching)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def _check_answer(expect: Expect, answer: str) -> list[str]:
    low = answer.casefold()
    out = [
        f"answer does not mention {fact!r}"
        for fact in expect.answer_contains
        if fact.casefold() not in low
    ]
    for group in expect.answer_contains_any:
        if not any(f.casefold() in low for f in group):
            out.append(f"answer mentions none of {group!r}")
    out += [
        f"answer must not mention {fact!r}"
        for fact in expect.answer_not_contains
        if fact.casefold() in low
    ]
    if out:
        out.append(f"answer was: {answer[:200]!r}")
    return out


def _lookup(data: Any, path: str) -> Any:
    """The value at a dotted path (list items by index), or `_MISSING`."""
    cur = data
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def _as_data(output: Any) -> Any:
    """A typed output as plain data: Pydantic models and dataclasses are dumped, JSON text
    is parsed, anything else is taken as it is."""
    dump = getattr(output, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    import dataclasses

    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        return dataclasses.asdict(output)
    if isinstance(output, str):
        try:
            return json.loads(output)
        except ValueError:
            return output
    return output
