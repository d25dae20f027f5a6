"""The old Worker's ACE-shaped routes over the real service and the realistic simulator:
`/api/sites`, `/api/sites/{site}`, `/api/sites/{site}/configured_points`, `/api/health`,
and the pass-through of every other `/api/` GET to the origin."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from acechart import __version__
from acechart.errors import BadRequest
from acechart.server.keys import CATALOG
from acechart.server.routes.proxy import origin_url
from tests.conftest import SITE, TOKEN, Sim, SimFactory
from tests.server_helpers import ClientFactory, Service, start_service

OTHER = "other_site"
THIRD = "third_site"


@pytest.fixture
async def real(make_simulator: SimFactory) -> Sim:
    """The realistic simulator (the real API's behaviour), three sites, two tokens."""
    return await make_simulator(
        sites=(SITE, OTHER, THIRD),
        tokens={TOKEN: frozenset({"*"}), "tok-one": frozenset({SITE})},
    )


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, real: Sim, tmp_path: Path) -> Service:
    return await start_service(aiohttp_client, real, tmp_path, rate_limit_per_minute=0)


async def origin_json(sim: Sim, path: str, params: dict[str, Any] | None = None) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            sim.url + path, params=params, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return await resp.json()


# --- /api/sites -----------------------------------------------------------------------


async def test_site_listing_in_the_origins_paged_shape(svc: Service) -> None:
    origin = await origin_json(svc.sim, "/sites", {"per_page": 100})
    resp = await svc.get("/api/sites", {"per_page": "2"})
    assert resp.status == 200
    body = await resp.json()
    assert list(body) == ["page", "pages", "per_page", "total", "items"]
    assert (body["page"], body["pages"], body["per_page"], body["total"]) == (1, 2, 2, 3)
    assert body["items"] == origin["items"][:2]
    second = await (await svc.get("/api/sites", {"page": "2", "per_page": "2"})).json()
    assert second["items"] == origin["items"][2:]
    past = await (await svc.get("/api/sites", {"page": "9", "per_page": "2"})).json()
    assert past["items"] == [] and past["total"] == 3
    default = await (await svc.get("/api/sites")).json()
    assert default["per_page"] == 10 and len(default["items"]) == 3
    only = await (await svc.get("/api/sites", token="tok-one")).json()
    assert [s["name"] for s in only["items"]] == [SITE]


async def test_site_listing_is_cached_per_token(svc: Service) -> None:
    svc.sim.log.clear()
    for page in ("1", "2", "1"):
        assert (await svc.get("/api/sites", {"page": page, "per_page": "2"})).status == 200
    assert len(svc.sim.log.matching("/sites")) == 1
    assert (await svc.get("/api/sites", token="tok-one")).status == 200
    assert len(svc.sim.log.matching("/sites")) == 2


@pytest.mark.parametrize(
    ("params", "parameter"),
    [({"page": "0"}, "page"), ({"per_page": "x"}, "per_page"), ({"per_page": "5000"}, "per_page")],
)
async def test_site_listing_rejects_bad_paging(
    svc: Service, params: dict[str, str], parameter: str
) -> None:
    resp = await svc.get("/api/sites", params)
    assert resp.status == 400
    assert (await resp.json())["parameter"] == parameter


async def test_site_listing_needs_a_token_the_origin_accepts(svc: Service) -> None:
    missing = await svc.get("/api/sites", token=None)
    assert missing.status == 401
    assert (await missing.json())["error"] == "unauthorized"
    refused = await svc.get("/api/sites", token="not-a-token")
    assert refused.status == 401
    assert (await refused.json())["error"] == "unauthorized"


# --- /api/sites/{site} ------------------------------------------------------------------


async def test_one_site_is_the_origins_record(svc: Service) -> None:
    origin = await origin_json(svc.sim, f"/sites/{SITE}")
    resp = await svc.get(f"/api/sites/{SITE}")
    assert resp.status == 200
    assert await resp.json() == origin
    svc.sim.log.clear()
    again = await svc.get(f"/api/sites/{SITE}")
    assert await again.json() == origin
    assert len(svc.sim.log) == 0  # remembered with the (token, site) check
    head = await svc.client.head(f"/api/sites/{SITE}", headers={"X-ACE-Token": TOKEN})
    assert head.status == 200 and await head.read() == b""


