"""`AggregateTable`: the one repository of `aggregate_blocks`, the columnar aggregate tier.

Sealed bucket statistics are stored as one blob per (site, point, level, UTC month):
the mergeable state of every bucket (ts, count, sum, min, max, m2, first, last),
byte-shuffled and zstd-compressed by the Rust core (`encode_agg_block`), with the
site, point, level and period under its checksum. Beside the blob, the row records
the intervals the blob covers and when each expires (`covered`, JSON
`[[start_ms, end_ms, expires_at], ...]`), so coverage is known from metadata alone,
and the earliest of those expiries (`expires_at`), so the sweep finds its work
through an index.

A query's read is one indexed SELECT returning every blob it needs (all points, all
months) and one Rust call decoding them together into contiguous columns
(`decode_agg_blocks`): no per-bucket or per-row Python object. Writes come in
batches: every blob of a query goes in one transaction.

The seed's `timeseries_aggregations` table stays in the schema (the seed's contract),
but acechart no longer reads or writes it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from acechart._core import BlockDecodeError, decode_agg_block, decode_agg_blocks, encode_agg_block
from acechart.result import AGG_INT_KEYS, AGG_KEYS
from acechart.storage.records import AGG_LEVELS

if TYPE_CHECKING:
    from acechart.storage.database import Database

__all__ = [
    "AggRead",
    "AggregateTable",
    "BlockKey",
    "Interval",
    "LoadedBlock",
    "StoredInterval",
    "WriteBlock",
]

Interval = tuple[int, int]
#: `[start_ms, end_ms)` covered until `expires_at` (unix seconds).
StoredInterval = tuple[int, int, int]
#: A blob's identity within a site: (point, level, period "YYYY-MM").
BlockKey = tuple[str, str, str]
#: One point's bucket columns, `AGG_KEYS` -> array, as `_core.aggregate` returns them.
AggArrays = dict[str, npt.NDArray[np.int64] | npt.NDArray[np.float64]]

#: Blobs whose buckets add up to more than this are encoded or decoded in a worker
#: thread (the core releases the GIL), so the event loop keeps serving meanwhile.
_IN_THREAD_BUCKETS = 20_000

_COLUMNS = "site_id, point_name, level, period, covered, expires_at, buckets, updated_at, data"
_UPSERT = (
    f"INSERT INTO aggregate_blocks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (site_id, point_name, level, period) DO UPDATE SET"
    " covered = excluded.covered, expires_at = excluded.expires_at,"
    " buckets = excluded.buckets, updated_at = excluded.updated_at, data = excluded.data"
)
# CROSS JOIN keeps the point list as the outer loop (SQLite's documented way to fix a
# join order): each point is then one range search of the primary key.
_READ = (
    "SELECT p.key, a.period, a.covered, a.data"
    " FROM json_each(?1) AS p CROSS JOIN aggregate_blocks AS a"
    " ON a.site_id = ?2 AND a.point_name = p.value AND a.level = ?3"
    " AND a.period >= ?4 AND a.period <= ?5"
)
# `covered` precedes `data` in the row, so this never reads a blob's overflow pages.
_COVERAGE = (
    "SELECT a.point_name, a.level, a.period, a.covered"
    " FROM json_each(?1) AS p CROSS JOIN aggregate_blocks AS a"
    " ON a.site_id = ?2 AND a.point_name = p.value"
    " AND a.level IN (SELECT value FROM json_each(?3))"
    " AND a.period >= ?4 AND a.period <= ?5"
)
# PostgreSQL forms of the two reads above (every other statement here goes through the
# generic rewrite of dialect.py): json_each's 0-based `key` is WITH ORDINALITY's
# 1-based ordinal minus one, and the planner needs no help with the join order.
_READ_PG = (
    "SELECT p.ord - 1, a.period, a.covered, a.data"
    " FROM json_array_elements_text(CAST($1 AS json)) WITH ORDINALITY AS p(value, ord)"
    " JOIN aggregate_blocks AS a"
    " ON a.site_id = $2 AND a.point_name = p.value AND a.level = $3"
    " AND a.period >= $4 AND a.period <= $5"
)
_FIRST_PERIOD = "0000-00"
_LAST_PERIOD = "9999-99"


@dataclass(frozen=True, slots=True)
class WriteBlock:
    """The whole new content of one blob: its buckets and the intervals vouching for them."""

    point: str
    level: str
    period: str
    aggregates: Mapping[str, npt.ArrayLike]
    covered: Sequence[StoredInterval]


@dataclass(frozen=True, slots=True)
class LoadedBlock:
    """A stored blob, decoded: its buckets and its row's intervals with their expiries."""

    aggregates: AggArrays
    covered: list[StoredInterval]


