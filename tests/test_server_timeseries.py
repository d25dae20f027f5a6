"""GET /api/timeseries and /api/aggregations over a real service and simulator.

The reference is always the simulator's own data (`sim.data.expected`): what the
service answers, in every format and layout, must be exactly those samples.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import math
from pathlib import Path
from typing import Any

import aiohttp
import brotli
import msgpack
import numpy as np
import pytest
import zstandard

from acechart import _core
from acechart.server.keys import EDGE
from acechart.times import format_time
from tests.conftest import NOW_MS, SITE, Sim
from tests.server_helpers import DAY, HOUR, ClientFactory, Service, query, start_service

START = NOW_MS - 20 * DAY  # historical: sealed, cached for an hour at the edge
#: An origin assumed to send 10,000 samples a second and a 1 s request budget: 12 days of a
#: one-minute point (1.7 s) are large, 6 days (0.9 s) fit.
SLOW_ORIGIN = {
    "origin_estimate_samples_per_s": 10_000,
    "origin_estimate_round_s": 0.01,
    "request_budget_s": 1.0,
}


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path) -> Service:
    return await start_service(aiohttp_client, sim, tmp_path)


def expected(svc: Service, point: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    rows = svc.sim.data.expected(SITE, point, start, end - 1)
    return rows.t_ms, rows.value


def json_pairs(data: list[list[Any]]) -> tuple[np.ndarray, np.ndarray]:
    ts = np.array([d[0] for d in data], np.int64)
    values = np.array([math.nan if d[1] is None else d[1] for d in data], np.float64)
    return ts, values


async def test_json_is_the_seeds_shape_with_the_simulators_data(svc: Service) -> None:
    pts = svc.points(2) + svc.points(1, cadence_s=30)
    resp = await svc.get("/api/timeseries", query(pts, START, START + DAY))
    assert resp.status == 200
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert list(body) == ["metadata", "series"]
    assert body["metadata"] == {
        "siteId": SITE,
        "pointNames": pts,
        "startTime": "2024-12-12T00:00:00Z",
        "endTime": "2024-12-13T00:00:00Z",
        "aggregation": "raw",
        "totalSamples": sum(len(s["data"]) for s in body["series"]),
    }
    assert [s["name"] for s in body["series"]] == pts
    for s in body["series"]:
        assert list(s) == ["name", "data"]
        want = expected(svc, s["name"], START, START + DAY)
        got = json_pairs(s["data"])
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    h = resp.headers
    assert h["X-Cache-Status"] == "MISS" and h["X-Cache-Source"] == "ORIGIN"
    assert int(h["X-Data-Samples"]) == body["metadata"]["totalSamples"] > 0
    assert h["X-Processing-Time"].endswith("ms")
    assert h["Cache-Control"].startswith("private, max-age=3600, stale-while-revalidate=10800")
    assert h["Vary"] == "Accept, Accept-Encoding"
    assert h["ETag"].startswith('W/"') and h["X-Request-Id"]


async def test_repeated_points_and_names_with_slashes_and_dots(svc: Service) -> None:
    a, b, c = svc.points(3)
    assert "/" in a and "." in a
    params = [
        ("site", SITE),
        ("points", f"{a},{b}"),
        ("points", c),
        ("start", "2024-12-12"),
        ("end", "2024-12-12T06:00:00Z"),
    ]
    body = await (await svc.get("/api/timeseries", params)).json()
    assert body["metadata"]["pointNames"] == [a, b, c]


async def test_msgpack_rows_and_columns_decode_to_the_json_data(svc: Service) -> None:
    pts = svc.points(2) + svc.points(1, cadence_s=300)
    params = query(pts, START, START + 2 * DAY)
    as_json = await (await svc.get("/api/timeseries", params)).json()
    for how in ({"format": "msgpack"}, {"format": "binary"}):
        resp = await svc.get("/api/timeseries", {**params, **how})
        assert resp.content_type == "application/x-msgpack"
        assert msgpack.unpackb(await resp.read()) == as_json
    # Accept wins over format=
    resp = await svc.get(
        "/api/timeseries",
        {**params, "format": "csv"},
        headers={"Accept": "application/x-msgpack"},
    )
    assert resp.content_type == "application/x-msgpack"
    assert msgpack.unpackb(await resp.read()) == as_json

    resp = await svc.get("/api/timeseries", {**params, "format": "msgpack", "layout": "columns"})
    doc = msgpack.unpackb(await resp.read())
    assert doc["metadata"] == as_json["metadata"]
    for col, rows in zip(doc["series"], as_json["series"], strict=True):
        assert col["name"] == rows["name"]
        ts = np.frombuffer(col["t"], "<f8")
        values = np.frombuffer(col["v"], "<f8")
        want_ts, want_v = json_pairs(rows["data"])
        np.testing.assert_array_equal(ts.astype(np.int64), want_ts)
        np.testing.assert_array_equal(values, want_v)


async def test_csv_export(svc: Service) -> None:
    pts = svc.points(2)
    resp = await svc.get("/api/timeseries", query(pts, START, START + 6 * HOUR, format="csv"))
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert resp.headers["Content-Disposition"].startswith("attachment; filename=")
    lines = (await resp.text()).splitlines()
    assert lines[0] == "time,point,value"
    assert len(lines) - 1 == int(resp.headers["X-Data-Samples"])
    assert lines[1].startswith("2024-12-12T00:") and pts[0] in lines[1]


async def test_csv_aggregations_append_first_last_and_partial(svc: Service) -> None:
    import pandas as pd
    import polars as pl

    pts = svc.points(2)
    zone = "America/Chicago"  # the last local day is still running at the engine's now
    params = query(pts, NOW_MS - 3 * DAY, NOW_MS, interval="1day", tz=zone)
    doc = await (await svc.get("/api/aggregations", params)).json()
    resp = await svc.get("/api/aggregations", {**params, "format": "csv"})
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    text = await resp.text()
    lines = text.splitlines()
    # The columns it always had come first, in place: a positional reader keeps working.
    assert lines[0] == "time,point,count,sum,min,max,avg,stddev,first,last,partial"
    flat = [(s["name"], r) for s in doc["series"] for r in s["aggregations"]]
    assert len(lines) - 1 == len(flat)
    for line, (name, r) in zip(lines[1:], flat, strict=True):
        fields = line.split(",")
        assert fields[1] == name and int(fields[2]) == r["count"]
        assert [float(f) for f in fields[3:10]] == [
            r[k] for k in ("sum", "min", "max", "avg", "stddev", "first", "last")
        ]
        assert fields[10] == ("true" if r.get("partial") else "false")
    frame = pd.read_csv(io.StringIO(text))
    assert frame["partial"].dtype == bool and frame["partial"].sum() == len(pts)
    assert frame.groupby("point")["partial"].last().all()
    assert frame["first"].tolist() == [r["first"] for _, r in flat]
    polars = pl.read_csv(io.StringIO(text))
    assert polars["partial"].dtype == pl.Boolean and polars["last"].to_list() == [
        r["last"] for _, r in flat
    ]
    # stat= names the columns, in order; count stays an integer.
    chosen = await svc.get("/api/aggregations", {**params, "format": "csv", "stat": "last,count"})
    chosen_lines = (await chosen.text()).splitlines()
    assert chosen_lines[0] == "time,point,last,count,partial"
    assert [line.split(",")[2:] for line in chosen_lines[1:]] == [
        [repr(r["last"]), str(r["count"]), "true" if r.get("partial") else "false"] for _, r in flat
    ]


@pytest.mark.parametrize(("method", "limit"), [("minmaxlttb", 300), ("m4", 302)])
async def test_downsampled_answers_keep_first_and_last(
    svc: Service, method: str, limit: int
) -> None:
    pts = svc.points(1, cadence_s=30)
    params = query(pts, START, START + 3 * DAY)
    full = (await (await svc.get("/api/timeseries", params)).json())["series"][0]["data"]
    resp = await svc.get(
        "/api/timeseries", {**params, "maxPoints": str(limit), "downsample": method}
    )
    body = await resp.json()
    thin = body["series"][0]["data"]
    assert len(full) > 10 * limit
    assert 0 < len(thin) <= limit
    assert thin[0] == full[0] and thin[-1] == full[-1]
    assert {d[0] for d in thin} <= {d[0] for d in full}
    assert body["metadata"]["downsample"] == method and body["metadata"]["maxPoints"] == limit


async def test_etag_and_304(svc: Service) -> None:
    params = query(svc.points(1), START, START + DAY)
    first = await svc.get("/api/timeseries", params)
    etag = first.headers["ETag"]
    for candidate in (etag, etag.removeprefix("W/"), f'"nope", {etag}', "*"):
        resp = await svc.get("/api/timeseries", params, headers={"If-None-Match": candidate})
        assert resp.status == 304, candidate
        assert await resp.read() == b""
        assert resp.headers["ETag"] == etag and "Cache-Control" in resp.headers
    other = await svc.get("/api/timeseries", params, headers={"If-None-Match": '"other"'})
    assert other.status == 200
    # A cold computation of the same answer is byte-identical, so its ETag matches too.
    svc.app[EDGE].clear()
    again = await svc.get("/api/timeseries", params, headers={"If-None-Match": etag})
    assert again.status == 304 and again.headers["X-Cache-Source"] == "R2"


async def test_compression_by_accept_encoding(svc: Service) -> None:
    params = query(svc.points(3), START, START + DAY)
    plain = await (await svc.get("/api/timeseries", params, headers={"Accept-Encoding": ""})).read()
    decoders = {
        "gzip": gzip.decompress,
        "br": brotli.decompress,
        "zstd": lambda b: zstandard.ZstdDecompressor().decompress(b),
    }
    async with aiohttp.ClientSession(auto_decompress=False) as raw:
        url = svc.client.make_url("/api/timeseries")
        for accept, coding in [
            ("gzip", "gzip"),
            ("br", "br"),
            ("zstd", "zstd"),
            ("gzip, br, zstd", "zstd"),
            ("gzip;q=1, br;q=0.5", "gzip"),
            ("*", "zstd"),
            ("br;q=0, zstd;q=0, *", "gzip"),
        ]:
            for _ in range(2):  # computed, then from the entry's stored variant
                async with raw.get(
                    url,
                    params=params,
                    headers={"X-ACE-Token": "demo-token", "Accept-Encoding": accept},
                ) as resp:
                    assert resp.headers.get("Content-Encoding") == coding, accept
                    body = await resp.read()
                    assert len(body) < len(plain) / 3
                    assert decoders[coding](body) == plain
        # Small bodies are not worth it.
        tiny = query(svc.points(1), START, START + 60_000)
        async with raw.get(
            url, params=tiny, headers={"X-ACE-Token": "demo-token", "Accept-Encoding": "gzip"}
        ) as resp:
            assert "Content-Encoding" not in resp.headers
            json.loads(await resp.read())


async def test_interval_queries_and_aggregations(svc: Service) -> None:
    pts = svc.points(2)
    start, end = START, START + 2 * DAY
    ts_body = await (
        await svc.get("/api/timeseries", query(pts, start, end, interval="1hr"))
    ).json()
    assert ts_body["metadata"]["aggregation"] == "1hr"
    resp = await svc.get("/api/aggregations", query(pts, start, end, interval="1hr"))
    assert resp.status == 200
    body = await resp.json()
    assert body["metadata"]["interval"] == "1hr" and "pointName" not in body["metadata"]
    assert body["metadata"]["dataPoints"] == 2 * 48
    for s, ts_series in zip(body["series"], ts_body["series"], strict=True):
        ref = _core.aggregate(*expected(svc, s["name"], start, end), HOUR)
        rows = s["aggregations"]
        seed = ["timestamp", "avg", "min", "max", "sum", "count", "stddev"]
        assert list(rows[0]) == [*seed, "first", "last"]
        assert [r["timestamp"] for r in rows] == ref["ts"].tolist()
        assert [r["first"] for r in rows] == ref["first"].tolist()
        assert [r["last"] for r in rows] == ref["last"].tolist()
        assert [r["count"] for r in rows] == ref["count"].tolist()
        np.testing.assert_allclose([r["avg"] for r in rows], ref["avg"], rtol=1e-12)
        np.testing.assert_allclose([r["stddev"] for r in rows], ref["stddev"], rtol=1e-9)
        assert [d[1] for d in ts_series["data"]] == [r["avg"] for r in rows]

    one = await (
        await svc.get("/api/aggregations", query(pts[:1], start, end, interval="1day"))
    ).json()
    assert one["metadata"]["pointName"] == pts[0] and one["metadata"]["dataPoints"] == 2
    packed = await svc.get(
        "/api/aggregations", query(pts[:1], start, end, interval="1day", format="msgpack")
    )
    assert msgpack.unpackb(await packed.read()) == one
    default = await (await svc.get("/api/aggregations", query(pts[:1], start, end))).json()
    assert default["metadata"]["interval"] == "1hr"
    raw = await svc.get("/api/aggregations", query(pts[:1], start, end, interval="raw"))
    assert raw.status == 400 and (await raw.json())["parameter"] == "interval"


async def test_large_uncached_requests_get_413_until_cached(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    svc = await start_service(aiohttp_client, sim, tmp_path, **SLOW_ORIGIN)
    pts = svc.points(1)
    start, end = NOW_MS - 60 * DAY, NOW_MS - 48 * DAY  # 12 days, ~17k samples at 1/min
    resp = await svc.get("/api/timeseries", query(pts, start, end))
    assert resp.status == 413
    body = await resp.json()
    assert body["error"] == "request_too_large"
    assert body["estimatedSamples"] == 12 * 1440
    assert body["estimatedSeconds"] == pytest.approx(12 * 1440 / 10_000 + 0.01, rel=0.01)
    assert body["budgetSeconds"] == 1.0
    assert any("async=true" in s for s in body["suggestions"])
    assert sim.log.matching("/timeseries") == []  # refused before fetching
    # The suggestion names a concrete range: the most recent 6 days (8.6 k samples, 0.87 s).
    assert body["suggestedRange"] == {"start": format_time(end - 6 * DAY), "end": format_time(end)}
    assert any(f"start={format_time(end - 6 * DAY)}" in s for s in body["suggestions"])
    fits = await svc.get("/api/timeseries", query(pts, end - 6 * DAY, end))
    assert fits.status == 200

    for piece_start in (start, start + 6 * DAY):  # two medium pieces warm the cache...
        piece = await svc.get("/api/timeseries", query(pts, piece_start, piece_start + 6 * DAY))
        assert piece.status == 200
    whole = await svc.get("/api/timeseries", query(pts, start, end))  # ...then it is cached
    assert whole.status == 200 and whole.headers["X-Cache-Status"] == "HIT"


async def test_large_requests_opting_in_become_jobs(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    svc = await start_service(aiohttp_client, sim, tmp_path, **SLOW_ORIGIN)
    pts = svc.points(1)
    start, end = NOW_MS - 60 * DAY, NOW_MS - 48 * DAY
    ids = set()
    for extra, headers in (({"async": "true"}, {}), ({}, {"Prefer": "respond-async"})):
        resp = await svc.get("/api/timeseries", query(pts, start, end, **extra), headers=headers)
        assert resp.status == 202
        body = await resp.json()
        assert body["status"] in {"queued", "processing"}
        assert body["statusUrl"] == f"/api/jobs/{body['jobId']}"
        assert resp.headers["Location"] == body["statusUrl"]
        assert {"estimatedDuration", "message"} <= set(body)
        ids.add(body["jobId"])
    assert len(ids) == 1  # the identical request joined the live job
    status = await svc.get(f"/api/jobs/{ids.pop()}")
    assert status.status == 200
    assert (await status.json())["status"] in {"queued", "processing", "completed"}


async def test_a_large_aggregation_suggests_the_timeseries_job_that_makes_it_fit(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    """Jobs take timeseries queries: a too-large aggregation says so, even with
    async=true, and the job it names caches what the aggregation then reads."""
    svc = await start_service(aiohttp_client, sim, tmp_path, **SLOW_ORIGIN)
    pts = svc.points(1)
    start, end = NOW_MS - 60 * DAY, NOW_MS - 48 * DAY
    asked = query(pts, start, end, interval="1day", stat="avg,max")
    for extra in ({}, {"async": "true"}):
        refused = await svc.get("/api/aggregations", {**asked, **extra})
        assert refused.status == 413
        suggestions = (await refused.json())["suggestions"]
        assert not any(s.startswith("Use async mode") for s in suggestions)
        assert any("/api/timeseries" in s and "async=true" in s for s in suggestions)
    submitted = await svc.get("/api/timeseries", query(pts, start, end, **{"async": "true"}))
    assert submitted.status == 202
    status_url = (await submitted.json())["statusUrl"]
    for _ in range(400):
        job = await (await svc.get(status_url)).json()
        if job["status"] in {"completed", "failed"}:
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "completed", job
    answered = await svc.get("/api/aggregations", asked)
    assert answered.status == 200
    rows = (await answered.json())["series"][0]["aggregations"]
    assert len(rows) == 12 and all(set(r) == {"timestamp", "avg", "max"} for r in rows)
