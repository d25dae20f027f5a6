"""encode_json / encode_msgpack / encode_csv against documents built in Python.

The reference is always the plain-Python route: build the document from the arrays with
lists and floats, then `json.loads`, `msgpack.packb` / `unpackb`, or the `csv` module.
Comparisons are type by type (an int stays an int, a float keeps its bits and the sign
of zero), and the MessagePack rows bytes must equal `msgpack.packb` of the document.
"""

from __future__ import annotations

import csv
import io
import json
import math
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from acechart._core import encode_csv, encode_json, encode_msgpack
from acechart.query import AGG_STATS

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

AGG_KEYS = ("ts", "count", "sum", "min", "max", "avg", "stddev")
AGG_ROW_KEYS = ("avg", "min", "max", "sum")  # then count, stddev
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# the range Python's datetime can express, for the CSV reference
DT_MIN_MS = -62_135_596_800_000  # 0001-01-01
DT_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999


# ---------------------------------------------------------------- reference documents


def ref_float(v: float, *, json_mode: bool) -> float | None:
    """NaN is null everywhere; JSON has no infinities either."""
    if math.isnan(v) or (json_mode and math.isinf(v)):
        return None
    return v


def ref_meta(obj: Any, *, json_mode: bool) -> Any:
    if isinstance(obj, bool) or obj is None or isinstance(obj, int | str):
        return obj
    if isinstance(obj, float):
        return ref_float(float(obj), json_mode=json_mode)
    if isinstance(obj, dict):
        return {k: ref_meta(v, json_mode=json_mode) for k, v in obj.items()}
    return [ref_meta(v, json_mode=json_mode) for v in obj]


def ref_series(item: tuple[Any, ...], *, json_mode: bool) -> dict[str, Any]:
    if len(item) == 3:
        name, ts, values = item
        data = [
            [int(t), ref_float(float(v), json_mode=json_mode)]
            for t, v in zip(ts.tolist(), values.tolist(), strict=True)
        ]
        return {"name": name, "data": data}
    name, aggs = item
    rows = []
    if "columns" in aggs:  # chosen statistics: exactly these, in order
        for i in range(len(aggs["ts"])):
            row = {"timestamp": int(aggs["ts"][i])}
            for k in aggs["columns"]:
                v = aggs[k][i]
                row[k] = (
                    int(v)
                    if aggs[k].dtype == np.int64
                    else ref_float(float(v), json_mode=json_mode)
                )
            if aggs.get("partial") is True and i == len(aggs["ts"]) - 1:
                row["partial"] = True
            rows.append(row)
        return {"name": name, "aggregations": rows}
    for i in range(len(aggs["ts"])):
        row: dict[str, Any] = {"timestamp": int(aggs["ts"][i])}
        for k in AGG_ROW_KEYS:
            row[k] = ref_float(float(aggs[k][i]), json_mode=json_mode)
        row["count"] = int(aggs["count"][i])
        row["stddev"] = ref_float(float(aggs["stddev"][i]), json_mode=json_mode)
        if "first" in aggs and "last" in aggs:
            row["first"] = ref_float(float(aggs["first"][i]), json_mode=json_mode)
            row["last"] = ref_float(float(aggs["last"][i]), json_mode=json_mode)
        if aggs.get("partial") is True and i == len(aggs["ts"]) - 1:
            row["partial"] = True
        rows.append(row)
    return {"name": name, "aggregations": rows}


def ref_doc(metadata: dict[str, Any], series: list[Any], *, json_mode: bool) -> dict[str, Any]:
    return {
        "metadata": ref_meta(metadata, json_mode=json_mode),
        "series": [ref_series(s, json_mode=json_mode) for s in series],
    }


def assert_same(got: Any, want: Any, path: str = "doc") -> None:
    """Equal and of the same type at every node; floats bit for bit (so -0.0 != 0.0)."""
    assert type(got) is type(want), f"{path}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, float):
        assert math.copysign(1, got) == math.copysign(1, want), f"{path}: {got!r} != {want!r}"
        assert got == want, f"{path}: {got!r} != {want!r}"
    elif isinstance(want, dict):
        assert list(got) == list(want), f"{path}: keys {list(got)} != {list(want)}"
        for k in want:
            assert_same(got[k], want[k], f"{path}[{k!r}]")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


