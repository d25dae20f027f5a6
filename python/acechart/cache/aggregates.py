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
import json
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from acechart import _core
from acechart.cache import intervals as iv
from acechart.cache.policy import DAY_MS, TABLE
from acechart.query import INTERVALS
from acechart.result import Aggregates
from acechart.storage.database import Database

#: The stored levels and their widths (1min is always computed from raw).
LEVELS: dict[str, int] = {
    name: width for name, width in INTERVALS.items() if width and name != "1min"
}
_RECENT_MS = 7 * DAY_MS
_ARCHIVED_MS = 90 * DAY_MS
_NEVER = 2**62


class AggregateStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def coverage(
        self, site: str, points: Sequence[str], level: str, now: int
    ) -> dict[str, list[iv.Interval]]:
        """Live covered ranges per point at one level, through one query."""
        rows = await self.db.fetchall(
            "SELECT point_name, start_ms, end_ms FROM aggregate_coverage"
            " WHERE site_id = ? AND level = ? AND expires_at > ?"
            " AND point_name IN (SELECT value FROM json_each(?))",
            (site, level, now // 1000, json.dumps(list(points))),
        )
        found: defaultdict[str, list[iv.Interval]] = defaultdict(list)
        for point, start, end in rows:
            found[point].append((int(start), int(end)))
        return {p: iv.normalize(found[p]) for p in points}

    async def covering(
        self, site: str, points: Sequence[str], level: str, start: int, end: int, now: int
    ) -> set[str]:
        """The points whose whole `[start, end)` the table holds at `level`."""
        cov = await self.coverage(site, points, level, now)
        return {p for p in points if not iv.subtract([(start, end)], cov[p])}

    async def read(
        self, site: str, points: Sequence[str], level: str, start: int, end: int
    ) -> dict[str, Aggregates]:
        rows = await self.db.read_aggregations(site, list(points), level, start, end)
        return {p: dict(rows[p]) for p in points}

    async def write_from_raw(
        self,
        site: str,
        point: str,
        ts: NDArray[np.int64],
        values: NDArray[np.float64],
        covered: list[iv.Interval],
        now: int,
        level: str,
    ) -> int:
        """Store the complete, storable buckets of `level` and coarser ones; rows written.

        Finer levels than the query's are not written: a year of 5min buckets for
        50 points is 5 M rows, which would cost a 1hr query more than its fetch.
        """
        storable = iv.clip(covered, -_NEVER, now - _RECENT_MS)
        levels = [name for name, width in LEVELS.items() if width >= LEVELS[level]]
        if not storable or not levels:
            return 0
        finest = await asyncio.to_thread(_core.aggregate, ts, values, LEVELS[levels[0]])
        by_level = {levels[0]: finest}
        for coarse, fine in zip(levels[1:], levels, strict=False):
            by_level[coarse] = _core.rollup_aggregates(by_level[fine], LEVELS[coarse])
        written = 0
        coverage_rows = []
        for level_name in levels:
            width = LEVELS[level_name]
            have = (await self.coverage(site, [point], level_name, now))[point]
            new = iv.subtract(_whole_buckets(storable, width), have)
            if not new:
                continue
            agg = by_level[level_name]
            keep = _buckets_inside(agg["ts"], width, new)  # type: ignore[arg-type]
            written += await self.db.upsert_aggregations(
                site, point, level_name, {k: v[keep] for k, v in agg.items()}
            )
            for start, end in new:
                for part, expires in _by_expiry(start, end, now):
                    coverage_rows.append((site, point, level_name, part[0], part[1], expires))
        if coverage_rows:
            await self.db.executemany(
                "INSERT INTO aggregate_coverage (site_id, point_name, level, start_ms, end_ms,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                coverage_rows,
            )
        return written

    async def sweep(self, now: int) -> int:
        """Drop expired coverage and the buckets no live coverage still vouches for."""
        expired = await self.db.fetchall(
            "SELECT site_id, point_name, level, start_ms, end_ms FROM aggregate_coverage"
            " WHERE expires_at <= ?",
            (now // 1000,),
        )
        if not expired:
            return 0
        groups: defaultdict[tuple[str, str, str], list[iv.Interval]] = defaultdict(list)
        for site, point, level, start, end in expired:
            groups[(site, point, level)].append((int(start), int(end)))
        await self.db.execute(
            "DELETE FROM aggregate_coverage WHERE expires_at <= ?", (now // 1000,)
        )
        deleted = 0
        for (site, point, level), gone in groups.items():
            live = (await self.coverage(site, [point], level, now))[point]
            for start, end in iv.subtract(iv.normalize(gone), live):
                deleted += await self.db.execute(
                    "DELETE FROM timeseries_aggregations WHERE site_id = ? AND point_name = ?"
                    " AND aggregation_level = ? AND timestamp >= ? AND timestamp < ?",
                    (site, point, level, start, end),
                )
        return deleted


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