@dataclass
class AggRead:
    """What `AggregateTable.read` found: per point its buckets, and the unusable blobs."""

    arrays: dict[str, AggArrays]
    damaged: list[tuple[BlockKey, str]] = field(default_factory=list)


class AggregateTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def coverage(
        self,
        site: str,
        points: Sequence[str],
        levels: Sequence[str],
        first_period: str = _FIRST_PERIOD,
        last_period: str = _LAST_PERIOD,
    ) -> dict[BlockKey, list[StoredInterval]]:
        """The intervals every stored blob of these points and levels (and periods in
        `[first_period, last_period]`) vouches for, with their expiries; metadata only,
        one query. Expired intervals are included: the caller compares with its clock."""
        for level in levels:
            _check_level(level)
        if not points or not levels:
            return {}
        rows = await self.db.fetch_tuples(
            _COVERAGE,
            (
                json.dumps(list(dict.fromkeys(points))),
                site,
                json.dumps(list(levels)),
                first_period,
                last_period,
            ),
        )
        return {(str(p), str(lv), str(per)): _intervals(cov) for p, lv, per, cov in rows}

    async def read(
        self,
        site: str,
        points: Sequence[str],
        level: str,
        start_ms: int,
        end_ms: int,
        first_period: str = _FIRST_PERIOD,
        last_period: str = _LAST_PERIOD,
    ) -> AggRead:
        """Buckets with `start_ms <= ts < end_ms` of many points: one query, one decode.

        `arrays` maps every requested point to `{key: array}` (empty arrays when it
        has none), keys and dtypes as `_core.aggregate` returns them, each array
        contiguous and sorted by `ts`. `damaged` lists the blobs that could not be
        used (and contributed nothing), with the reason: the caller decides what a
        point with a damaged blob is worth.
        """
        _check_level(level)
        wanted = list(dict.fromkeys(points))
        if not wanted:
            return AggRead({})
        rows = await self.db.fetch_tuples(
            _READ_PG if self.db.dialect == "postgresql" else _READ,
            (json.dumps(wanted), site, level, first_period, last_period),
        )
        blocks = [
            (int(i), str(period), bytes(data), [(s, e) for s, e, _ in _intervals(cov)])
            for i, period, cov, data in rows
        ]
        args = (site, level, wanted, blocks, start_ms, end_ms)
        if sum(len(b[2]) for b in blocks) > 64 * 1024:
            columns, bounds, damaged = await asyncio.to_thread(decode_agg_blocks, *args)
        else:
            columns, bounds, damaged = decode_agg_blocks(*args)
        edges = bounds.tolist()
        arrays = {
            p: {k: columns[k][edges[i] : edges[i + 1]] for k in AGG_KEYS}
            for i, p in enumerate(wanted)
        }
        return AggRead(
            arrays,
            [((wanted[blocks[j][0]], level, blocks[j][1]), why) for j, why in damaged],
        )

    async def load(
        self, site: str, keys: Iterable[BlockKey]
    ) -> tuple[dict[BlockKey, LoadedBlock], list[tuple[BlockKey, str]]]:
        """The stored blobs of `keys` that exist, decoded (to merge new buckets into),
        and the ones that could not be decoded; one query."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}, []
        rows = await self.db.fetch_tuples(
            "SELECT a.point_name, a.level, a.period, a.covered, a.data"
            " FROM json_each(?1) AS k CROSS JOIN aggregate_blocks AS a"
            " ON a.site_id = ?2 AND a.point_name = json_extract(k.value, '$[0]')"
            " AND a.level = json_extract(k.value, '$[1]')"
            " AND a.period = json_extract(k.value, '$[2]')",
            (json.dumps(wanted), site),
        )
        return await asyncio.to_thread(_decode_rows, site, rows)

    async def store(self, site: str, blocks: Sequence[WriteBlock], now_s: int) -> int:
        """Write whole blobs (replacing those of the same key) in one transaction;
        a block without intervals deletes its blob. Returns the buckets stored."""
        if not blocks:
            return 0
        for b in blocks:
            _check_level(b.level)
        size = sum(np.size(b.aggregates.get("ts", ())) for b in blocks)
        if size > _IN_THREAD_BUCKETS:
            params, gone = await asyncio.to_thread(_encode_all, site, blocks, now_s)
        else:
            params, gone = _encode_all(site, blocks, now_s)
        async with self.db.transaction() as tx:
            if params:
                await tx.executemany(_UPSERT, params)
            if gone:
                await tx.execute(*_delete_statement(site, gone))
        return sum(int(p[6]) for p in params)

    async def delete(self, site: str, keys: Iterable[BlockKey]) -> int:
        """Remove blobs by key, in one statement; returns how many existed."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return 0
        return await self.db.execute(*_delete_statement(site, wanted))

    async def due(self, now_s: int) -> list[tuple[str, BlockKey]]:
        """(site, key) of every blob holding an interval expired at `now_s`."""
        rows = await self.db.fetch_tuples(
            "SELECT site_id, point_name, level, period FROM aggregate_blocks"
            " WHERE expires_at <= ? ORDER BY site_id, point_name, level, period",
            (now_s,),
        )
        return [(str(s), (str(p), str(lv), str(per))) for s, p, lv, per in rows]


