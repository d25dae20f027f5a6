"""A running acechart service over the test simulator, for the server tests.

The service is the real application from `create_app`, served on a local port
by aiohttp's test server through acechart's own runner (`server.runner`, as
`acechart serve` serves it: its connections answer protocol errors in JSON),
with SQLite and the object store in `tmp_path` and the engine's clock fixed
at the simulator's "now".
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import BaseRunner

from acechart.server import create_app
from acechart.server.keys import EDGE, RUNTIME
from acechart.server.runner import AppRunner
from acechart.settings import Settings
from tests.conftest import NOW_MS, SITE, TOKEN, Sim, origin_settings

DAY = 86_400_000
HOUR = 3_600_000

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


class ServiceServer(TestServer):
    """aiohttp's test server, serving through acechart's runner."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return AppRunner(self.app, **kwargs)


class Clock:
    """A settable monotonic clock for the edge cache, rate limiter and auth cache."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Service:
    client: TestClient[web.Request, web.Application]
    sim: Sim
    settings: Settings

    @property
    def app(self) -> web.Application:
        return self.client.app

    def points(self, n: int, cadence_s: int = 60) -> list[str]:
        table = self.sim.site
        return [
            name for i, name in enumerate(table.names) if table.cadence_ms[i] == cadence_s * 1000
        ][:n]

    async def get(
        self,
        path: str,
        params: Mapping[str, Any] | list[tuple[str, str]] | None = None,
        *,
        token: str | None = TOKEN,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault("X-ACE-Token", token)
        return await self.client.get(path, params=params, headers=sent)


def query(points: list[str], start: int, end: int, **extra: Any) -> dict[str, Any]:
    from acechart.times import format_time

    return {
        "site": SITE,
        "points": ",".join(points),
        "start": format_time(start),
        "end": format_time(end),
        **extra,
    }


async def start_service(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path, **overrides: Any
) -> Service:
    settings = origin_settings(sim.url, data_dir=str(tmp_path / "service"), **overrides)
    client = await aiohttp_client(ServiceServer(create_app(settings)))
    client.app[RUNTIME].engine.clock = lambda: NOW_MS
    return Service(client, sim, settings)


def edge_clock(service: Service) -> Clock:
    clock = Clock()
    service.app[EDGE].clock = clock
    return clock


_INSTANCE_LABEL = re.compile(r'\{instance_id="(?:[^"\\]|\\.)*"(,|\})')


def unlabelled(text: str) -> str:
    """A `/metrics` exposition without the `instance_id` label every sample carries, so
    a test can look for a sample line as prometheus_client writes it."""
    return _INSTANCE_LABEL.sub(lambda m: "{" if m[1] == "," else "", text)


def sample_value(text: str, sample: str) -> float:
    """The value of `sample` (name and labels, as written) in a `/metrics` exposition;
    0 when it is not there yet."""
    for line in unlabelled(text).splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[1])
    return 0.0


@pytest.fixture
async def pair(aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path) -> tuple[Service, Service]:
    """The same origin behind a service that streams any answer of 10 or more values
    (samples, or bucket statistics) and one that never streams."""
    streaming = await start_service(aiohttp_client, sim, tmp_path / "a", stream_min_samples=10)
    whole = await start_service(aiohttp_client, sim, tmp_path / "b", stream_min_samples=0)
    return streaming, whole
