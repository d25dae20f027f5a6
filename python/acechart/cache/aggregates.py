"""The aggregate tier: sealed 5min / 1hr / 1day bucket statistics in SQLite.

Interval queries whose range is covered here are answered from the table (the
seed's D1 tier) without touching raw blocks, which may have expired long ago.
Whenever the engine aggregates raw data, it stores the buckets that are complete
(entirely inside cached, sealed coverage) at all three levels, each with its
mergeable state, and records the covered ranges in `aggregate_coverage` so a
later query knows whether the table holds all of its range. Following the TTL
table, only data older than 7 days is kept: historical buckets for 7 days,
archived ones (older than 90 days) permanently.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from acechart._core import aggregate, rollup_aggregates
from acechart.cache import intervals as iv
from acechart.cache.policy import DAY_MS, TABLE
from acechart.query import STORED_LEVELS
from acechart.result import Aggregates
from acechart.storage.aggregates import CoverageRow
from acechart.storage.database import Database

#: The stored levels and their widths.
LEVELS = STORED_LEVELS
_RECENT_MS = 7 * DAY_MS
_ARCHIVED_MS = 90 * DAY_MS
_NEVER = 2**62


#: What one point contributes to a write: its merged samples and the ranges they cover.
RawPoint = tuple[NDArray[np.int64], NDArray[np.float64], list[iv.Interval]]


class AggregateStore:
    """Which buckets to store and which ranges are vouched for; the SQL is `db.aggregates`'."""

    def __init__(self, db: Database) -> None:
        self.table = db.aggregates

    async def coverage(
        self, site: str, points: Sequence[str], level: str, now: int
    ) -> dict[str, list[iv.Interval]]:
        """Live covered ranges per point at one level, through one query."""
        found = await self.table.coverage(site, points, [level], now // 1000)
        return {p: iv.normalize(found[(p, level)]) for p in points}

    async def covering(
        self, site: str, points: Sequence[str], level: str, start: int, end: int, now: int
    ) -> set[str]:
        """The points whose whole `[start, end)` the table holds at `level`."""
        cov = await self.coverage(site, points, level, now)
        return {p for p in points if not iv.subtract([(start, end)], cov[p])}

    async def read(
        self, site: str, points: Sequence[str], level: str, start: int, end: int
    ) -> dict[str, Aggregates]:
        rows = await self.table.read(site, list(points), level, start, end)
        return {p: dict(rows[p]) for p in points}

    async def write_from_raw(
        self, site: str, points: Mapping[str, RawPoint], now: int, level: str
    ) -> int:
        """Store the complete, storable buckets of `level` and coarser ones for every point
        in one batch (one coverage query, one transaction); returns rows written.

        Finer levels than the query's are not written: a year of 5min buckets for
        50 points is 5 M rows, which would cost a 1hr query more than its fetch.
        """
        levels = [name for name, width in LEVELS.items() if width >= LEVELS[level]]
        storable = {
            p: clipped
            for p, (_, _, covered) in points.items()
            if (clipped := iv.clip(covered, -_NEVER, now - _RECENT_MS))
        }
        if not storable or not levels:
            return 0
        have = await self.table.coverage(site, list(storable), levels, now // 1000)
        buckets: dict[str, dict[str, Aggregates]] = {lv: {} for lv in levels}
        coverage: list[CoverageRow] = []
        for point, ranges in storable.items():
            ts, values, _ = points[point]
            by_level = await asyncio.to_thread(_by_level, ts, values, levels)
            for level_name in levels:
                width = LEVELS[level_name]
                new = iv.subtract(
                    _whole_buckets(ranges, width), iv.normalize(have[(point, level_name)])
                )
                if not new:
                    continue
                agg = by_level[level_name]
                keep = _buckets_inside(agg["ts"], width, new)  # type: ignore[arg-type]
                buckets[level_name][point] = {k: v[keep] for k, v in agg.items()}
                coverage.extend(
                    CoverageRow(point, level_name, part[0], part[1], expires)
                    for start, end in new
                    for part, expires in _by_expiry(start, end, now)
                )
        return await self.table.write(site, {lv: b for lv, b in buckets.items() if b}, coverage)

    async def sweep(self, now: int) -> int:
        """Drop expired coverage and the buckets no live coverage still vouches for."""
        expired = await self.table.take_expired_coverage(now // 1000)
        if not expired:
            return 0
        groups: defaultdict[tuple[str, str, str], list[iv.Interval]] = defaultdict(list)
        for site, row in expired:
            groups[(site, row.point, row.level)].append((row.start_ms, row.end_ms))
        deleted = 0
        for (site, point, level), gone in groups.items():
            live = (await self.coverage(site, [point], level, now))[point]
            deleted += await self.table.delete_ranges(
                site, point, level, iv.subtract(iv.normalize(gone), live)
            )
        return deleted


def _by_level(
    ts: NDArray[np.int64], values: NDArray[np.float64], levels: Sequence[str]
) -> dict[str, Aggregates]:
    """Buckets of the finest level from the samples, coarser ones rolled up from it."""
    out = {levels[0]: aggregate(ts, values, LEVELS[levels[0]])}
    for coarse, fine in zip(levels[1:], levels, strict=False):
        out[coarse] = rollup_aggregates(out[fine], LEVELS[coarse])
    return out


def _whole_buckets(covered: list[iv.Interval], width: int) -> list[iv.Interval]:
    """Each interval shrunk to whole buckets of `width` (aligned to the epoch)."""
    out = []
    for start, end in covered:
        a = -((-start) // width) * width
        b = end - end % width
        if a < b:
            out.append((a, b))
    return out


def _buckets_inside(
    bucket_ts: NDArray[np.int64], width: int, within: list[iv.Interval]
) -> NDArray[np.bool_]:
    mask = np.zeros(len(bucket_ts), dtype=bool)
    for start, end in within:
        lo, hi = np.searchsorted(bucket_ts, [start, end - width + 1])
        mask[lo:hi] = True
    return mask


def _by_expiry(start: int, end: int, now: int) -> list[tuple[iv.Interval, int]]:
    """Split a stored range into its archived part (kept for good) and historical part."""
    boundary = now - _ARCHIVED_MS
    historical = TABLE["historical"].aggregates_s or 0
    out = []
    if start < min(end, boundary):
        out.append(((start, min(end, boundary)), _NEVER))
    if max(start, boundary) < end:
        out.append(((max(start, boundary), end), now // 1000 + historical))
    return out
