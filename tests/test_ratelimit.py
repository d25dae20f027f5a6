"""Rate limits on both backends, and one limit shared by two instances through Redis.

The module is in `tests.backends.SHARED_MODULES`: the first test runs on the
in-process buckets and on Redis's, and must give the seed's 429 body and
Retry-After on both. The second runs two services (two apps, two runtimes) on
one Redis, the way two `acechart serve` processes behind a balancer would.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio

from acechart.server.keys import LIMITER
from acechart.server.ratelimit import RedisRateLimiter
from tests.backends import Backend
from tests.conftest import NOW_MS, SITE, SimFactory
from tests.server_helpers import ClientFactory, query, start_service

DAY = 86_400_000


@pytest.fixture
async def sim(make_simulator: SimFactory) -> object:
    return await make_simulator(mode="idealised", tokens={"tok-a": frozenset({SITE})})


async def test_the_seed_429_on_either_backend(
    aiohttp_client: ClientFactory, sim: object, tmp_path: Path, backend: Backend
) -> None:
    svc = await start_service(aiohttp_client, sim, tmp_path, rate_limit_per_minute=3)  # type: ignore[arg-type]
    assert isinstance(svc.app[LIMITER], RedisRateLimiter) is backend.shared
    params = query(svc.points(1), NOW_MS - 10 * DAY, NOW_MS - 9 * DAY)
    for _ in range(3):
        assert (await svc.get("/api/timeseries", params, token="tok-a")).status == 200
    limited = await svc.get("/api/timeseries", params, token="tok-a")
    assert limited.status == 429
    body = await limited.json()
    assert body["error"] == "rate_limit_exceeded"
    assert body["retryAfter"] == int(limited.headers["Retry-After"]) == 20
    assert "20 seconds" in body["message"]
    # Per endpoint: the catalogue has its own bucket.
    assert (await svc.get("/api/points", {"site": SITE}, token="tok-a")).status == 200


async def test_two_instances_share_one_limit(
    aiohttp_client: ClientFactory, sim: object, tmp_path: Path, shared: Backend
) -> None:
    a = await start_service(aiohttp_client, sim, tmp_path / "a", rate_limit_per_minute=5)  # type: ignore[arg-type]
    b = await start_service(aiohttp_client, sim, tmp_path / "b", rate_limit_per_minute=5)  # type: ignore[arg-type]
    params = query(a.points(1), NOW_MS - 10 * DAY, NOW_MS - 9 * DAY)
    statuses = []
    for i in range(8):
        svc = a if i % 2 == 0 else b
        statuses.append((await svc.get("/api/timeseries", params, token="tok-a")).status)
    # Five in all pass, split over A and B; the sixth is refused whichever instance gets it.
    assert statuses == [200] * 5 + [429] * 3


async def test_redis_down_lets_requests_through(
    aiohttp_client: ClientFactory, sim: object, tmp_path: Path, shared: Backend
) -> None:
    svc = await start_service(aiohttp_client, sim, tmp_path, rate_limit_per_minute=1)  # type: ignore[arg-type]
    limiter = svc.app[LIMITER]
    assert isinstance(limiter, RedisRateLimiter)
    # Redis gone: point the limiter at a client of a port nothing listens on.
    from acechart.storage.redis_client import SharedRedis
    from tests.backends import _free_port

    dead = SharedRedis(
        redis.asyncio.Redis.from_url(f"redis://127.0.0.1:{_free_port()}/0"), "x:", "dead"
    )
    limiter.redis = dead
    limiter._take = dead.script(limiter_script())
    params = query(svc.points(1), NOW_MS - 10 * DAY, NOW_MS - 9 * DAY)
    for _ in range(2):
        assert (await svc.get("/api/timeseries", params, token="tok-a")).status == 200
    assert limiter.unavailable == 2
    await dead.close()


def limiter_script() -> str:
    from acechart.server import ratelimit

    return ratelimit._TAKE
