"""SQL statements of the typed tables and the conversions between rows and records.

Kept beside `database.py` so that module reads as the list of operations; the
statements here are built once at import from the column lists in `records.py`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from acechart.result import AGG_INT_KEYS, AGG_KEYS
from acechart.storage.records import AGG_COLUMNS, TIERS, BlockMeta, PointRecord

#: One point's aggregates: `AGG_KEYS` -> array, as `_core.aggregate` returns them.
AggArrays = dict[str, npt.NDArray[np.int64] | npt.NDArray[np.float64]]

# --- aggregates: SQL and conversions ---------------------------------------------

AGG_SQL_COLUMNS = [AGG_COLUMNS[k] for k in AGG_KEYS]
AGG_UPSERT = (
    "INSERT INTO timeseries_aggregations (site_id, point_name, aggregation_level, "
    + ", ".join(AGG_SQL_COLUMNS)
    + ") VALUES ("
    + ", ".join("?" * (3 + len(AGG_SQL_COLUMNS)))
    + ") ON CONFLICT (site_id, point_name, aggregation_level, timestamp) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in AGG_SQL_COLUMNS if c != "timestamp")
)
# CROSS JOIN makes SQLite keep the point list as the outer loop (it is its documented
# way to fix a join order): each point is then one range search of the primary key.
# Left to itself the planner scanned the whole site for every point (5x slower on
# 50 points x 1 year of 1hr buckets). No ORDER BY: an ORDER BY over the join costs a
# temp b-tree sort, while `agg_arrays` groups and orders in numpy at almost no cost.
AGG_SELECT = (
    "SELECT p.key, "
    + ", ".join(f"a.{c}" for c in AGG_SQL_COLUMNS)
    + " FROM json_each(?1) AS p CROSS JOIN timeseries_aggregations AS a"
    " ON a.site_id = ?2 AND a.point_name = p.value AND a.aggregation_level = ?3"
    " AND a.timestamp >= ?4 AND a.timestamp < ?5"
)


def agg_params(
    site: str, level: str, by_point: Mapping[str, Mapping[str, npt.ArrayLike]]
) -> tuple[list[tuple[Any, ...]], int]:
    """The `AGG_UPSERT` parameter rows of every point, and how many there are."""
    params: list[tuple[Any, ...]] = []
    for point, rows in by_point.items():
        columns = agg_columns(rows, point)
        params.extend(
            zip(
                itertools.repeat(site),
                itertools.repeat(point),
                itertools.repeat(level),
                *columns,
                strict=False,
            )
        )
    return params, len(params)


def agg_columns(rows: Mapping[str, npt.ArrayLike], point: str) -> list[list[Any]]:
    """The columns of `rows` in `AGG_KEYS` order as Python lists, checked for shape."""
    missing = [k for k in AGG_KEYS if k not in rows]
    if missing:
        raise ValueError(f"aggregates of {point!r} lack {missing}")
    columns = []
    length: int | None = None
    for k in AGG_KEYS:
        arr = np.asarray(rows[k], dtype=np.int64 if k in AGG_INT_KEYS else np.float64)
        if arr.ndim != 1 or (length is not None and len(arr) != length):
            raise ValueError(f"aggregates of {point!r}: {k!r} has shape {arr.shape}")
        length = len(arr)
        columns.append(arr.tolist())
    return columns


def agg_arrays(points: list[str], rows: list[tuple[Any, ...]]) -> dict[str, AggArrays]:
    """Group `(point index, ts, count, sum, ...)` rows into per-point contiguous arrays."""
    width = 1 + len(AGG_KEYS)
    flat = np.fromiter(
        itertools.chain.from_iterable(rows), dtype=np.float64, count=len(rows) * width
    )
    table = flat.reshape(len(rows), width)
    index = table[:, 0].astype(np.int64)
    ts = table[:, 1]
    in_order = (index[1:] > index[:-1]) | ((index[1:] == index[:-1]) & (ts[1:] > ts[:-1]))
    if not in_order.all():  # SQLite promises no order without ORDER BY
        order = np.lexsort((ts, index))
        table = table[order]
        index = index[order]
    # One contiguous array per key; per-point results are contiguous slices of them.
    by_key: dict[str, np.ndarray[Any, Any]] = {}
    for j, k in enumerate(AGG_KEYS, start=1):
        col = np.ascontiguousarray(table[:, j])
        by_key[k] = col.astype(np.int64) if k in AGG_INT_KEYS else col
    bounds = np.searchsorted(index, np.arange(len(points) + 1))
    out: dict[str, AggArrays] = {}
    for i, point in enumerate(points):
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        out[point] = {k: by_key[k][lo:hi] for k in AGG_KEYS}
    return out


# --- block metadata: SQL and conversions -----------------------------------------

BLOCK_COLUMNS = (
    "cache_key, site_id, point_name, period_start, covered, size_bytes, sample_count,"
    " tier, expires_at, created_at, hit_count, last_accessed, version"
)
BLOCK_INSERT_COLUMNS = (
    "cache_key, site_id, point_names, start_time, end_time, aggregation, r2_key, size_bytes,"
    " sample_count, created_at, expires_at, hit_count, last_accessed, point_name, period_start,"
    " covered, tier, version"
)
BLOCK_VALUES = "?1, ?2, ?3, ?4, ?5, 'raw', ?1, ?6, ?7, ?8, ?9, 0, ?8, ?10, ?11, ?12, ?13, 1"
BLOCK_UPDATE = (
    "site_id = excluded.site_id, point_names = excluded.point_names,"
    " start_time = excluded.start_time, end_time = excluded.end_time, aggregation = 'raw',"
    " r2_key = excluded.r2_key, size_bytes = excluded.size_bytes,"
    " sample_count = excluded.sample_count, expires_at = excluded.expires_at,"
    " last_accessed = excluded.last_accessed, point_name = excluded.point_name,"
    " period_start = excluded.period_start, covered = excluded.covered, tier = excluded.tier,"
    " version = cache_metadata.version + 1"
)
BLOCK_UPSERT = (
    f"INSERT INTO cache_metadata ({BLOCK_INSERT_COLUMNS}) VALUES ({BLOCK_VALUES})"
    f" ON CONFLICT (cache_key) DO UPDATE SET {BLOCK_UPDATE}"
)


def block_params(meta: BlockMeta, now: int) -> tuple[Any, ...]:
    """Parameters ?1..?13 of the block statements, after checking the intervals."""
    if meta.tier not in TIERS:
        raise ValueError(f"tier must be one of {list(TIERS)}, got {meta.tier!r}")
    covered = [(int(s), int(e)) for s, e in meta.covered]
    for i, (s, e) in enumerate(covered):
        if s >= e or (i and s < covered[i - 1][1]):
            raise ValueError(f"block {meta.key!r}: covered must be sorted disjoint [start, end)")
    start = covered[0][0] if covered else meta.period_start
    end = covered[-1][1] if covered else meta.period_start
    return (
        meta.key,
        meta.site,
        json.dumps([meta.point]),
        start,
        end,
        meta.size_bytes,
        meta.sample_count,
        now,
        meta.expires_at,
        meta.point,
        meta.period_start,
        json.dumps(covered, separators=(",", ":")),
        meta.tier,
    )


def block_from_row(row: tuple[Any, ...]) -> BlockMeta:
    (
        key,
        site,
        point,
        period_start,
        covered,
        size,
        samples,
        tier,
        expires,
        created,
        hits,
        last,
        ver,
    ) = row[:13]
    return BlockMeta(
        key=key,
        site=site,
        point=point,
        period_start=int(period_start),
        covered=tuple((int(s), int(e)) for s, e in json.loads(covered)),
        size_bytes=int(size or 0),
        sample_count=int(samples or 0),
        tier=tier,
        expires_at=int(expires),
        created_at=None if created is None else int(created),
        hit_count=int(hits or 0),
        last_accessed=None if last is None else int(last),
        version=int(ver),
    )


# --- point metadata: SQL and conversions -----------------------------------------

POINT_COLUMNS = (
    "point_name, display_name, equipment, equipment_id, equipment_name, point_type, unit,"
    " marker_tags, kv_tags, quality_score, ai_insights, collect_interval, last_updated"
)
POINT_UPSERT = (
    f"INSERT INTO point_metadata (site_id, {POINT_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (site_id, point_name) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in POINT_COLUMNS.split(",")[1:])
)


def point_params(site: str, p: PointRecord, now: int) -> tuple[Any, ...]:
    return (
        site,
        p.name,
        p.display_name,
        p.equipment,
        p.equipment_id,
        p.equipment_name,
        p.point_type,
        p.unit,
        json.dumps(list(p.marker_tags)),
        json.dumps(p.kv_tags),
        p.quality_score,
        None if p.ai_insights is None else json.dumps(p.ai_insights),
        p.collect_interval,
        now,
    )


def point_from_row(row: tuple[Any, ...]) -> PointRecord:
    (
        name,
        display,
        equipment,
        equipment_id,
        equipment_name,
        ptype,
        unit,
        tags,
        kv,
        quality,
        ai,
        interval,
        updated,
    ) = row
    return PointRecord(
        name=name,
        display_name=display,
        equipment=equipment,
        equipment_id=equipment_id,
        equipment_name=equipment_name,
        point_type=ptype,
        unit=unit,
        marker_tags=tuple(json.loads(tags)) if tags else (),
        kv_tags=json.loads(kv) if kv else {},
        quality_score=quality,
        ai_insights=json.loads(ai) if ai else None,
        collect_interval=interval,
        last_updated=updated,
    )
