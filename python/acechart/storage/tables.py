"""SQL statements of the typed tables and the conversions between rows and records.

Kept beside `database.py` so that module reads as the list of operations; the
statements here are built once at import from the column lists in `records.py`.
"""

from __future__ import annotations

import json
from typing import Any

from acechart.storage.records import TIERS, BlockMeta, PointRecord

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


class MalformedRow(ValueError):
    """A `cache_metadata` row that does not describe a block (garbage `covered` JSON, a
    NULL where a number belongs, an unknown tier): the reader treats it as a miss and
    drops it, since the row is a cache of what the object store and origin hold."""


def block_from_row(row: tuple[Any, ...]) -> BlockMeta:
    """The block a row describes; `MalformedRow` when it describes none."""
    try:
        meta = _block_from_row(row)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise MalformedRow(f"{type(exc).__name__}: {exc}") from exc
    if meta.tier not in TIERS or not meta.key or not meta.point or not meta.site:
        raise MalformedRow("no tier, key, site or point")
    for i, (s, e) in enumerate(meta.covered):
        if s >= e or (i and s < meta.covered[i - 1][1]):
            raise MalformedRow("covered is not sorted disjoint [start, end) intervals")
    return meta


def _block_from_row(row: tuple[Any, ...]) -> BlockMeta:
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
        period_start=_int(period_start),
        covered=tuple((_int(s), _int(e)) for s, e in json.loads(covered)),
        size_bytes=_int(size),
        sample_count=_int(samples),
        tier=tier,
        expires_at=_int(expires),
        created_at=None if created is None else int(created),
        hit_count=int(hits or 0),
        last_accessed=None if last is None else int(last),
        version=int(ver),
    )


def _int(value: Any) -> int:
    """An integer column's value: an int (not a bool, a float or NULL)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


# --- point metadata: SQL and conversions -----------------------------------------

POINT_COLUMNS = (
    "point_name, display_name, equipment, equipment_id, equipment_name, point_type, unit,"
    " marker_tags, kv_tags, quality_score, ai_insights, collect_interval, last_updated,"
    " origin_item"
)
POINT_UPSERT = (
    f"INSERT INTO point_metadata (site_id, {POINT_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
        None if p.origin is None else json.dumps(p.origin, separators=(",", ":")),
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
        origin,
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
        origin=json.loads(origin) if origin else None,
    )
