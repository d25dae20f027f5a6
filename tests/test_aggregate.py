"""aggregate / rollup_aggregates against pandas and numpy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from acechart import _core
from tests import reference

KEYS = ["ts", "count", "sum", "min", "max", "avg", "stddev", "m2", "first", "last"]
EXACT = ["ts", "count", "min", "max", "first", "last"]


def assert_agg_equal(
    got: dict[str, np.ndarray], want: dict[str, np.ndarray], rtol: float = 1e-9
) -> None:
    assert sorted(got) == sorted(KEYS)
    for k in EXACT:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    assert got["ts"].dtype == np.int64 and got["count"].dtype == np.int64
    scale = np.maximum(np.abs(want["sum"]), 1.0)
    for k in ["sum", "avg", "stddev", "m2"]:
        np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=0, err_msg=k, equal_nan=True)
    np.testing.assert_allclose(got["sum"], want["sum"], rtol=rtol, atol=1e-12 * scale.max())


@st.composite
def series(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 400))
    steps = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 5_000)))
    start = draw(st.integers(-(10**12), 10**12))
    ts = start + np.cumsum(steps)
    finite = st.floats(-1e6, 1e6, allow_nan=False)
    values = draw(hnp.arrays(np.float64, n, elements=finite | st.just(np.nan)))
    return ts.astype(np.int64), values


@settings(max_examples=300, deadline=None)
@given(series(), st.sampled_from([1, 7, 60, 1000, 60_000]), st.integers(-100_000, 100_000))
def test_matches_pandas(s: tuple[np.ndarray, np.ndarray], bucket: int, origin: int) -> None:
    ts, values = s
    got = _core.aggregate(ts, values, bucket, origin)
    want = reference.aggregate(ts, values, bucket, origin)
    # pandas sums sequentially; on +-1e6 values the absolute error is what matters.
    for k in EXACT:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    for k in ["sum", "avg"]:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(got["stddev"], want["stddev"], rtol=1e-6, atol=1e-6, equal_nan=True)
    assert np.all(got["count"] > 0)
    assert np.isnan(got["stddev"][got["count"] < 2]).all()


def test_large_offset_is_stable() -> None:
    rng = np.random.default_rng(7)
    values = 1e9 + rng.normal(0, 1, 100_000)
    ts = np.arange(100_000, dtype=np.int64) * 1000
    got = _core.aggregate(ts, values, 100_000_000)
    want = np.std(values, ddof=1)
    exact = np.std(values - 1e9, ddof=1)  # the shift by 1e9 is exact (Sterbenz)
    assert got["count"].tolist() == [100_000]
    assert abs(got["stddev"][0] - want) / want < 1e-9
    assert abs(got["stddev"][0] - exact) / exact < 1e-9


def test_per_bucket_large_offset() -> None:
    rng = np.random.default_rng(3)
    n = 60 * 24
    values = 1e9 + rng.normal(0, 0.01, n)
    ts = np.arange(n, dtype=np.int64) * 60_000
    got = _core.aggregate(ts, values, 3_600_000)
    want = values.reshape(24, 60).std(axis=1, ddof=1)
    np.testing.assert_allclose(got["stddev"], want, rtol=1e-9)


def test_edges() -> None:
    empty = _core.aggregate(np.array([], np.int64), np.array([], np.float64), 60)
    assert sorted(empty) == sorted(KEYS) and all(len(a) == 0 for a in empty.values())
    one = _core.aggregate(np.array([59_999], np.int64), np.array([4.0]), 60_000)
    assert one["ts"].tolist() == [0] and one["count"].tolist() == [1] and np.isnan(one["stddev"][0])
    nan = _core.aggregate(np.array([0, 1], np.int64), np.array([np.nan, np.nan]), 60)
    assert len(nan["ts"]) == 0
    edge = _core.aggregate(np.array([-1, 0, 59_999, 60_000], np.int64), np.ones(4), 60_000)
    assert edge["ts"].tolist() == [-60_000, 0, 60_000] and edge["count"].tolist() == [1, 2, 1]
    dup = _core.aggregate(np.array([5, 5, 5], np.int64), np.array([1.0, 2.0, 3.0]), 10)
    assert dup["first"].tolist() == [1.0] and dup["last"].tolist() == [3.0]
    huge = 4 * 10**18
    wide = _core.aggregate(np.array([-huge, huge], np.int64), np.array([1.0, 2.0]), 10**18)
    assert wide["ts"].tolist() == [-huge, huge]


def test_errors() -> None:
    t = np.array([2, 1], np.int64)
    with pytest.raises(ValueError, match=r"sorted ascending \(ts\[0\] = 2 > ts\[1\] = 1\)"):
        _core.aggregate(t, np.ones(2), 10)
    with pytest.raises(ValueError, match="bucket_ms must be positive"):
        _core.aggregate(np.array([1], np.int64), np.ones(1), 0)
    with pytest.raises(ValueError, match="same length"):
        _core.aggregate(np.array([1], np.int64), np.ones(2), 10)
    with pytest.raises(ValueError, match="does not fit"):
        _core.aggregate(np.array([-(2**63)], np.int64), np.ones(1), 2**63 - 1)
    good = _core.aggregate(np.array([1], np.int64), np.ones(1), 10)
    with pytest.raises(ValueError, match='aggregates: aggregate dict is missing "m2"'):
        _core.rollup_aggregates({k: v for k, v in good.items() if k != "m2"}, 100)
    with pytest.raises(TypeError, match='aggregates: aggregate column "count" must be a 1-D int64'):
        _core.rollup_aggregates({**good, "count": good["count"].astype(np.float64)}, 100)
    with pytest.raises(TypeError, match="ts"):
        _core.aggregate([1, 2], np.ones(2), 10)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="values"):
        _core.aggregate(np.array([1], np.int64), np.ones(1, np.float32), 10)
    with pytest.raises(ValueError, match="strictly increasing"):
        bad = {k: np.concatenate([v, v]) for k, v in good.items()}
        _core.rollup_aggregates(bad, 100)


@settings(max_examples=150, deadline=None)
@given(series(), st.sampled_from([2, 5, 60]))
def test_rollup_equals_direct(s: tuple[np.ndarray, np.ndarray], factor: int) -> None:
    """Rolling 1 min buckets up into coarser ones equals aggregating the samples directly."""
    ts, values = s
    direct = _core.aggregate(ts, values, 60_000 * factor)
    rolled = _core.rollup_aggregates(_core.aggregate(ts, values, 60_000), 60_000 * factor)
    for k in EXACT:
        np.testing.assert_array_equal(rolled[k], direct[k], err_msg=k)
    for k in ["sum", "avg", "stddev", "m2"]:
        np.testing.assert_allclose(
            rolled[k], direct[k], rtol=1e-9, atol=1e-6, equal_nan=True, err_msg=k
        )


def test_rollup_1min_5min_1hr_equals_direct() -> None:
    rng = np.random.default_rng(11)
    n = 3 * 24 * 60 * 2
    ts = np.sort(rng.integers(0, 3 * 86_400_000, n)).astype(np.int64)
    values = rng.normal(72, 3, n)
    values[rng.random(n) < 0.05] = np.nan
    one_min = _core.aggregate(ts, values, 60_000)
    five = _core.rollup_aggregates(one_min, 300_000)
    hour = _core.rollup_aggregates(five, 3_600_000)
    day = _core.rollup_aggregates(hour, 86_400_000)
    for width, rolled in [(300_000, five), (3_600_000, hour), (86_400_000, day)]:
        assert_agg_equal(rolled, _core.aggregate(ts, values, width))
        assert_agg_equal(rolled, reference.aggregate(ts, values, width), rtol=1e-8)


@settings(max_examples=50, deadline=None)
@given(st.lists(series(), min_size=0, max_size=6), st.sampled_from([7, 60, 1000]))
def test_aggregate_many_equals_one_by_one(
    many: list[tuple[np.ndarray, np.ndarray]], bucket: int
) -> None:
    got = _core.aggregate_many(many, bucket, 5)
    assert len(got) == len(many)
    for g, (ts, values) in zip(got, many, strict=True):
        want = _core.aggregate(ts, values, bucket, 5)
        for k in KEYS:  # bit for bit: the same kernel
            np.testing.assert_array_equal(g[k], want[k], err_msg=k)


def test_aggregate_many_errors_name_the_series() -> None:
    ts = np.arange(10, dtype=np.int64)
    v = np.ones(10)
    with pytest.raises(ValueError, match=r"series\[1\]: .*sorted"):
        _core.aggregate_many([(ts, v), (ts[::-1].copy(), v)], 3)
    with pytest.raises(ValueError, match=r"series\[0\]: .*same length"):
        _core.aggregate_many([(ts, v[:3])], 3)
    with pytest.raises(TypeError, match=r"series\[0\]: .*contiguous"):
        _core.aggregate_many([(ts[::2], v[::2])], 3)
    with pytest.raises(TypeError):
        _core.aggregate_many([(ts,)], 3)  # type: ignore[list-item]
    assert _core.aggregate_many([], 3) == []
