"""`callgate audit verify|head|show|stats|replay`: the audit log's command line.

`add_cli` is listed in `callgate.cli`; the sub-commands open the log named by ``--db`` (or
``$CALLGATE_AUDIT_DB``) and print plain text or JSON. Every command here only reads the log, so a
log that does not exist is an error (exit 2), never a new empty database that "verifies". The
checkpoint key is read from an environment variable (``$CALLGATE_AUDIT_KEY`` unless
``--key-env`` names another), never from the command line where other users could see it.
Kept apart from `callgate.audit.log` so the library carries no argument parsing or printing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from typing import Any

from callgate._lazy import import_object
from callgate._storage import StoreNotFoundError
from callgate._tables import clip, print_table
from callgate.audit.log import AuditLog
from callgate.audit.record import AuditEntry, Head
from callgate.audit.replay import replay
from callgate.audit.stats_cli import add_stats_arguments
from callgate.audit.verify import VerifyReport
from callgate.gate.core import Gate
from callgate.serde import canonical_json
from callgate.tools.definition import Tool

ENV_DB = "CALLGATE_AUDIT_DB"
ENV_KEY = "CALLGATE_AUDIT_KEY"


def add_cli(subparsers: Any) -> None:
    """`callgate audit verify|head|show|stats|replay`."""
    p = subparsers.add_parser("audit", help="inspect, verify and replay the audit log")
    sub = p.add_subparsers(dest="audit_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        default=os.environ.get(ENV_DB),
        help=f"SQLite path or postgresql:// DSN of an existing log (default: ${ENV_DB})",
    )
    v = sub.add_parser("verify", parents=[common], help="check the chain; exit 1 on tampering")
    v.add_argument("--anchor", help="a head kept elsewhere (SEQ:HASH) to detect a cut tail")
    v.add_argument(
        "--key-env",
        default=ENV_KEY,
        metavar="VAR",
        help=f"environment variable holding the checkpoint key (default: {ENV_KEY})",
    )
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=_cmd_verify)

    h = sub.add_parser("head", parents=[common], help="print the newest record's SEQ:HASH")
    h.set_defaults(func=_cmd_head)

    s = sub.add_parser("show", parents=[common], help="list records (a table, or JSON lines)")
    s.add_argument("--conversation")
    s.add_argument("--user")
    s.add_argument("--tool")
    s.add_argument("--decision", choices=["allow", "deny", "approve"])
    s.add_argument("--kind")
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.set_defaults(func=_cmd_show)

    st = sub.add_parser(
        "stats",
        parents=[common],
        help="calls, errors, latency, cost and feedback (= callgate stats)",
    )
    add_stats_arguments(st)
    _add_replay(sub, common)


def _add_replay(sub: Any, common: argparse.ArgumentParser) -> None:
    r = sub.add_parser(
        "replay",
        parents=[common],
        help="re-check a conversation's calls against today's gate",
        description="Re-run a recorded conversation's calls through today's gate. Tools that "
        "are not annotated read_only answer from the recorded result and do not run again.",
    )
    r.add_argument("conversation")
    r.add_argument(
        "--tools",
        required=True,
        help="module:attr naming a Gate, a Toolset, a list of tools, or a callable returning one",
    )
    r.add_argument(
        "--rerun",
        action="append",
        metavar="TOOL",
        help="run only these read-only tools again (repeatable; default: every read-only tool)",
    )
    r.add_argument(
        "--rerun-side-effects",
        action="store_true",
        help="run EVERY tool again, side effects included (prints a warning)",
    )
    r.add_argument(
        "--use-recorded-results",
        action="store_true",
        help="run no tool at all; re-check validation, policy and middleware only",
    )
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_cmd_replay)


def _open_for_cli(args: argparse.Namespace, key: bytes | None = None) -> AuditLog | None:
    if not args.db:
        print(f"error: give --db PATH_OR_DSN (or set ${ENV_DB})", file=sys.stderr)
        return None
    try:
        return AuditLog.open(args.db, checkpoint_key=key, must_exist=True)
    except StoreNotFoundError as e:
        print(f"error: {e}; check --db (nothing was created)", file=sys.stderr)
    except Exception as e:  # noqa: BLE001 - report any failure to open as a clear message
        print(f"error: cannot open audit log {args.db!r}: {e}", file=sys.stderr)
    return None


def _cmd_verify(args: argparse.Namespace) -> int:
    try:
        anchor = Head.parse(args.anchor) if args.anchor else None
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    key_text = os.environ.get(args.key_env)
    audit = _open_for_cli(args, key_text.encode() if key_text else None)
    if audit is None:
        return 2
    with contextlib.closing(audit):
        report = audit.verify(anchor)
    if args.json:
        print(json.dumps(_verify_json(report)))
    else:
        print(report.summary())
    return 0 if report.ok else 1


def _verify_json(report: VerifyReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "count": report.count,
        "head": str(report.head) if report.head else None,
        "checkpoints": report.checkpoints,
        "last_checkpoint": str(report.last_checkpoint) if report.last_checkpoint else None,
        "signed": report.signed,
        "problems": [{"kind": p.kind, "seq": p.seq, "message": p.message} for p in report.problems],
        "omitted": report.omitted,
        "notes": report.notes,
    }


def _cmd_head(args: argparse.Namespace) -> int:
    audit = _open_for_cli(args)
    if audit is None:
        return 2
    with contextlib.closing(audit):
        head = audit.head()
    print(str(head) if head else "empty")
    return 0


def outcome(e: AuditEntry) -> str:
    """What came of a record, success included: "ok" or the error kind for a call, the stop
    reason for a turn, the status for an approval event."""
    if e.kind == "call":
        return str(e.data.get("error_kind") or "ok")
    if e.kind == "turn":
        return str(e.data.get("stop_reason") or "-")
    return str(e.data.get("status") or "-")


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
    if args.json:
        for e in rows:
            print(json.dumps(e.to_dict(), ensure_ascii=False))
        return 0
    header = ("SEQ", "TIME", "KIND", "USER", "TOOL", "DECISION", "OUTCOME", "ARGUMENTS")
    table = [
        (
            str(e.seq),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.ts)),
            e.kind,
            e.user_id or "-",
            e.tool or "-",
            e.decision or "-",
            outcome(e),
            clip(canonical_json(e.data.get("arguments")), 60) if e.kind == "call" else "",
        )
        for e in rows
    ]
    print_table(header, table, sys.stdout, empty="no records")
    return 0


def _load_target(spec: str) -> Gate:
    obj = import_object(spec)
    if callable(obj) and not isinstance(obj, Gate) and not hasattr(obj, "spec"):
        obj = obj()
    if isinstance(obj, Gate):
        return obj
    if isinstance(obj, Tool):
        obj = [obj]
    return Gate(obj)


def _cmd_replay(args: argparse.Namespace) -> int:
    audit = _open_for_cli(args)
    if audit is None:
        return 2
    try:
        gate = _load_target(args.tools)
    except Exception as e:  # noqa: BLE001 - any import problem becomes a message
        print(f"error: cannot load --tools {args.tools!r}: {e}", file=sys.stderr)
        audit.close()
        return 2
    if args.rerun_side_effects:
        print(
            "WARNING: --rerun-side-effects runs every recorded call's tool again: anything they "
            "did (payments, messages, deletions) happens a second time.",
            file=sys.stderr,
        )
    with contextlib.closing(audit):
        try:
            report = asyncio.run(
                replay(
                    audit,
                    args.conversation,
                    gate,
                    rerun=args.rerun,
                    rerun_side_effects=args.rerun_side_effects,
                    use_recorded_results=args.use_recorded_results,
                )
            )
        except (LookupError, ValueError) as e:
            print(f"error: {e.args[0]}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps([c.to_dict() for c in report.calls], ensure_ascii=False))
    else:
        print(report.summary())
    return 0 if report.ok else 1
