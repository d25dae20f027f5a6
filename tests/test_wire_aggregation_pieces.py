"""`/api/aggregations` documents in pieces (`wire.aggregation_pieces`): joined, they are
the whole encoder's bytes (JSON, MessagePack rows and columns, CSV) or an Arrow stream of
the same schema, metadata and rows; each series leaves the result as its piece is made.

The aggregates come from the Rust aggregate kernel over random samples (NaN samples
included), with the raw-sample statistics (`delta`, `twa`, `on_time`) as random columns
beside them, as the engine adds them."""

from __future__ import annotations

from typing import Any

import msgpack  # type: ignore[import-untyped]
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import acechart.wire
from acechart._core import aggregate
from acechart.errors import BadRequest
from acechart.query import AGG_STATS, Query
from acechart.result import Provenance, Result, Series
from acechart.wire import (
    AGG_ROW_STATS,
    AGG_TABLE_STATS,
    Representation,
    aggregation_pieces,
    aggregation_values,
    encode_aggregations,
    encode_timeseries,
    streamable,
    timeseries_pieces,
)
from tests.arrow_support import arrow_table, same_table

HOUR = 3_600_000
BYTE_IDENTICAL = [
    Representation("json", "rows"),
    Representation("msgpack", "rows"),
    Representation("msgpack", "columns"),
    Representation("csv", "rows"),
]
ARROW = Representation("arrow", "series")
WIDE = Representation("arrow", "wide")


def _series(name: str, n_samples: int, seed: int, partial: bool, empty: bool) -> Series:
    """A point's buckets from the aggregate kernel (`empty`: no aggregates at all)."""
    if empty:
        return Series(name, np.zeros(0, np.int64), np.zeros(0), None, partial)
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(0, 48 * HOUR, n_samples)).astype(np.int64)
    values = rng.normal(50, 20, n_samples)
    values[rng.random(n_samples) < 0.1] = np.nan
    agg: dict[str, Any] = dict(aggregate(ts, values, HOUR))
    n = len(agg["ts"])
    for raw in ("delta", "twa", "on_time"):
        column = rng.normal(size=n)
        column[rng.random(n) < 0.2] = np.nan
        agg[raw] = column
    return Series(name, agg["ts"], agg["avg"], agg, partial and n > 0)


@st.composite
def results(draw: st.DrawFn) -> tuple[Result, Any]:
    """A random aggregation answer, and what rebuilds it (its series are consumed)."""
    n_points = draw(st.integers(0, 5))
    names = [
        draw(st.sampled_from(["p", "a,b", 'q"x', "ünï", "t"])) + str(i) for i in range(n_points)
    ]
    specs = [
        (
            name,
            draw(st.sampled_from([0, 1, 2, 7, 200])),
            draw(st.integers(0, 2**16)),
            draw(st.booleans()),
            draw(st.booleans()) and draw(st.booleans()),
        )
        for name in names
    ]
    stats = tuple(draw(st.lists(st.sampled_from(AGG_STATS), unique=True, max_size=5)))
    tz = draw(st.sampled_from(["UTC", "America/Chicago", "Asia/Kolkata"]))
    interval = draw(st.sampled_from(["1hr", "1day", "1week"]))
    missing = draw(st.sampled_from([{}, {"p0": [(0, HOUR), (5 * HOUR, 6 * HOUR)]}]))
    factor = draw(st.sampled_from([1, 3]))
    query = Query("site", tuple(names), 0, 48 * HOUR, interval=interval, tz=tz, stats=stats)

    def build() -> Result:
        series = [_series(*spec) for spec in specs]
        return Result(query, series, Provenance(), missing=missing, bucket_factor=factor)

    return build(), build


def _joined(result: Result, rep: Representation) -> bytes:
    return b"".join(piece() for piece in aggregation_pieces(result, rep))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(results(), st.sampled_from([1, 2, 5, 64]))
def test_pieces_join_to_the_whole_document(case: tuple[Result, Any], wide_rows: int) -> None:
    _, build = case
    for rep in BYTE_IDENTICAL:
        assert _joined(build(), rep) == encode_aggregations(build(), rep), rep
    same_table(_joined(build(), ARROW), encode_aggregations(build(), ARROW))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(acechart.wire, "WIDE_PIECE_ROWS", wide_rows)
        result = build()
        pieces = list(aggregation_pieces(result, WIDE))
        assert result.series == []
        assert max(batch_rows(pieces)) <= max(1, wide_rows)
        same_table(b"".join(p() for p in pieces), encode_aggregations(build(), WIDE))


def _fixed(stats: tuple[str, ...] = (), *, partial: bool = True, tz: str = "UTC") -> Result:
    """Three points: one with a partial last bucket, one without buckets, one of one."""
    q = Query("site", ("a", "empty", "one"), 0, 48 * HOUR, interval="1hr", tz=tz, stats=stats)
    series = [
        _series("a", 300, 1, partial, False),
        _series("empty", 0, 2, False, True),
        _series("one", 1, 3, False, False),
    ]
    return Result(q, series, Provenance())


@pytest.mark.parametrize(
    "stats", [(), ("delta",), ("twa", "on_time", "count"), ("max", "stddev", "first", "last")]
)
@pytest.mark.parametrize("rep", [*BYTE_IDENTICAL, ARROW], ids=str)
def test_each_series_leaves_the_result_as_its_piece_is_made(
    stats: tuple[str, ...], rep: Representation
) -> None:
    want = encode_aggregations(_fixed(stats), rep)
    result = _fixed(stats)
    pieces = aggregation_pieces(result, rep)
    head = next(pieces)()
    assert len(result.series) == 3
    first = next(pieces)
    assert [s.name for s in result.series] == ["empty", "one"]
    rest = [p() for p in pieces]
    assert result.series == []
    got = head + first() + b"".join(rest)
    if rep.format == "arrow":
        same_table(got, want)
    else:
        assert got == want


