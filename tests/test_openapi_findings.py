"""What the schemathesis run found, each pinned by a test that failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW_MS, SITE, TOKEN, Sim
from tests.server_helpers import DAY, ClientFactory, Service, start_service

START = NOW_MS - 3 * DAY
END = START + 6 * 3_600_000


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path) -> Service:
    return await start_service(aiohttp_client, sim, tmp_path, rate_limit_per_minute=0)


async def test_a_get_on_a_post_route_of_ours_is_a_405_not_a_question_to_the_origin(
    svc: Service,
) -> None:
    before = len(svc.sim.log.records)
    resp = await svc.get("/api/jobs")
    assert resp.status == 405
    assert resp.headers["Allow"] == "POST"
    assert (await resp.json())["error"] == "method_not_allowed"
    assert len(svc.sim.log.records) == before
    options = await svc.client.options("/api/jobs", headers={"X-ACE-Token": TOKEN})
    assert options.status == 405
    assert options.headers["Allow"] == "POST"
    # Routes of ours keep every method they have; other paths still go to the origin.
    wrong = await svc.client.delete("/api/timeseries", headers={"X-ACE-Token": TOKEN})
    assert set(wrong.headers["Allow"].split(",")) == {"GET", "HEAD", "POST"}
    passed = await svc.get("/api/sites/" + SITE + "/points_nobody_serves")
    assert passed.status == 404
    assert passed.headers["X-Cache-Source"] == "ORIGIN"


async def test_names_a_query_body_does_not_use_are_ignored_whatever_their_value(
    svc: Service,
) -> None:
    points = svc.points(1)
    body = {
        "site": SITE,
        "points": points,
        "start": START,
        "end": END,
        "clientInfo": {"app": "dashboard", "tags": [1, 2]},
        "extra": [None, True],
    }
    resp = await svc.client.post("/api/timeseries", json=body, headers={"X-ACE-Token": TOKEN})
    assert resp.status == 200, await resp.text()
    assert [s["name"] for s in (await resp.json())["series"]] == points


async def test_a_job_takes_whole_numbers_written_as_floats(svc: Service) -> None:
    body = {
        "siteId": SITE,
        "pointNames": svc.points(1),
        "startTime": float(START),
        "endTime": float(END),
        "maxPoints": 100.0,
        "downsample": "m4",
    }
    resp = await svc.client.post("/api/jobs", json=body, headers={"X-ACE-Token": TOKEN})
    assert resp.status == 202, await resp.text()
    fraction = {**body, "maxPoints": 100.5}
    refused = await svc.client.post("/api/jobs", json=fraction, headers={"X-ACE-Token": TOKEN})
    assert refused.status == 400
    assert (await refused.json())["parameter"] == "maxPoints"
