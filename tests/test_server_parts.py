"""The service's pure parts, without a server: negotiation, the edge cache's bounds,
token buckets, request classes and point-name derivation; and the demo end to end."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from acechart.cache import intervals as iv
from acechart.cache.catalog import record_from_origin
from acechart.engine import FetchEstimate, OriginThroughput, Plan
from acechart.errors import BadRequest, RateLimited
from acechart.query import Query
from acechart.server.classify import classify
from acechart.server.edge_cache import EdgeCache, Entry, Freshness
from acechart.server.headers import choose_coding
from acechart.server.ratelimit import RateLimiter
from acechart.settings import Settings
from acechart.wire import negotiate
from tests.server_helpers import Clock

DAY = 86_400_000


@pytest.mark.parametrize(
    ("params", "accept", "want"),
    [
        ({}, "", ("json", "rows")),
        ({}, "*/*", ("json", "rows")),
        ({"format": "binary"}, "", ("msgpack", "rows")),
        ({"format": "MSGPACK", "layout": "columns"}, "", ("msgpack", "columns")),
        ({"format": "csv"}, "application/x-msgpack", ("msgpack", "rows")),
        ({"format": "json"}, "application/json, application/x-msgpack;q=0.5", ("msgpack", "rows")),
        ({}, "application/x-msgpack;q=0", ("json", "rows")),
        ({}, "text/csv", ("csv", "rows")),
        ({}, "text/csv;q=0.5, application/json", ("json", "rows")),
        ({"format": "arrow"}, "", ("arrow", "series")),
        ({"format": "arrow", "layout": "rows"}, "", ("arrow", "series")),
        ({"layout": "WIDE"}, "application/vnd.apache.arrow.stream", ("arrow", "wide")),
        ({"format": "arrow"}, "application/x-msgpack", ("arrow", "series")),
        ({}, "application/vnd.apache.parquet", ("json", "rows")),
    ],
)
def test_representation(params: dict[str, str], accept: str, want: tuple[str, str]) -> None:
    rep = negotiate(params, accept)
    assert (rep.format, rep.layout) == want


def test_representation_errors_name_the_parameter() -> None:
    with pytest.raises(BadRequest) as info:
        negotiate({"format": "xml"}, "")
    assert info.value.parameter == "format"
    with pytest.raises(BadRequest) as info:
        negotiate({"layout": "columns"}, "application/json")
    assert info.value.parameter == "layout"
    for params in ({"format": "arrow", "layout": "columns"}, {"format": "csv", "layout": "wide"}):
        with pytest.raises(BadRequest) as info:
            negotiate(params, "")
        assert info.value.parameter == "layout"
    with pytest.raises(BadRequest, match="job results") as info:
        negotiate({"format": "parquet"}, "")
    assert info.value.parameter == "format"


@pytest.mark.parametrize(
    ("header", "want"),
    [
        ("", None),
        ("identity", None),
        ("gzip, deflate", "gzip"),
        ("gzip, deflate, br", "br"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("br;q=0.9, gzip", "gzip"),
        ("*;q=0.1, gzip;q=0", "zstd"),
        ("gzip;q=bogus, br", "br"),
    ],
)
def test_content_coding(header: str, want: str | None) -> None:
    assert choose_coding(header) == want


def entry(size: int, max_age: int = 10) -> Entry:
    return Entry(b"x" * size, "application/json", 'W/"e"', 1, max_age, 20.0, 100.0)


def test_edge_cache_is_bounded_in_bytes_and_lru() -> None:
    clock = Clock()
    cache = EdgeCache(10_000, clock=clock)
    for i in range(5):
        assert cache.store(i, entry(1400))
    assert cache.lookup(0) is not None  # 0 is now the most recently used
    assert cache.store(5, entry(1400))
    assert cache.store(6, entry(1400))
    assert cache.size_bytes <= 10_000
    assert cache.lookup(1) is None and cache.lookup(0) is not None
    assert not cache.store("huge", entry(3000))  # over a quarter of the budget
    e = entry(1000)
    cache.store("v", e)
    cache.add_variant("v", e, "gzip", b"z" * 100)
    assert cache.lookup("v") is not None and e.variants == {"gzip": b"z" * 100}
    cache.add_variant("v", entry(1), "br", b"other entry")  # not the cached one: ignored
    assert "br" not in e.variants
    cache.clear()
    assert cache.size_bytes == 0 and len(cache) == 0


def test_edge_cache_freshness_windows() -> None:
    clock = Clock()
    cache = EdgeCache(1 << 20, clock=clock)
    cache.store("k", entry(10, max_age=10))  # stale 20 s, error 100 s
    seen = []
    for t in (5, 15, 35, 105, 111):
        clock.now = 1000 + t
        hit = cache.lookup("k")
        seen.append(None if hit is None else hit.freshness)
    assert seen == [
        Freshness.FRESH,
        Freshness.STALE,
        Freshness.ERROR_ONLY,
        Freshness.ERROR_ONLY,
        None,
    ]
    assert len(cache) == 0


def test_token_bucket_refills_continuously() -> None:
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)
    for _ in range(60):
        limiter.check("caller", "timeseries")
    with pytest.raises(RateLimited) as info:
        limiter.check("caller", "timeseries")
    assert info.value.retry_after == pytest.approx(1.0)
    limiter.check("caller", "points")  # another endpoint has its own bucket
    clock.advance(1.0)
    limiter.check("caller", "timeseries")
    with pytest.raises(RateLimited):
        limiter.check("caller", "timeseries")
    RateLimiter(0, clock=clock).check("anyone", "timeseries")  # 0: no limit


def plan(points: int, gap_days: float) -> Plan:
    names = tuple(f"p{i}" for i in range(points))
    gap: list[iv.Interval] = [(0, int(gap_days * DAY))] if gap_days else []
    q = Query("site", names, 0, max(1, int(gap_days * DAY)))
    return Plan(q, {n: list(gap) for n in names}, 0)


@pytest.mark.parametrize(
    ("points", "days", "seconds", "size"),
    [
        (50, 0, 0.0, "cached"),
        (1, 0.5, 0.5, "small"),
        (50, 7, 6.0, "medium"),
        (1, 365, 6.0, "medium"),  # a cold year of one point fits the 10 s budget
        (1, 365, 10.5, "large"),  # ...unless the origin is measured slower
        (50, 365, 300.0, "large"),
    ],
)
def test_classification_on_the_estimated_time(
    points: int, days: float, seconds: float, size: str
) -> None:
    p = plan(points, days)
    samples = int(points * days * 1440)
    c = classify(p, FetchEstimate(seconds, samples, samples, 1), Settings.from_env({}))
    assert c.size == size
    assert c.estimated_samples == (samples if days else 0)
    assert c.estimated_s == seconds


def test_throughput_record_learns_the_origins_speed() -> None:
    t = OriginThroughput(100_000, 0.5, concurrency=8)
    assert t.rounds(9) == 2  # nine requests, eight at a time
    assert t.rounds(3, in_sequence=4) == 4  # three windows of four pages one after another
    # Seeded: 2 rounds of latency plus 500 k samples at 100 k/s.
    assert t.seconds("per_point", 500_000, t.rounds(9)) == pytest.approx(2 * 0.5 + 5.0)
    for _ in range(30):  # a fast origin: 500 k samples in 0.6 s, one round of requests
        t.observe("per_point", 0.6, 500_000, 1)
    fast = t.rate("per_point")
    assert fast.observations == 30 and fast.samples_per_s > 500_000
    for _ in range(30):  # small fetches that take 0.2 s each: latency, not download
        t.observe("per_point", 0.2, 100, 1)
    assert t.rate("per_point").round_s == pytest.approx(0.2, rel=0.05)
    assert t.rate("site_wide").observations == 0  # other strategies keep the seed
    assert t.seconds("site_wide", 100_000, 1) == pytest.approx(0.5 + 1.0)
    assert t.seconds("per_point", 0, 0) == 0.0


def test_point_names_from_the_catalogue() -> None:
    rec = record_from_origin(
        {
            "name": "ses/site/10.0.0.1/n4/Drivers/Net/VAV-707/VAV-707.points.Da_Temp",
            "marker_tags": ["temp"],
            "collect_interval": 60,
        }
    )
    assert (rec.equipment, rec.display_name) == ("VAV-707", "VAV-707 Da Temp")
    assert rec.marker_tags == ("temp",) and rec.collect_interval == 60
    plain = record_from_origin({"name": "site/AHU-2/Fan_Status", "kv_tags": {"unit": "%"}})
    assert (plain.equipment, plain.display_name, plain.unit) == ("AHU-2", "AHU-2 Fan Status", "%")
    tagged = record_from_origin(
        {"name": "x/y.points.z", "kv_tags": {"equip": "Boiler", "dis": "Boiler Supply"}}
    )
    assert (tagged.equipment, tagged.display_name) == ("Boiler", "Boiler Supply")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_demo_prints_a_working_curl_command() -> None:
    port, origin_port = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "acechart",
        "demo",
        "--port",
        str(port),
        "--origin-port",
        str(origin_port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("ACECHART_")},
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not any(line.startswith("  curl ") for line in lines):
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, "demo exited before printing its banner"
            lines.append(line.decode())
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}/#token=demo-token" in text
        curl = shlex.split(next(line for line in lines if line.startswith("  curl ")))
        header = curl[curl.index("-H") + 1]
        url = curl[-1]
        assert re.match(rf"http://127\.0\.0\.1:{port}/api/timeseries\?", url)
        name, _, value = header.partition(": ")
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers={name: value}) as resp,
        ):
            assert resp.status == 200
            body = await resp.json()
            assert body["metadata"]["aggregation"] == "1hr" and body["series"][0]["data"]
            async with session.get(f"http://127.0.0.1:{port}/") as page:
                assert '<div id="chart"' in await page.text()
    finally:
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 20) == 0


async def test_serve_logs_json_request_lines(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACECHART_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "acechart", "serve", "--port", str(port),
        "--origin", f"http://127.0.0.1:{free_port()}", "--data-dir", str(tmp_path),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        assert resp.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            async with session.get(
                f"http://127.0.0.1:{port}/readyz", headers={"X-Request-Id": "probe-1"}
            ) as resp:
                assert resp.status == 503  # nothing listens on the origin port
                assert (await resp.json())["checks"]["origin"].startswith("error")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    probe = next(line for line in lines if line.get("requestId") == "probe-1")
    assert probe["type"] == "request" and probe["level"] == "info"
    assert probe["request"]["url"] == "/readyz" and probe["response"]["status"] == 503
    assert isinstance(probe["response"]["processingTime"], float)
