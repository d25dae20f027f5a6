"""encode_block / decode_block: exact round trips, validation, and damage detection;
and the block store treating a torn block file as a miss."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from acechart import _core
from acechart.cache.aggregates import AggregateStore
from acechart.cache.blocks import BlockStore
from acechart.engine import Engine
from acechart.origin.client import OriginClient
from acechart.query import Query
from acechart.storage import LocalObjectStore
from acechart.storage.keys import block_key
from tests.backends import open_test_db
from tests.conftest import NOW_MS, SITE, TOKEN, Sim, origin_settings


@st.composite
def blocks(draw: st.DrawFn) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    ts = np.unique(
        draw(hnp.arrays(np.int64, st.integers(0, 300), elements=st.integers(-(2**62), 2**62)))
    )
    values = draw(
        hnp.arrays(np.float64, len(ts), elements=st.floats(allow_nan=True, allow_infinity=True))
    )
    edges = np.unique(
        draw(hnp.arrays(np.int64, st.integers(0, 8), elements=st.integers(-(2**62), 2**62)))
    )
    k = len(edges) // 2 * 2
    covered = edges[:k].reshape(-1, 2)
    name = draw(st.text(min_size=1, max_size=80))
    return name, ts, values, covered


@settings(max_examples=200)
@given(blocks())
def test_round_trip_is_exact(b: tuple[str, np.ndarray, np.ndarray, np.ndarray]) -> None:
    name, ts, values, covered = b
    data = _core.encode_block(name, ts, values, covered)
    got_name, got_ts, got_values, got_covered = _core.decode_block(data)
    assert got_name == name
    np.testing.assert_array_equal(got_ts, ts)
    assert (
        got_values.view(np.uint64).tolist() == values.view(np.uint64).tolist()
    )  # NaN payloads too
    np.testing.assert_array_equal(got_covered, covered.reshape(-1, 2))
    assert got_covered.shape == (len(covered), 2)


def test_minute_data_compresses_well() -> None:
    n = 44_640  # one month of one-minute samples
    ts = 1_704_067_200_000 + np.arange(n, dtype=np.int64) * 60_000
    values = np.round(70 + np.sin(np.arange(n) / 200) * 5, 1)
    data = _core.encode_block("p", ts, values, np.array([[ts[0], ts[-1] + 60_000]], np.int64))
    assert len(data) < n * 16 / 4  # at least 4x smaller than the raw columns


def test_validation_errors() -> None:
    ok_cov = np.zeros((0, 2), np.int64)
    with pytest.raises(ValueError, match="strictly increasing"):
        _core.encode_block("p", np.array([2, 1], np.int64), np.zeros(2), ok_cov)
    with pytest.raises(ValueError, match="same length"):
        _core.encode_block("p", np.array([1], np.int64), np.zeros(2), ok_cov)
    with pytest.raises(ValueError, match="shape"):
        _core.encode_block("p", np.array([1], np.int64), np.zeros(1), np.zeros((1, 3), np.int64))
    with pytest.raises(ValueError, match="sorted and disjoint"):
        _core.encode_block(
            "p", np.array([1], np.int64), np.zeros(1), np.array([[0, 5], [3, 9]], np.int64)
        )
    with pytest.raises(ValueError, match="empty or reversed"):
        _core.encode_block("p", np.array([1], np.int64), np.zeros(1), np.array([[5, 5]], np.int64))


def test_not_a_block() -> None:
    for junk in [b"", b"ACB", b"XYZ\x01" + bytes(20), b"ACB\x09" + bytes(20)]:
        with pytest.raises(_core.BlockDecodeError, match="corrupt block"):
            _core.decode_block(junk)


def test_decode_errors_are_typed() -> None:
    """Damage is BlockDecodeError (a ValueError); a wrong argument type is a TypeError."""
    assert issubclass(_core.BlockDecodeError, ValueError)
    assert _core.BlockDecodeError.__module__ == "acechart._core"
    good = _core.encode_block(
        "p", np.arange(3, dtype=np.int64), np.ones(3), np.array([[0, 10]], np.int64)
    )
    wrong_count = bytearray(good)
    wrong_count[4] = 9  # the header claims 9 samples, the payload holds 3
    for damaged, needle in [
        (good[:12], "frame header"),
        (good[:-3], "payload"),
        (bytes(wrong_count), "column bytes"),
    ]:
        with pytest.raises(_core.BlockDecodeError, match=needle):
            _core.decode_block(damaged)
    for not_bytes in [bytearray(good), memoryview(good), "ACB", None]:
        with pytest.raises(TypeError, match="data"):
            _core.decode_block(not_bytes)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ts"):
        _core.encode_block("p", [1, 2], np.ones(2), np.zeros((0, 2), np.int64))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="values"):
        _core.encode_block(
            "p", np.arange(2, dtype=np.int64), np.ones(2, np.float32), np.zeros((0, 2), np.int64)
        )


@settings(max_examples=300)
@given(st.data())
def test_damage_is_detected_or_harmless(data: st.DataObject) -> None:
    ts = np.arange(0, 200 * 60_000, 60_000, dtype=np.int64)
    values = np.round(np.random.default_rng(0).normal(70, 2, len(ts)), 1)
    good = _core.encode_block(
        "ses/site/VAV-1.points.DaTemp", ts, values, np.array([[0, 12_000_000]], np.int64)
    )
    raw = bytearray(good)
    op = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if op == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    elif op == "truncate":
        del raw[data.draw(st.integers(0, len(raw) - 1)) :]
    else:
        raw += data.draw(st.binary(min_size=1, max_size=10))
    try:
        name, got_ts, got_values, covered = _core.decode_block(bytes(raw))
    except _core.BlockDecodeError as exc:
        assert "corrupt block" in str(exc)
        return
    assert name == "ses/site/VAV-1.points.DaTemp"
    np.testing.assert_array_equal(got_ts, ts)
    np.testing.assert_array_equal(got_values, values)
    assert covered.tolist() == [[0, 12_000_000]]


# ---------------------------------------------------------------- torn files in the block store


@pytest.mark.parametrize("damage", ["truncated-file", "torn-footer", "torn-block"])
async def test_torn_local_block_file_is_a_refetched_miss(
    sim: Sim,
    local_store: LocalObjectStore,
    tmp_path: Path,
    damage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A block file torn on disk is a cache miss: counted, deleted, refetched, never an error.

    `truncated-file` and `torn-footer` break the local store's own footer (the store
    raises CorruptObject); `torn-block` keeps a valid footer over truncated block bytes
    (decode_block raises BlockDecodeError).
    """
    db = await open_test_db(tmp_path / "acechart.db")
    client = OriginClient(origin_settings(sim.url, origin_window_s=7 * 86_400))
    blocks = BlockStore(local_store, db, horizon_ms=2 * 3_600_000, budget_bytes=1 << 30)
    engine = Engine(blocks, AggregateStore(db), client, clock=lambda: NOW_MS)
    try:
        point = sim.site.names[0]
        start = NOW_MS - 40 * 86_400_000
        end = start + 86_400_000
        query = Query(SITE, (point,), start, end)
        first = await engine.query(query, token=TOKEN)
        want = sim.data.expected(SITE, point, start, end - 1)
        np.testing.assert_array_equal(first.series[0].ts, want.t_ms)

        month = datetime.fromtimestamp(start / 1000, UTC).strftime("%Y-%m")
        key = block_key(SITE, point, month)
        path = local_store.root.joinpath(*key.split("/"))
        raw = path.read_bytes()
        if damage == "truncated-file":
            path.write_bytes(raw[: len(raw) // 2])
        elif damage == "torn-footer":
            path.write_bytes(raw[:-3])
        else:
            good = await local_store.get(key)
            await local_store.put(key, good[: len(good) - 7], None, None)

        sim.log.clear()
        again = await engine.query(query, token=TOKEN)
        assert again.provenance.corrupt_blocks == 1
        assert blocks.corrupt_total == 1
        reason = "corrupt block: " if damage == "torn-block" else "corrupt object"
        assert reason in caplog.text
        assert sim.log.matching("/timeseries", status=200), "not refetched"
        np.testing.assert_array_equal(again.series[0].ts, want.t_ms)
        np.testing.assert_array_equal(again.series[0].values, want.value)

        sim.log.clear()
        healed = await engine.query(query, token=TOKEN)
        assert healed.provenance.cache_status == "HIT"
        assert not sim.log.matching("/timeseries")
        np.testing.assert_array_equal(healed.series[0].values, want.value)
    finally:
        await client.close()
        await db.close()