def test_the_edges_are_in_the_document() -> None:
    """What the byte comparison stands on: partial markers, NaN as null, the metadata."""
    result = _fixed(("delta", "count"), tz="America/Chicago")
    body = _joined(result, Representation("msgpack", "rows"))
    doc = msgpack.unpackb(body)
    meta = doc["metadata"]
    assert meta["stat"] == ["delta", "count"] and meta["partialLast"] is True
    assert meta["timeZone"] == "America/Chicago" and meta["dataPoints"] > 1
    a, empty, one = doc["series"]
    assert a["aggregations"][-1]["partial"] is True
    assert all("partial" not in row for row in a["aggregations"][:-1])
    assert any(row["delta"] is None for row in a["aggregations"])
    assert empty["aggregations"] == [] and len(one["aggregations"]) == 1
    text = _joined(_fixed(), Representation("csv", "rows")).decode()
    lines = text.splitlines()
    assert lines[0] == "time,point," + ",".join(AGG_TABLE_STATS) + ",partial"
    assert lines[-2].endswith(",true") or any(line.endswith(",true") for line in lines)
    table = arrow_table(_joined(_fixed(), ARROW))
    assert table.column_names == ["point", "time", "value", *AGG_TABLE_STATS, "partial"]
    assert table.column("partial").to_pylist().count(True) == 1


def test_no_series_and_the_values_counted() -> None:
    q = Query("site", (), 0, HOUR, interval="1hr")
    for rep in BYTE_IDENTICAL:
        assert _joined(Result(q, [], Provenance()), rep) == encode_aggregations(
            Result(q, [], Provenance()), rep
        )
    same_table(
        _joined(Result(q, [], Provenance()), ARROW),
        encode_aggregations(Result(q, [], Provenance()), ARROW),
    )
    result = _fixed()
    buckets = result.total_samples
    assert aggregation_values(result, Representation()) == buckets * len(AGG_ROW_STATS)
    assert aggregation_values(result, ARROW) == buckets * len(AGG_TABLE_STATS)
    assert aggregation_values(_fixed(("twa",)), ARROW) == buckets
    assert aggregation_values(result, WIDE) == buckets  # one column of values per point


@pytest.mark.parametrize("rows", [1, 3, 10, 1000])
def test_wide_tables_in_row_ranges(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    """Raw series of their own times (an outer join with nulls), in batches of `rows`."""
    monkeypatch.setattr(acechart.wire, "WIDE_PIECE_ROWS", rows)

    def result() -> Result:
        rng = np.random.default_rng(rows)
        series = []
        for i, n in enumerate([0, 1, 40, 17]):
            ts = np.sort(rng.choice(100, n, replace=False)).astype(np.int64) * 60_000
            series.append(Series(f"p{i}", ts, rng.normal(size=n)))
        return Result(Query("site", ("p0", "p1", "p2", "p3"), 0, HOUR * 2), series, Provenance())

    want = encode_timeseries(result(), WIDE)
    built = result()
    pieces = list(timeseries_pieces(built, WIDE))
    assert built.series == []
    assert max(batch_rows(pieces)) <= rows
    got = b"".join(p() for p in pieces)
    same_table(got, want)
    assert arrow_table(got).column("p0").null_count == arrow_table(got).num_rows


def batch_rows(pieces: list[Any]) -> list[int]:
    """The rows of each record batch of a `wide` document in pieces (head, batches, end)."""
    head, *batches, end = (piece() for piece in pieces)
    return [arrow_table(head + batch + end).num_rows for batch in batches]


@pytest.mark.parametrize("rows", [7, 100])
def test_a_series_bunched_between_two_times_of_another_stays_within_the_rows(
    monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    """999 times of one series inside one gap of another's 1,000: the batch that holds
    them is cut too (a cut on one series' times alone put them all in one batch)."""
    monkeypatch.setattr(acechart.wire, "WIDE_PIECE_ROWS", rows)
    spread = np.arange(1000, dtype=np.int64) * 1000
    bunched = 5_000 + np.arange(1, 1000, dtype=np.int64)

    def result() -> Result:
        series = [Series("spread", spread, np.ones(1000)), Series("bunched", bunched, np.ones(999))]
        return Result(Query("site", ("spread", "bunched"), 0, HOUR), series, Provenance())

    pieces = list(timeseries_pieces(result(), WIDE))
    sizes = batch_rows(pieces)
    assert max(sizes) <= rows and sum(sizes) == 1999
    same_table(b"".join(p() for p in pieces), encode_timeseries(result(), WIDE))


def test_wide_refusals_come_before_any_piece() -> None:
    assert streamable(WIDE) and not streamable(Representation("parquet", "series"))
    q = Query("site", ("time",), 0, HOUR, interval="1hr")
    result = Result(q, [_series("time", 10, 1, False, False)], Provenance())
    with pytest.raises(BadRequest, match="layout=wide"):
        aggregation_pieces(result, WIDE)
    backwards = Series("p", np.array([2, 1], np.int64), np.zeros(2))
    raw = Result(Query("site", ("p",), 0, HOUR), [backwards], Provenance())
    with pytest.raises(ValueError, match="sorted ascending"):
        timeseries_pieces(raw, WIDE)
    with pytest.raises(ValueError, match="not written in pieces"):
        aggregation_pieces(_fixed(), Representation("parquet", "series"))