def check_json(metadata: dict[str, Any], series: list[Any]) -> None:
    out = encode_json(metadata, series)
    assert isinstance(out, bytes)
    assert_same(json.loads(out), ref_doc(metadata, series, json_mode=True))


def check_msgpack_rows(metadata: dict[str, Any], series: list[Any]) -> None:
    out = encode_msgpack(metadata, series, "rows")
    want = msgpack.packb(ref_doc(metadata, series, json_mode=False))
    assert_same(msgpack.unpackb(out), msgpack.unpackb(want))
    assert out == want  # same headers and integer encodings as msgpack.packb


def same_bits(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a.view(np.uint64), b.view(np.uint64)))


def check_msgpack_columns(metadata: dict[str, Any], series: list[Any]) -> None:
    doc = msgpack.unpackb(encode_msgpack(metadata, series, layout="columns"))
    assert list(doc) == ["metadata", "series"]
    assert_same(
        doc["metadata"], msgpack.unpackb(msgpack.packb(ref_meta(metadata, json_mode=False)))
    )
    assert len(doc["series"]) == len(series)
    for got, item in zip(doc["series"], series, strict=True):
        assert got["name"] == item[0]
        if len(item) == 3:
            _, ts, values = item
            assert list(got) == ["name", "t", "v"]
            assert same_bits(np.frombuffer(got["t"], "<f8"), ts.astype(np.float64))
            assert same_bits(np.frombuffer(got["v"], "<f8"), values)
        elif "columns" in item[1]:
            aggs = item[1]
            flag = ["partialLast"] if aggs.get("partial") is True else []
            assert list(got) == ["name", "t", *aggs["columns"], *flag]
            assert same_bits(np.frombuffer(got["t"], "<f8"), aggs["ts"].astype(np.float64))
            for k in aggs["columns"]:
                assert same_bits(np.frombuffer(got[k], "<f8"), aggs[k].astype(np.float64))
        else:
            aggs = item[1]
            keys = ["name", "t", "avg", "min", "max", "sum", "count", "stddev"]
            edges = ["first", "last"] if "first" in aggs and "last" in aggs else []
            flag = ["partialLast"] if aggs.get("partial") is True else []
            assert list(got) == keys + edges + flag
            assert same_bits(np.frombuffer(got["t"], "<f8"), aggs["ts"].astype(np.float64))
            assert same_bits(np.frombuffer(got["count"], "<f8"), aggs["count"].astype(np.float64))
            for k in ("avg", "min", "max", "sum", "stddev", *edges):
                assert same_bits(np.frombuffer(got[k], "<f8"), aggs[k])
            if flag:
                assert got["partialLast"] is True


def iso_ms(t: int) -> str:
    d = EPOCH + timedelta(milliseconds=t)
    return f"{d.year:04d}-{d:%m-%dT%H:%M:%S}.{d.microsecond // 1000:03d}Z"


