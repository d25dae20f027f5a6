"""Database: migrations, connection settings, and every typed operation, on a real file."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from acechart import _core
from acechart.result import AGG_KEYS
from acechart.storage import BlockMeta, Database, DatabaseError, PointRecord
from acechart.storage.aggregates import WriteBlock
from acechart.storage.migrations import MIGRATIONS, Migration
from tests.backends import Backend, open_test_db

#: Every table and column of the seed schema (seed-design.md section 2.2).
SEED_COLUMNS = {
    "timeseries_aggregations": [
        "id", "site_id", "point_name", "aggregation_level", "timestamp", "avg_value",
        "min_value", "max_value", "sum_value", "count", "stddev", "created_at",
    ],
    "chart_configs": [
        "id", "user_id", "site_id", "chart_type", "title", "point_names", "config_json",
        "thumbnail_url", "is_public", "view_count", "created_at", "updated_at",
    ],
    "cache_metadata": [
        "cache_key", "site_id", "point_names", "start_time", "end_time", "aggregation",
        "r2_key", "size_bytes", "sample_count", "created_at", "expires_at", "hit_count",
        "last_accessed",
    ],
    "queue_jobs": [
        "job_id", "user_id", "site_id", "point_names", "start_time", "end_time", "job_type",
        "status", "progress", "result_key", "error_message", "created_at", "started_at",
        "completed_at", "estimated_duration",
    ],
    "point_metadata": [
        "site_id", "point_name", "display_name", "equipment", "equipment_id",
        "equipment_name", "point_type", "unit", "marker_tags", "quality_score",
        "ai_insights", "last_updated",
    ],
}  # fmt: skip
#: Columns migration 2 adds.
ADDED_COLUMNS = {
    "timeseries_aggregations": ["m2", "first_value", "last_value"],
    "cache_metadata": ["point_name", "period_start", "covered", "tier", "version"],
    "queue_jobs": [
        "attempts", "token_hmac", "request_json", "result_format", "result_size",
        "updated_at", "cancel_requested",
        # migration 4 (the job runner)
        "priority", "not_before_ms", "dedup_key", "token_sealed", "error_code", "retryable",
        "retry_after_s", "estimated_remaining", "expires_at",
    ],
    "point_metadata": ["kv_tags", "collect_interval", "origin_item"],  # migration 6
    "chart_configs": ["query_json"],  # migration 8
}  # fmt: skip
#: The seed's indexes, less idx_agg_lookup and idx_agg_time (dropped by migration 2).
SEED_INDEXES = {
    "idx_chart_user", "idx_chart_site", "idx_chart_popular",
    "idx_cache_expiry", "idx_cache_site", "idx_cache_popular", "idx_job_user",
    "idx_job_status", "idx_point_equipment", "idx_point_type", "idx_point_quality",
}  # fmt: skip

DAY_MS = 86_400_000
T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with await open_test_db(tmp_path / "acechart.db") as database:
        yield database


def sync_connect(path: Path) -> sqlite3.Connection:
    """A second, plain connection to inspect the file behind the Database's back."""
    return sqlite3.connect(path)


# --- opening, settings, migrations ------------------------------------------------


async def test_open_applies_every_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "a.db"  # parent directories are created
    async with await open_test_db(path) as db:
        assert await db.schema_version() == MIGRATIONS[-1].version == len(MIGRATIONS)
        first = [
            tuple(r) for r in await db.fetchall("SELECT * FROM schema_version ORDER BY version")
        ]
    assert [r[0] for r in first] == [m.version for m in MIGRATIONS]
    assert [r[2] for r in first] == [m.checksum for m in MIGRATIONS]
    for _ in range(2):  # reopening changes nothing
        async with await open_test_db(path) as db:
            again = [
                tuple(r) for r in await db.fetchall("SELECT * FROM schema_version ORDER BY version")
            ]
            assert again == first


