"""The golden runner: the file format refuses mistakes, each assertion fails when it should,
stubs replace the real tools, repetitions give pass rates, reports are well-formed, and a model
that changes behaviour is caught by the baseline comparison (exit code 1)."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pydantic import ValidationError

from callgate.cli import main as cli_main
from callgate.eval import (
    GoldenRunner,
    Observation,
    ObservedCall,
    ReferenceModel,
    assert_case_passes,
    check,
    compare,
    golden_params,
    load_golden,
)
from callgate.eval.dataset import Expect, GoldenFile
from callgate.testing import FunctionModel, ScriptedModel, call

# --- a tiny toolset, importable by the CLI as golden_tools:TOOLS ---------------------------

TOOLS_SRC = '''
from callgate import tool

LOG = []

@tool(read_only=True)
def get_weather(city: str, units: str = "celsius") -> dict:
    """Weather for a city.

    Args:
        city: City name.
        units: celsius or fahrenheit.
    """
    LOG.append(city)
    return {"city": city, "temperature": 21, "units": units}

@tool(read_only=True)
def get_time(city: str) -> str:
    """Local time in a city.

    Args:
        city: City name.
    """
    return "12:00"

TOOLS = [get_weather, get_time]
'''

GOLDEN = """
name: weather
toolset: golden_tools:TOOLS
paths: ["."]
stubs:
  get_weather:
    - {match: {city: Oslo}, result: {city: Oslo, temperature: -3}}
cases:
  - id: paris
    query: How warm is it in Paris?
    expect:
      tools: {set: [get_weather]}
      args:
        - {tool: get_weather, arg: city, equals: Paris}
        - {tool: get_weather, arg: units, equals: celsius, if_absent: celsius}
      not_called: [get_time]
      answer_contains: ["21"]
    reference:
      - calls: [{name: get_weather, args: {city: Paris}}]
      - answer: It is 21 degrees in Paris.
  - id: oslo
    query: Weather in Oslo?
    expect:
      args: [{tool: get_weather, arg: city, equals: Oslo}]
      answer_contains: [Oslo]
    reference:
      - calls: [{name: get_weather, args: {city: Oslo}}]
      - answer: It is -3 in Oslo.