def epoch_ms(times: pd.Series) -> list[int]:
    return ((times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).tolist()


def csv_field(v: float) -> str:
    return "" if math.isnan(v) else repr(v)


def check_csv(series: list[Any]) -> None:
    """Parse ours with the csv module and compare field by field (times within datetime's range)."""
    rows = list(csv.reader(io.StringIO(encode_csv(series).decode(), newline="")))
    aggregated = bool(series) and len(series[0]) == 2
    if aggregated and "columns" in series[0][1]:
        check_csv_stats(series, rows)
        return
    header = ["time", "point", "count", "sum", "min", "max", "avg", "stddev"]
    assert rows[0] == (header if aggregated else ["time", "point", "value"])
    want: list[list[str]] = []
    for item in series:
        if len(item) == 3:
            name, ts, values = item
            for t, v in zip(ts.tolist(), values.tolist(), strict=True):
                want.append([iso_ms(t), name, csv_field(v)])
        else:
            name, aggs = item
            for i in range(len(aggs["ts"])):
                stats = [
                    csv_field(float(aggs[k][i])) for k in ("sum", "min", "max", "avg", "stddev")
                ]
                want.append([iso_ms(int(aggs["ts"][i])), name, str(int(aggs["count"][i])), *stats])
    got = rows[1:]
    assert len(got) == len(want)
    k = 3 if aggregated else 2  # time, point (, count) compare as text
    for g, w in zip(got, want, strict=True):
        assert g[:k] == w[:k]
        # floats: same value and sign (ours is ryu's text; repr may write exponents differently)
        for gf, wf in zip(g[k:], w[k:], strict=True):
            if wf == "":
                assert gf == ""
            else:
                assert math.copysign(1, float(gf)) == math.copysign(1, float(wf))
                assert float(gf) == float(wf), (gf, wf)


def check_csv_stats(series: list[Any], rows: list[list[str]]) -> None:
    """CSV of chosen statistics: `time,point`, the columns, `partial` (`true` on a
    series' running last bucket)."""
    names = list(series[0][1]["columns"])
    assert rows[0] == ["time", "point", *names, "partial"]
    want: list[list[str]] = []
    for name, stats in series:
        n = len(stats["ts"])
        for i in range(n):
            fields = [
                str(int(stats[k][i]))
                if stats[k].dtype == np.int64
                else csv_field(float(stats[k][i]))
                for k in names
            ]
            last = "true" if stats.get("partial") is True and i == n - 1 else "false"
            want.append([iso_ms(int(stats["ts"][i])), name, *fields, last])
    got = rows[1:]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[:2] == w[:2] and g[-1] == w[-1]
        for gf, wf in zip(g[2:-1], w[2:-1], strict=True):
            if wf in ("", "inf", "-inf") or not any(c in wf for c in ".e"):  # NaN, inf, counts
                assert gf == wf
            else:
                assert float(gf) == float(wf) and math.copysign(1, float(gf)) == math.copysign(
                    1, float(wf)
                ), (gf, wf)


def raw(name: str, ts: list[int], values: list[float]) -> tuple[str, I64, F64]:
    return name, np.array(ts, dtype=np.int64), np.array(values, dtype=np.float64)


def agg(name: str, n: int, seed: int = 0, nan_every: int = 0) -> tuple[str, dict[str, Any]]:
    rng = np.random.default_rng(seed)
    d: dict[str, Any] = {
        "ts": 1_704_067_200_000 + np.arange(n, dtype=np.int64) * 3_600_000,
        "count": rng.integers(0, 61, n).astype(np.int64),
    }
    for k in ("sum", "min", "max", "avg", "stddev", "m2", "first", "last"):
        d[k] = np.round(rng.normal(70, 5, n), 2)
    if nan_every:
        for k in ("min", "max", "avg", "stddev"):
            d[k][::nan_every] = np.nan
    return name, d


def check_all(metadata: dict[str, Any], series: list[Any]) -> None:
    check_json(metadata, series)
    check_msgpack_rows(metadata, series)
    check_msgpack_columns(metadata, series)


# ---------------------------------------------------------------- fixed cases


SEED_META = {
    "siteId": "ses_falls_city",
    "pointNames": ["VAV-707-DaTemp", "VAV-707-Damper"],
    "startTime": "2024-01-01T00:00:00Z",
    "endTime": "2025-01-01T00:00:00Z",
    "aggregation": "raw",
    "totalSamples": 876000,
}


def test_seed_document_bytes() -> None:
    """The seed's example, byte for byte as a compact json.dumps would write it."""
    series = [raw("VAV-707-DaTemp", [1704067200000, 1704067260000], [72.5, 72.6])]
    out = encode_json(SEED_META, series)
    doc = {
        "metadata": SEED_META,
        "series": [
            {"name": "VAV-707-DaTemp", "data": [[1704067200000, 72.5], [1704067260000, 72.6]]}
        ],
    }
    assert out == json.dumps(doc, separators=(",", ":")).encode()
    check_all(SEED_META, series)


def test_empty() -> None:
    check_all({}, [])
    check_all({}, [raw("a", [], [])])
    check_all({}, [agg("a", 0)])
    assert encode_json({}, []) == b'{"metadata":{},"series":[]}'
    assert encode_csv([]) == b"time,point,value\r\n"


def test_one_sample_each_kind() -> None:
    check_all({"n": 1}, [raw("p", [1704067200000], [72.5]), agg("q", 1)])


def test_aggregations_carry_first_last_and_mark_a_partial_last_bucket() -> None:
    name, full = agg("q", 5, seed=4)
    partial = {**full, "partial": True}
    without_edges = {k: v for k, v in full.items() if k not in ("first", "last")}
    check_all(
        {}, [(name, partial), ("r", without_edges), ("e", {**agg("e", 0)[1], "partial": True})]
    )
    rows = json.loads(encode_json({}, [(name, partial)]))["series"][0]["aggregations"]
    assert [r.get("partial") for r in rows] == [None, None, None, None, True]
    assert rows[0]["first"] == full["first"][0] and rows[4]["last"] == full["last"][4]
    with pytest.raises(TypeError, match="partial"):
        encode_json({}, [(name, {**full, "partial": np.ones(5)})])


def test_nan_inf_negative_zero_subnormal_extremes() -> None:
    ts = [I64_MIN, -1, 0, 1, I64_MAX, -86_400_000, 2**32, -(2**31) - 1]
    values = [
        math.nan,
        math.inf,
        -math.inf,
        -0.0,
        5e-324,
        2.2250738585072014e-308,
        1.7976931348623157e308,
        0.1,
    ]
    check_all({"nan": math.nan, "inf": math.inf, "-0": -0.0}, [raw("x", ts, values)])
    assert json.loads(encode_json({}, [raw("x", [0], [math.inf])]))["series"][0]["data"] == [
        [0, None]
    ]
    rows = msgpack.unpackb(encode_msgpack({}, [raw("x", [0, 1], [math.inf, math.nan])]))
    assert rows["series"][0]["data"] == [[0, math.inf], [1, None]]


def test_aggregates_with_empty_buckets() -> None:
    check_all({"interval": "1hr"}, [agg("VAV-707-DaTemp", 100, nan_every=7), agg("b", 3)])
    # m2 is not emitted; first and last come after the seed's columns
    doc = json.loads(encode_json({}, [agg("a", 2)]))
    assert list(doc["series"][0]["aggregations"][0]) == [
        "timestamp",
        "avg",
        "min",
        "max",
        "sum",
        "count",
        "stddev",
        "first",
        "last",
    ]


def test_mixed_kinds_in_one_document() -> None:
    check_all({}, [raw("r", [1, 2], [1.0, 2.0]), agg("g", 5), raw("s", [3], [math.nan])])


def test_strings_escaped() -> None:
    nasty = 'quote " backslash \\ nl \n cr \r tab \t nul \x00 us \x1f del \x7f é ☃ 😀 \u2028'
    check_all({nasty: [nasty, {"k": nasty}], "": ""}, [raw(nasty, [1], [1.0])])


def test_long_strings_and_many_keys() -> None:
    """Exercise str8/str16/str32, map16 and array16/32 headers."""
    meta = {f"k{i}": "x" * n for i, n in enumerate([31, 32, 255, 256, 65535, 65536])}
    meta |= {f"m{i}": i for i in range(20)}
    meta["list"] = list(range(70_000))
    n = 70_000
    check_all(meta, [raw("y" * 300, list(range(n)), [float(i) for i in range(n)])])


def test_metadata_types() -> None:
    meta = {
        "none": None,
        "t": True,
        "f": False,
        "ints": [
            0,
            -1,
            127,
            128,
            255,
            256,
            -32,
            -33,
            -129,
            2**31,
            -(2**31) - 1,
            I64_MIN,
            I64_MAX,
            2**64 - 1,
        ],
        "floats": [0.1, -2.5, 1e300, 1e-300, 1e16, 1e-7, 123456789.0],
        "tuple": (1, "a", (2.5,)),
        "nested": {"a": {"b": {"c": [[], {}]}}},
        "np_float64": np.float64(1.25),  # a float subclass
    }
    check_all(meta, [])


def test_depth_limit() -> None:
    ok: Any = 1
    for _ in range(63):
        ok = [ok]
    check_json({"x": ok}, [])  # 64 containers including the metadata dict
    with pytest.raises(ValueError, match="nested deeper than 64"):
        encode_json({"x": [ok]}, [])
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(ValueError, match="nested deeper than 64"):
        encode_msgpack({"c": cyclic}, [])


def test_short_decimal_fast_path_matches_repr() -> None:
    """Values with few decimals take a fast path; the text must be what ryu / repr give."""
    rng = np.random.default_rng(5)
    vals = np.concatenate(
        [np.round(rng.normal(70, 30, 20_000), d) for d in range(6)]
        + [rng.integers(-(10**15), 10**15, 5_000) / 10.0 ** rng.integers(0, 8, 5_000)]
    )
    ts = np.arange(len(vals), dtype=np.int64)
    data = json.loads(encode_json({}, [("v", ts, vals)]))["series"][0]["data"]
    assert [v for _, v in data] == vals.tolist()
    text = encode_json({}, [("v", ts[:2000], vals[:2000])]).decode()
    for v in vals[:2000].tolist():
        assert json.dumps(v) in text


def test_readonly_and_frombuffer_arrays() -> None:
    ts = np.frombuffer(np.arange(5, dtype=np.int64).tobytes(), dtype=np.int64)
    v = np.arange(5, dtype=np.float64)
    v.flags.writeable = False
    check_all({}, [("p", ts, v)])


def test_concurrent_calls_agree() -> None:
    """The GIL is released around the kernels; concurrent calls must not interfere."""
    n = 200_000
    ts = 1_704_067_200_000 + np.arange(n, dtype=np.int64) * 60_000
    v = np.round(np.random.default_rng(1).normal(70, 5, n), 1)
    series = [("a", ts, v), ("b", ts, v)]
    expect = [encode_json({}, series), encode_msgpack({}, series), encode_csv(series)]
    results: list[list[bytes]] = []

    def work() -> None:
        results.append([encode_json({}, series), encode_msgpack({}, series), encode_csv(series)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expect] * 4


# ---------------------------------------------------------------- CSV


def test_csv_times_and_values() -> None:
    series = [
        raw(
            "p",
            [0, -1, 951_782_400_000, 1_709_251_199_123, DT_MIN_MS, DT_MAX_MS],
            [1.0, math.nan, math.inf, -math.inf, -0.0, 1e-7],
        )
    ]
    text = encode_csv(series).decode()
    assert text == (
        "time,point,value\r\n"
        "1970-01-01T00:00:00.000Z,p,1.0\r\n"
        "1969-12-31T23:59:59.999Z,p,\r\n"
        "2000-02-29T00:00:00.000Z,p,inf\r\n"
        "2024-02-29T23:59:59.123Z,p,-inf\r\n"
        "0001-01-01T00:00:00.000Z,p,-0.0\r\n"
        "9999-12-31T23:59:59.999Z,p,1e-7\r\n"
    )
    check_csv(series)


def test_csv_expanded_years() -> None:
    text = encode_csv(
        [raw("p", [I64_MIN, -62_167_219_200_001, 253_402_300_800_000, I64_MAX], [1.0] * 4)]
    )
    assert text.decode().splitlines()[1:] == [
        "-292275055-05-16T16:47:04.192Z,p,1.0",
        "-000001-12-31T23:59:59.999Z,p,1.0",
        "+010000-01-01T00:00:00.000Z,p,1.0",
        "+292278994-08-17T07:12:55.807Z,p,1.0",
    ]


def test_csv_quoting_matches_csv_module() -> None:
    names = ["plain", "a,b", 'say "hi"', "two\nlines", "cr\rhere", " spaced ", "é☃"]
    series = [raw(n, [i], [float(i)]) for i, n in enumerate(names)]
    check_csv(series)
    ours = encode_csv(series).decode()
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["time", "point", "value"])
    for i, n in enumerate(names):
        w.writerow([iso_ms(i), n, repr(float(i))])
    assert ours == buf.getvalue()


def test_csv_aggregates_and_pandas() -> None:
    series = [agg("a", 50, nan_every=5), agg("b,c", 20, seed=1)]
    check_csv(series)
    df = pd.read_csv(io.BytesIO(encode_csv(series)))
    assert list(df.columns) == ["time", "point", "count", "sum", "min", "max", "avg", "stddev"]
    assert df["point"].tolist() == ["a"] * 50 + ["b,c"] * 20
    times = pd.to_datetime(df["time"], utc=True, format="ISO8601")
    want_ts = np.concatenate([series[0][1]["ts"], series[1][1]["ts"]])
    assert epoch_ms(times) == want_ts.tolist()
    for k in ("sum", "min", "max", "avg", "stddev"):
        want = np.concatenate([series[0][1][k], series[1][1][k]])
        np.testing.assert_array_equal(df[k].to_numpy(), want)


def test_csv_raw_with_pandas() -> None:
    n = 10_000
    ts = 1_704_067_200_000 + np.arange(n, dtype=np.int64) * 60_000
    v = np.round(np.random.default_rng(2).normal(70, 5, n), 2)
    v[::13] = np.nan
    v[5] = np.inf
    df = pd.read_csv(io.BytesIO(encode_csv([("VAV-1", ts, v)])))
    assert epoch_ms(pd.to_datetime(df["time"], utc=True, format="ISO8601")) == ts.tolist()
    np.testing.assert_array_equal(df["value"].to_numpy(), v)


def test_csv_rejects_mixed_kinds() -> None:
    with pytest.raises(ValueError, match=r'"r" is raw and "g" is aggregated'):
        encode_csv([raw("r", [1], [1.0]), agg("g", 1)])


# ---------------------------------------------------------------- errors


def test_length_mismatch_names_the_series() -> None:
    with pytest.raises(
        ValueError, match=r"series \"VAV-7\": 'ts' has 2 elements but 'values' has 1"
    ):
        encode_json({}, [raw("VAV-7", [1, 2], [1.0])])
    name, d = agg("A", 3)
    d["avg"] = d["avg"][:2]
    for fn in (
        lambda s: encode_msgpack({}, s),
        lambda s: encode_msgpack({}, s, "columns"),
        encode_csv,
    ):
        with pytest.raises(ValueError, match=r"series \"A\": 'ts' has 3 elements but 'avg' has 2"):
            fn([(name, d)])


def test_missing_aggregate_keys() -> None:
    name, d = agg("A", 3)
    del d["avg"], d["stddev"]
    with pytest.raises(
        ValueError, match=r'series "A": aggregates dict is missing key\(s\) "avg", "stddev"'
    ):
        encode_json({}, [(name, d)])


def test_metadata_errors_name_path_and_type() -> None:
    # A value of an unsupported type is a TypeError, a bad value a ValueError.
    cases: list[tuple[dict[Any, Any], type[Exception], str]] = [
        ({1: "x"}, TypeError, r"metadata: keys must be str, got int key 1"),
        (
            {"a": {"b": [1, {2: 3}]}},
            TypeError,
            r'metadata\["a"\]\["b"\]\[1\]: keys must be str, got int key 2',
        ),
        ({"a": np.int64(1)}, TypeError, r'metadata\["a"\]: unsupported type numpy.int64'),
        ({"a": [{1, 2}]}, TypeError, r'metadata\["a"\]\[0\]: unsupported type set'),
        (
            {"a": datetime(2024, 1, 1)},
            TypeError,
            r'metadata\["a"\]: unsupported type datetime.datetime',
        ),
        ({"a": b"bytes"}, TypeError, r'metadata\["a"\]: unsupported type bytes'),
        (
            {"a": 2**64},
            ValueError,
            r'metadata\["a"\]: integer 18446744073709551616 does not fit in 64 bits',
        ),
        ({"a": -(2**63) - 1}, ValueError, r"does not fit in 64 bits"),
        ({"a": "\ud800"}, ValueError, r'metadata\["a"\]: string is not valid UTF-8'),
    ]
    for meta, kind, pattern in cases:
        for fn in (encode_json, encode_msgpack):
            with pytest.raises(kind, match=pattern) as info:
                fn(meta, [])
            assert type(info.value) is kind
    with pytest.raises(TypeError, match="metadata must be a dict, got list"):
        encode_json([], [])  # type: ignore[arg-type]


def test_array_errors() -> None:
    ts = np.arange(10, dtype=np.int64)
    v = np.arange(10, dtype=np.float64)
    # Wrong types, dtypes, dimensions and memory layouts are TypeErrors.
    with pytest.raises(TypeError, match=r'series "p": "ts" is not a contiguous array'):
        encode_json({}, [("p", ts[::2], v[::2])])
    with pytest.raises(TypeError, match=r'series "p": "values" is not a contiguous array'):
        encode_msgpack({}, [("p", ts[:5], v[::2])], "columns")
    with pytest.raises(
        TypeError,
        match=r'"values" must be a 1-D float64 numpy array, '
        r"got numpy.ndarray of 1 dimension\(s\) and dtype float32",
    ):
        encode_json({}, [("p", ts, v.astype(np.float32))])
    with pytest.raises(
        TypeError,
        match=r'"ts" must be a 1-D int64 numpy array, '
        r"got numpy.ndarray of 1 dimension\(s\) and dtype int32",
    ):
        encode_csv([("p", ts.astype(np.int32), v)])
    with pytest.raises(
        TypeError, match=r'"ts" must be a 1-D int64 numpy array, got numpy.ndarray of 2 dimension'
    ):
        encode_json({}, [("p", ts.reshape(2, 5), v)])
    with pytest.raises(TypeError, match=r'"values" must be a 1-D float64 numpy array, got list'):
        encode_json({}, [("p", ts, [1.0] * 10)])
    name, d = agg("A", 3)
    d["count"] = d["count"].astype(np.float64)
    with pytest.raises(TypeError, match=r'series "A": "count" must be a 1-D int64'):
        encode_json({}, [(name, d)])


def test_series_shape_errors() -> None:
    ts = np.arange(3, dtype=np.int64)
    v = np.arange(3, dtype=np.float64)
    with pytest.raises(
        TypeError,
        match=r"series\[0\] must be a tuple \(name, ts, values\) "
        r"or \(name, aggregates: dict\), got tuple",
    ):
        encode_json({}, [("p",)])
    with pytest.raises(TypeError, match=r"series\[1\] must be a tuple .* got dict"):
        encode_json({}, [("p", ts, v), {"name": "q"}])
    with pytest.raises(TypeError, match=r"got tuple"):
        encode_json({}, [("p", [1, 2])])
    with pytest.raises(TypeError, match=r"series\[0\]: name must be str, got int"):
        encode_json({}, [(7, ts, v)])
    with pytest.raises(TypeError, match=r"series must be a list of .* got str"):
        encode_json({}, "abc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"series\[0\]: name is not valid UTF-8"):
        encode_json({}, [("\ud800", ts, v)])
    # lists work as items and tuples as the container
    check_all({}, [["p", ts, v]])  # type: ignore[list-item]
    assert encode_json({}, (("p", ts, v),)) == encode_json({}, [("p", ts, v)])


def test_unknown_layout() -> None:
    with pytest.raises(ValueError, match=r"layout must be one of 'rows', 'columns', got \"cols\""):
        encode_msgpack({}, [], "cols")
    assert encode_msgpack({}, [], layout="rows") == encode_msgpack({}, [])


# ---------------------------------------------------------------- property tests


float_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.integers(-(10**9), 10**9).map(lambda m: m / 100),  # short decimals: the fast path
    st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1e11, 99_999_999_999.9999]),
)
ts_values = st.one_of(
    st.integers(I64_MIN, I64_MAX),
    st.integers(1_000_000_000_000, 9_999_999_999_999),  # the 13-digit fast path
    st.integers(-(2**40), 2**40),
    st.sampled_from([I64_MIN, I64_MAX, -1, 0, 127, 128, -32, -33, 2**32, -(2**31) - 1]),
)
names = st.text(max_size=40)
meta_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(I64_MIN, 2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
metadata = st.dictionaries(
    st.text(max_size=20),
    st.recursive(
        meta_scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.tuples(children, children),
            st.dictionaries(st.text(max_size=10), children, max_size=5),
        ),
        max_leaves=25,
    ),
    max_size=8,
)


