"""The engine over real parts: simulator over HTTP, SQLite file, local and S3 object stores."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest

from acechart import _core
from acechart.cache.aggregates import AggregateStore
from acechart.cache.blocks import BlockStore
from acechart.engine import Engine
from acechart.origin.client import OriginClient
from acechart.query import Query
from acechart.storage.database import Database
from acechart.storage.keys import block_key
from acechart.storage.objects import ObjectStore
from tests.backends import open_test_db
from tests.conftest import NOW_MS, SITE, TOKEN, Sim, origin_settings

HOUR = 3_600_000
DAY = 24 * HOUR
HORIZON = 2 * HOUR


@dataclass
class Rig:
    engine: Engine
    db: Database
    store: ObjectStore
    client: OriginClient
    sim: Sim
    clock: list[int]

    def points(self, n: int, cadence_s: int = 60) -> tuple[str, ...]:
        table = self.sim.site
        picked = [
            name for i, name in enumerate(table.names) if table.cadence_ms[i] == cadence_s * 1000
        ]
        return tuple(picked[:n])

    def origin_requests(self) -> list[Any]:
        return self.sim.log.matching("/timeseries", status=200)

    async def query(self, points: tuple[str, ...], start: int, end: int, **kw: Any) -> Any:
        return await self.engine.query(Query(SITE, points, start, end, **kw), token=TOKEN)

    def expected(self, point: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.sim.data.expected(SITE, point, start, end - 1)
        return rows.t_ms, rows.value


@pytest.fixture
async def rig(sim: Sim, object_store: ObjectStore, tmp_path: Path) -> AsyncIterator[Rig]:
    db = await open_test_db(tmp_path / "acechart.db")
    client = OriginClient(origin_settings(sim.url, origin_window_s=7 * 86_400))
    clock = [NOW_MS]
    blocks = BlockStore(object_store, db, horizon_ms=HORIZON, budget_bytes=1 << 30)
    engine = Engine(blocks, AggregateStore(db), client, clock=lambda: clock[0])
    yield Rig(engine, db, object_store, client, sim, clock)
    await client.close()
    await db.close()


def assert_same_samples(series: Any, want: tuple[np.ndarray, np.ndarray]) -> None:
    np.testing.assert_array_equal(series.ts, want[0])
    np.testing.assert_array_equal(series.values, want[1])


async def test_fetches_only_what_is_missing(rig: Rig) -> None:
    pts = rig.points(3)
    start = NOW_MS - 20 * DAY
    first = await rig.query(pts, start, start + 5 * DAY)
    assert first.provenance.cache_status == "MISS"
    n_first = len(rig.origin_requests())
    assert n_first > 0

    rig.sim.log.clear()
    wider = await rig.query(pts, start - 3 * DAY, start + 8 * DAY)
    asked = {(r.params["start_time"], r.params["end_time"]) for r in rig.origin_requests()}
    assert wider.provenance.cache_status == "PARTIAL"
    assert sorted((s, e) for _, s, e in wider.provenance.origin_intervals) == [
        (start - 3 * DAY, start),
        (start + 5 * DAY, start + 8 * DAY),
    ]
    # a few points of a large site: each asked for on its own route, nothing else downloaded
    assert asked and all(r.path.startswith("/points/") for r in rig.origin_requests())
    assert wider.provenance.strategies == {"per_point": 2}
    assert wider.amplification <= 1.0
    for s in wider.series:
        assert_same_samples(s, rig.expected(s.name, start - 3 * DAY, start + 8 * DAY))

    rig.sim.log.clear()
    again = await rig.query(pts, start - 3 * DAY, start + 8 * DAY)
    assert rig.origin_requests() == []
    assert again.provenance.cache_status == "HIT"
    assert again.provenance.origin_requests == 0

    rig.sim.log.clear()
    plus_one = (*pts, rig.points(4)[3])
    await rig.query(plus_one, start - 3 * DAY, start + 8 * DAY)
    fetched_points = {
        unquote(r.path.split("/points/", 1)[1].rsplit("/timeseries", 1)[0])
        for r in rig.origin_requests()
    }
    assert fetched_points == {plus_one[3]}


async def test_cache_equals_origin_across_month_boundaries(rig: Rig) -> None:
    pts = rig.points(2) + rig.points(1, cadence_s=300) + rig.points(1, cadence_s=30)
    start, end = NOW_MS - 75 * DAY - 17 * 60_000, NOW_MS - 20 * DAY + 123  # spans 3 months
    cold = await rig.query(pts, start, end)
    warm = await rig.query(pts, start, end)
    assert warm.provenance.cache_status == "HIT" and warm.provenance.blocks_read >= 3 * len(pts)
    direct = await rig.client.fetch_samples(SITE, list(pts), start, end, token=TOKEN)
    for c, w in zip(cold.series, warm.series, strict=True):
        want = direct.point(c.name)
        assert_same_samples(c, want)
        assert_same_samples(w, want)
        assert len(w) > 0


async def test_fresh_edge_is_refetched_sealed_data_is_not(rig: Rig) -> None:
    pts = rig.points(2)
    await rig.query(pts, NOW_MS - 2 * DAY, NOW_MS)
    rig.sim.log.clear()
    again = await rig.query(pts, NOW_MS - 2 * DAY, NOW_MS)
    assert [(s, e) for _, s, e in again.provenance.origin_intervals] == [(NOW_MS - HORIZON, NOW_MS)]
    assert again.provenance.cache_status == "PARTIAL"
    for s in again.series:
        assert_same_samples(s, rig.expected(s.name, NOW_MS - 2 * DAY, NOW_MS))


async def test_concurrent_identical_queries_share_one_fetch(rig: Rig) -> None:
    pts = rig.points(2)
    start = NOW_MS - 10 * DAY
    rig.sim.faults.configure(latency_s=0.1)  # both queries arrive while the fetch is out
    a, b = await asyncio.gather(
        rig.query(pts, start, start + DAY), rig.query(pts, start, start + DAY)
    )
    assert len(rig.origin_requests()) == len(pts)  # one per point, shared by both queries
    for sa, sb in zip(a.series, b.series, strict=True):
        assert_same_samples(sa, (sb.ts, sb.values))


async def test_corrupt_block_is_a_miss_not_an_error(rig: Rig) -> None:
    pts = rig.points(1)
    start = NOW_MS - 40 * DAY
    await rig.query(pts, start, start + 2 * DAY)
    key = block_key(SITE, pts[0], pd.Timestamp(start, unit="ms").strftime("%Y-%m"))
    good = await rig.store.get(key)
    await rig.store.put(key, good[:10] + bytes(len(good) - 10), None, None)
    rig.sim.log.clear()
    result = await rig.query(pts, start, start + 2 * DAY)
    assert result.provenance.corrupt_blocks == 1
    assert rig.engine.blocks.corrupt_total == 1
    assert len(rig.origin_requests()) > 0
    assert_same_samples(result.series[0], rig.expected(pts[0], start, start + 2 * DAY))
    healed = await rig.query(pts, start, start + 2 * DAY)
    assert healed.provenance.cache_status == "HIT"


async def test_crash_before_rename_keeps_the_old_block(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    if rig.store.__class__.__name__ != "LocalObjectStore":
        pytest.skip("rename atomicity is a property of the local store")
    pts = rig.points(1)
    start = NOW_MS - 40 * DAY
    await rig.query(pts, start, start + DAY)

    def crash(*_: Any) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    wider = await rig.query(pts, start, start + 2 * DAY)  # answers, though the write fails
    assert_same_samples(wider.series[0], rig.expected(pts[0], start, start + 2 * DAY))
    monkeypatch.undo()
    rig.sim.log.clear()
    after = await rig.query(pts, start, start + DAY)
    assert after.provenance.cache_status == "HIT"
    assert_same_samples(after.series[0], rig.expected(pts[0], start, start + DAY))


async def test_expiry_and_size_eviction(rig: Rig) -> None:
    pts = rig.points(2)
    start = NOW_MS - 100 * DAY
    await rig.query(pts, start, start + 3 * DAY)
    assert await rig.db.total_block_bytes() > 0
    report = await rig.engine.blocks.sweep(NOW_MS)
    assert report.expired == 0 and report.evicted == 0
    rig.engine.blocks.budget_bytes = 1
    report = await rig.engine.blocks.sweep(NOW_MS)
    assert report.evicted == 2 and await rig.db.total_block_bytes() == 0
    rig.engine.blocks.budget_bytes = 1 << 30

    await rig.query(pts, start, start + 3 * DAY)
    report = await rig.engine.blocks.sweep(NOW_MS + 31 * DAY * 1000)
    assert report.expired == 2
    keys = [info.key async for info in rig.store.list("timeseries/")]
    assert keys == []
    rig.sim.log.clear()
    await rig.query(pts, start, start + 3 * DAY)
    assert len(rig.origin_requests()) > 0


def pandas_1hr(ts: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    s = pd.Series(values, index=pd.to_datetime(ts, unit="ms")).dropna()
    g = s.groupby(s.index.floor("1h"))
    return pd.DataFrame(
        {"avg": g.mean(), "count": g.count(), "min": g.min(), "max": g.max(), "std": g.std()}
    )


async def test_interval_queries_and_the_aggregate_tier(rig: Rig) -> None:
    pts = rig.points(2)
    start, end = NOW_MS - 40 * DAY, NOW_MS - 30 * DAY
    cold = await rig.query(pts, start, end, interval="1hr")
    for s in cold.series:
        ref = pandas_1hr(*rig.expected(s.name, start, end))
        np.testing.assert_array_equal(s.ts, ref.index.as_unit("ms").asi8)
        np.testing.assert_allclose(s.values, ref["avg"].to_numpy(), rtol=1e-12)
        np.testing.assert_array_equal(s.aggregates["count"], ref["count"].to_numpy())
        np.testing.assert_allclose(s.aggregates["stddev"], ref["std"].to_numpy(), rtol=1e-9)

    # A 1hr query stores 1hr and 1day buckets, not the 5 M rows a year of 5min would be;
    # a 5min query (from the cached blocks) stores 5min too.
    five = await rig.query(pts, start, end, interval="5min")
    assert five.provenance.sources == {"R2"}
    # Raw blocks gone (expired and swept): 5min, 1hr and 1day still come from the table.
    await rig.engine.blocks.sweep(NOW_MS + 31 * DAY * 1000)
    rig.sim.log.clear()
    for interval in ("5min", "1hr", "1day"):
        warm = await rig.query(pts, start, end, interval=interval)
        assert warm.provenance.sources == {"D1"}, interval
        assert rig.origin_requests() == []
        if interval == "1hr":
            for c, w in zip(cold.series, warm.series, strict=True):
                np.testing.assert_array_equal(c.ts, w.ts)
                np.testing.assert_allclose(c.values, w.values, rtol=1e-12)
                np.testing.assert_array_equal(c.aggregates["count"], w.aggregates["count"])

    # 1min is never stored: it is computed from raw, which must now be refetched.
    minute = await rig.query(pts, start, start + DAY, interval="1min")
    assert "ORIGIN" in minute.provenance.sources
    ts, values = rig.expected(pts[0], start, start + DAY)
    direct = _core.aggregate(ts, values, 60_000)
    np.testing.assert_array_equal(minute.series[0].ts, direct["ts"])


async def test_downsampled_answers(rig: Rig) -> None:
    pts = rig.points(1, cadence_s=30)
    start, end = NOW_MS - 12 * DAY, NOW_MS - 10 * DAY
    full = await rig.query(pts, start, end)
    for method, limit, cap in (("minmaxlttb", 500, 500), ("m4", 502, 500)):
        res = await rig.query(pts, start, end, downsample=method, max_points=limit)
        s, f = res.series[0], full.series[0]
        assert len(s) <= cap
        assert s.ts[0] == f.ts[0] and s.ts[-1] == f.ts[-1]
        assert set(s.ts.tolist()) <= set(f.ts.tolist())


async def test_plan_reads_metadata_only(rig: Rig) -> None:
    pts = rig.points(2)
    start, end = NOW_MS - 30 * DAY, NOW_MS - 28 * DAY
    cold = await rig.engine.plan(Query(SITE, pts, start, end))
    assert not cold.cached and cold.origin_ms == 2 * (end - start)
    await rig.query(pts, start, end)
    # Remove the objects behind the metadata: planning must not notice (it reads no
    # object), while the query itself treats the missing blocks as misses and refetches.
    await rig.store.delete_many([info.key async for info in rig.store.list("timeseries/")])
    warm = await rig.engine.plan(Query(SITE, pts, start, end))
    assert warm.cached
    rig.sim.log.clear()
    again = await rig.query(pts, start, end)
    assert len(rig.origin_requests()) > 0
    for s in again.series:
        assert_same_samples(s, rig.expected(s.name, start, end))


async def test_aggregates_of_many_points_are_stored_in_one_batch(rig: Rig) -> None:
    """An interval query over many points stores their buckets with one coverage lookup and
    one transaction, not one of each per point and level; a repeat is served from them with
    one read of every blob it needs."""
    points = rig.points(8)
    start = NOW_MS - 40 * DAY - NOW_MS % DAY
    end = start + 3 * DAY  # inside one UTC month
    statements: list[str] = []
    await rig.db.set_trace(statements.append)
    first = await rig.query(points, start, end, interval="1hr")
    await rig.db.set_trace(None)
    reads = [s for s in statements if s.lstrip().startswith("SELECT") and "aggregate_blocks" in s]
    inserts = [s for s in statements if s.lstrip().startswith("INSERT INTO aggregate_blocks")]
    # one lookup to split the query by tier, one to decide what is new (nothing to merge)
    assert len(reads) == 2
    assert len(inserts) == 2 * len(points)  # executemany traces each blob: 1hr and 1day
    transactions: list[list[str]] = []
    for statement in statements:
        if statement.strip().upper().startswith("BEGIN"):
            transactions.append([])
        elif transactions:
            transactions[-1].append(statement)
    writing = [t for t in transactions if any("aggregate_blocks" in s for s in t)]
    assert len(writing) == 1
    statements.clear()
    await rig.db.set_trace(statements.append)
    again = await rig.query(points, start, end, interval="1hr")
    await rig.db.set_trace(None)
    assert "D1" in again.provenance.sources and again.provenance.origin_requests == 0
    reads = [s for s in statements if s.lstrip().startswith("SELECT") and "aggregate_blocks" in s]
    assert len(reads) == 2  # coverage, then every blob of the query at once
    for a, b in zip(first.series, again.series, strict=True):
        np.testing.assert_array_equal(a.ts, b.ts)
        np.testing.assert_allclose(a.values, b.values, equal_nan=True)


async def test_a_damaged_aggregate_blob_is_answered_from_raw(rig: Rig) -> None:
    """A garbled blob of the aggregate tier is dropped and the point recomputed from raw
    samples, never an error and never different numbers."""
    points = rig.points(2)
    start = NOW_MS - 40 * DAY - NOW_MS % DAY
    end = start + 3 * DAY
    first = await rig.query(points, start, end, interval="1hr")
    again = await rig.query(points, start, end, interval="1hr")
    assert "D1" in again.provenance.sources
    await rig.db.execute(
        "UPDATE aggregate_blocks SET data = ? WHERE point_name = ?", (b"garbage", points[0])
    )
    damaged = await rig.query(points, start, end, interval="1hr")
    for a, b in zip(first.series, damaged.series, strict=True):
        np.testing.assert_array_equal(a.ts, b.ts)
        np.testing.assert_allclose(a.values, b.values, equal_nan=True)
