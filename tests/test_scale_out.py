"""Two real `acechart serve` processes on shared PostgreSQL, Redis and S3 (moto).

No balancer: the test alternates between the instances itself. The simulator
runs in the test's process (on a loopback port), so every origin request either
instance makes is counted at the origin. The instances' environment is the one
`deploy/compose.yaml` gives its two `acechart` services (test_deploy.py checks
the names it uses are real settings).

What the issue asks, one test each: a query on A warms B (zero origin requests);
a job submitted on A, which runs no workers, runs on B and is readable from both;
the instance running a job is killed with SIGKILL and the other finishes it with
the synchronous answer's data; concurrent identical cold queries on A and B make
one origin fetch; the rate limit is shared; a saved chart made on A is listed,
changed and counted on B.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from acechart.times import format_time
from tests.backends import Backend
from tests.conftest import NOW_MS, SITE, TOKEN, Sim, SimFactory
from tests.real_processes import free_port, wait_listening
from tests.storage_fixtures import ACCESS_KEY, REGION, SECRET_KEY, MotoS3

DAY = 86_400_000


def instance_env(
    backend: Backend, moto: MotoS3, prefix: str, origin: str, name: str, data_dir: Path
) -> dict[str, str]:
    """Everything one instance of the shared deployment is configured with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACECHART_")}
    env.update(backend.env())
    env.update(
        ACECHART_ORIGIN_URL=origin,
        ACECHART_INSTANCE_ID=name,
        ACECHART_DATA_DIR=str(data_dir),
        ACECHART_OBJECT_STORE="s3",
        ACECHART_S3_ENDPOINT_URL=moto.endpoint_url,
        ACECHART_S3_BUCKET=moto.bucket,
        ACECHART_S3_REGION=REGION,
        ACECHART_S3_ACCESS_KEY=ACCESS_KEY,
        ACECHART_S3_SECRET_KEY=SECRET_KEY,
        ACECHART_S3_PREFIX=prefix,
        ACECHART_RATE_LIMIT_PER_MINUTE="0",
        ACECHART_ORIGIN_RETRY_BASE_S="0.01",
        ACECHART_JOB_POLL_INTERVAL_S="0.1",
        ACECHART_JOB_PROGRESS_INTERVAL_S="0.1",
        ACECHART_JOB_CHUNK_SAMPLES="20000",
        ACECHART_JOB_VISIBILITY_TIMEOUT_S="2",
        ACECHART_FETCH_LOCK_LEASE_S="5",
        # The synchronous route answers what the job answers, for the comparison.
        ACECHART_REQUEST_BUDGET_S="1000000",
    )
    return env


@dataclass
class Instance:
    name: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""

    def start(self, **overrides: str) -> Instance:
        port = free_port()
        self.env.update(overrides)
        cmd = [sys.executable, "-m", "acechart", "--log-level", "WARNING", "serve"]
        self.proc = subprocess.Popen([*cmd, "--port", str(port)], env=self.env)
        wait_listening(port, self.proc, f"acechart serve ({self.name})")
        self.url = f"http://127.0.0.1:{port}"
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
            session.request(
                method, self.url + path, headers={"X-ACE-Token": TOKEN}, **kwargs
            ) as resp,
        ):
            return resp.status, await resp.json(content_type=None), resp.headers


@dataclass
class Cluster:
    sim: Sim
    instances: dict[str, Instance] = field(default_factory=dict)

    def origin_requests(self) -> int:
        return len(self.sim.log.matching("timeseries"))


@pytest.fixture
async def sim(make_simulator: SimFactory) -> Sim:
    return await make_simulator()  # the realistic API


@pytest.fixture
def cluster(shared: Backend, sim: Sim, moto_s3: MotoS3, tmp_path: Path) -> Iterator[Cluster]:
    prefix = f"scale-{uuid.uuid4().hex[:8]}/"
    made = Cluster(sim)
    for name in ("a", "b"):
        env = instance_env(shared, moto_s3, prefix, sim.url, name, tmp_path / name)
        made.instances[name] = Instance(name, env)
    try:
        yield made
    finally:
        for instance in made.instances.values():
            instance.stop()


def timeseries(points: list[str], start: int, end: int) -> dict[str, str]:
    return {
        "site": SITE,
        "points": ",".join(points),
        "start": format_time(start),
        "end": format_time(end),
    }


async def five_minute_points(instance: Instance, n: int) -> list[str]:
    status, body, _ = await instance.call("GET", "/api/points", params={"site": SITE})
    assert status == 200, body
    return [p["name"] for p in body["points"] if p.get("collectInterval") == 300][:n]


async def test_a_query_on_a_warms_b(cluster: Cluster) -> None:
    a, b = cluster.instances["a"].start(), cluster.instances["b"].start()
    points = await five_minute_points(a, 3)
    params = timeseries(points, NOW_MS - 30 * DAY, NOW_MS - 20 * DAY)
    status, first, _ = await a.call("GET", "/api/timeseries", params=params)
    assert status == 200
    asked = cluster.origin_requests()
    assert asked > 0
    status, again, _ = await b.call("GET", "/api/timeseries", params=params)
    assert status == 200 and cluster.origin_requests() == asked  # zero origin requests
    assert again["series"] == first["series"]


