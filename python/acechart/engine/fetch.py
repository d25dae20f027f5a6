"""Paying the origin for a query's gaps: by point, or one site-wide pass that harvests.

For each distinct gap (a time range some points lack) the cheaper way is
chosen from the point catalogue (`origin.strategy.choose`): the per-point
route for a few points, the paginated route over the whole site when the
query names enough of it. Site-wide gaps that overlap are fetched as one pass
over their union, and everything such a pass brings is harvested into the
block store. A per-point route the origin refuses (4xx) falls back to a
site-wide pass. Identical concurrent fetches share one origin request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from acechart._core import sort_dedup
from acechart.cache import intervals as iv
from acechart.cache.blocks import BlockStore
from acechart.cache.catalog import PointCatalog
from acechart.engine.harvest import SiteHarvest
from acechart.engine.throughput import OriginThroughput
from acechart.errors import OriginBadRequest, OriginError, OriginNotFound
from acechart.origin.client import OriginClient, ProgressCallback, Samples
from acechart.origin.strategy import Choice, Strategy, choose
from acechart.result import Provenance
from acechart.settings import Settings

__all__ = ["FetchEstimate", "FetchPolicy", "GapFetcher"]

logger = logging.getLogger(__name__)

Columns = tuple[NDArray[np.int64], NDArray[np.float64]]


@dataclass(frozen=True)
class FetchPolicy:
    """How gaps are fetched; see the `origin_*` settings of the same names."""

    strategy: Literal["auto", "per_point", "site_wide", "filtered"] = "auto"
    point_window_ms: int = 30 * 86_400_000
    window_ms: int = 86_400_000
    page_size: int = 500_000
    request_cost_samples: int = 20_000
    harvest: bool = True
    harvest_buffer_samples: int = 8_000_000
    block_budget_bytes: int = 10 * 1024**3
    site_page_size: int = 100_000
    concurrency: int = 8
    seed_samples_per_s: float = 100_000.0
    seed_round_s: float = 0.5

    @classmethod
    def from_settings(cls, s: Settings) -> FetchPolicy:
        strategy: Any = s.origin_strategy
        return cls(
            strategy=strategy,
            point_window_ms=s.origin_point_window_s * 1000,
            window_ms=s.origin_window_s * 1000,
            page_size=s.origin_page_size,
            request_cost_samples=s.origin_request_cost_samples,
            harvest=s.origin_harvest,
            harvest_buffer_samples=s.origin_harvest_buffer_samples,
            block_budget_bytes=s.block_budget_bytes,
            site_page_size=s.origin_site_page_size,
            concurrency=s.origin_concurrency,
            seed_samples_per_s=s.origin_estimate_samples_per_s,
            seed_round_s=s.origin_estimate_round_s,
        )

    @property
    def forced(self) -> Strategy | None:
        return None if self.strategy == "auto" else self.strategy


@dataclass(frozen=True)
class FetchEstimate:
    """What fetching some gaps would cost, before any request is made."""

    seconds: float
    """Estimated wall time, from the origin's measured throughput."""
    point_samples: int
    """Samples of the requested points in their gaps (at their catalogue cadences)."""
    origin_samples: int
    """Samples the chosen strategies download (a site-wide pass: the whole site's)."""
    requests: int
    strategies: tuple[Strategy, ...] = ()


@dataclass(frozen=True)
class _Fetched:
    """What one origin fetch brought, ready to merge into a query."""

    samples: dict[str, Columns]
    requests: int
    pages: int
    origin_samples: int
    origin_bytes: int
    strategy: Strategy
    rounds: int = 1
    """Waves of origin requests it took (what the throughput record is told)."""
    harvested_points: int = 0
    harvested_samples: int = 0
    blocks_written: int = 0


@dataclass(eq=False)
class _Flight:
    """One origin fetch in progress and how many queries are waiting for it."""

    task: asyncio.Task[_Fetched]
    waiters: int = 0


