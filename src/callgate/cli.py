"""The `callgate` command line.

Each feature module contributes its own sub-commands through an `add_cli(subparsers)` function
listed in `_COMMAND_MODULES`, so this file stays a thin dispatcher. Every listed module is
imported when the parser is built: a module that fails to import is an error with its traceback,
never a sub-command that silently disappears.

Like ``python -m``, the command line puts the current directory first on `sys.path`, so
``callgate lint myapp.tools`` and ``callgate audit replay --tools myapp.tools:gate`` find the
project the user stands in without ``PYTHONPATH=.``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, Sequence

_COMMAND_MODULES = (
    "callgate.tools.lint",
    "callgate.approvals.cli",
    "callgate.audit.cli",
    "callgate.audit.stats_cli",
    "callgate.mcp.cli",
    "callgate.server.cli",
    "callgate.eval.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callgate", description="callgate command line")
    sub = parser.add_subparsers(dest="command", required=True)
    for mod_name in _COMMAND_MODULES:
        # a sub-command whose module fails to import is a broken install: say so, loudly
        importlib.import_module(mod_name).add_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:  # pragma: no cover - argparse enforces a sub-command
        parser.print_help()
        return 2
    with _cwd_importable():
        result = func(args)
    return int(result or 0)


@contextlib.contextmanager
def _cwd_importable() -> Iterator[None]:
    """The current directory first on `sys.path` while a command runs (as ``python -m`` does),
    removed again afterwards so an in-process caller's path is left as it was."""
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
