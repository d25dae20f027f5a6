"""Aggregation of one-minute data to 1hr buckets: acechart vs NumPy reduceat vs polars.

Every contender produces count, sum, min, max, avg and stddev per bucket (ours
also m2, first and last) for each point separately, as the engine needs them.
`acechart` calls `aggregate` once per point on one thread; `acechart aggregate_many`
is the batched call (one GIL release, points spread over every core).

Wall-clock medians on a shared machine understate long runs: a 90 ms run over 50
points is preempted far more often than a 1.6 ms run over one point, which is why
50 points seemed slower per sample than one. `python -m benches.bench_aggregate`
measures every contender in CPU seconds of the whole process (`time.process_time`,
all threads, so polars' thread pool counts too), which preemption does not inflate:
the speed per core.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest

from acechart import _core
from benches.data import year_series

HOUR_MS = 3_600_000
Series = list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]


def ours(series: Series) -> list[Any]:
    return [_core.aggregate(ts, v, HOUR_MS) for ts, v in series]


def ours_many(series: Series) -> list[Any]:
    return _core.aggregate_many(series, HOUR_MS)


def numpy_reduceat(series: Series) -> list[Any]:
    """Bucket edges by searchsorted, then one reduceat per statistic (NaN-free data)."""
    out = []
    for ts, v in series:
        starts = ts - ts % HOUR_MS
        edges = np.flatnonzero(np.r_[True, starts[1:] != starts[:-1]])
        count = np.diff(np.r_[edges, len(v)])
        total = np.add.reduceat(v, edges)
        mean = total / count
        dev = v - np.repeat(mean, count)
        var = np.add.reduceat(dev * dev, edges) / np.maximum(count - 1, 1)
        out.append(
            (
                starts[edges],
                count,
                total,
                np.minimum.reduceat(v, edges),
                np.maximum.reduceat(v, edges),
                mean,
                np.sqrt(var),
            )
        )
    return out


def polars_dynamic(series: Series) -> list[Any]:
    out = []
    for ts, v in series:
        df = pl.DataFrame({"t": pl.Series(ts).cast(pl.Datetime("ms")), "v": v})
        out.append(
            df.group_by_dynamic("t", every="1h").agg(
                pl.col("v").count().alias("count"),
                pl.col("v").sum().alias("sum"),
                pl.col("v").min().alias("min"),
                pl.col("v").max().alias("max"),
                pl.col("v").mean().alias("avg"),
                pl.col("v").std().alias("stddev"),
            )
        )
    return out


ROUTES = {
    "acechart": ours,
    "acechart aggregate_many": ours_many,
    "numpy reduceat": numpy_reduceat,
    "polars group_by_dynamic": polars_dynamic,
}


@pytest.mark.parametrize("points", [1, 50])
@pytest.mark.parametrize("impl", list(ROUTES))
def test_aggregate_1hr(benchmark: Any, impl: str, points: int) -> None:
    series = year_series(points)
    n = sum(len(ts) for ts, _ in series)
    benchmark.group = f"aggregate to 1hr: {points} point(s) x 365 days of 1min ({n:,} samples)"
    benchmark.extra_info.update(impl=impl, samples=n)
    fn = ROUTES[impl]
    rounds = 3 if points > 1 else 20
    result = benchmark.pedantic(fn, args=(series,), rounds=rounds, iterations=1, warmup_rounds=1)
    assert len(result) == points
    if impl == "numpy reduceat":
        got = ours(series[:1])[0]
        np.testing.assert_allclose(got["stddev"], result[0][6], rtol=1e-9)


def cpu_rates(rounds: int = 7) -> None:
    """M samples per CPU-second of the process, per contender and size."""
    import time

    for points in (1, 50):
        series = year_series(points)
        n = sum(len(ts) for ts, _ in series)
        reps = max(1, 20 // points)
        for impl in ("acechart", "numpy reduceat", "polars group_by_dynamic"):
            fn = ROUTES[impl]
            fn(series)
            times = []
            for _ in range(rounds):
                t = time.process_time()
                for _ in range(reps):
                    fn(series)
                times.append((time.process_time() - t) / reps)
            times.sort()
            rate = n / times[len(times) // 2] / 1e6
            print(f"{points:>3} point(s)  {impl:<26} {rate:8.1f} M samples per CPU-second")


if __name__ == "__main__":
    cpu_rates()
