"""A cold year in one request: 1 point x 365 days at interval=1day, nothing cached.

The realistic simulator (the real API's behaviour: no point filter, one
timestamp per collection run) runs in its own process with a fixed latency per
request, as a remote origin would. Each run starts `acechart serve` afresh on
an empty data directory (so its cache is cold and its throughput record holds
only the seed) and times one `GET /api/timeseries?interval=1day` for the year:
it must be a synchronous 200 (the target is under 5 s). Beside it, the
baseline: the notebook API (`acechart.Client`) fetching the same year into its
own empty cache. The ratio is notebook / service (> 1: the service is faster).

Run: `.venv/bin/python -m benches.bench_cold_year` (about a minute; `--runs`,
`--latency`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

import acechart
from acechart.simulator.datagen import DataSource
from acechart.times import format_time, parse_iso_ms

SITE = "ses_falls_city"
TOKEN = "demo-token"
NOW = parse_iso_ms("2025-01-01T00:00:00Z")
DAY = 86_400_000
START, END = NOW - 365 * DAY, NOW


@dataclass
class Run:
    service_s: float
    notebook_s: float
    status: int
    cache_status: str
    buckets: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(proc: subprocess.Popen[bytes], port: int, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{what} did not start")


def start(
    args: list[str], env: dict[str, str], port: int, what: str, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`acechart ARGS` in a child process, its output in `log` (if given), once it listens."""
    cmd = [sys.executable, "-m", "acechart", "--log-level", "WARNING", *args]
    out = log.open("wb") if log is not None else None
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out)
    if out is not None:
        out.close()  # the child holds its own copy
    wait_listening(proc, port, what)
    return proc


def one_minute_point() -> str:
    table = DataSource((SITE,), seed=1, vav_count=36).sites[SITE]
    return next(p.name for p in table.site.points if p.cadence_s == 60)


async def service_year(base: str, point: str) -> tuple[float, int, str, int]:
    params = {
        "site": SITE,
        "points": point,
        "start": format_time(START),
        "end": format_time(END),
        "interval": "1day",
    }
    async with aiohttp.ClientSession() as http:
        t = time.perf_counter()
        async with http.get(
            f"{base}/api/timeseries", params=params, headers={"X-ACE-Token": TOKEN}
        ) as resp:
            body = await resp.json()
            elapsed = time.perf_counter() - t
            buckets = len(body["series"][0]["data"]) if resp.status == 200 else 0
            return elapsed, resp.status, resp.headers.get("X-Cache-Status", ""), buckets


def notebook_year(origin: str, data_dir: str, point: str) -> float:
    t = time.perf_counter()
    with acechart.Client(token=TOKEN, origin_url=origin, data_dir=data_dir, progress=False) as ace:
        result = ace.query(SITE, point, START, END, interval="1day", tz="UTC")
    elapsed = time.perf_counter() - t
    assert len(result.series[0]) == 365
    return elapsed


def run_once(origin: str, point: str, env: dict[str, str]) -> Run:
    with tempfile.TemporaryDirectory(prefix="acechart-bench-") as tmp:
        port = free_port()
        service = start(
            ["serve", "--port", str(port), "--origin", origin, "--data-dir", f"{tmp}/svc"],
            env,
            port,
            "acechart serve",
            log=Path(tmp) / "serve.log",
        )
        try:
            svc_s, status, cache, buckets = asyncio.run(
                service_year(f"http://127.0.0.1:{port}", point)
            )
        finally:
            service.terminate()
            service.wait(timeout=30)
        nb_s = notebook_year(origin, f"{tmp}/nb", point)
    return Run(svc_s, nb_s, status, cache, buckets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.05, help="origin latency, s")
    args = parser.parse_args()
    sim_port = free_port()
    env = dict(
        os.environ,
        ACECHART_SIMULATOR_MODE="realistic",
        ACECHART_SIMULATOR_LATENCY_S=str(args.latency),
        ACECHART_SIMULATOR_NOW="2025-01-01T00:00:00Z",
        ACECHART_RATE_LIMIT_PER_MINUTE="0",
    )
    sim = start(["simulate", "--port", str(sim_port)], env, sim_port, "the simulator")
    origin = f"http://127.0.0.1:{sim_port}"
    point = one_minute_point()
    try:
        runs = [run_once(origin, point, env) for _ in range(args.runs)]
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    print(
        f"cold year, 1 point x 365 days at 1day, realistic simulator "
        f"({args.latency * 1000:g} ms latency), {os.cpu_count()} cpus, {args.runs} runs"
    )
    print(
        "| run | service GET /api/timeseries | status | X-Cache-Status | buckets | notebook API |"
    )
    print("|---:|---:|---:|---|---:|---:|")
    for i, r in enumerate(runs, 1):
        print(
            f"| {i} | {r.service_s:.2f} s | {r.status} | {r.cache_status} | {r.buckets} "
            f"| {r.notebook_s:.2f} s |"
        )
    svc = statistics.median(r.service_s for r in runs)
    nb = statistics.median(r.notebook_s for r in runs)
    print(
        f"median: service {svc:.2f} s, notebook API {nb:.2f} s, "
        f"ratio notebook/service {nb / svc:.2f}"
    )
    if any(r.status != 200 for r in runs):
        raise SystemExit("the cold year was not answered synchronously")


if __name__ == "__main__":
    main()