"""

#: a model that reads the city from the question and answers from the tool result
SCRIPTED_SRC = '''
from callgate.testing import FunctionModel, call

def good():
    def reply(req):
        last = req.messages[-1]
        if last.role == "tool":
            data = last.tool_result.content
            return "Result: " + data
        city = "Paris" if "Paris" in last.content else "Oslo"
        return call("get_weather", {"city": city})
    return FunctionModel(reply, name="good")

def changed():
    """The same model after a prompt change: it calls the wrong tool."""
    def reply(req):
        last = req.messages[-1]
        if last.role == "tool":
            return "It is noon."
        return call("get_time", {"city": "Paris"})
    return FunctionModel(reply, name="changed")
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "golden_tools.py").write_text(TOOLS_SRC)
    (tmp_path / "golden_models.py").write_text(SCRIPTED_SRC)
    (tmp_path / "weather.yaml").write_text(GOLDEN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    import sys

    for m in ("golden_tools", "golden_models"):
        sys.modules.pop(m, None)


# --- the file format -----------------------------------------------------------------------


def test_unknown_keys_and_ambiguous_checks_are_refused() -> None:
    with pytest.raises(ValidationError, match="answer_contain"):
        Expect.model_validate({"answer_contain": ["x"]})  # typo of answer_contains
    with pytest.raises(ValidationError, match="exactly one"):
        Expect.model_validate({"args": [{"tool": "t", "arg": "a", "equals": 1, "pattern": "1"}]})
    with pytest.raises(ValidationError, match="exactly one"):
        Expect.model_validate({"args": [{"tool": "t", "arg": "a"}]})
    case = {"id": "a", "query": "q"}
    with pytest.raises(ValidationError, match="duplicate case id"):
        GoldenFile.model_validate({"cases": [case, case]})
    with pytest.raises(ValidationError, match="either calls or an answer"):
        GoldenFile.model_validate(
            {"cases": [case | {"reference": [{"answer": "x", "calls": [{"name": "t"}]}]}]}
        )


def test_equals_null_is_a_real_check() -> None:
    """`equals: null` must test for None, not be mistaken for "no check given"."""
    e = Expect.model_validate({"args": [{"tool": "t", "arg": "a", "equals": None}]})
    assert check(e, Observation(calls=[ObservedCall("t", {"a": None})])) == []
    assert check(e, Observation(calls=[ObservedCall("t", {"a": 0})]))


# --- each assertion can fail ----------------------------------------------------------------


def _obs(*calls: tuple[str, dict | None], answer: str = "", **kw: object) -> Observation:
    return Observation(calls=[ObservedCall(n, a) for n, a in calls], answer=answer, **kw)


@pytest.mark.parametrize(
    ("expect", "good", "bad"),
    [
        ({"tools": {"set": ["a", "b"]}}, _obs(("b", {}), ("a", {}), ("a", {})), _obs(("a", {}))),
        ({"tools": {"order": ["a", "b"]}}, _obs(("a", {}), ("b", {})), _obs(("b", {}), ("a", {}))),
        ({"tools": {"subset": ["a"]}}, _obs(("a", {}), ("c", {})), _obs(("c", {}))),
        ({"not_called": ["x"]}, _obs(("a", {})), _obs(("a", {}), ("x", {}))),
        ({"max_calls": 1}, _obs(("a", {})), _obs(("a", {}), ("a", {}))),
        ({"max_turns": 2}, _obs(turns=2), _obs(turns=3)),
        ({"max_failed_calls": 0}, _obs(failed_calls=0), _obs(failed_calls=1)),
        ({"answer_contains": ["Lisbon"]}, _obs(answer="in lisbon"), _obs(answer="in Porto")),
        (
            {"answer_contains_any": [["yes", "indeed"]]},
            _obs(answer="Indeed."),
            _obs(answer="No."),
        ),
        ({"answer_not_contains": ["secret"]}, _obs(answer="ok"), _obs(answer="the SECRET")),
        ({"status": "completed"}, _obs(status="completed"), _obs(status="paused")),
        ({"max_cost_usd": 0.01}, _obs(cost_usd=0.01), _obs(cost_usd=0.02)),
        ({"max_latency_s": 2}, _obs(latency_s=1.5), _obs(latency_s=2.5)),
        (
            {"args": [{"tool": "t", "arg": "q.city", "equals": "Rome"}]},
            _obs(("t", {"q": {"city": "Paris"}}), ("t", {"q": {"city": "Rome"}})),
            _obs(("t", {"q": {"city": "rome"}})),
        ),
        (
            {"args": [{"tool": "t", "arg": "n", "equals": 3}]},
            _obs(("t", {"n": 3.0})),
            _obs(("t", {"n": True})),
        ),
        (
            {"args": [{"tool": "t", "arg": "flag", "equals": True}]},
            _obs(("t", {"flag": True})),
            _obs(("t", {"flag": 1})),
        ),
        (
            {"args": [{"tool": "t", "arg": "n", "range": {"min": 1, "max": 5}}]},
            _obs(("t", {"n": 5})),
            _obs(("t", {"n": 6})),
        ),
        (
            {"args": [{"tool": "t", "arg": "n", "range": {"min": 1}}]},
            _obs(("t", {"n": 1})),
            _obs(("t", {"n": "7"})),
        ),
        (
            {"args": [{"tool": "t", "arg": "u", "any_of": ["c", "f"]}]},
            _obs(("t", {"u": "f"})),
            _obs(("t", {"u": "k"})),
        ),
        (
            {"args": [{"tool": "t", "arg": "s", "pattern": "^P-\\d{3}$"}]},
            _obs(("t", {"s": "P-101"})),
            _obs(("t", {"s": "P-1011"})),
        ),
        (
            {"args": [{"tool": "t", "arg": "s", "absent": True}]},
            _obs(("t", {})),
            _obs(("t", {"s": None})),
        ),
        (
            {"args": [{"tool": "t", "arg": "s", "equals": "x", "if_absent": "x"}]},
            _obs(("t", {})),
            _obs(("t", {"s": "y"})),
        ),
        (
            {"args": [{"tool": "t", "arg": "s", "equals": "x"}]},
            _obs(("t", {"s": "x"})),
            _obs(("t", None), ("u", {"s": "x"})),  # unparsable arguments / another tool
        ),
        (
            {"output": [{"path": "items.0.id", "equals": "P-1"}]},
            _obs(output='{"items": [{"id": "P-1"}]}'),
            _obs(output={"items": []}),
        ),
    ],
)
def test_each_assertion_passes_and_fails(expect: dict, good: Observation, bad: Observation) -> None:
    e = Expect.model_validate(expect)
    assert check(e, good) == []
    assert check(e, bad), f"{expect} should have failed on {bad}"


def test_typed_output_fields_are_read_from_models() -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        city: str
        temperature: float

    e = Expect.model_validate({"output": [{"path": "temperature", "range": {"max": 30}}]})
    assert check(e, _obs(output=Answer(city="Rome", temperature=25))) == []
    assert check(e, _obs(output=Answer(city="Rome", temperature=35)))


# --- running ------------------------------------------------------------------------------


def test_reference_runs_pass_with_real_tools(project: Path) -> None:
    import golden_tools

    golden = load_golden(project / "weather.yaml")
    report = _run(GoldenRunner(golden, ReferenceModel), ["paris"])
    assert report.pass_rate == 1.0
    assert golden_tools.LOG == ["Paris"]  # the real tool ran
    (run,) = report.cases[0].runs
    (only,) = run.calls
    assert (only["name"], only["args"], only["ok"]) == ("get_weather", {"city": "Paris"}, True)
    assert '"temperature":21' in only["result"].replace(" ", "")
    assert run.results == [only["result"]]


def test_stubbed_runs_never_reach_the_real_tool(project: Path) -> None:
    import golden_tools

    golden = load_golden(project / "weather.yaml")
    report = _run(GoldenRunner(golden, ReferenceModel, stub=True), None)
    oslo = {c.id: c for c in report.cases}["oslo"]
    assert oslo.pass_rate == 1.0
    assert '"temperature":-3' in oslo.runs[0].results[0].replace(" ", "")  # the recording
    paris = {c.id: c for c in report.cases}["paris"]
    # no recording for Paris: the call fails instead of reaching the real tool
    assert paris.runs[0].failed_calls == 1
    assert "no recorded result" in paris.runs[0].results[0]
    assert golden_tools.LOG == []


def test_stubbed_calls_are_still_validated(project: Path) -> None:
    golden = load_golden(project / "weather.yaml")
    model = ScriptedModel([call("get_weather", {"town": "Oslo"}), "done"])
    runner = GoldenRunner(golden, lambda _c: model, stub=True)
    report = _run(runner, ["oslo"])
    (run,) = report.cases[0].runs
    assert run.failed_calls == 1
    assert "town" in run.results[0]


def test_repetitions_give_a_pass_rate(project: Path) -> None:
    """A model right every other time passes a case half of the time."""
    golden = load_golden(project / "weather.yaml")
    runs = iter(range(100))

    def factory(_case: object) -> FunctionModel:
        good = next(runs) % 2 == 0
        city = "Oslo" if good else "Bergen"

        def reply(req):  # type: ignore[no-untyped-def]
            if req.messages[-1].role == "tool":
                return req.messages[-1].tool_result.content
            return call("get_weather", {"city": city})

        return FunctionModel(reply)

    seen: list[tuple[int, int]] = []
    report = _run(
        GoldenRunner(golden, factory, repetitions=4), ["oslo"], lambda d, t, _i: seen.append((d, t))
    )
    assert report.cases[0].pass_rate == 0.5
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_crashing_model_fails_its_case_and_the_run_goes_on(project: Path) -> None:
    golden = load_golden(project / "weather.yaml")

    def factory(case: object) -> object:
        if getattr(case, "id", "") == "paris":
            return FunctionModel(lambda req: 1 / 0)
        return ReferenceModel(case)  # type: ignore[arg-type]

    report = _run(GoldenRunner(golden, factory), None)
    rates = {c.id: c.pass_rate for c in report.cases}
    assert rates == {"paris": 0.0, "oslo": 1.0}
    assert "ZeroDivisionError" in report.cases[0].runs[0].error


def test_reports_json_junit_and_comparison(project: Path) -> None:
    golden = load_golden(project / "weather.yaml")
    good = _run(GoldenRunner(golden, ReferenceModel), None)
    good.write_json(project / "base.json")
    base = json.loads((project / "base.json").read_text())
    assert base["pass_rate"] == 1.0 and [c["id"] for c in base["cases"]] == ["paris", "oslo"]
    bad = _run(GoldenRunner(golden, lambda _c: ScriptedModel(["no idea"])), None)
    bad.write_junit(project / "junit.xml")
    suite = ET.parse(project / "junit.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "2"
    failure = suite.find("testcase[@name='paris']/failure")
    assert failure is not None and "get_weather" in (failure.text or "")
    problems = compare(bad, base)
    assert any(p.startswith("paris:") for p in problems)
    assert any("overall" in p for p in problems)
    assert compare(good, base) == []
    assert "pass rate 0.0%" in bad.summary()


def test_cli_exits_non_zero_when_a_changed_model_regresses(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["eval", "golden", "weather.yaml", "--quiet"]
    assert cli_main([*base, "--model", "golden_models:good", "--json", "base.json"]) == 0
    assert json.loads(Path("base.json").read_text())["pass_rate"] == 1.0
    # the same model again: no regression
    assert cli_main([*base, "--model", "golden_models:good", "--baseline", "base.json"]) == 0
    # the model changed behaviour: the comparison must fail the command
    code = cli_main([*base, "--model", "golden_models:changed", "--baseline", "base.json"])
    assert code == 1
    err = capsys.readouterr().err
    assert "REGRESSION paris" in err and "REGRESSION oslo" in err
    # a floor instead of a baseline
    assert cli_main([*base, "--model", "golden_models:changed", "--min-pass-rate", "0.5"]) == 1


def test_pytest_helper(project: Path) -> None:
    params = golden_params(project / "weather.yaml")
    assert [p.id for p in params] == ["paris", "oslo"]
    case = params[0].values[0]
    assert assert_case_passes(project / "weather.yaml", case) == 1.0
    with pytest.raises(AssertionError, match=r"(?s)golden case 'paris': pass rate 0%.*get_time"):
        assert_case_passes(
            project / "weather.yaml",
            case,
            model=lambda _c: ScriptedModel([call("get_time", {"city": "Paris"}), "noon"]),
        )


def _run(runner: GoldenRunner, ids: list[str] | None, progress=None):  # type: ignore[no-untyped-def]
    import asyncio

    return asyncio.run(runner.run(ids, progress=progress))


def test_golden_file_docs_example_is_valid() -> None:
    """The example in the dataset module's docstring is itself a valid file."""
    import yaml

    from callgate.eval import dataset

    text = dataset.__doc__.split("Example", 1)[1].split("::", 1)[1]
    data = yaml.safe_load(textwrap.dedent(text.split('"""')[0]))
    assert GoldenFile.model_validate(data).cases[0].id == "lisbon-under-400k"


