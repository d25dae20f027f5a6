"""encode_head / encode_part / encode_tail: a document written series by series.

The property: `head + b"".join(parts) + tail` is byte for byte the whole-document
encoding (`encode_json`, `encode_msgpack` in both layouts, `encode_csv`) of the same
series, for random metadata and series (empty, one sample, NaN and infinities, many
series, aggregates). The MessagePack head also carries the series array header, checked
against `msgpack.packb` for every header size up to 65536 series.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from acechart._core import (
    encode_csv,
    encode_head,
    encode_json,
    encode_msgpack,
    encode_part,
    encode_tail,
)

FORMATS = ("json", "msgpack", "csv")
LAYOUTS = ("rows", "columns")
AGG_KEYS = ("ts", "count", "sum", "min", "max", "avg", "stddev")


def whole(fmt: str, metadata: dict[str, Any], series: list[Any], layout: str) -> bytes:
    if fmt == "json":
        return encode_json(metadata, series)
    if fmt == "msgpack":
        return encode_msgpack(metadata, series, layout)  # type: ignore[arg-type]
    return encode_csv(series)


def joined(fmt: str, metadata: dict[str, Any], series: list[Any], layout: str) -> bytes:
    aggregated = bool(series) and isinstance(series[0][1], dict)
    columns = series[0][1].get("columns") if aggregated else None
    head = encode_head(fmt, metadata, len(series), layout, aggregated=aggregated, columns=columns)  # type: ignore[arg-type]
    parts = [encode_part(fmt, item, i, layout) for i, item in enumerate(series)]  # type: ignore[arg-type]
    return head + b"".join(parts) + encode_tail(fmt)  # type: ignore[arg-type]


def check(metadata: dict[str, Any], series: list[Any]) -> None:
    aggregated = [isinstance(item[1], dict) for item in series]
    for fmt in FORMATS:
        if fmt == "csv" and len(set(aggregated)) > 1:
            continue  # one kind per CSV document
        for layout in LAYOUTS:
            assert joined(fmt, metadata, series, layout) == whole(fmt, metadata, series, layout), (
                fmt,
                layout,
            )


# ---------------------------------------------------------------- strategies

names = st.text(max_size=12)
floats = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def raw_items(draw: st.DrawFn) -> tuple[str, npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    n = draw(st.sampled_from([0, 1, draw(st.integers(0, 60))]))
    ts = draw(hnp.arrays(np.int64, n, elements=st.integers(-(2**62), 2**62)))
    values = draw(hnp.arrays(np.float64, n, elements=floats))
    return draw(names), ts, values


@st.composite
def agg_items(draw: st.DrawFn) -> tuple[str, dict[str, npt.NDArray[Any]]]:
    n = draw(st.integers(0, 20))
    d: dict[str, npt.NDArray[Any]] = {
        "ts": draw(hnp.arrays(np.int64, n, elements=st.integers(-(2**50), 2**50))),
        "count": draw(hnp.arrays(np.int64, n, elements=st.integers(0, 2**40))),
    }
    for key in AGG_KEYS[2:]:
        d[key] = draw(hnp.arrays(np.float64, n, elements=floats))
    d["m2"] = np.zeros(n)  # not encoded
    return draw(names), d


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
metadata_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
metadatas = st.dictionaries(st.text(max_size=8), metadata_values, max_size=5)


# ---------------------------------------------------------------- the property


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metadatas, st.lists(raw_items(), max_size=20))
def test_raw_parts_join_to_the_document(metadata: dict[str, Any], series: list[Any]) -> None:
    check(metadata, series)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metadatas, st.lists(agg_items(), max_size=8))
def test_aggregate_parts_join_to_the_document(metadata: dict[str, Any], series: list[Any]) -> None:
    check(metadata, series)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metadatas, st.lists(raw_items() | agg_items(), max_size=10))
def test_mixed_parts_join_to_the_document(metadata: dict[str, Any], series: list[Any]) -> None:
    check(metadata, series)


@pytest.mark.parametrize("n_series", [0, 1, 15, 16, 17])
def test_series_counts_around_header_sizes(n_series: int) -> None:
    rng = np.random.default_rng(n_series)
    series = []
    for i in range(n_series):
        n = int(rng.integers(0, 5))
        values = rng.normal(size=n)
        values[::3] = np.nan
        series.append((f"p{i}", rng.integers(0, 2**41, n).astype(np.int64), values))
    check({"siteId": "s", "n": n_series}, series)


@pytest.mark.parametrize("n_series", [0, 1, 15, 16, 65535, 65536])
def test_msgpack_head_matches_packb(n_series: int) -> None:
    """The head is the packb document up to and including its series array header."""
    metadata = {"siteId": "s", "points": ["a", "b"], "n": -3, "f": 0.5, "ok": True, "none": None}
    # Each None packs to one byte, so the last n_series bytes are exactly the elements.
    doc = msgpack.packb({"metadata": metadata, "series": [None] * n_series})
    want = doc[: len(doc) - n_series]
    for layout in LAYOUTS:
        assert encode_head("msgpack", metadata, n_series, layout) == want  # type: ignore[arg-type]
    # The other formats do not depend on the count.
    assert encode_head("json", metadata, n_series) == encode_json(metadata, [])[:-2]
    assert encode_head("csv", metadata, n_series) == b"time,point,value\r\n"
    assert encode_head("csv", metadata, n_series, aggregated=True) == (
        b"time,point,count,sum,min,max,avg,stddev\r\n" if n_series else b"time,point,value\r\n"
    )
    assert encode_head("csv", metadata, n_series, columns=["twa", "count"]) == (
        b"time,point,twa,count,partial\r\n" if n_series else b"time,point,value\r\n"
    )


def test_statistics_series_in_parts() -> None:
    """Series of chosen statistics: head (naming their columns for CSV), parts and tail
    are the whole document in every format; bad columns fail in the head too."""
    ts = np.array([0, 3_600_000, 7_200_000], np.int64)
    series = [
        (
            name,
            {
                "ts": ts,
                "columns": ("delta", "count"),
                "delta": np.array([0.5, np.nan, -0.0]),
                "count": np.array([3, 0, 7], np.int64),
                "partial": partial,
            },
        )
        for name, partial in (("a", False), ("b,c", True))
    ]
    check({"interval": "1hr"}, series)
    with pytest.raises(ValueError, match="none of"):
        encode_head("csv", {}, 1, columns=["point"])
    with pytest.raises(ValueError, match="at least one column"):
        encode_head("csv", {}, 1, columns=[])


def test_pieces_by_hand() -> None:
    ts = np.array([1, 2], np.int64)
    v = np.array([0.5, np.nan])
    assert encode_head("json", {"a": 1}, 2) == b'{"metadata":{"a":1},"series":['
    assert encode_part("json", ("p", ts, v), 0) == b'{"name":"p","data":[[1,0.5],[2,null]]}'
    assert encode_part("json", ("p", ts, v), 1) == b',{"name":"p","data":[[1,0.5],[2,null]]}'
    assert encode_tail("json") == b"]}"
    assert encode_tail("msgpack") == b"" and encode_tail("csv") == b""
    assert encode_part("csv", ("p", ts, v), 5) == (
        b"1970-01-01T00:00:00.001Z,p,0.5\r\n1970-01-01T00:00:00.002Z,p,\r\n"
    )
    # msgpack parts do not depend on the position; lists work as items
    part = encode_part("msgpack", ["p", ts, v], 3, "columns")  # type: ignore[arg-type]
    assert part == encode_part("msgpack", ("p", ts, v), 0, "columns")
    assert msgpack.unpackb(part) == {
        "name": "p",
        "t": ts.astype(np.float64).tobytes(),
        "v": v.tobytes(),
    }


def test_large_parts_from_threads_agree() -> None:
    """Above the row threshold the GIL is released; concurrent calls give the same bytes."""
    n = 50_000
    ts = np.arange(n, dtype=np.int64) * 60_000
    values = np.sin(np.arange(n) / 100)
    item = ("p", ts, values)
    expect = [encode_part(fmt, item, 1, layout) for fmt in FORMATS for layout in LAYOUTS]  # type: ignore[arg-type]
    results: list[list[bytes]] = []

    def work() -> None:
        results.append([encode_part(fmt, item, 1, layout) for fmt in FORMATS for layout in LAYOUTS])  # type: ignore[arg-type]

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expect] * 4
    assert expect[0] == b"," + encode_json({}, [item])[len(b'{"metadata":{},"series":[') : -2]


# ---------------------------------------------------------------- errors


def test_errors_are_typed_and_name_the_argument() -> None:
    ts = np.arange(3, dtype=np.int64)
    v = np.zeros(3)
    with pytest.raises(
        ValueError, match=r"format must be one of 'json', 'msgpack', 'csv', got \"xml\""
    ):
        encode_head("xml", {}, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="format must be one of"):
        encode_part("parquet", ("p", ts, v), 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="format must be one of"):
        encode_tail("JSON")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"layout must be one of 'rows', 'columns', got \"cols\""):
        encode_head("msgpack", {}, 0, "cols")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="layout must be one of"):
        encode_part("msgpack", ("p", ts, v), 0, "cols")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_series must be a non-negative integer, got -1"):
        encode_head("msgpack", {}, -1)
    with pytest.raises(ValueError, match="index must be a non-negative integer, got -2"):
        encode_part("json", ("p", ts, v), -2)
    with pytest.raises(ValueError, match=r"exceeds the MessagePack limit"):
        encode_head("msgpack", {}, 2**32)
    with pytest.raises(ValueError, match=r"series \"p\": 'ts' has 3 elements but 'values' has 2"):
        encode_part("csv", ("p", ts, v[:2]), 0)
    with pytest.raises(ValueError, match=r'series "A": aggregates dict is missing key\(s\) "avg"'):
        encode_part("json", ("A", {k: v for k in AGG_KEYS if k != "avg"}), 0)
    with pytest.raises(ValueError, match="nested deeper than 64"):
        deep: Any = 1
        for _ in range(70):
            deep = [deep]
        encode_head("json", {"x": deep}, 0)
    # wrong types
    with pytest.raises(TypeError, match="metadata must be a dict, got list"):
        encode_head("json", [], 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"metadata\[\"a\"\]: unsupported type set"):
        encode_head("msgpack", {"a": {1}}, 0)
    with pytest.raises(TypeError, match=r"series\[4\] must be a tuple \(name, ts, values\)"):
        encode_part("json", "p", 4)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r'series "p": "ts" must be a 1-D int64 numpy array'):
        encode_part("json", ("p", ts.astype(np.int32), v), 0)
    with pytest.raises(TypeError, match=r'series "p": "values" is not a contiguous array'):
        encode_part("msgpack", ("p", ts[:2], np.zeros(4)[::2]), 0)
    with pytest.raises(TypeError, match="format"):
        encode_tail(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n_series"):
        encode_head("json", {}, "3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="positional"):
        encode_head("csv", {}, 1, "rows", True)  # type: ignore[misc]