@st.composite
def raw_series(
    draw: st.DrawFn, ts_elements: st.SearchStrategy[int] = ts_values
) -> tuple[str, I64, F64]:
    n = draw(st.integers(0, 40))
    ts = draw(hnp.arrays(np.int64, n, elements=ts_elements))
    v = draw(hnp.arrays(np.float64, n, elements=float_values))
    return draw(names), ts, v


@st.composite
def agg_series(
    draw: st.DrawFn, ts_elements: st.SearchStrategy[int] = ts_values
) -> tuple[str, dict[str, Any]]:
    n = draw(st.integers(0, 20))
    d: dict[str, Any] = {
        "ts": draw(hnp.arrays(np.int64, n, elements=ts_elements)),
        "count": draw(hnp.arrays(np.int64, n, elements=ts_values)),
    }
    for k in ("sum", "min", "max", "avg", "stddev", "m2", "first", "last"):
        d[k] = draw(hnp.arrays(np.float64, n, elements=float_values))
    return draw(names), d


csv_ts = st.integers(DT_MIN_MS, DT_MAX_MS)
STAT_NAMES = AGG_STATS


@st.composite
def stats_series(
    draw: st.DrawFn,
    ts_elements: st.SearchStrategy[int] = ts_values,
    columns: tuple[str, ...] | None = None,
) -> tuple[str, dict[str, Any]]:
    """A series of chosen statistics: random columns (count int64, the rest float64), a
    random value column and partial flag."""
    n = draw(st.integers(0, 20))
    if columns is None:
        columns = tuple(
            draw(st.lists(st.sampled_from(STAT_NAMES), min_size=1, max_size=6, unique=True))
        )
    d: dict[str, Any] = {
        "ts": draw(hnp.arrays(np.int64, n, elements=ts_elements)),
        "columns": columns,
    }
    for k in columns:
        if k == "count":
            d[k] = draw(hnp.arrays(np.int64, n, elements=ts_values))
        else:
            d[k] = draw(hnp.arrays(np.float64, n, elements=float_values))
    d["value"] = draw(st.sampled_from(columns))
    d["partial"] = draw(st.booleans())
    return draw(names), d


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(metadata, st.lists(st.one_of(raw_series(), agg_series(), stats_series()), max_size=4))
def test_property_stats_series(meta: dict[str, Any], series: list[Any]) -> None:
    check_all(meta, series)


