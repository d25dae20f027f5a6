"""The query engine: answer from cached tiers, fetch only the gaps from the origin.

For each query: serve interval queries from the aggregate table where it covers
the range; read the overlapping raw blocks of the other points; collect each
point's uncovered intervals; merge points with the same gaps into one origin
request (the client splits it into parallel windows); write the new samples
back into their blocks and sealed bucket statistics into the aggregate table;
then aggregate and downsample in the Rust core. No HTTP here: the server and
notebooks (`acechart.connect`) share this object.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
from numpy.typing import NDArray

from acechart._core import aggregate, downsample, sort_dedup
from acechart.cache import intervals as iv
from acechart.cache.aggregates import LEVELS, AggregateStore, RawPoint
from acechart.cache.blocks import BlockStore, CachedPoint
from acechart.cache.catalog import PointCatalog
from acechart.engine.fetch import FetchPolicy, GapFetcher
from acechart.origin.client import OriginClient, ProgressCallback
from acechart.query import Query
from acechart.result import Aggregates, Provenance, Result, Series
from acechart.storage.locks import FetchLocks

logger = logging.getLogger(__name__)

_EMPTY_TS = np.zeros(0, np.int64)
_EMPTY_V = np.zeros(0, np.float64)


#: Called after every answered query with its result and the seconds it took: how the
#: server counts tier and origin traffic of requests and jobs alike.
QueryObserver = Callable[[Result, float], None]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Plan:
    """What a query would cost: per point, the intervals the cache lacks."""

    query: Query
    gaps: dict[str, list[iv.Interval]]
    now_ms: int

    @property
    def origin_ms(self) -> int:
        """Point-milliseconds that must come from the origin."""
        return sum(iv.total(g) for g in self.gaps.values())

    def estimated_samples(self, cadence_ms: int = 60_000) -> int:
        return self.origin_ms // cadence_ms

    @property
    def cached(self) -> bool:
        return self.origin_ms == 0


class Engine:
    """Query -> plan -> read tiers -> fetch gaps -> Result."""

    def __init__(
        self,
        blocks: BlockStore,
        aggregates: AggregateStore,
        origin: OriginClient,
        *,
        catalog: PointCatalog | None = None,
        policy: FetchPolicy | None = None,
        clock: Callable[[], int] = now_ms,
        locks: FetchLocks | None = None,
    ) -> None:
        self.blocks = blocks
        self.locks = locks
        """Cross-instance locks on origin fetches (with Redis); None: this process only."""
        self.aggregates = aggregates
        self.origin = origin
        self.catalog = catalog
        self.clock = clock
        self.observers: list[QueryObserver] = []
        self.fetcher = GapFetcher(
            origin, blocks, catalog, policy or FetchPolicy.from_settings(origin.settings)
        )

    async def close(self) -> None:
        """Stop the origin fetches still running (before the origin client closes)."""
        await self.fetcher.close()

    async def plan(self, query: Query) -> Plan:
        """The gaps a query would fetch, from metadata only (no block is read or decoded)."""
        now = self.clock()
        _, raw_points = await self._split_by_aggregates(query)
        start, end = query.aligned()
        covered = await self.blocks.coverage(query.site, raw_points, start, end, now)
        gaps = {p: self._gaps(covered[p], start, end, now) for p in raw_points}
        return Plan(query, gaps, now)

    async def query(
        self, query: Query, *, token: str, progress: ProgressCallback | None = None
    ) -> Result:
        """The answer to `query`, fetching what the cache lacks with `token`."""
        t0 = time.perf_counter()
        result = await self._answer(query, token, progress)
        elapsed = time.perf_counter() - t0
        for observe in self.observers:
            try:
                observe(result, elapsed)
            except Exception:
                logger.exception("query observer %r failed", observe)
        return result

    async def _answer(self, query: Query, token: str, progress: ProgressCallback | None) -> Result:
        now = self.clock()
        prov = Provenance()
        start, end = query.aligned()

        from_db: dict[str, Aggregates] = {}
        agg_points, raw_points = await self._split_by_aggregates(query)
        if agg_points:
            from_db = await self.aggregates.read(query.site, agg_points, query.interval, start, end)
            prov.sources.add("D1")
            prov.aggregate_points = len(from_db)
            # A point whose blob turned out damaged (and was dropped) is answered from raw.
            raw_points += [p for p in agg_points if p not in from_db]

        reads = await self.blocks.read(query.site, raw_points, start, end, now)
        prov.blocks_read = sum(r.blocks for r in reads.values())
        prov.corrupt_blocks = sum(r.corrupt for r in reads.values())
        if prov.blocks_read:
            prov.sources.add("R2")
        gaps = {p: self._gaps(reads[p].covered, start, end, now) for p in raw_points}
        if self.locks is None or not any(gaps.values()):
            return await self._complete(query, token, progress, now, prov, from_db, reads, gaps)
        name = self.locks.key_of(query.site, sorted((p, tuple(g)) for p, g in gaps.items() if g))
        async with self.locks.hold(name) as waited:
            if waited:
                # Another instance fetched these gaps meanwhile: its blocks are ours now.
                reads = await self.blocks.read(query.site, raw_points, start, end, now)
                prov.blocks_read = sum(r.blocks for r in reads.values())
                prov.corrupt_blocks = sum(r.corrupt for r in reads.values())
                if prov.blocks_read:
                    prov.sources.add("R2")
                gaps = {p: self._gaps(reads[p].covered, start, end, now) for p in raw_points}
            # The blocks are written before the lock is let go, so a waiter finds them.
            return await self._complete(query, token, progress, now, prov, from_db, reads, gaps)

    async def _complete(
        self,
        query: Query,
        token: str,
        progress: ProgressCallback | None,
        now: int,
        prov: Provenance,
        from_db: dict[str, Aggregates],
        reads: Mapping[str, CachedPoint],
        gaps: dict[str, list[iv.Interval]],
    ) -> Result:
        """Fetch the gaps, merge them with what the tiers held, store what is new."""
        width = query.bucket_ms
        fetched = await self.fetcher.fetch(query.site, gaps, token, prov, progress, now)

        series: list[Series] = []
        writes: dict[str, tuple[NDArray[np.int64], NDArray[np.float64]]] = {}
        to_store: dict[str, RawPoint] = {}
        for point in query.points:
            if point in from_db:
                agg = from_db[point]
                series.append(self._finish(query, point, agg["ts"], agg["avg"], agg))  # type: ignore[arg-type]
                continue
            cached = reads[point]
            new_ts, new_v = fetched.get(point, (_EMPTY_TS, _EMPTY_V))
            if len(new_ts) or gaps[point]:
                writes[point] = (new_ts, new_v)
            ts, values = _merge(cached.ts, cached.values, new_ts, new_v)
            if width is None:
                lo, hi = np.searchsorted(ts, [query.start_ms, query.end_ms])
                series.append(self._finish(query, point, ts[lo:hi], values[lo:hi], None))
            else:
                agg = await asyncio.to_thread(aggregate, ts, values, width)
                series.append(self._finish(query, point, agg["ts"], agg["avg"], agg))  # type: ignore[arg-type]
                if query.interval in LEVELS:
                    to_store[point] = (ts, values, iv.union(cached.covered, gaps[point]))

        if to_store:
            await self.aggregates.write_from_raw(query.site, to_store, now, query.interval)
        if writes:
            prov.blocks_written = await self.blocks.write(
                query.site, writes, {p: gaps[p] for p in writes}, now
            )
        return Result(query, series, prov)

    async def _split_by_aggregates(self, query: Query) -> tuple[list[str], list[str]]:
        if query.interval not in LEVELS:
            return [], list(query.points)
        start, end = query.aligned()
        covered = await self.aggregates.covering(
            query.site, query.points, query.interval, start, end, self.clock()
        )
        return (
            [p for p in query.points if p in covered],
            [p for p in query.points if p not in covered],
        )

    def _gaps(
        self, covered: list[iv.Interval], start: int, end: int, now: int
    ) -> list[iv.Interval]:
        """What the cache lacks of [start, end); nothing after now can exist yet."""
        stop = min(end, now + 1)
        return iv.subtract([(start, stop)], covered) if start < stop else []

    def _finish(
        self,
        query: Query,
        point: str,
        ts: NDArray[np.int64],
        values: NDArray[np.float64],
        agg: Aggregates | None,
    ) -> Series:
        if query.max_points is not None and len(ts) > query.max_points:
            method = cast(Literal["minmaxlttb", "m4"], query.downsample or "minmaxlttb")
            # M4 keeps four samples per pixel column: round the budget down to that.
            n_out = query.max_points // 4 * 4 if method == "m4" else query.max_points
            keep = downsample(ts, values, n_out, method)
            ts, values = ts[keep], values[keep]
            if agg is not None:
                agg = {k: v[keep] for k, v in agg.items()}
        return Series(point, ts, values, agg)


def _merge(
    ts_a: NDArray[np.int64],
    v_a: NDArray[np.float64],
    ts_b: NDArray[np.int64],
    v_b: NDArray[np.float64],
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Cached and fetched samples of one point in time order; fetched ones win."""
    if not len(ts_b):
        return ts_a, v_a
    if not len(ts_a):
        return ts_b, v_b
    ts = np.concatenate([ts_a, ts_b])
    values = np.concatenate([v_a, v_b])
    _, ts, values = sort_dedup(np.zeros(len(ts), np.int32), ts, values)
    return ts, values
