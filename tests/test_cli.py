"""The `callgate` dispatcher: every sub-command is there, and one whose module breaks is a loud
error, never a command that silently disappears."""

from __future__ import annotations

import sys
import types

import pytest

from callgate import cli


def test_every_listed_module_contributes_its_commands() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    names = set(sub.choices)  # type: ignore[arg-type]
    assert {"lint", "approvals", "audit"} <= names


def test_a_broken_command_module_is_an_error_not_a_missing_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = types.ModuleType("callgate_test_broken_cli")

    def add_cli(subparsers: object) -> None:
        raise RuntimeError("half-installed extra")

    broken.add_cli = add_cli  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "callgate_test_broken_cli", broken)
    monkeypatch.setattr(cli, "_COMMAND_MODULES", (*cli._COMMAND_MODULES, broken.__name__))
    with pytest.raises(RuntimeError, match="half-installed"):
        cli.main(["audit", "head", "--db", "x.db"])
    monkeypatch.setattr(cli, "_COMMAND_MODULES", ("callgate_test_no_such_module",))
    with pytest.raises(ModuleNotFoundError):
        cli.build_parser()
