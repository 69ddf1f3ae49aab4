"""`callgate audit verify|head|show|replay`: the audit log's command line.

`add_cli` is listed in `callgate.cli`; the sub-commands open a store named by ``--db`` (or
``$CALLGATE_AUDIT_DB``) and print plain text or JSON. Kept apart from `callgate.audit.log` so the
library part carries no argument parsing or printing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import sys
import time
from typing import Any

from callgate.audit.log import AuditLog, Head
from callgate.audit.replay import _short, replay
from callgate.serde import canonical_json

ENV_DB = "CALLGATE_AUDIT_DB"


def add_cli(subparsers: Any) -> None:
    """`callgate audit verify|head|show|replay`."""
    p = subparsers.add_parser("audit", help="inspect, verify and replay the audit log")
    sub = p.add_subparsers(dest="audit_command", required=True)

    def db_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--db",
            default=os.environ.get(ENV_DB),
            help=f"SQLite path or postgresql:// DSN (default: ${ENV_DB})",
        )

    v = sub.add_parser("verify", help="check the hash chain; exit 1 on tampering")
    db_arg(v)
    v.add_argument("--anchor", help="a head kept elsewhere (SEQ:HASH) to detect a cut tail")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=_cmd_verify)

    h = sub.add_parser("head", help="print the newest record's SEQ:HASH (to anchor elsewhere)")
    db_arg(h)
    h.set_defaults(func=_cmd_head)

    s = sub.add_parser("show", help="list records")
    db_arg(s)
    s.add_argument("--conversation")
    s.add_argument("--user")
    s.add_argument("--tool")
    s.add_argument("--decision", choices=["allow", "deny", "approve"])
    s.add_argument("--kind")
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.set_defaults(func=_cmd_show)

    r = sub.add_parser("replay", help="re-run a conversation's calls through today's gate")
    r.add_argument("conversation")
    db_arg(r)
    r.add_argument(
        "--tools",
        required=True,
        help="module:attr naming a Gate, a Toolset, a list of tools, or a callable returning one",
    )
    r.add_argument(
        "--use-recorded-results",
        action="store_true",
        help="do not run tools; re-check validation, policy and middleware only",
    )
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_cmd_replay)


def _open_for_cli(args: argparse.Namespace) -> AuditLog | None:
    if not args.db:
        print(f"error: give --db PATH_OR_DSN (or set ${ENV_DB})", file=sys.stderr)
        return None
    try:
        return AuditLog.open(args.db)
    except Exception as e:  # noqa: BLE001 - report any failure to open as a clear message
        print(f"error: cannot open audit log {args.db!r}: {e}", file=sys.stderr)
        return None


def _cmd_verify(args: argparse.Namespace) -> int:
    audit = _open_for_cli(args)
    if audit is None:
        return 2
    try:
        anchor = Head.parse(args.anchor) if args.anchor else None
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with contextlib.closing(audit):
        report = audit.verify(anchor)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "count": report.count,
                    "head": str(report.head) if report.head else None,
                    "problems": [
                        {"kind": p.kind, "seq": p.seq, "message": p.message}
                        for p in report.problems
                    ],
                }
            )
        )
    else:
        print(report.summary())
    return 0 if report.ok else 1


def _cmd_head(args: argparse.Namespace) -> int:
    audit = _open_for_cli(args)
    if audit is None:
        return 2
    with contextlib.closing(audit):
        head = audit.head()
    print(str(head) if head else "empty")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    audit = _open_for_cli(args)
    if audit is None:
        return 2
    with contextlib.closing(audit):
        rows = audit.entries(
            conversation_id=args.conversation,
            user_id=args.user,
            tool=args.tool,
            decision=args.decision,
            kind=args.kind,
            limit=args.limit,
            newest_first=True,
        )
    rows.reverse()
    for e in rows:
        if args.json:
            print(json.dumps(e.to_dict(), ensure_ascii=False))
            continue
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.ts))
        what = e.tool or e.kind
        detail = e.data.get("error_kind") or e.data.get("stop_reason") or ""
        args_txt = ""
        if e.kind == "call":
            args_txt = _short(canonical_json(e.data.get("arguments")), 60)
        print(
            f"{e.seq:>6} {when} {e.kind:<8} {e.user_id or '-':<12} {what:<20} "
            f"{e.decision or '-':<7} {detail:<12} {args_txt}"
        )
    return 0


def _load_target(spec: str) -> Any:
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise ValueError(f"--tools takes module:attr, got {spec!r}")
    obj: Any = importlib.import_module(mod_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    from callgate.gate.core import Gate

    if callable(obj) and not isinstance(obj, Gate) and not hasattr(obj, "spec"):
        obj = obj()
    if isinstance(obj, Gate):
        return obj
    from callgate.tools.definition import Tool

    if isinstance(obj, Tool):
        obj = [obj]
    return Gate(obj)


def _cmd_replay(args: argparse.Namespace) -> int:
    audit = _open_for_cli(args)
    if audit is None:
        return 2
    try:
        sys.path.insert(0, os.getcwd())
        gate = _load_target(args.tools)
    except Exception as e:  # noqa: BLE001 - any import problem becomes a message
        print(f"error: cannot load --tools {args.tools!r}: {e}", file=sys.stderr)
        return 2
    with contextlib.closing(audit):
        try:
            report = asyncio.run(
                replay(
                    audit, args.conversation, gate, use_recorded_results=args.use_recorded_results
                )
            )
        except LookupError as e:
            print(f"error: {e.args[0]}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps([c.to_dict() for c in report.calls], ensure_ascii=False))
    else:
        print(report.summary())
    return 0 if report.ok else 1
