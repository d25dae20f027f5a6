"""The hit lane on the connection (`server/connection.py`), on the wire: raw HTTP/1.1 over a
socket to the real service, so what aiohttp's parser would have seen is under test too.

Each answer the connection gives is held to the answer aiohttp's path gives the same
request on the same service (the lane switched off for it): status, headers but the
per-request ones, body, log line and metrics. Pipelined chunks are answered in order;
a request split across reads, a body (whatever it holds) or an upgrade hands the
connection to aiohttp for good; anything the lane does not take steps aside.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acechart.server import connection, requestlog
from acechart.server.lane import LANE, Lane
from tests.conftest import NOW_MS, TOKEN, Sim
from tests.server_helpers import (
    DAY,
    ClientFactory,
    Service,
    ServiceServer,
    query,
    sample_value,
    start_service,
)

PER_REQUEST = frozenset({"date", "x-request-id", "x-processing-time"})


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def same_as(self, other: Reply) -> None:
        mine = {k: v for k, v in self.headers.items() if k not in PER_REQUEST}
        theirs = {k: v for k, v in other.headers.items() if k not in PER_REQUEST}
        assert (self.status, mine, self.body) == (other.status, theirs, other.body)


async def read_reply(reader: asyncio.StreamReader, *, head: bool = False) -> Reply:
    block = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = block[:-4].decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        assert name.lower() not in headers, f"{name} twice"
        headers[name.lower()] = value.strip()
    status = int(status_line.split(" ")[1])
    length = 0 if head or status in (204, 304) else int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), 10)
    return Reply(status, headers, body)


class Wire:
    """One keep-alive connection to the service, written to in chunks."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, *chunks: bytes, gap_s: float = 0.02) -> None:
        for chunk in chunks:
            self.writer.write(chunk)
            await self.writer.drain()
            await asyncio.sleep(gap_s)  # each chunk its own read on the server

    async def replies(self, n: int, *, head: bool = False) -> list[Reply]:
        return [await read_reply(self.reader, head=head) for _ in range(n)]

    async def closed(self) -> bool:
        """Whether the server closed the connection (within a few seconds)."""
        try:
            return await asyncio.wait_for(self.reader.read(1), 5) == b""
        except TimeoutError:
            return False

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path) -> Service:
    return await start_service(aiohttp_client, sim, tmp_path, rate_limit_per_minute=0)


@pytest.fixture
async def wires(svc: Service) -> AsyncIterator[Any]:
    opened: list[Wire] = []

    async def open_wire() -> Wire:
        server = svc.client.server
        wire = Wire(*await asyncio.open_connection(server.host, server.port))
        opened.append(wire)
        return wire

    yield open_wire
    for wire in opened:
        wire.close()


def target(svc: Service, days_ago: int = 5, **extra: Any) -> str:
    q = query(svc.points(3), NOW_MS - days_ago * DAY, NOW_MS - (days_ago - 1) * DAY, **extra)
    return "/api/timeseries?" + urlencode(q)