@dataclass
class _Gap:
    start: int
    end: int
    points: list[str]
    choice: Choice | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class GapFetcher:
    def __init__(
        self,
        origin: OriginClient,
        blocks: BlockStore,
        catalog: PointCatalog | None,
        policy: FetchPolicy,
    ) -> None:
        self.origin = origin
        self.blocks = blocks
        self.catalog = catalog
        self.policy = policy
        self._inflight: dict[tuple[Any, ...], _Flight] = {}
        self._stopping: set[asyncio.Task[_Fetched]] = set()
        self.throughput = OriginThroughput(
            policy.seed_samples_per_s, policy.seed_round_s, policy.concurrency
        )
        """The origin's measured speed: every fetch updates it, every estimate reads it."""

    async def estimate(
        self, site: str, gaps: Mapping[str, list[iv.Interval]], token: str
    ) -> FetchEstimate:
        """How long fetching `gaps` would take, by the strategy `fetch` would choose."""
        if not any(gaps.values()):
            return FetchEstimate(0.0, 0, 0, 0)
        return self.estimate_with(gaps, await self.cadences(site, token))

    def estimate_with(
        self, gaps: Mapping[str, list[iv.Interval]], cadences: Mapping[str, int]
    ) -> FetchEstimate:
        """`estimate` with the site's cadences at hand (no I/O: cheap to call in a search)."""
        seconds = 0.0
        point_samples = origin_samples = requests = 0
        strategies: list[Strategy] = []
        for piece in _pieces(gaps):
            choice = self._choose(piece, cadences)
            span = piece.end - piece.start
            point_samples += choice.per_point_samples
            t = self.throughput
            if choice.strategy == "per_point":
                n = len(piece.points) * _window_count(
                    piece.start, piece.end, self.policy.point_window_ms
                )
                samples, rounds = choice.per_point_samples, t.rounds(n)
            else:
                # The paginated route: each window's pages follow one another.
                site_wide = choice.strategy == "site_wide"
                samples = choice.site_samples if site_wide else choice.per_point_samples
                size = self.policy.site_page_size if site_wide else self.policy.page_size
                windows = _window_count(piece.start, piece.end, self.policy.window_ms)
                per_window = samples * min(1.0, self.policy.window_ms / max(span, 1))
                pages = max(1, math.ceil(per_window / max(size, 1)))
                n, rounds = windows * pages, t.rounds(windows, pages)
            seconds += t.seconds(choice.strategy, samples, rounds)
            origin_samples += samples
            requests += n
            strategies.append(choice.strategy)
        return FetchEstimate(
            seconds, point_samples, origin_samples, requests, tuple(dict.fromkeys(strategies))
        )

    def _choose(self, piece: _Gap, cadences: Mapping[str, int]) -> Choice:
        return choose(
            piece.points,
            piece.end - piece.start,
            cadences,
            window_ms=self.policy.point_window_ms,
            page_size=self.policy.page_size,
            request_cost_samples=self.policy.request_cost_samples,
            forced=self.policy.forced,
        )

    async def fetch(
        self,
        site: str,
        gaps: Mapping[str, list[iv.Interval]],
        token: str,
        prov: Provenance,
        progress: ProgressCallback | None,
        now: int,
    ) -> dict[str, Columns]:
        """The samples of each point inside its gaps, fetched the cheapest way."""
        pieces = _pieces(gaps)
        if not pieces:
            return {}
        prov.sources.add("ORIGIN")
        cadences = await self.cadences(site, token)
        site_wide: list[_Gap] = []
        calls: list[Awaitable[_Fetched]] = []
        for piece in pieces:
            piece.choice = self._choose(piece, cadences)
            strategy = piece.choice.strategy
            key = (strategy, site, tuple(piece.points), piece.start, piece.end)
            if strategy == "site_wide":
                site_wide.append(piece)
            elif strategy == "per_point":
                run = functools.partial(
                    self._per_point, site, piece, token, progress, cadences, now
                )
                calls.append(self._shared(key, run))
            else:
                calls.append(
                    self._shared(
                        key, functools.partial(self._filtered, site, piece, token, progress)
                    )
                )
        for start, end, points in _union(site_wide):
            run = functools.partial(
                self._site_wide, site, start, end, points, token, progress, cadences, now
            )
            calls.append(self._shared(("site_wide", site, tuple(points), start, end), run))
        results = await asyncio.gather(*calls)
        parts: defaultdict[str, list[Columns]] = defaultdict(list)
        for fetched in results:
            prov.origin_requests += fetched.requests
            prov.origin_pages += fetched.pages
            prov.origin_samples += fetched.origin_samples
            prov.origin_bytes += fetched.origin_bytes
            prov.harvested_points += fetched.harvested_points
            prov.harvested_samples += fetched.harvested_samples
            prov.blocks_written += fetched.blocks_written
            prov.count_strategy(fetched.strategy)
            for point, columns in fetched.samples.items():
                parts[point].append(columns)
        for piece in pieces:
            prov.origin_intervals.append((tuple(piece.points), piece.start, piece.end))
        out: dict[str, Columns] = {}
        for point, chunks in parts.items():
            ts = np.concatenate([c[0] for c in chunks])
            values = np.concatenate([c[1] for c in chunks])
            if len(chunks) > 1:
                _, ts, values = sort_dedup(np.zeros(len(ts), np.int32), ts, values)
            keep = _inside(ts, gaps.get(point, []))
            out[point] = (ts[keep], values[keep])
        prov.samples_fetched += sum(len(c[0]) for c in out.values())
        return out

    # --- the three ways ------------------------------------------------------------------

    async def _per_point(
        self,
        site: str,
        gap: _Gap,
        token: str,
        progress: ProgressCallback | None,
        cadences: Mapping[str, int],
        now: int,
    ) -> _Fetched:
        try:
            got = await self.origin.fetch_points(
                gap.points, gap.start, gap.end, token=token, progress=progress
            )
        except (OriginNotFound, OriginBadRequest) as exc:
            if not cadences:
                raise
            logger.warning(
                "per-point route refused (%s); falling back to a site-wide pass", exc.reason
            )
            return await self._site_wide(
                site, gap.start, gap.end, gap.points, token, progress, cadences, now
            )
        return _from_samples(got, "per_point", self.throughput.rounds(got.requests))

    async def _filtered(
        self, site: str, gap: _Gap, token: str, progress: ProgressCallback | None
    ) -> _Fetched:
        got = await self.origin.fetch_samples(
            site, gap.points, gap.start, gap.end, token=token, progress=progress
        )
        windows = _window_count(gap.start, gap.end, self.policy.window_ms)
        rounds = self.throughput.rounds(windows, math.ceil(got.pages / max(windows, 1)))
        return _from_samples(got, "filtered", rounds)

    async def _site_wide(
        self,
        site: str,
        start: int,
        end: int,
        points: Sequence[str],
        token: str,
        progress: ProgressCallback | None,
        cadences: Mapping[str, int],
        now: int,
    ) -> _Fetched:
        harvest = self.policy.harvest and await self._room_for(start, end, cadences)
        sink = SiteHarvest(
            self.blocks,
            site,
            points,
            cadences.keys(),
            start=start,
            end=end,
            harvest=harvest,
            buffer_samples=self.policy.harvest_buffer_samples,
            now=now,
        )
        try:
            stats = await self.origin.scan_site(
                site, start, end, token=token, sink=sink, progress=progress
            )
        finally:
            await sink.close()
        windows = _window_count(start, end, self.policy.window_ms)
        samples = {p: sink.requested(p) for p in points}
        if harvest:
            logger.info(
                "site-wide pass over %s harvested %d samples of %d other points",
                site,
                sink.harvested_samples,
                len(sink.harvested_points),
            )
        return _Fetched(
            samples,
            stats.requests,
            stats.pages,
            stats.samples,
            stats.bytes,
            "site_wide",
            rounds=self.throughput.rounds(windows, math.ceil(stats.pages / max(windows, 1))),
            harvested_points=len(sink.harvested_points),
            harvested_samples=sink.harvested_samples,
            blocks_written=sink.blocks_written,
        )

    # --- helpers ---------------------------------------------------------------------

    async def cadences(self, site: str, token: str) -> dict[str, int]:
        """Collection intervals (ms) of the site's catalogued points; {} when unknown."""
        if self.catalog is None:
            return {}
        try:
            return await self.catalog.cadences(site, token=token)
        except OriginError as exc:
            logger.warning("no point catalogue for %s (%s); fetching per point", site, exc)
            return {}

    async def _room_for(self, start: int, end: int, cadences: Mapping[str, int]) -> bool:
        """Whether harvesting this range keeps the block store inside its budget."""
        estimate = 2 * sum((end - start) // max(c, 1) for c in cadences.values())
        used = await self.blocks.db.total_block_bytes()
        if used + estimate > self.policy.block_budget_bytes:
            logger.warning(
                "not harvesting: about %d more block bytes would pass the %d byte budget",
                estimate,
                self.policy.block_budget_bytes,
            )
            return False
        return True

    async def _shared(
        self, key: tuple[Any, ...], start: Callable[[], Awaitable[_Fetched]]
    ) -> _Fetched:
        """Identical concurrent fetches share one origin request.

        Only the first caller's token reaches the origin; the server checks every
        token's access to the site before a query runs, so sharing is safe.
        """
        flight = self._inflight.get(key)
        if flight is None:
            flight = _Flight(asyncio.ensure_future(self._measured(start)))
            self._inflight[key] = flight
            flight.task.add_done_callback(functools.partial(self._landed, key, flight))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if not flight.waiters and not flight.task.done():
                # Every caller gave up (a cancelled job, a client gone): stop the fetch
                # rather than let it page through the origin for nobody.
                self._land(key, flight)
                flight.task.cancel()
                self._stopping.add(flight.task)
                flight.task.add_done_callback(self._stopping.discard)

    async def _measured(self, start: Callable[[], Awaitable[_Fetched]]) -> _Fetched:
        """Run one origin fetch and fold its wall time into the throughput record."""
        t0 = time.perf_counter()
        fetched = await start()
        self.throughput.observe(
            fetched.strategy, time.perf_counter() - t0, fetched.origin_samples, fetched.rounds
        )
        return fetched

    async def close(self) -> None:
        """Stop every fetch still in flight and wait for it, so none outlives the client."""
        tasks = [*(f.task for f in self._inflight.values()), *self._stopping]
        self._inflight.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _landed(self, key: tuple[Any, ...], flight: _Flight, _task: object) -> None:
        self._land(key, flight)

    def _land(self, key: tuple[Any, ...], flight: _Flight) -> None:
        """Forget a finished or abandoned fetch, unless a newer one took its key."""
        if self._inflight.get(key) is flight:
            del self._inflight[key]


def _pieces(gaps: Mapping[str, list[iv.Interval]]) -> list[_Gap]:
    """Distinct gaps in time order, each with the points that lack it."""
    by_gap: defaultdict[iv.Interval, list[str]] = defaultdict(list)
    for point, point_gaps in gaps.items():
        for gap in point_gaps:
            by_gap[gap].append(point)
    return [_Gap(a, b, sorted(points)) for (a, b), points in sorted(by_gap.items())]


def _window_count(start: int, end: int, window_ms: int) -> int:
    """How many UTC-aligned windows of `window_ms` [start, end) touches (as the client cuts)."""
    if end <= start:
        return 0
    w = max(window_ms, 1)
    return (end - 1) // w - start // w + 1


def _from_samples(got: Samples, strategy: Strategy, rounds: int) -> _Fetched:
    samples = {name: got.point(name) for name in got.names}
    return _Fetched(samples, got.requests, got.pages, got.samples, got.bytes, strategy, rounds)


def _union(gaps: Sequence[_Gap]) -> list[tuple[int, int, list[str]]]:
    """Overlapping or touching site-wide gaps merged into single passes, with their points."""
    out: list[tuple[int, int, list[str]]] = []
    for gap in sorted(gaps, key=lambda g: g.start):
        if out and gap.start <= out[-1][1]:
            start, end, points = out[-1]
            out[-1] = (start, max(end, gap.end), sorted({*points, *gap.points}))
        else:
            out.append((gap.start, gap.end, list(gap.points)))
    return out


def _inside(ts: NDArray[np.int64], within: list[iv.Interval]) -> NDArray[np.bool_]:
    mask = np.zeros(len(ts), dtype=bool)
    for start, end in within:
        lo, hi = np.searchsorted(ts, [start, end])
        mask[lo:hi] = True
    return mask
