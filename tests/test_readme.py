"""The README's example must run and print exactly what the README says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_example_prints_what_the_readme_shows() -> None:
    code = _blocks("python")[0]
    assert len(code.strip().splitlines()) <= 26
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    expected = _blocks("text")[0]
    assert out.getvalue() == expected


def test_readme_names_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci


def test_readme_imports_only_the_public_api() -> None:
    """Every Python snippet in the README imports from `callgate` or `callgate.providers.<name>`
    only, and every name it imports exists there."""
    import ast
    import importlib

    allowed = re.compile(r"callgate(\.providers\.\w+)?$")
    seen = 0
    for code in _blocks("python"):
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("callgate"):
                assert allowed.match(node.module or ""), node.module
                module = importlib.import_module(node.module or "")
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{node.module}.{alias.name}"
                    seen += 1
    assert seen >= 10