@SETTINGS
@given(
    st.lists(st.sampled_from(STAT_NAMES), min_size=1, max_size=6, unique=True).flatmap(
        lambda cols: st.lists(stats_series(csv_ts, tuple(cols)), max_size=4)
    )
)
def test_property_csv_stats(series: list[Any]) -> None:
    check_csv(series)


@SETTINGS
@given(metadata, st.lists(st.one_of(raw_series(), agg_series()), max_size=4))
def test_property_json(meta: dict[str, Any], series: list[Any]) -> None:
    check_json(meta, series)


@SETTINGS
@given(metadata, st.lists(st.one_of(raw_series(), agg_series()), max_size=4))
def test_property_msgpack_rows(meta: dict[str, Any], series: list[Any]) -> None:
    check_msgpack_rows(meta, series)


@SETTINGS
@given(metadata, st.lists(st.one_of(raw_series(), agg_series()), max_size=4))
def test_property_msgpack_columns(meta: dict[str, Any], series: list[Any]) -> None:
    check_msgpack_columns(meta, series)


@SETTINGS
@given(
    st.one_of(st.lists(raw_series(csv_ts), max_size=4), st.lists(agg_series(csv_ts), max_size=4))
)
def test_property_csv(series: list[Any]) -> None:
    check_csv(series)