async def test_connection_settings(db: Database, tmp_path: Path, backend: Backend) -> None:
    if backend.shared:
        pytest.skip("SQLite's connection PRAGMAs; PostgreSQL has none of them")

    async def pragma(name: str) -> object:
        row = await db.fetchone(f"PRAGMA {name}")
        assert row is not None
        return row[0]

    assert await pragma("journal_mode") == "wal"
    assert await pragma("synchronous") == 1  # NORMAL
    assert await pragma("foreign_keys") == 1
    assert await pragma("busy_timeout") == 5000
    with sync_connect(tmp_path / "acechart.db") as other:  # WAL is a property of the file
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def table_columns(db: Database, table: str) -> list[str]:
    if db.dialect == "postgresql":
        rows = await db.fetchall(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
            " ORDER BY ordinal_position",
            (table,),
        )
        return [r[0] for r in rows]
    return [r["name"] for r in await db.fetchall(f"PRAGMA table_info({table})")]


async def index_names(db: Database) -> set[str]:
    if db.dialect == "postgresql":
        return {r[0] for r in await db.fetchall("SELECT indexname FROM pg_indexes")}
    return {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'index'")}


async def table_exists(db: Database, table: str) -> bool:
    if db.dialect == "postgresql":
        row = await db.fetchone("SELECT to_regclass(?) IS NOT NULL", (table,))
        return row is not None and bool(row[0])
    row = await db.fetchone("SELECT name FROM sqlite_master WHERE name = ?", (table,))
    return row is not None


async def test_schema_has_every_seed_table_column_and_index(db: Database) -> None:
    for table, seed_columns in SEED_COLUMNS.items():
        columns = await table_columns(db, table)
        assert columns[: len(seed_columns)] == seed_columns, table
        assert columns[len(seed_columns) :] == ADDED_COLUMNS.get(table, []), table
    indexes = await index_names(db)
    assert indexes >= SEED_INDEXES | {"idx_cache_lru", "idx_cache_block"}
    assert "idx_agg_lookup" not in indexes and "idx_agg_time" not in indexes
    assert await table_columns(db, "aggregate_blocks") == [
        "site_id", "point_name", "level", "period", "covered", "expires_at", "buckets",
        "updated_at", "data",
    ]  # fmt: skip
    # migration 5: coverage lives in the blob rows
    assert not await table_exists(db, "aggregate_coverage")
    if db.dialect == "sqlite":
        for table in ("timeseries_aggregations", "point_metadata"):
            sql = await db.fetchone("SELECT sql FROM sqlite_master WHERE name = ?", (table,))
            assert sql is not None and "WITHOUT ROWID" in sql[0]


async def test_job_status_and_block_tier_are_checked(db: Database) -> None:
    insert = (
        "INSERT INTO queue_jobs (job_id, user_id, site_id, point_names, start_time, end_time,"
        " job_type, status) VALUES (?, 'u', 's', '[]', 0, 1, 'export', ?)"
    )
    for i, status in enumerate(["pending", "processing", "completed", "failed", "cancelled"]):
        await db.execute(insert, (f"j{i}", status))
    row = await db.fetchone("SELECT attempts, cancel_requested, updated_at FROM queue_jobs")
    assert row is not None and row[0] == 0 and row[1] == 0 and row[2] > 0
    with pytest.raises(DatabaseError, match="CHECK"):
        await db.execute(insert, ("bad", "exploded"))
    with pytest.raises(ValueError):
        await db.upsert_block_meta([dataclasses.replace(block("k"), tier="forever")])  # type: ignore[arg-type]


async def test_edited_released_migration_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.db"
    await (await open_test_db(path)).close()
    edited = Migration(2, MIGRATIONS[1].name, (*MIGRATIONS[1].statements, "SELECT 1"))
    changed = (MIGRATIONS[0], edited, *MIGRATIONS[2:])
    monkeypatch.setattr("acechart.storage.database.MIGRATIONS", changed)
    with pytest.raises(DatabaseError, match="must never be edited"):
        await open_test_db(path)


async def test_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    async with await open_test_db(path) as db:
        await db.execute(
            "INSERT INTO schema_version (version, name, checksum) VALUES (99, 'future', 'x')"
        )
    with pytest.raises(DatabaseError, match="newer"):
        await open_test_db(path)


async def test_failed_migration_rolls_back_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.db"
    await (await open_test_db(path)).close()
    broken = Migration(len(MIGRATIONS) + 1, "broken", ("CREATE TABLE half_done (x)", "NOT SQL"))
    monkeypatch.setattr("acechart.storage.database.MIGRATIONS", (*MIGRATIONS, broken))
    with pytest.raises(DatabaseError, match="syntax error"):
        await open_test_db(path)
    monkeypatch.undo()
    async with await open_test_db(path) as db:
        assert await db.schema_version() == len(MIGRATIONS)
        assert not await table_exists(db, "half_done")


# --- transactions and the escape hatch --------------------------------------------


async def test_transaction_commits_or_rolls_back(db: Database) -> None:
    await db.execute("CREATE TABLE t (x INTEGER UNIQUE)")
    async with db.transaction() as tx:
        assert await tx.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)]) == 2
    with pytest.raises(RuntimeError, match="abort"):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (3)")
            raise RuntimeError("abort")
    with pytest.raises(DatabaseError, match="UNIQUE"):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (4)")
            await tx.execute("INSERT INTO t VALUES (1)")
    assert [r[0] for r in await db.fetchall("SELECT x FROM t ORDER BY x")] == [1, 2]
    row = await db.fetchone("SELECT x AS named FROM t WHERE x = ?", (2,))
    assert row is not None and row["named"] == 2
    assert await db.fetchone("SELECT x FROM t WHERE x = 99") is None


