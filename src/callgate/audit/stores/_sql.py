"""SQL shared by the SQLite and PostgreSQL audit stores: one column list, one query builder,
one row mapping, so the two backends cannot drift apart. Only the placeholder differs."""

from __future__ import annotations

import json
from typing import Any

from callgate.audit.log import AuditEntry, Query

COLUMNS = (
    "seq, ts, kind, conversation_id, run_id, user_id, tenant, tool, decision, data, prev_hash, hash"
)


def build_query(q: Query, table: str, ph: str) -> tuple[str, list[Any]]:
    """SELECT for `q` against `table`, with `ph` as the parameter placeholder ("?" or "%s")."""
    where = [f"seq > {ph}"]
    params: list[Any] = [q.after_seq]
    for col, val in (
        ("conversation_id", q.conversation_id),
        ("user_id", q.user_id),
        ("tool", q.tool),
        ("decision", q.decision),
        ("kind", q.kind),
    ):
        if val is not None:
            where.append(f"{col} = {ph}")
            params.append(val)
    sql = (
        f"SELECT {COLUMNS} FROM {table} WHERE {' AND '.join(where)} "
        f"ORDER BY seq {'DESC' if q.newest_first else 'ASC'}"
    )
    if q.limit is not None:
        sql += f" LIMIT {ph}"
        params.append(q.limit)
    return sql, params


def page_query(table: str, ph: str) -> str:
    """The next 1000 records after a seq, for walking the whole log."""
    return f"SELECT {COLUMNS} FROM {table} WHERE seq > {ph} ORDER BY seq LIMIT 1000"


def row_to_entry(r: Any) -> AuditEntry:
    try:
        data = json.loads(r[9])
    except (TypeError, ValueError):
        data = {"__undecodable__": str(r[9])}  # verify then reports the record as edited
    if not isinstance(data, dict):
        data = {"__undecodable__": data}
    return AuditEntry(
        int(r[0]), float(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], data, r[10], r[11]
    )
