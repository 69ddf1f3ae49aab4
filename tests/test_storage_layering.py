"""The storage packages keep their shape: a backend imports only its package's model (never the
factory or the service, which import it), and no library module imports a command-line module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "callgate"


def _imports(path: Path) -> set[str]:
    """Every module a file imports, lazily or under TYPE_CHECKING included."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize("package", ["approvals", "audit", "runs"])
def test_backends_import_only_their_model(package: str) -> None:
    model = {"approvals": "model", "audit": "record", "runs": "model"}[package]
    allowed = {
        f"callgate.{package}.{model}",
        f"callgate.{package}.stores._sql",
        "callgate._storage",
    }
    backends = [p for p in (SRC / package / "stores").glob("*.py") if p.name != "__init__.py"]
    assert backends
    for path in backends:
        ours = {m for m in _imports(path) if m.startswith("callgate.")}
        ours = {m for m in ours if not any(m == a or m.startswith(a + ".") for a in allowed)}
        assert not ours, f"{path.name} imports {sorted(ours)}"


def test_the_library_never_imports_a_command_line_module() -> None:
    for path in SRC.rglob("*.py"):
        if path.name == "cli.py":
            continue  # command-line modules may use each other
        bad = {m for m in _imports(path) if m == "callgate.cli" or m.endswith(".cli")}
        assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"
