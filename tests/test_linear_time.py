"""Every check that reads model-controlled text runs in linear time.

The adversarial inputs come from bench/linear_time.py (the same set `make bench` times): for each
check, strings built by repeating fragments that make a backtracking pattern or a naive scan work
hard, up to the size the check accepts. The requirement is under 10 ms per input on a quiet
machine; the bound asserted here is 0.5 s of CPU time so a busy machine never makes the test flaky,
yet any quadratic or exponential case (seconds on these sizes) fails it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from callgate.policy.engine import PolicyError, Rule
from callgate.redaction import MASK, MAX_TEXT_CHARS, MAX_TOTAL_CHARS, redact, redact_text
from callgate.tools.schema import did_you_mean

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import linear_time  # noqa: E402

BOUND_S = 0.5


def _cpu(run: object) -> float:
    start = time.process_time()
    run()  # type: ignore[operator]
    return time.process_time() - start


def test_every_adversarial_input_is_fast() -> None:
    cases = list(linear_time.cases())
    assert len(cases) > 1000
    for case in cases[:20]:  # imports and compiled patterns are not what is measured
        case.run()
    slow = []
    for case in cases:
        if _cpu(case.run) > BOUND_S and min(_cpu(case.run) for _ in range(2)) > BOUND_S:
            slow.append((case.check, case.fragment))
    assert slow == []


@pytest.mark.parametrize(
    "text",
    [
        "1'or " * 2400,  # a catastrophic case for a backtracking SQL pattern (16 s before)
        "<" * 12000,  # a catastrophic case for a backtracking HTML pattern (12 s before)
        "a." * 6000 + "://x",  # catastrophic for a backtracking redaction pattern (was 6.6 s)
    ],
)
def test_the_issues_cases(text: str) -> None:
    from callgate.gate.middleware.sanitize import SanitizeConfig, detect_html, detect_sql

    cfg = SanitizeConfig(max_chars={"sql": 100_000, "html": 100_000})  # read them in full
    for run in (lambda: detect_sql(text, cfg), lambda: detect_html(text, cfg)):
        assert _cpu(run) < BOUND_S
    assert _cpu(lambda: redact_text(text)) < BOUND_S


def test_redaction_caps_its_input_and_never_keeps_half_a_secret() -> None:
    secret = "sk-proj-" + "A1b2" * 10
    text = "x " * (MAX_TEXT_CHARS // 2 - 5) + secret + " tail" * 1000
    out = redact_text(text)
    assert len(out) < MAX_TEXT_CHARS + 100
    assert "more characters not recorded" in out
    assert "A1b2A1b2" not in out  # the cut backed off to whitespace before the secret
    huge = "word " * 400_000  # 2 MB
    assert _cpu(lambda: redact_text(huge)) < BOUND_S
    assert len(redact_text(huge)) < MAX_TEXT_CHARS + 100


def test_redact_reads_a_bounded_total() -> None:
    chunk = "y" * 60_000
    args = {f"k{i}": chunk for i in range(20)}  # 1.2 M characters of strings
    out = redact(args)
    assert set(out) == set(args)
    kept = sum(len(v) for v in out.values() if v.startswith("y"))
    assert kept <= MAX_TOTAL_CHARS
    assert "not recorded" in out["k19"]


def test_long_secrets_are_masked_whole() -> None:
    token = "Z9" * 5000
    for text in (f"password={token}", f"Authorization: Bearer {token}", f"sk-{token}"):
        out = redact_text(text)
        assert "Z9Z9" not in out and MASK in out, text[:20]
    jwt = "eyJ" + "a" * 3000 + "." + "b" * 3000 + "." + "c" * 3000
    assert redact_text(f"t {jwt} t") == f"t {MASK} t"
    long_scheme = "x" * 200 + "+https://user:hunter2@host/"
    assert "hunter2" not in redact_text(long_scheme)


def test_an_overlong_key_is_treated_as_secret() -> None:
    assert redact({"k" * 300: "value"}) == {"k" * 300: MASK}
    assert redact({"max_tokens": 5}) == {"max_tokens": 5}


def test_did_you_mean_on_huge_and_many() -> None:
    assert _cpu(lambda: did_you_mean("a" * 65_536, ["amount", "alpha"])) < BOUND_S
    many = [f"parameter_{i}" for i in range(3000)]
    assert _cpu(lambda: did_you_mean("parameter_12x", many)) < BOUND_S
    assert did_you_mean("ammount", ["amount", "currency"]) == "amount"
    assert did_you_mean("Currency", ["amount", "currency"]) == "currency"


def test_policy_regexes_run_on_re2() -> None:
    rule = Rule("block-evil", "deny", when='note matches "^(a+)+$"')
    assert rule.condition is not None
    text = "a" * 65_536 + "!"
    from callgate.context import RunContext
    from callgate.tools.definition import tool

    @tool
    def noop(note: str) -> str:
        """No-op."""
        return note

    assert _cpu(lambda: rule.condition.evaluate(noop, {"note": text}, RunContext())) < BOUND_S
    assert rule.condition.evaluate(noop, {"note": "aaa"}, RunContext()) is True
    assert rule.condition.evaluate(noop, {"note": "aab"}, RunContext()) is False


@pytest.mark.parametrize("pattern", [r"(a)\\1", "(?=a)b", "(?<!x)y"])
def test_backtracking_only_patterns_are_refused_naming_the_rule(pattern: str) -> None:
    with pytest.raises(PolicyError) as ei:
        Rule("needs-backtracking", "deny", when=f'note matches "{pattern}"')
    message = str(ei.value)
    assert "needs-backtracking" in message and "RE2" in message


def test_missing_re2_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "re2", None)
    with pytest.raises(PolicyError, match=r"callgate\[sanitize\]"):
        Rule("r", "deny", when='note matches "x"')
