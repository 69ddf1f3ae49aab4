"""The shape of the package, so it cannot decay silently: no import cycle (counting imports
inside functions and under TYPE_CHECKING), no function longer than 60 lines, and the library
never importing its command line."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in (SRC / "callgate").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The callgate modules an import statement loads (a name imported from a package counts
    as its submodule when one of that name exists)."""
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names)
        return
    if node.level:
        base = module.split(".")
        if MODULES[module].name != "__init__.py":
            base.pop()
        base = base[: len(base) - node.level + 1]
        source = ".".join([*base, node.module] if node.module else base)
    else:
        source = node.module or ""
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        yield sub if sub in MODULES else source


def _owner(name: str) -> str | None:
    """The module of ours that `name` (maybe an attribute path) is defined in."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in MODULES else None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for name in _imported(module, node):
                    target = _owner(name)
                    if target is not None and target != module:
                        graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Kosaraju, iteratively)."""
    order: list[str] = []
    seen: set[str] = set()
    for start in graph:
        if start in seen:
            continue
        seen.add(start)
        stack = [(start, iter(sorted(graph[start])))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                order.append(node)
            elif child not in seen:
                seen.add(child)
                stack.append((child, iter(sorted(graph[child]))))
    reverse: dict[str, set[str]] = {m: set() for m in graph}
    for a, targets in graph.items():
        for b in targets:
            reverse[b].add(a)
    groups: list[list[str]] = []
    assigned: set[str] = set()
    for root in reversed(order):
        if root in assigned:
            continue
        group, todo = [], [root]
        assigned.add(root)
        while todo:
            node = todo.pop()
            group.append(node)
            for prev in reverse[node] - assigned:
                assigned.add(prev)
                todo.append(prev)
        if len(group) > 1:
            groups.append(sorted(group))
    return groups


def _is_reexport(group: list[str]) -> bool:
    """A package's __init__ importing its own submodules, which import nothing outside it."""
    top = min(group, key=len)
    return all(m == top or m.startswith(top + ".") for m in group)


def test_no_import_cycles() -> None:
    cycles = [g for g in _cycles(_graph()) if not _is_reexport(g)]
    assert cycles == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_the_library_never_imports_its_command_line() -> None:
    graph = _graph()
    cli = {m for m in MODULES if m == "callgate.cli" or m.endswith(".cli")}
    offenders = {m: sorted(graph[m] & cli) for m in graph if m not in cli and graph[m] & cli}
    assert offenders == {}


def test_no_function_is_longer_than_60_lines() -> None:
    long = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SRC)}:{node.name} ({lines})")
    assert long == []
