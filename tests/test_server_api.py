"""Everything else a client sees: 400s naming the parameter, the point catalogue,
health and readiness, metrics, the OpenAPI document, request ids, 404/405/500."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from acechart.server import create_app
from acechart.server.keys import CATALOG, RUNTIME
from tests.conftest import NOW_MS, SITE, Sim
from tests.server_helpers import DAY, ClientFactory, Service, query, start_service, unlabelled


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path) -> Service:
    return await start_service(
        aiohttp_client, sim, tmp_path, max_points_per_query=3, max_range_days=40
    )


def bad(**changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "site": SITE,
        "points": "a/b.c",
        "start": "2024-12-01",
        "end": "2024-12-02",
    }
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


@pytest.mark.parametrize(
    ("params", "parameter", "words"),
    [
        (bad(site=None), "site", "required"),
        (bad(points=None), "points", "required"),
        (bad(points=",,"), "points", "required"),
        (bad(points="a,b,c,d"), "points", "too many"),
        (bad(points="a,a"), "points", "repeat"),
        (bad(start=None), "start", "required"),
        (bad(start="yesterday"), "start", "ISO-8601"),
        (bad(end="2024-13-01"), "end", "ISO-8601"),
        (bad(end="2024-11-30"), "end", "after start"),
        (bad(end="2025-02-01"), "end", "too long"),
        (bad(interval="2min"), "interval", "unknown interval"),
        (bad(format="xml"), "format", "unknown format"),
        (bad(layout="diagonal"), "layout", "unknown layout"),
        (bad(layout="columns"), "layout", "MessagePack"),
        (bad(maxPoints="many"), "maxPoints", "integer"),
        (bad(maxPoints="2"), "maxPoints", "at least"),
        (bad(maxPoints=str(2**70)), "maxPoints", "at most"),
        (bad(start="0001-01-01T00:00:00+01:00"), "start", "between 1900"),
        (bad(start="2199-12-31", end="9999-12-31T23:59:59.999-01:00"), "end", "between 1900"),
        (bad(downsample="lttb", maxPoints="100"), "downsample", "unknown downsample"),
        (bad(downsample="m4"), "maxPoints", "needs maxPoints"),
        (bad(**{"async": "maybe"}), "async", "true or false"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(
    svc: Service, params: dict[str, Any], parameter: str, words: str
) -> None:
    resp = await svc.get("/api/timeseries", params)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_request"
    assert body["parameter"] == parameter
    assert words in body["message"]


async def test_points_catalogue_filters_and_refresh(svc: Service) -> None:
    resp = await svc.get("/api/points", {"site": SITE})
    assert resp.status == 200
    body = await resp.json()
    assert body["metadata"]["count"] == len(svc.sim.site.names) == len(body["points"])
    assert body["metadata"]["updatedAt"].endswith("Z")
    first = body["points"][0]
    assert set(first) >= {
        "name",
        "displayName",
        "equipment",
        "unit",
        "markerTags",
        "collectInterval",
    }
    by_name = {p["name"]: p for p in body["points"]}
    ahu = next(n for n in by_name if n.endswith("AHU-1.points.SaTemp"))
    assert by_name[ahu]["displayName"] == "AHU-1 SaTemp"
    assert by_name[ahu]["equipment"] == "AHU-1"

    found = (await (await svc.get("/api/points", {"site": SITE, "q": "satemp"})).json())["points"]
    assert found and all("satemp" in (p["name"] + p["displayName"]).lower() for p in found)
    equip = (await (await svc.get("/api/points", {"site": SITE, "equipment": "AHU-1"})).json())[
        "points"
    ]
    assert equip and {p["equipment"] for p in equip} == {"AHU-1"}
    tag = (await (await svc.get("/api/points", {"site": SITE, "tag": "temp"})).json())["points"]
    assert tag and all("temp" in p["markerTags"] for p in tag)
    page = await (await svc.get("/api/points", {"site": SITE, "limit": "5", "offset": "5"})).json()
    assert [p["name"] for p in page["points"]] == [p["name"] for p in body["points"][5:10]]

    listings = len(svc.sim.log.matching("/configured_points"))
    await svc.get("/api/points", {"site": SITE})
    assert len(svc.sim.log.matching("/configured_points")) == listings  # served from SQLite
    catalog = svc.app[CATALOG]
    wall = catalog.clock
    catalog.clock = lambda: wall() + 86_401
    await svc.get("/api/points", {"site": SITE})
    assert len(svc.sim.log.matching("/configured_points")) > listings  # a day later: refetched

    # A due refresh that fails serves the older catalogue, marked stale.
    catalog.clock = lambda: wall() + 2 * 86_401
    svc.sim.faults.configure(error_rate=1.0, path_contains="/configured_points")
    stale = await svc.get("/api/points", {"site": SITE})
    assert stale.status == 200 and stale.headers["Warning"].startswith("110")
    bad_limit = await svc.get("/api/points", {"site": SITE, "limit": "0"})
    assert bad_limit.status == 400 and (await bad_limit.json())["parameter"] == "limit"
    assert (await svc.get("/api/points", {})).status == 400


async def test_health_and_readiness(svc: Service) -> None:
    assert await (await svc.get("/healthz", token=None)).json() == {"status": "ok"}
    ready = await svc.get("/readyz", token=None)
    assert ready.status == 200
    checks = {"database": "ok", "objectStore": "ok", "origin": "ok"}
    if svc.settings.redis_url:
        checks["redis"] = "ok"  # every configured backend is checked
    assert await ready.json() == {
        "status": "ready",
        "checks": checks,
        "instance": svc.settings.instance_id,
    }
    svc.sim.faults.configure(error_rate=1.0, path_contains="/sites")
    down = await svc.get("/readyz", token=None)
    assert down.status == 503
    body = await down.json()
    assert body["status"] == "unavailable" and body["checks"]["origin"].startswith("error")
    assert body["checks"]["database"] == "ok"


async def test_metrics_label_every_sample_with_the_instance(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    svc = await start_service(aiohttp_client, sim, tmp_path, instance_id='node "a"')
    text = await (await svc.get("/metrics", token=None)).text()
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(samples) > 20
    assert all(line.count('instance_id="node \\"a\\""') == 1 for line in samples)
    assert 'acechart_queue_depth{instance_id="node \\"a\\""} 0.0' in samples


async def test_metrics_count_the_seeds_dimensions(svc: Service) -> None:
    pts = [p for p in svc.sim.site.names[:2]]
    params = query(pts, NOW_MS - 10 * DAY, NOW_MS - 9 * DAY)
    await svc.get("/api/timeseries", params)
    await svc.get("/api/timeseries", params)
    await svc.get("/api/timeseries", {**params, "format": "msgpack"})
    await svc.get("/api/timeseries", bad(interval="2min"))
    text = unlabelled(await (await svc.get("/metrics", token=None)).text())
    for line in (
        'acechart_requests_total{endpoint="timeseries",status="200"} 3.0',
        'acechart_requests_total{endpoint="timeseries",status="400"} 1.0',
        'acechart_requests_by_cache_total{status="hit"} 2.0',
        'acechart_requests_by_cache_total{status="miss"} 1.0',
        'acechart_requests_by_source_total{source="edge"} 1.0',
        'acechart_requests_by_source_total{source="r2"} 1.0',
        'acechart_requests_by_format_total{format="msgpack"} 1.0',
        'acechart_requests_by_size_total{size="medium"} 1.0',
        'acechart_requests_by_size_total{size="cached"} 2.0',
        'acechart_errors_total{type="client_error"} 1.0',
        "acechart_block_writes_total 2.0",
        "acechart_edge_cache_entries 2.0",
    ):
        assert line in text, line
    for name in (
        "acechart_response_seconds_bucket",
        "acechart_cache_latency_seconds_bucket",
        "acechart_origin_query_seconds_count",
        "acechart_block_store_bytes",
        "acechart_database_bytes",
        "acechart_origin_requests_total",
    ):
        assert name in text, name


async def test_openapi_documents_every_route(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    svc = await start_service(aiohttp_client, sim, tmp_path)
    doc = await (await svc.get("/api/openapi.json", token=None)).json()
    assert doc["openapi"].startswith("3.1")
    registered = {
        (route.resource.canonical, route.method.lower())
        for route in svc.app.router.routes()
        if route.resource is not None
    }
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert registered == documented
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert op["responses"], path
    data_errors = set(doc["paths"]["/api/timeseries"]["get"]["responses"])
    assert {
        "200",
        "304",
        "400",
        "401",
        "403",
        "404",
        "413",
        "429",
        "500",
        "502",
        "504",
    } <= data_errors
    names = {p["name"] for p in doc["paths"]["/api/timeseries"]["get"]["parameters"]}
    assert {"site", "points", "start", "end", "interval", "format", "layout", "maxPoints",
            "downsample", "async"} <= names  # fmt: skip
    refs = {v for v in _walk(doc) if isinstance(v, str) and v.startswith("#/components/")}
    for ref in refs:
        node: Any = doc
        for part in ref[2:].split("/"):
            node = node[part]


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
    else:
        yield node


async def test_request_ids_404_405_and_500_without_traceback(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.conftest import origin_settings

    app = create_app(origin_settings(sim.url, data_dir=str(tmp_path)))

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)
    given = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert given.headers["X-Request-Id"] == "abc-123"
    made = await client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert len(made.headers["X-Request-Id"]) == 32

    missing = await client.get("/nothing")  # under /api/ a GET goes to the origin
    assert missing.status == 404
    assert (await missing.json())["error"] == "not_found"
    wrong = await client.delete("/api/timeseries")
    assert wrong.status == 405
    assert (await wrong.json())["error"] == "method_not_allowed"
    assert {"GET", "HEAD", "POST"} <= set(wrong.headers["Allow"].replace(" ", "").split(","))

    with caplog.at_level("ERROR"):
        crash = await client.get("/boom")
    assert crash.status == 500
    text = await crash.text()
    assert "secret internals" not in text and "Traceback" not in text
    body = json.loads(text)
    assert body["error"] == "internal_error"
    assert body["requestId"] == crash.headers["X-Request-Id"]
    # The traceback is in the log line itself (credentials redacted from it).
    assert any("secret internals" in r.getMessage() for r in caplog.records)


async def test_runtime_given_to_the_app_is_left_open(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    from acechart.runtime import Runtime
    from tests.conftest import origin_settings

    settings = origin_settings(sim.url, data_dir=str(tmp_path))
    async with await Runtime.open(settings) as runtime:
        client = await aiohttp_client(create_app(settings, runtime))
        assert client.app[RUNTIME] is runtime
        await client.close()
        assert await runtime.db.fetchone("SELECT 1") is not None