async def test_calling_the_database_inside_its_transaction_fails_fast(db: Database) -> None:
    async with db.transaction():
        with pytest.raises(RuntimeError, match="transaction handle"):
            await db.fetchall("SELECT 1")


async def test_concurrent_transactions_do_not_interleave(db: Database) -> None:
    await db.execute("CREATE TABLE t (writer INTEGER, step INTEGER)")

    async def writer(i: int) -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (?, 0)", (i,))
            await asyncio.sleep(0)
            if i % 3 == 0:
                raise ValueError("rolled back")
            await tx.execute("INSERT INTO t VALUES (?, 1)", (i,))

    results = await asyncio.gather(*(writer(i) for i in range(12)), return_exceptions=True)
    assert sum(isinstance(r, ValueError) for r in results) == 4
    rows = await db.fetchall("SELECT writer, COUNT(*) FROM t GROUP BY writer")
    assert {r[0]: r[1] for r in rows} == {i: 2 for i in range(12) if i % 3}


async def test_cancelled_transaction_leaves_the_database_usable(db: Database) -> None:
    await db.execute("CREATE TABLE t (x INTEGER)")
    started = asyncio.Event()

    async def slow() -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (1)")
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(slow())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await db.execute("INSERT INTO t VALUES (2)")
    assert [r[0] for r in await db.fetchall("SELECT x FROM t")] == [2]


async def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    db = await open_test_db(tmp_path / "a.db")
    await db.close()
    await db.close()
    with pytest.raises(DatabaseError, match="closed"):
        await db.fetchall("SELECT 1")


# --- aggregates -----------------------------------------------------------------------


def make_aggregates(
    seed: int, n_samples: int = 5_000, bucket_ms: int = 3_600_000
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(T0, T0 + 30 * DAY_MS, n_samples)).astype(np.int64)
    values = rng.normal(20, 5, n_samples)
    values[rng.random(n_samples) < 0.05] = np.nan
    return _core.aggregate(ts, values, bucket_ms)


def assert_agg_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(AGG_KEYS)
    for key in AGG_KEYS:
        assert got[key].dtype == want[key].dtype, key
        assert got[key].flags.c_contiguous, key
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)  # NaN == NaN here


def select(agg: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[mask] for k, v in agg.items()}


FAR = 2**62
JAN = (T0, T0 + 31 * DAY_MS, FAR)  # January 2025, kept for good


def month_block(point: str, agg: dict[str, np.ndarray], level: str = "1hr") -> WriteBlock:
    return WriteBlock(point, level, "2025-01", agg, [JAN])


