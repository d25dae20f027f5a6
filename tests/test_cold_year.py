"""A cold year in one request: classified by estimated origin time, not by sample count.

Against the realistic simulator (the real API's behaviour), over a real service
and SQLite file: one point's year at 1day is fetched in the request (it was a
413), equals what the notebook API fetches, and teaches the throughput record;
fifty points' year is still too large, and the 413 names a range and a point
count that the service then answers synchronously.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from acechart.client import AsyncClient
from acechart.server.keys import RUNTIME
from acechart.times import parse_iso_ms
from tests.conftest import NOW_MS, SITE, TOKEN, Sim, SimFactory, origin_settings
from tests.server_helpers import DAY, ClientFactory, Service, query, start_service

START, END = NOW_MS - 365 * DAY, NOW_MS


@pytest.fixture
async def real(make_simulator: SimFactory) -> Sim:
    return await make_simulator()


async def test_a_cold_year_of_one_point_at_1day_is_answered_synchronously(
    aiohttp_client: ClientFactory, real: Sim, tmp_path: Path
) -> None:
    svc: Service = await start_service(aiohttp_client, real, tmp_path)
    point = svc.points(1)[0]
    fetcher = svc.app[RUNTIME].engine.fetcher
    assert fetcher.throughput.snapshot() == {}  # nothing measured: the seed decides

    resp = await svc.get("/api/timeseries", query([point], START, END, interval="1day"))
    assert resp.status == 200, await resp.text()
    assert resp.headers["X-Cache-Status"] == "MISS"
    body = await resp.json()
    data = np.array(body["series"][0]["data"], dtype=np.float64)
    assert len(data) == 365
    measured = fetcher.throughput.snapshot()
    assert measured["per_point"].observations >= 1  # the fetch was timed
    metrics = await (await svc.get("/metrics", token=None)).text()
    shown = {
        (sample.name, sample.labels.get("strategy")): sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name.startswith(("acechart_origin_throughput", "acechart_origin_round"))
    }
    assert shown["acechart_origin_throughput_samples_per_second", "per_point"] == (
        pytest.approx(measured["per_point"].samples_per_s)
    )
    assert shown["acechart_origin_round_seconds", "per_point"] == pytest.approx(
        measured["per_point"].round_s
    )

    # The notebook API over its own cache fetches the same year: the same daily averages.
    client = await AsyncClient.open(
        TOKEN, origin_settings(real.url, data_dir=str(tmp_path / "nb")), progress=False
    )
    client.runtime.engine.clock = lambda: NOW_MS
    try:
        result = await client.query(SITE, point, START, END, interval="1day", tz="UTC")
    finally:
        await client.close()
    (series,) = result.series
    np.testing.assert_array_equal(data[:, 0], series.ts)
    np.testing.assert_allclose(data[:, 1], series.values, rtol=1e-12)

    again = await svc.get("/api/timeseries", query([point], START, END, interval="1day"))
    assert again.status == 200 and again.headers["X-Cache-Status"] == "HIT"


async def test_a_cold_year_of_fifty_points_is_413_naming_what_fits(
    aiohttp_client: ClientFactory, real: Sim, tmp_path: Path
) -> None:
    svc = await start_service(aiohttp_client, real, tmp_path)
    points = svc.points(50)
    resp = await svc.get("/api/timeseries", query(points, START, END, interval="1day"))
    assert resp.status == 413
    body = await resp.json()
    assert body["estimatedSeconds"] > body["budgetSeconds"] == 10.0
    assert real.log.matching("/timeseries") == []  # refused before fetching
    suggested = body["suggestedRange"]
    assert suggested["end"] == "2025-01-01T00:00:00Z"
    days = (END - parse_iso_ms(suggested["start"])) / DAY
    assert 1 <= days < 365 and days == int(days)
    assert 1 <= body["suggestedPoints"] < 50
    assert any(f"{int(days)} days at a time" in s for s in body["suggestions"])

    # What the 413 named is answered in the request.
    ranged = await svc.get(
        "/api/timeseries", query(points, parse_iso_ms(suggested["start"]), END, interval="1day")
    )
    assert ranged.status == 200
    fewer = await svc.get(
        "/api/timeseries", query(points[: body["suggestedPoints"]], START, END, interval="1day")
    )
    assert fewer.status == 200
