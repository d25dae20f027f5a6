"""The wire vocabulary: formats, layouts, their names and media types, and the answer documents.

One home for what a representation is called and how it is chosen, so that
`/api/timeseries`, `/api/aggregations` and job results agree on every name
(`format=binary` is MessagePack everywhere, `layout=Rows` means rows
everywhere) and on the bytes of a document. Nothing here knows HTTP beyond the
text of an `Accept` header: the server passes header values in, and the
encoding runs in the Rust core, array to bytes.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from acechart._core import encode_csv, encode_json, encode_msgpack
from acechart.errors import BadRequest
from acechart.query import Query
from acechart.result import AGG_FLOAT_KEYS, Aggregates, Result, Series
from acechart.times import format_time

__all__ = [
    "CONTENT_TYPES",
    "EXTENSIONS",
    "FORMATS",
    "JSON_ROWS",
    "LAYOUTS",
    "MEDIA_TYPES",
    "SEED_FORMAT_NAMES",
    "AggItem",
    "Format",
    "Layout",
    "RawItem",
    "Representation",
    "ace_format",
    "aggregation_items",
    "aggregations_metadata",
    "encode_aggregations",
    "encode_timeseries",
    "negotiate",
    "parse_format",
    "parse_layout",
    "parse_qualities",
    "representation",
    "series_item",
    "timeseries_metadata",
]

Format = Literal["json", "msgpack", "csv"]
Layout = Literal["rows", "columns"]

#: Every name a caller may give a format, lower case (`binary` is the seed's name of
#: MessagePack, `messagepack` the one its export metadata uses).
FORMATS: dict[str, Format] = {
    "json": "json",
    "msgpack": "msgpack",
    "binary": "msgpack",
    "messagepack": "msgpack",
    "csv": "csv",
}
LAYOUTS: tuple[Layout, ...] = ("rows", "columns")
CONTENT_TYPES: dict[Format, str] = {
    "json": "application/json",
    "msgpack": "application/x-msgpack",
    "csv": "text/csv; charset=utf-8",
}
EXTENSIONS: dict[Format, str] = {"json": "json", "msgpack": "msgpack", "csv": "csv"}
#: The seed's `format` names in an export's metadata.json (section 2.1).
SEED_FORMAT_NAMES: dict[Format, str] = {"json": "json", "msgpack": "messagepack", "csv": "csv"}
#: Media types in `Accept` and the format each names.
MEDIA_TYPES: dict[str, Format] = {
    "application/json": "json",
    "application/x-msgpack": "msgpack",
    "application/msgpack": "msgpack",
    "application/vnd.msgpack": "msgpack",
    "text/csv": "csv",
}
_MSGPACK_MEDIA = tuple(m for m, f in MEDIA_TYPES.items() if f == "msgpack")

RawItem = tuple[str, NDArray[np.int64], NDArray[np.float64]]
AggItem = tuple[str, Aggregates]


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


def parse_format(name: str, parameter: str = "format") -> Format:
    """Any accepted name of a format, any case -> the format; `BadRequest` names `parameter`."""
    fmt = FORMATS.get(name.strip().lower())
    if fmt is None:
        raise BadRequest(
            f"unknown format {name!r}; use json, msgpack (or binary) or csv", parameter=parameter
        )
    return fmt


def parse_layout(name: str, parameter: str = "layout") -> Layout:
    """`rows` or `columns`, any case; `BadRequest` names `parameter`."""
    lowered = name.strip().lower()
    if lowered == "rows":
        return "rows"
    if lowered == "columns":
        return "columns"
    raise BadRequest(f"unknown layout {name!r}; use rows or columns", parameter=parameter)


def representation(fmt: str, layout: str = "rows") -> Representation:
    """A checked representation from names: columns exist only in MessagePack."""
    rep = Representation(parse_format(fmt), parse_layout(layout))
    _check_layout(rep)
    return rep


def _check_layout(rep: Representation) -> None:
    if rep.layout == "columns" and rep.format != "msgpack":
        raise BadRequest(
            "layout=columns needs MessagePack (format=msgpack or Accept: application/x-msgpack)",
            parameter="layout",
        )


def parse_qualities(header: str) -> dict[str, float]:
    """`a/b;q=0.5, c/d` -> {"a/b": 0.5, "c/d": 1.0}; malformed q values count as 0."""
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
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
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
    params: Mapping[str, str], accept: str, default: Representation = JSON_ROWS
) -> Representation:
    """The one negotiation of every data answer: format, then layout.

    1. An `Accept` that names MessagePack wins (the seed's `shouldUseBinary`).
    2. Else `format=` (any alias, any case).
    3. Else the format `Accept` rates highest among those it names; a tie goes
       to `default` (what a job stored, JSON for a live query), then to JSON.
       An `Accept` naming none of ours (`*/*`, nothing) gets `default`.

    `layout=` (any case) is checked against the format; without it the layout
    is `default`'s when the format is `default`'s, else rows. `BadRequest`
    names `format` or `layout`.
    """
    accepted = dict(_accepted_formats(accept)) if accept else {}
    raw_format = params.get("format")
    fmt: Format
    if "msgpack" in accepted:
        fmt = "msgpack"
        if raw_format is not None:
            parse_format(raw_format)
    elif raw_format is not None:
        fmt = parse_format(raw_format)
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
        layout: Layout = default.layout if fmt == default.format else "rows"
    else:
        layout = parse_layout(raw_layout)
    rep = Representation(fmt, layout)
    _check_layout(rep)
    return rep


def ace_format(accept: str) -> Literal["json", "msgpack"]:
    """The format of an ACE-shaped answer (`timeseries/paginated`): MessagePack when
    `Accept` names it, else JSON, the origin's own."""
    return "msgpack" if accept and "msgpack" in dict(_accepted_formats(accept)) else "json"


# --- the answer documents -----------------------------------------------------------


def timeseries_metadata(query: Query, total_samples: int) -> dict[str, Any]:
    """The seed's metadata block (section 6.1), plus the downsampling when one was asked for.

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
    meta = timeseries_metadata(result.query, result.total_samples)
    if rep.format == "msgpack":
        return encode_msgpack(meta, series, rep.layout)
    return encode_json(meta, series)


def aggregation_items(result: Result) -> list[AggItem]:
    """Each series' bucket statistics as contiguous columns (empty ones for a point
    without buckets)."""
    out: list[AggItem] = []
    for s in result.series:
        agg = s.aggregates
        if agg is None:
            columns: Aggregates = {"ts": np.zeros(0, np.int64), "count": np.zeros(0, np.int64)}
            columns.update({k: np.zeros(0, np.float64) for k in AGG_FLOAT_KEYS})
        else:
            columns = {k: v if v.flags.c_contiguous else v.copy() for k, v in agg.items()}
        out.append((s.name, columns))
    return out


def aggregations_metadata(query: Query, data_points: int) -> dict[str, Any]:
    """The seed's `/api/aggregations` metadata: `pointName` when there is one point."""
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
    return meta


def encode_aggregations(result: Result, rep: Representation) -> bytes:
    """The `/api/aggregations` document of `result`."""
    series: Sequence[AggItem] = aggregation_items(result)
    if rep.format == "csv":
        return encode_csv(series)
    meta = aggregations_metadata(result.query, result.total_samples)
    if rep.format == "msgpack":
        return encode_msgpack(meta, series, rep.layout)
    return encode_json(meta, series)
