"""The aggregate tier's blobs: the codec (`encode_agg_block` / `decode_agg_block[s]`) and
the store above them (merging writes, retention sweep, damage as a miss)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from acechart import _core
from acechart.cache.aggregates import AggregateStore
from acechart.result import AGG_KEYS
from tests.backends import open_test_db

HOUR = 3_600_000
DAY = 24 * HOUR
JAN = 1_735_689_600_000  # 2025-01-01T00:00:00Z
FEB = JAN + 31 * DAY
NOW = JAN + 400 * DAY  # everything below is archived (older than 90 days)


def samples(seed: int, start: int, days: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = start + np.arange(days * 1440, dtype=np.int64) * 60_000
    values = np.round(rng.normal(70, 3, len(ts)), 1)
    values[rng.random(len(ts)) < 0.03] = np.nan
    return ts, values


def month(seed: int = 1) -> tuple[dict[str, np.ndarray], np.ndarray]:
    ts, values = samples(seed, JAN, 31)
    return _core.aggregate(ts, values, HOUR), np.array([[JAN, FEB]], dtype=np.int64)


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for k in AGG_KEYS:
        assert got[k].dtype == want[k].dtype, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


# --------------------------------------------------------------------------- codec


def test_round_trip() -> None:
    agg, covered = month()
    data = _core.encode_agg_block("site", "p/x.points.T", "1hr", "2025-01", agg, covered)
    assert len(data) < len(agg["ts"]) * 64 / 2
    site, point, level, period, got, cov = _core.decode_agg_block(data)
    assert (site, point, level, period) == ("site", "p/x.points.T", "1hr", "2025-01")
    np.testing.assert_array_equal(cov, covered)
    assert_same(got, agg)


def test_every_damage_raises_block_decode_error() -> None:
    agg, covered = month()
    small = {k: v[:30] for k, v in agg.items()}
    data = _core.encode_agg_block("s", "p", "1hr", "2025-01", small, covered)
    for cut in range(0, len(data), 7):
        with pytest.raises(_core.BlockDecodeError, match="corrupt block"):
            _core.decode_agg_block(data[:cut])
    for i in range(len(data)):
        damaged = bytearray(data)
        damaged[i] ^= 0x41
        try:
            got = _core.decode_agg_block(bytes(damaged))
        except _core.BlockDecodeError:
            continue
        assert got[:4] == ("s", "p", "1hr", "2025-01")  # a flip the checksum proves harmless
        assert_same(got[4], small)
    with pytest.raises(_core.BlockDecodeError):
        _core.decode_agg_block(_core.encode_block("p", small["ts"], small["sum"], covered))


def test_encode_validates() -> None:
    agg, covered = month()
    with pytest.raises(ValueError, match="outside the covered"):
        _core.encode_agg_block("s", "p", "1hr", "x", agg, np.array([[JAN, JAN + 1]]))
    with pytest.raises(ValueError, match="shape"):
        _core.encode_agg_block("s", "p", "1hr", "x", agg, np.zeros((1, 3), np.int64))
    with pytest.raises(ValueError, match='missing "count"'):
        _core.encode_agg_block("s", "p", "1hr", "x", {"ts": agg["ts"]}, covered)


def test_batch_decode_groups_filters_and_reports_damage() -> None:
    jan, covered = month(1)
    ts, values = samples(2, FEB, 28)
    feb = _core.aggregate(ts, values, HOUR)
    feb_cov = [(FEB, FEB + 28 * DAY)]
    blob = {
        "a-jan": _core.encode_agg_block("s", "a", "1hr", "2025-01", jan, covered),
        "a-feb": _core.encode_agg_block("s", "a", "1hr", "2025-02", feb, np.array(feb_cov)),
        "b-jan": _core.encode_agg_block("s", "b", "1hr", "2025-01", jan, covered),
    }
    blocks = [
        (0, "2025-02", blob["a-feb"], feb_cov),
        (2, "2025-01", blob["b-jan"], [(JAN, FEB)]),
        (0, "2025-01", blob["a-jan"], [(JAN, FEB)]),
        (1, "2025-01", blob["a-jan"], []),  # a's blob stored under c's key
        (1, "2025-02", b"garbage", []),
        (2, "2025-02", blob["a-feb"], feb_cov),  # a's again
    ]
    start, end = JAN + 20 * DAY + 1, FEB + 2 * DAY
    cols, bounds, damaged = _core.decode_agg_blocks("s", "1hr", ["a", "c", "b"], blocks, start, end)
    assert [d[0] for d in damaged] == [3, 4, 5]
    assert "expected" in damaged[0][1] and "corrupt block" in damaged[1][1]

    def keep(agg: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        m = (agg["ts"] >= start) & (agg["ts"] < end)
        return {k: v[m] for k, v in agg.items()}

    want_a = {k: np.concatenate([keep(jan)[k], keep(feb)[k]]) for k in AGG_KEYS}
    na, nb = len(want_a["ts"]), len(keep(jan)["ts"])
    assert bounds.tolist() == [0, na, na, na + nb]
    assert_same({k: v[:na] for k, v in cols.items()}, want_a)
    assert_same({k: v[na:] for k, v in cols.items()}, keep(jan))
    # A row claiming more than its blob covers is damage too.
    _, _, damaged = _core.decode_agg_blocks(
        "s", "1hr", ["a"], [(0, "2025-01", blob["a-jan"], [(JAN - HOUR, FEB)])], 0, 2**62
    )
    assert [d[0] for d in damaged] == [0]
    with pytest.raises(ValueError, match="point index"):
        _core.decode_agg_blocks("s", "1hr", ["a"], [(3, "x", b"", [])], 0, 1)


# --------------------------------------------------------------------------- the tier


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AggregateStore]:
    async with await open_test_db(tmp_path / "acechart.db") as db:
        yield AggregateStore(db)


async def test_writes_merge_into_month_blobs(store: AggregateStore) -> None:
    """A write, then one extending it (crossing a month, as the engine passes all raw data
    it holds), read back as one direct computation."""
    ts, values = samples(5, JAN + 10 * DAY, 40)
    mid = JAN + 25 * DAY + 7 * HOUR + 1234  # not on a bucket edge
    cut = int(np.searchsorted(ts, mid))
    whole = (int(ts[0]), int(ts[-1]) + 60_000)
    first = {"p": (ts[:cut], values[:cut], [(whole[0], mid)])}
    second = {"p": (ts, values, [whole])}
    assert await store.write_from_raw("s", first, NOW, "1hr") > 0
    assert await store.write_from_raw("s", second, NOW, "1hr") > 0
    for level, width in (("1hr", HOUR), ("1day", DAY)):
        lo, hi = -(-whole[0] // width) * width, whole[1] // width * width
        assert await store.covering("s", ["p"], level, lo, hi, NOW) == {"p"}
        got = (await store.read("s", ["p"], level, lo, hi))["p"]
        direct = _core.aggregate(ts, values, width)
        m = (direct["ts"] >= lo) & (direct["ts"] + width <= hi)
        np.testing.assert_array_equal(got["ts"], direct["ts"][m])
        np.testing.assert_array_equal(got["count"], direct["count"][m])
        np.testing.assert_allclose(got["avg"], direct["avg"][m], rtol=1e-12)
        np.testing.assert_allclose(got["stddev"], direct["stddev"][m], rtol=1e-9)
    rows = await store.table.db.fetchall("SELECT level, period FROM aggregate_blocks")
    assert sorted(tuple(r) for r in rows) == [
        ("1day", "2025-01"), ("1day", "2025-02"), ("1hr", "2025-01"), ("1hr", "2025-02"),
    ]  # fmt: skip
    # Writing the same again stores nothing new.
    assert await store.write_from_raw("s", second, NOW, "1hr") == 0


async def test_recent_data_is_not_stored(store: AggregateStore) -> None:
    ts, values = samples(6, NOW - 5 * DAY, 3)
    raw = {"p": (ts, values, [(int(ts[0]), int(ts[-1]) + 60_000)])}
    assert await store.write_from_raw("s", raw, NOW, "1hr") == 0
    assert await store.coverage("s", ["p"], "1hr", NOW) == {"p": []}


async def test_sweep_drops_historical_keeps_archived(store: AggregateStore) -> None:
    now = JAN + 100 * DAY  # January is archived; the last 10 days historical
    ts, values = samples(7, now - 100 * DAY, 90)
    covered = [(int(ts[0]), int(ts[-1]) + 60_000)]
    await store.write_from_raw("s", {"p": (ts, values, covered)}, now, "1hr")
    boundary = now - 90 * DAY
    assert await store.sweep(now) == 0
    later = now + 8 * DAY * 1000 // 1000  # historical coverage lasts 7 days
    dropped = await store.sweep(later)
    assert dropped == (covered[0][1] - boundary) // HOUR + (covered[0][1] - boundary) // DAY
    cov = await store.coverage("s", ["p"], "1hr", later)
    assert cov == {"p": [(covered[0][0], boundary)]}
    got = (await store.read("s", ["p"], "1hr", 0, 2**62))["p"]
    assert got["ts"][-1] < boundary and len(got["ts"]) == (boundary - covered[0][0]) // HOUR


async def test_damaged_blob_is_a_miss(
    store: AggregateStore, caplog: pytest.LogCaptureFixture
) -> None:
    ts, values = samples(8, JAN, 20)
    covered = [(JAN, JAN + 20 * DAY)]
    for p in ("a", "b"):
        await store.write_from_raw("s", {p: (ts, values, covered)}, NOW, "1hr")
    db = store.table.db
    await db.execute(
        "UPDATE aggregate_blocks SET data = substr(data, 1, length(data) - 3)"
        " WHERE point_name = 'a' AND level = '1hr'"
    )
    # b's blob under the key of a's 1day blob: a foreign block.
    await db.execute(
        "UPDATE aggregate_blocks SET data = (SELECT data FROM aggregate_blocks"
        " WHERE point_name = 'b' AND level = '1day') WHERE point_name = 'a' AND level = '1day'"
    )
    assert await store.covering("s", ["a", "b"], "1hr", JAN, JAN + 20 * DAY, NOW) == {"a", "b"}
    got = await store.read("s", ["a", "b"], "1hr", JAN, JAN + 20 * DAY)
    assert list(got) == ["b"] and len(got["b"]["ts"]) == 20 * 24
    assert store.corrupt_total == 1 and "corrupt aggregate block" in caplog.text
    assert await store.covering("s", ["a", "b"], "1hr", JAN, JAN + 20 * DAY, NOW) == {"b"}
    assert list(await store.read("s", ["a"], "1day", JAN, JAN + 20 * DAY)) == []
    assert store.corrupt_total == 2
    # The next write stores a's buckets again.
    await store.write_from_raw("s", {"a": (ts, values, covered)}, NOW, "1hr")
    again = await store.read("s", ["a"], "1hr", JAN, JAN + 20 * DAY)
    np.testing.assert_array_equal(again["a"]["ts"], got["b"]["ts"])
