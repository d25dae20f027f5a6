"""The cost of sharing: two `acechart serve` instances on PostgreSQL + Redis + S3 (moto)
against one instance on the embedded defaults (SQLite, in-process queue, local store).

    python -m benches.bench_scale                    # ~2 minutes, loopback only
    python -m benches.bench_scale --requests 2000 --job-days 365

Both set-ups get the same origin (`acechart simulate`, realistic, fixed "now") and the
same load: `--requests` GETs of one cached /api/timeseries query (3 points x 1 day),
`--concurrency` in flight, alternating between the instances when there are two (no
balancer: the client is the balancer); then one background job of `--job-points`
five-minute points x `--job-days` days, raw JSON, submitted and followed on the first
instance. Prints cached p50/p99, requests per second and the job's seconds for each,
and the ratio shared / embedded. Bounded in count; servers run on loopback ports in
temporary directories and are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from acechart.times import format_time, parse_iso_ms
from tests.backends import run_postgres, run_redis, shared_backend
from tests.real_processes import free_port, wait_listening
from tests.test_scale_out import Instance, instance_env

SITE = "ses_falls_city"
NOW = "2025-01-01T00:00:00Z"
NOW_MS = parse_iso_ms(NOW)
DAY = 86_400_000
TOKEN = "demo-token"


@contextlib.contextmanager
def simulator() -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACECHART_")}
    env.update(ACECHART_SIMULATOR_MODE="realistic", ACECHART_SIMULATOR_NOW=NOW)
    cmd = [sys.executable, "-m", "acechart", "--log-level", "WARNING", "simulate"]
    proc = subprocess.Popen([*cmd, "--port", str(port)], env=env)
    try:
        wait_listening(port, proc, "acechart simulate")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@contextlib.contextmanager
def moto() -> Iterator[Any]:
    from moto.server import ThreadedMotoServer

    from tests.storage_fixtures import MotoS3

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        from aiobotocore.session import get_session

        made = MotoS3(f"http://{host}:{port}", "acechart-bench", get_session())
        made.boto3_client().create_bucket(Bucket=made.bucket)
        yield made
    finally:
        server.stop()


async def call(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any]:
    async with session.request(method, url, headers={"X-ACE-Token": TOKEN}, **kwargs) as resp:
        body = await resp.read()
        return resp.status, body


async def measure(urls: list[str], args: argparse.Namespace) -> dict[str, float]:
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        status, body = await call(session, "GET", f"{urls[0]}/api/points", params={"site": SITE})
        assert status == 200, body
        points = [p["name"] for p in json.loads(body)["points"] if p.get("collectInterval") == 300]
        small = {
            "site": SITE,
            "points": ",".join(points[:3]),
            "start": format_time(NOW_MS - 10 * DAY),
            "end": format_time(NOW_MS - 9 * DAY),
        }
        for url in urls:  # warm every instance's caches
            assert (await call(session, "GET", f"{url}/api/timeseries", params=small))[0] == 200
        latencies: list[float] = []
        sent = 0

        async def worker() -> None:
            nonlocal sent
            while sent < args.requests:
                url = urls[sent % len(urls)]
                sent += 1
                t0 = time.perf_counter()
                status, _ = await call(session, "GET", f"{url}/api/timeseries", params=small)
                latencies.append(time.perf_counter() - t0)
                assert status == 200

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        load_s = time.perf_counter() - t0
        job = {
            "siteId": SITE,
            "pointNames": points[: args.job_points],
            "startTime": format_time(NOW_MS - args.job_days * DAY),
            "endTime": format_time(NOW_MS),
            "format": "json",
        }
        t0 = time.perf_counter()
        status, body = await call(session, "POST", f"{urls[0]}/api/jobs", json=job)
        assert status == 202, body
        job_id = json.loads(body)["jobId"]
        while True:
            status, body = await call(session, "GET", f"{urls[0]}/api/jobs/{job_id}")
            state = json.loads(body)
            if state["status"] == "completed":
                break
            assert state["status"] in ("queued", "processing"), state
            await asyncio.sleep(0.2)
        job_s = time.perf_counter() - t0
    ms = np.array(latencies) * 1000
    return {
        "cached_p50_ms": float(np.percentile(ms, 50)),
        "cached_p99_ms": float(np.percentile(ms, 99)),
        "requests_per_s": args.requests / load_s,
        "job_s": job_s,
    }


def embedded_env(origin: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACECHART_")}
    env.update(
        ACECHART_ORIGIN_URL=origin,
        ACECHART_DATA_DIR=str(data_dir),
        ACECHART_RATE_LIMIT_PER_MINUTE="0",
        ACECHART_REQUEST_BUDGET_S="1000000",
    )
    return env


async def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, simulator() as origin:
        one = Instance("embedded", embedded_env(origin, Path(tmp) / "embedded")).start()
        try:
            results["embedded (1 instance)"] = await measure([one.url], args)
        finally:
            one.stop()
        with run_postgres() as pg, run_redis() as redis, moto() as s3:
            backend = shared_backend(pg, redis)
            prefix = f"bench-{uuid.uuid4().hex[:8]}/"
            pair = [
                Instance(n, instance_env(backend, s3, prefix, origin, n, Path(tmp) / n))
                for n in ("a", "b")
            ]
            for instance in pair:
                # The shared instances as deployed, not as tuned for the tests.
                instance.env.update(
                    ACECHART_JOB_POLL_INTERVAL_S="1",
                    ACECHART_JOB_PROGRESS_INTERVAL_S="0.5",
                    ACECHART_JOB_VISIBILITY_TIMEOUT_S="30",
                    ACECHART_JOB_CHUNK_SAMPLES="4000000",
                )
                instance.start()
            try:
                results["shared (2 instances)"] = await measure([i.url for i in pair], args)
            finally:
                for instance in pair:
                    instance.stop()
    return results


def report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    names = list(results)
    rows = [
        ("cached p50 (ms)", "cached_p50_ms", "{:.2f}"),
        ("cached p99 (ms)", "cached_p99_ms", "{:.2f}"),
        ("requests/s", "requests_per_s", "{:.0f}"),
        (f"job: {args.job_points} points x {args.job_days} days (s)", "job_s", "{:.1f}"),
    ]
    lines = [f"| | {' | '.join(names)} | shared / embedded |", "|---|---|---|---|"]
    for label, key, fmt in rows:
        a, b = results[names[0]][key], results[names[1]][key]
        lines.append(f"| {label} | {fmt.format(a)} | {fmt.format(b)} | {b / a:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--job-points", type=int, default=50)
    p.add_argument("--job-days", type=int, default=365)
    args = p.parse_args(argv)
    results = asyncio.run(run(args))
    print(report(results, args))
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
