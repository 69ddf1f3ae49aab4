"""The package is typed for its users: `RunContext[Deps]` carries the dependencies' type into a
tool's body (checked with mypy --strict on a user's module)."""

from __future__ import annotations

from pathlib import Path

from mypy import api

USER_MODULE = '''
from dataclasses import dataclass

from callgate import Agent, Gate, RunContext, tool


@dataclass
class Deps:
    bank: dict[str, int]


@tool
def balance(account: str, ctx: RunContext[Deps]) -> int:
    """Balance of an account."""
    return ctx.deps.bank[account]


def plain(x: int) -> int:
    return x


gate = Gate([balance, plain])
ctx: RunContext[Deps] = RunContext(deps=Deps({"a": 1}))


def wrong(ctx: RunContext[Deps]) -> str:
    return ctx.deps.bank
'''


def test_typed_dependencies_type_check(tmp_path: Path) -> None:
    mod = tmp_path / "user_tools.py"
    mod.write_text(USER_MODULE)
    out, err, status = api.run(["--strict", "--no-error-summary", str(mod)])
    lines = [line for line in out.splitlines() if ": error:" in line]
    # exactly one error, the deliberate one: the type of `deps` reached the function body
    assert len(lines) == 1, out + err
    assert 'got "dict[str, int]", expected "str"' in lines[0]
    assert status == 1
