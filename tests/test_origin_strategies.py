"""Paying the real API once: per-point and site-wide fetches, harvest, the cursor stall, tokens.

Everything here runs against the simulator in its realistic mode (the API as
it behaves in the field: no point filter, one timestamp per collection run,
naive microsecond times, the stalling cursor, 500 for a bad token) through
the real engine, catalogue, SQLite file and local object store, and every
sample is checked against a direct read of the simulator's data.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from acechart.cache.periods import next_month, periods
from acechart.errors import OriginAuthError
from acechart.origin.client import OriginClient, repair_cursor
from acechart.query import Query
from acechart.result import Result
from acechart.runtime import Runtime
from acechart.storage.keys import block_key
from tests.conftest import NOW_MS, SITE, TOKEN, Sim, SimFactory, origin_settings

DAY = 86_400_000
HOUR = 3_600_000

RigFactory = Callable[..., Awaitable["Rig"]]


class Rig:
    def __init__(self, runtime: Runtime, sim: Sim) -> None:
        self.runtime = runtime
        self.sim = sim

    async def query(self, points: list[str], start: int, end: int, **kw: Any) -> Result:
        q = Query(SITE, tuple(points), start, end, **kw)
        return await self.runtime.engine.query(q, token=TOKEN)

    def data_requests(self) -> list[Any]:
        return self.sim.log.matching("/timeseries", status=200)

    def check(self, result: Result) -> None:
        """Every series equals the simulator's own samples of that point and range."""
        q = result.query
        for series in result.series:
            rows = self.sim.data.expected(SITE, series.name, q.start_ms, q.end_ms - 1)
            np.testing.assert_array_equal(series.ts, rows.t_ms)
            np.testing.assert_array_equal(series.values, rows.value)


@pytest.fixture
async def rigs(make_simulator: SimFactory, tmp_path: Path) -> AsyncIterator[RigFactory]:
    opened: list[Runtime] = []

    async def open_rig(sim: Sim | None = None, **overrides: Any) -> Rig:
        sim = sim or await make_simulator()
        data_dir = tmp_path / f"rig{len(opened)}"
        runtime = await Runtime.open(origin_settings(sim.url, data_dir=str(data_dir), **overrides))
        runtime.engine.clock = lambda: NOW_MS
        opened.append(runtime)
        return Rig(runtime, sim)

    yield open_rig
    for runtime in opened:
        await runtime.close()


def names(sim: Sim) -> list[str]:
    return list(sim.site.names)


async def test_a_few_points_are_fetched_point_by_point(rigs: RigFactory) -> None:
    rig = await rigs()
    points = names(rig.sim)[:3]
    start = NOW_MS - 20 * DAY
    result = await rig.query(points, start, start + 3 * DAY)
    rig.check(result)
    prov = result.provenance
    assert prov.strategies == {"per_point": 1}
    assert prov.harvested_points == 0
    assert {r.path.split("/")[1] for r in rig.data_requests()} == {"points"}
    assert 0 < result.amplification <= 1.0