def get(path: str, *headers: str, method: str = "GET", version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1", *headers]
    if not any(h.lower().startswith(("x-ace-token:", "authorization:")) for h in headers):
        lines.append(f"X-ACE-Token: {TOKEN}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def lane_of(svc: Service) -> Lane:
    return svc.app[LANE]


async def warmed(svc: Service, wire: Wire, request: bytes) -> None:
    """Asked twice: a miss, then the route's edge hit, which files the lane's ticket."""
    for _ in range(2):
        await wire.send(request)
        (reply,) = await wire.replies(1)
        assert reply.status == 200, reply.body


async def by_aiohttp(svc: Service, wire: Wire, request: bytes) -> Reply:
    """The answer aiohttp's path gives `request` (the connection lane off for it)."""
    lane = lane_of(svc)
    lane.connection = False
    try:
        await wire.send(request)
        (reply,) = await wire.replies(1)
    finally:
        lane.connection = True
    return reply


def test_this_aiohttp_has_what_the_lane_reads() -> None:
    """A release that renames its internals turns the lane off; this says so first."""
    assert connection.available()


@pytest.mark.parametrize(
    "headers",
    [
        (),
        ("Accept-Encoding: gzip, br",),
        ("Accept: application/x-msgpack",),
        ("Accept: application/json", "Prefer: return=minimal"),
        ("X-Request-Id: caller.id-7",),
        ("Authorization: Bearer " + TOKEN,),
        ("Connection: keep-alive", "User-Agent: a  b\t"),
    ],
    ids=["plain", "gzip", "msgpack", "prefer", "request-id", "bearer", "keep-alive"],
)
async def test_an_answer_on_the_connection_is_aiohttps_answer(
    svc: Service, wires: Any, headers: tuple[str, ...]
) -> None:
    wire = await wires()
    request = get(target(svc), *headers)
    await warmed(svc, wire, request)
    expected = await by_aiohttp(svc, wire, request)
    before = lane_of(svc).answered_bytes
    await wire.send(request)
    (got,) = await wire.replies(1)
    assert lane_of(svc).answered_bytes == before + 1
    got.same_as(expected)
    assert got.headers["x-cache-status"] == "HIT" and got.headers["x-cache-source"] == "EDGE"
    if "X-Request-Id: caller.id-7" in headers:
        assert got.headers["x-request-id"] == "caller.id-7"
    else:
        assert len(got.headers["x-request-id"]) == 32
    sent, theirs = (parsedate_to_datetime(r.headers["date"]) for r in (got, expected))
    assert abs(sent - theirs) <= timedelta(seconds=5)  # an HTTP date, aiohttp's clock


async def test_its_log_line_and_metrics_are_the_routes(
    svc: Service, wires: Any, caplog: pytest.LogCaptureFixture
) -> None:
    wire = await wires()
    request = get(target(svc))
    await warmed(svc, wire, request)
    metrics_before = await (await svc.client.get("/metrics")).text()
    caplog.set_level(logging.INFO, logger=requestlog.__name__)
    caplog.clear()
    await by_aiohttp(svc, wire, request)
    await wire.send(request)
    await wire.replies(1)
    lines = [r.fields for r in caplog.records if getattr(r, "fields", None)]  # type: ignore[attr-defined]
    assert len(lines) == 2 and lane_of(svc).answered_bytes == 1
    for line in lines:
        line.pop("requestId")
        line["response"].pop("processingTime")
    assert lines[0] == lines[1]
    assert lines[0]["response"]["cacheStatus"] == "HIT" and lines[0]["classification"] == "cached"
    metrics_after = await (await svc.client.get("/metrics")).text()

    for sample in (
        'acechart_requests_by_cache_total{status="hit"}',
        'acechart_requests_total{endpoint="timeseries",status="200"}',
        'acechart_cache_latency_seconds_count{tier="edge"}',
    ):
        gained = sample_value(metrics_after, sample) - sample_value(metrics_before, sample)
        assert gained == 2, sample
    assert sample_value(metrics_after, 'acechart_hit_lane_answers_total{lane="connection"}') == 1
    assert sample_value(metrics_after, 'acechart_hit_lane_answers_total{lane="middleware"}') == 1


async def test_pipelined_requests_are_answered_in_order(svc: Service, wires: Any) -> None:
    wire = await wires()
    json_get, msgpack_get = get(target(svc)), get(target(svc), "Accept: application/x-msgpack")
    await warmed(svc, wire, json_get)
    await warmed(svc, wire, msgpack_get)
    expected_json = await by_aiohttp(svc, wire, json_get)
    expected_msgpack = await by_aiohttp(svc, wire, msgpack_get)
    cold = get(target(svc, days_ago=9))  # never asked: the route fetches it
    lane = lane_of(svc)
    before = lane.answered_bytes
    await wire.send(json_get + msgpack_get + cold + json_get + msgpack_get)
    first, second, third, fourth, fifth = await wire.replies(5)
    first.same_as(expected_json)
    second.same_as(expected_msgpack)
    assert third.status == 200 and third.headers["x-cache-status"] != "HIT"
    # From the first request the lane does not take, the chunk is aiohttp's, in order.
    assert fourth.body == expected_json.body and fifth.body == expected_msgpack.body
    assert lane.answered_bytes == before + 2
    await wire.send(json_get + msgpack_get)
    sixth, seventh = await wire.replies(2)
    sixth.same_as(expected_json)
    seventh.same_as(expected_msgpack)
    assert lane.answered_bytes == before + 4


async def test_a_request_split_across_reads_leaves_the_connection_to_aiohttp(
    svc: Service, wires: Any
) -> None:
    wire = await wires()
    request = get(target(svc))
    await warmed(svc, wire, request)
    lane = lane_of(svc)
    before = lane.answered_bytes
    await wire.send(request[:25], request[25:])
    await wire.send(request)
    replies = await wire.replies(2)
    assert [r.status for r in replies] == [200, 200]
    assert lane.answered_bytes == before
    # Another connection is the lane's again.
    other = await wires()
    await other.send(request)
    (reply,) = await other.replies(1)
    assert reply.body == replies[0].body and lane.answered_bytes == before + 1


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "framing", ["Content-Length: {n}", "content-length:{n}", "Transfer-Encoding: chunked"]
)
async def test_a_body_is_never_read_as_a_request(
    svc: Service, wires: Any, method: str, framing: str
) -> None:
    """A request smuggled in a body (the lane's own ticket URL), the body in a read of its
    own after its request's head: it stays a body, answered by nobody."""
    wire = await wires()
    path = target(svc)
    hit, marker = get(path), get(path, "Accept: application/x-msgpack")
    await warmed(svc, wire, hit)
    await warmed(svc, wire, marker)
    lane = lane_of(svc)
    before = lane.answered_bytes
    body = hit if "chunked" not in framing else b"%x\r\n%s\r\n0\r\n\r\n" % (len(hit), hit)
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nX-ACE-Token: {TOKEN}\r\n"
    head += framing.format(n=len(body)) + "\r\n\r\n"
    smuggler = await wires()
    await smuggler.send(head.encode(), body, marker)
    replies: list[Reply] = []
    while not replies or replies[-1].headers.get("content-type") != "application/x-msgpack":
        replies += await smuggler.replies(1)
    assert len(replies) == 2  # the request with the body, then the marker: nothing between
    assert lane.answered_bytes == before  # and the connection is aiohttp's from the body on


@pytest.mark.parametrize(
    ("headers", "kwargs", "status"),
    [
        (("Cache-Control: no-cache",), {}, 200),
        (("Origin: http://127.0.0.1:1",), {}, 200),
        (("Expect: 100-continue",), {}, 100),
        (("Connection: close",), {}, 200),
        ((), {"version": "1.0"}, 200),
        ((), {"method": "HEAD"}, 200),
        (("X-ACE-Token: " + TOKEN, "X-ACE-Token: other"), {}, 200),
        (("X-ACE-Token: \x7ftoken",), {}, 400),
        (("Authorization: Basic abc",), {}, 401),
        (("X-Ace-Token: wrong-token",), {}, 401),
    ],
    ids=[
        "cache-control",
        "origin",
        "expect",
        "close",
        "http1.0",
        "head",
        "token-twice",
        "bad-token",
        "no-token",
        "unknown-token",
    ],
)
async def test_what_the_lane_does_not_take_goes_to_aiohttp(
    svc: Service, wires: Any, headers: tuple[str, ...], kwargs: dict[str, str], status: int
) -> None:
    wire = await wires()
    path = target(svc)
    await warmed(svc, wire, get(path))
    lane = lane_of(svc)
    before = lane.answered_bytes
    other = await wires()
    await other.send(get(path, *headers, **kwargs))
    (reply,) = await other.replies(1, head=kwargs.get("method") == "HEAD")
    assert reply.status == status, reply.body
    if status == 100:  # aiohttp's interim answer to Expect, then its own
        (reply,) = await other.replies(1)
        assert reply.status == 200
    assert lane.answered_bytes == before


async def test_what_aiohttps_parser_refuses_is_refused(svc: Service, wires: Any) -> None:
    """A request the lane could answer but aiohttp's parser refuses with a 400 (no
    `Host`, the old WebSocket handshake's key) or a 431 (too many headers) is refused."""
    wire = await wires()
    path = target(svc)
    await warmed(svc, wire, get(path))
    lane = lane_of(svc)
    before = lane.answered_bytes
    no_host = f"GET {path} HTTP/1.1\r\nX-ACE-Token: {TOKEN}\r\n\r\n".encode()
    many = [f"X-Filler-{i}: {i}" for i in range(130)]
    for request, status in (
        (no_host, 400),
        (get(path, "Sec-WebSocket-Key1: 1"), 400),
        (get(path, *many), 431),
    ):
        other = await wires()
        await other.send(request)
        (reply,) = await other.replies(1)
        assert reply.status == status, (request[:60], reply.body)
    assert lane.answered_bytes == before


async def test_if_none_match_is_aiohttps_304(svc: Service, wires: Any) -> None:
    wire = await wires()
    path = target(svc)
    await warmed(svc, wire, get(path))
    await wire.send(get(path))
    (hit,) = await wire.replies(1)
    before = lane_of(svc).answered_bytes
    await wire.send(get(path, f"If-None-Match: {hit.headers['etag']}"))
    (reply,) = await wire.replies(1)
    assert reply.status == 304 and lane_of(svc).answered_bytes == before


async def test_the_rate_limit_counts_each_request_once(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    limited = await start_service(aiohttp_client, sim, tmp_path, rate_limit_per_minute=3)
    server = limited.client.server
    wire = Wire(*await asyncio.open_connection(server.host, server.port))
    try:
        request = get(target(limited))
        await warmed(limited, wire, request)  # two of the three
        await wire.send(request, request)
        ok, refused = await wire.replies(2)
        assert ok.status == 200 and refused.status == 429
        assert json.loads(refused.body)["error"] == "rate_limit_exceeded"
        assert lane_of(limited).answered_bytes == 1
    finally:
        wire.close()


async def test_keep_alive_times_out_as_aiohttps_does(sim: Sim, tmp_path: Path) -> None:
    """Answers on the connection restart aiohttp's keep-alive timer; idle, it closes."""
    from aiohttp.test_utils import TestClient

    from acechart.server.app import create_app
    from tests.conftest import origin_settings

    settings = origin_settings(sim.url, data_dir=str(tmp_path / "ka"), rate_limit_per_minute=0)
    server = ServiceServer(create_app(settings))
    await server.start_server(keepalive_timeout=2.0)
    client: TestClient[Any, Any] = TestClient(server)
    await client.start_server()
    try:
        svc = Service(client, sim, settings)
        wire = Wire(*await asyncio.open_connection(server.host, server.port))
        request = get(target(svc))
        await warmed(svc, wire, request)
        before = lane_of(svc).answered_bytes
        for _ in range(12):  # 3 s of answers on the connection, past the 2 s timeout
            await wire.send(request, gap_s=0.25)
            (reply,) = await wire.replies(1)
            assert reply.status == 200
        assert lane_of(svc).answered_bytes == before + 12
        assert await wire.closed()  # then idle: closed after about two seconds
        wire.close()
    finally:
        await client.close()


def test_requests_in_takes_only_whole_bodiless_requests() -> None:
    one = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    assert connection.requests_in(one) == [b"GET /a HTTP/1.1\r\nHost: x"]
    assert connection.requests_in(one * 3) == [b"GET /a HTTP/1.1\r\nHost: x"] * 3
    for doubt in (
        one[:-2],
        one + b"\r\n\r\n",
        b"POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        b"GET /a HTTP/1.1\r\nTRANSFER-ENCODING: chunked\r\n\r\n",
        b"GET /a HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
        b"CONNECT host:443 HTTP/1.1\r\n\r\n",
        b"GET /a HTTP/1.1\nContent-Length: 5\n\r\n\r\n",
        b"GET /a HTTP/1.1\rContent-Length: 5\r\n\r\n",
        one + b"CONNECT /b HTTP/1.1\r\n\r\n",
        b"",
    ):
        assert connection.requests_in(doubt) is None, doubt
    # The words in a target or a value are no header: such a request stays the lane's.
    named = b"GET /a?p=FirmwareUpgrade&q=CONNECT&r=content-length HTTP/1.1\r\nX: upgrade"
    assert connection.requests_in(named + b"\r\n\r\n") == [named]


async def test_a_long_pipeline_is_answered_in_order_past_the_burst(
    svc: Service, wires: Any
) -> None:
    """A read whose answers pass 1 MiB: the lane answers the first of them, aiohttp the
    rest (waiting on the transport as it writes), every one in order."""
    wire = await wires()
    request = get(target(svc))
    await warmed(svc, wire, request)
    expected = await by_aiohttp(svc, wire, request)
    many = 1 + (1 << 20) // len(expected.body) * 2
    lane = lane_of(svc)
    before = lane.answered_bytes
    await wire.send(request * many)
    replies = await wire.replies(many)
    assert [r.body for r in replies] == [expected.body] * many
    assert 0 < lane.answered_bytes - before < many


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    kinds=st.lists(st.sampled_from(["hit", "msgpack", "cold", "post"]), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=1, max_value=4000), max_size=4),
)
async def test_any_cut_of_a_request_stream_is_answered_as_aiohttp_answers_it(
    svc: Service, wires: Any, kinds: list[str], cuts: list[int]
) -> None:
    """Requests of every kind, cut anywhere into reads: the same statuses and bodies, in
    order, as with the lane off."""
    warm = await wires()
    hit, msgpack_get = get(target(svc)), get(target(svc), "Accept: application/x-msgpack")
    await warmed(svc, warm, hit)
    await warmed(svc, warm, msgpack_get)
    chart = json.dumps({"siteId": "x"}).encode()
    post = (
        f"POST /api/charts HTTP/1.1\r\nHost: x\r\nX-ACE-Token: {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(chart)}\r\n\r\n"
    ).encode() + chart
    made = {"hit": hit, "msgpack": msgpack_get, "cold": get(target(svc, days_ago=12)), "post": post}
    stream = b"".join(made[k] for k in kinds)
    points = sorted({c % len(stream) for c in cuts} - {0})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]

    async def answers(on: bool) -> list[tuple[int, bytes]]:
        lane_of(svc).connection = on
        try:
            wire = await wires()
            await wire.send(*chunks, gap_s=0.005)
            return [(r.status, r.body) for r in await wire.replies(len(kinds))]
        finally:
            lane_of(svc).connection = True

    assert await answers(True) == await answers(False)
