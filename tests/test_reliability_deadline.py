"""A hung origin no longer holds a synchronous request for minutes: the request's whole
deadline (`request_deadline_s`) ends it in the seed's `timeout` body (504), or in the
stale copy when one is kept. Jobs are not bound by it."""

from __future__ import annotations

import time
from pathlib import Path

from acechart.server.keys import EDGE
from tests.conftest import NOW_MS, TOKEN, Sim
from tests.jobs_support import StackFactory, finish
from tests.jobs_support import query as job_query
from tests.server_helpers import DAY, ClientFactory, query, start_service


async def test_a_hung_origin_is_a_504_at_the_deadline(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    svc = await start_service(
        aiohttp_client,
        sim,
        tmp_path,
        request_deadline_s=1.0,
        origin_timeout_s=120.0,
        origin_read_timeout_s=60.0,
    )
    params = query(svc.points(1), NOW_MS - 3 * DAY, NOW_MS - 2 * DAY)
    assert (await svc.get("/api/points", {"site": params["site"]})).status == 200
    sim.faults.configure(path_contains="timeseries", hang_s=3.0)
    sim.faults.script("hang")
    started = time.monotonic()
    resp = await svc.get("/api/timeseries", params)
    elapsed = time.monotonic() - started
    assert resp.status == 504, await resp.text()
    body = await resp.json()
    assert body["error"] == "timeout" and "deadline" in body["message"]
    assert resp.headers["Retry-After"] == str(body["retryAfter"])
    assert 0.9 <= elapsed < 5.0


async def test_past_the_deadline_a_stale_copy_is_served(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    svc = await start_service(aiohttp_client, sim, tmp_path, request_deadline_s=1.0)
    # A recent range: its edge entry lives minutes, not days.
    params = query(svc.points(1), NOW_MS - 3_600_000, NOW_MS)
    first = await svc.get("/api/timeseries", params)
    assert first.status == 200
    expected = await first.read()
    edge = svc.app[EDGE]
    real_clock = edge.clock
    edge.clock = lambda: real_clock() + 3_600  # past fresh and stale, inside if-error
    sim.faults.configure(path_contains="timeseries", hang_s=3.0)
    sim.faults.script("hang")
    started = time.monotonic()
    resp = await svc.get("/api/timeseries", params)
    assert time.monotonic() - started < 5.0
    assert resp.status == 200 and "Warning" in resp.headers
    assert await resp.read() == expected


async def test_jobs_are_not_bound_by_the_request_deadline(stacks: StackFactory) -> None:
    stack = await stacks.open(request_deadline_s=0.2)
    stack.sim.faults.configure(path_contains="timeseries", latency_s=0.3)
    job = await stack.jobs.submit(job_query(stack.sim, 1, 2), "json", TOKEN)
    final, _ = await finish(stack.jobs, job.id)
    assert final.status == "completed"
