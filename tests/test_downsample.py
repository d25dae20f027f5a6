"""`acechart._core.downsample` against tsdownsample and a NumPy reference.

On tie-free input (distinct values, no NaN) MinMaxLTTB must pick exactly the indices
tsdownsample picks, and M4 exactly the distinct indices tsdownsample picks, except when
tsdownsample's last M4 bin edge rounds below ``ts[-1]`` and it drops the last sample(s):
our last bin always reaches the end. The NumPy reference below reproduces tsdownsample's
bin edges with and without that closing, so every M4 result is checked exactly.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tsdownsample import M4Downsampler, MinMaxLTTBDownsampler

from acechart._core import downsample

METHODS = ["minmaxlttb", "m4"]
Params = tuple[int, int, int, int, bool]  # seed, n, base, max gap, repeats: see _series
MS_2024 = 1_704_067_200_000  # 2024-01-01T00:00:00Z in ms

# --------------------------------------------------------------------------- helpers


def _series(
    seed: int, n: int, base: int, max_gap: int, repeats: bool = False, outages: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted int64 timestamps with irregular gaps (and a few outages); distinct values."""
    rng = np.random.default_rng(seed)
    gaps = rng.integers(0 if repeats else 1, max_gap + 1, n).astype(np.int64)
    if outages and n > 10:
        # A few long outages: whole bins stay empty.
        gaps[rng.integers(0, n, 3)] *= 1000
    gaps[0] = 0
    ts = base + np.cumsum(gaps)
    values = rng.standard_normal(n)
    return ts, values


