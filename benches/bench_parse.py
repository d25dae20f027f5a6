"""Origin page parsing: acechart vs polars read_json vs orjson + NumPy, on the same bytes."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson
import pandas as pd
import polars as pl
import pytest

from acechart import _core
from benches.data import page_bytes

SCHEMA = {
    "point_samples": pl.List(pl.Struct({"name": pl.Utf8, "value": pl.Utf8, "time": pl.Utf8})),
    "next_cursor": pl.Utf8,
    "has_more": pl.Boolean,
}
CASES = [(10_000, False), (100_000, False), (10_000, True), (100_000, True)]


def ours(data: bytes) -> Any:
    p = _core.parse_page(data)
    return p.point_index, p.ts, p.values


def polars_route(data: bytes) -> Any:
    """polars read_json with an explicit schema, then columnar conversion."""
    df = pl.read_json(io.BytesIO(data), schema=SCHEMA)
    s = df.select(pl.col("point_samples").explode()).unnest("point_samples")
    out = s.select(
        pl.col("name").cast(pl.Categorical).to_physical().alias("point"),
        pl.col("time").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="ms").dt.epoch("ms"),
        pl.col("value").cast(pl.Float64, strict=False),
    )
    return out["point"].to_numpy(), out["time"].to_numpy(), out["value"].to_numpy()


def orjson_route(data: bytes) -> Any:
    """orjson.loads, then vectorised NumPy / pandas conversion of the columns."""
    samples = orjson.loads(data)["point_samples"]
    codes, _ = pd.factorize(pd.Series([s["name"] for s in samples]))
    ts = np.array([s["time"][:-1] for s in samples], dtype="datetime64[ms]").astype(np.int64)
    values = pd.to_numeric(pd.Series([s["value"] for s in samples], dtype=object), errors="coerce")
    return codes.astype(np.int32), ts, values.to_numpy(np.float64)


ROUTES = {"acechart": ours, "polars read_json": polars_route, "orjson + numpy": orjson_route}


@pytest.mark.parametrize(
    ("n", "mixed"), CASES, ids=[f"{n}-{'mixed' if m else 'str'}" for n, m in CASES]
)
@pytest.mark.parametrize("impl", list(ROUTES))
def test_parse_page(benchmark: Any, impl: str, n: int, mixed: bool) -> None:
    data = page_bytes(n, mixed)
    benchmark.group = f"parse page {n:,} samples ({'mixed' if mixed else 'string'} values)"
    benchmark.extra_info.update(impl=impl, samples=n, mb=len(data) / 1e6)
    fn = ROUTES[impl]
    _, ts, values = benchmark(fn, data)
    assert len(ts) == n and len(values) == n
    np.testing.assert_array_equal(ts, _core.parse_page(data).ts)
