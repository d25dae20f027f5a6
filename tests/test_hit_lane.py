"""The hit lane (`server/lane.py`): repeated data GETs answered from the edge before their
route, with the route's headers, log line, metrics and refusals.

`answered_by_route` wraps `pipeline.answer` (calling through) to count which
requests reached the route: the lane must answer the third identical GET, and
must step aside for anything it cannot answer as the route would.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acechart.server import pipeline, requestlog
from tests.conftest import NOW_MS, Sim
from tests.server_helpers import (
    DAY,
    ClientFactory,
    Service,
    edge_clock,
    query,
    sample_value,
    start_service,
)

PER_REQUEST = frozenset({"date", "x-request-id", "x-processing-time"})


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path) -> Service:
    """The lane in the middleware alone: `test_connection_lane` has the one ahead of it."""
    return await start_service(
        aiohttp_client, sim, tmp_path, rate_limit_per_minute=0, server_connection_lane=False
    )


@pytest.fixture
def answered_by_route(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Each request the route's pipeline answered (its `Accept`, or '-')."""
    seen: list[str] = []
    original = pipeline.answer

    async def counted(request: Any, data: Any) -> Any:
        seen.append(request.headers.get("Accept", "-"))
        return await original(request, data)

    monkeypatch.setattr(pipeline, "answer", counted)
    yield seen


def params(svc: Service) -> dict[str, Any]:
    return query(svc.points(3), NOW_MS - 5 * DAY, NOW_MS - 4 * DAY)


def same_headers(a: Any, b: Any) -> dict[str, str]:
    left = {k.lower(): v for k, v in a.headers.items() if k.lower() not in PER_REQUEST}
    right = {k.lower(): v for k, v in b.headers.items() if k.lower() not in PER_REQUEST}
    assert left == right
    return left


async def test_the_third_identical_get_is_answered_by_the_lane(
    svc: Service, answered_by_route: list[str]
) -> None:
    p = params(svc)
    first = await svc.get("/api/timeseries", p)
    second = await svc.get("/api/timeseries", p)
    assert first.headers["X-Cache-Status"] == "MISS" and second.headers["X-Cache-Status"] == "HIT"
    assert len(answered_by_route) == 2
    third = await svc.get("/api/timeseries", p)
    assert len(answered_by_route) == 2  # the lane answered
    headers = same_headers(second, third)
    assert headers["x-cache-source"] == "EDGE"
    assert await second.read() == await third.read()
    assert third.headers["X-Request-Id"] != second.headers["X-Request-Id"]
    etag = third.headers["ETag"]
    not_modified = await svc.get("/api/timeseries", p, headers={"If-None-Match": etag})
    assert not_modified.status == 304 and len(answered_by_route) == 2


async def test_the_lane_logs_and_counts_as_the_route_does(
    svc: Service, answered_by_route: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=requestlog.__name__)
    p = params(svc)
    await svc.get("/api/timeseries", p)
    before = await (await svc.get("/metrics", token=None)).text()
    caplog.clear()
    await svc.get("/api/timeseries", p)  # the route's hit
    await svc.get("/api/timeseries", p)  # the lane's
    assert len(answered_by_route) == 2
    lines = [r.fields for r in caplog.records if getattr(r, "fields", None)]  # type: ignore[attr-defined]
    route, lane = (line for line in lines if line["request"]["url"].startswith("/api/time"))
    for line in (route, lane):
        line.pop("requestId")
        line["response"].pop("processingTime")
    assert route == lane
    assert lane["response"]["cacheStatus"] == "HIT" and lane["classification"] == "cached"
    after = await (await svc.get("/metrics", token=None)).text()

    for sample in (
        'acechart_requests_by_cache_total{status="hit"}',
        'acechart_requests_total{endpoint="timeseries",status="200"}',
        'acechart_cache_latency_seconds_count{tier="edge"}',
    ):
        assert sample_value(after, sample) - sample_value(before, sample) == 2, sample


@pytest.mark.parametrize(
    "headers",
    [{"Cache-Control": "no-cache"}, {"Cache-Control": "max-age=60"}],
)
async def test_a_request_with_cache_control_goes_to_the_route(
    svc: Service, answered_by_route: list[str], headers: dict[str, str]
) -> None:
    p = params(svc)
    for _ in range(2):
        await svc.get("/api/timeseries", p)
    got = await svc.get("/api/timeseries", p, headers=headers)
    assert got.status == 200 and len(answered_by_route) == 3


async def test_another_representation_has_its_own_ticket(
    svc: Service, answered_by_route: list[str]
) -> None:
    p = params(svc)
    for _ in range(2):
        await svc.get("/api/timeseries", p)
    packed = {"Accept": "application/x-msgpack"}
    first = await svc.get("/api/timeseries", p, headers=packed)
    assert first.headers["Content-Type"] == "application/x-msgpack"
    assert answered_by_route[-1] == "application/x-msgpack"
    await svc.get("/api/timeseries", p, headers=packed)
    routed = len(answered_by_route)
    again = await svc.get("/api/timeseries", p, headers=packed)
    assert again.headers["Content-Type"] == "application/x-msgpack"
    assert len(answered_by_route) == routed


async def test_a_stale_entry_goes_to_the_route_which_revalidates(
    svc: Service, answered_by_route: list[str]
) -> None:
    clock = edge_clock(svc)
    p = params(svc)
    for _ in range(2):
        await svc.get("/api/timeseries", p)
    control = (await svc.get("/api/timeseries", p)).headers["Cache-Control"]
    max_age = int(control.split("max-age=")[1].split(",")[0])
    routed = len(answered_by_route)
    clock.advance(max_age + 1)
    stale = await svc.get("/api/timeseries", p)
    assert stale.headers["X-Cache-Status"] == "STALE" and "Warning" in stale.headers
    assert len(answered_by_route) == routed + 1


@pytest.mark.parametrize("token", [None, "nope", "bad token"])
async def test_a_missing_or_refused_token_gets_the_routes_answer(
    svc: Service, answered_by_route: list[str], token: str | None
) -> None:
    p = params(svc)
    for _ in range(2):
        await svc.get("/api/timeseries", p)
    refused = await svc.get("/api/timeseries", p, token=token)
    assert refused.status in (400, 401)
    body = await refused.json()
    assert "X-Cache-Status" not in refused.headers and "series" not in body
    fresh = await route_answer(svc, p, token)
    assert (refused.status, {k: v for k, v in body.items() if k != "requestId"}) == fresh


async def route_answer(svc: Service, p: dict[str, Any], token: str | None) -> tuple[int, Any]:
    """The route's own answer to `token` (a URL the lane has no ticket for: one more point)."""
    other = dict(p, points=p["points"] + "," + svc.points(4)[3])
    got = await svc.get("/api/timeseries", other, token=token)
    body = await got.json()
    body.pop("requestId", None)
    return got.status, body
