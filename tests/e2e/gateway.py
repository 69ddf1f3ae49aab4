"""Start real gateway processes (``callgate serve``) for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from callgate.server.auth import ApiKeys

ROOT = Path(__file__).resolve().parents[2]
USERS = {
    "ana": (["support"], "acme"),
    "boss": (["approver", "auditor"], "acme"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Gateway:
    """A `callgate serve` process on a free port, with its key file and environment."""

    tmp: Path
    env: dict[str, str]
    keys: dict[str, str] = field(default_factory=dict)
    procs: list[tuple[subprocess.Popen[bytes], int]] = field(default_factory=list)

    @classmethod
    def prepare(cls, tmp: Path, **env: str) -> Gateway:
        full = dict(os.environ)
        full.update(
            CG_APPROVALS=str(tmp / "approvals.db"),
            CG_AUDIT=str(tmp / "audit.db"),
            CG_RUNLOG=str(tmp / "run.log"),
            CALLGATE_SESSION_SECRET="e2e-shared-secret",
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), full.get("PYTHONPATH")])),
        )
        full.update(env)
        gw = cls(tmp, full)
        for user, (roles, tenant) in USERS.items():
            key, entry = ApiKeys.new_key(user, roles, tenant)
            ApiKeys.append(tmp / "keys.json", entry)
            gw.keys[user] = key
        return gw

    def start(self, *extra: str) -> str:
        """One gateway; `extra` are more `callgate serve` options."""
        return self.start_many(1, *extra)[0]

    def start_many(self, n: int, *extra: str) -> list[str]:
        """Start `n` processes at once (they boot in parallel) and wait for all of them."""
        ports = [self._spawn(extra) for _ in range(n)]
        return [self._wait(port) for port in ports]

    def _spawn(self, extra: tuple[str, ...], target: str = "tests.mcp_fixtures.tools:gate") -> int:
        port = free_port()
        log = open(self.tmp / f"gateway-{port}.log", "wb")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "callgate.cli",
                "serve",
                target,
                "--port",
                str(port),
                "--keys",
                str(self.tmp / "keys.json"),
                "--grace",
                "10",
                *extra,
            ],
            env=self.env,
            cwd=str(ROOT),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append((proc, port))
        return port

    def _wait(self, port: int) -> str:
        proc = next(p for p, q in self.procs if q == port)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError((self.tmp / f"gateway-{port}.log").read_text())
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return f"http://127.0.0.1:{port}"
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"gateway on port {port} did not start")

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[user]}"}

    def stop(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc, _ in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
