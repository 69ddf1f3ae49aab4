"""``callgate serve`` (the HTTP gateway and console) and ``callgate keys add``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from callgate.agent import Agent
from callgate.gate.core import Gate
from callgate.mcp.loading import Governance, load_gate, load_object
from callgate.server.auth import ApiKeys, Authenticator, JwtVerifier, SessionSigner


def build_auth(args: argparse.Namespace) -> Authenticator:
    keys = ApiKeys.load(args.keys) if args.keys else ApiKeys()
    jwt = JwtVerifier(args.jwks, issuer=args.issuer, audience=args.audience) if args.jwks else None
    secret = os.environ.get("CALLGATE_SESSION_SECRET")
    if not args.keys and jwt is None:
        raise SystemExit("callgate serve: give --keys and/or --jwks; nothing is served openly")
    return Authenticator(keys=keys, jwt=jwt, sessions=SessionSigner(secret))


def build_agent(args: argparse.Namespace, gate: Gate) -> Agent | None:
    """An agent for /v1/conversations when --model names one (a Model or a factory)."""
    if not args.model:
        return None
    from callgate.runs import open_run_store

    model = load_object(args.model)
    store = open_run_store(args.runs) if args.runs else None
    return Agent(model, gate, run_store=store)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from callgate.server.app import create_app

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    gov = Governance(policy=args.policy, approvals=args.approvals, audit=args.audit)
    gate = load_gate(args.target, gov)
    app = create_app(
        gate,
        build_auth(args),
        max_body_bytes=args.max_body,
        mcp=not args.no_mcp,
        secure_cookies=args.secure_cookies,
        agent=build_agent(args, gate),
    )
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level="warning",
            timeout_graceful_shutdown=args.grace,
        )
    finally:
        close_stores(gate)
    return 0


def close_stores(gate: Gate) -> None:
    """After the server stopped (no request in flight): close the approval and audit stores."""
    for owner in (gate.approver, *gate.observers):
        close = getattr(getattr(owner, "store", None), "close", None)
        if close is None:
            continue
        try:
            close()
        except Exception:  # shutting down: log it and go on closing the rest
            logging.getLogger("callgate.server").exception("closing a store failed")


def cmd_keys_add(args: argparse.Namespace) -> int:
    key, entry = ApiKeys.new_key(args.user, args.role or [], args.tenant)
    ApiKeys.append(args.file, entry)
    print(key)  # shown once: only its hash is stored
    return 0


def add_cli(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="the HTTP gateway and web console")
    p.add_argument("target", help="MODULE:ATTRIBUTE naming a Gate, Toolset or tool list")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--keys", help="API key file (see `callgate keys add`)")
    p.add_argument("--jwks", help="JWKS file whose keys sign accepted bearer JWTs")
    p.add_argument("--issuer", help="required JWT issuer")
    p.add_argument("--audience", help="required JWT audience")
    p.add_argument("--policy", help="policy file for a toolset")
    p.add_argument("--approvals", help="approval store: SQLite path or postgresql:// DSN")
    p.add_argument("--audit", help="audit store: SQLite path or postgresql:// DSN")
    p.add_argument(
        "--model", help="MODULE:ATTRIBUTE of a Model (or factory): enables /v1/conversations"
    )
    p.add_argument("--runs", help="paused-run store (SQLite path or postgresql:// DSN)")
    p.add_argument("--max-body", type=int, default=1_000_000, help="request size limit (bytes)")
    p.add_argument("--grace", type=int, default=20, help="seconds to finish requests on stop")
    p.add_argument("--no-mcp", action="store_true", help="do not serve MCP at /mcp")
    p.add_argument("--secure-cookies", action="store_true", help="console cookie over HTTPS only")
    p.set_defaults(func=cmd_serve)

    k = subparsers.add_parser("keys", help="manage the gateway's API keys")
    ks = k.add_subparsers(dest="keys_command", required=True)
    add = ks.add_parser("add", help="create a key; it is printed once and stored hashed")
    add.add_argument("--file", required=True)
    add.add_argument("--user", required=True)
    add.add_argument("--role", action="append")
    add.add_argument("--tenant")
    add.set_defaults(func=cmd_keys_add)