async def test_read_aggregations_equals_what_was_written(db: Database) -> None:
    points = [f"ses/site/ahu{i}/very/long/name.points.Temp{i}" for i in range(6)]
    written = {p: make_aggregates(i) for i, p in enumerate(points)}
    stored = await db.aggregates.store("site", [month_block(p, a) for p, a in written.items()], 1)
    assert stored == sum(len(a["ts"]) for a in written.values())
    assert any(np.isnan(a["min"]).any() or np.isnan(a["stddev"]).any() for a in written.values())

    asked = [points[4], points[0], "never/written", points[2], points[0]]
    got = await db.aggregates.read("site", asked, "1hr", T0, T0 + 31 * DAY_MS)
    assert not got.damaged
    assert list(got.arrays) == [points[4], points[0], "never/written", points[2]]
    for p in (points[4], points[0], points[2]):
        assert_agg_equal(got.arrays[p], written[p])
    assert all(len(v) == 0 for v in got.arrays["never/written"].values())
    assert got.arrays["never/written"]["ts"].dtype == np.int64

    start, end = T0 + 3 * DAY_MS + 1, T0 + 9 * DAY_MS  # [start, end): start is mid-bucket
    sub = await db.aggregates.read("site", points[:2], "1hr", start, end)
    for p in points[:2]:
        ts = written[p]["ts"]
        assert_agg_equal(sub.arrays[p], select(written[p], (ts >= start) & (ts < end)))
    assert (await db.aggregates.read("site", [], "1hr", 0, 1)).arrays == {}
    other = await db.aggregates.read("other-site", points[:1], "1hr", T0, T0 + 31 * DAY_MS)
    assert len(other.arrays[points[0]]["ts"]) == 0
    other_level = await db.aggregates.read("site", points[:1], "1day", T0, T0 + 31 * DAY_MS)
    assert len(other_level.arrays[points[0]]["ts"]) == 0
    cov = await db.aggregates.coverage("site", points[:2], ["1hr", "1day"])
    assert cov == {(p, "1hr", "2025-01"): [JAN] for p in points[:2]}


async def test_read_aggregations_is_one_query(db: Database) -> None:
    points = [f"p{i}" for i in range(20)]
    await db.aggregates.store(
        "s",
        [month_block(p, make_aggregates(i, 500, 300_000), "5min") for i, p in enumerate(points)],
        1,
    )
    statements: list[str] = []
    await db.set_trace(statements.append)
    got = await db.aggregates.read("s", points, "5min", T0, T0 + 31 * DAY_MS)
    await db.set_trace(None)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert sum(len(a["ts"]) for a in got.arrays.values()) > 20 * 400


async def test_store_replaces_a_blob_whole(db: Database) -> None:
    first = make_aggregates(1)
    await db.aggregates.store("s", [month_block("p", first)], 1)
    second = select(make_aggregates(2), np.arange(len(make_aggregates(2)["ts"])) % 2 == 0)
    await db.aggregates.store("s", [month_block("p", second)], 2)
    row = await db.fetchone("SELECT COUNT(*), MAX(buckets), MAX(updated_at) FROM aggregate_blocks")
    assert row is not None and tuple(row) == (1, len(second["ts"]), 2)
    got = (await db.aggregates.read("s", ["p"], "1hr", 0, 2**62)).arrays["p"]
    assert_agg_equal(got, second)
    # A block without intervals deletes its blob.
    await db.aggregates.store("s", [WriteBlock("p", "1hr", "2025-01", second, [])], 3)
    row = await db.fetchone("SELECT COUNT(*) FROM aggregate_blocks")
    assert row is not None and row[0] == 0


async def test_store_validates(db: Database) -> None:
    agg = make_aggregates(2, 100)
    with pytest.raises(ValueError, match="level"):
        await db.aggregates.store("s", [month_block("p", agg, "2hr")], 1)
    with pytest.raises(ValueError, match="lack"):
        await db.aggregates.store(
            "s", [month_block("p", {k: v for k, v in agg.items() if k != "m2"})], 1
        )
    with pytest.raises(ValueError, match="shape"):
        await db.aggregates.store("s", [month_block("p", {**agg, "sum": agg["sum"][:-1]})], 1)
    outside = WriteBlock("p", "1hr", "2025-01", agg, [(T0, T0 + DAY_MS, FAR)])
    with pytest.raises(ValueError, match="outside the covered intervals"):
        await db.aggregates.store("s", [outside], 1)
    row = await db.fetchone("SELECT COUNT(*) FROM aggregate_blocks")
    assert row is not None and row[0] == 0