def _n_out(method: str, n_out: int) -> int:
    return n_out if method == "minmaxlttb" else max(4, n_out // 4 * 4)


def _ref_bins(ts: np.ndarray, n_bins: int, close_last: bool) -> list[tuple[int, int]]:
    """tsdownsample's equal-width bins: (start, end) ranges of the non-empty ones."""
    t0 = float(ts[0])
    width = float(ts[-1]) / n_bins - t0 / n_bins
    half = np.arange(1, n_bins + 1, dtype=np.float64) / 2.0
    edges = np.trunc(t0 + width * half + width * half + 1e-12).astype(np.int64)
    n, start, bins = len(ts), 0, []
    for i, edge in enumerate(edges):
        if start >= n:
            break
        if close_last and i == n_bins - 1:
            bins.append((start, n))
            break
        if ts[start] >= edge:
            continue
        lower = start + 1 + int(np.searchsorted(ts[start + 1 :], edge, side="left"))
        end = lower + 1 if lower < n and ts[lower] == edge else lower
        bins.append((start, end))
        start = end
    return bins


def _ref_m4(ts: np.ndarray, values: np.ndarray, n_out: int, close_last: bool) -> np.ndarray:
    """M4 in plain NumPy (no NaN): first, argmin, argmax, last of each bin, deduplicated."""
    if len(ts) <= n_out:
        return np.arange(len(ts))
    picks: list[int] = []
    for start, end in _ref_bins(ts, n_out // 4, close_last):
        if end - start <= 4:
            picks.extend(range(start, end))
        else:
            seg = values[start:end]
            picks += [start, start + int(np.argmin(seg)), start + int(np.argmax(seg)), end - 1]
    return np.unique(np.array(picks, dtype=np.int64))


def _theirs(method: str, ts: np.ndarray, values: np.ndarray, n_out: int) -> np.ndarray:
    if method == "m4":
        idx = M4Downsampler().downsample(ts, values, n_out=n_out, parallel=False)
    else:
        idx = MinMaxLTTBDownsampler().downsample(ts, values, n_out=n_out, parallel=False)
    return idx.astype(np.int64)


def _check_invariants(idx: np.ndarray, n: int, n_out: int) -> None:
    assert idx.dtype == np.int64
    assert idx.ndim == 1
    if n <= n_out:
        np.testing.assert_array_equal(idx, np.arange(n))
        return
    assert len(idx) <= n_out
    assert np.all(np.diff(idx) > 0), "indices must be strictly increasing"
    assert idx[0] == 0
    assert idx[-1] == n - 1


def _check_m4(ts: np.ndarray, values: np.ndarray, n_out: int) -> None:
    ours = downsample(ts, values, n_out, "m4")
    _check_invariants(ours, len(ts), n_out)
    np.testing.assert_array_equal(ours, _ref_m4(ts, values, n_out, close_last=True))
    if len(ts) <= n_out or n_out < 8:  # tsdownsample panics on a single M4 bin
        return
    theirs = np.unique(_theirs("m4", ts, values, n_out))
    # The reference reproduces tsdownsample itself when its last bin is left open...
    np.testing.assert_array_equal(theirs, _ref_m4(ts, values, n_out, close_last=False))
    # ...and whenever tsdownsample keeps the last sample, we match it exactly.
    if theirs[-1] == len(ts) - 1:
        np.testing.assert_array_equal(ours, theirs)


def _check_minmaxlttb(ts: np.ndarray, values: np.ndarray, n_out: int) -> None:
    ours = downsample(ts, values, n_out)
    _check_invariants(ours, len(ts), n_out)
    np.testing.assert_array_equal(ours, _theirs("minmaxlttb", ts, values, n_out))


# --------------------------------------------------------- equality with tsdownsample

series_params = st.tuples(
    st.integers(0, 2**32 - 1),  # seed
    st.integers(3, 4000),  # n
    st.sampled_from([-2_000_000_000_000, -86_400_000, -500, 0, MS_2024]),  # base
    st.sampled_from([1, 7, 1000, 60_000, 900_000]),  # max gap (ms)
    st.booleans(),  # repeated timestamps allowed
)
HYPOTHESIS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYPOTHESIS
@given(params=series_params, n_out=st.integers(3, 1200))
def test_minmaxlttb_matches_tsdownsample(params: Params, n_out: int) -> None:
    ts, values = _series(*params)
    _check_minmaxlttb(ts, values, n_out)


@HYPOTHESIS
@given(params=series_params, bins=st.integers(1, 300))
def test_m4_matches_tsdownsample(params: Params, bins: int) -> None:
    ts, values = _series(*params)
    _check_m4(ts, values, 4 * bins)


@pytest.mark.parametrize("n", [1_000, 10_000, 100_003])
@pytest.mark.parametrize("n_out", [3, 100, 2_000])
def test_minmaxlttb_matches_tsdownsample_minutely(n: int, n_out: int) -> None:
    ts, values = _series(n + n_out, n, MS_2024, 60_000)
    _check_minmaxlttb(ts, values, n_out)


@pytest.mark.parametrize("n", [1_000, 10_000, 100_003])
@pytest.mark.parametrize("n_out", [8, 100, 2_000])
def test_m4_matches_tsdownsample_minutely(n: int, n_out: int) -> None:
    ts, values = _series(n + n_out, n, MS_2024, 60_000)
    _check_m4(ts, values, n_out)


def test_m4_keeps_last_sample_where_tsdownsample_drops_it() -> None:
    """Find inputs where tsdownsample's last edge rounds low, and check we still end at n-1."""
    dropped = 0
    for seed in range(400):
        ts, values = _series(seed, 500, MS_2024, 3)
        theirs = _theirs("m4", ts, values, 40)
        if theirs[-1] == len(ts) - 1:
            continue
        dropped += 1
        ours = downsample(ts, values, 40, "m4")
        assert ours[-1] == len(ts) - 1
        np.testing.assert_array_equal(ours, _ref_m4(ts, values, 40, close_last=True))
        # Everything before our last bin is identical.
        last_start = _ref_bins(ts, 10, close_last=True)[-1][0]
        np.testing.assert_array_equal(
            ours[ours < last_start], np.unique(theirs[theirs < last_start])
        )
    assert dropped > 0, "no case exercised the difference"


# ------------------------------------------------------------------------ edge cases


@pytest.mark.parametrize("method", METHODS)
def test_empty_input_gives_empty_int64(method: str) -> None:
    out = downsample(np.array([], dtype=np.int64), np.array([], dtype=np.float64), 8, method)
    assert out.dtype == np.int64
    assert out.shape == (0,)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("value", [1.5, np.nan])
def test_one_sample(method: str, value: float) -> None:
    out = downsample(np.array([-1], dtype=np.int64), np.array([value]), 8, method)
    np.testing.assert_array_equal(out, [0])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [2, 7, 8])
def test_short_series_returned_whole(method: str, n: int) -> None:
    ts, values = _series(n, n, MS_2024, 1000)
    values[1] = np.nan
    np.testing.assert_array_equal(downsample(ts, values, 8, method), np.arange(n))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [9, 50, 5_000])
def test_all_nan_keeps_only_the_endpoints(method: str, n: int) -> None:
    ts = np.arange(n, dtype=np.int64) * 1000
    values = np.full(n, np.nan)
    np.testing.assert_array_equal(downsample(ts, values, 8, method), [0, n - 1])


