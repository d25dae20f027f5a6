"""encode_arrow: Arrow IPC streams read back by pyarrow and polars, value for value."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acechart import _core

Item = tuple[str, np.ndarray, np.ndarray]
META = {"siteId": "demo", "interval": "raw", "pointNames": ["a", "b"], "n": 3, "ok": True}


def read(data: bytes) -> tuple[pa.Schema, list[pa.RecordBatch]]:
    reader = pa.ipc.open_stream(data)
    return reader.schema, list(reader)


def bits(a: Any) -> np.ndarray:
    """float64 values as their bit patterns, so NaN == NaN and -0.0 != 0.0."""
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64)).view(np.int64)


names_st = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=10
).filter(lambda s: s != "time")
values_st = st.floats(width=64) | st.sampled_from([0.0, -0.0, math.nan, 72.5])


@st.composite
def series_lists(draw: st.DrawFn, max_series: int = 5, max_len: int = 30) -> list[Item]:
    names = draw(st.lists(names_st, max_size=max_series, unique=True))
    grid = draw(st.booleans())
    out = []
    for name in names:
        if grid:
            stamps = {1_704_067_200_000 + 60_000 * t for t in draw(st.sets(st.integers(0, 40)))}
        else:
            stamps = draw(st.sets(st.integers(-(2**62), 2**62), max_size=max_len))
        ts = np.array(sorted(stamps), dtype=np.int64)
        vs = np.array(draw(st.lists(values_st, min_size=len(ts), max_size=len(ts))), np.float64)
        out.append((name, ts, vs))
    return out


def check_series_layout(data: bytes, series: list[Item], tz: str) -> None:
    schema, batches = read(data)
    assert schema.names == ["point", "time", "value"]
    assert schema.field("point").type == pa.dictionary(pa.int32(), pa.utf8())
    assert schema.field("time").type == pa.timestamp("ms", tz=tz)
    assert schema.field("value").type == pa.float64()
    meta = {k.decode(): v.decode() for k, v in schema.metadata.items()}
    assert json.loads(meta["acechart:metadata"]) == META
    assert json.loads(meta["acechart:series"]) == [
        {"name": name, "rows": len(ts)} for name, ts, _ in series
    ]
    assert len(batches) == len(series)
    for batch, (name, ts, vs) in zip(batches, series, strict=True):
        assert batch.num_rows == len(ts)
        assert batch.column("point").to_pylist() == [name] * len(ts)
        np.testing.assert_array_equal(batch.column("time").cast(pa.int64()).to_numpy(), ts)
        value = batch.column("value")
        assert value.null_count == 0
        np.testing.assert_array_equal(bits(value.to_numpy(zero_copy_only=False)), bits(vs))
    if tz.startswith(("+", "-")):
        return  # an offset is a valid Arrow zone, but polars reads zone names only
    # polars concatenates the batches and keeps every row's point
    df = pl.read_ipc_stream(io.BytesIO(data))
    assert df.columns == ["point", "time", "value"]
    assert df.schema["time"] == pl.Datetime("ms", tz)
    assert df["point"].cast(pl.Utf8).to_list() == [n for n, ts, _ in series for _ in ts]
    all_ts = np.concatenate([ts for _, ts, _ in series]) if series else np.zeros(0, np.int64)
    all_vs = np.concatenate([vs for _, _, vs in series]) if series else np.zeros(0)
    np.testing.assert_array_equal(df["time"].dt.epoch("ms").to_numpy(), all_ts)
    np.testing.assert_array_equal(bits(df["value"].to_numpy()), bits(all_vs))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(series_lists(), st.sampled_from(["UTC", "America/Chicago", "+05:30"]))
def test_series_layout_matches_input(series: list[Item], tz: str) -> None:
    check_series_layout(_core.encode_arrow(META, series, "series", tz), series, tz)


def wide_reference(series: list[Item]) -> tuple[np.ndarray, list[list[float | None]]]:
    union = np.array(sorted({int(t) for _, ts, _ in series for t in ts}), dtype=np.int64)
    columns = []
    for _, ts, vs in series:
        at = dict(zip(ts.tolist(), vs.tolist(), strict=True))
        columns.append([at.get(int(t)) for t in union])
    return union, columns


def check_wide(data: bytes, series: list[Item], tz: str) -> None:
    union, columns = wide_reference(series)
    schema, batches = read(data)
    assert schema.names == ["time", *[name for name, _, _ in series]]
    assert schema.field("time").type == pa.timestamp("ms", tz=tz)
    assert len(batches) == 1
    table = pa.Table.from_batches(batches)
    np.testing.assert_array_equal(table.column("time").cast(pa.int64()).to_numpy(), union)
    for i in range(len(series)):
        col = table.column(i + 1)
        assert col.type == pa.float64() and schema.field(i + 1).nullable
        want = columns[i]
        assert [v is None for v in col.to_pylist()] == [v is None for v in want]
        valid = [j for j, v in enumerate(want) if v is not None]
        got = col.to_numpy(zero_copy_only=False)
        np.testing.assert_array_equal(bits(got[valid]), bits([want[j] for j in valid]))
    df = pl.read_ipc_stream(io.BytesIO(data))
    assert df.columns == ["time", *[name for name, _, _ in series]]
    np.testing.assert_array_equal(df["time"].dt.epoch("ms").to_numpy(), union)
    for i, (name, _, _) in enumerate(series):
        want = columns[i]
        got_list = df[name].to_list()
        assert [v is None for v in got_list] == [v is None for v in want]
        pairs = [(g, w) for g, w in zip(got_list, want, strict=True) if w is not None]
        assert all(bits([g]) == bits([w]) for g, w in pairs)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(series_lists(), st.sampled_from(["UTC", "America/Chicago"]))
def test_wide_layout_is_an_outer_join(series: list[Item], tz: str) -> None:
    check_wide(_core.encode_arrow(META, series, "wide", tz), series, tz)


def s(name: str, ts: list[int], vs: list[float]) -> Item:
    return (name, np.array(ts, dtype=np.int64), np.array(vs, dtype=np.float64))


def test_empty_one_and_nan() -> None:
    for layout in ("series", "wide"):
        schema, batches = read(_core.encode_arrow({}, [], layout))
        assert json.loads(schema.metadata[b"acechart:series"]) == []
        assert sum(b.num_rows for b in batches) == 0
    one = [s("p", [1_704_067_200_000], [math.nan])]
    check_series_layout(_core.encode_arrow(META, one), one, "UTC")
    check_wide(_core.encode_arrow(META, one, "wide"), one, "UTC")
    empty = [s("p", [], []), s("q", [5], [1.0])]
    check_series_layout(_core.encode_arrow(META, empty), empty, "UTC")
    check_wide(_core.encode_arrow(META, empty, "wide"), empty, "UTC")


def test_wide_disjoint_and_overlapping() -> None:
    disjoint = [s("a", [1, 2], [1.0, 2.0]), s("b", [3, 4], [3.0, 4.0])]
    t = pa.ipc.open_stream(_core.encode_arrow({}, disjoint, "wide")).read_all()
    assert t.column("time").cast(pa.int64()).to_pylist() == [1, 2, 3, 4]
    assert t.column("a").to_pylist() == [1.0, 2.0, None, None]
    assert t.column("b").to_pylist() == [None, None, 3.0, 4.0]
    overlap = [s("a", [1, 2, 3], [1.0, math.nan, 3.0]), s("b", [2, 3, 4], [20.0, 30.0, 40.0])]
    t = pa.ipc.open_stream(_core.encode_arrow({}, overlap, "wide")).read_all()
    assert t.column("time").cast(pa.int64()).to_pylist() == [1, 2, 3, 4]
    a = t.column("a").to_pylist()
    assert a[0] == 1.0 and math.isnan(a[1]) and a[2:] == [3.0, None]
    assert t.column("b").to_pylist() == [None, 20.0, 30.0, 40.0]


def test_time_zone_in_the_type() -> None:
    data = _core.encode_arrow(META, [s("p", [1_704_067_200_000], [1.0])], tz="America/Chicago")
    t = pa.ipc.open_stream(data).read_all()
    assert t.schema.field("time").type == pa.timestamp("ms", tz="America/Chicago")
    assert str(t.column("time")[0].as_py()) == "2023-12-31 18:00:00-06:00"
    df = pl.read_ipc_stream(io.BytesIO(data))
    assert df.schema["time"] == pl.Datetime("ms", "America/Chicago")
    assert df["time"].dt.hour().to_list() == [18]


def test_aggregates() -> None:
    rng = np.random.default_rng(3)
    ts = np.sort(rng.choice(10_000_000, 500, replace=False)).astype(np.int64)
    vs = rng.normal(70, 5, 500)
    vs[::17] = math.nan
    agg = _core.aggregate(ts, vs, 900_000)
    agg2 = _core.aggregate(ts[:100], vs[:100], 900_000)
    items: list[Any] = [("a", agg), ("b", agg2)]
    data = _core.encode_arrow(META, items)
    schema, batches = read(data)
    stats = ["count", "sum", "min", "max", "avg", "stddev"]
    assert schema.names == ["point", "time", "value", *stats, "first", "last"]
    assert schema.field("count").type == pa.int64()
    for batch, (name, a) in zip(batches, items, strict=True):
        assert batch.column("point").to_pylist() == [name] * len(a["ts"])
        np.testing.assert_array_equal(batch.column("time").cast(pa.int64()).to_numpy(), a["ts"])
        np.testing.assert_array_equal(batch.column("count").to_numpy(), a["count"])
        np.testing.assert_array_equal(bits(batch.column("value").to_numpy()), bits(a["avg"]))
        for key in ("sum", "min", "max", "avg", "stddev", "first", "last"):
            np.testing.assert_array_equal(bits(batch.column(key).to_numpy()), bits(a[key]))
    # Without first and last (an aggregate dict of the seed's columns) they are no columns;
    # a list mixing both kinds is refused.
    seed_only = [(n, {k: v for k, v in a.items() if k not in ("first", "last")}) for n, a in items]
    assert read(_core.encode_arrow(META, seed_only))[0].names == ["point", "time", "value", *stats]
    with pytest.raises(ValueError, match="first and last"):
        _core.encode_arrow(META, [items[0], seed_only[1]])
    df = pl.read_ipc_stream(io.BytesIO(data))
    assert df.height == len(agg["ts"]) + len(agg2["ts"])
    # wide: one column per point, its average
    t = pa.ipc.open_stream(_core.encode_arrow(META, items, "wide")).read_all()
    assert t.column_names == ["time", "a", "b"]
    np.testing.assert_array_equal(bits(t.column("a").to_numpy()), bits(agg["avg"]))


def test_large_round_trip() -> None:
    n_points, n = 50, 20_000
    ts = 1_704_067_200_000 + 60_000 * np.arange(n, dtype=np.int64)
    series = []
    for i in range(n_points):
        own = np.ascontiguousarray(ts[i % 3 :: 1 + i % 2])
        series.append((f"site/p{i:03d}", own, np.full(len(own), i * 1.0)))
    check_series_layout(_core.encode_arrow(META, series), series, "UTC")
    t = pa.ipc.open_stream(_core.encode_arrow(META, series, "wide")).read_all()
    assert t.num_rows == n and t.num_columns == n_points + 1
    assert t.column("site/p001").null_count == n - len(series[1][1])


def test_errors() -> None:
    ok = [s("a", [1, 2], [1.0, 2.0])]
    with pytest.raises(ValueError, match="'series', 'wide'"):
        _core.encode_arrow({}, ok, "long")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tz must be"):
        _core.encode_arrow({}, ok, tz="")
    with pytest.raises(ValueError, match="tz must be"):
        _core.encode_arrow({}, ok, tz="Europe/Not a zone")
    agg = _core.aggregate(ok[0][1], ok[0][2], 10)
    with pytest.raises(ValueError, match='"r" is raw'):
        _core.encode_arrow({}, [("g", agg), s("r", [], [])])
    with pytest.raises(ValueError, match="appears twice"):
        _core.encode_arrow({}, [*ok, *ok], "wide")
    with pytest.raises(ValueError, match="time column"):
        _core.encode_arrow({}, [s("time", [1], [1.0])], "wide")
    with pytest.raises(ValueError, match="sorted ascending"):
        _core.encode_arrow({}, [s("u", [2, 1], [1.0, 1.0])], "wide")
    with pytest.raises(ValueError, match="length mismatch"):
        _core.encode_arrow({}, [s("m", [1, 2], [1.0])])
    with pytest.raises(TypeError, match="metadata must be a dict"):
        _core.encode_arrow(None, ok)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int64"):
        _core.encode_arrow({}, [("p", [1], np.zeros(1))])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        _core.encode_arrow({}, ok, tz=5)  # type: ignore[arg-type]