async def test_one_site_goes_through_the_site_check(svc: Service) -> None:
    forbidden = await svc.get(f"/api/sites/{OTHER}", token="tok-one")
    assert forbidden.status == 403
    assert (await forbidden.json())["error"] == "forbidden"
    unknown = await svc.get("/api/sites/no_such_site")
    assert unknown.status in (403, 404)  # the real API answers 403 for an unknown site
    assert (await unknown.json())["error"] in ("forbidden", "not_found")
    assert (await svc.get(f"/api/sites/{SITE}", token=None)).status == 401


# --- /api/sites/{site}/configured_points -----------------------------------------------


async def test_configured_points_are_the_origins_items_field_for_field(svc: Service) -> None:
    origin: list[dict[str, Any]] = []
    page = 1
    while True:
        body = await origin_json(
            svc.sim, f"/sites/{SITE}/configured_points", {"page": page, "per_page": 100}
        )
        origin += body["items"]
        if page >= body["pages"]:
            break
        page += 1
    by_name = sorted(origin, key=lambda p: p["name"])
    fields = {
        "id", "name", "client", "site", "kv_tags", "bacnet_data", "marker_tags",
        "collect_config", "point_type", "collect_enabled", "collect_interval", "created",
        "updated",
    }  # fmt: skip
    assert fields <= set(by_name[0])

    resp = await svc.get(f"/api/sites/{SITE}/configured_points", {"per_page": "50"})
    assert resp.status == 200
    body = await resp.json()
    assert list(body) == ["page", "pages", "per_page", "total", "items"]
    total = len(origin)
    assert (body["page"], body["per_page"], body["total"]) == (1, 50, total)
    assert body["pages"] == -(-total // 50)
    assert body["items"] == by_name[:50]

    walked: list[dict[str, Any]] = []
    for p in range(1, body["pages"] + 1):
        page_body = await (
            await svc.get(
                f"/api/sites/{SITE}/configured_points", {"page": str(p), "per_page": "50"}
            )
        ).json()
        walked += page_body["items"]
    assert walked == by_name
    default = await (await svc.get(f"/api/sites/{SITE}/configured_points")).json()
    assert default["per_page"] == 10 and default["items"] == by_name[:10]


async def test_configured_points_come_from_the_catalogue_unless_bypassed(svc: Service) -> None:
    path = f"/api/sites/{SITE}/configured_points"
    assert (await svc.get(path)).status == 200
    svc.sim.log.clear()
    assert (await svc.get(path, {"page": "2"})).status == 200
    assert not svc.sim.log.matching("/configured_points")
    assert (await svc.get(path, {"bypass_cache": "true"})).status == 200
    assert svc.sim.log.matching("/configured_points")
    bad = await svc.get(path, {"bypass_cache": "perhaps"})
    assert bad.status == 400 and (await bad.json())["parameter"] == "bypass_cache"


async def test_configured_points_of_rows_without_origin_items_are_refetched(svc: Service) -> None:
    path = f"/api/sites/{SITE}/configured_points"
    first = await (await svc.get(path)).json()
    db = svc.app[CATALOG].db
    await db.execute("UPDATE point_metadata SET origin_item = NULL")  # as before migration 6
    svc.sim.log.clear()
    again = await (await svc.get(path)).json()
    assert again == first
    assert svc.sim.log.matching("/configured_points")


async def test_configured_points_check_the_site(svc: Service) -> None:
    resp = await svc.get(f"/api/sites/{OTHER}/configured_points", token="tok-one")
    assert resp.status == 403
    assert (await resp.json())["error"] == "forbidden"


# --- /api/health ------------------------------------------------------------------------


async def test_api_health_as_the_worker_had_it(svc: Service) -> None:
    resp = await svc.get("/api/health", token=None)
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok" and body["version"] == __version__
    assert body["timestamp"].endswith("Z")
    head = await svc.client.head("/api/health")
    assert head.status == 200


# --- the pass-through of every other /api/ GET -----------------------------------------


async def test_other_api_gets_go_to_the_origin_unchanged(svc: Service) -> None:
    point = svc.sim.site.names[0]
    params = {
        "start_time": "2024-12-30T00:00:00",
        "end_time": "2024-12-30T01:00:00",
    }
    path = f"/points/{quote(point, safe='/')}/timeseries"
    origin = await origin_json(svc.sim, path, params)
    svc.sim.log.clear()
    resp = await svc.get("/api" + path, params)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["X-Cache-Source"] == "ORIGIN"
    assert await resp.json() == origin
    (record,) = svc.sim.log.records
    assert record.params == params  # the query string is passed through


async def test_the_pass_through_keeps_the_origins_status_and_body(svc: Service) -> None:
    resp = await svc.get(f"/api/sites/{OTHER}/timeseries", token="tok-one")
    assert resp.status == 403  # the real API's 403 with a null body, unchanged
    assert await resp.read() == b"null"
    missing = await svc.get("/api/no/such/route")
    assert missing.status == 404  # the origin's own 404, not ours
    assert (await svc.get("/api/no/such/route", token=None)).status == 401


async def test_the_pass_through_answers_head(svc: Service) -> None:
    resp = await svc.client.head(f"/api/sites/{SITE}/timeseries", headers={"X-ACE-Token": TOKEN})
    assert resp.status in (200, 400)  # the origin's answer to the same GET, without a body
    assert await resp.read() == b""


@pytest.mark.parametrize(
    "target",
    [
        "/api/../sites",
        "/api/sites/../../etc/passwd",
        "/api/sites/%2e%2e/x",
        "/api/sites/%2E%2e/x",
        "/api/sites/.%2e/x",
        "/api/sites/%252e%252e/x",
        "/api/sites/..%2f..%2fx",
        "/api/sites/..%5c..%5cx",
        "/api/sites/./x",
        "/api/sites//x",
        "/api//evil.example/x",
        "/api/sites/%00/x",
    ],
)
async def test_the_pass_through_refuses_paths_leaving_the_origins_api(
    svc: Service, target: str
) -> None:
    svc.sim.log.clear()
    status, body = await raw_get(svc, target)
    assert status in (400, 404), body
    assert len(svc.sim.log) == 0  # nothing reached the origin


async def raw_get(svc: Service, target: str) -> tuple[int, bytes]:
    """A GET of exactly `target` (no client-side normalisation) over a socket."""
    server = svc.client.server
    host, port = server.host, server.port
    assert port is not None
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\nX-ACE-Token: {TOKEN}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    ("base", "target", "expected"),
    [
        ("https://ace.example/api", "/api/sites?page=2", "https://ace.example/api/sites?page=2"),
        ("https://ace.example/api/", "/api/a%2Fb/c", "https://ace.example/api/a%2Fb/c"),
        ("http://127.0.0.1:8081", "/api/points/a/b.c/timeseries?x=1&x=2",
         "http://127.0.0.1:8081/points/a/b.c/timeseries?x=1&x=2"),
        ("https://ace.example/api", "/api/sites/", "https://ace.example/api/sites/"),
    ],
)  # fmt: skip
def test_origin_urls_keep_the_path_and_query_byte_for_byte(
    base: str, target: str, expected: str
) -> None:
    assert str(origin_url(base, target)) == expected


