"""Hostile calls through a gate that audits: every call recorded once, redacted, chained, fast.

The README promises that every call is audited (redacted by the tools' sensitive annotations and
by secret-looking keys and values) and that the chain verifies. Generated calls of every
mutation class go through a gate with the real `AuditLog` observer; then the log must hold one
record per call with its id and outcome, no secret a call carried, and a chain `verify_entries`
accepts. Each call must also stay fast with the audit on: redacting hostile strings near the
size limit once took seconds on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from callgate import Gate
from callgate.audit import AuditLog, MemoryAuditStore, verify_entries
from callgate.context import RunContext
from callgate.messages import ToolCall, ToolResult
from tests.adversarial import test_found
from tests.adversarial.generator import Case, generate
from tests.adversarial.oracle import decode
from tests.adversarial.signatures import Target
from tests.adversarial.test_generated_calls import LIMITS, SEED, TARGETS

CALLS_PER_TOOL = 400
#: known gaps -> their regression test in test_found.py (xfail strict); remove when fixed
KNOWN: dict[str, str] = {}
#: a generous bound for one call on a loaded 2-core machine (a normal call takes ~0.1 ms)
MAX_CALL_S = 1.0


async def _timed(gate: Gate, target: Target, cases: list[Case]) -> list[tuple[ToolResult, float]]:
    out = []
    for c in cases:
        call = ToolCall(c.call_id, target.tool.name if c.name is None else c.name, c.arguments)
        t0 = time.perf_counter()
        res = await gate.execute(call, RunContext(user_id="u1", tenant="t1"))
        out.append((res, time.perf_counter() - t0))
    return out


def _sensitive_values(target: Target, case: Case) -> list[str]:
    """Plain values of the tool's sensitive parameters in a call that decodes: long enough not
    to occur by chance, and not also sent under an ordinary parameter (which may be recorded)."""
    args, _ = decode(case.arguments)
    if args is None:
        return []
    others = json.dumps({k: v for k, v in args.items() if k not in target.sensitive})
    return [
        v
        for k, v in args.items()
        if k in target.sensitive
        and isinstance(v, str)
        and len(v) >= 12
        and json.dumps(v)[1:-1] not in others
    ]


def test_every_hostile_call_is_audited_once_redacted_and_chained() -> None:
    slow: list[str] = []
    for target in TARGETS:
        store = MemoryAuditStore()
        audit = AuditLog(store)
        gate = Gate([target.tool], limits=LIMITS, observers=[audit])
        cases = generate(target, CALLS_PER_TOOL, SEED + 1)
        outcomes = asyncio.run(_timed(gate, target, cases))
        slow += [
            f"{c.call_id} {c.mutation} {s:.2f}s"
            for c, (_, s) in zip(cases, outcomes)
            if s > MAX_CALL_S
        ]
        entries = {e.data["call_id"]: e for e in store.iter_all() if e.kind == "call"}
        assert list(entries) == [c.call_id for c in cases if c.call_id in entries]
        missing = [c for c in cases if c.call_id not in entries]
        assert audit.failures == len(missing), target.tool.name
        unexplained = [(c.call_id, c.mutation) for c in missing if not _known_unaudited(c)]
        assert not unexplained, f"calls missing from the audit log: {unexplained[:10]}"
        for case, (res, _) in zip(cases, outcomes, strict=True):
            if case.call_id in entries:
                e = entries[case.call_id]
                assert e.data["error_kind"] == res.error_kind, case.call_id
                _assert_redacted(target, case, e.to_dict())
        report = verify_entries(store.iter_all(), checkpoints=store.checkpoints())
        assert report.ok, report.summary()
    assert not slow, slow[:10]


def _known_unaudited(case: Case) -> bool:
    """Only the known gap may make a call go missing from the log."""
    return "unaudited-surrogate" in KNOWN and decode(case.arguments)[1] == "surrogate"


def test_known_gaps_are_still_open_regression_tests() -> None:
    for gap, name in KNOWN.items():
        marks = [m.name for m in getattr(test_found, name).pytestmark]
        assert "xfail" in marks, f"test_found.{name} passes now: remove {gap!r} from KNOWN"


def _assert_redacted(target: Target, case: Case, record: dict[str, Any]) -> None:
    if case.mutation == "unknown_key" and "secret-key-name" in KNOWN:
        record = {**record, "data": {**record["data"], "arguments": None}}
    text = json.dumps(record, ensure_ascii=False)
    for core in case.secrets:
        assert core[:10] not in text, f"{case.call_id} {case.mutation}: secret in the audit record"
    for value in _sensitive_values(target, case):
        assert value not in text, f"{case.call_id}: sensitive value in the audit record"
