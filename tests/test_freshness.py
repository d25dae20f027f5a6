"""Freshness on request, and an edge TTL no longer than the points' own cadence.

A real service over the simulator: a chart of the last hour is cached at the
edge for at most its fastest point's cadence; `Cache-Control: no-cache` or
`max-age=0` skips the edge and refetches the fresh edge from the origin (and
only it: the sealed part comes from the block store).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from acechart.server.pipeline import wants_fresh
from acechart.times import parse_iso_ms
from tests.conftest import NOW_MS, Sim
from tests.server_helpers import DAY, HOUR, ClientFactory, Service, edge_clock, query, start_service

HORIZON_MS = 2 * HOUR


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path) -> Service:
    return await start_service(aiohttp_client, sim, tmp_path)


def origin_starts(svc: Service) -> list[int]:
    return [parse_iso_ms(r.params["start_time"]) for r in svc.sim.log.matching("/timeseries")]


def max_age(resp: object) -> int:
    header = resp.headers["Cache-Control"]  # type: ignore[attr-defined]
    return int(header.split("max-age=")[1].split(",")[0])


@pytest.mark.parametrize(
    ("header", "fresh"),
    [
        ("no-cache", True),
        ("max-age=0", True),
        ('Max-Age="0"', True),
        ("private, no-cache", True),
        ("max-age=60", False),
        ("no-store", False),
        ("", False),
        ("max-age=00x", False),
    ],
)
def test_which_requests_ask_for_freshness(header: str, fresh: bool) -> None:
    assert wants_fresh(header) is fresh


async def test_no_cache_skips_the_edge_and_refetches_the_fresh_edge(svc: Service) -> None:
    clock = edge_clock(svc)
    point = svc.points(1, cadence_s=30)[0]
    q = query([point], NOW_MS - 6 * HOUR, NOW_MS)
    first = await svc.get("/api/timeseries", q)
    assert first.status == 200
    assert max_age(first) == 30  # the point's cadence, not the realtime tier's 5 minutes
    body = await first.json()

    svc.sim.log.clear()
    hit = await svc.get("/api/timeseries", q)
    assert hit.headers["X-Cache-Status"] == "HIT" and hit.headers["X-Cache-Source"] == "EDGE"
    assert svc.sim.log.matching("/timeseries") == []

    for header in ("no-cache", "max-age=0"):
        svc.sim.log.clear()
        fresh = await svc.get("/api/timeseries", q, headers={"Cache-Control": header})
        assert fresh.status == 200
        assert fresh.headers["X-Cache-Source"] == "ORIGIN"
        assert fresh.headers["X-Cache-Status"] == "PARTIAL"  # sealed part from the blocks
        starts = origin_starts(svc)
        assert starts, "the fresh edge went to the origin"
        assert min(starts) >= NOW_MS - HORIZON_MS  # ...and only the fresh edge
        assert await fresh.json() == body

    # Without asking, the copy is fresh for 30 s only.
    clock.advance(29)
    assert (await svc.get("/api/timeseries", q)).headers["X-Cache-Status"] == "HIT"
    clock.advance(2)
    assert (await svc.get("/api/timeseries", q)).headers["X-Cache-Status"] != "HIT"


async def test_a_sealed_range_keeps_its_tier_ttl_and_no_cache_reads_the_blocks(
    svc: Service,
) -> None:
    point = svc.points(1, cadence_s=30)[0]
    q = query([point], NOW_MS - 20 * DAY, NOW_MS - 19 * DAY)
    first = await svc.get("/api/timeseries", q)
    assert max_age(first) == 3600  # historical: an hour, whatever the cadence
    svc.sim.log.clear()
    again = await svc.get("/api/timeseries", q, headers={"Cache-Control": "no-cache"})
    assert again.status == 200
    assert again.headers["X-Cache-Status"] == "HIT" and again.headers["X-Cache-Source"] == "R2"
    assert svc.sim.log.matching("/timeseries") == []  # sealed: nothing to refetch
