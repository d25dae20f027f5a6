"""The aggregate tier: sealed 5min / 15min / 1hr / 1day bucket statistics, columnar in SQLite.

Interval queries whose range is covered here are answered from it (the seed's D1
tier) without touching raw blocks, which may have expired long ago. Whenever the
engine aggregates raw data, it stores the buckets that are complete (entirely
inside cached, sealed coverage) at its level and the coarser ones, each with its
mergeable state, in one blob per point, level and UTC month (`storage.aggregates`)
that records the intervals it covers, so a later query knows from metadata alone
whether the tier holds all of its range. Following the TTL table, only data older
than 7 days is kept: historical buckets for 7 days, archived ones (older than 90
days) permanently.

Damage is a miss, never an error and never wrong data: a blob that does not decode,
belongs to another series or does not back its row's claims is logged, counted and
deleted; its point is then not served from this tier (the engine recomputes it from
raw samples) and the next write stores it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from acechart._core import aggregate, rollup_aggregates
from acechart.cache import intervals as iv
from acechart.cache.periods import period_name, periods
from acechart.cache.policy import DAY_MS, TABLE
from acechart.query import STORED_LEVELS
from acechart.result import Aggregates
from acechart.storage.aggregates import BlockKey, LoadedBlock, StoredInterval, WriteBlock
from acechart.storage.database import Database

logger = logging.getLogger(__name__)

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
        #: Damaged blobs found (and deleted) since start.
        self.corrupt_total = 0

    async def coverage(
        self,
        site: str,
        points: Sequence[str],
        level: str,
        now: int,
        start: int | None = None,
        end: int | None = None,
    ) -> dict[str, list[iv.Interval]]:
        """Live covered ranges per point at one level (of the months overlapping
        `[start, end)` when given), from metadata, through one query."""
        first, last = _period_range(start, end)
        found = await self.table.coverage(site, points, [level], first, last)
        live: defaultdict[str, list[iv.Interval]] = defaultdict(list)
        now_s = now // 1000
        for (point, _, _), intervals in found.items():
            live[point].extend((s, e) for s, e, x in intervals if x > now_s)
        return {p: iv.normalize(live[p]) for p in points}

    async def covering(
        self, site: str, points: Sequence[str], level: str, start: int, end: int, now: int
    ) -> set[str]:
        """The points whose whole `[start, end)` the tier holds at `level`."""
        cov = await self.coverage(site, points, level, now, start, end)
        return {p for p in points if not iv.subtract([(start, end)], cov[p])}

    async def read(
        self, site: str, points: Sequence[str], level: str, start: int, end: int
    ) -> dict[str, Aggregates]:
        """Buckets of `[start, end)` per point: one query and one decode for all of them.

        A point with a damaged blob is left out (the blob is deleted), so the caller
        computes it from raw samples instead.
        """
        first, last = _period_range(start, end)
        got = await self.table.read(site, list(points), level, start, end, first, last)
        spoiled = await self._discard(site, got.damaged) if got.damaged else set()
        return {p: dict(got.arrays[p]) for p in points if p not in spoiled}

    async def write_from_raw(
        self, site: str, points: Mapping[str, RawPoint], now: int, level: str
    ) -> int:
        """Store the complete, storable buckets of `level` and coarser ones for every point
        in one batch (one coverage query, one transaction); returns buckets written.

        Finer levels than the query's are not written: a year of 5min buckets for
        50 points is 5 M buckets, which would cost a 1hr query more than its fetch.
        """
        levels = [name for name, width in LEVELS.items() if width >= LEVELS[level]]
        storable = {
            p: clipped
            for p, (_, _, covered) in points.items()
            if (clipped := iv.clip(covered, -_NEVER, now - _RECENT_MS))
        }
        if not storable or not levels:
            return 0
        lo = min(r[0][0] for r in storable.values())
        hi = max(r[-1][1] for r in storable.values())
        have = await self.table.coverage(
            site, list(storable), levels, period_name(lo), period_name(hi - 1)
        )
        now_s = now // 1000
        live: defaultdict[tuple[str, str], list[iv.Interval]] = defaultdict(list)
        for (point, level_name, _), intervals in have.items():
            live[(point, level_name)].extend((s, e) for s, e, x in intervals if x > now_s)
        # New ranges per blob: what each point's raw data completes that no live blob holds.
        touched: defaultdict[BlockKey, list[iv.Interval]] = defaultdict(list)
        for point, ranges in storable.items():
            for level_name in levels:
                new = iv.subtract(
                    _whole_buckets(ranges, LEVELS[level_name]),
                    iv.normalize(live[(point, level_name)]),
                )
                for start, end in new:
                    for name, p_start, p_end in periods(start, end):
                        part = (max(start, p_start), min(end, p_end))
                        touched[(point, level_name, name)].append(part)
        if not touched:
            return 0
        loaded, damaged = await self.table.load(site, [k for k in touched if k in have])
        if damaged:
            await self._discard(site, damaged)
        needed = list(dict.fromkeys(point for point, _, _ in touched))
        by_level = {}
        for point in needed:
            ts, values, _ = points[point]
            by_level[point] = await asyncio.to_thread(_by_level, ts, values, levels)
        blocks = [
            _merged(key, parts, by_level[key[0]][key[1]], loaded.get(key), now)
            for key, parts in touched.items()
        ]
        return await self.table.store(site, blocks, now_s)

    async def sweep(self, now: int) -> int:
        """Drop expired intervals and the buckets they vouched for; returns buckets dropped."""
        now_s = now // 1000
        due = await self.table.due(now_s)
        by_site: defaultdict[str, list[BlockKey]] = defaultdict(list)
        for site, key in due:
            by_site[site].append(key)
        dropped = 0
        for site, keys in by_site.items():
            loaded, damaged = await self.table.load(site, keys)
            if damaged:
                await self._discard(site, damaged)
            blocks = []
            for (point, level, period), block in loaded.items():
                keep = [c for c in block.covered if c[2] > now_s]
                ts = block.aggregates["ts"]
                mask = _buckets_inside(ts, LEVELS[level], [(s, e) for s, e, _ in keep])  # type: ignore[arg-type]
                dropped += int(len(ts) - mask.sum())
                columns = {k: v[mask] for k, v in block.aggregates.items()}
                blocks.append(WriteBlock(point, level, period, columns, keep))
            await self.table.store(site, blocks, now_s)
        return dropped

    async def _discard(self, site: str, damaged: Sequence[tuple[BlockKey, str]]) -> set[str]:
        """Log, count and delete damaged blobs; returns the points they belonged to."""
        for (point, level, period), why in damaged:
            self.corrupt_total += 1
            logger.error(
                "corrupt aggregate block %s %s %s %s (%s); deleting it",
                site,
                point,
                level,
                period,
                why,
            )
        await self.table.delete(site, [key for key, _ in damaged])
        return {point for (point, _, _), _ in damaged}


def _period_range(start: int | None, end: int | None) -> tuple[str, str]:
    """The first and last month names of `[start, end)`, or every month."""
    return _period_or(start, "0000-00"), _period_or(None if end is None else end - 1, "9999-99")


def _period_or(ms: int | None, default: str) -> str:
    """The month name of `ms`, or `default` beyond the calendar (or for None)."""
    if ms is None:
        return default
    try:
        return period_name(ms)
    except (OverflowError, ValueError):
        return default


def _merged(
    key: BlockKey,
    parts: list[iv.Interval],
    computed: Aggregates,
    existing: LoadedBlock | None,
    now: int,
) -> WriteBlock:
    """The new content of one blob: its live stored buckets outside `parts`, plus the
    buckets computed from raw samples inside them."""
    point, level, period = key
    width = LEVELS[level]
    parts = iv.normalize(parts)
    covered: list[StoredInterval] = [
        (s, e, expires) for start, end in parts for (s, e), expires in _by_expiry(start, end, now)
    ]
    new_mask = _buckets_inside(computed["ts"], width, parts)  # type: ignore[arg-type]
    columns = {k: v[new_mask] for k, v in computed.items()}
    if existing is not None:
        kept: list[StoredInterval] = []
        for s, e, x in existing.covered:
            if x > now // 1000:
                kept.extend((a, b, x) for a, b in iv.subtract([(s, e)], parts))
        old = existing.aggregates
        old_mask = _buckets_inside(old["ts"], width, [(s, e) for s, e, _ in kept])  # type: ignore[arg-type]
        if old_mask.any():
            ts = np.concatenate([old["ts"][old_mask], columns["ts"]])
            order = np.argsort(ts, kind="stable")
            columns = {
                k: np.concatenate([old[k][old_mask], columns[k]])[order]
                for k in columns
                if k in old
            }
        covered += kept
    return WriteBlock(point, level, period, columns, _coalesce(covered))


def _coalesce(covered: list[StoredInterval]) -> list[StoredInterval]:
    """Sorted, with touching intervals of the same expiry merged."""
    out: list[StoredInterval] = []
    for s, e, x in sorted(covered):
        if out and out[-1][1] == s and out[-1][2] == x:
            out[-1] = (out[-1][0], e, x)
        else:
            out.append((s, e, x))
    return out


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
