"""A job's origin traffic reaches /metrics like a request's: the engine reports every query."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from acechart.times import format_time
from tests.conftest import NOW_MS, SITE, Sim
from tests.server_helpers import DAY, ClientFactory, start_service, unlabelled


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert found is not None, name
    return float(found.group(1))


async def test_a_jobs_fetches_are_counted_in_the_origin_metrics(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    svc = await start_service(aiohttp_client, sim, tmp_path, job_poll_interval_s=0.05)
    before = unlabelled(await (await svc.get("/metrics", token=None)).text())
    points = list(sim.site.names[:3])
    body = {
        "siteId": SITE,
        "pointNames": points,
        "startTime": format_time(NOW_MS - 59 * DAY),
        "endTime": format_time(NOW_MS - 40 * DAY),
    }
    resp = await svc.client.post("/api/jobs", json=body, headers={"X-ACE-Token": "demo-token"})
    assert resp.status == 202, await resp.text()
    url = (await resp.json())["statusUrl"]
    for _ in range(400):
        status = await (await svc.get(url)).json()
        if status["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.05)
    assert status["status"] == "completed", status
    after = unlabelled(await (await svc.get("/metrics", token=None)).text())
    for name in (
        "acechart_origin_requests_total",
        "acechart_origin_samples_total",
        "acechart_block_writes_total",
        "acechart_answered_samples_total",
    ):
        assert metric(after, name) > metric(before, name), name
    assert 'acechart_origin_fetches_total{strategy="per_point"}' in after
