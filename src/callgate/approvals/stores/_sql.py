"""The approvals table, derived once from `ApprovalRequest` for SQLite and PostgreSQL, so a new
field can never be stored by one backend and forgotten by the other."""

from __future__ import annotations

import dataclasses
from typing import Final

from callgate.approvals.model import ApprovalRequest

# a field's annotation -> (SQLite type, PostgreSQL type, NOT NULL?)
_TYPES: Final = {
    "str": ("TEXT", "TEXT", True),
    "Status": ("TEXT", "TEXT", True),
    "str | None": ("TEXT", "TEXT", False),
    "float": ("REAL", "DOUBLE PRECISION", True),
    "float | None": ("REAL", "DOUBLE PRECISION", False),
    "Any": ("TEXT", "JSONB", True),  # the masked arguments, as JSON
}


def schema(table: str, *, postgres: bool) -> list[str]:
    """CREATE TABLE (one column per `ApprovalRequest` field, `id` the key, one request per
    run, call and argument hash) and the index the listing by status uses."""
    cols = []
    for f in dataclasses.fields(ApprovalRequest):
        lite, pg, required = _TYPES[str(f.type)]
        rule = " PRIMARY KEY" if f.name == "id" else " NOT NULL" if required else ""
        cols.append(f"{f.name} {pg if postgres else lite}{rule}")
    cols.append("UNIQUE (run_id, call_id, args_hash)")
    # PostgreSQL: quoted, as every other statement of the store quotes the (validated) name
    name, index = (f'"{table}"', f'"{table}_status"') if postgres else (table, f"{table}_status")
    return [
        f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(cols)})",
        f"CREATE INDEX IF NOT EXISTS {index} ON {name} (status, created_at)",
    ]
