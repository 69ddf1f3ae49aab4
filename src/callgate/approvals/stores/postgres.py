"""Approval requests in PostgreSQL (psycopg 3), for several workers on several machines.

Each state change is one ``UPDATE ... WHERE status = ANY(...) RETURNING``: PostgreSQL row locks
make it atomic, so exactly one worker claims an approved call. The table is created on first use
under an advisory lock, so workers starting together do not trip over each other.
"""

from __future__ import annotations

import builtins
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from callgate._storage import PgStore
from callgate.approvals.model import FIELD_NAMES, ApprovalRequest, StoreBase, Transition
from callgate.approvals.stores._sql import schema


class PgApprovalStore(PgStore, StoreBase):
    """`ApprovalStore` on PostgreSQL. `table` lets several applications share a database;
    `must_exist` refuses a database without the table instead of creating it."""

    LOCK_KEY = 0x63_67_61_70  # "cgap": serialises CREATE TABLE between workers
    ROW_FACTORY = dict_row

    def __init__(
        self, dsn: str, *, table: str = "callgate_approvals", must_exist: bool = False
    ) -> None:
        super().__init__(dsn, table)
        self._table = sql.Identifier(table)
        self._cols = sql.SQL(", ").join(sql.Identifier(n) for n in FIELD_NAMES)
        self._prepare(schema(table, postgres=True), must_exist=must_exist)

    def _one(self, query: sql.SQL | sql.Composed, params: Any) -> dict[str, Any] | None:
        with self._lock:
            row: dict[str, Any] | None = self._connection().execute(query, params).fetchone()
            return row

    def add(self, request: ApprovalRequest) -> ApprovalRequest:
        values = request.to_dict()
        values["arguments"] = Jsonb(values["arguments"])
        query = sql.SQL(
            "WITH ins AS (INSERT INTO {t} ({cols}) VALUES ({vals}) "
            "ON CONFLICT (run_id, call_id, args_hash) DO NOTHING RETURNING {cols}) "
            "SELECT {cols} FROM ins UNION ALL "
            "SELECT {cols} FROM {t} WHERE run_id = %(run_id)s AND call_id = %(call_id)s "
            "AND args_hash = %(args_hash)s LIMIT 1"
        ).format(
            t=self._table,
            cols=self._cols,
            vals=sql.SQL(", ").join(sql.Placeholder(n) for n in FIELD_NAMES),
        )
        row = self._one(query, values)
        if row is None:
            # Lost a race with a concurrent insert of the same call: the statement's snapshot
            # predates the other commit, so read it with a fresh statement.
            found = self.find(request.run_id, request.call_id, request.args_hash)
            if found is None:
                raise RuntimeError("approval request vanished right after it was inserted")
            return found
        return ApprovalRequest.from_dict(row)

    def get(self, approval_id: str) -> ApprovalRequest | None:
        query = sql.SQL("SELECT {cols} FROM {t} WHERE id = %s").format(
            cols=self._cols, t=self._table
        )
        row = self._one(query, (approval_id,))
        return ApprovalRequest.from_dict(row) if row else None

    def find(self, run_id: str, call_id: str, args_hash: str) -> ApprovalRequest | None:
        query = sql.SQL(
            "SELECT {cols} FROM {t} WHERE run_id = %s AND call_id = %s AND args_hash = %s"
        ).format(cols=self._cols, t=self._table)
        row = self._one(query, (run_id, call_id, args_hash))
        return ApprovalRequest.from_dict(row) if row else None

    def list(self, status: str | None = None, limit: int = 100) -> builtins.list[ApprovalRequest]:
        where = sql.SQL("WHERE status = %(status)s") if status is not None else sql.SQL("")
        query = sql.SQL(
            "SELECT {cols} FROM {t} {where} ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
        ).format(cols=self._cols, t=self._table, where=where)
        with self._lock:
            rows = (
                self._connection()
                .execute(query, {"status": status, "limit": max(0, int(limit))})
                .fetchall()
            )
        return [ApprovalRequest.from_dict(r) for r in rows]

    def _apply(self, change: Transition) -> ApprovalRequest | None:
        sets = sql.SQL(", ").join(
            [
                sql.SQL("status = %(__status)s"),
                *(
                    sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k))
                    for k in change.changes
                ),
            ]
        )
        cond: sql.SQL | sql.Composed = sql.SQL("id = %(__id)s AND status = ANY(%(__expect)s)")
        params: dict[str, Any] = {
            **change.changes,
            "__status": change.status,
            "__id": change.approval_id,
            "__expect": list(change.expect),
        }
        if change.unexpired_at is not None:
            cond = sql.SQL("{} AND expires_at > %(__now)s").format(cond)
            params["__now"] = change.unexpired_at
        query = sql.SQL("UPDATE {t} SET {sets} WHERE {cond} RETURNING {cols}").format(
            t=self._table, sets=sets, cond=cond, cols=self._cols
        )
        row = self._one(query, params)
        return ApprovalRequest.from_dict(row) if row else None
