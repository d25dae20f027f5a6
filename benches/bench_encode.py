"""Response encoding: acechart vs the best a Python service would otherwise do.

Three groups per data size, each contender producing the same kind of body:

- JSON rows (`{"metadata":..,"series":[{"name":..,"data":[[ts,v],..]}]}`): ours, orjson
  with OPT_SERIALIZE_NUMPY on an (n, 2) float64 array per series (the fastest library
  route; note it writes timestamps as floats, `1704067200000.0`), and the seed's route
  (Python lists of pairs, then orjson).
- MessagePack rows (the same document): ours, ormsgpack with OPT_SERIALIZE_NUMPY on the
  (n, 2) arrays, and the seed's route (Python lists, then msgpack).
- MessagePack columns (`t`/`v` as little-endian float64): ours (`bin` fields), numpy
  `tobytes` + msgpack (the same bytes), and ormsgpack with OPT_SERIALIZE_NUMPY (arrays
  of float64 instead of `bin`).
- Arrow IPC stream, `series` layout (a record batch per series: dictionary `point`,
  `timestamp[ms, UTC]` `time`, float64 `value`, the metadata in the schema): ours
  (`encode_arrow`) and pyarrow building the same stream from the same numpy arrays
  (zero-copy arrays, `ipc.new_stream` into a buffer, then bytes, as a response needs).
- Arrow IPC stream, `wide` layout (one table: the union of the times and a nullable
  column per point): ours, and numpy (`union1d`, `searchsorted`, a scatter and a
  validity mask per point) + pyarrow writing the table.

Sizes: 1 point x 365 days of 1-minute data (525,600 samples) and 50 points x 365 days
(26.3 M samples). The Python-list routes would take minutes and gigabytes at 26.3 M
samples, so they run on 50 points x 30 days (2.16 M samples) instead, in groups of their
own where every other contender runs too. Each benchmark records `samples` and
`samples_per_s` in extra_info. `test_bytes_per_sample` prints the body size per sample
of each format, raw and zstd-compressed (level 3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt
import orjson
import ormsgpack
import pyarrow as pa
import pytest
import zstandard

from acechart import _core
from benches.data import NAMES, START_MS, year_series

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Series = list[tuple[str, I64, F64]]

DAY_MINUTES = 1440


def metadata(series: Series) -> dict[str, Any]:
    n = sum(len(ts) for _, ts, _ in series)
    return {
        "siteId": "ses_falls_city",
        "pointNames": [name for name, _, _ in series],
        "startTime": "2024-01-01T00:00:00Z",
        "endTime": "2025-01-01T00:00:00Z",
        "aggregation": "raw",
        "totalSamples": n,
    }


def dataset(points: int, days: int) -> Series:
    n = days * DAY_MINUTES
    return [(NAMES[p], ts[:n], v[:n]) for p, (ts, v) in enumerate(year_series(points))]


def pairs(series: Series) -> dict[str, list[tuple[str, npt.NDArray[np.float64]]]]:
    """The (n, 2) float64 arrays the numpy-aware libraries take (built outside the timing)."""
    return {"pairs": [(name, np.column_stack([ts, v])) for name, ts, v in series]}


# ---------------------------------------------------------------- contenders


def json_ours(meta: dict[str, Any], series: Series, _: Any) -> bytes:
    return _core.encode_json(meta, series)


def json_orjson_numpy(meta: dict[str, Any], _: Series, prep: Any) -> bytes:
    doc = {"metadata": meta, "series": [{"name": n, "data": a} for n, a in prep["pairs"]]}
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def seed_rows(meta: dict[str, Any], series: Series) -> dict[str, Any]:
    """The seed's document: a Python list of [ts, value] pairs per series (NaN -> None)."""
    out = []
    for name, ts, v in series:
        vals = [None if x != x else x for x in v.tolist()]
        out.append({"name": name, "data": [list(p) for p in zip(ts.tolist(), vals, strict=True)]})
    return {"metadata": meta, "series": out}


def json_seed_lists(meta: dict[str, Any], series: Series, _: Any) -> bytes:
    return orjson.dumps(seed_rows(meta, series))


def rows_ours(meta: dict[str, Any], series: Series, _: Any) -> bytes:
    return _core.encode_msgpack(meta, series, "rows")


