"""≥ 100,000 generated calls through `Gate.execute`, each judged by the independent oracle.

For every call: nothing escapes `execute`; the result carries the call's id; a body that ran
received exactly what the model sent (plus schema defaults) and only if the oracle accepts it;
a call the oracle accepts runs unless a documented reason stops it (a policy that denies the
tool, an empty required identifier, a sanitiser's denial); a refusal has the documented kind
(correctable, or denied for policy and sanitisers), never terminal; no secret the call carried,
and no value of a sensitive parameter, comes back in the model-facing text; an unknown key is
named in the error; the text stays short and the call fast. The first calls of each tool are
replayed in parallel batches through `execute_many`: same ids in the same order, the same calls
succeed, and every success ran its body exactly once.

Problems the gate is already known to have are listed in `KNOWN`, each with the regression test
in `test_found.py` that fails (xfail strict) until it is fixed; anything else fails here.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest

from callgate import Gate
from callgate.context import RunContext
from callgate.gate.decode import DecodeLimits
from callgate.gate.middleware.sanitize import Sanitizer
from callgate.messages import ToolCall, ToolResult
from tests.adversarial import test_found
from tests.adversarial.generator import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_ITEMS,
    Case,
    generate,
)
from tests.adversarial.oracle import Judge, Verdict, non_finite
from tests.adversarial.signatures import RECEIVED, Target, targets

SEED = 20_261_129
CALLS_PER_TOOL = 7_200  # x 14 tools = 100,800 calls
PARALLEL_SHARE = 800  # of each tool's calls, replayed through execute_many in groups of 8
TARGETS = targets()
LIMITS = DecodeLimits(max_bytes=MAX_BYTES, max_depth=MAX_DEPTH, max_items=MAX_ITEMS)
#: the longest model-facing error text accepted (the gate caps what it echoes and lists)
MAX_ERROR_CHARS = 6_000
_DENIED = frozenset({"denied"})
#: the longest one call may take (generous: a loaded 2-core machine; a call takes ~0.1 ms)
MAX_CALL_S = 1.0
#: mutations that apply to every signature (the others need a string, number or boolean)
ALWAYS_APPLICABLE = (
    "valid",
    "wrong_type",
    "unknown_key",
    "missing_required",
    "secret_echo",
    "malformed",
    "duplicate_key",
    "non_finite",
    "lone_surrogate",
    "deep_nesting",
    "non_object_root",
)

#: problem kind -> the regression test in test_found.py that reproduces it (xfail strict until
#: fixed). Remove an entry as soon as its test passes.
KNOWN: dict[str, str] = {}

#: the result (or what escaped), what the body received, the seconds the call took
Outcome = tuple[ToolResult | BaseException, list[tuple[str, dict[str, Any]]], float]


@dataclass(slots=True)
class Problem:
    kind: str
    case: Case
    detail: str


def test_known_problems_are_still_open_regression_tests() -> None:
    """Each tolerated problem names a test in test_found.py that is still marked xfail: once a
    fix makes that test pass and its marker is removed, the entry here must go too, so the
    suite checks the fixed promise again."""
    for kind, name in KNOWN.items():
        fn = getattr(test_found, name, None)
        assert fn is not None, f"{kind}: no test_found.{name}"
        marks = [m.name for m in getattr(fn, "pytestmark", [])]
        assert "xfail" in marks, f"{kind}: test_found.{name} is no longer xfail; drop it"


def test_the_suite_generates_at_least_100k_calls() -> None:
    assert CALLS_PER_TOOL * len(TARGETS) >= 100_000
    assert len({t.tool.name for t in TARGETS}) == len(TARGETS)


@pytest.mark.parametrize("target", TARGETS, ids=[t.tool.name for t in TARGETS])
def test_generated_calls(target: Target) -> None:
    seed = SEED + sum(map(ord, target.tool.name))
    cases = generate(target, CALLS_PER_TOOL, seed)
    judge = Judge(target.tool.spec.parameters, always_denied=target.always_denied, raw=target.raw)
    verdicts = [verdict_for(judge, c, target.sanitized) for c in cases]
    gate = Gate([target.tool], limits=LIMITS, middleware=[Sanitizer()] if target.sanitized else ())
    outcomes: list[Outcome] = []
    for start in range(0, len(cases), 2_000):
        outcomes += asyncio.run(_sequential(gate, target.tool.name, cases[start : start + 2_000]))
    problems = [
        p
        for case, verdict, outcome in zip(cases, verdicts, outcomes, strict=True)
        for p in check(judge, case, verdict, outcome)
    ]
    share = slice(0, PARALLEL_SHARE)
    problems += _parallel_problems(gate, target.tool.name, cases[share], outcomes[share])
    _coverage(target, cases, verdicts, outcomes)
    _report(target, cases, problems)


def verdict_for(judge: Judge, case: Case, sanitized: bool = False) -> Verdict:
    """The oracle's verdict; a call under another tool's name must reach no tool at all, and
    a sanitiser may deny (never correct) arguments the schema accepts."""
    if case.name is not None:
        return Verdict(False, "unknown-tool")
    v = judge.verdict(case.arguments)
    if sanitized and v.must_run:
        return replace(v, must_run=False, may_run=True, why="sanitizer", refusals=_DENIED)
    return v


async def _sequential(gate: Gate, name: str, cases: Sequence[Case]) -> list[Outcome]:
    """One call at a time, so what a body records belongs to the call just made."""
    out: list[Outcome] = []
    for c in cases:
        RECEIVED.clear()
        res: ToolResult | BaseException
        t0 = time.perf_counter()
        try:
            call = ToolCall(c.call_id, name if c.name is None else c.name, c.arguments)
            res = await gate.execute(call, RunContext())
        except (Exception, SystemExit) as e:  # noqa: BLE001 - an escape is what is checked
            res = e
        out.append((res, list(RECEIVED), time.perf_counter() - t0))
    return out


def check(judge: Judge, case: Case, verdict: Verdict, outcome: Outcome) -> list[Problem]:
    """Every promise the gate makes about one call."""
    res, received, seconds = outcome
    if isinstance(res, BaseException):
        return [Problem(f"escaped:{type(res).__name__}", case, str(res)[:200])]
    out: list[Problem] = []
    if res.call_id != case.call_id:
        out.append(Problem("wrong-call-id", case, f"{res.call_id!r}"))
    if len(received) > 1:
        out.append(Problem("ran-twice", case, f"{len(received)} runs"))
    if received:
        out += _ran(judge, case, verdict, res, received[0][1])
    else:
        out += _not_ran(case, verdict, res)
        out += _names_unknown_keys(judge, case, verdict, res)
    for core in case.secrets:
        if _leaks(core, res.content):
            where = "raw-schema-tool" if judge.raw else "function-tool"
            out.append(Problem(f"secret-echoed:{where}", case, res.content[:300]))
    if seconds > MAX_CALL_S:
        out.append(Problem(f"slow-call:{case.mutation}", case, f"{seconds:.2f} s"))
    if res.is_error and len(res.content) > MAX_ERROR_CHARS:
        out.append(Problem(f"long-error:{case.mutation}", case, f"{len(res.content)} chars"))
    return out


def _ran(
    judge: Judge, case: Case, verdict: Verdict, res: ToolResult, got: dict[str, Any]
) -> list[Problem]:
    if verdict.args is None:
        return [Problem(f"ran-undecodable:{verdict.why}", case, repr(case.arguments)[:200])]
    if not verdict.schema_ok:
        kind = "ran-invalid:" + "+".join(judge.classify(verdict.args))
        return [Problem(kind, case, f"sent {verdict.args!r:.200} body got {got!r:.200}")]
    if not verdict.must_run and not verdict.may_run:
        return [Problem(f"ran-despite:{verdict.why}", case, f"{got!r:.200}")]
    if non_finite(got):  # decoding refuses NaN/Infinity; nothing may turn a number into one
        return [Problem("ran-with-non-finite", case, f"body got {got!r:.200}")]
    out: list[Problem] = []
    diff = judge.mismatch(verdict.args, got)
    if diff is not None:
        out.append(Problem("altered-arguments", case, diff))
    if res.content != "ok":  # what every body returns
        out.append(Problem("altered-result", case, res.content[:200]))
    if res.error_kind is not None:
        out.append(Problem(f"ran-but-reported:{res.error_kind}", case, res.content[:200]))
    return out


def _not_ran(case: Case, verdict: Verdict, res: ToolResult) -> list[Problem]:
    if verdict.must_run:
        head = res.content.splitlines()[1:2] or [res.content[:200]]
        return [Problem(f"refused-valid:{res.error_kind}", case, head[0][:200])]
    if res.error_kind not in verdict.refusals:
        return [Problem(f"wrong-kind:{verdict.why}->{res.error_kind}", case, res.content[:200])]
    return []


def _names_unknown_keys(
    judge: Judge, case: Case, verdict: Verdict, res: ToolResult
) -> list[Problem]:
    """Errors teach: an unknown key (a plain one; hostile names may be escaped or cut) is named
    in the error, so the model can see what to remove."""
    if case.mutation != "unknown_key" or verdict.args is None or verdict.schema_ok:
        return []
    plain = [
        k
        for k in judge.unknown_keys(verdict.args)
        if k.isidentifier() and len(k) <= 40 and not any(c in k for c in case.secrets)
    ]  # a secret-looking name is rightly masked
    missing = [k for k in plain if k not in res.content]
    return (
        [Problem("unknown-key-not-named", case, f"{missing}: {res.content[:200]}")]
        if missing
        else []
    )


def _leaks(core: str, text: str) -> bool:
    """Whether any 10 consecutive characters of a secret's random core are in `text` (so a
    truncated echo counts too)."""
    return any(core[i : i + 10] in text for i in range(0, len(core) - 9))


def _parallel_problems(
    gate: Gate, name: str, cases: Sequence[Case], sequential: Sequence[Outcome]
) -> list[Problem]:
    """The same calls in groups of 8 through `execute_many`: same order, ids, and the same
    calls succeed."""

    async def run() -> list[ToolResult]:
        out: list[ToolResult] = []
        for i in range(0, len(cases), 8):
            group = [
                ToolCall(c.call_id, name if c.name is None else c.name, c.arguments)
                for c in cases[i : i + 8]
            ]
            out += await gate.execute_many(group, RunContext())
        return out

    RECEIVED.clear()
    results = asyncio.run(run())
    out: list[Problem] = []
    successes = sum(not r.is_error for r in results)
    if len(RECEIVED) != successes:  # every success ran its body once, nothing else ran
        detail = f"{len(RECEIVED)} bodies ran for {successes} successes"
        out.append(Problem("parallel-runs-mismatch", cases[0], detail))
    for case, res, (first, _, _) in zip(cases, results, sequential, strict=True):
        if res.call_id != case.call_id:
            out.append(Problem("parallel-wrong-call-id", case, res.call_id))
        elif isinstance(first, ToolResult) and first.is_error != res.is_error:
            # success or not must agree (the kind of a refusal may depend on the correction
            # budget, which a batch shares)
            detail = f"{first.error_kind} alone, {res.error_kind} in a batch"
            out.append(Problem("parallel-different-outcome", case, detail))
    return out


def _coverage(
    target: Target, cases: Sequence[Case], verdicts: Sequence[Verdict], outcomes: Sequence[Outcome]
) -> None:
    """The generator must really exercise both sides: many calls that must run, many that must
    not, and every mutation class that applies to this signature."""
    runs = sum(v.must_run or v.may_run for v in verdicts)
    ran = sum(bool(o[1]) for o in outcomes)
    if target.always_denied:
        assert runs == 0 and ran == 0
        assert sum(v.why == "policy" for v in verdicts) > len(cases) // 10
    else:
        assert runs > len(cases) // 5, f"only {runs} valid calls generated"
        assert ran > len(cases) // 10, f"only {ran} calls ran"
    assert sum(not v.must_run for v in verdicts) > len(cases) // 3
    seen = Counter(c.mutation for c in cases)
    missing = [m for m in ALWAYS_APPLICABLE if seen[m] < 50]
    assert not missing, f"mutations (almost) never applied: {missing}"


def _report(target: Target, cases: Sequence[Case], problems: Sequence[Problem]) -> None:
    by_kind: dict[str, list[Problem]] = {}
    for p in problems:
        by_kind.setdefault(p.kind, []).append(p)
    unknown = {k: v for k, v in by_kind.items() if not _known(k)}
    for k, ps in sorted(by_kind.items()):
        tag = "KNOWN" if k not in unknown else "NEW"
        print(f"{target.tool.name}: {tag} {k}: {len(ps)} of {len(cases)} calls")
    if unknown:
        lines = []
        for k, ps in sorted(unknown.items()):
            lines.append(f"{k}: {len(ps)} calls, e.g.")
            for p in ps[:3]:
                lines.append(f"  [{p.case.call_id} {p.case.mutation}] {p.detail}")
                lines.append(f"    arguments: {p.case.arguments!r:.300}")
        pytest.fail("\n".join(lines), pytrace=False)


def _known(kind: str) -> bool:
    if kind in KNOWN:
        return True
    if kind.startswith("ran-invalid:"):
        parts = kind.removeprefix("ran-invalid:").split("+")
        return all(f"ran-invalid:{p}" in KNOWN for p in parts)
    return False


class _ChecksNothing:
    """A broken validator for the control test: accepts anything and silently drops unknown
    top-level keys (the bug class the suite exists to catch)."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def fast_json(self, raw: str) -> None:
        return None

    def validate(self, args: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in args.items() if k in self._real.param_names}


def test_the_checks_catch_a_gate_that_validates_nothing() -> None:
    """The control: the same harness over a gate whose validator checks nothing must report
    bodies that saw invalid arguments and arguments that changed on the way."""
    target = next(t for t in TARGETS if t.tool.name == "search")
    broken = replace(target.tool, validator=_ChecksNothing(target.tool.validator))
    cases = generate(target, 1_500, SEED)
    judge = Judge(broken.spec.parameters)
    outcomes = asyncio.run(_sequential(Gate([broken], limits=LIMITS), broken.name, cases))
    kinds = Counter(
        p.kind
        for c, o in zip(cases, outcomes, strict=True)
        for p in check(judge, c, verdict_for(judge, c), o)
    )
    assert kinds["ran-invalid:unknown-key:top"] > 20, kinds
    assert kinds["ran-invalid:other:type"] > 20, kinds
    assert kinds["wrong-kind:schema->terminal"] > 0, kinds  # the body crashed on what it got
    assert not [k for k in kinds if k.startswith("refused-valid")], kinds
