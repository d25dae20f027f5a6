"""The wire vocabulary: formats, layouts, their names and media types, and the answer documents.

One home for what a representation is called and how it is chosen, so that
`/api/timeseries`, `/api/aggregations` and job results agree on every name
(`format=binary` is MessagePack everywhere, `layout=Rows` means rows
everywhere) and on the bytes of a document. Nothing here knows HTTP beyond the
text of an `Accept` header: the server passes header values in, and the
encoding runs in the Rust core, array to bytes.

Formats and their layouts (the first is the format's own, the default):

| format | media type | layouts |
| --- | --- | --- |
| json | application/json | rows |
| msgpack (binary) | application/x-msgpack | rows, columns |
| csv | text/csv | rows |
| arrow | application/vnd.apache.arrow.stream | series, wide |
| parquet (job results only) | application/vnd.apache.parquet | series |

`rows` and `series` both name a format's own layout: the seed's row document for
JSON, MessagePack and CSV, one record batch (Parquet: row group) per series for
Arrow and Parquet; so `layout=rows` with `format=arrow` is `series`, and the
cache key and a job's stored representation always carry the canonical name.
`columns` is MessagePack's, `wide` (one outer-joined table) Arrow's.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import struct
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from acechart._core import (
    encode_arrow,
    encode_arrow_wide_head,
    encode_csv,
    encode_head,
    encode_json,
    encode_msgpack,
    encode_part,
    encode_tail,
)
from acechart.errors import BadRequest
from acechart.query import Query
from acechart.result import AGG_FLOAT_KEYS, Aggregates, Result, Series
from acechart.times import format_time

__all__ = [
    "AGG_ROW_STATS",
    "AGG_TABLE_STATS",
    "ARROW_EOS",
    "CONTENT_TYPES",
    "EXTENSIONS",
    "FORMATS",
    "FORMAT_LAYOUTS",
    "JOB_FORMATS",
    "JOB_LAYOUTS",
    "JSON_ROWS",
    "LAYOUTS",
    "LIVE_FORMATS",
    "MEDIA_TYPES",
    "SEED_FORMAT_NAMES",
    "WIDE_PIECE_ROWS",
    "AggItem",
    "Format",
    "Layout",
    "Piece",
    "RawItem",
    "Representation",
    "ace_format",
    "aggregation_items",
    "aggregation_pieces",
    "aggregation_values",
    "aggregations_metadata",
    "arrow_head",
    "arrow_part",
    "encode_aggregations",
    "encode_timeseries",
    "missing_metadata",
    "negotiate",
    "parquet_available",
    "parse_format",
    "parse_layout",
    "parse_qualities",
    "representation",
    "series_item",
    "streamable",
    "timeseries_metadata",
    "timeseries_pieces",
    "wide_pieces",
]

Format = Literal["json", "msgpack", "csv", "arrow", "parquet"]
Layout = Literal["rows", "columns", "series", "wide"]

#: Every name a caller may give a format, lower case (`binary` is the seed's name of
#: MessagePack, `messagepack` the one its export metadata uses).
FORMATS: dict[str, Format] = {
    "json": "json",
    "msgpack": "msgpack",
    "binary": "msgpack",
    "messagepack": "msgpack",
    "csv": "csv",
    "arrow": "arrow",
    "parquet": "parquet",
}
LAYOUTS: tuple[Layout, ...] = ("rows", "columns", "series", "wide")
#: The layouts of each format, its own (the default) first.
FORMAT_LAYOUTS: dict[Format, tuple[Layout, ...]] = {
    "json": ("rows",),
    "msgpack": ("rows", "columns"),
    "csv": ("rows",),
    "arrow": ("series", "wide"),
    "parquet": ("series",),
}
#: What `/api/timeseries` and `/api/aggregations` answer in: Parquet is written by jobs.
LIVE_FORMATS: tuple[Format, ...] = ("json", "msgpack", "csv", "arrow")
#: What a job stores or converts its result to.
JOB_FORMATS: tuple[Format, ...] = ("json", "msgpack", "csv", "arrow", "parquet")
#: A job's result is written and converted series by series: no `wide` table.
JOB_LAYOUTS: tuple[Layout, ...] = ("rows", "columns", "series")
CONTENT_TYPES: dict[Format, str] = {
    "json": "application/json",
    "msgpack": "application/x-msgpack",
    "csv": "text/csv; charset=utf-8",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}
#: File extensions (`.arrows` is the Arrow project's name for the IPC stream format).
EXTENSIONS: dict[Format, str] = {
    "json": "json",
    "msgpack": "msgpack",
    "csv": "csv",
    "arrow": "arrows",
    "parquet": "parquet",
}
#: The seed's `format` names in an export's metadata.json (section 2.1), and ours beyond it.
SEED_FORMAT_NAMES: dict[Format, str] = {
    "json": "json",
    "msgpack": "messagepack",
    "csv": "csv",
    "arrow": "arrow",
    "parquet": "parquet",
}
#: Media types in `Accept` and the format each names.
MEDIA_TYPES: dict[str, Format] = {
    "application/json": "json",
    "application/x-msgpack": "msgpack",
    "application/msgpack": "msgpack",
    "application/vnd.msgpack": "msgpack",
    "text/csv": "csv",
    "application/vnd.apache.arrow.stream": "arrow",
    "application/vnd.apache.parquet": "parquet",
}
#: Formats the seed never had: naming one in `format=` beats an `Accept` of MessagePack.
_NEW_FORMATS: frozenset[Format] = frozenset({"arrow", "parquet"})
_LAYOUT_NEEDS = {
    "columns": "layout=columns needs MessagePack (format=msgpack or Accept: application/x-msgpack)",
    "wide": "layout=wide needs Arrow (format=arrow or Accept: application/vnd.apache.arrow.stream)",
}

RawItem = tuple[str, NDArray[np.int64], NDArray[np.float64]]
AggItem = tuple[str, Aggregates]
"""A bucket series as the encoders take it: the aggregate columns (the seed's row), or
chosen statistics (`columns` names them, `value` the series' value, `partial` flags)."""

#: An aggregation row's statistics in JSON and MessagePack without `stat=` (the seed's
#: order, byte for byte what existing clients parse).
AGG_ROW_STATS: tuple[str, ...] = ("avg", "min", "max", "sum", "count", "stddev", "first", "last")
#: The statistics columns of CSV and Arrow without `stat=`: the columns they always had
#: first, `first` and `last` after them (then `partial`), so positional readers keep
#: working.
AGG_TABLE_STATS: tuple[str, ...] = ("count", "sum", "min", "max", "avg", "stddev", "first", "last")


@dataclass(frozen=True)
class Representation:
    """A format and a layout: what one answer's bytes are."""

    format: Format = "json"
    layout: Layout = "rows"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


JSON_ROWS = Representation()


def _names(items: Sequence[str]) -> str:
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else items[0]


def parse_format(
    name: str, parameter: str = "format", formats: Collection[Format] = JOB_FORMATS
) -> Format:
    """Any accepted name of a format, any case -> the format; `BadRequest` names `parameter`
    (also for a format known but not among `formats`)."""
    fmt = FORMATS.get(name.strip().lower())
    allowed = [
        f if f != "msgpack" else "msgpack (or binary)" for f in FORMAT_LAYOUTS if f in formats
    ]
    if fmt is None:
        raise BadRequest(f"unknown format {name!r}; use {_names(allowed)}", parameter=parameter)
    if fmt not in formats:
        raise BadRequest(
            f"format={fmt} is for job results (POST /api/jobs); here use {_names(allowed)}",
            parameter=parameter,
        )
    return fmt


def parse_layout(name: str, parameter: str = "layout") -> Layout:
    """A layout's name, any case (not yet checked against a format); `BadRequest` names
    `parameter`."""
    lowered = name.strip().lower()
    for layout in LAYOUTS:
        if lowered == layout:
            return layout
    raise BadRequest(f"unknown layout {name!r}; use {_names(LAYOUTS)}", parameter=parameter)


def _layout_of(fmt: Format, layout: Layout, layouts: Collection[Layout]) -> Layout:
    """`layout` as `fmt` names it (`rows` and `series` both mean the format's own)."""
    own = FORMAT_LAYOUTS[fmt]
    if layout in ("rows", "series"):
        layout = own[0]
    if layout not in own:
        raise BadRequest(_LAYOUT_NEEDS[layout], parameter="layout")
    if layout not in layouts:
        raise BadRequest(
            f"layout={layout} joins every series into one table, which a job's result, "
            "written and converted series by series, cannot be; use layout=series, or "
            "/api/timeseries for a wide table",
            parameter="layout",
        )
    return layout


@functools.cache
def parquet_available() -> bool:
    """Whether pyarrow (the `acechart[arrow]` extra), Parquet's writer, is installed."""
    return importlib.util.find_spec("pyarrow") is not None


def _check_writable(fmt: Format) -> None:
    if fmt == "parquet" and not parquet_available():
        raise BadRequest(
            "format=parquet needs pyarrow, which is not installed: "
            "pip install 'acechart[arrow]' (or ask for format=arrow)",
            parameter="format",
        )


def representation(
    fmt: str,
    layout: str = "rows",
    *,
    formats: Collection[Format] = JOB_FORMATS,
    layouts: Collection[Layout] = LAYOUTS,
) -> Representation:
    """A checked representation from names, the layout canonical for the format
    (`arrow` + `rows` -> `arrow` + `series`); `BadRequest` names `format` or `layout`."""
    f = parse_format(fmt, formats=formats)
    _check_writable(f)
    return Representation(f, _layout_of(f, parse_layout(layout), layouts))


def parse_qualities(header: str) -> dict[str, float]:
    """`a/b;q=0.5, c/d` -> {"a/b": 0.5, "c/d": 1.0}; malformed q values (`nan`, `inf`,
    words) count as 0."""
    out: dict[str, float] = {}
    for part in header.split(","):
        item, *params = (p.strip() for p in part.split(";"))
        if not item:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                # NaN compares false both ways, so a clamp would keep it: it is 0 too.
                q = min(max(q, 0.0), 1.0) if math.isfinite(q) else 0.0
        key = item.lower()
        out[key] = max(q, out.get(key, 0.0))
    return out


@functools.lru_cache(maxsize=256)
def _accepted_formats(accept: str) -> tuple[tuple[Format, float], ...]:
    """The formats an Accept header names with q > 0, each at its best quality.

    Clients repeat the same few headers, so the parse is cached.
    """
    best: dict[Format, float] = {}
    for media, q in parse_qualities(accept).items():
        fmt = MEDIA_TYPES.get(media)
        if fmt is not None and q > 0:
            best[fmt] = max(q, best.get(fmt, 0.0))
    return tuple(best.items())


def negotiate(
    params: Mapping[str, str],
    accept: str,
    default: Representation = JSON_ROWS,
    *,
    formats: Collection[Format] = LIVE_FORMATS,
    layouts: Collection[Layout] = LAYOUTS,
) -> Representation:
    """The one negotiation of every data answer: format, then layout.

    1. An `Accept` that names MessagePack wins (the seed's `shouldUseBinary`),
       unless `format=` names one the seed never had (arrow, parquet).
    2. Else `format=` (any alias, any case).
    3. Else the format `Accept` rates highest among those it names (of
       `formats`); a tie goes to `default` (what a job stored, JSON for a live
       query), then to JSON. An `Accept` naming none of them (`*/*`, nothing)
       gets `default`.

    `layout=` (any case) is checked against the format and made canonical
    (`rows` and `series` name the format's own layout); without it the layout
    is `default`'s when the format is `default`'s, else the format's own.
    `formats` are those the route answers in (`JOB_FORMATS` for job results);
    `layouts` those it can write (`JOB_LAYOUTS`: no `wide`). `BadRequest` names
    `format` or `layout`.
    """
    accepted = {f: q for f, q in _accepted_formats(accept) if f in formats} if accept else {}
    raw_format = params.get("format")
    named = None if raw_format is None else parse_format(raw_format, formats=formats)
    fmt: Format
    if "msgpack" in accepted and named not in _NEW_FORMATS:
        fmt = "msgpack"
    elif named is not None:
        fmt = named
    elif accepted:
        top = max(accepted.values())
        rated = [f for f, q in accepted.items() if q == top]
        fmt = (
            default.format if default.format in rated else ("json" if "json" in rated else rated[0])
        )
    else:
        fmt = default.format
    raw_layout = params.get("layout")
    if raw_layout is None:
        layout = default.layout if fmt == default.format else FORMAT_LAYOUTS[fmt][0]
    else:
        layout = _layout_of(fmt, parse_layout(raw_layout), layouts)
    rep = Representation(fmt, layout)
    if rep != default:
        _check_writable(fmt)
    return rep


def ace_format(accept: str) -> Literal["json", "msgpack"]:
    """The format of an ACE-shaped answer (`timeseries/paginated`): MessagePack when
    `Accept` names it, else JSON, the origin's own."""
    return "msgpack" if accept and "msgpack" in dict(_accepted_formats(accept)) else "json"


# --- the answer documents -----------------------------------------------------------


def missing_metadata(missing: Mapping[str, Sequence[tuple[int, int]]]) -> dict[str, Any]:
    """`{"missing": {point: [[start_ms, end_ms], ...]}}` for a partial answer, else `{}`:
    the ranges each point lacks because the origin failed (end exclusive)."""
    if not missing:
        return {}
    return {"missing": {p: [[a, b] for a, b in ranges] for p, ranges in missing.items()}}


def _bucket_metadata(
    meta: dict[str, Any], query: Query, partial_last: bool | None, bucket_factor: int = 1
) -> None:
    """Where an interval answer's buckets lie: the zone and stat when not the defaults,
    and whether the last bucket is still running (`partialLast`)."""
    if query.tz != "UTC":
        meta["timeZone"] = query.tz
    if query.stat != "avg":
        meta["stat"] = query.stat
    if bucket_factor > 1:
        meta["rebucketed"] = {"interval": query.interval, "factor": bucket_factor}
    if query.interval != "raw" and partial_last is not None:
        meta["partialLast"] = partial_last


def timeseries_metadata(
    query: Query, total_samples: int, *, partial_last: bool | None = None
) -> dict[str, Any]:
    """The seed's metadata block (section 6.1), plus the downsampling when one was asked for,
    and for interval queries the zone, stat and `partialLast` (when known).

    A job's result and the synchronous answer carry the very same block, so a
    job's result reads exactly like `/api/timeseries`.
    """
    meta: dict[str, Any] = {
        "siteId": query.site,
        "pointNames": list(query.points),
        "startTime": format_time(query.start_ms),
        "endTime": format_time(query.end_ms),
        "aggregation": query.interval,
        "totalSamples": total_samples,
    }
    if query.max_points is not None:
        meta["downsample"] = query.downsample or "minmaxlttb"
        meta["maxPoints"] = query.max_points
    _bucket_metadata(meta, query, partial_last)
    return meta


def series_item(series: Series) -> RawItem:
    """One series as the encoders take it: `[ts, value]` pairs (interval answers carry
    each bucket's average)."""
    return (
        series.name,
        np.ascontiguousarray(series.ts, np.int64),
        np.ascontiguousarray(series.values, np.float64),
    )


def encode_timeseries(result: Result, rep: Representation) -> bytes:
    """The `/api/timeseries` document of `result`."""
    series = [series_item(s) for s in result.series]
    if rep.format == "csv":
        return encode_csv(series)
    meta = timeseries_metadata(result.query, result.total_samples, partial_last=result.partial_last)
    meta.update(missing_metadata(result.missing))
    return _encode(meta, series, rep)


Piece = Callable[[], bytes]
"""One piece of a document in the making: called (in a worker thread, as the Rust encoders
release the GIL) when its turn to be sent comes."""


_CORE_FORMATS: dict[Format, Literal["json", "msgpack", "csv"]] = {
    "json": "json",
    "msgpack": "msgpack",
    "csv": "csv",
}


def streamable(rep: Representation) -> bool:
    """Whether a document in `rep` can be written in pieces (`timeseries_pieces`,
    `aggregation_pieces`): every live format and layout (Arrow's `wide` table as record
    batches of row ranges)."""
    return rep.format in _CORE_FORMATS or rep.format == "arrow"


def timeseries_pieces(result: Result, rep: Representation) -> Iterator[Piece]:
    """The `/api/timeseries` document of `result` in pieces: head, one per series, tail.

    The series leave `result.series` as they are encoded (the list is empty at the
    end), so a series' arrays are freed once its piece is sent, and the caller holds
    at most one encoded series at a time. JSON, MessagePack and CSV join to exactly
    `encode_timeseries`'s bytes; Arrow to a stream of the same schema and rows (each
    series' dictionary batch before its record batch, as `arrow_part` writes it; the
    `wide` table as record batches of row ranges, `wide_pieces`). What would make the
    whole encoder refuse (`wide` naming a point `time`) is raised here, before any
    piece is made.
    """
    if not streamable(rep):
        raise ValueError(f"a {rep.format} {rep.layout} document is not written in pieces")
    meta = timeseries_metadata(result.query, result.total_samples, partial_last=result.partial_last)
    meta.update(missing_metadata(result.missing))
    if rep.layout == "wide":
        items = [series_item(s) for s in result.series]
        result.series.clear()
        return wide_pieces(meta, items)
    return _timeseries_pieces(result.series, meta, rep)


def _timeseries_pieces(
    series: list[Series], meta: dict[str, Any], rep: Representation
) -> Iterator[Piece]:
    if rep.format == "arrow":
        listing = [(s.name, len(s)) for s in series]
        yield functools.partial(arrow_head, meta, listing)
        del listing
        while series:
            yield functools.partial(arrow_part, series_item(series.pop(0)))
        yield ARROW_EOS.__bytes__
        return
    fmt = _CORE_FORMATS[rep.format]
    layout: Literal["rows", "columns"] = "columns" if rep.layout == "columns" else "rows"
    yield functools.partial(encode_head, fmt, meta, len(series), layout)
    index = 0
    while series:
        yield functools.partial(encode_part, fmt, series_item(series.pop(0)), index, layout)
        index += 1
    yield functools.partial(encode_tail, fmt)


#: About the most rows of each record batch of a `wide` document in pieces.
WIDE_PIECE_ROWS = 65_536


def wide_pieces(
    metadata: dict[str, Any], items: Sequence[RawItem | AggItem], rows: int | None = None
) -> Iterator[Piece]:
    """An Arrow `wide` document (`encode_arrow(metadata, items, "wide")`) in pieces: the
    schema message, a record batch per time range, the end-of-stream marker.

    Each range holds at most `rows` (`WIDE_PIECE_ROWS`) rows of the outer-joined
    table. Every (`rows` / number of series)-th time of every series, from its
    first, is a mark, so between two marks each series has at most that many rows
    and the table at most `rows` (or one row, when there are more series than
    `rows`); consecutive stretches are joined while the sum of the series' rows in
    them (the most rows their table can have) stays within `rows`. Every time
    falls in one range, so the batches' rows, in order, are the whole table's.
    Every series takes part in every batch, so the items stay until the last; what
    is never held whole is the table's body. Raises what the whole encoder would
    for the names (`BadRequest`) and times (`ValueError`) before any piece is made.
    """
    _check_wide([item[0] for item in items])
    times = [_item_ts(item) for item in items]
    for (name, *_), ts in zip(items, times, strict=True):
        if len(ts) > 1 and not bool(np.all(ts[1:] > ts[:-1])):
            raise ValueError(
                f"series {name!r}: the 'wide' layout needs 'ts' sorted ascending without duplicates"
            )
    listing = [(item[0], len(ts)) for item, ts in zip(items, times, strict=True)]
    return _wide_pieces(metadata, items, times, listing, _wide_cuts(times, rows or WIDE_PIECE_ROWS))


def _wide_cuts(times: list[NDArray[np.int64]], limit: int) -> NDArray[np.int64]:
    """The times a `wide` table is cut at so that no range holds more than `limit` rows."""
    step = max(1, limit // max(1, len(times)))
    marks = np.unique(np.concatenate([ts[::step] for ts in times] or [np.zeros(0, np.int64)]))
    # The series' rows before each mark, summed, then all of them: stretches between
    # marks hold at most `limit` rows each.
    bounds = np.zeros(len(marks) + 1, np.int64)
    for ts in times:
        bounds[:-1] += np.searchsorted(ts, marks, "left")
        bounds[-1] += len(ts)
    cuts: list[int] = []
    start = 0
    while True:
        # At least one stretch a range (the first mark is the first time: nothing comes
        # before it). With fewer rows than series a stretch may count more than `limit`,
        # every series at the one time it holds, but its table has one row.
        last = max(
            int(np.searchsorted(bounds, start + limit, "right")) - 1, cuts[-1] + 1 if cuts else 0
        )
        if last >= len(marks):
            return marks[cuts]
        cuts.append(last)
        start = int(bounds[last])


def _wide_pieces(
    metadata: dict[str, Any],
    items: Sequence[RawItem | AggItem],
    times: list[NDArray[np.int64]],
    listing: list[tuple[str, int]],
    cuts: NDArray[np.int64],
) -> Iterator[Piece]:
    yield functools.partial(encode_arrow_wide_head, metadata, listing)
    stops = [[*np.searchsorted(ts, cuts, "left").tolist(), len(ts)] for ts in times]
    starts = [0] * len(items)
    for k in range(len(cuts) + 1):
        window = []
        for i, item in enumerate(items):
            stop = stops[i][k]
            window.append(_slice_item(item, starts[i], stop))
            starts[i] = stop
        yield functools.partial(_wide_batch, window)
    yield ARROW_EOS.__bytes__


def _item_ts(item: RawItem | AggItem) -> NDArray[np.int64]:
    if len(item) == 3:
        return item[1]
    return item[1]["ts"]  # type: ignore[return-value]


def _slice_item(item: RawItem | AggItem, start: int, stop: int) -> RawItem | AggItem:
    """Rows `[start, stop)` of an encoder item (views, no copy)."""
    if len(item) == 3:
        name, ts, values = item
        return (name, ts[start:stop], values[start:stop])
    name, columns = item
    sliced: dict[str, Any] = {
        k: v[start:stop] if isinstance(v, np.ndarray) else v for k, v in columns.items()
    }
    return (name, sliced)


def _wide_batch(window: Sequence[RawItem | AggItem]) -> bytes:
    """The record batch of a `wide` table of these series' rows (one time range)."""
    return _split_stream(encode_arrow({}, window, "wide"))[1]


def _encode(
    meta: dict[str, Any], series: Sequence[RawItem] | Sequence[AggItem], rep: Representation
) -> bytes:
    if rep.format == "msgpack":
        return encode_msgpack(meta, series, "columns" if rep.layout == "columns" else "rows")
    if rep.format == "arrow":
        wide = rep.layout == "wide"
        if wide:
            _check_wide([item[0] for item in series])
        return encode_arrow(meta, series, "wide" if wide else "series")
    if rep.format == "json":
        return encode_json(meta, series)
    raise ValueError(f"{rep.format} documents are written by jobs (acechart.jobs.export)")


def _check_wide(names: Sequence[str]) -> None:
    """A wide table names a column per point beside `time` (a query names each point
    once already)."""
    if "time" in names:
        raise BadRequest(
            "layout=wide names a column per point beside `time`, and a point is named "
            "'time'; use layout=series",
            parameter="layout",
        )


def aggregation_items(result: Result, rep: Representation = JSON_ROWS) -> list[AggItem]:
    """Each series' bucket statistics as contiguous columns (empty ones for a point
    without buckets), `first` and `last` included, and `partial` when its last bucket
    has not ended yet.

    With `stat=` (`query.stats`) the rows carry exactly those statistics, in that order;
    CSV and Arrow always name their columns (`AGG_TABLE_STATS` by default), which gives
    them `first`, `last` and a `partial` column. JSON and MessagePack without `stat=`
    keep the seed's row.
    """
    item = _aggregation_item(result.query, rep)
    return [item(s) for s in result.series]


def _aggregation_item(query: Query, rep: Representation) -> Callable[[Series], AggItem]:
    """How one series of an aggregation answer in `rep` becomes an encoder item: the one
    function behind the whole document (`aggregation_items`) and its pieces
    (`aggregation_pieces`), so the two cannot write different rows."""
    names = _table_stats(query, rep)
    if names is not None:
        value = query.value_stat if query.stats else "avg"
        return functools.partial(_stats_item, names=names, value=value)
    return _seed_item


def _table_stats(query: Query, rep: Representation) -> tuple[str, ...] | None:
    """The statistics columns an aggregation answer in `rep` names (None: the seed's row)."""
    if query.stats or rep.format in ("csv", "arrow"):
        return query.stats or AGG_TABLE_STATS
    return None


def _seed_item(s: Series) -> AggItem:
    """A series as the seed's rows: every aggregate column."""
    agg = s.aggregates
    if agg is None:
        columns: Aggregates = {"ts": np.zeros(0, np.int64), "count": np.zeros(0, np.int64)}
        columns.update({k: np.zeros(0, np.float64) for k in AGG_FLOAT_KEYS})
    else:
        columns = {k: v if v.flags.c_contiguous else v.copy() for k, v in agg.items()}
    if s.partial_last:
        columns["partial"] = True  # type: ignore[assignment]
    return (s.name, columns)


def _stats_item(s: Series, *, names: tuple[str, ...], value: str) -> AggItem:
    """A series of the chosen statistics `names`, the query's value statistic as `value`."""
    agg = s.aggregates
    ts = np.zeros(0, np.int64) if agg is None else np.ascontiguousarray(agg["ts"], np.int64)
    columns: dict[str, Any] = {"ts": ts, "columns": names, "value": value}
    for name in names:
        dtype = np.int64 if name == "count" else np.float64
        column = np.zeros(0, dtype) if agg is None else agg[name]
        columns[name] = np.ascontiguousarray(column, dtype)
    columns["partial"] = s.partial_last
    return (s.name, columns)


def aggregations_metadata(
    query: Query, data_points: int, *, partial_last: bool | None = None, bucket_factor: int = 1
) -> dict[str, Any]:
    """The seed's `/api/aggregations` metadata: `pointName` when there is one point; the
    zone, the re-bucketing (`maxPoints`), `partialLast` and the chosen statistics
    (`stat`, a list) when they apply."""
    meta: dict[str, Any] = {"siteId": query.site}
    if len(query.points) == 1:
        meta["pointName"] = query.points[0]
    meta.update(
        pointNames=list(query.points),
        startTime=format_time(query.start_ms),
        endTime=format_time(query.end_ms),
        interval=query.interval,
        dataPoints=data_points,
    )
    _bucket_metadata(meta, query, partial_last, bucket_factor)
    if query.stats:
        meta["stat"] = list(query.stats)
    return meta


def _aggregations_document_metadata(result: Result) -> dict[str, Any]:
    """The metadata member of `result`'s `/api/aggregations` document (missing ranges
    included): read before any series leaves the result."""
    meta = aggregations_metadata(
        result.query,
        result.total_samples,
        partial_last=result.partial_last,
        bucket_factor=result.bucket_factor,
    )
    meta.update(missing_metadata(result.missing))
    return meta


def encode_aggregations(result: Result, rep: Representation) -> bytes:
    """The `/api/aggregations` document of `result`."""
    series: Sequence[AggItem] = aggregation_items(result, rep)
    if rep.format == "csv":
        return encode_csv(series)
    return _encode(_aggregations_document_metadata(result), series, rep)


def aggregation_values(result: Result, rep: Representation) -> int:
    """How many statistics an `/api/aggregations` answer of `result` in `rep` writes
    (buckets times the statistics of each row): what its encoded size, and so the
    memory of encoding it whole, grows with. A bucket of the seed's row carries eight
    statistics, a raw sample one value, so buckets alone would stream an aggregation
    answer eight times too late. The `wide` table writes one value per bucket (the
    value statistic of each point)."""
    if rep.layout == "wide":
        return result.total_samples
    names = _table_stats(result.query, rep)
    return result.total_samples * len(names if names is not None else AGG_ROW_STATS)


def aggregation_pieces(result: Result, rep: Representation) -> Iterator[Piece]:
    """The `/api/aggregations` document of `result` in pieces: head, one per series, tail.

    As `timeseries_pieces`: the series leave `result.series` as they are encoded, so
    at most one encoded series is held at a time. Each piece's item is made by the
    function `encode_aggregations` uses, and the Rust core writes the whole document
    as these same pieces, so JSON, MessagePack and CSV join to exactly its bytes;
    Arrow (`series` layout) to a stream of the same schema, metadata and rows (a
    dictionary batch before each point's record batch, as `arrow_part` writes it),
    and the `wide` table to record batches of row ranges (`wide_pieces`).
    """
    if not streamable(rep):
        raise ValueError(f"a {rep.format} {rep.layout} document is not written in pieces")
    item = _aggregation_item(result.query, rep)
    meta = _aggregations_document_metadata(result)
    if rep.layout == "wide":
        items = [item(s) for s in result.series]
        result.series.clear()
        return wide_pieces(meta, items)
    return _aggregation_pieces(result.series, item, meta, result.query, rep)


def _aggregation_pieces(
    series: list[Series],
    item: Callable[[Series], AggItem],
    meta: dict[str, Any],
    query: Query,
    rep: Representation,
) -> Iterator[Piece]:
    if rep.format == "arrow":
        listing = [(s.name, _buckets(s)) for s in series]
        like = item(series[0]) if series else None
        yield functools.partial(arrow_head, meta, listing, like)
        del listing, like
        while series:
            yield functools.partial(arrow_part, item(series.pop(0)))
        yield ARROW_EOS.__bytes__
        return
    fmt = _CORE_FORMATS[rep.format]
    layout: Literal["rows", "columns"] = "columns" if rep.layout == "columns" else "rows"
    if fmt == "csv":
        columns = _table_stats(query, rep)
        yield functools.partial(
            encode_head, "csv", {}, len(series), aggregated=True, columns=columns
        )
    else:
        yield functools.partial(encode_head, fmt, meta, len(series), layout)
    index = 0
    while series:
        yield functools.partial(encode_part, fmt, item(series.pop(0)), index, layout)
        index += 1
    yield functools.partial(encode_tail, fmt)


def _buckets(s: Series) -> int:
    """The rows a series' aggregation item holds (none without aggregates)."""
    return 0 if s.aggregates is None else len(s.aggregates["ts"])


# --- an Arrow document in pieces (job results) --------------------------------------

#: The end-of-stream marker of an Arrow IPC stream: a continuation and a zero length.
ARROW_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"
_CONTINUATION = 0xFFFFFFFF


def _split_stream(stream: bytes) -> tuple[bytes, bytes]:
    """(the schema message, the messages after it) of one `encode_arrow` stream."""
    marker, length = struct.unpack_from("<Ii", stream)
    if marker != _CONTINUATION or length <= 0 or not stream.endswith(ARROW_EOS):
        raise ValueError("not an Arrow IPC stream of encode_arrow")
    end = 8 + length  # a schema message has no body
    return stream[:end], stream[end : -len(ARROW_EOS)]


def arrow_part(item: RawItem | AggItem) -> bytes:
    """One series of an Arrow document written in pieces: a dictionary batch holding its
    point's name, then its record batch (`point` keys all 0, `time`, `value`, and an
    aggregation item's statistics columns).

    Each part replaces the dictionary of the one before, which the IPC stream
    format allows (pyarrow, polars and apache-arrow in JavaScript read it), so
    a part needs nothing of its neighbours: written once, converted alone, and
    any part between `arrow_head` and `ARROW_EOS` is itself a valid stream.
    """
    return _split_stream(encode_arrow({}, [item]))[1]


def arrow_head(
    metadata: dict[str, Any],
    series: Sequence[tuple[str, int]],
    like: RawItem | AggItem | None = None,
) -> bytes:
    """The schema message of an Arrow document of series, `(name, rows)` each, in order:
    the schema `encode_arrow(metadata, ...)` writes, with `acechart:series` naming
    every part that follows. Its columns are those of series like `like` (one of the
    document's items; its rows are not read), raw series' when None.

    The Rust core writes `acechart:series` from the arrays it is given, and a
    document in pieces has none at hand, so the message is that of a stand-in
    series (`like` emptied) whose name makes the listing at least as long as the
    real one, the listing then written over the stand-in's in place (a flatbuffer
    string is its length, its bytes and a NUL; what is left of the old one is zeroed
    and unreferenced). The message keeps its size, offsets and layout.
    """
    listing = _compact([{"name": name, "rows": rows} for name, rows in series])
    stand_in = "x" * len(listing)
    schema, _ = _split_stream(encode_arrow(metadata, [_empty_like(stand_in, like)]))
    old = _flat_string(_compact([{"name": stand_in, "rows": 0}]))
    at = schema.find(old)
    if at < 0 or schema.find(old, at + 1) >= 0:
        raise ValueError("encode_arrow's schema does not hold its series listing once")
    new = _flat_string(listing).ljust(len(old), b"\0")
    return schema[:at] + new + schema[at + len(old) :]


def _empty_like(name: str, like: RawItem | AggItem | None) -> RawItem | AggItem:
    """A series named `name` of no rows, of `like`'s kind and columns."""
    if like is None or len(like) == 3:
        return (name, np.zeros(0, np.int64), np.zeros(0, np.float64))
    columns = like[1]
    empty: dict[str, Any] = {
        k: (v[:0] if isinstance(v, np.ndarray) else v) for k, v in columns.items()
    }
    empty["partial"] = False
    return (name, empty)


def _compact(value: Any) -> bytes:
    """JSON as the Rust core writes it: no spaces, UTF-8."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _flat_string(data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + data + b"\0"