async def test_a_job_submitted_on_a_runs_on_bs_workers(cluster: Cluster) -> None:
    a = cluster.instances["a"].start(ACECHART_JOB_WORKERS="0")
    b = cluster.instances["b"].start(ACECHART_JOB_WORKERS="1")
    points = await five_minute_points(a, 2)
    body = {
        "siteId": SITE,
        "pointNames": points,
        "startTime": format_time(NOW_MS - 10 * DAY),
        "endTime": format_time(NOW_MS - 5 * DAY),
        "format": "json",
    }
    status, accepted, _ = await a.call("POST", "/api/jobs", json=body)
    assert status == 202, accepted
    job_id = accepted["jobId"]
    await finished(a, job_id)  # followed on A, which runs nothing
    status, from_a, _ = await a.call("GET", f"/api/jobs/{job_id}/result")
    status_b, from_b, _ = await b.call("GET", f"/api/jobs/{job_id}/result")
    assert status == status_b == 200 and from_a == from_b and len(from_a["series"]) == 2


async def test_killing_the_instance_running_a_job_lets_the_other_finish_it(
    cluster: Cluster,
) -> None:
    cluster.sim.faults.configure(latency_s=0.03)
    a = cluster.instances["a"].start(ACECHART_JOB_WORKERS="1")
    points = await five_minute_points(a, 8)
    start, end = NOW_MS - 60 * DAY, NOW_MS - 10 * DAY
    body = {
        "siteId": SITE,
        "pointNames": points,
        "startTime": format_time(start),
        "endTime": format_time(end),
        "format": "json",
    }
    status, accepted, _ = await a.call("POST", "/api/jobs", json=body)
    assert status == 202
    job_id = accepted["jobId"]
    deadline = time.monotonic() + 60
    while True:  # A runs it (B is not up yet); kill A well into the run
        _, state, _ = await a.call("GET", f"/api/jobs/{job_id}")
        if state["status"] == "processing" and state["progress"] >= 10:
            break
        assert state["status"] != "completed", "the job finished before the kill"
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    b = cluster.instances["b"].start(ACECHART_JOB_WORKERS="1")
    cluster.instances["a"].kill()
    await finished(b, job_id, timeout=120)
    _, result, _ = await b.call("GET", f"/api/jobs/{job_id}/result")
    cluster.sim.faults.configure(latency_s=0.0)
    status, direct, _ = await b.call(
        "GET", "/api/timeseries", params=timeseries(points, start, end)
    )
    assert status == 200
    assert result["series"] == direct["series"]
    assert all(s["data"] for s in result["series"])


async def test_concurrent_identical_cold_queries_make_one_origin_fetch(cluster: Cluster) -> None:
    a, b = cluster.instances["a"].start(), cluster.instances["b"].start()
    points = await five_minute_points(a, 3)
    cluster.sim.faults.configure(latency_s=0.2)  # both are surely in flight together
    # What one cold query of this shape costs, measured alone on another range.
    before = cluster.origin_requests()
    alone = timeseries(points, NOW_MS - 90 * DAY, NOW_MS - 80 * DAY)
    assert (await a.call("GET", "/api/timeseries", params=alone))[0] == 200
    one_fetch = cluster.origin_requests() - before
    assert one_fetch > 0
    params = timeseries(points, NOW_MS - 40 * DAY, NOW_MS - 30 * DAY)
    before = cluster.origin_requests()
    (sa, ba, _), (sb, bb, _) = await asyncio.gather(
        a.call("GET", "/api/timeseries", params=params),
        b.call("GET", "/api/timeseries", params=params),
    )
    assert sa == sb == 200 and ba["series"] == bb["series"]
    assert cluster.origin_requests() - before == one_fetch


async def test_the_rate_limit_is_shared(cluster: Cluster) -> None:
    limit = {"ACECHART_RATE_LIMIT_PER_MINUTE": "6"}
    a, b = cluster.instances["a"].start(**limit), cluster.instances["b"].start(**limit)
    statuses = []
    for i in range(10):
        instance = a if i % 2 == 0 else b
        status, body, headers = await instance.call("GET", "/api/points", params={"site": SITE})
        statuses.append(status)
        if status == 429:
            assert body["error"] == "rate_limit_exceeded" and int(headers["Retry-After"]) > 0
    assert statuses == [200] * 6 + [429] * 4  # the same total as one instance allows


async def test_a_saved_chart_created_on_a_is_listed_and_drawn_on_b(cluster: Cluster) -> None:
    a, b = cluster.instances["a"].start(), cluster.instances["b"].start()
    points = await five_minute_points(a, 2)
    body = {
        "siteId": SITE,
        "chartType": "line",
        "title": "shared",
        "pointNames": points,
        "configJson": {"yAxis": [{"type": "value"}]},
        "isPublic": True,
        "query": {"start": format_time(NOW_MS - 2 * DAY), "end": format_time(NOW_MS - DAY)},
    }
    status, chart, _ = await a.call("POST", "/api/charts", json=body)
    assert status == 201, chart
    for params in ({"site": SITE}, {"site": SITE, "scope": "public"}):
        status, listed, _ = await b.call("GET", "/api/charts", params=params)
        assert status == 200, listed
        assert [c["id"] for c in listed["charts"]] == [chart["id"]]
    # The owner is the same on both (the shared job token key), so B lets it change.
    status, changed, _ = await b.call("PATCH", f"/api/charts/{chart['id']}", json={"title": "B"})
    assert status == 200 and changed["title"] == "B", changed
    status, seen, _ = await a.call("GET", f"/api/charts/{chart['id']}")
    assert status == 200 and seen["title"] == "B" and seen["viewCount"] == 1


async def finished(instance: Instance, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, state, _ = await instance.call("GET", f"/api/jobs/{job_id}")
        assert status == 200, state
        if state["status"] == "completed":
            return dict(state)
        assert state["status"] in ("queued", "processing"), state
        assert time.monotonic() < deadline, f"job still {state['status']} after {timeout} s"
        await asyncio.sleep(0.2)
