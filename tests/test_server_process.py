"""Real gateway processes: MCP behind the gateway's authentication, graceful shutdown that loses
no request and no audit record, and scale-out (three processes sharing PostgreSQL approvals and
audit, and a Redis rate limit)."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from callgate import AuditLog
from tests.e2e.gateway import Gateway


def _text(result: types.CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, types.TextContent))


async def test_mcp_behind_the_gateway_uses_the_callers_identity(tmp_path: Path) -> None:
    gw = Gateway.prepare(tmp_path)
    url = gw.start()
    try:
        anon = httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert anon.status_code == 401
        bad = httpx2.AsyncClient(headers={"Authorization": "Bearer cg_bad_key"})
        async with bad:
            r = await bad.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
            assert r.status_code == 401
        http = httpx2.AsyncClient(headers=gw.headers("ana"), timeout=30)
        async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http)) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert names == {"lookup_order", "refund", "slow_report"}
            res = await c.call_tool("refund", {"order_id": "M-1", "amount": 9})
            assert res.structured_content["status"] == "pending_approval"
            approval_id = res.structured_content["approval_id"]
        shown = httpx.get(f"{url}/v1/approvals/{approval_id}", headers=gw.headers("boss")).json()
        assert shown["requested_by"] == "ana" and shown["tenant"] == "acme"  # from the key
    finally:
        gw.stop()


def test_graceful_shutdown_finishes_requests_in_flight(tmp_path: Path) -> None:
    gw = Gateway.prepare(tmp_path)
    url = gw.start()
    proc = gw.procs[0][0]
    out: dict[str, object] = {}

    def slow() -> None:
        body = {"calls": [{"id": "s1", "name": "slow_report", "arguments": {"seconds": 1.5}}]}
        r = httpx.post(f"{url}/v1/execute", json=body, headers=gw.headers("ana"), timeout=30)
        out["status"] = r.status_code
        out["body"] = r.json()

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)  # the call is running
    proc.send_signal(signal.SIGTERM)
    t.join(timeout=30)
    # uvicorn finishes the request, shuts down, then re-raises the signal it caught
    assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
    assert out["status"] == 200
    assert out["body"]["results"][0]["content"] == "report after 1.5 s"
    records = AuditLog.open(str(tmp_path / "audit.db")).entries(tool="slow_report")
    assert len(records) == 1 and records[0].data["error_kind"] is None
    try:  # and it accepts nothing new
        httpx.get(f"{url}/health", timeout=2)
        raise AssertionError("the gateway still answers after shutdown")
    except httpx.HTTPError:
        pass


def test_three_gateways_share_approvals_and_rate_limits(
    tmp_path: Path, pg_db: str, redis_url: str, redis_prefix: str
) -> None:
    gw = Gateway.prepare(
        tmp_path,
        CG_APPROVALS=pg_db,
        CG_AUDIT=pg_db,
        CG_REDIS=redis_url,
        CG_REDIS_PREFIX=redis_prefix,
        CG_RATE="5",
    )
    urls = gw.start_many(3)
    runlog = Path(gw.env["CG_RUNLOG"])
    try:
        refund = {
            "run_id": "shared-run",
            "calls": [
                {"id": "c1", "name": "refund", "arguments": {"order_id": "S-1", "amount": 70}}
            ],
        }
        first = httpx.post(
            f"{urls[0]}/v1/execute", json=refund, headers=gw.headers("ana"), timeout=30
        ).json()["results"][0]
        assert first["error_kind"] == "pending_approval"
        inbox = httpx.get(
            f"{urls[1]}/v1/approvals?status=pending", headers=gw.headers("boss")
        ).json()["approvals"]
        assert [a["id"] for a in inbox] == [first["approval_id"]]
        ok = httpx.post(
            f"{urls[1]}/v1/approvals/{first['approval_id']}/approve",
            headers=gw.headers("boss"),
            json={"comment": "ok"},
            timeout=30,
        )
        assert ok.status_code == 200
        # resumed through the third process, concurrently with a retry through the first:
        # the approved call runs exactly once
        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(
                    lambda u: httpx.post(
                        f"{u}/v1/execute", json=refund, headers=gw.headers("ana"), timeout=30
                    ).json()["results"][0],
                    [urls[2], urls[0]],
                )
            )
        assert sorted(r["ok"] for r in results) == [False, True]
        assert runlog.read_text().splitlines() == ["refund S-1 70.0"]

        lookup = {"calls": [{"id": "l", "name": "lookup_order", "arguments": {"order_id": "X"}}]}
        with ThreadPoolExecutor(9) as pool:
            outcomes = list(
                pool.map(
                    lambda i: httpx.post(
                        f"{urls[i % 3]}/v1/execute",
                        json=lookup,
                        headers=gw.headers("ana"),
                        timeout=30,
                    ).json()["results"][0],
                    range(9),
                )
            )
        allowed = [o for o in outcomes if o["ok"]]
        limited = [o for o in outcomes if not o["ok"]]
        assert len(allowed) == 5 and len(limited) == 4  # one limit across the three processes
        assert all(o["error_kind"] == "denied" for o in limited)

        verify = httpx.get(f"{urls[2]}/v1/audit/verify", headers=gw.headers("boss")).json()
        assert verify["ok"], verify["summary"]
        assert verify["count"] == 1 + 2 + 9  # every call, from every process, in one chain
    finally:
        gw.stop()