def test_policy_and_identity_of_a_case_reach_the_gate(project: Path) -> None:
    """`policy:` is loaded and `context:` becomes the run's identity: the same call is allowed
    for a staff member and denied for a guest."""
    (project / "policy.yaml").write_text(
        "rules:\n"
        "  - {name: staff, roles: [staff], effect: allow}\n"
        "  - {name: guests-weather, roles: [guest], tools: get_weather, effect: allow}\n"
    )
    text = (project / "weather.yaml").read_text().replace("paths:", "policy: policy.yaml\npaths:")
    text = text.replace(
        "  - id: oslo\n", "  - id: oslo\n    context: {user: g, roles: [guest], tenant: t1}\n"
    )
    text = text.replace("  - id: paris\n", "  - id: paris\n    context: {roles: [staff]}\n")
    (project / "weather.yaml").write_text(text)
    golden = load_golden(project / "weather.yaml")
    seen: list[object] = []

    def factory(case: object) -> FunctionModel:
        def reply(req):  # type: ignore[no-untyped-def]
            if req.messages[-1].role == "tool":
                return "ok"
            seen.append(sorted(t.name for t in req.tools))
            return call("get_time", {"city": "Oslo"})

        return FunctionModel(reply)

    report = _run(GoldenRunner(golden, factory), None)
    paris, oslo = report.cases
    assert paris.runs[0].failed_calls == 0  # staff may ask for the time
    assert oslo.runs[0].failed_calls == 1  # a guest may not
    assert seen == [["get_time", "get_weather"], ["get_weather"]]  # nor even see the tool


