"""Shared fixtures: a running ACE simulator on a free local port, and clients for it.

Every origin test speaks real HTTP to the simulator through aiohttp's test
server (`aiohttp_server` from pytest-aiohttp); nothing is mocked. Data is fixed
by the seed and by a fixed "now", so every run sees the same samples.

`make_simulator` starts the realistic simulator unless told otherwise (the real
API's behaviour, its default); `sim` is the idealised one, because the origin
client, the engine and the server tests built on it still assume that API
(a point filter, one timestamp per point, an exact cursor).
"""

from __future__ import annotations

import ipaddress
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from acechart.origin.client import OriginClient
from acechart.settings import Settings
from acechart.simulator.app import (
    DEMO_TOKEN,
    SIMULATOR,
    SimulatorConfig,
    SimulatorState,
    create_simulator_app,
)
from acechart.simulator.datagen import DataSource, SiteTable
from acechart.simulator.faults import FaultInjector, RequestLog
from acechart.times import parse_iso_ms
from tests import backends
from tests.backends import SHARED_MODULES, Backend, postgres_server, redis_server, shared

pytest_plugins = [
    "tests.storage_fixtures",
    "tests.jobs_support",
    "tests.server_helpers",
    "tests.watchdog",
]
__all__ = [
    "postgres_server",
    "redis_server",
    "shared",
]  # session fixtures, registered by being here


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests of the modules in `SHARED_MODULES` run on the embedded and the shared backend."""
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    names = metafunc.fixturenames
    if module in SHARED_MODULES and "backend" in names and "shared" not in names:
        metafunc.parametrize("backend", ["embedded", "shared"], indirect=True)


@pytest.fixture(autouse=True)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The storage backend of this test (see tests/backends.py); `embedded` unless
    the module is one of `SHARED_MODULES`, whose tests run once on each."""
    if getattr(request, "param", "embedded") == "embedded":
        with backends.using(backends.EMBEDDED) as embedded:
            yield embedded
        return
    pg: backends.PostgresServer = request.getfixturevalue("postgres_server")
    redis: backends.RedisServer = request.getfixturevalue("redis_server")
    backends._pg_server.append(pg)
    try:
        with backends.using(backends.shared_backend(pg, redis)) as shared:
            yield shared
    finally:
        backends._pg_server.pop()
        pg.drop_all()


def refuse_non_loopback(address: Any) -> None:
    """The network rule's test: raise before a socket connects to a non-loopback address
    (an IPv4-mapped IPv6 address counts as its IPv4 one). Names pass: they are resolved
    to an address, checked here, before any real connect."""
    if isinstance(address, tuple) and address:
        try:
            ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
        except ValueError:
            return
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if not (mapped or ip).is_loopback:
            raise ConnectionRefusedError(f"network rule: no connection to {ip} in tests")


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    """The network rule, enforced: a socket of this test process may connect only to a
    loopback address. Tests of refused addresses classify them; should a bug ever try to
    connect to one, the attempt fails here instead of leaving the machine."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> None:
        refuse_non_loopback(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        refuse_non_loopback(address)
        return real_connect_ex(self, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        yield


SITE = "ses_falls_city"
TOKEN = DEMO_TOKEN
NOW_MS = parse_iso_ms("2025-01-01T00:00:00Z")
"""The simulator's fixed "now": no data after it, so runs never depend on the clock."""


@dataclass
class Sim:
    """A simulator listening on a local port, and handles on its live state."""

    server: TestServer
    state: SimulatorState

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def faults(self) -> FaultInjector:
        return self.state.faults

    @property
    def log(self) -> RequestLog:
        return self.state.log

    @property
    def data(self) -> DataSource:
        return self.state.data

    @property
    def site(self) -> SiteTable:
        return self.state.data.sites[SITE]


SimFactory = Callable[..., Awaitable[Sim]]


@pytest.fixture
async def make_simulator(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> SimFactory:
    """Start a simulator with `SimulatorConfig` fields as keyword arguments (`mode=...`)."""

    async def start(**config: Any) -> Sim:
        config.setdefault("now_ms", NOW_MS)
        app = create_simulator_app(SimulatorConfig(**config))
        server = await aiohttp_server(app)
        return Sim(server, app[SIMULATOR])

    return start


@pytest.fixture
async def sim(make_simulator: SimFactory) -> Sim:
    """The idealised simulator: one site, demo-token, no faults.

    Idealised because the origin client (and so the engine, jobs and server
    tests over it) still sends `point_names` and expects distinct timestamps;
    tests of the real API's behaviour start `make_simulator()` themselves.
    """
    return await make_simulator(mode="idealised")


def origin_settings(url: str, **overrides: Any) -> Settings:
    """Client settings for tests: the simulator's URL and fast retries."""
    values: dict[str, Any] = {
        "origin_url": url,
        "origin_retry_base_s": 0.01,
        "origin_retry_cap_s": 0.05,
        "origin_timeout_s": 20.0,
        "origin_read_timeout_s": 10.0,
    }
    values.update(backends.current().overrides())
    values.update(overrides)
    return Settings.from_env({}, **values)


ClientFactory = Callable[..., OriginClient]


@pytest.fixture
async def make_client(sim: Sim) -> AsyncIterator[ClientFactory]:
    """Build origin clients for the default simulator (settings overrides as keywords)."""
    clients: list[OriginClient] = []

    def build(**overrides: Any) -> OriginClient:
        client = OriginClient(origin_settings(sim.url, **overrides), rng=random.Random(0))
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.close()
