"""Partial answers: a mostly cached query survives an origin that fails.

A real service over the realistic simulator with its fault injection: every
`/timeseries` request of the origin answers 500 or 503. A chart that moved by
a minute past what is cached is answered at once with what is cached (200,
`X-Cache-Status: PARTIAL`, a Warning, `metadata.missing`), in every format;
`partial=false`, a mostly uncached range or a share setting above 1 get the
old error. Nothing of a partial answer is kept, so the next request after the
origin recovers is complete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from acechart.times import format_time
from tests.conftest import NOW_MS, SITE, Sim, SimFactory
from tests.server_helpers import DAY, HOUR, ClientFactory, Service, query, start_service

MINUTE = 60_000
END = NOW_MS - 3 * HOUR  # sealed: the cached day is in the block store for good
START = END - DAY


@pytest.fixture
async def real(make_simulator: SimFactory) -> Sim:
    return await make_simulator()


async def warm_service(
    aiohttp_client: ClientFactory, real: Sim, tmp_path: Path, **overrides: Any
) -> tuple[Service, list[str]]:
    """A service with a day of two points cached, and an origin that now fails."""
    settings: dict[str, Any] = {
        # The production backoff: five attempts would take about 2 s.
        "origin_retry_base_s": 0.25,
        "origin_retry_cap_s": 8.0,
        "partial_wait_s": 0.3,
        **overrides,
    }
    svc = await start_service(aiohttp_client, real, tmp_path, **settings)
    points = svc.points(2)
    warm = await svc.get("/api/timeseries", query(points, START, END))
    assert warm.status == 200
    real.faults.configure(error_rate=1.0, path_contains="/timeseries")
    real.log.clear()
    return svc, points


def failed_origin_requests(sim: Sim) -> int:
    return len([r for r in sim.log.matching("/timeseries") if r.status >= 500])


async def test_a_chart_moved_by_a_minute_is_answered_partially_and_fast(
    aiohttp_client: ClientFactory, real: Sim, tmp_path: Path
) -> None:
    svc, points = await warm_service(aiohttp_client, real, tmp_path)
    moved = query(points, START + MINUTE, END + MINUTE)
    resp = await svc.get("/api/timeseries", moved)
    # Answered before the origin client's five attempts were spent.
    assert 1 <= failed_origin_requests(real) < 5
    assert resp.status == 200
    assert resp.headers["X-Cache-Status"] == "PARTIAL"
    assert resp.headers["X-Cache-Source"] == "R2"
    assert resp.headers["Warning"].startswith('199 - "Partial answer')
    assert "max-age=0" in resp.headers["Cache-Control"]
    assert resp.headers["X-Data-Missing"] == f"{format_time(END)}/{format_time(END + MINUTE)}"
    body = await resp.json()
    assert body["metadata"]["missing"] == {p: [[END, END + MINUTE]] for p in points}
    for series in body["series"]:  # what is there is exactly the origin's data
        rows = real.data.expected(SITE, series["name"], START + MINUTE, END - 1)
        got = np.array([d[0] for d in series["data"]], np.int64)
        np.testing.assert_array_equal(got, rows.t_ms)

    # The origin recovers: the same request is complete, since nothing partial was kept.
    real.faults.configure(error_rate=0.0)
    whole = await svc.get("/api/timeseries", moved)
    assert whole.status == 200 and "Warning" not in whole.headers
    assert whole.headers["X-Cache-Status"] == "PARTIAL"  # cache and origin, complete
    complete = await whole.json()
    assert "missing" not in complete["metadata"]
    assert complete["metadata"]["totalSamples"] > body["metadata"]["totalSamples"]


async def test_every_format_carries_the_missing_ranges(
    aiohttp_client: ClientFactory, real: Sim, tmp_path: Path
) -> None:
    pa = pytest.importorskip("pyarrow")
    svc, points = await warm_service(aiohttp_client, real, tmp_path)
    moved = query(points, START + MINUTE, END + MINUTE)
    expected = {p: [[END, END + MINUTE]] for p in points}

    for layout in ("rows", "columns"):
        resp = await svc.get("/api/timeseries", {**moved, "format": "msgpack", "layout": layout})
        assert resp.status == 200 and resp.headers["X-Cache-Status"] == "PARTIAL"
        doc = msgpack.unpackb(await resp.read())
        assert doc["metadata"]["missing"] == expected

    arrow = await svc.get("/api/timeseries", {**moved, "format": "arrow"})
    assert arrow.status == 200
    schema = pa.ipc.open_stream(await arrow.read()).schema
    assert json.loads(schema.metadata[b"acechart:metadata"])["missing"] == expected

    csv = await svc.get("/api/timeseries", {**moved, "format": "csv"})
    assert csv.status == 200 and csv.headers["Warning"].startswith("199")
    assert csv.headers["X-Data-Missing"] == f"{format_time(END)}/{format_time(END + MINUTE)}"

    stats = await svc.get(
        "/api/aggregations", query(points, START + HOUR, END + HOUR, interval="1hr")
    )
    assert stats.status == 200 and stats.headers["X-Cache-Status"] == "PARTIAL"
    assert (await stats.json())["metadata"]["missing"] == {p: [[END, END + HOUR]] for p in points}


async def test_partial_false_a_cold_range_and_the_share_setting_refuse(
    aiohttp_client: ClientFactory, real: Sim, tmp_path: Path
) -> None:
    svc, points = await warm_service(aiohttp_client, real, tmp_path)
    refused = await svc.get(
        "/api/timeseries", query(points, START + MINUTE, END + MINUTE, partial="false")
    )
    assert refused.status == 502
    assert (await refused.json())["error"] == "origin_unavailable"
    assert failed_origin_requests(real) >= 5  # every attempt was made, as before

    # Ten percent of the range is too much to leave out.
    cold = await svc.get("/api/timeseries", query(points, START + DAY // 5, END + DAY // 5))
    assert cold.status == 502

    bad = await svc.get("/api/timeseries", query(points, START, END + MINUTE, partial="maybe"))
    assert bad.status == 400 and (await bad.json())["parameter"] == "partial"


async def test_a_share_above_one_never_answers_partially(
    aiohttp_client: ClientFactory, real: Sim, tmp_path: Path
) -> None:
    svc, points = await warm_service(aiohttp_client, real, tmp_path, partial_min_share=1.5)
    resp = await svc.get("/api/timeseries", query(points, START + MINUTE, END + MINUTE))
    assert resp.status == 502


async def test_openapi_documents_partial_answers(
    aiohttp_client: ClientFactory, real: Sim, tmp_path: Path
) -> None:
    svc = await start_service(aiohttp_client, real, tmp_path)
    doc = await (await svc.get("/api/openapi.json")).json()
    for path in ("/api/timeseries", "/api/aggregations"):
        get = doc["paths"][path]["get"]
        params = {p["name"]: p for p in get["parameters"]}
        assert params["partial"]["schema"] == {"type": "boolean", "default": True}
        assert "no-cache" in params["Cache-Control"]["description"]
        headers = get["responses"]["200"]["headers"]
        assert "199" in headers["Warning"]["description"]
        assert "X-Data-Missing" in headers
        assert "partial answer" in headers["X-Cache-Status"]["description"]
    schemas = doc["components"]["schemas"]
    for name in ("TimeseriesDocument", "AggregationsDocument"):
        assert "missing" in schemas[name]["properties"]["metadata"]["properties"]
    assert "partial" in schemas["QueryBody"]["properties"]


async def test_a_slow_origin_that_answers_is_waited_for(
    aiohttp_client: ClientFactory, real: Sim, tmp_path: Path
) -> None:
    svc, points = await warm_service(aiohttp_client, real, tmp_path)
    # Slower than partial_wait_s (0.3 s), but not failing: the answer is complete.
    real.faults.configure(error_rate=0.0, latency_s=0.6)
    resp = await svc.get("/api/timeseries", query(points, START + MINUTE, END + MINUTE))
    assert resp.status == 200 and "Warning" not in resp.headers
    assert "X-Data-Missing" not in resp.headers
    assert "missing" not in (await resp.json())["metadata"]
    assert real.log.matching("/timeseries", status=200)
