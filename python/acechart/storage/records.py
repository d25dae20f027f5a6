"""Typed rows of the database: aggregation columns, block metadata, point metadata.

Kept apart from `database.py` so that the cache and engine layers can build
and read them without pulling in aiosqlite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from acechart.query import STORED_LEVELS

__all__ = [
    "AGG_COLUMNS",
    "AGG_LEVELS",
    "TIERS",
    "BlockMeta",
    "PointRecord",
    "Tier",
]

#: The levels `timeseries_aggregations.aggregation_level` holds.
AGG_LEVELS: tuple[str, ...] = tuple(STORED_LEVELS)

Tier = Literal["realtime", "recent", "historical", "archived"]
#: The seed's TTL classes (section 3.3), youngest first.
TIERS: tuple[Tier, ...] = ("realtime", "recent", "historical", "archived")

#: The `timeseries_aggregations` column holding each aggregate key.
AGG_COLUMNS: dict[str, str] = {
    "ts": "timestamp",
    "count": "count",
    "sum": "sum_value",
    "min": "min_value",
    "max": "max_value",
    "avg": "avg_value",
    "stddev": "stddev",
    "m2": "m2",
    "first": "first_value",
    "last": "last_value",
}


@dataclass(frozen=True, slots=True)
class BlockMeta:
    """The `cache_metadata` row of one block: one point's raw samples for one UTC period.

    `key` is the object key (`keys.block_key`), stored as both `cache_key` and
    `r2_key`. `period_start` and `covered` are unix milliseconds, `covered`
    sorted, non-overlapping `[start, end)` intervals. `expires_at`,
    `created_at` and `last_accessed` are unix seconds. The last four fields
    are maintained by the database: values passed to `upsert_block_meta` for
    them are ignored.
    """

    key: str
    site: str
    point: str
    period_start: int
    covered: tuple[tuple[int, int], ...]
    size_bytes: int
    sample_count: int
    tier: Tier
    expires_at: int
    created_at: int | None = None
    hit_count: int = 0
    last_accessed: int | None = None
    version: int = 1


@dataclass(frozen=True, slots=True)
class PointRecord:
    """One `point_metadata` row: a point of a site as the origin's catalogue describes it.

    `marker_tags` is a JSON array in the table and `kv_tags` / `ai_insights`
    JSON objects; `collect_interval` is in seconds; `last_updated` (unix
    seconds) is set by the database. `origin` is the point's item exactly as
    the origin's `/configured_points` listed it (every field, JSON in the
    table), so the ACE-shaped routes can answer with it; None for rows written
    before it was kept.
    """

    name: str
    display_name: str
    equipment: str | None = None
    equipment_id: str | None = None
    equipment_name: str | None = None
    point_type: str | None = None
    unit: str | None = None
    marker_tags: tuple[str, ...] = ()
    kv_tags: dict[str, Any] = field(default_factory=dict)
    quality_score: int | None = None
    ai_insights: dict[str, Any] | None = None
    collect_interval: int | None = None
    last_updated: int | None = None
    origin: dict[str, Any] | None = None
