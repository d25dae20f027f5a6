"""The engine on the seed's large query: 50 one-minute points x 365 days.

The simulator runs in its own process with 50 ms latency per page (the origin is
a remote server). For raw and 1hr answers: cold (nothing cached), warm (all
cached) and half-warm (first half cached), against the alternative a user has
without acechart: paging the origin directly with the same parallel client.
Reports wall time, origin requests, samples/s and the process's peak RSS
(a high-water mark, so it only grows from row to row).

Run: `.venv/bin/python -m benches.bench_engine` (about 3 minutes on 2 cores;
`--interval 1hr` runs the 1hr rows only).

`test_aggregate_tier_read` (run by `make bench`) times the aggregate tier alone on the
warm 1hr answer of that query, 50 points x 365 days (437,950 buckets), read from SQLite
into per-point arrays: the columnar tier (one blob per point and month, one SELECT,
one Rust batch decode) against the previous row tier, kept here as a reference
(`RowTable`: one `timeseries_aggregations` row per bucket, the same SELECT and NumPy
conversion the tier used before, in the same database file).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from acechart.cache.aggregates import AggregateStore
from acechart.origin.client import OriginClient
from acechart.query import Query
from acechart.result import AGG_INT_KEYS, AGG_KEYS
from acechart.runtime import Runtime
from acechart.settings import Settings
from acechart.storage import Database
from acechart.times import parse_iso_ms
from benches.bench_origin import SITE, TOKEN, one_minute_points, start_simulator
from benches.data import NAMES, START_MS, year_series

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


def run_all(intervals: tuple[str, ...] = ("raw", "1hr")) -> list[Row]:
    names = one_minute_points(50)
    proc, url = start_simulator()
    try:
        rows = [asyncio.run(direct(url, names))] if "raw" in intervals else []
        for interval in intervals:
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


# --------------------------------------------- the aggregate tier alone, warm 1hr


class RowTable:
    """The previous aggregate tier's read path: one `timeseries_aggregations` row per
    bucket, read through one SELECT and converted to per-point arrays in NumPy."""

    COLUMNS = ("timestamp", "count", "sum_value", "min_value", "max_value", "avg_value")
    COLUMNS += ("stddev", "m2", "first_value", "last_value")
    UPSERT = (
        "INSERT INTO timeseries_aggregations (site_id, point_name, aggregation_level, "
        + ", ".join(COLUMNS)
        + ") VALUES ("
        + ", ".join("?" * (3 + len(COLUMNS)))
        + ")"
    )
    SELECT = (
        "SELECT p.key, "
        + ", ".join(f"a.{c}" for c in COLUMNS)
        + " FROM json_each(?1) AS p CROSS JOIN timeseries_aggregations AS a"
        " ON a.site_id = ?2 AND a.point_name = p.value AND a.aggregation_level = ?3"
        " AND a.timestamp >= ?4 AND a.timestamp < ?5"
    )

    def __init__(self, db: Database) -> None:
        self.db = db

    async def write(self, site: str, level: str, by_point: dict[str, Any]) -> None:
        params = []
        for point, agg in by_point.items():
            columns = [np.asarray(agg[k]).tolist() for k in AGG_KEYS]
            params += zip(
                itertools.repeat(site), itertools.repeat(point), itertools.repeat(level), *columns
            )
        async with self.db.transaction() as tx:
            await tx.executemany(self.UPSERT, params)

    async def read(
        self, site: str, points: list[str], level: str, start: int, end: int
    ) -> dict[str, dict[str, np.ndarray]]:
        rows = await self.db.fetch_tuples(
            self.SELECT, (json.dumps(points), site, level, start, end)
        )
        return await asyncio.to_thread(self.arrays, points, rows)

    @staticmethod
    def arrays(points: list[str], rows: list[tuple[Any, ...]]) -> dict[str, dict[str, np.ndarray]]:
        width = 1 + len(AGG_KEYS)
        flat = np.fromiter(
            itertools.chain.from_iterable(rows), dtype=np.float64, count=len(rows) * width
        )
        table = flat.reshape(len(rows), width)
        index = table[:, 0].astype(np.int64)
        order = np.lexsort((table[:, 1], index))
        table, index = table[order], index[order]
        by_key = {}
        for j, k in enumerate(AGG_KEYS, start=1):
            col = np.ascontiguousarray(table[:, j])
            by_key[k] = col.astype(np.int64) if k in AGG_INT_KEYS else col
        bounds = np.searchsorted(index, np.arange(len(points) + 1))
        return {
            p: {k: by_key[k][bounds[i] : bounds[i + 1]] for k in AGG_KEYS}
            for i, p in enumerate(points)
        }


TIER_START = START_MS  # 2024-01-01
TIER_END = START_MS + 365 * DAY
TIER_NOW = TIER_END + 400 * DAY  # all archived: kept for good


@pytest.fixture(scope="module")
def tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, ...]]:
    """One database holding the 1hr (and 1day) buckets of 50 points x 365 days both ways."""
    loop = asyncio.new_event_loop()
    path = Path(tmp_path_factory.mktemp("tier")) / "acechart.db"
    db = loop.run_until_complete(Database.open(path))
    store, rows = AggregateStore(db), RowTable(db)
    raw = {
        n: (ts, v, [(int(ts[0]), int(ts[-1]) + 60_000)])
        for n, (ts, v) in zip(NAMES, year_series(50), strict=True)
    }
    loop.run_until_complete(store.write_from_raw(SITE, raw, TIER_NOW, "1hr"))
    got = loop.run_until_complete(store.read(SITE, NAMES, "1hr", TIER_START, TIER_END))
    loop.run_until_complete(rows.write(SITE, "1hr", got))
    try:
        yield loop, store, rows, sum(len(a["ts"]) for a in got.values())
    finally:
        loop.run_until_complete(db.close())
        loop.close()


@pytest.mark.parametrize("impl", ["acechart", "row table (previous tier)"])
def test_aggregate_tier_read(benchmark: Any, tier: tuple[Any, ...], impl: str) -> None:
    loop, store, rows, buckets = tier
    benchmark.group = f"aggregate tier read, warm 1hr: 50 points x 365 days ({buckets:,} buckets)"
    benchmark.extra_info.update(impl=impl, samples=buckets)
    reader = store if impl == "acechart" else rows

    def read() -> dict[str, Any]:
        return loop.run_until_complete(reader.read(SITE, NAMES, "1hr", TIER_START, TIER_END))  # type: ignore[no-any-return]

    got = benchmark.pedantic(read, rounds=5, iterations=1, warmup_rounds=1)
    assert sum(len(a["ts"]) for a in got.values()) == buckets


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--interval", choices=["raw", "1hr"], action="append")
    args = parser.parse_args()
    print(f"50 one-minute points x 365 days ({START} .. {END}), 50 ms per origin page")
    print(table(run_all(tuple(args.interval or ("raw", "1hr")))))