async def test_due_and_delete(db: Database) -> None:
    agg = make_aggregates(3)
    soon = WriteBlock("a", "1hr", "2025-01", agg, [(T0, T0 + 31 * DAY_MS, 500)])
    await db.aggregates.store("s", [soon, month_block("b", agg)], 1)
    assert await db.aggregates.due(499) == []
    assert await db.aggregates.due(500) == [("s", ("a", "1hr", "2025-01"))]
    assert await db.aggregates.delete("s", [("a", "1hr", "2025-01"), ("x", "1hr", "2025-01")]) == 1
    got = await db.aggregates.read("s", ["a", "b"], "1hr", 0, 2**62)
    assert len(got.arrays["a"]["ts"]) == 0 and len(got.arrays["b"]["ts"]) == len(agg["ts"])


# --- block metadata -------------------------------------------------------------------


def block(key: str, *, size: int = 100, expires_at: int = 2_000_000_000, **kw: object) -> BlockMeta:
    values: dict[str, object] = {
        "key": key,
        "site": "s",
        "point": f"point/{key}",
        "period_start": T0,
        "covered": ((T0, T0 + DAY_MS), (T0 + 2 * DAY_MS, T0 + 3 * DAY_MS)),
        "size_bytes": size,
        "sample_count": 10,
        "tier": "historical",
        "expires_at": expires_at,
    }
    values.update(kw)
    return BlockMeta(**values)  # type: ignore[arg-type]


async def test_block_meta_round_trip_and_rewrite(db: Database) -> None:
    assert await db.upsert_block_meta([block("k1"), block("k2", size=5)], now=1000) == 2
    got = await db.get_block_meta(["k2", "k1", "missing", "k1"])
    assert sorted(got) == ["k1", "k2"]
    k1 = got["k1"]
    assert k1 == block("k1", created_at=k1.created_at, last_accessed=1000, hit_count=0, version=1)
    row = await db.fetchone(
        "SELECT point_names, start_time, end_time, aggregation, r2_key"
        " FROM cache_metadata WHERE cache_key = 'k1'"
    )
    assert row is not None
    assert tuple(row) == ('["point/k1"]', T0, T0 + 3 * DAY_MS, "raw", "k1")

    await db.touch_blocks(["k1", "k1", "missing"], now=2000)
    await db.upsert_block_meta([block("k1", size=300, covered=((T0, T0 + 5 * DAY_MS),))], now=3000)
    k1 = (await db.get_block_meta(["k1"]))["k1"]
    assert (k1.size_bytes, k1.covered, k1.version) == (300, ((T0, T0 + 5 * DAY_MS),), 2)
    assert (k1.hit_count, k1.last_accessed) == (1, 3000)  # hits kept across rewrites
    assert await db.get_block_meta([]) == {}


async def test_block_meta_rejects_bad_intervals(db: Database) -> None:
    for covered in [((5, 5),), ((10, 20), (15, 30)), ((10, 20), (0, 5))]:
        with pytest.raises(ValueError, match="covered"):
            await db.upsert_block_meta([block("k", covered=covered)])


async def test_touch_counts_hits(db: Database) -> None:
    await db.upsert_block_meta([block("a"), block("b")], now=10)
    assert await db.touch_blocks(["a", "b"], now=20) == 2
    assert await db.touch_blocks(["a"], now=30) == 1
    got = await db.get_block_meta(["a", "b"])
    assert (got["a"].hit_count, got["a"].last_accessed) == (2, 30)
    assert (got["b"].hit_count, got["b"].last_accessed) == (1, 20)
    assert await db.touch_blocks([]) == 0


async def test_expired_blocks(db: Database) -> None:
    await db.upsert_block_meta(
        [
            block("late", expires_at=300),
            block("early", expires_at=100),
            block("live", expires_at=900),
        ]
    )
    assert [b.key for b in await db.expired_blocks(300)] == ["early", "late"]
    assert [b.key for b in await db.expired_blocks(300, limit=1)] == ["early"]
    assert await db.expired_blocks(99) == []
    assert await db.delete_block_meta(["early", "late", "missing"]) == 2
    assert [b.key for b in await db.expired_blocks(10_000)] == ["live"]


