"""Cached answers written as one pre-serialised block (`server/prepared.py`) against
aiohttp's own response path, on the wire.

Two services over one simulator: `lane` as the service runs, and `generic`, whose
application has an `on_response_prepare` handler, so every answer takes
aiohttp's path. The same request to both must give the same status, the same
headers (but the per-request ones) and the same body, read from a raw socket.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.http_writer import _serialize_headers
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from acechart.server import create_app
from acechart.server.keys import EDGE, RUNTIME
from acechart.server.prepared import date_and_server, serialise_headers
from tests.conftest import NOW_MS, TOKEN, Sim, origin_settings
from tests.server_helpers import DAY, ClientFactory, Clock, Service, ServiceServer, query

PER_REQUEST = frozenset({"date", "x-request-id", "x-processing-time"})

Parsed = tuple[bytes, list[tuple[str, str]], bytes]


async def open_service(
    aiohttp_client: ClientFactory, sim: Sim, path: Path, *, generic: bool
) -> tuple[Service, list[int]]:
    """A service; with `generic`, one whose app counts its `on_response_prepare` calls."""
    settings = origin_settings(sim.url, data_dir=str(path))
    app = create_app(settings)
    prepared: list[int] = []
    if generic:

        async def count(request: web.Request, response: web.StreamResponse) -> None:
            prepared.append(response.status)

        app.on_response_prepare.append(count)
    client = await aiohttp_client(ServiceServer(app))
    client.app[RUNTIME].engine.clock = lambda: NOW_MS
    return Service(client, sim, settings), prepared


@pytest.fixture
async def services(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> tuple[Service, Service, list[int]]:
    lane, _ = await open_service(aiohttp_client, sim, tmp_path / "lane", generic=False)
    generic, prepared = await open_service(aiohttp_client, sim, tmp_path / "generic", generic=True)
    return lane, generic, prepared


def target(service: Service, **extra: Any) -> str:
    points = service.points(3)
    q = query(points, NOW_MS - 3 * DAY, NOW_MS - 2 * DAY, **extra)
    return "/api/timeseries?" + "&".join(f"{k}={v}" for k, v in q.items())


def parse(data: bytes, *, head: bool = False) -> Iterator[Parsed]:
    """Responses in `data`, in order: status line, headers, body (by Content-Length)."""
    while data:
        top, sep, data = data.partition(b"\r\n\r\n")
        assert sep, "a response's headers do not end"
        status, *lines = top.split(b"\r\n")
        headers = [tuple(x.decode().split(": ", 1)) for x in lines]
        length = 0 if head else int(dict((k.lower(), v) for k, v in headers)["content-length"])
        body, data = data[:length], data[length:]
        assert len(body) == length
        yield status, headers, body  # type: ignore[misc]


async def exchange(
    service: Service, raw: bytes, *, count: int = 1, head: bool = False, until_closed: bool = False
) -> list[Parsed]:
    """Send `raw` on a fresh connection and read `count` responses (with `until_closed`,
    everything until the server closes the connection: a `TimeoutError` if it does not)."""
    server = service.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(raw)
        await writer.drain()
        data = b""
        while True:
            try:
                got = list(parse(data, head=head))
            except (AssertionError, KeyError):
                got = []
            if len(got) >= count and data.endswith(got[-1][2]) and not until_closed:
                return got
            chunk = await asyncio.wait_for(reader.read(1 << 16), 10)
            if not chunk:
                return list(parse(data, head=head))
            data += chunk
    finally:
        writer.close()


def request(path: str, *, version: str = "1.1", method: str = "GET", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1", f"X-ACE-Token: {TOKEN}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def comparable(parsed: Parsed) -> tuple[bytes, list[tuple[str, str]], bytes]:
    status, headers, body = parsed
    kept = sorted((k.lower(), v) for k, v in headers if k.lower() not in PER_REQUEST)
    return status, kept, body


async def warm(*services: Service, path: str, **headers: str) -> None:
    for service in services:
        (first,) = await exchange(service, request(path, **headers))
        assert first[0] == b"HTTP/1.1 200 OK", first


def clocks(*services: Service) -> list[Clock]:
    made = []
    for service in services:
        clock = Clock()
        service.app[EDGE].clock = clock
        made.append(clock)
    return made


async def test_a_cached_answer_is_the_same_on_both_paths(
    services: tuple[Service, Service, list[int]],
) -> None:
    lane, generic, prepared = services
    both = clocks(lane, generic)
    path = target(lane)
    await warm(lane, generic, path=path)
    for clock in both:
        clock.advance(7.4)
    before = len(prepared)
    (fast,) = await exchange(lane, request(path))
    (slow,) = await exchange(generic, request(path))
    assert len(prepared) == before + 1  # the generic service took aiohttp's path
    assert comparable(fast) == comparable(slow)
    names = {k.lower(): v for k, v in fast[1]}
    assert names["x-cache-status"] == "HIT" and names["age"] == "7"
    assert names["content-length"] == str(len(fast[2]))
    assert set(names) >= PER_REQUEST
    # The second changes: max-age and Age are made again, not kept from the block before.
    for clock in both:
        clock.advance(1.0)
    (later,) = await exchange(lane, request(path))
    (later_slow,) = await exchange(generic, request(path))
    assert comparable(later) == comparable(later_slow)
    later_names = {k.lower(): v for k, v in later[1]}
    assert later_names["age"] == "8" and later_names["cache-control"] != names["cache-control"]


async def test_the_lane_is_taken_by_a_plain_get(
    services: tuple[Service, Service, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    lane, _, _ = services
    path = target(lane)
    await warm(lane, path=path)
    started: list[str] = []
    original = web.Response.prepare

    async def spy(self: web.Response, request: Any) -> Any:
        started.append(request.method)
        return await original(self, request)

    monkeypatch.setattr(web.Response, "prepare", spy)
    (fast,) = await exchange(lane, request(path))
    assert fast[0] == b"HTTP/1.1 200 OK" and started == []
    (head,) = await exchange(lane, request(path, method="HEAD"), head=True)
    assert started == ["HEAD"]  # a HEAD takes aiohttp's path
    assert head[2] == b"" and dict(head[1])["Content-Length"] == str(len(fast[2]))


@pytest.mark.parametrize(
    ("version", "headers", "closes"),
    [
        ("1.0", {}, True),
        ("1.0", {"Connection": "keep-alive"}, False),
        ("1.1", {"Connection": "close"}, True),
    ],
)
async def test_connections_that_are_not_plain_keep_alive_take_aiohttps_path(
    services: tuple[Service, Service, list[int]],
    version: str,
    headers: dict[str, str],
    closes: bool,
) -> None:
    lane, generic, _ = services
    path = target(lane)
    await warm(lane, generic, path=path)
    sent = request(path, version=version, **headers)
    (fast,) = await exchange(lane, sent, until_closed=closes)
    (slow,) = await exchange(generic, sent, until_closed=closes)
    assert fast[0] == f"HTTP/{version} 200 OK".encode()
    assert comparable(fast) == comparable(slow)
    connection = {k.lower(): v for k, v in fast[1]}.get("connection", "")
    assert (connection == "close") == (closes and version == "1.1")
    if not closes:  # kept alive: a second request on the same connection is answered
        assert len(await exchange(lane, sent + sent, count=2)) == 2


async def test_pipelined_requests_are_answered_in_order(
    services: tuple[Service, Service, list[int]],
) -> None:
    lane, _, _ = services
    first, second = target(lane), target(lane, format="msgpack")
    await warm(lane, path=first)
    await warm(lane, path=second)
    answers = await exchange(lane, request(first) + request(second) + request(first), count=3)
    kinds = [{k.lower(): v for k, v in a[1]}["content-type"] for a in answers]
    assert kinds == ["application/json", "application/x-msgpack", "application/json"]
    assert answers[0][2] == answers[2][2]
    ids = [{k.lower(): v for k, v in a[1]}["x-request-id"] for a in answers]
    assert len(set(ids)) == 3


async def test_a_compressed_variant_is_the_same_on_both_paths(
    services: tuple[Service, Service, list[int]],
) -> None:
    lane, generic, _ = services
    path = target(lane)
    await warm(lane, generic, path=path)
    await warm(lane, generic, path=path, Accept_Encoding="gzip")  # makes the variant
    (fast,) = await exchange(lane, request(path, Accept_Encoding="gzip"))
    (slow,) = await exchange(generic, request(path, Accept_Encoding="gzip"))
    assert comparable(fast) == comparable(slow)
    assert dict(fast[1])["Content-Encoding"] == "gzip"
    (plain,) = await exchange(lane, request(path))
    assert gzip.decompress(fast[2]) == plain[2]


async def test_a_callers_request_id_and_cors_headers_follow_the_block(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    settings = origin_settings(
        sim.url, data_dir=str(tmp_path / "cors"), cors_origins=("http://127.0.0.1:8080",)
    )
    client = await aiohttp_client(ServiceServer(create_app(settings)))
    client.app[RUNTIME].engine.clock = lambda: NOW_MS
    service = Service(client, sim, settings)
    path = target(service)
    await warm(service, path=path)
    (got,) = await exchange(
        service, request(path, Origin="http://127.0.0.1:8080", X_Request_Id="dash-42.7")
    )
    names = {k.lower(): v for k, v in got[1]}
    assert names["x-request-id"] == "dash-42.7"
    assert names["access-control-allow-origin"] == "http://127.0.0.1:8080"
    assert names["x-cache-status"] == "HIT"


_FIELD = st.text(st.characters(max_codepoint=0x2FF, blacklist_characters=":"), min_size=1)


@given(st.lists(st.tuples(_FIELD, _FIELD), max_size=8))
def test_serialised_headers_are_aiohttps_bytes(pairs: list[tuple[str, str]]) -> None:
    """Any names and values (control characters included): our bytes are aiohttp's, and
    what aiohttp refuses we do not serialise."""
    ours = serialise_headers(pairs)
    try:
        theirs = _serialize_headers("HTTP/1.1 200 OK", CIMultiDict(pairs))
    except ValueError:
        assert ours is None
        return
    assert ours is not None
    assert b"HTTP/1.1 200 OK\r\n" + ours + b"\r\n" == theirs


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "\r\n", "x\r\nInjected: 1", "nul\x00", "del\x7f"])
def test_a_header_with_cr_or_lf_is_not_serialised(bad: str) -> None:
    assert serialise_headers([("X-Ok", "fine"), ("X-Bad", bad)]) is None
    assert serialise_headers([(bad, "value")]) is None
    with pytest.raises(ValueError):
        _serialize_headers("HTTP/1.1 200 OK", CIMultiDict([("X-Bad", bad)]))


def testdate_and_server_are_aiohttps() -> None:
    for _ in range(5):  # the second may turn between the two readings
        theirs = f"Date: {rfc822_formatted_time()}\r\nServer: {SERVER_SOFTWARE}\r\n\r\n"
        if date_and_server().decode() == theirs:
            return
    raise AssertionError(f"{date_and_server()!r} != {theirs!r}")
