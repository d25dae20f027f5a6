"""`AggregateTable`: the one repository of `timeseries_aggregations` and `aggregate_coverage`.

Every statement that touches stored bucket statistics is here, so the cache
layer above says what to store and this module says how. Writes come in
batches: the buckets of many points and levels and the coverage rows that
vouch for them go in one transaction, so a half-written batch never claims
coverage it does not hold, and a 50-point query costs one commit, not one per
point and level.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from acechart.storage import tables
from acechart.storage.records import AGG_LEVELS

if TYPE_CHECKING:
    from acechart.storage.database import Database

__all__ = ["AggregateTable", "CoverageRow", "Interval"]

Interval = tuple[int, int]

#: Results bigger than this are converted in a worker thread, so the event loop keeps
#: serving other requests in between (about 10 ms of work per 20k rows).
_CONVERT_IN_THREAD_ROWS = 20_000

_COVERAGE_INSERT = (
    "INSERT INTO aggregate_coverage (site_id, point_name, level, start_ms, end_ms, expires_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class CoverageRow:
    """`[start_ms, end_ms)` of `point` at `level` is stored, and vouched for until `expires_at`
    (unix seconds)."""

    point: str
    level: str
    start_ms: int
    end_ms: int
    expires_at: int


class AggregateTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def coverage(
        self, site: str, points: Sequence[str], levels: Sequence[str], now_s: int
    ) -> dict[tuple[str, str], list[Interval]]:
        """Live covered ranges per (point, level), unsorted and unmerged, in one query."""
        for level in levels:
            _check_level(level)
        rows = await self.db.fetchall(
            "SELECT point_name, level, start_ms, end_ms FROM aggregate_coverage"
            " WHERE site_id = ? AND expires_at > ?"
            " AND level IN (SELECT value FROM json_each(?))"
            " AND point_name IN (SELECT value FROM json_each(?))",
            (site, now_s, json.dumps(list(levels)), json.dumps(list(points))),
        )
        found: defaultdict[tuple[str, str], list[Interval]] = defaultdict(list)
        for point, level, start, end in rows:
            found[(str(point), str(level))].append((int(start), int(end)))
        return {(p, lv): found[(p, lv)] for p in points for lv in levels}

    async def write(
        self,
        site: str,
        buckets: Mapping[str, Mapping[str, Mapping[str, npt.ArrayLike]]],
        coverage: Sequence[CoverageRow],
    ) -> int:
        """Store `{level: {point: columns}}` and the coverage rows for them, in one
        transaction; returns the bucket rows written.

        Columns map every key of `AGG_KEYS` to arrays of one length, as
        `_core.aggregate` returns them; NaN is stored as NULL and read back as NaN.
        """
        batches: list[list[tuple[Any, ...]]] = []
        for level, by_point in buckets.items():
            _check_level(level)
            size = sum(np.size(rows.get("ts", ())) for rows in by_point.values())
            if size > _CONVERT_IN_THREAD_ROWS:
                params, _ = await asyncio.to_thread(tables.agg_params, site, level, by_point)
            else:
                params, _ = tables.agg_params(site, level, by_point)
            batches.append(params)
        total = sum(len(b) for b in batches)
        if not total and not coverage:
            return 0
        async with self.db.transaction() as tx:
            for params in batches:
                if params:
                    await tx.executemany(tables.AGG_UPSERT, params)
            if coverage:
                await tx.executemany(
                    _COVERAGE_INSERT,
                    [
                        (site, c.point, c.level, c.start_ms, c.end_ms, c.expires_at)
                        for c in coverage
                    ],
                )
        return total

    async def upsert(
        self, site: str, level: str, by_point: Mapping[str, Mapping[str, npt.ArrayLike]]
    ) -> int:
        """Buckets of many points at one level without coverage rows (imports, tests)."""
        return await self.write(site, {level: by_point}, ())

    async def read(
        self, site: str, points: Sequence[str], level: str, start_ms: int, end_ms: int
    ) -> dict[str, tables.AggArrays]:
        """Buckets with `start_ms <= ts < end_ms` of many points, through one query.

        Returns `{point: {key: array}}` for every requested point (empty arrays
        when it has none), keys and dtypes as `_core.aggregate` returns them
        (`ts`, `count` int64; the rest float64, NULL as NaN), each array
        contiguous and sorted by `ts`. SQLite integers pass through float64,
        exact for any ms timestamp before the year 285,000.
        """
        _check_level(level)
        wanted = list(dict.fromkeys(points))
        if not wanted:
            return {}
        rows = await self.db.fetch_tuples(
            tables.AGG_SELECT, (json.dumps(wanted), site, level, start_ms, end_ms)
        )
        if len(rows) > _CONVERT_IN_THREAD_ROWS:
            return await asyncio.to_thread(tables.agg_arrays, wanted, rows)
        return tables.agg_arrays(wanted, rows)

    async def delete_before(
        self, site: str, level: str, before_ms: int, points: Sequence[str] | None = None
    ) -> int:
        """Drop buckets older than `before_ms`; returns rows deleted."""
        _check_level(level)
        sql = (
            "DELETE FROM timeseries_aggregations"
            " WHERE site_id = ? AND aggregation_level = ? AND timestamp < ?"
        )
        params: list[Any] = [site, level, before_ms]
        if points is not None:
            sql += " AND point_name IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(list(points)))
        return await self.db.execute(sql, params)

    async def take_expired_coverage(self, now_s: int) -> list[tuple[str, CoverageRow]]:
        """Remove the coverage rows expired at `now_s` and return them as (site, row)."""
        async with self.db.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT site_id, point_name, level, start_ms, end_ms, expires_at"
                " FROM aggregate_coverage WHERE expires_at <= ?",
                (now_s,),
            )
            if rows:
                await tx.execute("DELETE FROM aggregate_coverage WHERE expires_at <= ?", (now_s,))
        return [
            (str(site), CoverageRow(str(point), str(level), int(a), int(b), int(exp)))
            for site, point, level, a, b, exp in rows
        ]

    async def delete_ranges(
        self, site: str, point: str, level: str, ranges: Iterable[Interval]
    ) -> int:
        """Drop one point's buckets inside each `[start, end)`; returns rows deleted."""
        _check_level(level)
        deleted = 0
        async with self.db.transaction() as tx:
            for start, end in ranges:
                deleted += await tx.execute(
                    "DELETE FROM timeseries_aggregations WHERE site_id = ? AND point_name = ?"
                    " AND aggregation_level = ? AND timestamp >= ? AND timestamp < ?",
                    (site, point, level, start, end),
                )
        return deleted


def _check_level(level: str) -> None:
    if level not in AGG_LEVELS:
        raise ValueError(f"aggregation level must be one of {list(AGG_LEVELS)}, got {level!r}")