async def test_lru_blocks_over_budget(db: Database) -> None:
    # Accessed at t = 10 (oldest) .. 50 (newest); 100 bytes each, 500 in all.
    for i, key in enumerate(["a", "b", "c", "d", "e"]):
        await db.upsert_block_meta([block(key, size=100)], now=10 * (i + 1))
    await db.touch_blocks(["a"], now=60)  # a becomes the most recent
    assert await db.total_block_bytes() == 500
    assert await db.lru_blocks_over_budget(10_000) == []
    assert [b.key for b in await db.lru_blocks_over_budget(500)] == []
    assert [b.key for b in await db.lru_blocks_over_budget(350)] == ["b", "c"]
    assert [b.key for b in await db.lru_blocks_over_budget(100)] == ["b", "c", "d", "e"]
    assert [b.key for b in await db.lru_blocks_over_budget(0)] == ["b", "c", "d", "e", "a"]
    await db.delete_block_meta(["b", "c"])
    assert await db.total_block_bytes() == 300


async def test_block_queries_ignore_non_block_rows(db: Database) -> None:
    await db.execute(
        "INSERT INTO cache_metadata (cache_key, site_id, point_names, start_time, end_time,"
        " aggregation, r2_key, size_bytes, expires_at)"
        " VALUES ('answer', 's', '[]', 0, 1, '1hr', 'x', 999, 0)"
    )
    assert await db.total_block_bytes() == 0
    assert await db.expired_blocks(10) == []
    assert await db.lru_blocks_over_budget(0) == []


# --- point metadata -------------------------------------------------------------------


def point(name: str, **kw: object) -> PointRecord:
    return PointRecord(name=name, display_name=name.rsplit("/", 1)[-1], **kw)  # type: ignore[arg-type]


POINTS = [
    point(
        "s/ahu1/SaTemp",
        equipment="AHU-1",
        marker_tags=("temp", "sensor"),
        kv_tags={"unit": "degF"},
        unit="degF",
        collect_interval=60,
    ),
    point("s/ahu1/Fan_Speed", equipment="AHU-1", marker_tags=("fan",), point_type="analog"),
    point(
        "s/vav7/DaTemp",
        equipment="VAV-7",
        marker_tags=("temp",),
        ai_insights={"anomaly": False},
        quality_score=90,
    ),
    point("s/vav7/Damper%", equipment="VAV-7"),
]


async def test_points_round_trip_and_filters(db: Database) -> None:
    assert await db.upsert_points("s", POINTS, now=500) == 4
    await db.upsert_points("other", [point("s/ahu1/SaTemp")], now=600)
    got = await db.points("s")
    assert [p.name for p in got] == sorted(p.name for p in POINTS)
    by_name = {p.name: p for p in got}
    for p in POINTS:
        assert by_name[p.name] == dataclasses.replace(p, last_updated=500)

    async def names(**filters: object) -> list[str]:
        return [p.name for p in await db.points("s", **filters)]  # type: ignore[arg-type]

    assert await names(q="temp") == ["s/ahu1/SaTemp", "s/vav7/DaTemp"]  # case-insensitive
    assert await names(q="TEMP", equipment="VAV-7") == ["s/vav7/DaTemp"]
    assert await names(q="_") == ["s/ahu1/Fan_Speed"]  # LIKE wildcards are literal
    assert await names(q="%") == ["s/vav7/Damper%"]
    assert await names(tag="temp") == ["s/ahu1/SaTemp", "s/vav7/DaTemp"]
    assert await names(tag="fan", equipment="AHU-1") == ["s/ahu1/Fan_Speed"]
    assert await names(tag="nope") == []
    assert await names(limit=2, offset=1) == ["s/ahu1/SaTemp", "s/vav7/DaTemp"]
    assert await db.points_updated_at("s") == 500
    assert await db.points_updated_at("other") == 600
    assert await db.points_updated_at("unknown") is None


async def test_upsert_points_updates_and_replaces(db: Database) -> None:
    await db.upsert_points("s", POINTS, now=1)
    renamed = dataclasses.replace(POINTS[0], display_name="Supply Air Temp", marker_tags=())
    await db.upsert_points("s", [renamed], now=2)
    got = {p.name: p for p in await db.points("s")}
    assert len(got) == 4 and got[renamed.name] == dataclasses.replace(renamed, last_updated=2)
    await db.upsert_points("s", [renamed, POINTS[2]], replace=True, now=3)
    assert [p.name for p in await db.points("s")] == [POINTS[0].name, POINTS[2].name]
    await db.upsert_points("s", [], replace=True)
    assert await db.points("s") == []