def test_without_auto_approval_a_destructive_call_pauses_the_run(tmp_path: Path) -> None:
    (tmp_path / "golden_danger.py").write_text(
        "from callgate import tool\n\n@tool(destructive=True)\ndef wipe(disk: str) -> str:\n"
        '    """Wipe a disk.\n\n    Args:\n        disk: Which one.\n    """\n'
        "    raise AssertionError('must not run unapproved')\n\nTOOLS = [wipe]\n"
    )
    (tmp_path / "danger.yaml").write_text(
        "toolset: golden_danger:TOOLS\npaths: ['.']\nauto_approve: false\ncases:\n"
        "  - id: wipe\n    query: wipe sda\n    expect: {status: paused}\n"
        "    reference:\n      - calls: [{name: wipe, args: {disk: sda}}]\n      - answer: done\n"
    )
    golden = load_golden(tmp_path / "danger.yaml")
    report = _run(GoldenRunner(golden, ReferenceModel), None)
    assert report.cases[0].runs[0].status == "paused"
    assert report.pass_rate == 1.0


def test_recorded_results_replay_without_the_real_tools(project: Path) -> None:
    """A real run recorded with --record-stubs passes again with --stub, and the second run
    never calls the real tool."""
    import golden_tools

    base = ["eval", "golden", "weather.yaml", "--quiet", "--model", "golden_models:good"]
    assert cli_main([*base, "--record-stubs", "recorded.yaml"]) == 0
    assert golden_tools.LOG == ["Paris", "Oslo"]
    recorded = load_golden(project / "recorded.yaml")
    paris = {c.id: c for c in recorded.cases}["paris"]
    assert paris.stubs["get_weather"][0].match == {"city": "Paris"}
    golden_tools.LOG.clear()
    again = ["eval", "golden", "recorded.yaml", "--quiet", "--model", "golden_models:good"]
    assert cli_main([*again, "--stub", "--json", "stubbed.json"]) == 0
    assert golden_tools.LOG == []
    assert json.loads((project / "stubbed.json").read_text())["pass_rate"] == 1.0


def test_a_price_turns_tokens_into_a_cost_ceiling(project: Path) -> None:
    """With the model's price in the file, `max_cost_usd` judges what the run cost."""
    text = (project / "weather.yaml").read_text()
    text = text.replace("paths:", "price: {input: 1000, output: 1000}\npaths:")
    text = text.replace(
        "      not_called: [get_time]\n", "      not_called: [get_time]\n      max_cost_usd: 0.01\n"
    )
    (project / "weather.yaml").write_text(text)
    report = _run(GoldenRunner(load_golden(project / "weather.yaml"), ReferenceModel), ["paris"])
    (run,) = report.cases[0].runs
    assert run.cost_usd == 0.0  # the reference model reports no tokens: free, and passing
    assert run.passed
    wordy = lambda _c: ScriptedModel([call("get_weather", {"city": "Paris"}), "21 " * 200])  # noqa: E731
    report = _run(GoldenRunner(load_golden(project / "weather.yaml"), wordy), ["paris"])
    (run,) = report.cases[0].runs
    assert run.cost_usd > 0.01
    assert any("cost $" in f for f in run.failures)