@pytest.mark.parametrize("method", METHODS)
def test_first_and_last_kept(method: str) -> None:
    ts, values = _series(5, 20_000, MS_2024, 60_000)
    # Make the endpoints as unremarkable as possible.
    values[0] = values[-1] = np.median(values)
    for n_out in (3, 4, 8, 100, 2_000, 19_996):
        n_out = _n_out(method, n_out)
        idx = downsample(ts, values, n_out, method)
        _check_invariants(idx, len(ts), n_out)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("base", [-631_152_000_000, -450_000_000], ids=["1950", "1969-epoch"])
def test_negative_timestamps_before_1970(method: str, base: int) -> None:
    # Bin edges below zero truncate toward zero, as tsdownsample's do.
    ts, values = _series(11, 30_000, base, 60_000)
    assert ts[0] < 0
    for n_out in (8, 400, 2_000):
        if method == "m4":
            _check_m4(ts, values, n_out)
        else:
            _check_minmaxlttb(ts, values, n_out)


def test_negative_edge_truncates_toward_zero() -> None:
    ts = np.arange(-9, 1, dtype=np.int64)
    values = np.array([0, 9, 1, 8, 2, 7, 3, 6, 4, 5], dtype=np.float64)
    np.testing.assert_array_equal(downsample(ts, values, 8, "m4"), [0, 1, 5, 6, 7, 8, 9])


@pytest.mark.parametrize("method", METHODS)
def test_irregular_gaps_and_outages(method: str) -> None:
    # Two dense clusters a day apart, plus a lone sample in the middle.
    ts = np.concatenate([np.arange(3_000), [43_200_000], 86_400_000 + np.arange(3_000)]).astype(
        np.int64
    )
    values = np.random.default_rng(2).standard_normal(len(ts))
    for n_out in (8, 40, 400):
        idx = downsample(ts, values, n_out, method)
        _check_invariants(idx, len(ts), n_out)
        if method == "m4":
            assert 3_000 in idx, "the lone sample starts, ends or is its bin"
            _check_m4(ts, values, n_out)
        else:
            _check_minmaxlttb(ts, values, n_out)


# ----------------------------------------------------------------------------- NaN


