"""Real PostgreSQL and Redis servers for the tests, and the `backend` the suite runs on.

`postgres_server` and `redis_server` start Debian's `postgres` and
`redis-server` once per session, on free ports of 127.0.0.1, in temporary
directories, with durability switched off for speed (fsync, appendonly):
the tests need the servers' semantics, not their crash safety. PostgreSQL
refuses to run as root, so under root it runs as `nobody`, in a directory that
user owns.

`backend` is the parametrised fixture that makes one test run on both
configurations: `embedded` (SQLite file, in-process queue, limits and locks)
and `shared` (a fresh PostgreSQL database and a fresh Redis key prefix for
this test alone). `conftest.py` parametrises it for the modules in
`SHARED_MODULES`; elsewhere it is `embedded`. `origin_settings` (conftest)
adds `current().overrides()` to every test's settings, so a test written once
runs on whichever backend is current.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "SHARED_MODULES",
    "Backend",
    "PostgresServer",
    "RedisServer",
    "current",
    "postgres_server",
    "redis_server",
]

#: Test modules whose tests run on both backends (the database, queue, rate limit, lock,
#: engine and job tests); the rest of the suite runs on the embedded default only.
SHARED_MODULES = frozenset(
    {
        "test_database",
        "test_aggblock",
        "test_block",
        "test_engine",
        "test_jobs",
        "test_job_idle",
        "test_job_routes",
        "test_job_metrics",
        "test_job_formats",
        "test_reliability_jobs",
        "test_reliability_blocks",
        "test_reliability_damage",
        "test_ratelimit",
        "test_server_api",
        "test_charts",
        "test_server_local_time",
        "test_partial",
    }
)

#: Debian's PostgreSQL binaries (not on PATH): the newest installed version.
#: The job token key every instance of a shared test deployment is given (it must agree).
SHARED_JOB_TOKEN_KEY = "test-shared-job-token-key"

PG_BIN = max(
    Path("/usr/lib/postgresql").glob("*/bin"),
    default=Path("/nonexistent"),
    key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_tool(name: str) -> str:
    found = PG_BIN / name if (PG_BIN / name).exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} not found: apt-get install -y postgresql")
    return str(found)


@dataclass
class PostgresServer:
    """A PostgreSQL cluster of this session; `new_database()` gives each test its own."""

    port: int
    user: str = "postgres"
    made: list[str] = field(default_factory=list)

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; returns its URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.psql(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return self.url(name)

    def drop_all(self) -> None:
        """Drop the databases made so far (a test's, at its end), connections or not."""
        made, self.made = self.made, []
        for name in made:
            self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(
            [
                _pg_tool("psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database,
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return out.stdout


@dataclass
class RedisServer:
    port: int

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


def _as_unprivileged() -> tuple[list[str], int | None, int | None]:
    """The command prefix, uid and gid that run PostgreSQL (never as root)."""
    if os.geteuid() != 0:
        return [], None, None
    nobody = pwd.getpwnam("nobody")
    runuser = shutil.which("runuser")
    if runuser is None:
        raise RuntimeError("running as root needs runuser (util-linux) to start PostgreSQL")
    return [runuser, "-u", "nobody", "--"], nobody.pw_uid, nobody.pw_gid


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """PostgreSQL on a free loopback port, in a temporary directory; stopped at the end."""
    with run_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """redis-server on a free loopback port, nothing persisted; stopped at the end."""
    with run_redis() as server:
        yield server


@contextlib.contextmanager
def run_postgres() -> Iterator[PostgresServer]:
    """`postgres_server` outside pytest (the scale benchmark starts one too)."""
    prefix, uid, gid = _as_unprivileged()
    root = Path(tempfile.mkdtemp(prefix="acechart-pg-"))
    data = root / "data"
    if uid is not None and gid is not None:
        os.chown(root, uid, gid)
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run(
        [
            *prefix,
            _pg_tool("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    )
    port = _free_port()
    log = open(root / "postgres.log", "wb")  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen(
        [
            *prefix,
            _pg_tool("postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(root),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=64MB",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env,
    )
    server = PostgresServer(port)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server.psql("SELECT 1")
                break
            except subprocess.CalledProcessError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "PostgreSQL did not start: " + (root / "postgres.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def run_redis() -> Iterator[RedisServer]:
    """`redis_server` outside pytest."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: apt-get install -y redis-server")
    root = Path(tempfile.mkdtemp(prefix="acechart-redis-"))
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(root),
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield RedisServer(port)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Backend:
    """The storage configuration a test runs on."""

    name: str
    database_url: str = ""
    redis_url: str = ""
    redis_prefix: str = "acechart:"

    @property
    def shared(self) -> bool:
        return self.name == "shared"

    def overrides(self) -> dict[str, Any]:
        """Settings that select this backend (nothing for the embedded default)."""
        if not self.shared:
            return {}
        return {
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "redis_prefix": self.redis_prefix,
            "job_token_key": SHARED_JOB_TOKEN_KEY,
        }

    def env(self) -> dict[str, str]:
        """The same, as environment variables for a subprocess."""
        return {f"ACECHART_{k.upper()}": str(v) for k, v in self.overrides().items()}


EMBEDDED = Backend("embedded")
_current: list[Backend] = [EMBEDDED]


def current() -> Backend:
    """The backend of the running test."""
    return _current[-1]


@contextlib.contextmanager
def using(backend: Backend) -> Iterator[Backend]:
    _current.append(backend)
    try:
        yield backend
    finally:
        _current.pop()


def shared_backend(pg: PostgresServer, redis: RedisServer) -> Backend:
    """A fresh database and Redis key prefix, so tests never see each other's state."""
    return Backend(
        "shared",
        database_url=pg.new_database(),
        redis_url=redis.url(),
        redis_prefix=f"t{uuid.uuid4().hex[:12]}:",
    )


async def open_test_db(path: Path) -> Any:
    """A `Database` on the current backend: the SQLite file at `path`, or a fresh
    PostgreSQL database (the same one for the same path within a test)."""
    from acechart.storage.database import Database

    backend = current()
    if not backend.shared:
        return await Database.open(path)
    from acechart.storage.postgres import PostgresDatabase

    url = _pg_urls.setdefault((backend.database_url, str(path)), _sibling(backend, path))
    return await PostgresDatabase.open_url(url)


_pg_urls: dict[tuple[str, str], str] = {}
_pg_server: list[PostgresServer] = []


def _sibling(backend: Backend, path: Path) -> str:
    """The backend's own database for the first path a test opens, a new one for others."""
    if not any(k[0] == backend.database_url for k in _pg_urls):
        return backend.database_url
    return _pg_server[-1].new_database()


@pytest.fixture
def shared(
    backend: Backend, postgres_server: PostgresServer, redis_server: RedisServer
) -> Iterator[Backend]:
    """The shared backend for this test whatever its module (tests of Redis-only parts);
    such a test is not also run on the embedded backend."""
    if backend.shared:
        yield backend
        return
    _pg_server.append(postgres_server)
    try:
        with using(shared_backend(postgres_server, redis_server)) as backend:
            yield backend
    finally:
        _pg_server.pop()
        postgres_server.drop_all()
