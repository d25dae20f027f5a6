"""A real client: the Node.js harness of `tests/clients/` against a spawned `acechart demo`.

The harness behaves like the old Worker's web app (MessagePack preferred, the paginated
walk, a 202 followed to its job, columns read as Float64Arrays); this test checks that
what it read equals what the service answers as JSON and what the simulator holds.
Skipped only when `node` is not installed (CI has it, and `.ci/run` installs the
harness's one dependency).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from acechart.times import format_time, parse_iso_ms

CLIENTS = Path(__file__).parent / "clients"
NODE = shutil.which("node")
TOKEN = "demo-token"

pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed (needed for tests/clients)"
)

Row = tuple[str, int, float | None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`acechart demo` on free ports; its service and simulator URLs."""
    port, origin_port = free_port(), free_port()
    env = {
        **os.environ,
        "ACECHART_RATE_LIMIT_PER_MINUTE": "0",
        # An origin 50 ms away, one-hour windows per point and a 0.4 s budget, so a
        # two-day query of two points (96 requests: 12 rounds of 8, 0.6 s however fast
        # the origin is measured to send) is a background job and a two-hour chart
        # (one round) is answered at once, both per point.
        "ACECHART_SIMULATOR_LATENCY_S": "0.05",
        "ACECHART_ORIGIN_STRATEGY": "per_point",
        "ACECHART_ORIGIN_POINT_WINDOW_S": "3600",
        "ACECHART_ORIGIN_ESTIMATE_ROUND_S": "0.05",
        "ACECHART_REQUEST_BUDGET_S": "0.4",
        "ACECHART_LOG_FORMAT": "text",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "acechart", "--log-level", "WARNING", "demo",
         "--port", str(port), "--origin-port", str(origin_port),
         "--data-dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    drain: threading.Thread | None = None
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "acechart demo is running" in line:
                break
        else:
            pytest.fail("acechart demo did not start:\n" + "".join(seen))
        if proc.poll() is not None:
            pytest.fail("acechart demo exited:\n" + "".join(seen))
        # Keep reading what it prints, so a full pipe never blocks it.
        drain = threading.Thread(target=lambda: seen.extend(proc.stdout or ()), daemon=True)
        drain.start()
        yield {
            "service": f"http://127.0.0.1:{port}",
            "origin": f"http://127.0.0.1:{origin_port}",
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if drain is not None:
            drain.join(timeout=10)
        proc.stdout.close()


def run_harness(spec: dict[str, Any]) -> dict[str, Any]:
    if not (CLIENTS / "node_modules" / "@msgpack" / "msgpack").is_dir():
        pytest.fail("the harness is not installed: run (cd tests/clients && npm ci)")
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(CLIENTS / "run.mjs"), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def rows(raw: list[list[Any]]) -> list[Row]:
    out = [(str(n), int(t), None if v is None else float(v)) for n, t, v in raw]
    return sorted(out, key=lambda r: (r[1], r[0]))


async def service_rows(base: str, site: str, points: list[str], start: int, end: int) -> list[Row]:
    """The same samples as the service's `/api/timeseries` JSON ([start, end))."""
    params = {
        "site": site,
        "points": ",".join(points),
        "start": format_time(start),
        "end": format_time(end),
    }
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + "/api/timeseries", params=params, headers={"X-ACE-Token": TOKEN}) as r,
    ):
        assert r.status == 200, await r.text()
        doc = await r.json()
    return rows([[s["name"], t, v] for s in doc["series"] for t, v in s["data"]])


async def origin_rows(base: str, points: list[str], start: int, end: int) -> list[Row]:
    """The simulator's own samples of `points` over [start, end) (its end is included)."""
    out: list[list[Any]] = []
    async with aiohttp.ClientSession() as session:
        for point in points:
            params = {"start_time": format_time(start)[:-1], "end_time": format_time(end - 1)[:-1]}
            async with session.get(
                f"{base}/points/{quote(point, safe='/')}/timeseries",
                params=params,
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as r:
                assert r.status == 200, await r.text()
                doc = await r.json()
            for s in doc["point_samples"]:
                value = s["value"]
                number = None if value is None else float(value)
                out.append([s["name"], parse_iso_ms(s["time"]), number])
    return rows(out)


def same(a: list[Row], b: list[Row]) -> bool:
    """Equal rows, NaN and null alike."""

    def norm(v: float | None) -> float | None:
        return None if v is None or math.isnan(v) else v

    return [(n, t, norm(v)) for n, t, v in a] == [(n, t, norm(v)) for n, t, v in b]


def test_the_node_harness_reads_what_the_engine_holds(demo: dict[str, str]) -> None:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
    start = int(day.timestamp() * 1000)
    end = start + 2 * 3_600_000  # included by the paginated route
    job_start, job_end = start - 4 * 86_400_000, start - 2 * 86_400_000
    spec = {
        "baseUrl": demo["service"],
        "token": TOKEN,
        "start": format_time(start),
        "end": format_time(end),
        "pageSize": 50,
        "jobStart": format_time(job_start),
        "jobEnd": format_time(job_end),
    }
    got = run_harness(spec)

    assert got["health"]["status"] == "ok"
    assert got["sitesTotal"] >= 1 and got["pointsTotal"] > 100
    points: list[str] = got["points"]
    assert len(points) == 3
    assert "application/x-msgpack" in got["contentTypes"]

    expected = asyncio.run(service_rows(demo["service"], got["site"], points, start, end + 1))
    assert len(expected) > 100
    walked = rows(got["paginated"]["rows"])
    assert got["paginated"]["pages"] == -(-len(expected) // 50)
    assert same(walked, expected)
    as_sent = [(str(n), int(t)) for n, t, _ in got["paginated"]["rows"]]
    assert as_sent == sorted(as_sent, key=lambda r: (r[1], r[0]))  # (time, name) order
    assert same(rows(got["columns"]["rows"]), expected)
    assert got["columns"]["totalSamples"] == len(expected)

    job = got["job"]
    assert job["asynchronous"] and job["jobId"] and job["polls"] >= 1
    origin = asyncio.run(origin_rows(demo["origin"], job["points"], job_start, job_end))
    assert len(origin) > 2000
    assert same(rows(job["rows"]), origin)
