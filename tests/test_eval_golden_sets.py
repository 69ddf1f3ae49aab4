"""The repository's golden sets, played by each case's reference run against the real tools
(a fresh sample database per run), so `make test` checks deterministically that every case is
passable and that its assertions agree with the live data."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import pytest

from callgate.eval import GoldenRunner, ReferenceModel, load_golden

ROOT = Path(__file__).resolve().parent.parent
SETS = {name: ROOT / "evals" / f"property_{name}.yaml" for name in ("demo", "rag", "policy")}


@pytest.fixture(scope="module", params=sorted(SETS))
def played(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    golden = load_golden(SETS[request.param])
    report = asyncio.run(GoldenRunner(golden, ReferenceModel).run())
    return request.param, golden, report


def test_every_reference_run_passes(played) -> None:  # type: ignore[no-untyped-def]
    _, _, report = played
    failing = {c.id: c.runs[0].failures for c in report.cases if c.pass_rate < 1.0}
    assert failing == {}


def test_reference_calls_succeed_unless_the_case_is_about_an_error(played) -> None:  # type: ignore[no-untyped-def]
    """A reference whose calls fail would pass only because its answer is written out."""
    _, golden, report = played
    refused = {c.id for c in golden.cases if c.kind == "denied"} | {"details-unknown-property"}
    failed = {c.id for c in report.cases if any(r.failed_calls for r in c.runs)}
    assert failed <= refused


def test_asserted_ids_and_amounts_come_from_the_tools(played) -> None:  # type: ignore[no-untyped-def]
    """Every property id or price an answer must mention is in what the tools returned, so
    the assertions are grounded in the live data, not only in the reference's wording."""
    _, golden, report = played
    runs = {c.id: c.runs[0] for c in report.cases}
    for case in golden.cases:
        facts = list(case.expect.answer_contains)
        facts += [g[0] for g in case.expect.answer_contains_any]
        tool_text = " ".join(runs[case.id].results).replace(",", "")
        for fact in facts:
            if re.fullmatch(r"P-\d{3}|[\d,]{4,}", fact):
                assert fact.replace(",", "") in tool_text, (case.id, fact)


def test_the_demo_set_is_large_and_varied() -> None:
    demo = load_golden(SETS["demo"])
    assert len(demo.cases) >= 25
    kinds = Counter(c.kind for c in demo.cases)
    assert {"search", "details", "maintenance", "action", "safety", "no-tool"} <= set(kinds)
    assert all(c.reference for c in demo.cases)


def test_the_rag_set_covers_docs_live_and_mixed() -> None:
    rag = load_golden(SETS["rag"])
    kinds = Counter(c.kind for c in rag.cases)
    assert kinds["docs"] >= 3 and kinds["live"] >= 3 and kinds["mixed"] >= 3
    for c in rag.cases:
        tools = c.expect.tools.subset or c.expect.tools.set or [] if c.expect.tools else []
        if c.kind == "mixed":  # needs both the handbook and a live tool
            assert "search_docs" in tools and len(tools) >= 2, c.id


def test_a_model_ignoring_the_handbook_fails_the_docs_cases() -> None:
    """The RAG set can tell a model that answers from memory from one that searches."""
    from callgate.testing import ScriptedModel

    rag = load_golden(SETS["rag"])
    runner = GoldenRunner(rag, lambda _c: ScriptedModel(["You need to give 60 days notice."]))
    report = asyncio.run(runner.run(["how-end-lease", "mixed-heating-p104"]))
    assert [c.pass_rate for c in report.cases] == [0.0, 0.0]
    assert "search_docs" in report.cases[0].runs[0].failures[0]


def test_the_policy_set_is_refused_where_it_says() -> None:
    """The reference runs of the policy set meet the gate's refusals for real."""
    golden = load_golden(SETS["policy"])
    report = asyncio.run(
        GoldenRunner(golden, ReferenceModel).run(["agent-other-office-is-refused"])
    )
    (run,) = report.cases[0].runs
    assert run.failed_calls == 1 and "another office" in run.results[0]
