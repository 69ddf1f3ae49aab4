"""Load on the HTTP gateway over loopback: calls through the full gate (auth, decode, validate,
policy, durable SQLite audit) at 1, 8 and 64 concurrent clients, then the same with one of two
gateway processes killed mid-run.

    python bench/load_gateway.py [--seconds 3]

Prints calls/s and p50/p99 latency per level, and after the kill: acknowledged calls against
audit records (none may be missing), and approvals resumed across the kill (none lost, none run
twice). Bounded: a few seconds per level, loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from callgate.approvals import open_approval_store
from callgate.audit import AuditLog
from callgate.server.auth import ApiKeys

ROOT = Path(__file__).resolve().parent.parent
TARGET = "examples.serving.support_tools:toolset"
LOOKUP = {"calls": [{"id": "c", "name": "lookup_order", "arguments": {"order_id": "A-1"}}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Fleet:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.keys: dict[str, str] = {}
        for user, roles in (("ana", ["support"]), ("lead", ["approver", "auditor"])):
            key, entry = ApiKeys.new_key(user, roles, "acme")
            ApiKeys.append(tmp / "keys.json", entry)
            self.keys[user] = key

    def start(self, n: int) -> list[str]:
        env = dict(os.environ, PYTHONPATH=str(ROOT), CALLGATE_SESSION_SECRET="bench")
        ports = [free_port() for _ in range(n)]
        for port in ports:
            cmd = [
                sys.executable,
                "-m",
                "callgate.cli",
                "serve",
                TARGET,
                "--port",
                str(port),
                "--keys",
                str(self.tmp / "keys.json"),
                "--audit",
                str(self.tmp / "audit.db"),
                "--approvals",
                str(self.tmp / "approvals.db"),
                "--policy",
                str(ROOT / "examples/serving/policy.yaml"),
            ]
            self.procs.append(
                subprocess.Popen(
                    cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
        for port in ports:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"gateway on {port} did not start") from None
                    time.sleep(0.1)
        return [f"http://127.0.0.1:{p}" for p in ports]

    def h(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[user]}"}

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            p.wait(timeout=20)


async def client_loop(
    http: httpx.AsyncClient,
    urls: list[str],
    headers: dict[str, str],
    stop_at: float,
    lat: list[float],
    acked: Counter[str],
    start: int,
) -> None:
    i = start
    while time.monotonic() < stop_at:
        url = urls[i % len(urls)]
        i += 1
        t0 = time.perf_counter()
        try:
            r = await http.post(f"{url}/v1/execute", json=LOOKUP, headers=headers)
        except httpx.HTTPError:
            acked["failed"] += 1
            urls[:] = [u for u in urls if u != url] or urls  # stop using a dead gateway
            continue
        lat.append(time.perf_counter() - t0)
        acked["ok" if r.status_code == 200 and r.json()["results"][0]["ok"] else "error"] += 1


async def level(
    urls: list[str], headers: dict[str, str], clients: int, seconds: float
) -> tuple[list[float], Counter[str]]:
    lat: list[float] = []
    acked: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        stop_at = time.monotonic() + seconds
        await asyncio.gather(
            *(
                client_loop(http, list(urls), headers, stop_at, lat, acked, k)
                for k in range(clients)
            )
        )
    return lat, acked


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3 if xs else float("nan")


def report(name: str, lat: list[float], acked: Counter[str], seconds: float) -> None:
    print(
        f"{name:<34} {len(lat) / seconds:>8.0f} calls/s   p50 {pct(lat, 0.5):6.1f} ms   "
        f"p99 {pct(lat, 0.99):6.1f} ms   ok {acked['ok']}"
    )


async def kill_phase(fleet: Fleet, seconds: float) -> int:
    urls = fleet.start(2)
    # 20 refunds wait for approval; a person approves them all
    ids = []
    async with httpx.AsyncClient(timeout=30) as http:
        for k in range(20):
            body = {
                "run_id": f"kill-{k}",
                "calls": [
                    {"id": "r", "name": "refund", "arguments": {"order_id": f"K-{k}", "amount": 1}}
                ],
            }
            r = await http.post(f"{urls[1]}/v1/execute", json=body, headers=fleet.h("ana"))
            ids.append(r.json()["results"][0]["approval_id"])
        for a in ids:
            await http.post(f"{urls[1]}/v1/approvals/{a}/approve", headers=fleet.h("lead"))
    victim = fleet.procs[-2]

    async def resume_all() -> None:
        async with httpx.AsyncClient(timeout=30) as http:

            async def one(k: int) -> None:
                await asyncio.sleep(k * seconds / 25)  # spread over the kill
                body = {
                    "run_id": f"kill-{k}",
                    "calls": [
                        {
                            "id": "r",
                            "name": "refund",
                            "arguments": {"order_id": f"K-{k}", "amount": 1},
                        }
                    ],
                }
                for url in (urls[k % 2], urls[1]):  # retried on the survivor
                    try:
                        await http.post(f"{url}/v1/execute", json=body, headers=fleet.h("ana"))
                        return
                    except httpx.HTTPError:
                        continue

            await asyncio.gather(*(one(k) for k in range(20)))

    async def killer() -> None:
        await asyncio.sleep(seconds / 3)
        victim.send_signal(signal.SIGKILL)

    load = level(urls, fleet.h("ana"), 16, seconds)
    (lat, acked), _, _ = await asyncio.gather(load, killer(), resume_all())
    report("16 clients, 1 of 2 killed at 1/3", lat, acked, seconds)
    print(f"{'':<34} requests cut by the kill: {acked['failed']}")
    return acked["ok"]


def check_records(tmp: Path, ok_calls: int) -> None:
    audit = AuditLog.open(str(tmp / "audit.db"))
    report_ = audit.verify()
    lookups = len(audit.entries(tool="lookup_order", kind="call"))
    print(
        f"audit: {report_.count} records, chain {'intact' if report_.ok else 'BROKEN'}; "
        f"lookup records {lookups} >= acknowledged ok calls {ok_calls}: "
        f"{'yes' if lookups >= ok_calls else 'NO - LOST RECORDS'}"
    )
    runs = Counter(
        e.data.get("approval_id")
        for e in audit.entries(tool="refund", kind="call")
        if e.data.get("error_kind") is None and e.data.get("approval_id")
    )
    store = open_approval_store(str(tmp / "approvals.db"))
    statuses = Counter(r.status for r in store.list(limit=1000))
    twice = [a for a, n in runs.items() if n > 1]
    print(
        f"approvals after the kill: {dict(statuses)}; run twice: {len(twice)}; "
        f"lost (still pending): {statuses.get('pending', 0)}"
    )


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cg-load-"))
    fleet = Fleet(tmp)
    ok_total = 0
    try:
        urls = fleet.start(1)
        print("gateway load (loopback, full gate, durable SQLite audit, one process)")
        for clients in (1, 8, 64):
            lat, acked = await level(urls, fleet.h("ana"), clients, args.seconds)
            ok_total += acked["ok"]
            report(f"{clients} concurrent client(s)", lat, acked, args.seconds)
        ok_total += await kill_phase(fleet, args.seconds)
    finally:
        fleet.stop()
    check_records(tmp, ok_total)


if __name__ == "__main__":
    asyncio.run(main())
