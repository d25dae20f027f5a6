"""Large synchronous answers streamed series by series: the same data as the whole body, in
every format and coding; small answers keep Content-Length, ETag and 304; a failure after
the headers went out aborts the connection instead of ending a truncated body."""

from __future__ import annotations

import asyncio
import functools
import gzip
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import brotli  # type: ignore[import-untyped]
import numpy as np
import pytest
import zstandard
from aiohttp import web

from acechart._core import encode_head, encode_part, encode_tail
from acechart.query import Query
from acechart.result import Provenance, Result, Series
from acechart.server.stream import send_stream
from acechart.settings import Settings
from acechart.wire import Representation, encode_timeseries, timeseries_pieces
from tests.arrow_support import arrow_table
from tests.conftest import NOW_MS, SITE, TOKEN, Sim
from tests.server_helpers import DAY, ClientFactory, Service, query, start_service

REPRESENTATIONS = [
    ("json", "rows"),
    ("msgpack", "rows"),
    ("msgpack", "columns"),
    ("csv", "rows"),
    ("arrow", "series"),
]


@pytest.mark.parametrize(("fmt", "layout"), REPRESENTATIONS)
async def test_a_streamed_answer_holds_the_same_data(
    pair: tuple[Service, Service], fmt: str, layout: str
) -> None:
    streaming, whole = pair
    params = query(streaming.points(3), NOW_MS - 12 * DAY, NOW_MS - 10 * DAY)
    params.update(format=fmt, layout=layout)
    streamed = await streaming.get("/api/timeseries", params)
    assert streamed.status == 200
    assert streamed.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in streamed.headers and "ETag" not in streamed.headers
    plain = await whole.get("/api/timeseries", params)
    assert plain.status == 200 and "Content-Length" in plain.headers and "ETag" in plain.headers
    got, want = await streamed.read(), await plain.read()
    assert streamed.headers["X-Data-Samples"] == plain.headers["X-Data-Samples"]
    assert int(streamed.headers["X-Data-Samples"]) > 1000
    if fmt == "arrow":
        a, b = arrow_table(got), arrow_table(want)
        assert a.schema.metadata == b.schema.metadata
        assert a.column("point").to_pylist() == b.column("point").to_pylist()
        assert a.select(["time", "value"]).equals(b.select(["time", "value"]))
    else:
        assert got == want
    # Never kept in the edge cache: asked again, it is computed again from the blocks.
    again = await streaming.get("/api/timeseries", params)
    assert again.headers["X-Cache-Source"] != "EDGE"
    assert await again.read() == got


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
async def test_a_streamed_answer_is_compressed_as_it_goes(
    pair: tuple[Service, Service], coding: str
) -> None:
    streaming, whole = pair
    params = query(streaming.points(2), NOW_MS - 12 * DAY, NOW_MS - 10 * DAY)
    want = await (await whole.get("/api/timeseries", params)).read()
    url = streaming.client.make_url("/api/timeseries")
    headers = {"X-ACE-Token": TOKEN, "Accept-Encoding": coding}
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(url, params=params, headers=headers) as r,
    ):
        assert r.status == 200 and r.headers["Content-Encoding"] == coding
        packed = await r.read()
    unpack = {
        "gzip": gzip.decompress,
        "br": brotli.decompress,
        "zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
    }[coding]
    assert len(packed) < len(want)
    assert unpack(packed) == want


