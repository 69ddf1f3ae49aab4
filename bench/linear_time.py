"""Adversarial inputs for every check that reads model-controlled text, and their timings.

Each check (the six sink detectors, `redact_text`, `redact`, `is_sensitive_key`, `did_you_mean`,
a policy `matches`) is fed strings made by repeating fragments chosen to make a backtracking
pattern or a naive scan work hard (the prefixes the patterns look for, unclosed quotes,
comments, brackets, separators) up to the size the check accepts: the detector's own limit, and
the gate's decode limit (64 KiB) for everything else. Used by `tests/test_linear_time.py`
(every case under a generous bound) and by `make bench` (the worst case, in ms).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from callgate.gate.decode import DEFAULT_LIMITS
from callgate.gate.middleware.sanitize import DEFAULT_DETECTORS, DEFAULT_MAX_CHARS, SanitizeConfig
from callgate.policy.conditions import parse_condition
from callgate.redaction import is_sensitive_key, redact, redact_text
from callgate.tools.schema import did_you_mean

LIMIT = DEFAULT_LIMITS.max_bytes

FRAGMENTS = (
    "1'or ",
    "<",
    "a.",
    "'",
    '"',
    "`",
    "/*",
    "*/",
    "--",
    "#",
    "(",
    ")",
    ";",
    " ",
    "\u2028",
    "or 1=1 ",
    "union ",
    "select ",
    "%",
    "%25",
    "&",
    "&amp;",
    "&#",
    "\\'",
    "\\",
    "a",
    "0",
    "0x",
    ".",
    "-",
    "@",
    "<a href=",
    "<a ",
    "=",
    "style=",
    "url(",
    "[",
    "::",
    "1.",
    "xn--",
    "\u3002",
    "\uff11",
    "a-",
    "..",
    "/",
    "~",
    "$",
    "$(",
    "${",
    "<!--",
    "javascript:",
    "&#x6a;",
    "or(",
    "not ",
    "sleep(",
    "@@",
    "x'",
    "''",
    "/*!",
    "1-1-1-1-",
    "127.0.0.1.",
    "7f000001.",
    "bearer ",
    "authorization=",
    "sk-",
    "eyJ",
    "eyJa.",
    "password=",
    "://",
    "a://b:",
    "1 ",
    "1-",
    "Aa",
    "A",
    "ghp_",
    "xoxb-",
    "AKIA",
    "123-45-",
    "token: ",
    "a@",
    "http://a:b@",
)
TAILS = ("", "x'", "<@")


@dataclass(frozen=True, slots=True)
class Case:
    check: str
    fragment: str
    run: Callable[[], object]


def _fill(fragment: str, size: int) -> str:
    return (fragment * (size // len(fragment) + 1))[:size]


def _checks() -> dict[str, tuple[Callable[[str], object], int]]:
    cfg = SanitizeConfig()
    checks: dict[str, tuple[Callable[[str], object], int]] = {}
    for kind, detect in DEFAULT_DETECTORS.items():
        checks[kind] = (lambda s, d=detect: d(s, cfg), DEFAULT_MAX_CHARS[kind])
        checks[f"{kind} over its limit"] = (lambda s, d=detect: d(s, cfg), LIMIT)
    cond = parse_condition('a matches "^(a+)+$" or a matches "(x|x)*y" or a matches ".*=.*=.*;"')
    checks["redact_text"] = (redact_text, LIMIT)
    checks["redact"] = (lambda s: redact({"a": s[::2], "b": [s[1::2], {"password": s}]}), LIMIT)
    checks["is_sensitive_key"] = (lambda s: is_sensitive_key.__wrapped__(s), LIMIT)
    checks["did_you_mean"] = (lambda s: did_you_mean(s, ["amount", "account", s[:40]]), LIMIT)
    checks["policy matches"] = (lambda s: _matches(cond, s), LIMIT)
    return checks


def _matches(cond: object, text: str) -> object:
    from callgate.policy.conditions import Condition, _Env, _eval

    assert isinstance(cond, Condition)
    return _eval(cond._node, _Env(None, {"a": text}, None))  # type: ignore[arg-type]


def cases() -> Iterator[Case]:
    for name, (fn, size) in _checks().items():
        for fragment in FRAGMENTS:
            for tail in TAILS:
                text = _fill(fragment + tail, size)
                yield Case(name, repr(fragment + tail), lambda fn=fn, text=text: fn(text))


def timed(case: Case) -> float:
    """CPU seconds for one run of `case` (CPU time, so a machine shared with other work does
    not inflate the figure; the checks are single-threaded and never wait)."""
    start = time.process_time()
    case.run()
    return time.process_time() - start


def worst_case(repeats: int = 3) -> tuple[float, str]:
    """The slowest case (its best of `repeats` runs, in CPU ms) and its name."""
    for case in cases():  # warm up: imports, compiled patterns, caches
        case.run()
        break
    worst = (0.0, "")
    for case in cases():
        ms = min(timed(case) for _ in range(repeats)) * 1e3
        if ms > worst[0]:
            worst = (ms, f"{case.check} on {case.fragment}")
    return worst
