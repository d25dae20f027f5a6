"""The engine on the seed's large query: 50 one-minute points x 365 days.

The simulator runs in its own process with 50 ms latency per page (the origin is
a remote server). For raw and 1hr answers: cold (nothing cached), warm (all
cached) and half-warm (first half cached), against the alternative a user has
without acechart: paging the origin directly with the same parallel client.
Reports wall time, origin requests, samples/s and the process's peak RSS
(a high-water mark, so it only grows from row to row).

Run: `.venv/bin/python -m benches.bench_engine` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import asyncio
import resource
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import pytest

from acechart.origin.client import OriginClient
from acechart.query import Query
from acechart.runtime import Runtime
from acechart.settings import Settings
from acechart.times import parse_iso_ms
from benches.bench_origin import SITE, TOKEN, one_minute_points, start_simulator

NOW = parse_iso_ms("2025-01-01T00:00:00Z")
DAY = 86_400_000
# Ends 7 days before "now": the aggregate tier keeps only data older than that.
END = NOW - 7 * DAY
START = END - 365 * DAY


@dataclass
class Row:
    case: str
    wall_s: float
    requests: int
    samples: int
    rss_mb: float
    source: str = ""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def settings(url: str, data_dir: str) -> Settings:
    return Settings.from_env({}, origin_url=url, data_dir=data_dir)


async def direct(url: str, names: list[str]) -> Row:
    t = time.perf_counter()
    async with OriginClient(settings(url, "unused")) as client:
        got = await client.fetch_samples(SITE, names, START, END, token=TOKEN)
    return Row(
        "direct origin fetch (no cache)",
        time.perf_counter() - t,
        got.requests,
        len(got),
        peak_rss_mb(),
    )


async def engine_query(rt: Runtime, names: list[str], interval: str, start: int, case: str) -> Row:
    t = time.perf_counter()
    result = await rt.engine.query(Query(SITE, tuple(names), start, END, interval), token=TOKEN)
    wall = time.perf_counter() - t
    p = result.provenance
    return Row(case, wall, p.origin_requests, result.total_samples, peak_rss_mb(), p.cache_source)


async def scenario(url: str, names: list[str], interval: str) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rt = await Runtime.open(settings(url, tmp))
        rt.engine.clock = lambda: NOW
        try:
            rows.append(await engine_query(rt, names, interval, START, f"{interval} cold"))
            rows.append(await engine_query(rt, names, interval, START, f"{interval} warm"))
        finally:
            await rt.close()
    with tempfile.TemporaryDirectory() as tmp:
        rt = await Runtime.open(settings(url, tmp))
        rt.engine.clock = lambda: NOW
        try:
            half = START + (END - START) // 2
            await rt.engine.query(Query(SITE, tuple(names), START, half, interval), token=TOKEN)
            rows.append(await engine_query(rt, names, interval, START, f"{interval} half-warm"))
        finally:
            await rt.close()
    return rows


def run_all() -> list[Row]:
    names = one_minute_points(50)
    proc, url = start_simulator()
    try:
        rows = [asyncio.run(direct(url, names))]
        for interval in ("raw", "1hr"):
            rows += asyncio.run(scenario(url, names, interval))
        return rows
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def table(rows: list[Row]) -> str:
    out = [
        "| case | wall s | origin requests | samples returned | samples/s | source | peak RSS MB |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        rate = f"{r.samples / r.wall_s / 1e6:.2f} M" if r.wall_s else "-"
        out.append(
            f"| {r.case} | {r.wall_s:.2f} | {r.requests} | {r.samples:,} | {rate} | {r.source} "
            f"| {r.rss_mb:.0f} |"
        )
    return "\n".join(out)


@pytest.mark.skip(reason="minutes long: run `python -m benches.bench_engine`")
def test_engine_year(benchmark: Any) -> None:
    benchmark.pedantic(run_all, rounds=1, iterations=1)


if __name__ == "__main__":
    print(f"50 one-minute points x 365 days ({START} .. {END}), 50 ms per origin page")
    print(table(run_all()))
