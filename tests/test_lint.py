"""Tool lint: each check fires on the tool it is about and stays quiet on a well-made one; the
`callgate lint` command loads real modules and files and exits as documented."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from callgate.cli import main
from callgate.tools.definition import Tool, tool
from callgate.tools.lint import RULES, LintReport, lint_tools

GOOD_SOURCE = '''
from typing import Annotated, Literal

from pydantic import Field

from callgate.tools.definition import tool
from callgate.tools.toolset import Toolset


@tool(read_only=True)
def search_orders(
    customer_email: Annotated[str, Field(pattern=r"^[^@\\s]+@[^@\\s]+$")],
    status: Literal["open", "shipped", "cancelled"] = "open",
    limit: Annotated[int, Field(ge=1, le=50)] = 10,
) -> list[str]:
    """Find a customer's orders, newest first, and return their order numbers.

    Args:
        customer_email: the customer's login email address
        status: which orders to include
        limit: how many order numbers to return at most
    """
    return []


@tool(destructive=True)
def cancel_order(order_number: Annotated[str, Field(pattern=r"^ORD-[0-9]{6}$")]) -> str:
    """Cancel an open order and refund the customer. This cannot be undone.

    Args:
        order_number: the order to cancel, e.g. ORD-123456
    """
    return "cancelled"


TOOLS = [search_orders, cancel_order]
TOOLSET = Toolset(TOOLS)


class Bundle:
    tools = (search_orders, cancel_order)


BUNDLE = Bundle()
NOT_TOOLS = ["search_orders", 3]
NOTHING = []
'''

BAD_SOURCE = '''
from callgate.tools.definition import tool


@tool
def do(x: str) -> str:
    return x


@tool(read_only=True)
def search_orders(limit: int, status: str, verbose: bool) -> list[str]:
    """Search the order book for orders matching a status.

    Args:
        limit: how many
        status: order status
    """
    return []
'''

MEDIOCRE_SOURCE = '''
from callgate.tools.definition import tool


@tool(read_only=True)
def weather(city: str) -> str:
    """Current weather for a city, in degrees Celsius, with wind speed."""
    return "sunny"
'''


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> str:
    name = f"lintmod_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def _codes(report: LintReport, tool_name: str) -> dict[str, list[str | None]]:
    out: dict[str, list[str | None]] = {}
    for f in report.findings:
        if f.tool == tool_name:
            out.setdefault(f.code, []).append(f.parameter)
    return out


# --- the checks ------------------------------------------------------------------------------


def test_a_well_made_tool_has_no_findings_and_scores_100(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    mod = importlib.import_module(_module(tmp_path, monkeypatch, GOOD_SOURCE))
    report = lint_tools(mod.TOOLS)
    assert report.findings == []
    assert [t.score for t in report.tools] == [100, 100]
    assert report.passed(min_score=100)


def test_missing_description_vague_name_and_undescribed_parameter() -> None:
    @tool
    def do(x: str) -> str:
        return x

    report = lint_tools([do])
    codes = _codes(report, "do")
    assert set(codes) == {"CG101", "CG110", "CG120", "CG125", "CG152"}
    assert codes["CG120"] == ["x"]
    assert report.has_errors and not report.passed()
    expected = 100 - sum(RULES[c][1] for c in codes)
    assert report.score_of("do") == expected


@pytest.mark.parametrize(
    ("description", "code"),
    [
        ("Does stuff.", "CG103"),
        ("Handles things for the user when asked to.", "CG103"),
        ("Get invoice.", "CG104"),
        ("Gets invoices.", "CG104"),
        ("Fetch it now.", "CG102"),
    ],
)
def test_weak_descriptions(description: str, code: str) -> None:
    @tool(read_only=True, description=description)
    def get_invoice(invoice_number: Annotated[str, Field(pattern=r"^INV-\d+$")]) -> str:
        """unused"""
        return ""

    codes = _codes(lint_tools([get_invoice]), "get_invoice")
    assert code in codes
    assert "CG101" not in codes


@pytest.mark.parametrize(
    ("name", "code"),
    [("process", "CG110"), ("handle_data", "CG110"), ("tool1", "CG110"), ("weather", "CG111")],
)
def test_names_that_do_not_say_what_the_tool_does(name: str, code: str) -> None:
    t = tool(name=name, read_only=True)(_described)
    codes = _codes(lint_tools([t]), name)
    assert code in codes
    other = {"CG110", "CG111"} - {code}
    assert not (set(codes) & other)


def _described(city: str) -> str:
    """Current weather conditions for a city, in degrees Celsius.

    Args:
        city: the city name, e.g. Lyon
    """
    return ""


def test_parameter_hints_from_names() -> None:
    @tool(read_only=True)
    def list_orders(
        limit: int,
        page_size: int,
        status: str,
        sort_order: str,
        customer_id: str,
        created_date: str,
        verbose: bool,
        bounded: Annotated[int, Field(ge=1, le=10)] = 1,
        currency: Literal["EUR", "USD"] = "EUR",
        callback_url: Annotated[str, Field(json_schema_extra={"format": "uri"})] = "",
    ) -> list[str]:
        """List a customer's orders page by page, newest first.

        Args:
            limit: most orders to return
            page_size: orders per page
            status: which orders
            sort_order: how to sort
            customer_id: whose orders
            created_date: only orders created on this day
            bounded: a bounded number
            currency: prices in this currency
            callback_url: where to post the result
        """
        return []

    codes = _codes(lint_tools([list_orders]), "list_orders")
    assert sorted(codes["CG122"]) == ["limit", "page_size"]  # `bounded` has a range
    assert sorted(codes["CG123"]) == ["sort_order", "status"]  # `currency` is a Literal
    assert sorted(codes["CG124"]) == ["created_date", "customer_id"]  # callback_url has format
    assert codes["CG121"] == ["verbose"]
    assert "CG120" not in codes  # the boolean is reported once, as CG121


class Leaf(BaseModel):
    limit: int


class Level3(BaseModel):
    leaf: Leaf


class Level2(BaseModel):
    inner: Level3


class Level1(BaseModel):
    inner: Level2


def test_nested_parameters_are_checked_with_their_path_and_depth_is_measured() -> None:
    @tool(read_only=True)
    def store_tree(tree: Level1) -> str:
        """Store a configuration tree in the settings database.

        Args:
            tree: the configuration to store
        """
        return ""

    codes = _codes(lint_tools([store_tree]), "store_tree")
    assert codes["CG122"] == ["tree.inner.inner.leaf.limit"]
    assert "CG131" in codes

    @tool(read_only=True)
    def store_leaf(leaf: Leaf) -> str:
        """Store one leaf in the settings database.

        Args:
            leaf: the leaf to store
        """
        return ""

    assert "CG131" not in _codes(lint_tools([store_leaf]), "store_leaf")


def test_too_many_parameters() -> None:
    props = {f"field_{i}": {"type": "string", "description": f"field {i}"} for i in range(13)}
    t = Tool.from_schema(
        "update_profile",
        "Update the user's profile fields in the account database.",
        {"type": "object", "properties": props},
        lambda **kw: None,
    )
    codes = _codes(lint_tools([t]), "update_profile")
    assert "CG130" in codes
    props.pop("field_12")
    t12 = Tool.from_schema(
        "update_profile", "x" * 30, {"type": "object", "properties": props}, print
    )
    assert "CG130" not in _codes(lint_tools([t12]), "update_profile")


def test_overlapping_tools_are_reported_on_both_sides() -> None:
    def make(name: str, description: str) -> Tool:
        return Tool.from_schema(name, description, {"type": "object"}, print)

    tools = [
        make("get_user", "Look up one user account by its login name."),
        make("get_users", "List user accounts whose login name starts with a prefix."),
        make("find_customer", "Look up one customer account by its login name."),
        make("send_invoice", "Email an invoice PDF to the billing contact of a company."),
    ]
    report = lint_tools(tools)
    overlapping = {f.tool for f in report.findings if f.code == "CG140"}
    assert overlapping == {"get_user", "get_users", "find_customer"}
    msgs = [f.message for f in report.findings if f.code == "CG140" and f.tool == "get_user"]
    assert any("get_users" in m and "similar names" in m for m in msgs)
    assert any("find_customer" in m and "similar descriptions" in m for m in msgs)


def test_side_effect_declarations() -> None:
    @tool
    def delete_account(account_number: Annotated[str, Field(pattern=r"^A\d+$")]) -> str:
        """Close the account with this number and its data.

        Args:
            account_number: which account
        """
        return ""

    @tool(destructive=True)
    def clear_cache() -> str:
        """Makes the cache empty again for everybody who uses it."""
        return ""

    @tool(destructive=True, read_only=True)
    def reset_password() -> str:
        """Send a password reset link; the old password stops working."""
        return ""

    @tool
    def send_message(text: str) -> str:
        """Post a chat message to the team channel.

        Args:
            text: the message body
        """
        return ""

    report = lint_tools([delete_account, clear_cache, reset_password, send_message])
    assert "CG151" in _codes(report, "delete_account")
    assert "CG150" in _codes(report, "clear_cache")
    assert "CG153" in _codes(report, "reset_password")
    assert set(_codes(report, "send_message")) == {"CG152"}
    assert report.has_errors


def test_strict_mode_incompatibility_is_information_only() -> None:
    @tool(read_only=True)
    def get_rates(weights: dict[str, float]) -> str:
        """Compute shipping rates from parcel weights keyed by parcel label.

        Args:
            weights: parcel label -> weight in kg
        """
        return ""

    report = lint_tools([get_rates])
    [finding] = [f for f in report.findings if f.code == "CG160"]
    assert finding.severity == "info"
    assert "free-form object" in finding.message
    assert report.passed()


def test_report_serialises_and_renders() -> None:
    @tool
    def do(x: str) -> str:
        return x

    report = lint_tools([do])
    data = report.to_dict()
    assert data["summary"]["tools"] == 1
    assert data["summary"]["errors"] == 1
    assert data["tools"][0]["findings"][0].keys() == {
        "code",
        "severity",
        "tool",
        "parameter",
        "message",
        "hint",
    }
    text = report.render()
    assert "do  score" in text and "CG101" in text and "hint:" in text


# --- the command line ------------------------------------------------------------------------


def test_cli_good_module_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mod = _module(tmp_path, monkeypatch, GOOD_SOURCE)
    for attr in ("TOOLS", "TOOLSET", "BUNDLE", "search_orders"):
        assert main(["lint", f"{mod}:{attr}", "--min-score", "100"]) == 0, attr
    out = capsys.readouterr().out
    assert "search_orders  score 100/100" in out
    assert main(["lint", mod]) == 0  # no attribute: every module-level Tool
    assert "2 tools" in capsys.readouterr().out


def test_cli_bad_module_fails_with_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad_tools.py"
    path.write_text(textwrap.dedent(BAD_SOURCE), encoding="utf-8")
    assert main(["lint", f"{path}", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    by_tool = {t["tool"]: t for t in data["tools"]}
    assert set(by_tool) == {"do", "search_orders"}
    codes = {(f["code"], f["parameter"]) for f in by_tool["search_orders"]["findings"]}
    assert {("CG122", "limit"), ("CG123", "status"), ("CG121", "verbose")} <= codes
    assert any(f["code"] == "CG101" for f in by_tool["do"]["findings"])
    assert data["summary"]["errors"] >= 1


def test_cli_min_score_decides_for_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mod = _module(tmp_path, monkeypatch, MEDIOCRE_SOURCE)
    assert main(["lint", f"{mod}:weather"]) == 0  # default 0: only errors fail
    out = capsys.readouterr().out
    score = int(out.split("score ")[1].split("/")[0])
    assert 0 < score < 100
    assert main(["lint", f"{mod}:weather", "--min-score", str(score)]) == 0
    assert main(["lint", f"{mod}:weather", "--min-score", str(score + 1)]) == 1


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{mod}:NOT_TOOLS", "item 0 is a str, not a Tool"),
        ("{mod}:NOTHING", "holds no tools"),
        ("{mod}:missing", "has no attribute 'missing'"),
        ("lintmod_does_not_exist:TOOLS", "importing lintmod_does_not_exist failed"),
        ("{tmp}/nope.py:TOOLS", "no such file"),
    ],
)
def test_cli_reports_bad_targets_with_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    target: str,
    message: str,
) -> None:
    mod = _module(tmp_path, monkeypatch, GOOD_SOURCE)
    assert main(["lint", target.format(mod=mod, tmp=tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err


def test_cli_reports_a_module_that_fails_to_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.py"
    path.write_text("raise RuntimeError('boom at import')\n", encoding="utf-8")
    assert main(["lint", f"{path}:TOOLS"]) == 2
    assert "RuntimeError: boom at import" in capsys.readouterr().err


def test_a_malformed_schema_is_an_error_not_a_crash() -> None:
    from callgate.tools.definition import ToolSpec

    spec = ToolSpec(
        "get_weather",
        "Current weather for a city, in degrees Celsius.",
        {"type": "object", "properties": {"city": {"type": "text"}}},
    )
    report = lint_tools([spec])
    [finding] = [f for f in report.findings if f.code == "CG100"]
    assert "'type' must name JSON types" in finding.message
    assert report.has_errors


def test_cli_finds_a_package_in_the_current_directory_like_python_m(tmp_path: Path) -> None:
    """`callgate lint myapp.tools` from the project directory, without PYTHONPATH=. — run as the
    installed console script runs: a script in another directory, so the project is not on
    sys.path unless the command line puts it there."""
    project = tmp_path / "project"
    (project / "myapp_cg").mkdir(parents=True)
    (project / "myapp_cg" / "__init__.py").write_text("", encoding="utf-8")
    (project / "myapp_cg" / "tools.py").write_text(textwrap.dedent(GOOD_SOURCE), encoding="utf-8")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    entry = bindir / "callgate_entry.py"
    entry.write_text("import sys\nfrom callgate.cli import main\nsys.exit(main())\n")
    src = Path(__file__).resolve().parents[1] / "src"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(src)
    done = subprocess.run(
        [sys.executable, str(entry), "lint", "myapp_cg.tools:TOOLS"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "search_orders  score" in done.stdout
    # the directory is not left on sys.path of an in-process caller
    before = list(sys.path)
    old = os.getcwd()
    try:
        os.chdir(project)
        assert main(["lint", "myapp_cg.tools:TOOLS"]) == 0
    finally:
        os.chdir(old)
        sys.modules.pop("myapp_cg.tools", None)
        sys.modules.pop("myapp_cg", None)
    assert sys.path == before
