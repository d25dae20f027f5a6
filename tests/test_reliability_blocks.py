"""Damaged cache state is a miss, never wrong data or a 500.

- A block copied under another month's key decodes cleanly (the codec's header names
  the point, not the period), so its period is checked: samples outside the month its
  key names are damage, and the block is deleted and refetched.
- A merge keeps only samples inside the block's period.
- Block locks live only while a write holds or waits for them.
- A reader sees all of one write's coverage or none of it.
- A `cache_metadata` row that describes no block (garbage `covered`, a NULL size) is
  dropped and treated as a miss.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from acechart import _core
from acechart.query import Query
from acechart.result import Result
from acechart.runtime import Runtime
from acechart.server.keys import EDGE, RUNTIME
from acechart.storage.keys import block_key
from acechart.times import parse_iso_ms
from tests.conftest import NOW_MS, SITE, TOKEN, Sim, origin_settings
from tests.server_helpers import ClientFactory, query, start_service

NOV_10 = parse_iso_ms("2024-11-10T00:00:00Z")
DEC_01 = parse_iso_ms("2024-12-01T00:00:00Z")
DEC_12 = parse_iso_ms("2024-12-12T00:00:00Z")


@pytest.fixture
async def runtime(sim: Sim, tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = await Runtime.open(origin_settings(sim.url, data_dir=str(tmp_path / "rt")))
    rt.engine.clock = lambda: NOW_MS
    yield rt
    await rt.close()


def _points(sim: Sim, n: int) -> tuple[str, ...]:
    table = sim.site
    return tuple(name for i, name in enumerate(table.names) if table.cadence_ms[i] == 300_000)[:n]


def _samples(result: Result) -> list[tuple[list[int], list[float]]]:
    return [(s.ts.tolist(), s.values.tolist()) for s in result.series]


async def test_a_block_copied_into_another_month_is_refetched(runtime: Runtime, sim: Sim) -> None:
    (point,) = _points(sim, 1)
    q = Query(SITE, (point,), NOV_10, DEC_12)
    clean = _samples(await runtime.engine.query(q, token=TOKEN))
    store, blocks = runtime.store, runtime.engine.blocks
    nov, dec = block_key(SITE, point, "2024-11"), block_key(SITE, point, "2024-12")
    await store.put(nov, await store.get(dec))  # December's samples under November's key
    sim.log.clear()
    again = await runtime.engine.query(q, token=TOKEN)
    assert _samples(again) == clean  # no duplicated December, no missing November
    assert blocks.corrupt_total == 1 and len(sim.log) > 0  # counted, and refetched
    _, ts, _, _ = _core.decode_block(await store.get(nov))
    assert int(ts.max()) < DEC_01 and int(ts.min()) >= parse_iso_ms("2024-11-01T00:00:00Z")
    sim.log.clear()
    assert _samples(await runtime.engine.query(q, token=TOKEN)) == clean
    assert len(sim.log) == 0  # whole again: served from the blocks


async def test_a_block_of_another_point_is_refetched(runtime: Runtime, sim: Sim) -> None:
    a, b = _points(sim, 2)
    q = Query(SITE, (a, b), NOV_10, DEC_12)
    clean = _samples(await runtime.engine.query(q, token=TOKEN))
    store = runtime.store
    await store.put(block_key(SITE, b, "2024-12"), await store.get(block_key(SITE, a, "2024-12")))
    assert _samples(await runtime.engine.query(q, token=TOKEN)) == clean
    assert runtime.engine.blocks.corrupt_total == 1


async def test_a_merge_keeps_only_samples_of_its_period(runtime: Runtime) -> None:
    blocks = runtime.engine.blocks
    ts = np.arange(NOV_10, DEC_12, 3_600_000, dtype=np.int64)
    values = np.arange(len(ts), dtype=np.float64)
    written = await blocks.write(SITE, {"p": (ts, values)}, {"p": [(NOV_10, DEC_12)]}, NOW_MS)
    assert written == 2
    for period, (lo, hi) in {
        "2024-11": (parse_iso_ms("2024-11-01T00:00:00Z"), DEC_01),
        "2024-12": (DEC_01, parse_iso_ms("2025-01-01T00:00:00Z")),
    }.items():
        _, got, _, covered = _core.decode_block(
            await runtime.store.get(block_key(SITE, "p", period))
        )
        assert lo <= int(got.min()) and int(got.max()) < hi
        assert all(lo <= s < e <= hi for s, e in covered.tolist())
    # Merging again (the same samples, a wider fetch) keeps each block in its month.
    await blocks.write(SITE, {"p": (ts, values)}, {"p": [(NOV_10 - 86_400_000, DEC_12)]}, NOW_MS)
    cached = await blocks.read(SITE, ["p"], NOV_10, DEC_12, NOW_MS)
    assert cached["p"].ts.tolist() == ts.tolist() and cached["p"].corrupt == 0


async def test_block_locks_are_dropped_when_free(runtime: Runtime) -> None:
    blocks = runtime.engine.blocks
    ts = np.arange(NOV_10, DEC_12, 3_600_000, dtype=np.int64)
    values = np.ones(len(ts))
    writes = [
        blocks.write(SITE, {f"p{i}": (ts, values)}, {f"p{i}": [(NOV_10, DEC_12)]}, NOW_MS)
        for i in range(40)
    ]
    # Concurrent writes of the same blocks wait on one lock, and all of them finish.
    writes.append(blocks.write(SITE, {"p0": (ts, values)}, {"p0": [(NOV_10, DEC_12)]}, NOW_MS))
    assert sum(await asyncio.gather(*writes)) == 82
    assert len(blocks._locks) == 0


async def test_a_reader_sees_a_whole_write_or_none_of_it(runtime: Runtime) -> None:
    """Another instance plans its gaps from this coverage: part of a write would give it
    other gaps than the writer's, hence another fetch lock, and a second fetch."""
    blocks = runtime.engine.blocks
    ts = np.arange(NOV_10, DEC_12, 3_600_000, dtype=np.int64)
    points = [f"p{i}" for i in range(6)]
    samples = {p: (ts, np.ones(len(ts))) for p in points}
    seen: set[int] = set()
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            covered = await blocks.coverage(SITE, points, NOV_10, DEC_12, NOW_MS)
            seen.add(sum(bool(c) for c in covered.values()))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.01)
    assert await blocks.write(SITE, samples, {p: [(NOV_10, DEC_12)] for p in points}, NOW_MS) == 12
    done.set()
    await watcher
    covered = await blocks.coverage(SITE, points, NOV_10, DEC_12, NOW_MS)
    seen.add(sum(bool(c) for c in covered.values()))
    assert seen == {0, len(points)}