@HYPOTHESIS
@given(
    params=series_params,
    n_out=st.integers(3, 600),
    method=st.sampled_from(METHODS),
    nan_fraction=st.sampled_from([0.01, 0.3, 0.9, 1.0]),
    nan_endpoints=st.booleans(),
)
def test_nan_never_selected_except_endpoints(
    params: Params,
    n_out: int,
    method: str,
    nan_fraction: float,
    nan_endpoints: bool,
) -> None:
    ts, values = _series(*params)
    rng = np.random.default_rng(params[0] + 1)
    values[rng.random(len(values)) < nan_fraction] = np.nan
    # A fully missing stretch: whole bins of NaN.
    values[len(values) // 3 : len(values) // 2] = np.nan
    if nan_endpoints:
        values[0] = values[-1] = np.nan
    n_out = _n_out(method, n_out)
    idx = downsample(ts, values, n_out, method)
    n = len(ts)
    if n <= n_out:
        np.testing.assert_array_equal(idx, np.arange(n))
        return
    _check_invariants(idx, n, n_out)
    assert not np.isnan(values[idx[1:-1]]).any(), "a NaN sample was selected"


@pytest.mark.parametrize("method", METHODS)
def test_nan_does_not_hide_extremes(method: str) -> None:
    ts = np.arange(10_000, dtype=np.int64) * 1000
    values = np.sin(np.arange(10_000) / 300.0)
    values[::7] = np.nan
    values[4_242] = 50.0
    values[7_777] = -50.0
    idx = downsample(ts, values, 40, method)
    assert 4_242 in idx and 7_777 in idx


def test_nan_only_changes_its_own_m4_bin() -> None:
    """NaN only changes the bins that contain it: M4 on the other bins is unchanged."""
    ts, values = _series(3, 8_000, MS_2024, 60_000, outages=False)
    clean = downsample(ts, values, 400, "m4")
    dirty_values = values.copy()
    bins = _ref_bins(ts, 100, close_last=True)
    start, end = bins[40]
    dirty_values[start + 1 : end - 1] = np.nan  # keep the bin's first and last
    dirty = downsample(ts, dirty_values, 400, "m4")
    outside = (clean < start) | (clean >= end)
    np.testing.assert_array_equal(dirty[(dirty < start) | (dirty >= end)], clean[outside])
    inside = dirty[(dirty >= start) & (dirty < end)]
    np.testing.assert_array_equal(inside, [start, end - 1])


# ---------------------------------------------------------------------- error paths


@pytest.mark.parametrize("method", ["lttb", "M4", "", "minmax"])
def test_unknown_method(method: str) -> None:
    ts, values = _series(0, 100, 0, 10)
    with pytest.raises(ValueError, match=r"unknown downsampling method .*'minmaxlttb', 'm4'"):
        downsample(ts, values, 12, method)


@pytest.mark.parametrize("method", METHODS)
def test_length_mismatch(method: str) -> None:
    ts, values = _series(0, 100, 0, 10)
    with pytest.raises(ValueError, match=r"ts \(100\) and values \(99\) must have the same length"):
        downsample(ts, values[:-1], 12, method)


@pytest.mark.parametrize("method", METHODS)
def test_unsorted_ts(method: str) -> None:
    ts, values = _series(0, 100, 0, 10)
    ts[57], ts[58] = ts[58], ts[57]
    with pytest.raises(ValueError, match=r"ts must be sorted ascending, but ts\[57\]"):
        downsample(ts, values, 12, method)


@pytest.mark.parametrize(
    ("method", "n_out", "message"),
    [
        ("m4", 6, "multiple of 4"),
        ("m4", 0, "multiple of 4"),
        ("m4", 2, "multiple of 4"),
        ("minmaxlttb", 2, "at least 3"),
        ("minmaxlttb", 0, "at least 3"),
        ("minmaxlttb", -5, "non-negative"),
        ("m4", -4, "non-negative"),
    ],
)
def test_bad_n_out(method: str, n_out: int, message: str) -> None:
    ts, values = _series(0, 100, 0, 10)
    with pytest.raises(ValueError, match=f"n_out .*{message}"):
        downsample(ts, values, n_out, method)
    # Checked even when there is nothing to reduce.
    with pytest.raises(ValueError, match="n_out"):
        downsample(ts[:0], values[:0], n_out, method)


def test_non_contiguous_input_raises() -> None:
    ts, values = _series(0, 100, 0, 10)
    with pytest.raises(TypeError, match="contiguous"):
        downsample(ts[::2], values[::2], 12)
    with pytest.raises(TypeError, match="contiguous"):
        downsample(ts[:50], values[::2], 12)


def test_wrong_dtypes_raise() -> None:
    ts, values = _series(0, 100, 0, 10)
    with pytest.raises(TypeError):
        downsample(ts.astype(np.float64), values, 12)
    with pytest.raises(TypeError):
        downsample(ts, values.astype(np.float32), 12)


def test_default_method_is_minmaxlttb() -> None:
    ts, values = _series(9, 5_000, MS_2024, 60_000)
    np.testing.assert_array_equal(
        downsample(ts, values, 100), downsample(ts, values, 100, "minmaxlttb")
    )
    np.testing.assert_array_equal(
        downsample(ts, values, n_out=100, method="minmaxlttb"),
        downsample(ts=ts, values=values, n_out=100),
    )


def test_runs_concurrently_from_threads() -> None:
    """The kernel releases the GIL; calls from worker threads must agree with serial ones."""
    ts, values = _series(4, 200_000, MS_2024, 60_000)
    expected = downsample(ts, values, 2_000)
    barrier = threading.Barrier(4)

    def work(_: int) -> np.ndarray:
        barrier.wait()
        return downsample(ts, values, 2_000)

    with ThreadPoolExecutor(4) as pool:
        for got in pool.map(work, range(4)):
            np.testing.assert_array_equal(got, expected)


# ------------------------------------------------------ large inputs: parallel scan


@pytest.mark.parametrize("method", METHODS)
def test_parallel_scan_of_large_inputs_matches_tsdownsample(method: str) -> None:
    """From 2**20 samples on the bins are scanned on every core; the result must still be
    tsdownsample's (single-threaded) exactly, with or without the sortedness check."""
    ts, values = _series(7, 1_500_000, MS_2024, 60_000)
    n_out = 2_000
    checked = downsample(ts, values, n_out, method)  # type: ignore[arg-type]
    trusted = downsample(ts, values, n_out, method, assume_sorted=True)  # type: ignore[arg-type]
    np.testing.assert_array_equal(checked, trusted)
    if method == "m4":
        np.testing.assert_array_equal(checked, _ref_m4(ts, values, n_out, close_last=True))
    else:
        np.testing.assert_array_equal(checked, _theirs(method, ts, values, n_out))
    unsorted = ts.copy()
    unsorted[1_000_000] = unsorted[999_999] - 1
    with pytest.raises(ValueError, match=r"ts\[999999\]"):
        downsample(unsorted, values, n_out, method)  # type: ignore[arg-type]
    kept = downsample(unsorted, values, n_out, method, assume_sorted=True)  # type: ignore[arg-type]
    assert np.all(np.diff(kept) > 0) and kept[-1] == len(ts) - 1