def rows_ormsgpack_numpy(meta: dict[str, Any], _: Series, prep: Any) -> bytes:
    doc = {"metadata": meta, "series": [{"name": n, "data": a} for n, a in prep["pairs"]]}
    return ormsgpack.packb(doc, option=ormsgpack.OPT_SERIALIZE_NUMPY)


def rows_seed_lists(meta: dict[str, Any], series: Series, _: Any) -> bytes:
    return msgpack.packb(seed_rows(meta, series))


def columns_ours(meta: dict[str, Any], series: Series, _: Any) -> bytes:
    return _core.encode_msgpack(meta, series, "columns")


def columns_numpy_tobytes(meta: dict[str, Any], series: Series, _: Any) -> bytes:
    cols = [
        {"name": n, "t": ts.astype("<f8").tobytes(), "v": np.asarray(v, "<f8").tobytes()}
        for n, ts, v in series
    ]
    return msgpack.packb({"metadata": meta, "series": cols})


def columns_ormsgpack_numpy(meta: dict[str, Any], series: Series, _: Any) -> bytes:
    cols = [{"name": n, "t": ts.astype(np.float64), "v": v} for n, ts, v in series]
    return ormsgpack.packb({"metadata": meta, "series": cols}, option=ormsgpack.OPT_SERIALIZE_NUMPY)


def arrow_ours(meta: dict[str, Any], series: Series, _: Any) -> bytes:
    return _core.encode_arrow(meta, series, "series")


STAMP = pa.timestamp("ms", tz="UTC")


def _arrow_metadata(meta: dict[str, Any], series: Series) -> dict[str, str]:
    listing = [{"name": n, "rows": len(ts)} for n, ts, _ in series]
    return {
        "acechart:metadata": orjson.dumps(meta).decode(),
        "acechart:series": orjson.dumps(listing).decode(),
    }


def _stream(schema: pa.Schema, batches: list[pa.RecordBatch]) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def arrow_pyarrow(meta: dict[str, Any], series: Series, _: Any) -> bytes:
    schema = pa.schema(
        [
            pa.field("point", pa.dictionary(pa.int32(), pa.utf8()), nullable=False),
            pa.field("time", STAMP, nullable=False),
            pa.field("value", pa.float64(), nullable=False),
        ],
        metadata=_arrow_metadata(meta, series),
    )
    names = pa.array([n for n, _, _ in series], pa.utf8())
    batches = []
    for i, (_, ts, v) in enumerate(series):
        keys = pa.array(np.full(len(ts), i, np.int32))
        columns = [
            pa.DictionaryArray.from_arrays(keys, names),
            pa.Array.from_buffers(STAMP, len(ts), [None, pa.py_buffer(ts)]),
            pa.array(v),
        ]
        batches.append(pa.RecordBatch.from_arrays(columns, schema=schema))
    return _stream(schema, batches)


def wide_ours(meta: dict[str, Any], series: Series, _: Any) -> bytes:
    return _core.encode_arrow(meta, series, "wide")


def wide_numpy_pyarrow(meta: dict[str, Any], series: Series, _: Any) -> bytes:
    union = series[0][1] if series else np.zeros(0, np.int64)
    for _, ts, _ in series[1:]:
        if not np.array_equal(ts, union):
            union = np.union1d(union, ts)
    fields = [pa.field("time", STAMP, nullable=False)]
    columns = [pa.Array.from_buffers(STAMP, len(union), [None, pa.py_buffer(union)])]
    for name, ts, v in series:
        fields.append(pa.field(name, pa.float64()))
        if len(ts) == len(union) and np.array_equal(ts, union):
            columns.append(pa.array(v))
            continue
        full = np.zeros(len(union))
        at = np.searchsorted(union, ts)
        full[at] = v
        missing = np.ones(len(union), bool)
        missing[at] = False
        columns.append(pa.array(full, mask=missing))
    schema = pa.schema(fields, metadata=_arrow_metadata(meta, series))
    return _stream(schema, [pa.RecordBatch.from_arrays(columns, schema=schema)])