def _intervals(covered: str | bytes) -> list[StoredInterval]:
    return [(int(s), int(e), int(x)) for s, e, x in json.loads(covered)]


def _decode_rows(
    site: str, rows: list[tuple[Any, ...]]
) -> tuple[dict[BlockKey, LoadedBlock], list[tuple[BlockKey, str]]]:
    found: dict[BlockKey, LoadedBlock] = {}
    damaged: list[tuple[BlockKey, str]] = []
    for point, level, period, cov, data in rows:
        key = (str(point), str(level), str(period))
        try:
            got = decode_agg_block(bytes(data))
            if got[:4] != (site, *key):
                raise BlockDecodeError(f"holds {got[:4]}, expected {(site, *key)}")
            intervals = _intervals(cov)
        except (BlockDecodeError, ValueError, TypeError) as exc:
            damaged.append((key, str(exc)))
            continue
        found[key] = LoadedBlock(got[4], intervals)
    return found, damaged


def _encode_all(
    site: str, blocks: Sequence[WriteBlock], now_s: int
) -> tuple[list[tuple[Any, ...]], list[BlockKey]]:
    params: list[tuple[Any, ...]] = []
    gone: list[BlockKey] = []
    for b in blocks:
        if not b.covered:
            gone.append((b.point, b.level, b.period))
            continue
        columns = _columns(b.aggregates, b.point)
        covered = np.array([(s, e) for s, e, _ in b.covered], dtype=np.int64).reshape(-1, 2)
        data = encode_agg_block(site, b.point, b.level, b.period, columns, covered)
        params.append(
            (
                site,
                b.point,
                b.level,
                b.period,
                json.dumps([list(c) for c in b.covered], separators=(",", ":")),
                min(x for _, _, x in b.covered),
                len(columns["ts"]),
                now_s,
                data,
            )
        )
    return params, gone


def _columns(rows: Mapping[str, npt.ArrayLike], point: str) -> AggArrays:
    """The stored columns of `rows` as contiguous arrays of the right dtype, checked."""
    out: AggArrays = {}
    length: int | None = None
    for k in ("ts", "count", "sum", "min", "max", "m2", "first", "last"):
        if k not in rows:
            raise ValueError(f"aggregates of {point!r} lack {k!r}")
        arr = np.ascontiguousarray(rows[k], dtype=np.int64 if k in AGG_INT_KEYS else np.float64)
        if arr.ndim != 1 or (length is not None and len(arr) != length):
            raise ValueError(f"aggregates of {point!r}: {k!r} has shape {arr.shape}")
        length = len(arr)
        out[k] = arr  # type: ignore[assignment]
    return out


def _delete_statement(site: str, keys: Sequence[BlockKey]) -> tuple[str, tuple[Any, ...]]:
    return (
        "DELETE FROM aggregate_blocks WHERE site_id = ?1 AND (point_name, level, period) IN"
        " (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
        " json_extract(value, '$[2]') FROM json_each(?2))",
        (site, json.dumps([list(k) for k in keys])),
    )


def _check_level(level: str) -> None:
    if level not in AGG_LEVELS:
        raise ValueError(f"aggregation level must be one of {list(AGG_LEVELS)}, got {level!r}")
