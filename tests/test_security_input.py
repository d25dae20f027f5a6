"""Client input that used to reach the origin or end in a 500: each is a 400 naming its
parameter, answered before any origin request.

- site names `.` and `..` (and any dot segment, percent-encoded or not) in every place a
  site is read, and point names that are dot segments;
- non-UTF-8 bytes in `X-ACE-Token`;
- an `offset` past what SQLite holds on `/api/points`;
- deeply nested JSON in `POST /api/jobs` and the POST data routes;
- lone surrogates in `siteId`, `pointNames` and `points`.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from acechart.errors import BadRequest
from acechart.query import Query, check_point_name, check_site
from acechart.server.keys import ACCESS
from tests.conftest import NOW_MS, SITE, TOKEN, Sim
from tests.server_helpers import DAY, ClientFactory, Service, query, start_service

DOT_SITES = [".", "..", "%2e", "%2E%2e", "%252e%252e", "a/..", "..%2f", "%2F"]


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path) -> Service:
    return await start_service(aiohttp_client, sim, tmp_path, rate_limit_per_minute=0)


def _origin_asked(svc: Service) -> list[str]:
    return [r.path for r in svc.sim.log.records]


@pytest.mark.parametrize("site", DOT_SITES)
def test_dot_segments_are_not_site_names(site: str) -> None:
    with pytest.raises(BadRequest) as caught:
        check_site(site)
    assert caught.value.parameter == "site"
    with pytest.raises(BadRequest):
        Query(site, ("p",), 0, 60_000).validate(max_points=10, max_range_days=10)


@pytest.mark.parametrize("name", ["..", ".", "a/../b", "a/./b", "%2e%2e", "a/%2E%2E/b", "a\\..\\b"])
def test_dot_segments_are_not_point_names(name: str) -> None:
    with pytest.raises(BadRequest) as caught:
        check_point_name(name)
    assert caught.value.parameter == "points"


def test_real_point_names_still_pass() -> None:
    for name in ("ses/ses_falls_city/AHU-1/AHU-1.points.SaTemp", "a.b", "...x", "x..", "a/.b"):
        assert check_point_name(name) == name
    assert check_site("ses_falls_city") == "ses_falls_city"


async def test_dot_sites_are_refused_everywhere_before_the_origin(svc: Service) -> None:
    points = svc.points(1)
    for site in DOT_SITES:
        data = query(points, NOW_MS - 2 * DAY, NOW_MS - DAY)
        data["site"] = site
        for path in ("/api/timeseries", "/api/aggregations"):
            resp = await svc.get(path, data)
            assert resp.status == 400, (path, site)
            assert (await resp.json())["parameter"] == "site"
            post = await svc.client.post(path, json=data, headers={"X-ACE-Token": TOKEN})
            assert post.status == 400, (path, site)
        resp = await svc.get("/api/points", {"site": site})
        assert resp.status == 400 and (await resp.json())["parameter"] == "site", site
        job = {
            "siteId": site,
            "pointNames": points,
            "startTime": "2024-06-01",
            "endTime": "2024-06-02",
        }
        resp = await svc.client.post("/api/jobs", json=job, headers={"X-ACE-Token": TOKEN})
        assert resp.status == 400 and (await resp.json())["parameter"] == "site", site
    # As a path segment, sent raw (a client library would normalise the dots away).
    for raw in ("%2e%2e", "%2e", "%252e%252e", "..%252f", "%2E."):
        for tail in ("", "/configured_points", "/timeseries/paginated?start_time=2024-06-01"):
            status, body = await _raw_request(
                svc,
                f"GET /api/sites/{raw}{tail} HTTP/1.1\r\nHost: x\r\nX-ACE-Token: {TOKEN}"
                "\r\nConnection: close\r\n\r\n".encode(),
            )
            assert status == 400, (raw, tail, body)
            assert json.loads(body)["parameter"] == "site"
    assert not [p for p in _origin_asked(svc) if p.startswith("/sites")], _origin_asked(svc)


async def test_a_token_is_never_marked_allowed_for_a_dot_site(svc: Service) -> None:
    access = svc.app[ACCESS]
    for site in ("..", "."):
        with pytest.raises(BadRequest):
            await access.check(TOKEN, site)
    assert access.origin_checks == 0 and not _origin_asked(svc)


async def test_dot_point_names_are_refused_before_the_origin(svc: Service) -> None:
    data = query(["..", svc.points(1)[0]], NOW_MS - 2 * DAY, NOW_MS - DAY)
    resp = await svc.get("/api/timeseries", data)
    assert resp.status == 400 and (await resp.json())["parameter"] == "points"
    resp = await svc.client.get(
        f"/api/sites/{SITE}/timeseries/paginated",
        params={"start_time": "2024-06-01", "end_time": "2024-06-02", "point_names": "a/../b"},
        headers={"X-ACE-Token": TOKEN},
    )
    assert resp.status == 400 and (await resp.json())["parameter"] == "point_names"
    assert not _origin_asked(svc)


async def _raw_request(svc: Service, head: bytes) -> tuple[int, bytes]:
    """Send `head` (a GET's request line and headers) over a real socket; status and body."""
    server = svc.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


async def test_a_token_that_is_not_utf8_is_a_400(svc: Service) -> None:
    for header in (b"X-ACE-Token: SeCrEt\xff\xfe", b"Authorization: Bearer SeCrEt\xc3\x28"):
        head = (
            b"GET /api/points?site="
            + SITE.encode()
            + b" HTTP/1.1\r\nHost: x\r\n"
            + header
            + b"\r\nConnection: close\r\n\r\n"
        )
        status, body = await _raw_request(svc, head)
        assert status == 400, body
        doc = json.loads(body)
        assert doc["parameter"] in ("X-ACE-Token", "Authorization")
        assert b"SeCrEt" not in body
    assert not _origin_asked(svc)


async def test_an_offset_past_int64_is_a_400(svc: Service) -> None:
    ok = await svc.get("/api/points", {"site": SITE, "offset": str(2**63 - 1)})
    assert ok.status == 200
    for offset in (str(2**63), str(10**30)):
        resp = await svc.get("/api/points", {"site": SITE, "offset": offset})
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["parameter"] == "offset"


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


async def test_deeply_nested_json_bodies_are_400(svc: Service) -> None:
    headers = {"X-ACE-Token": TOKEN, "Content-Type": "application/json"}
    for body in (
        _nested(100_000),
        b"[" * 200_000 + b"]" * 200_000,
        b'{"siteId": ' + b"[" * 50_000,  # unbalanced: still refused before parsing
    ):
        for path in ("/api/jobs", "/api/timeseries", "/api/aggregations"):
            resp = await svc.client.post(path, data=io.BytesIO(body), headers=headers)
            assert resp.status == 400, (path, resp.status, await resp.text())
            assert (await resp.json())["parameter"] == "body"
    # Brackets inside strings do not count; a normal body still works.
    data = query(svc.points(1), NOW_MS - 2 * DAY, NOW_MS - DAY)
    data["note"] = "[" * 1000
    resp = await svc.client.post("/api/timeseries", data=json.dumps(data), headers=headers)
    assert resp.status == 200, await resp.text()
    # Size is bounded too (aiohttp's client_max_size): a 413, not a 500.
    big = io.BytesIO(b" " * (2 * 1024**2))
    resp = await svc.client.post("/api/jobs", data=big, headers=headers)
    assert resp.status == 413


async def test_lone_surrogates_are_refused_at_validation(svc: Service) -> None:
    headers = {"X-ACE-Token": TOKEN, "Content-Type": "application/json"}
    points = svc.points(1)
    job = {"siteId": SITE, "pointNames": points, "startTime": "2024-06-01", "endTime": "2024-06-02"}
    cases = [
        ("/api/jobs", {**job, "siteId": "ses\ud800"}, "site"),
        ("/api/jobs", {**job, "pointNames": [points[0] + "\udfff"]}, "points"),
        ("/api/jobs", {**job, "pointNames": "a\ud83d,b"}, "points"),
    ]
    data = query(points, NOW_MS - 2 * DAY, NOW_MS - DAY)
    for path in ("/api/timeseries", "/api/aggregations"):
        cases.append((path, {**data, "site": "x\udc80"}, "site"))
        cases.append((path, {**data, "points": [points[0], "\ud800"]}, "points"))
    for path, body, parameter in cases:
        # json.dumps escapes the surrogate as \\udXXX, which is how a client sends one.
        resp = await svc.client.post(path, data=json.dumps(body), headers=headers)
        assert resp.status == 400, (path, body, await resp.text())
        assert (await resp.json())["parameter"] == parameter
    assert not _origin_asked(svc)