async def test_malformed_metadata_rows_are_a_miss_not_a_500(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path
) -> None:
    svc = await start_service(aiohttp_client, sim, tmp_path)
    points = svc.points(3)
    params = query(points, DEC_01, DEC_12)
    first = await svc.get("/api/timeseries", params)
    assert first.status == 200
    expected = await first.json()
    runtime = svc.app[RUNTIME]
    keys = [block_key(SITE, p, "2024-12") for p in points]
    await runtime.db.execute(
        "UPDATE cache_metadata SET covered = 'garbage' WHERE cache_key = ?", (keys[0],)
    )
    await runtime.db.execute(
        "UPDATE cache_metadata SET size_bytes = NULL WHERE cache_key = ?", (keys[1],)
    )
    await runtime.db.execute(
        "UPDATE cache_metadata SET period_start = NULL, covered = '[[5, 1]]' WHERE cache_key = ?",
        (keys[2],),
    )
    for attempt in range(2):  # not persistent: the second read finds whole rows again
        svc.app[EDGE].clear()
        resp = await svc.get("/api/timeseries", params)
        assert resp.status == 200, await resp.text()
        got = await resp.json()
        assert got["series"] == expected["series"], attempt
    assert runtime.db.malformed_rows == 3
    rows = await runtime.db.get_block_meta(keys)
    assert sorted(rows) == sorted(keys)  # dropped, refetched, written whole again
    report = await runtime.engine.blocks.sweep(NOW_MS)  # the sweeper reads rows too
    assert report.expired == 0
