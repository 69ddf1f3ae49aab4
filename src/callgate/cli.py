"""The `callgate` command line.

Each feature module contributes its own sub-commands through an `add_cli(subparsers)` function
listed in `_COMMAND_MODULES`, so this file stays a thin dispatcher.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

_COMMAND_MODULES = (
    "callgate.tools.lint",
    "callgate.approvals.cli",
    "callgate.audit.cli",
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
    result = func(args)
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