Route = Callable[[dict[str, Any], Series, Any], bytes]
GROUPS: dict[str, dict[str, Route]] = {
    "encode json rows": {
        "acechart": json_ours,
        "orjson numpy (n,2) float64": json_orjson_numpy,
        "seed: python lists + orjson": json_seed_lists,
    },
    "encode msgpack rows": {
        "acechart": rows_ours,
        "ormsgpack numpy (n,2) float64": rows_ormsgpack_numpy,
        "seed: python lists + msgpack": rows_seed_lists,
    },
    "encode msgpack columns": {
        "acechart": columns_ours,
        "numpy tobytes + msgpack (same bytes)": columns_numpy_tobytes,
        "ormsgpack numpy arrays (not bin)": columns_ormsgpack_numpy,
    },
    "encode arrow series": {
        "acechart": arrow_ours,
        "pyarrow from numpy (same stream)": arrow_pyarrow,
    },
    "encode arrow wide": {
        "acechart": wide_ours,
        "numpy union + pyarrow (same table)": wide_numpy_pyarrow,
    },
}
SLOW = {"seed: python lists + orjson", "seed: python lists + msgpack"}
SIZES = [(1, 365), (50, 30), (50, 365)]
CASES = [
    (group, impl, points, days)
    for group, routes in GROUPS.items()
    for points, days in SIZES
    for impl in routes
    if not (impl in SLOW and points * days > 50 * 30)
]


@pytest.mark.parametrize(
    ("group", "impl", "points", "days"),
    CASES,
    ids=[f"{g.split()[-2]}-{g.split()[-1]}-{p}x{d}-{i}" for g, i, p, d in CASES],
)
def test_encode(benchmark: Any, group: str, impl: str, points: int, days: int) -> None:
    series = dataset(points, days)
    meta = metadata(series)
    prep = pairs(series) if "(n,2)" in impl else None
    n = sum(len(ts) for _, ts, _ in series)
    benchmark.group = f"{group}: {points} point(s) x {days} days of 1min ({n:,} samples)"
    benchmark.extra_info.update(impl=impl, samples=n)
    rounds = 5 if n < 1_000_000 else 3 if n < 5_000_000 else 2
    out = benchmark.pedantic(
        GROUPS[group][impl], args=(meta, series, prep), rounds=rounds, iterations=1
    )
    assert isinstance(out, bytes) and len(out) > n
    if group.startswith("encode arrow"):  # the same table, whoever wrote it
        want = pa.ipc.open_stream(GROUPS[group]["acechart"](meta, series, None)).read_all()
        assert pa.ipc.open_stream(out).read_all().equals(want, check_metadata=True)
    benchmark.extra_info["bytes_per_sample"] = round(len(out) / n, 2)
    if benchmark.stats is not None:
        benchmark.extra_info["samples_per_s"] = round(n / benchmark.stats.stats.median)


def test_bytes_per_sample(benchmark: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Body size per sample of each format, raw and zstd level 3, for 1 point x 365 days.

    The benchmark itself times zstd level 3 on the JSON body (what HTTP compression
    adds on top of encoding).
    """
    series = dataset(1, 365)
    meta = metadata(series)
    n = sum(len(ts) for _, ts, _ in series)
    bodies = {
        "JSON rows": _core.encode_json(meta, series),
        "MessagePack rows": _core.encode_msgpack(meta, series, "rows"),
        "MessagePack columns": _core.encode_msgpack(meta, series, "columns"),
        "Arrow series": _core.encode_arrow(meta, series, "series"),
        "Arrow wide": _core.encode_arrow(meta, series, "wide"),
    }
    zstd = zstandard.ZstdCompressor(level=3)
    sizes = {name: (len(body), len(zstd.compress(body))) for name, body in bodies.items()}
    benchmark.group = f"zstd level 3 of the JSON body: 1 point x 365 days ({n:,} samples)"
    benchmark.extra_info.update(impl="zstandard level 3", samples=n)
    benchmark.pedantic(zstd.compress, args=(bodies["JSON rows"],), rounds=3, iterations=1)
    benchmark.extra_info["bytes_per_sample"] = {
        name: {"raw": round(r / n, 2), "zstd3": round(z / n, 2)} for name, (r, z) in sizes.items()
    }
    with capsys.disabled():
        print(f"\nbytes per sample, {n:,} samples (1 point x 365 days of 1-minute data)")
        print(f"    {'format':<22}{'raw':>8}{'zstd -3':>10}")
        for name, (r, z) in sizes.items():
            print(f"    {name:<22}{r / n:8.2f}{z / n:10.2f}")
    assert int(series[0][1][0]) == START_MS
