"""`callgate eval bfcl` on a few real BFCL cases with scripted models: BFCL's own checker
passes a model that answers with the ground truth and fails one that does not; irrelevance
cases pass only without a call; unparsable and schema-invalid arguments are counted."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytest.importorskip("bfcl_eval", reason="bfcl-eval is installed by `make eval-bfcl`")

from callgate.cli import main as cli_main
from callgate.eval.bfcl import BfclRunner, bfcl_schema, load_cases
from callgate.messages import ToolCall
from callgate.models import ModelRequest
from callgate.testing import FunctionModel


def _truth_model(category: str, mutate: bool = False) -> FunctionModel:
    """Answers each case with its BFCL ground truth (first allowed value of each argument),
    looked up by the question text; `mutate` changes one value so the answer is wrong."""
    cases, truth = load_cases(category, 3)
    by_question = {c["question"][0][-1]["content"]: truth[c["id"]] for c in cases}

    def reply(req: ModelRequest) -> list[ToolCall]:
        calls = []
        for i, item in enumerate(by_question[req.messages[-1].content]):
            ((name, args),) = item.items()
            chosen = {k: v[0] for k, v in args.items() if v and v[0] != ""}
            if mutate:
                key = next(iter(chosen))
                chosen[key] = "wrong" if not isinstance(chosen[key], str) else chosen[key] + "x"
            calls.append(ToolCall(f"c{i}", name, json.dumps(chosen)))
        return calls

    return FunctionModel(reply, name="truth")


def _run(model: Any, category: str, n: int = 3) -> Any:
    report = asyncio.run(BfclRunner(model).run([category], limit=n))
    (cat,) = report.categories
    return cat


@pytest.mark.parametrize("category", ["simple", "parallel"])
def test_ground_truth_passes_and_a_changed_value_fails(category: str) -> None:
    good = _run(_truth_model(category), category)
    assert [c.passed for c in good.cases] == [True, True, True]
    stats = good.stats()
    assert stats["accuracy"] == 1.0 and stats["parsed"] == 1.0
    bad = _run(_truth_model(category, mutate=True), category)
    assert not any(c.passed for c in bad.cases)
    assert all(c.error for c in bad.cases)


def test_irrelevance_passes_only_without_a_call() -> None:
    silent = _run(FunctionModel(lambda req: "I cannot help with that."), "irrelevance", 2)
    assert silent.stats()["accuracy"] == 1.0
    eager = _run(
        FunctionModel(lambda req: ToolCall("c", req.tools[0].name, "{}")), "irrelevance", 2
    )
    assert eager.stats()["accuracy"] == 0.0


def test_unparsable_and_invalid_arguments_are_counted() -> None:
    broken = _run(FunctionModel(lambda req: ToolCall("c", req.tools[0].name, "{oops")), "simple", 2)
    s = broken.stats()
    assert s["accuracy"] == 0.0 and s["parsed"] == 0.0 and s["validated"] == 0.0
    wrong_type = _run(
        FunctionModel(lambda req: ToolCall("c", req.tools[0].name, json.dumps({"base": "x"}))),
        "simple",
        1,
    )
    s = wrong_type.stats()
    assert s["parsed"] == 1.0 and s["validated"] == 0.0


def test_schema_conversion() -> None:
    schema = bfcl_schema(
        {
            "type": "dict",
            "properties": {
                "n": {"type": "integer"},
                "xs": {"type": "tuple", "items": {"type": "float"}},
            },
            "required": ["n", "gone"],
        }
    )
    assert schema == {
        "type": "object",
        "properties": {
            "n": {"type": "integer"},
            "xs": {"type": "array", "items": {"type": "number"}},
        },
        "required": ["n"],
    }


def test_random_sample_is_seeded_and_not_the_first_cases() -> None:
    a, _ = load_cases("simple", 0, sample=5, seed=3)
    b, _ = load_cases("simple", 0, sample=5, seed=3)
    c, _ = load_cases("simple", 0, sample=5, seed=4)
    assert [x["id"] for x in a] == [x["id"] for x in b] != [x["id"] for x in c]
    first, _ = load_cases("simple", 5)
    assert [x["id"] for x in a] != [x["id"] for x in first]
    held_out, _ = load_cases("simple", 0, sample=20, seed=3, pool_from=52)
    assert all(int(x["id"].rsplit("_", 1)[1]) >= 52 for x in held_out)


def test_cli(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "bfcl_models.py").write_text(
        "from callgate.testing import FunctionModel\n"
        "def silent():\n    return FunctionModel(lambda req: 'no', name='silent')\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "bfcl.json"
    argv = ["eval", "bfcl", "--model", "bfcl_models:silent", "--category", "irrelevance"]
    argv += ["--category", "simple", "--limit", "2", "--offset", "5", "--quiet", "--json", str(out)]
    assert cli_main(argv) == 0
    data = json.loads(out.read_text())
    assert data["categories"]["irrelevance"]["accuracy"] == 1.0
    assert data["categories"]["simple"]["accuracy"] == 0.0
    assert [r["id"] for r in data["categories"]["simple"]["rows"]] == [
        "simple_python_5",
        "simple_python_6",
    ]
    assert "irrelevance" in capsys.readouterr().out