async def test_small_answers_keep_their_length_etag_and_304(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    svc = await start_service(aiohttp_client, sim, tmp_path, stream_min_samples=50_000)
    params = query(svc.points(2), NOW_MS - 12 * DAY, NOW_MS - 11 * DAY)
    first = await svc.get("/api/timeseries", params, headers={"Accept-Encoding": "identity"})
    body = await first.read()
    assert int(first.headers["Content-Length"]) == len(body)
    etag = first.headers["ETag"]
    cached = await svc.get("/api/timeseries", params, headers={"If-None-Match": etag})
    assert cached.status == 304 and await cached.read() == b""
    # The same data past the threshold is streamed; If-None-Match does not apply to it.
    wide = query(svc.points(2), NOW_MS - 40 * DAY, NOW_MS - 11 * DAY)
    big = await svc.get("/api/timeseries", wide, headers={"If-None-Match": etag})
    assert big.status == 200 and big.headers.get("Transfer-Encoding") == "chunked"
    assert int(big.headers["X-Data-Samples"]) >= 50_000
    assert len(await big.read()) > len(body)


def _result(n_series: int, n: int) -> Result:
    q = Query(SITE, tuple(f"p{i}" for i in range(n_series)), 0, n * 60_000)
    rng = np.random.default_rng(n)
    series = [
        Series(f"p{i}", np.arange(n, dtype=np.int64) * 60_000, rng.normal(size=n))
        for i in range(n_series)
    ]
    return Result(q, series, Provenance())


@pytest.mark.parametrize(("fmt", "layout"), REPRESENTATIONS[:4])
def test_pieces_join_to_the_whole_document_and_release_each_series(fmt: str, layout: str) -> None:
    rep = Representation(fmt, layout)  # type: ignore[arg-type]
    want = encode_timeseries(_result(4, 500), rep)
    result = _result(4, 500)
    pieces = timeseries_pieces(result, rep)
    head = next(pieces)()
    assert len(result.series) == 4
    first = next(pieces)
    assert len(result.series) == 3  # the first series is the piece's alone now
    rest = [p() for p in pieces]
    assert result.series == []
    assert head + first() + b"".join(rest) == want


async def test_a_failure_mid_stream_aborts_instead_of_ending_the_body(
    aiohttp_client: ClientFactory,
) -> None:
    """The second series' encoding fails in the Rust core (arrays of different lengths):
    the client must see a broken body, never a complete one that lacks a series."""
    ts = np.arange(100_000, dtype=np.int64)
    good = ("a", ts, np.zeros(100_000))
    bad = ("b", ts, np.zeros(99_999))
    meta = {"totalSamples": 199_999}

    async def handle(request: web.Request) -> web.StreamResponse:
        pieces = [
            functools.partial(encode_head, "msgpack", meta, 2, "rows"),
            functools.partial(encode_part, "msgpack", good, 0, "rows"),
            functools.partial(encode_part, "msgpack", bad, 1, "rows"),
            functools.partial(encode_tail, "msgpack"),
        ]
        return await send_stream(request, {"Content-Type": "application/x-msgpack"}, pieces)

    app = web.Application()
    app.router.add_get("/big", handle)
    client = await aiohttp_client(app)
    response = await client.get("/big")
    assert response.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
@pytest.mark.parametrize(
    ("threshold", "trim", "env", "applied"),
    [
        (131_072, 0, {}, True),
        (0, 0, {}, False),
        (0, 1 << 25, {}, True),
        (131_072, 0, {"MALLOC_MMAP_THRESHOLD_": "65536"}, False),
        (0, 1 << 25, {"MALLOC_TRIM_THRESHOLD_": "65536"}, False),
        (131_072, 1 << 25, {"MALLOC_MMAP_THRESHOLD_": "65536"}, True),
    ],
)
def test_malloc_tuning_applies_once_and_defers_to_the_owner(
    threshold: int, trim: int, env: dict[str, str], applied: bool
) -> None:
    """In a child process: the test process's allocator is not ours to tune."""
    code = f"from acechart.server import malloc; print(malloc.tune({threshold}, {trim}))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == str(applied)


def test_the_default_mmap_threshold_keeps_socket_reads_on_the_heap() -> None:
    """asyncio reads a socket into a fresh `bytes` of its transport's `max_size` (then
    shrinks it): at or over the threshold, every request read would map, remap and
    unmap it (`server.malloc`)."""
    from asyncio import selector_events

    read: int = getattr(selector_events, "_SelectorSocketTransport").max_size  # noqa: B009
    bytes_header = sys.getsizeof(b"")
    assert Settings().malloc_mmap_threshold_bytes > read + bytes_header


async def test_head_of_a_streamed_answer_sends_headers_only(pair: tuple[Service, Service]) -> None:
    streaming, _ = pair
    params = query(streaming.points(2), NOW_MS - 12 * DAY, NOW_MS - 10 * DAY)
    sent = {"X-ACE-Token": TOKEN}
    head = await streaming.client.head("/api/timeseries", params=params, headers=sent)
    assert head.status == 200 and await head.read() == b""
    assert head.headers["Content-Type"].startswith("application/json")
    # The connection is still good for the next request.
    after = await streaming.get("/api/timeseries", params)
    assert after.status == 200 and (await after.json())["series"][0]["data"]


async def test_concurrent_identical_streamed_requests_each_get_the_whole_answer(
    pair: tuple[Service, Service],
) -> None:
    """They share one computation, whose series the first sender consumes: the second
    computes its own (from the caches the first filled) rather than send what is left."""
    streaming, whole = pair
    params = query(streaming.points(3), NOW_MS - 12 * DAY, NOW_MS - 10 * DAY)
    want = await (await whole.get("/api/timeseries", params)).read()
    responses = await asyncio.gather(*(streaming.get("/api/timeseries", params) for _ in range(3)))
    bodies = [await r.read() for r in responses]
    assert all(r.headers.get("Transfer-Encoding") == "chunked" for r in responses)
    assert bodies == [want] * 3
