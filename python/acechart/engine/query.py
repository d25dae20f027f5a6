"""The query engine: answer from cached tiers, fetch only the gaps from the origin.

For each query: serve interval queries from the aggregate table where it covers
the range; read the overlapping raw blocks of the other points; collect each
point's uncovered intervals; merge points with the same gaps into one origin
request (the client splits it into parallel windows); write the new samples
back into their blocks and sealed bucket statistics into the aggregate table;
then aggregate and downsample in the Rust core. No HTTP here: the server and
notebooks (`acechart.connect`) share this object.

Interval buckets come from the query's `BucketPlan`: fine buckets of a stored UTC
level (read from the aggregate tier, or computed from raw samples and stored),
merged into local days, weeks or months by `rollup_edges` when the query's zone or
calendar needs it, and into fewer, wider buckets when `max_buckets` asks. The
series value is the bucket statistic `stat` names; `delta`, `twa` and `on_time`
need the raw samples and the one before each bucket, so they read raw blocks from
`stat_lookback_ms` before the range and never the aggregate tier. An aggregation
query's `stats` may mix both kinds: its rows then join the bucket statistics of those
raw samples with the raw-derived ones, bucket by bucket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, cast

import numpy as np
from numpy.typing import NDArray

from acechart._core import (
    aggregate,
    aggregate_many,
    downsample,
    held_values,
    meter_delta,
    rollup_edges,
    sort_dedup,
)
from acechart.buckets import SITE, BucketPlan
from acechart.cache import intervals as iv
from acechart.cache.aggregates import LEVELS, AggregateStore, RawPoint
from acechart.cache.blocks import BlockStore, CachedPoint
from acechart.cache.catalog import PointCatalog
from acechart.engine.fetch import Columns, FetchEstimate, FetchPolicy, GapFetcher
from acechart.errors import OriginMisconfigured, OriginTimeout, OriginUnavailable
from acechart.origin.client import OriginClient, ProgressCallback
from acechart.query import RAW_STATS, Query
from acechart.result import AGG_INT_KEYS, Aggregates, Provenance, Result, Series
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


#: Origin failures after which a query may be answered with what is cached.
_PARTIAL_FAILURES = (OriginUnavailable, OriginTimeout, OriginMisconfigured)


@dataclass(frozen=True)
class PartialPolicy:
    """When a query may be answered with only what is cached, because the origin failed.

    `min_share`: the share of the query's range (points x time up to now) that must be
    cached; `wait_s`: how long to wait on an origin whose requests are failing (and being
    retried) before giving up on it. A slow origin that is not failing is waited for.
    """

    min_share: float = 0.9
    wait_s: float = 1.0


@dataclass(frozen=True)
class Fit:
    """What of a query would fit a time budget: the longest range ending where the query
    ends, and how many of its points fit over the whole range."""

    start_ms: int | None
    """Start of the longest range [start_ms, query end) that fits; None if not even a step."""
    range_seconds: float
    points: int
    """Leading points of the query whose whole range fits (0: not even one)."""
    points_seconds: float


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
        reset_threshold: float = 0.0,
        stat_lookback_ms: int = 86_400_000,
        locks: FetchLocks | None = None,
    ) -> None:
        self.blocks = blocks
        self.locks = locks
        """Cross-instance locks on origin fetches (with Redis); None: this process only."""
        self.aggregates = aggregates
        self.origin = origin
        self.catalog = catalog
        self.clock = clock
        #: A drop of a meter reading larger than this is a reset (`stat=delta`).
        self.reset_threshold = reset_threshold
        #: How far before a range `delta`, `twa` and `on_time` look for the sample
        #: carried into the first bucket.
        self.stat_lookback_ms = stat_lookback_ms
        self.observers: list[QueryObserver] = []
        self.fetcher = GapFetcher(
            origin, blocks, catalog, policy or FetchPolicy.from_settings(origin.settings)
        )

    async def close(self) -> None:
        """Stop the origin fetches still running (before the origin client closes)."""
        await self.fetcher.close()

    async def resolve(self, query: Query, *, token: str) -> Query:
        """`query` with `tz=site` replaced by the site's zone (from the catalogue)."""
        if query.tz != SITE:
            return query
        if self.catalog is None:
            from acechart.errors import BadRequest

            raise BadRequest("tz=site needs the point catalogue", parameter="tz")
        zone = await self.catalog.site_zone(query.site, token=token)
        return replace(query, tz=zone)

    def raw_range(self, query: Query) -> tuple[int, int]:
        """The raw samples a query needs: its whole buckets, and for `delta`, `twa` and
        `on_time` the lookback before them (for the sample carried into the first)."""
        start, end = query.aligned()
        if query.raw_stats:
            start -= self.stat_lookback_ms
        return start, end

    async def plan(self, query: Query) -> Plan:
        """The gaps a query would fetch, from metadata only (no block is read or decoded);
        `tz=site` must be resolved first."""
        now = self.clock()
        _, raw_points = await self._split_by_aggregates(query)
        start, end = self.raw_range(query)
        covered = await self.blocks.coverage(query.site, raw_points, start, end, now)
        gaps = {p: self._gaps(covered[p], start, end, now) for p in raw_points}
        return Plan(query, gaps, now)

    async def estimate(self, plan: Plan, *, token: str) -> FetchEstimate:
        """How long the origin fetch of `plan` would take (no request is made)."""
        return await self.fetcher.estimate(plan.query.site, plan.gaps, token)

    async def fitting(self, plan: Plan, budget_s: float, *, token: str) -> Fit:
        """The part of `plan`'s query that fits `budget_s` of estimated origin time.

        The range is searched in whole days, else hours, else minutes (starting on
        one), keeping the query's end: a chart's recent part matters most.
        """
        q = plan.query
        cadences = await self.fetcher.cadences(q.site, token)
        end = q.end_ms
        span = end - q.start_ms

        def cost(gaps: dict[str, list[iv.Interval]]) -> float:
            return self.fetcher.estimate_with(gaps, cadences).seconds

        start: int | None = None
        best_s = 0.0
        for step in (86_400_000, 3_600_000, 60_000):
            if step > span and step != 60_000:
                continue
            best = 0
            lo_k, hi_k = 1, -(-span // step)
            while lo_k <= hi_k:
                mid = (lo_k + hi_k) // 2
                lo = max(q.start_ms, (end - mid * step) // step * step)
                seconds = cost({p: iv.clip(g, lo, end) for p, g in plan.gaps.items()})
                if seconds <= budget_s:
                    best, best_s, lo_k = mid, seconds, mid + 1
                else:
                    hi_k = mid - 1
            if best:
                start = max(q.start_ms, (end - best * step) // step * step)
                break

        points, points_s = 0, 0.0
        for n in range(1, len(q.points) + 1):
            seconds = cost({p: plan.gaps.get(p, []) for p in q.points[:n]})
            if seconds > budget_s:
                break
            points, points_s = n, seconds
        return Fit(start, best_s, points, points_s)

    async def query(
        self,
        query: Query,
        *,
        token: str,
        progress: ProgressCallback | None = None,
        partial: PartialPolicy | None = None,
    ) -> Result:
        """The answer to `query`, fetching what the cache lacks with `token`.

        With `partial`, an origin failure on a mostly cached query (see `PartialPolicy`)
        is answered with what is cached, `Result.missing` naming what is not, instead of
        raising; nothing of it is written back, so the next query asks again.
        """
        t0 = time.perf_counter()
        result = await self._answer(query, token, progress, partial)
        elapsed = time.perf_counter() - t0
        for observe in self.observers:
            try:
                observe(result, elapsed)
            except Exception:
                logger.exception("query observer %r failed", observe)
        return result

    async def _answer(
        self,
        query: Query,
        token: str,
        progress: ProgressCallback | None,
        partial: PartialPolicy | None,
    ) -> Result:
        query = await self.resolve(query, token=token)
        now = self.clock()
        prov = Provenance()
        start, end = self.raw_range(query)
        level = self._level(query)

        from_db: dict[str, Aggregates] = {}
        agg_points, raw_points = await self._split_by_aggregates(query)
        if agg_points and level is not None:
            from_db = await self.aggregates.read(query.site, agg_points, level, start, end)
            prov.sources.add("D1")
            prov.aggregate_points = len(from_db)
            # A point whose blob turned out damaged (and was dropped) is answered from raw.
            raw_points += [p for p in agg_points if p not in from_db]

        reads, gaps = await self._read_blocks(query.site, raw_points, start, end, now, prov)
        if self.locks is None or not any(gaps.values()):
            return await self._complete(
                query, token, progress, partial, now, prov, from_db, reads, gaps
            )
        name = self.locks.key_of(query.site, sorted((p, tuple(g)) for p, g in gaps.items() if g))
        async with self.locks.hold(name) as waited:
            if waited or await self._covered_since(query.site, gaps, start, end, now):
                # Another instance fetched these gaps meanwhile (we waited for it, or it
                # let the lock go between our read and our take): its blocks are ours now.
                reads, gaps = await self._read_blocks(query.site, raw_points, start, end, now, prov)
            # The blocks are written before the lock is let go, so a waiter finds them.
            return await self._complete(
                query, token, progress, partial, now, prov, from_db, reads, gaps
            )

    async def _read_blocks(
        self, site: str, points: list[str], start: int, end: int, now: int, prov: Provenance
    ) -> tuple[dict[str, CachedPoint], dict[str, list[iv.Interval]]]:
        """The block tier's samples of `points` and, per point, what it lacks."""
        reads = await self.blocks.read(site, points, start, end, now)
        prov.blocks_read = sum(r.blocks for r in reads.values())
        prov.corrupt_blocks = sum(r.corrupt for r in reads.values())
        if prov.blocks_read:
            prov.sources.add("R2")
        return reads, {p: self._gaps(reads[p].covered, start, end, now) for p in points}

    async def _covered_since(
        self, site: str, gaps: dict[str, list[iv.Interval]], start: int, end: int, now: int
    ) -> bool:
        """Whether the block metadata now covers any of `gaps` (one query, no block read)."""
        wanted = [p for p, g in gaps.items() if g]
        covered = await self.blocks.coverage(site, wanted, start, end, now)
        return any(self._gaps(covered[p], start, end, now) != gaps[p] for p in wanted)

    async def _complete(
        self,
        query: Query,
        token: str,
        progress: ProgressCallback | None,
        partial: PartialPolicy | None,
        now: int,
        prov: Provenance,
        from_db: dict[str, Aggregates],
        reads: dict[str, CachedPoint],
        gaps: dict[str, list[iv.Interval]],
    ) -> Result:
        """Fetch the gaps, merge them with what the tiers held, store what is new.

        `reads` is emptied once merged, so the cached arrays go as soon as they are joined.
        """
        start, end = self.raw_range(query)
        plan = None if query.interval == "raw" else query.buckets
        level = self._level(query)
        raw_points = list(reads)
        missing: dict[str, list[iv.Interval]] = {}
        if partial is not None and _cached_share(query, gaps, start, end, now) >= partial.min_share:
            try:
                fetched = await self._fetch_or_give_up(
                    query.site, gaps, token, prov, progress, now, partial.wait_s
                )
            except _PARTIAL_FAILURES as exc:
                logger.warning(
                    "origin failed (%s); answering %s with what is cached", exc.reason, query.site
                )
                # In the query's whole buckets (for interval queries), like the gaps.
                missing = {p: g for p, g in gaps.items() if g}
                gaps = {p: [] for p in gaps}
                fetched = {}
                prov.incomplete = True
                prov.sources.discard("ORIGIN")
        else:
            fetched = await self.fetcher.fetch(query.site, gaps, token, prov, progress, now)

        writes: dict[str, tuple[NDArray[np.int64], NDArray[np.float64]]] = {}
        to_store: dict[str, RawPoint] = {}
        merged: dict[str, tuple[NDArray[np.int64], NDArray[np.float64]]] = {}
        for point in raw_points:
            cached = reads[point]
            new_ts, new_v = fetched.get(point, (_EMPTY_TS, _EMPTY_V))
            if (len(new_ts) or gaps[point]) and not prov.incomplete:
                writes[point] = (new_ts, new_v)
            ts, values = _merge(cached.ts, cached.values, new_ts, new_v)
            merged[point] = ts, values
            if level is not None and not prov.incomplete:
                to_store[point] = (ts, values, iv.union(cached.covered, gaps[point]))
        reads.clear()
        fine: dict[str, Aggregates] = {}
        if plan is not None and not query.raw_stats and merged:
            # Every point's fine buckets in one call: the GIL released once, the points on
            # every core.
            names = list(merged)
            aggs = await asyncio.to_thread(aggregate_many, [merged[p] for p in names], plan.fine_ms)
            fine.update(zip(names, aggs, strict=True))
            merged.clear()

        series: list[Series] = []
        factor = 1
        for point in query.points:
            if point in from_db:
                assert plan is not None
                agg, factor = await self._buckets(query, plan, from_db[point])
                series.append(self._interval_series(query, plan, point, agg, now))
                continue
            if point in fine:
                assert plan is not None
                agg, factor = await self._buckets(query, plan, fine.pop(point))
                series.append(self._interval_series(query, plan, point, agg, now))
                continue
            ts, values = merged.pop(point)
            if plan is None:
                lo, hi = np.searchsorted(ts, [query.start_ms, query.end_ms])
                series.append(self._finish(query, point, ts[lo:hi], values[lo:hi], None))
            elif query.stats:
                row, factor = await self._stat_rows(query, plan, point, ts, values, now)
                series.append(row)
            else:
                series.append(await self._raw_stat(query, plan, point, ts, values, now))

        if to_store and level is not None:
            await self.aggregates.write_from_raw(query.site, to_store, now, level)
        if writes:
            prov.blocks_written += await self.blocks.write(
                query.site, writes, {p: gaps[p] for p in writes}, now
            )
        return Result(query, series, prov, missing, bucket_factor=factor)

    async def _fetch_or_give_up(
        self,
        site: str,
        gaps: dict[str, list[iv.Interval]],
        token: str,
        prov: Provenance,
        progress: ProgressCallback | None,
        now: int,
        wait_s: float,
    ) -> dict[str, Columns]:
        """`fetcher.fetch`, abandoned once it has run `wait_s` while origin requests fail.

        A failing origin is retried with backoff for seconds before the fetch fails;
        a query that can be answered from the cache should not wait for all of that.
        An origin that is slow but answering is waited for as long as it takes.
        """
        failures = self.origin.failed_attempts
        task = asyncio.ensure_future(self.fetcher.fetch(site, gaps, token, prov, progress, now))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=wait_s)
                if done:
                    return task.result()
                if self.origin.failed_attempts > failures:
                    raise OriginUnavailable(
                        f"the origin kept failing for {wait_s:g} s (its requests are being retried)"
                    )
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    @staticmethod
    def _level(query: Query) -> str | None:
        """The stored level an interval query reads and writes (None: raw samples only)."""
        if query.interval == "raw" or query.raw_stats:
            return None
        level = query.buckets.level
        return level if level in LEVELS else None

    @staticmethod
    def _answer_edges(query: Query, plan: BucketPlan) -> tuple[NDArray[np.int64] | None, int]:
        """The edges of the answered buckets and how many of the plan's each merges:
        the plan's edges (None: its fixed grid), or with `max_buckets` every `factor`-th."""
        if query.max_buckets is None or plan.count <= query.max_buckets:
            return plan.edges, 1
        factor = -(-plan.count // query.max_buckets)
        every = plan.edge_array()
        edges = np.ascontiguousarray(every[::factor])
        if edges[-1] != every[-1]:
            edges = np.append(edges, every[-1])
        return edges, factor

    async def _buckets(
        self, query: Query, plan: BucketPlan, fine: Aggregates
    ) -> tuple[Aggregates, int]:
        """The query's buckets from fine ones: merged into the plan's edges, then into at
        most `max_buckets` (every `factor` neighbours as one); returns (buckets, factor)."""
        edges, factor = self._answer_edges(query, plan)
        if edges is None:
            return fine, factor
        if len(fine["ts"]) > 20_000:
            return await asyncio.to_thread(rollup_edges, fine, edges), factor
        return rollup_edges(fine, edges), factor

    def _interval_series(
        self, query: Query, plan: BucketPlan, point: str, agg: Aggregates, now: int
    ) -> Series:
        """The series of one point's buckets: `stat` as its value, the last bucket marked
        partial when it ends after now."""
        ts = agg["ts"]
        values = np.asarray(agg[query.value_stat], np.float64)
        partial = bool(len(ts)) and self._bucket_end(query, plan, int(ts[-1])) > now
        out = self._finish(query, point, ts, values, agg)  # type: ignore[arg-type]
        return replace(out, partial_last=partial and (len(out.ts) == 0 or out.ts[-1] == ts[-1]))

    @staticmethod
    def _bucket_end(query: Query, plan: BucketPlan, start: int) -> int:
        if query.max_buckets is None:
            return int(plan.ends_of(np.asarray([start], np.int64))[0])
        every = plan.edge_array()
        factor = -(-plan.count // query.max_buckets) if plan.count > query.max_buckets else 1
        at = int(np.searchsorted(every, start))
        return int(every[min(at + factor, len(every) - 1)])

    async def _raw_stat(
        self,
        query: Query,
        plan: BucketPlan,
        point: str,
        ts: NDArray[np.int64],
        values: NDArray[np.float64],
        now: int,
    ) -> Series:
        """`delta`, `twa` or `on_time` per bucket from the raw samples (with the lookback)."""
        edges = plan.edge_array()
        if query.stat == "delta":
            threshold = (
                self.reset_threshold if query.reset_threshold is None else query.reset_threshold
            )
            bts, bv = await asyncio.to_thread(meter_delta, ts, values, edges, threshold)
        else:
            held = await asyncio.to_thread(held_values, ts, values, edges, min(int(edges[-1]), now))
            bts, bv = held["ts"], held[query.stat]  # type: ignore[assignment]
        bts = np.asarray(bts, np.int64)
        partial = bool(len(bts)) and int(plan.ends_of(bts[-1:])[0]) > now
        out = self._finish(query, point, bts, np.asarray(bv, np.float64), None)
        return replace(out, partial_last=partial and (len(out.ts) == 0 or out.ts[-1] == bts[-1]))

    async def _stat_rows(
        self,
        query: Query,
        plan: BucketPlan,
        point: str,
        ts: NDArray[np.int64],
        values: NDArray[np.float64],
        now: int,
    ) -> tuple[Series, int]:
        """The aggregation rows of `query.stats` when some need the raw samples: bucket
        statistics of the samples in the buckets and `delta`, `twa`, `on_time` from the
        same kernels as `_raw_stat` (with the lookback), joined on the bucket starts.

        A bucket one kind has and the other lacks (a held value but no sample in it, say)
        gets count and sum 0 and NaN for the other statistics. Returns (series, factor).
        """
        edges, factor = self._answer_edges(query, plan)
        every = plan.edge_array() if edges is None else edges
        wanted = set(query.stats)
        parts: list[Aggregates] = []
        if wanted - RAW_STATS:
            lo, hi = np.searchsorted(ts, [plan.start, plan.end])
            fine = await asyncio.to_thread(aggregate, ts[lo:hi], values[lo:hi], plan.fine_ms)
            parts.append((await self._buckets(query, plan, fine))[0])
        if "delta" in wanted:
            threshold = (
                self.reset_threshold if query.reset_threshold is None else query.reset_threshold
            )
            bts, bv = await asyncio.to_thread(meter_delta, ts, values, every, threshold)
            parts.append({"ts": bts, "delta": bv})
        if wanted & {"twa", "on_time"}:
            until = min(int(every[-1]), now)
            held = await asyncio.to_thread(held_values, ts, values, every, until)
            parts.append({"ts": held["ts"], "twa": held["twa"], "on_time": held["on_time"]})
        rows = _join_buckets(parts)
        starts = np.asarray(rows["ts"], np.int64)
        partial = bool(len(starts)) and self._bucket_end(query, plan, int(starts[-1])) > now
        value = np.asarray(rows[query.value_stat], np.float64)
        return Series(point, starts, value, rows, partial), factor

    async def _split_by_aggregates(self, query: Query) -> tuple[list[str], list[str]]:
        level = self._level(query)
        if level is None:
            return [], list(query.points)
        start, end = query.aligned()
        covered = await self.aggregates.covering(
            query.site, query.points, level, start, end, self.clock()
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
            # Engine series are sorted (blocks are written sorted, merges sort): no check pass.
            keep = downsample(ts, values, n_out, method, assume_sorted=True)
            ts, values = ts[keep], values[keep]
            if agg is not None:
                agg = {k: v[keep] for k, v in agg.items()}
        return Series(point, ts, values, agg)


def _cached_share(
    query: Query, gaps: dict[str, list[iv.Interval]], start: int, end: int, now: int
) -> float:
    """The share of the query's range (points x time up to now) that the caches hold;
    points served from aggregates, which have no gaps here, count as wholly cached."""
    stop = min(end, now + 1)
    total = len(query.points) * max(stop - start, 0)
    if total <= 0:
        return 1.0
    return 1.0 - sum(iv.total(g) for g in gaps.values()) / total


def _join_buckets(parts: list[Aggregates]) -> Aggregates:
    """Bucket columns of several kernels joined on their bucket starts (`ts`, sorted):
    the union of the starts, each column in place; where a kernel has no bucket, its
    columns are 0 for count and sum (nothing was counted) and NaN otherwise."""
    stamps = np.unique(np.concatenate([np.asarray(p["ts"], np.int64) for p in parts]))
    out: Aggregates = {"ts": stamps}
    for part in parts:
        at = np.searchsorted(stamps, part["ts"])
        for key, column in part.items():
            if key == "ts":
                continue
            if key in AGG_INT_KEYS:
                filled: NDArray[np.int64] | NDArray[np.float64] = np.zeros(len(stamps), np.int64)
            elif key == "sum":
                filled = np.zeros(len(stamps), np.float64)
            else:
                filled = np.full(len(stamps), np.nan)
            filled[at] = column
            out[key] = filled
    return out


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
