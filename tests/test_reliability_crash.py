"""SIGKILL `acechart serve` mid-job and mid-cache-write, restart it on the same data
directory, and every answer and the job's result equal a clean run's.

Real processes on loopback ports: `acechart simulate` (slowed a little, so a kill lands
while work is in flight) and `acechart serve`, killed with SIGKILL (no cleanup runs:
what is on disk is whatever the writes left), then started again. Bounded: three kills
in the cache-write case, one in the job case, each wait capped.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from acechart.times import format_time, parse_iso_ms
from tests.real_processes import free_port, wait_listening

SITE = "ses_falls_city"
NOW = "2025-01-01T00:00:00Z"
NOW_MS = parse_iso_ms(NOW)
DAY = 86_400_000
TOKEN = "crash-token"
CMD = [sys.executable, "-m", "acechart", "--log-level", "WARNING"]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ACECHART_")}


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    port = free_port()
    env = dict(
        _clean_env(),
        ACECHART_SIMULATOR_MODE="realistic",
        ACECHART_SIMULATOR_NOW=NOW,
        ACECHART_SIMULATOR_TOKENS=f"{TOKEN}={SITE}",
        ACECHART_SIMULATOR_LATENCY_S="0.03",
    )
    sim = subprocess.Popen([*CMD, "simulate", "--port", str(port)], env=env)
    try:
        wait_listening(port, sim, "acechart simulate")
        yield f"http://127.0.0.1:{port}"
    finally:
        sim.terminate()
        try:
            sim.wait(timeout=20)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()


class Serve:
    """`acechart serve` on one data directory, started and killed at will."""

    def __init__(self, origin: str, data_dir: Path) -> None:
        self.origin = origin
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        port = free_port()
        env = dict(
            _clean_env(),
            ACECHART_DATA_DIR=str(self.data_dir),
            ACECHART_RATE_LIMIT_PER_MINUTE="0",
            ACECHART_ORIGIN_RETRY_BASE_S="0.01",
            ACECHART_JOB_WORKERS="1",
            ACECHART_JOB_POLL_INTERVAL_S="0.1",
            ACECHART_JOB_PROGRESS_INTERVAL_S="0.1",
            ACECHART_JOB_CHUNK_SAMPLES="20000",
        )
        self.proc = subprocess.Popen(
            [*CMD, "serve", "--port", str(port), "--origin", self.origin], env=env
        )
        wait_listening(port, self.proc, "acechart serve")
        self.url = f"http://127.0.0.1:{port}"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


@pytest.fixture
def serves(origin: str, tmp_path: Path) -> Iterator[dict[str, Serve]]:
    made = {name: Serve(origin, tmp_path / name) for name in ("clean", "crashed")}
    try:
        yield made
    finally:
        for serve in made.values():
            serve.stop()


async def _points(url: str, n: int) -> list[str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{url}/api/points", params={"site": SITE}, headers={"X-ACE-Token": TOKEN}
        ) as resp,
    ):
        assert resp.status == 200
        body = await resp.json()
    names = [p["name"] for p in body["points"] if p.get("collectInterval") == 300]
    return names[:n]


async def _call(method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
        session.request(method, url, headers={"X-ACE-Token": TOKEN}, **kwargs) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def _job_result(url: str, job_id: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        status, body = await _call("GET", f"{url}/api/jobs/{job_id}")
        assert status == 200, body
        if body["status"] == "completed":
            break
        assert body["status"] in ("queued", "processing"), body
        assert time.monotonic() < deadline, f"job still {body['status']} after {timeout} s"
        await asyncio.sleep(0.2)
    status, result = await _call("GET", f"{url}/api/jobs/{job_id}/result")
    assert status == 200
    return result["series"]


async def test_a_job_killed_mid_run_finishes_as_a_clean_run_does(
    serves: dict[str, Serve],
) -> None:
    clean, crashed = serves["clean"], serves["crashed"]
    clean.start()
    points = await _points(clean.url, 8)
    body = {
        "siteId": SITE,
        "pointNames": points,
        "startTime": format_time(NOW_MS - 60 * DAY),
        "endTime": format_time(NOW_MS - 10 * DAY),
        "format": "json",
    }
    status, accepted = await _call("POST", f"{clean.url}/api/jobs", json=body)
    assert status == 202
    expected = await _job_result(clean.url, accepted["jobId"])
    assert len(expected) == 8 and all(s["data"] for s in expected)
    clean.stop()

    crashed.start()
    status, accepted = await _call("POST", f"{crashed.url}/api/jobs", json=body)
    assert status == 202
    job_id = accepted["jobId"]
    deadline = time.monotonic() + 60
    while True:  # kill it once the run is well under way
        status, state = await _call("GET", f"{crashed.url}/api/jobs/{job_id}")
        if state["status"] == "processing" and state["progress"] >= 10:
            break
        assert state["status"] != "completed", "the job finished before the kill"
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    crashed.kill()
    crashed.start()
    assert await _job_result(crashed.url, job_id) == expected


async def test_kills_during_cache_writes_leave_answers_as_a_clean_run_gives(
    serves: dict[str, Serve],
) -> None:
    clean, crashed = serves["clean"], serves["crashed"]
    clean.start()
    points = await _points(clean.url, 12)
    params = {
        "site": SITE,
        "points": ",".join(points),
        "start": format_time(NOW_MS - 75 * DAY),
        "end": format_time(NOW_MS - 50 * DAY),
    }
    status, expected = await _call("GET", f"{clean.url}/api/timeseries", params=params)
    assert status == 200 and all(s["data"] for s in expected["series"])
    clean.stop()

    cut = 0
    blocks = crashed.data_dir / "objects"
    for _ in range(3):
        crashed.start()
        before = len(list(blocks.rglob("*.blk")))
        request = asyncio.ensure_future(
            _call("GET", f"{crashed.url}/api/timeseries", params=params)
        )
        deadline = time.monotonic() + 10
        # Kill as soon as block writes begin (the answer comes after them).
        while len(list(blocks.rglob("*.blk"))) == before and not request.done():
            assert time.monotonic() < deadline, "no block was written"
            await asyncio.sleep(0.005)
        crashed.kill()
        try:
            await request
        except (TimeoutError, aiohttp.ClientError):
            cut += 1  # cut off by the kill mid-work (else it answered before it)
    assert cut >= 1
    assert list(blocks.rglob("*.blk"))  # some writes got through
    crashed.start()
    for _ in range(2):  # the first may refetch what the kills left unwritten; the second hits
        status, got = await _call("GET", f"{crashed.url}/api/timeseries", params=params)
        assert status == 200
        assert got["series"] == expected["series"]
