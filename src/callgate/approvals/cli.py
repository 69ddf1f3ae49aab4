"""``callgate approvals list|show|approve|deny|recover``: the approvals command line.

`add_cli` is listed in `callgate.cli`; the sub-commands open the store named by ``--db`` (or
``$CALLGATE_APPROVALS_DB``) and go through `callgate.approvals.service.Approvals`, so a person
deciding from a terminal follows exactly the rules a running application does. Every command
needs an existing store: a mistyped ``--db`` is an error, never a new empty database. Kept apart
from the service so the library carries no argument parsing or printing.
"""

from __future__ import annotations

import argparse
import builtins
import getpass
import json
import os
import sys
from collections.abc import Callable
from typing import Any, Final, TextIO

from callgate._storage import StoreNotFoundError
from callgate._tables import clip, print_table
from callgate.approvals.model import STATUSES, ApprovalError, ApprovalRequest, format_time
from callgate.approvals.service import Approvals
from callgate.approvals.stores import open_approval_store

_DB_ENV: Final = "CALLGATE_APPROVALS_DB"


def add_cli(subparsers: Any) -> None:
    """``callgate approvals list|show|approve|deny|recover``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        default=os.environ.get(_DB_ENV),
        help=f"SQLite file or postgresql:// DSN (default: ${_DB_ENV})",
    )
    p = subparsers.add_parser("approvals", help="list and decide approval requests")
    sub = p.add_subparsers(dest="approvals_command", required=True)

    ls = sub.add_parser("list", parents=[common], help="list requests (newest first)")
    ls.add_argument("--status", choices=STATUSES, help="only this status")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=_cli_list)

    show = sub.add_parser("show", parents=[common], help="everything about one request")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_cli_show)

    for name, helptext in (("approve", "approve a pending request"), ("deny", "deny one")):
        d = sub.add_parser(name, parents=[common], help=helptext)
        d.add_argument("id")
        d.add_argument(
            "--by", default=_default_user(), help="who decides (default: the login name)"
        )
        d.add_argument("--comment", help="shown to the model and kept with the request")
        d.set_defaults(func=_cli_decide, verdict=name)

    rec = sub.add_parser(
        "recover", parents=[common], help="report calls whose process died as interrupted"
    )
    rec.add_argument("--all", action="store_true", help="every executing call (no worker alive)")
    rec.set_defaults(func=_cli_recover)


def _default_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry
        return None


def _with_approvals(args: argparse.Namespace, fn: Callable[[Approvals], int]) -> int:
    if not args.db:
        print(f"error: give --db PATH_OR_DSN (or set ${_DB_ENV})", file=sys.stderr)
        return 2
    try:
        store = open_approval_store(args.db, must_exist=True)
    except StoreNotFoundError as exc:
        print(f"error: {exc}; check --db (nothing was created)", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a CLI reports, it does not trace back
        print(f"error: cannot open approval store {args.db!r}: {exc}", file=sys.stderr)
        return 1
    try:
        return fn(Approvals(store))
    except ApprovalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _cli_list(args: argparse.Namespace) -> int:
    def run(ap: Approvals) -> int:
        rows = ap.list(args.status, limit=args.limit)
        if args.json:
            for r in rows:
                print(json.dumps(r.to_dict(), ensure_ascii=False, sort_keys=True))
            return 0
        _print_requests(rows, sys.stdout)
        return 0

    return _with_approvals(args, run)


def _print_requests(rows: builtins.list[ApprovalRequest], out: TextIO) -> None:
    header = ("ID", "STATUS", "TOOL", "REQUESTED BY", "CREATED", "EXPIRES", "RULE", "OUTCOME")
    table = [
        (
            r.id,
            r.status,
            r.tool,
            r.requested_by or "-",
            format_time(r.created_at),
            format_time(r.expires_at),
            r.rule,
            clip(r.result_summary or r.comment or "-", 40),
        )
        for r in rows
    ]
    print_table(header, table, out, empty="no approval requests")


def _cli_show(args: argparse.Namespace) -> int:
    def run(ap: Approvals) -> int:
        r = ap.get(args.id)
        if args.json:
            print(json.dumps(r.to_dict(), ensure_ascii=False, sort_keys=True, indent=2))
            return 0
        lines = [
            f"id:           {r.id}",
            f"status:       {r.status}",
            f"tool:         {r.tool}" + (f" (version {r.version})" if r.version else ""),
            f"rule:         {r.rule}",
            f"reason:       {r.reason or '-'}",
            f"requested by: {r.requested_by or '-'}"
            + (f" (tenant {r.tenant})" if r.tenant else ""),
            f"run / call:   {r.run_id} / {r.call_id}",
            f"conversation: {r.conversation_id}",
            f"created:      {format_time(r.created_at)}",
            f"expires:      {format_time(r.expires_at)}",
        ]
        if r.decided_by or r.decided_at:
            lines.append(f"decided:      {r.decided_by or '-'} at {format_time(r.decided_at)}")
        if r.comment:
            lines.append(f"comment:      {r.comment}")
        if r.result_summary:
            lines.append(f"result:       {r.result_summary}")
        lines.append("arguments (sensitive values masked):")
        args_text = json.dumps(r.arguments, indent=2, ensure_ascii=False, sort_keys=True)
        lines.extend("  " + line for line in args_text.splitlines())
        print("\n".join(lines))
        return 0

    return _with_approvals(args, run)


def _cli_decide(args: argparse.Namespace) -> int:
    def run(ap: Approvals) -> int:
        if args.verdict == "approve":
            r = ap.approve(args.id, by=args.by, comment=args.comment)
        else:
            r = ap.deny(args.id, by=args.by, comment=args.comment)
        print(f"{r.id}: {r.status} (tool {r.tool}, by {r.decided_by or '-'})")
        return 0

    return _with_approvals(args, run)


def _cli_recover(args: argparse.Namespace) -> int:
    def run(ap: Approvals) -> int:
        moved = ap.recover(all_owners=args.all)
        for r in moved:
            print(f"{r.id}: interrupted (tool {r.tool}, claimed by {r.claimed_by})")
        print(f"{len(moved)} call(s) reported interrupted")
        return 0

    return _with_approvals(args, run)
