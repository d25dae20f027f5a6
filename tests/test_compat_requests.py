"""Every way existing clients ask: parameter aliases, epoch milliseconds, POST bodies, long
GET lines (and past the limit a JSON 414 over a real socket), unknown points as 404s,
CORS preflights with every method, HEAD wherever GET works, JSON for every error."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from acechart.server.keys import CATALOG
from acechart.times import format_time
from tests.conftest import NOW_MS, SITE, TOKEN, Sim
from tests.server_helpers import DAY, ClientFactory, Service, query, start_service

START = NOW_MS - 3 * DAY
END = START + 6 * 3_600_000


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path) -> Service:
    return await start_service(aiohttp_client, sim, tmp_path, rate_limit_per_minute=0)


async def series_of(resp: Any) -> list[dict[str, Any]]:
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["series"])


async def raw_request(
    svc: Service, head: bytes, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """Send exactly these bytes over a socket; (status, headers, body) of the answer."""
    server = svc.client.server
    assert server.port is not None
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(head + body)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, rest


def get_line(path_qs: str, *extra: str) -> bytes:
    lines = [f"GET {path_qs} HTTP/1.1", "Host: test", f"X-ACE-Token: {TOKEN}", *extra]
    return ("\r\n".join([*lines, "Connection: close", "", ""])).encode()


# --- aliases and epoch milliseconds ----------------------------------------------------


async def test_start_time_end_time_point_names_and_epoch_ms_are_the_same_query(
    svc: Service,
) -> None:
    points = svc.points(2)
    expected = await series_of(await svc.get("/api/timeseries", query(points, START, END)))
    assert any(s["data"] for s in expected)
    for params in (
        {"site": SITE, "point_names": ",".join(points), "start_time": format_time(START),
         "end_time": format_time(END)},
        {"site": SITE, "points": ",".join(points), "start": str(START), "end": str(END)},
        {"site": SITE, "point_names": ",".join(points), "start_time": str(START),
         "end": format_time(END)},
        [("site", SITE), ("point_names", points[0]), ("point_names", points[1]),
         ("start", str(START)), ("end_time", str(END))],
    ):  # fmt: skip
        resp = await svc.get("/api/timeseries", params)
        assert await series_of(resp) == expected, params
    agg = await svc.get(
        "/api/aggregations",
        {"site": SITE, "point_names": points[0], "start_time": str(START), "end_time": str(END)},
    )
    assert agg.status == 200


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"start": "2024-12-01", "start_time": "2024-12-02"}, "start_time"),
        ({"points": "a", "point_names": "b"}, "point_names"),
        ({"start_time": "soon"}, "start_time"),
        ({"start_time": None, "start": None}, "start"),
        ({"end_time": "12x"}, "end_time"),
    ],
)
async def test_alias_errors_name_the_parameter_used(
    svc: Service, params: dict[str, str | None], parameter: str
) -> None:
    base: dict[str, str | None] = {
        "site": SITE,
        "points": svc.points(1)[0],
        "start": format_time(START),
        "end": format_time(END),
    }
    if "start_time" in params:
        base.pop("start")
    if "end_time" in params:
        base.pop("end")
    if "point_names" in params and "points" not in params:
        base.pop("points")
    merged = {k: v for k, v in {**base, **params}.items() if v is not None}
    resp = await svc.get("/api/timeseries", merged)
    assert resp.status == 400
    assert (await resp.json())["parameter"] == parameter


# --- POST with a JSON body ---------------------------------------------------------------


async def test_post_takes_the_same_parameters_as_a_json_body(svc: Service) -> None:
    points = svc.points(3)
    expected = await series_of(await svc.get("/api/timeseries", query(points, START, END)))
    headers = {"X-ACE-Token": TOKEN}
    for body in (
        {"site": SITE, "points": points, "start": START, "end": END},
        {"site": SITE, "point_names": ",".join(points), "start_time": format_time(START),
         "end_time": format_time(END)},
        {"site": SITE, "points": points, "start": float(START), "end": str(END),
         "interval": "raw", "async": False},
    ):  # fmt: skip
        resp = await svc.client.post("/api/timeseries", json=body, headers=headers)
        assert await series_of(resp) == expected
    packed = await svc.client.post(
        "/api/timeseries?format=msgpack",
        json={"site": SITE, "points": points, "start": START, "end": END},
        headers=headers,
    )
    assert packed.headers["Content-Type"] == "application/x-msgpack"
    agg = await svc.client.post(
        "/api/aggregations",
        json={"site": SITE, "points": points[:1], "start": START, "end": END, "interval": "1hr"},
        headers=headers,
    )
    assert agg.status == 200
    assert (await agg.json())["metadata"]["pointName"] == points[0]


def test_a_post_body_takes_every_query_parameter_of_the_get() -> None:
    """What the OpenAPI document says a POST body takes (`_body`: the GET's query
    parameters) is what the route reads from it."""
    from acechart.server.openapi.document import build_document
    from acechart.server.params import BODY_NAMES
    from acechart.settings import Settings

    doc = build_document(Settings.from_env({}))
    for path in ("/api/timeseries", "/api/aggregations"):
        names = {p["name"] for p in doc["paths"][path]["get"]["parameters"] if p["in"] == "query"}
        assert names <= BODY_NAMES, (path, names - BODY_NAMES)
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        schema = doc["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
        assert set(schema["properties"]) - {"start_time", "end_time", "point_names"} <= names


async def test_post_bodies_carry_tz_stat_and_partial(svc: Service) -> None:
    points = svc.points(1)
    start, end = NOW_MS - 5 * DAY, NOW_MS - 2 * DAY
    headers = {"X-ACE-Token": TOKEN}
    extra = {"interval": "1day", "tz": "America/Chicago"}
    for path, stat in (("/api/timeseries", "max"), ("/api/aggregations", "max,delta")):
        want = await (await svc.get(path, query(points, start, end, stat=stat, **extra))).json()
        assert want["metadata"]["timeZone"] == "America/Chicago"
        body = {"site": SITE, "points": points, "start": start, "end": end, "stat": stat, **extra}
        got = await svc.client.post(path, json=body, headers=headers)
        assert got.status == 200 and await got.json() == want
    listed = {"site": SITE, "points": points, "start": start, "end": end, **extra}
    got = await svc.client.post(
        "/api/aggregations", json={**listed, "stat": ["max", "delta"]}, headers=headers
    )
    assert (await got.json())["metadata"]["stat"] == ["max", "delta"]
    bad = await svc.client.post(
        "/api/aggregations", json={**listed, "stat": ["max", "median"]}, headers=headers
    )
    assert bad.status == 400 and (await bad.json())["parameter"] == "stat"
    bad = await svc.client.post(
        "/api/aggregations", json={**listed, "partial": "maybe"}, headers=headers
    )
    assert bad.status == 400 and (await bad.json())["parameter"] == "partial"


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (json.dumps({"site": SITE, "points": [1, 2], "start": 1, "end": 2}).encode(), "points"),
        (json.dumps({"site": SITE, "points": ["a"], "start": 1.5, "end": 2}).encode(), "start"),
        (json.dumps({"site": SITE, "points": ["a"], "start": {}, "end": 2}).encode(), "start"),
    ],
)
async def test_bad_post_bodies_are_400(svc: Service, body: bytes, parameter: str) -> None:
    resp = await svc.client.post(
        "/api/timeseries",
        data=body,
        headers={"X-ACE-Token": TOKEN, "Content-Type": "application/json"},
    )
    assert resp.status == 400
    assert (await resp.json())["parameter"] == parameter


async def test_a_body_past_the_size_limit_is_a_json_413(svc: Service) -> None:
    resp = await svc.client.post(
        "/api/timeseries",
        data=io.BytesIO(b"{" + b" " * (1024**2 + 10) + b"}"),
        headers={"X-ACE-Token": TOKEN, "Content-Type": "application/json"},
    )
    assert resp.status == 413
    body = await resp.json()
    assert body["error"] == "request_too_large" and "too large" in body["message"]


# --- long GET lines ------------------------------------------------------------------------


def long_names(sim: Sim, n: int) -> list[str]:
    names = list(sim.site.names[:n])
    assert len(names) == n and min(len(x) for x in names) > 70
    return names


async def test_a_get_naming_100_long_points_works(svc: Service) -> None:
    names = long_names(svc.sim, 100)
    qs = "&".join(
        [
            f"site={SITE}",
            "points=" + quote(",".join(names), safe=""),
            f"start={quote(format_time(START), safe='')}",
            f"end={quote(format_time(START + 600_000), safe='')}",
        ]
    )
    line = get_line(f"/api/timeseries?{qs}")
    assert len(line) > 10_000  # well past aiohttp's default limit of 8190
    status, _, body = await raw_request(svc, line)
    assert status == 200, body[:300]
    doc = json.loads(body)
    assert [s["name"] for s in doc["series"]] == names


async def test_past_the_line_limit_a_json_414_says_to_post(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    svc = await start_service(aiohttp_client, sim, tmp_path, server_max_line_bytes=4096)
    names = long_names(sim, 60)
    line = get_line(f"/api/timeseries?site={SITE}&points=" + quote(",".join(names), safe=""))
    status, headers, body = await raw_request(svc, line)
    assert status == 414
    assert headers["content-type"].startswith("application/json")
    doc = json.loads(body)
    assert doc["error"] == "uri_too_long"
    assert "POST" in doc["message"] and doc["maxLineBytes"] == 4096
    # The same query as a POST body works.
    resp = await svc.client.post(
        "/api/timeseries",
        json={"site": SITE, "points": names, "start": START, "end": START + 600_000},
        headers={"X-ACE-Token": TOKEN},
    )
    assert len(await series_of(resp)) == 60


async def test_past_the_default_line_limit_too(svc: Service) -> None:
    status, _, body = await raw_request(svc, get_line("/api/timeseries?x=" + "a" * 70_000))
    assert status == 414
    assert json.loads(body)["maxLineBytes"] == 65_536


async def test_protocol_errors_carry_cors_when_any_origin_may_call(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    svc = await start_service(aiohttp_client, sim, tmp_path, cors_origins=("*",))
    status, headers, _ = await raw_request(svc, get_line("/api/health?x=" + "a" * 70_000))
    assert status == 414
    assert headers["access-control-allow-origin"] == "*"


async def test_a_header_past_its_limit_is_a_json_431(svc: Service) -> None:
    status, headers, body = await raw_request(
        svc, get_line("/api/health", "X-Padding: " + "p" * 20_000)
    )
    assert status == 431
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"] == "headers_too_large"


async def test_a_malformed_request_is_a_json_400(svc: Service) -> None:
    status, headers, body = await raw_request(svc, b"GET /api/health HTTP/1.1\r\nHost\r\n\r\n")
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"] == "bad_request"


# --- unknown points ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/timeseries", "/api/aggregations"])
async def test_unknown_points_are_a_404_naming_them(svc: Service, path: str) -> None:
    known = svc.points(1)
    resp = await svc.get(path, query([*known, "no/such.point", "other/gone"], START, END))
    assert resp.status == 404
    body = await resp.json()
    assert body["error"] == "not_found" and body["siteId"] == SITE
    assert body["unknownPoints"] == ["no/such.point", "other/gone"]
    assert "no/such.point" in body["message"]


async def test_a_known_point_without_data_is_an_empty_series(svc: Service) -> None:
    point = svc.points(1)
    resp = await svc.get("/api/timeseries", query(point, NOW_MS + DAY, NOW_MS + 2 * DAY))
    (series,) = await series_of(resp)
    assert series["name"] == point[0] and series["data"] == []


async def test_job_submission_checks_points_too(svc: Service) -> None:
    resp = await svc.client.post(
        "/api/jobs",
        json={
            "siteId": SITE,
            "pointNames": [svc.points(1)[0], "no/such.point"],
            "startTime": START,
            "endTime": END,
        },
        headers={"X-ACE-Token": TOKEN},
    )
    assert resp.status == 404
    assert (await resp.json())["unknownPoints"] == ["no/such.point"]


async def test_when_the_catalogue_cannot_be_read_the_query_goes_ahead(
    svc: Service, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = svc.app[CATALOG]

    async def broken(site: str, *, token: str) -> frozenset[str]:
        from acechart.errors import OriginUnavailable

        raise OriginUnavailable("configured_points is down")

    catalog.names = broken  # type: ignore[method-assign]
    with caplog.at_level("WARNING"):
        resp = await svc.get(
            "/api/timeseries", query([*svc.points(1), "no/such.point"], START, END)
        )
    series = await series_of(resp)
    assert [s["name"] for s in series][1] == "no/such.point" and series[1]["data"] == []
    assert any("not checked" in r.getMessage() for r in caplog.records)


# --- CORS, HEAD, JSON errors ---------------------------------------------------------------


async def test_preflight_allows_every_method_of_the_route(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    svc = await start_service(aiohttp_client, sim, tmp_path, cors_origins=("https://app.example",))

    async def allowed(path: str, method: str) -> set[str]:
        resp = await svc.client.options(
            path,
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "X-ACE-Token, Content-Type",
            },
        )
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "Content-Type" in resp.headers["Access-Control-Allow-Headers"]
        return {m.strip() for m in resp.headers["Access-Control-Allow-Methods"].split(",")}

    assert {"POST", "OPTIONS"} <= await allowed("/api/jobs", "POST")
    assert {"GET", "HEAD", "DELETE", "OPTIONS"} <= await allowed("/api/jobs/abc", "DELETE")
    assert {"GET", "HEAD", "POST"} <= await allowed("/api/timeseries", "POST")
    assert {"GET", "HEAD"} <= await allowed(f"/api/sites/{SITE}/configured_points", "GET")
    nowhere = await svc.client.options(
        "/nowhere",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert nowhere.status == 404

    resp = await svc.get(
        "/api/timeseries",
        query(svc.points(1), START, END),
        headers={"Origin": "https://app.example"},
    )
    exposed = {h.strip() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {
        "X-Cache-Status", "X-Cache-Source", "X-Processing-Time", "X-Data-Samples",
        "X-Request-Id", "Location", "ETag", "Content-Range", "Retry-After", "Warning",
        "Content-Disposition", "Accept-Ranges",
    } <= exposed  # fmt: skip


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api/timeseries?site={site}&points={point}&start=2024-12-28&end=2024-12-29",
        "/api/aggregations?site={site}&points={point}&start=2024-12-28&end=2024-12-29",
        "/api/points?site={site}",
        "/api/sites",
        "/api/sites/{site}",
        "/api/sites/{site}/configured_points",
        "/api/sites/{site}/timeseries/paginated?start_time=2024-12-28&end_time=2024-12-28T01:00:00&raw_data=true",
        "/api/health",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/openapi.json",
    ],
)
async def test_head_works_wherever_get_does(svc: Service, path: str) -> None:
    target = path.format(site=SITE, point=quote(svc.points(1)[0], safe=""))
    got = await svc.client.get(target, headers={"X-ACE-Token": TOKEN})
    assert got.status == 200, await got.text()
    head = await svc.client.head(target, headers={"X-ACE-Token": TOKEN})
    assert head.status == 200
    assert head.headers.get("Content-Type") == got.headers.get("Content-Type")
    assert await head.read() == b""


async def test_head_of_job_routes(svc: Service) -> None:
    submitted = await svc.client.post(
        "/api/jobs",
        json={"siteId": SITE, "pointNames": svc.points(1), "startTime": START, "endTime": END},
        headers={"X-ACE-Token": TOKEN},
    )
    assert submitted.status == 202
    url = submitted.headers["Location"]
    for path in (url, url + "/events"):
        head = await svc.client.head(path, headers={"X-ACE-Token": TOKEN})
        assert head.status == 200, path
        assert await head.read() == b""


async def test_a_range_past_the_result_is_a_json_416(svc: Service) -> None:
    submitted = await svc.client.post(
        "/api/jobs",
        json={"siteId": SITE, "pointNames": svc.points(1), "startTime": START, "endTime": END},
        headers={"X-ACE-Token": TOKEN},
    )
    url = submitted.headers["Location"]
    for _ in range(200):
        status = await (await svc.client.get(url, headers={"X-ACE-Token": TOKEN})).json()
        if status["status"] == "completed":
            break
        await asyncio.sleep(0.05)
    assert status["status"] == "completed"
    resp = await svc.client.get(
        url + "/result", headers={"X-ACE-Token": TOKEN, "Range": "bytes=999999999-"}
    )
    assert resp.status == 416
    body = await resp.json()
    assert body["error"] == "range_not_satisfiable"
    assert resp.headers["Content-Range"].startswith("bytes */")