async def test_most_of_a_site_is_one_pass_and_every_point_is_harvested(rigs: RigFactory) -> None:
    rig = await rigs()
    every = names(rig.sim)
    asked, others = every[: len(every) * 3 // 4], every[len(every) * 3 // 4 :]
    start = NOW_MS - 30 * DAY
    first = await rig.query(asked[:100], start, start + DAY)
    rig.check(first)
    assert first.provenance.strategies == {"site_wide": 1}
    assert all("/timeseries/paginated" in r.path for r in rig.data_requests())
    assert first.provenance.harvested_points > 0

    # Another query for other points of the same range costs the origin nothing.
    rig.sim.log.clear()
    second = await rig.query(others[:50], start, start + DAY)
    rig.check(second)
    assert rig.data_requests() == []
    assert second.provenance.origin_requests == 0
    assert second.provenance.cache_status == "HIT"


async def test_harvest_in_a_small_buffer_writes_the_same_blocks(rigs: RigFactory) -> None:
    """Flushing every few thousand samples (many partial windows) loses and invents nothing."""
    rig = await rigs(origin_strategy="site_wide", origin_harvest_buffer_samples=5_000)
    every = names(rig.sim)
    start = NOW_MS - 40 * DAY + 17 * 60_000
    first = await rig.query(every[:2], start, start + DAY // 2)
    rig.check(first)
    rig.sim.log.clear()
    later = await rig.query(every[2:40], start, start + DAY // 2)
    assert rig.data_requests() == []
    rig.check(later)


async def test_a_harvest_writes_each_block_once_when_its_period_is_complete(
    rigs: RigFactory,
) -> None:
    """A small buffer flushes many times, yet each (point, month) block is written once.

    Rewriting a growing month block at every flush (read, merge, re-encode) was
    what made long passes slow and large; the pass here spans two months.
    """
    rig = await rigs(origin_strategy="site_wide", origin_harvest_buffer_samples=3_000)
    every = names(rig.sim)
    boundary = next_month(NOW_MS - 60 * DAY)
    start, end = boundary - 5 * HOUR, boundary + 7 * HOUR
    first = await rig.query(every[:2], start, end)
    rig.check(first)
    keys = [block_key(SITE, p, name) for p in every for name, _, _ in periods(start, end)]
    stored = await rig.runtime.engine.blocks.db.get_block_meta(keys)
    assert len(keys) == 2 * len(every)
    assert first.provenance.blocks_written == len(keys) == len(stored)
    rig.sim.log.clear()
    later = await rig.query(every[2:30], start, end)
    assert rig.data_requests() == []
    rig.check(later)


async def test_harvest_can_be_turned_off(rigs: RigFactory) -> None:
    rig = await rigs(origin_strategy="site_wide", origin_harvest=False)
    every = names(rig.sim)
    start = NOW_MS - 12 * DAY
    first = await rig.query(every[:2], start, start + HOUR)
    rig.check(first)
    assert first.provenance.harvested_points == 0
    rig.sim.log.clear()
    again = await rig.query(every[2:4], start, start + HOUR)
    assert rig.data_requests()
    rig.check(again)


async def test_small_pages_inside_one_timestamp_do_not_stall(rigs: RigFactory) -> None:
    """With 10-row pages many pages start and end inside one timestamp: the API's cursor
    repeats there, and the client repairs it instead of looping or stopping short."""
    rig = await rigs(origin_strategy="site_wide", origin_page_size=10, origin_harvest=False)
    every = names(rig.sim)
    start = NOW_MS - 9 * DAY
    result = await rig.query(every[:5], start, start + 10 * 60_000)
    rig.check(result)
    assert result.provenance.origin_pages > 10


async def test_a_per_point_route_refused_falls_back_to_one_site_pass(rigs: RigFactory) -> None:
    rig = await rigs()
    every = names(rig.sim)
    await rig.runtime.catalog.refresh(SITE, token=TOKEN)
    rig.sim.faults.configure(path_contains="/points/")
    rig.sim.faults.script("404")
    start = NOW_MS - 15 * DAY
    result = await rig.query(every[:1], start, start + HOUR)
    rig.check(result)
    assert result.provenance.strategies == {"site_wide": 1}


async def test_an_invalid_token_is_refused_quickly_not_retried_into_a_502(
    make_simulator: SimFactory,
) -> None:
    sim = await make_simulator(tokens={"good": frozenset({SITE})})
    async with OriginClient(origin_settings(sim.url, origin_max_attempts=5)) as client:
        with pytest.raises(OriginAuthError) as caught:
            await client.get_site(SITE, token="not-a-key")
    assert caught.value.status == 401
    assert len(sim.log.matching(f"/sites/{SITE}")) == 2  # one retry, not five


async def test_an_outage_with_the_same_status_is_still_retried(make_simulator: SimFactory) -> None:
    sim = await make_simulator()
    sim.faults.script("500", "500")
    async with OriginClient(origin_settings(sim.url)) as client:
        site = await client.get_site(SITE, token=TOKEN)
    assert site["name"] == SITE


def _cursor(offset: int, stamp: str) -> str:
    return base64.b64encode(json.dumps({"offset": offset, "timestamp": stamp}).encode()).decode()


def test_repair_cursor_adds_the_offset_the_api_forgot() -> None:
    stamp = "2025-10-12T16:30:37.626470"
    ts = np.full(10, 1_760_286_637_626, np.int64)
    # A page of 10 rows all at `stamp`, asked with offset 20: the API says offset 10.
    fixed = repair_cursor(_cursor(20, stamp), _cursor(10, stamp), ts)
    assert json.loads(base64.b64decode(fixed)) == {"offset": 30, "timestamp": stamp}
    # An API that already adds it, a new timestamp, the first page, opaque cursors: untouched.
    assert repair_cursor(_cursor(20, stamp), _cursor(30, stamp), ts) == _cursor(30, stamp)
    later = _cursor(4, "2025-10-12T16:31:37.626470")
    assert repair_cursor(_cursor(20, stamp), later, ts) == later
    assert repair_cursor(None, _cursor(10, stamp), ts) == _cursor(10, stamp)
    assert repair_cursor("opaque-1", "opaque-2", ts) == "opaque-2"
