"""Large `/api/aggregations` answers streamed point by point (`wire.aggregation_pieces`):
the same bytes as the whole answer (JSON, MessagePack, CSV; Arrow the same table), HEAD
sends headers only, and a failure after the headers aborts the connection."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from acechart.query import Query
from acechart.result import Provenance, Result, Series
from acechart.server.stream import send_stream
from acechart.wire import Representation, aggregation_pieces
from tests.arrow_support import same_table
from tests.conftest import NOW_MS, SITE, TOKEN, Sim
from tests.server_helpers import DAY, ClientFactory, Service, query, start_service

REPRESENTATIONS = [
    ("json", "rows"),
    ("msgpack", "rows"),
    ("msgpack", "columns"),
    ("csv", "rows"),
    ("arrow", "series"),
    ("arrow", "wide"),
]
#: The seed's rows, chosen statistics (raw-sample ones included), local-time buckets.
SHAPES: list[dict[str, Any]] = [
    {"interval": "15min"},
    {"interval": "1hr", "stat": "delta,twa,on_time,count"},
    {"interval": "1day", "tz": "America/Chicago", "stat": "max,first"},
]


async def test_a_streamed_wide_timeseries_answer_is_the_whole_table(
    pair: tuple[Service, Service],
) -> None:
    """Arrow's `wide` table streams in record batches of row ranges on both routes."""
    streaming, whole = pair
    params = query(streaming.points(3), NOW_MS - 12 * DAY, NOW_MS - 10 * DAY)
    params.update(format="arrow", layout="wide")
    streamed = await streaming.get("/api/timeseries", params)
    assert streamed.status == 200 and streamed.headers.get("Transfer-Encoding") == "chunked"
    plain = await whole.get("/api/timeseries", params)
    assert "Content-Length" in plain.headers
    same_table(await streamed.read(), await plain.read(), nonempty=True)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
@pytest.mark.parametrize(("fmt", "layout"), REPRESENTATIONS)
async def test_a_streamed_aggregation_answer_is_the_whole_answer(
    pair: tuple[Service, Service], fmt: str, layout: str, shape: dict[str, Any]
) -> None:
    streaming, whole = pair
    params = query(streaming.points(3), NOW_MS - 12 * DAY, NOW_MS - 8 * DAY, **shape)
    params.update(format=fmt, layout=layout)
    streamed = await streaming.get("/api/aggregations", params)
    assert streamed.status == 200, await streamed.text()
    assert streamed.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in streamed.headers and "ETag" not in streamed.headers
    plain = await whole.get("/api/aggregations", params)
    assert plain.status == 200 and "Content-Length" in plain.headers and "ETag" in plain.headers
    got, want = await streamed.read(), await plain.read()
    assert streamed.headers["X-Data-Samples"] == plain.headers["X-Data-Samples"]
    assert int(streamed.headers["X-Data-Samples"]) >= 3 * 4
    if fmt == "arrow":
        same_table(got, want, nonempty=True)
    else:
        assert got == want
    again = await streaming.get("/api/aggregations", params)
    assert again.headers["X-Cache-Source"] != "EDGE"  # never kept in the edge cache
    assert await again.read() == got


async def test_the_threshold_counts_statistics_not_buckets(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    """4 days of 1hr buckets for 2 points: 192 buckets, 1,536 statistics in the seed's
    rows (eight each), 192 with one chosen statistic."""
    svc = await start_service(aiohttp_client, sim, tmp_path, stream_min_samples=1000)
    params = query(svc.points(2), NOW_MS - 12 * DAY, NOW_MS - 8 * DAY, interval="1hr")
    full = await svc.get("/api/aggregations", params)
    assert int(full.headers["X-Data-Samples"]) == 192
    assert full.headers.get("Transfer-Encoding") == "chunked"
    one = await svc.get("/api/aggregations", {**params, "stat": "max"})
    assert one.status == 200 and "Content-Length" in one.headers
    assert (await one.json())["metadata"]["stat"] == ["max"]


async def test_head_of_a_streamed_aggregation_answer_sends_headers_only(
    pair: tuple[Service, Service],
) -> None:
    streaming, _ = pair
    params = query(streaming.points(2), NOW_MS - 12 * DAY, NOW_MS - 10 * DAY, interval="15min")
    sent = {"X-ACE-Token": TOKEN}
    head = await streaming.client.head("/api/aggregations", params=params, headers=sent)
    assert head.status == 200 and await head.read() == b""
    assert head.headers["Content-Type"].startswith("application/json")
    assert "ETag" not in head.headers  # the streamed path: no tag of bytes not yet made
    after = await streaming.get("/api/aggregations", params)
    assert after.status == 200 and (await after.json())["series"][0]["aggregations"]


async def test_concurrent_streamed_aggregation_requests_each_get_the_whole_answer(
    pair: tuple[Service, Service],
) -> None:
    streaming, whole = pair
    params = query(streaming.points(3), NOW_MS - 12 * DAY, NOW_MS - 10 * DAY, interval="15min")
    want = await (await whole.get("/api/aggregations", params)).read()
    responses = await asyncio.gather(
        *(streaming.get("/api/aggregations", params) for _ in range(3))
    )
    assert all(r.headers.get("Transfer-Encoding") == "chunked" for r in responses)
    assert [await r.read() for r in responses] == [want] * 3


async def test_a_failure_mid_stream_aborts_the_aggregation_answer(
    aiohttp_client: ClientFactory,
) -> None:
    """The second point's columns disagree in length, which the Rust core refuses when
    its piece is encoded, after the first point went out: the client sees a broken body."""
    n = 50_000
    ts = np.arange(n, dtype=np.int64) * 60_000
    good: dict[str, Any] = {
        "ts": ts,
        "count": np.ones(n, np.int64),
        **{k: np.zeros(n) for k in ("sum", "min", "max", "avg", "stddev", "m2", "first", "last")},
    }
    bad = {**good, "max": np.zeros(n - 1)}
    q = Query(SITE, ("a", "b"), 0, n * 60_000, interval="1min")
    series = [Series("a", ts, np.zeros(n), good), Series("b", ts, np.zeros(n), bad)]

    async def handle(request: web.Request) -> web.StreamResponse:
        result = Result(q, list(series), Provenance())
        rep = Representation(request.query["format"], "rows")  # type: ignore[arg-type]
        pieces = aggregation_pieces(result, rep)
        return await send_stream(request, {"Content-Type": rep.content_type}, pieces)

    app = web.Application()
    app.router.add_get("/big", handle)
    client = await aiohttp_client(app)
    for fmt in ("json", "msgpack", "csv"):
        response = await client.get("/big", params={"format": fmt})
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