@pytest.mark.parametrize(
    "target",
    ["/api/x/../y", "/api/%2e%2e", "/api//x", "/api/a/%2e/b", "/api/@evil.example/x/.."],
)
def test_origin_urls_refuse_escapes(target: str) -> None:
    with pytest.raises(BadRequest):
        origin_url("https://ace.example/api", target)


async def test_the_pass_through_is_bounded_in_size_and_time(
    aiohttp_client: ClientFactory, real: Sim, tmp_path: Path
) -> None:
    svc = await start_service(
        aiohttp_client, real, tmp_path, proxy_max_bytes=2000, proxy_timeout_s=0.3
    )
    point = real.site.names[0]
    path = f"/api/points/{quote(point, safe='/')}/timeseries"
    params = {"start_time": "2024-12-30T00:00:00", "end_time": "2024-12-31T00:00:00"}
    big = await svc.get(path, params)
    assert big.status == 502
    body = await big.json()
    assert body["error"] == "origin_unavailable" and "2000 bytes" in body["message"]

    real.faults.configure(latency_s=1.0, path_contains="/timeseries")
    slow = await svc.get(path, {**params, "end_time": "2024-12-30T00:10:00"})
    assert slow.status == 504
    assert (await slow.json())["error"] == "origin_timeout"


async def test_non_get_unknown_api_paths_are_json_405(svc: Service) -> None:
    resp = await svc.client.post("/api/nothing", headers={"X-ACE-Token": TOKEN})
    assert resp.status == 405
    body = await resp.json()
    assert body["error"] == "method_not_allowed"
    assert "GET" in resp.headers["Allow"]


async def test_points_of_a_site_listed_in_both_shapes_agree(svc: Service) -> None:
    ours = await (await svc.get("/api/points", {"site": SITE, "limit": "5"})).json()
    ace = await (await svc.get(f"/api/sites/{SITE}/configured_points", {"per_page": "5"})).json()
    assert [p["name"] for p in ours["points"]] == [p["name"] for p in ace["items"]]
