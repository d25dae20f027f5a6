"""Block codec and block period: acechart's encode/decode vs Parquet (polars, zstd).

A block is one point's raw samples for one period. This measures, for one month
of one-minute data (44,640 samples, the chosen period), encode and decode time
and bytes per sample against what a user would otherwise store (Parquet with
zstd via polars), and prints the size / decode cost of the candidate periods
(day, week, month, year) that justify the monthly choice (README, "Block period").
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import polars as pl
import pytest

from acechart import _core
from benches.data import year_series

MONTH = 44_640
CANDIDATES = {"day": 1_440, "week": 10_080, "month": MONTH, "year": 525_600}


def month() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ts, values = year_series(1)[0]
    return ts[:MONTH], values[:MONTH], np.array([[ts[0], ts[MONTH - 1] + 60_000]], np.int64)


def parquet_bytes(ts: np.ndarray, values: np.ndarray) -> bytes:
    buf = io.BytesIO()
    pl.DataFrame({"ts": ts, "v": values}).write_parquet(buf, compression="zstd")
    return buf.getvalue()


@pytest.mark.parametrize("impl", ["acechart", "parquet (polars, zstd)"])
def test_encode_month(benchmark: Any, impl: str) -> None:
    ts, values, cov = month()
    benchmark.group = "block encode: 1 month of 1-min data (44,640 samples)"
    fn = (
        (lambda: _core.encode_block("p", ts, values, cov))
        if impl == "acechart"
        else (lambda: parquet_bytes(ts, values))
    )
    data = benchmark(fn)
    benchmark.extra_info.update(impl=impl, samples=MONTH, bytes_per_sample=len(data) / MONTH)


@pytest.mark.parametrize("impl", ["acechart", "parquet (polars, zstd)"])
def test_decode_month(benchmark: Any, impl: str) -> None:
    ts, values, cov = month()
    benchmark.group = "block decode: 1 month of 1-min data (44,640 samples)"
    if impl == "acechart":
        data = _core.encode_block("p", ts, values, cov)
        got = benchmark(_core.decode_block, data)[1]
    else:
        data = parquet_bytes(ts, values)
        got = benchmark(lambda: pl.read_parquet(io.BytesIO(data))["ts"].to_numpy())
    np.testing.assert_array_equal(got, ts)
    benchmark.extra_info.update(impl=impl, samples=MONTH, bytes_per_sample=len(data) / MONTH)


def periods_table() -> str:
    ts, values = year_series(1)[0]
    lines = [
        "| period | samples | block bytes | bytes/sample | decode ms | blocks per 1-day chart "
        "| blocks per 365-day query |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, n in CANDIDATES.items():
        cov = np.array([[ts[0], ts[n - 1] + 60_000]], np.int64)
        data = _core.encode_block("p", ts[:n], values[:n], cov)
        t0 = time.perf_counter()
        for _ in range(20):
            _core.decode_block(data)
        mean = (time.perf_counter() - t0) / 20
        per_day = 1 if n >= 1_440 else 2
        per_year = -(-525_600 // n)
        lines.append(
            f"| {name} | {n:,} | {len(data):,} | {len(data) / n:.2f} | {mean * 1e3:.2f} "
            f"| {per_day} | {per_year} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(periods_table())
