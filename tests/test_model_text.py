"""What the model reads: one voice, one piece of advice, grammatical, short. Checked on the
texts the gate actually produces for each kind of outcome (not on the renderers alone)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from callgate import (
    Approvals,
    Gate,
    Limit,
    Policy,
    RateLimiter,
    Rule,
    RunContext,
    ToolCall,
    ToolDenied,
    TransientToolError,
    open_approval_store,
    tool,
)
from callgate.agent.guards import CALL_BUDGET, TOOLS_OFF, LoopBreaker
from callgate.messages import ToolCall as TC

ADVICE = re.compile(
    r"\b(try again|call \S+ again|do not|don't|continue without|answer|ask the user|tell the "
    r"user|check whether|use that result|wait for)\b",
    re.IGNORECASE,
)


def check_voice(text: str, *, max_len: int = 320) -> None:
    assert len(text) <= max_len, (len(text), text)
    assert text.rstrip().removesuffix(")")[-1] in ".?", text  # ends a sentence
    assert ".." not in text and " ." not in text and "  " not in text, text
    assert not re.search(r"[a-z0-9)\"] [A-Z][a-z]+ (?:not|retry|try)\b", text), text  # run-ons
    # "try again" and "do not retry/call it again" never both: one piece of advice
    lower = text.lower()
    assert not ("try again" in lower and "do not" in lower), text
    assert "do not retry this call as it is" not in lower


@tool(destructive=True)
def wire(to: str, amount: int) -> str:
    return "sent"


@tool(read_only=True, max_retries=0)
def flaky(x: int) -> str:
    raise TransientToolError("backend unavailable", retry_after=60)


@tool(read_only=True)
def refuses(x: int) -> str:
    raise ToolDenied("not your account")


@tool(read_only=True, timeout_s=0.05)
def hangs(x: int) -> str:
    time.sleep(0.3)
    return "late"


async def outcomes() -> list[str]:
    ctx = RunContext(user_id="u")
    texts: list[str] = []
    limited = Gate(
        [flaky, refuses], middleware=[RateLimiter([Limit(calls=1, per=60, tool="refuses")])]
    )
    for _ in range(2):  # the second is refused by the limit
        texts.append((await limited.execute(ToolCall("r", "refuses", '{"x": 1}'), ctx)).content)
    texts.append((await limited.execute(ToolCall("f", "flaky", '{"x": 1}'), ctx)).content)
    texts.append((await limited.execute(ToolCall("n", "nope", "{}"), ctx)).content)
    texts.append((await Gate([hangs]).execute(ToolCall("h", "hangs", '{"x": 1}'), ctx)).content)
    policy = Policy([Rule("no-wires", "deny", tools="wire", reason="wires are not allowed here")])
    denied = Gate([wire], policy=policy)
    texts.append(
        (await denied.execute(ToolCall("w", "wire", '{"to": "a", "amount": 1}'), ctx)).content
    )
    texts.append(
        (await Gate([wire]).execute(ToolCall("w", "wire", '{"to": "a", "amount": 1}'), ctx)).content
    )
    approvals = Approvals(open_approval_store(":memory:"))
    g = Gate([wire], approver=approvals)
    c = ToolCall("w2", "wire", '{"to": "a", "amount": 1}')
    pending = await g.execute(c, ctx)
    texts.append(pending.content)
    approvals.deny(pending.approval_id or "", by="Bob", comment="wrong customer")
    texts.append((await g.execute(c, ctx)).content)
    return texts


async def test_every_refusal_speaks_with_one_voice() -> None:
    texts = await outcomes()
    assert len(texts) == 9
    for text in texts:
        check_voice(text)
        assert text.split(":")[0] in ("Error", "Denied", "Not run", "Waiting for approval"), text
    rate_limited = texts[1]
    assert "try again in 60 s" in rate_limited and "Do not" not in rate_limited
    assert "Try again in 60 s" in texts[2]  # the transient error honours retry_after
    assert 'Bob denied this call (comment: "wrong customer"). Tell the user' in texts[8]


def test_the_runs_own_refusals_speak_with_one_voice() -> None:
    for r in (TOOLS_OFF, CALL_BUDGET):
        check_voice(r.message)
    b = LoopBreaker()
    call = TC("1", "search", '{"q": "flats in Paris"}')
    messages = [t.message for turn in ([call], [call], [call]) for t in b.check_turn(turn) if t]
    assert len(messages) == 2
    for m in messages:
        check_voice(m)


@pytest.mark.parametrize("left", [2, 1, 0])
async def test_validation_advice_never_contradicts_the_budget(left: int) -> None:
    @tool(max_corrections=3)
    def book(day: int) -> str:
        return "ok"

    gate = Gate([book])
    ctx = RunContext()
    res: Any = None
    for _ in range(3 - left):
        res = await gate.execute(ToolCall("b", "book", '{"day": "tue"}'), ctx)
    text = res.content
    last = text.splitlines()[-1]
    check_voice(last)
    if left == 0:
        assert "do not call it again" in last and "call book again" not in text
    else:
        assert "call book again" in last and f"({left} correction" in last
