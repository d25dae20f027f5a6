"""The edge cache (L1) over a real service: hits, TTL by data age, stale-while-revalidate,
stale-if-error with the simulator failing, and the 502/504 when nothing stale is left."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from acechart.server.keys import BACKGROUND, EDGE
from tests.conftest import NOW_MS, Sim
from tests.server_helpers import DAY, ClientFactory, Service, edge_clock, query, start_service

PAGINATED = "/timeseries"  # either data route: per point or site-wide


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path) -> Service:
    return await start_service(aiohttp_client, sim, tmp_path)


def origin_fetches(svc: Service) -> int:
    return len(svc.sim.log.matching(PAGINATED))


async def test_edge_hit_is_keyed_by_query_and_representation(svc: Service) -> None:
    params = query(svc.points(2), NOW_MS - 30 * DAY, NOW_MS - 29 * DAY)
    first = await svc.get("/api/timeseries", params)
    assert first.headers["X-Cache-Status"] == "MISS"
    fetched = origin_fetches(svc)
    second = await svc.get("/api/timeseries", params)
    assert (second.headers["X-Cache-Status"], second.headers["X-Cache-Source"]) == ("HIT", "EDGE")
    assert await second.read() == await first.read()
    assert second.headers["ETag"] == first.headers["ETag"]
    # Another format is another entry, answered from the block store, not the origin.
    packed = await svc.get("/api/timeseries", {**params, "format": "msgpack"})
    assert (packed.headers["X-Cache-Status"], packed.headers["X-Cache-Source"]) == ("HIT", "R2")
    assert origin_fetches(svc) == fetched
    assert len(svc.app[EDGE]) == 2
    # A wider window reuses the cached day and fetches only the rest.
    wider = query(svc.points(2), NOW_MS - 31 * DAY, NOW_MS - 29 * DAY)
    partial = await svc.get("/api/timeseries", wider)
    assert (partial.headers["X-Cache-Status"], partial.headers["X-Cache-Source"]) == (
        "PARTIAL",
        "ORIGIN",
    )


# A range ending now is realtime (5 minutes), capped at its one-minute point's cadence.
@pytest.mark.parametrize(("days_ago", "max_age"), [(0, 60), (3, 600), (30, 3600), (200, 86_400)])
async def test_cache_control_follows_the_seeds_ttl_table(
    svc: Service, days_ago: int, max_age: int
) -> None:
    end = NOW_MS - days_ago * DAY
    resp = await svc.get("/api/timeseries", query(svc.points(1), end - 3_600_000, end))
    assert resp.headers["Cache-Control"] == (
        f"private, max-age={max_age}, stale-while-revalidate={3 * max_age}, stale-if-error=86400"
    )


async def test_stale_while_revalidate_serves_stale_and_refreshes(svc: Service) -> None:
    clock = edge_clock(svc)
    params = query(svc.points(1), NOW_MS - DAY, NOW_MS)  # the fresh edge: 60 s (its cadence)
    await svc.get("/api/timeseries", params)
    clock.advance(61)
    fetched = origin_fetches(svc)
    stale = await svc.get("/api/timeseries", params)
    assert stale.status == 200
    assert stale.headers["X-Cache-Status"] == "STALE"
    assert stale.headers["Warning"].startswith("110")
    assert "max-age=0" in stale.headers["Cache-Control"]
    await svc.app[BACKGROUND].drain()
    assert origin_fetches(svc) > fetched  # the refresh asked the origin for the fresh edge
    fresh = await svc.get("/api/timeseries", params)
    assert fresh.headers["X-Cache-Status"] == "HIT" and "Warning" not in fresh.headers


async def test_stale_if_error_when_the_origin_fails(svc: Service) -> None:
    clock = edge_clock(svc)
    params = query(svc.points(1), NOW_MS - DAY, NOW_MS)
    good = await svc.get("/api/timeseries", params)
    body = await good.read()
    clock.advance(300 + 900 + 1)  # past fresh and stale-while-revalidate
    svc.sim.faults.configure(error_rate=1.0)  # every origin request answers 500 or 503
    resp = await svc.get("/api/timeseries", params)
    assert resp.status == 200
    assert resp.headers["X-Cache-Status"] == "STALE"
    assert resp.headers["Warning"].startswith("111")
    assert await resp.read() == body

    clock.advance(86_400)  # past stale-if-error too: only the sealed blocks are left
    partial = await svc.get("/api/timeseries", params)  # 22 of 24 hours cached: partial
    assert partial.status == 200 and partial.headers["X-Cache-Status"] == "PARTIAL"
    assert partial.headers["Warning"].startswith("199")
    failed = await svc.get("/api/timeseries", {**params, "partial": "false"})
    assert failed.status == 502
    err = await failed.json()
    assert err["error"] == "origin_unavailable" and "Traceback" not in err["message"]
    assert failed.headers["Cache-Control"] == "no-store"


async def test_origin_timeout_is_504(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    svc = await start_service(
        aiohttp_client,
        sim,
        tmp_path,
        origin_max_attempts=1,
        origin_timeout_s=0.3,
        origin_read_timeout_s=0.2,
    )
    await svc.get("/api/points", {"site": "ses_falls_city"})  # confirms the token first
    sim.faults.configure(hang_s=2.0, path_contains=PAGINATED)
    sim.faults.script("hang")
    resp = await svc.get("/api/timeseries", query(svc.points(1), NOW_MS - DAY, NOW_MS))
    assert resp.status == 504
    assert (await resp.json())["error"] == "origin_timeout"


async def test_identical_concurrent_misses_share_one_computation(svc: Service) -> None:
    params = query(svc.points(3), NOW_MS - 40 * DAY, NOW_MS - 40 * DAY + DAY // 2)
    await svc.get("/api/points", {"site": "ses_falls_city"})
    svc.sim.log.clear()
    svc.sim.faults.configure(latency_s=0.1, path_contains=PAGINATED)
    answers = await asyncio.gather(*(svc.get("/api/timeseries", params) for _ in range(5)))
    bodies = {await a.read() for a in answers}
    assert len(bodies) == 1
    assert origin_fetches(svc) == 3  # one per point, shared by the five requests
