"""`meter_delta` and `held_values` (delta, twa, on_time) against pandas/numpy references.

The references compute the same definitions another way: consumption as pandas'
`diff()` of the readings, resets replaced by the new reading, summed per bucket
with `groupby`; time-weighted values by clipping every held interval (sample to
next sample, the last to `until`) against every bucket.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from acechart import _core
from tests.reference import delta_reference, held_reference


@st.composite
def meter_series(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 200))
    steps = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 900)))
    ts = (-500 + np.cumsum(steps)).astype(np.int64)
    increments = draw(hnp.arrays(np.float64, n, elements=st.floats(0, 50, allow_nan=False)))
    values = np.cumsum(increments) + 1000
    resets = draw(hnp.arrays(np.bool_, n))
    for i in np.flatnonzero(resets):
        values[i:] -= values[i] - increments[i]  # the meter restarts near zero
    holes = draw(hnp.arrays(np.bool_, n))
    values[holes & (draw(st.integers(0, 3)) == 0)] = np.nan
    widths = draw(st.lists(st.integers(1, 3000), min_size=1, max_size=30))
    edges = np.cumsum([draw(st.integers(-600, 600)), *widths]).astype(np.int64)
    return ts, values, edges


@settings(max_examples=300, deadline=None)
@given(meter_series(), st.sampled_from([0.0, 5.0, 1e9]))
def test_delta_matches_the_reference(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], threshold: float
) -> None:
    ts, values, edges = case
    got_t, got_v = _core.meter_delta(ts, values, edges, threshold)
    want_t, want_v = delta_reference(ts, values, edges, threshold)
    np.testing.assert_array_equal(got_t, want_t)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-12, atol=1e-9)


def test_delta_is_last_minus_previous_last_across_edges() -> None:
    # Readings every 7 ms against buckets of 10: no bucket edge is a reading.
    ts = np.arange(0, 700, 7, dtype=np.int64)
    values = 100 + np.cumsum(np.linspace(0.5, 3, len(ts)))
    edges = np.arange(30, 600, 10, dtype=np.int64)
    got_t, got_v = _core.meter_delta(ts, values, edges, 0.0)
    last = pd.Series(values, index=ts).groupby(np.searchsorted(edges, ts, side="right")).last()
    inside = last.loc[1 : len(edges) - 1]
    previous = last.shift(1).loc[inside.index].to_numpy()
    np.testing.assert_allclose(got_v, inside.to_numpy() - previous)
    # ... and the sum of the buckets is the meter's advance over the whole range.
    assert got_v.sum() == pytest.approx(inside.iloc[-1] - last.loc[0])
    assert got_t[0] == 30


def test_delta_counts_a_rollover_as_the_new_reading() -> None:
    ts = np.array([0, 10, 20, 30], np.int64)
    values = np.array([9990.0, 9999.0, 4.0, 9.0])
    _, got = _core.meter_delta(ts, values, np.array([0, 40], np.int64), 100.0)
    assert got.tolist() == [9.0 + 4.0 + 5.0]
    with pytest.raises(ValueError, match="reset_threshold"):
        _core.meter_delta(ts, values, np.array([0, 40], np.int64), -1.0)


@st.composite
def cov_series(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    n = draw(st.integers(0, 150))
    steps = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 2000)))
    ts = (-1000 + np.cumsum(steps)).astype(np.int64)
    levels = st.sampled_from([0.0, 1.0]) | st.floats(-100, 100, allow_nan=False) | st.just(np.nan)
    values = draw(hnp.arrays(np.float64, n, elements=levels))
    widths = draw(st.lists(st.integers(1, 5000), min_size=1, max_size=25))
    edges = np.cumsum([draw(st.integers(-2000, 2000)), *widths]).astype(np.int64)
    until = draw(st.integers(int(edges[0]) - 100, int(edges[-1]) + 1000))
    return ts, values, edges, until


@settings(max_examples=300, deadline=None)
@given(cov_series())
def test_twa_and_on_time_match_the_reference(
    case: tuple[np.ndarray, np.ndarray, np.ndarray, int],
) -> None:
    ts, values, edges, until = case
    got = _core.held_values(ts, values, edges, until)
    if len(ts) == 0:
        assert len(got["ts"]) == 0
        return
    # A later sample at the same time replaces the earlier one: drop the earlier.
    keep = np.append(ts[1:] != ts[:-1], True)
    want = held_reference(ts[keep], values[keep], edges, until)
    np.testing.assert_array_equal(got["ts"], want["ts"].astype(np.int64))
    np.testing.assert_array_equal(got["known_ms"], want["known_ms"].astype(np.int64))
    np.testing.assert_allclose(got["on_time"], want["on_time"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(got["twa"], want["twa"], rtol=1e-9, atol=1e-9)


def test_twa_weights_by_time_not_by_sample() -> None:
    # A setpoint at 70 for 50 minutes, then 90 for 10: the mean of samples says 80.
    minute = 60_000
    ts = np.array([0, 50 * minute], np.int64)
    got = _core.held_values(ts, np.array([70.0, 90.0]), np.array([0, 60 * minute]), 10**15)
    assert got["twa"].tolist() == [pytest.approx((70 * 50 + 90 * 10) / 60)]
    # A fan on from 10:00 to 10:45 of an hour: 2700 seconds on, whatever the samples.
    fan = _core.held_values(
        np.array([-5 * minute, 45 * minute], np.int64),
        np.array([1.0, 0.0]),
        np.array([0, 60 * minute], np.int64),
        10**15,
    )
    assert fan["on_time"].tolist() == [2700.0]


def test_meter_kernels_reject_bad_input() -> None:
    edges = np.array([0, 10], np.int64)
    with pytest.raises(ValueError, match="sorted"):
        _core.held_values(np.array([5, 1], np.int64), np.ones(2), edges, 10)
    with pytest.raises(ValueError, match="same length"):
        _core.meter_delta(np.array([1], np.int64), np.ones(2), edges, 0.0)
    with pytest.raises(TypeError):
        _core.held_values(np.array([1.0]), np.ones(1), edges, 10)  # type: ignore[arg-type,unused-ignore]
