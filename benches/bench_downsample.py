"""Downsampling: acechart vs tsdownsample, side by side in one group per case.

A year of minutely samples (525,600) and fifty years (26.3M) down to 2,000 points, on a
random walk with millisecond timestamps. `acechart` trusts the timestamps to be
sorted (`assume_sorted=True`, as the engine's data always is, and as tsdownsample
assumes); `acechart (checked)` verifies it first (the default). Both scan on every
core from 2**20 samples on. tsdownsample runs single-threaded (`parallel=False`) and
multi-threaded. Each tsdownsample entry records in `extra_info` its median
over ours (`ratio_vs_acechart`, > 1 means acechart is faster); `benches/conftest.py`
prints the same ratios per group at the end of the run.

Run with `make bench` or
`pytest benches/bench_downsample.py --benchmark-enable --benchmark-only --benchmark-group-by=group`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import pytest
from tsdownsample import M4Downsampler, MinMaxLTTBDownsampler

from acechart._core import downsample
from benches.data import MINUTE_MS, START_MS, YEAR_MINUTES

N_OUT = 2_000
SIZES = {"525600": YEAR_MINUTES, "26.3M": 50 * YEAR_MINUTES}

# Medians of our runs, by group, for the ratios of the tsdownsample entries.
_ours: dict[str, float] = {}


@lru_cache(maxsize=1)  # one series in memory at a time (26.3M samples is 420 MB)
def _series(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    ts = START_MS + np.arange(n, dtype=np.int64) * MINUTE_MS
    values = np.cumsum(rng.standard_normal(n))
    return ts, values


def _runner(impl: str, method: str, ts: np.ndarray, values: np.ndarray) -> Callable[[], Any]:
    if impl.startswith("acechart"):
        trusted = impl == "acechart"
        return lambda: downsample(ts, values, N_OUT, method, assume_sorted=trusted)
    downsampler = M4Downsampler() if method == "m4" else MinMaxLTTBDownsampler()
    parallel = impl == "tsdownsample-parallel"
    return lambda: downsampler.downsample(ts, values, n_out=N_OUT, parallel=parallel)


# Size outermost so each series is built once; ours first in each group.
CASES = [
    (size, method, impl)
    for size in SIZES
    for method in ("minmaxlttb", "m4")
    for impl in ("acechart", "acechart (checked)", "tsdownsample", "tsdownsample-parallel")
]


@pytest.mark.parametrize(("size", "method", "impl"), CASES, ids=["-".join(case) for case in CASES])
def test_downsample(benchmark: Any, size: str, method: str, impl: str) -> None:
    n = SIZES[size]
    group = f"downsample {method} {size}->{N_OUT}"
    benchmark.group = group
    benchmark.extra_info.update(samples=n, n_out=N_OUT, method=method, impl=impl)
    ts, values = _series(n)
    run = _runner(impl, method, ts, values)
    if n > 1_000_000:
        # Tens of ms per call: a handful of rounds keeps the case within a few seconds.
        result = benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)
    else:
        result = benchmark(run)
    assert len(result) <= N_OUT + 3  # tsdownsample's M4 may repeat indices; never more

    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable: a plain call, nothing to compare
        return
    median = stats.stats.median
    if impl == "acechart":
        _ours[group] = median
    elif group in _ours:
        benchmark.extra_info["ratio_vs_acechart"] = round(median / _ours[group], 2)
