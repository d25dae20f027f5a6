"""Type stubs of the Rust core (checked against the binary by mypy.stubtest).

Errors are typed so callers catch exactly what they mean:

- `BlockDecodeError` (a `ValueError`): damaged cache-block bytes, from `decode_block`.
- `PageParseError` (a `ValueError`): a malformed origin page, from `parse_page`.
- `TypeError`: an argument of the wrong type (a list where a NumPy array is expected,
  the wrong dtype or number of dimensions, a non-contiguous array, metadata that is not
  a dict or holds an unsupported type).
- `ValueError`: an argument of the right type with a bad value (arrays of different
  lengths, unsorted timestamps, an unknown format, layout or method name...).

Every message names the argument (and the series, key or metadata path) at fault.
Heavy calls release the GIL, so they can run in a thread (`asyncio.to_thread`).
"""

from collections.abc import Sequence
from typing import Any, Literal, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "BlockDecodeError",
    "PageParseError",
    "ParsedPage",
    "__version__",
    "ace_page_end",
    "aggregate",
    "aggregate_many",
    "decode_agg_block",
    "decode_agg_blocks",
    "decode_block",
    "downsample",
    "encode_ace_page",
    "encode_agg_block",
    "encode_arrow",
    "encode_arrow_wide_head",
    "encode_block",
    "encode_csv",
    "encode_head",
    "encode_json",
    "encode_msgpack",
    "encode_part",
    "encode_tail",
    "held_values",
    "meter_delta",
    "parse_page",
    "render_heatmap",
    "render_thumbnail",
    "rollup_aggregates",
    "rollup_edges",
    "sort_dedup",
]

__version__: str

_I32 = npt.NDArray[np.int32]
_I64 = npt.NDArray[np.int64]
_F64 = npt.NDArray[np.float64]
_Agg = dict[str, npt.NDArray[np.int64] | npt.NDArray[np.float64]]
#: An aggregate series to encode: `_Agg` columns, optionally `first` and `last` (then
#: written) and `partial: bool` (the last bucket is marked `"partial": true`).
_AggDoc = dict[str, npt.NDArray[np.int64] | npt.NDArray[np.float64] | bool]
#: A series of chosen statistics: `ts` (int64 bucket starts), `columns` (a list or tuple
#: of names: exactly these arrays are written, in this order, each int64 or float64;
#: names of 1-32 of a-z, 0-9 and _, none of timestamp, partial, partialLast, name, t,
#: time, point, value), optionally `value` (the column that is the series' value: Arrow's
#: `value`; default the first) and `partial: bool`.
_StatsDoc = dict[str, npt.NDArray[np.int64] | npt.NDArray[np.float64] | bool | str | Sequence[str]]
_Item = tuple[str, _I64, _F64] | tuple[str, _Agg] | tuple[str, _AggDoc] | tuple[str, _StatsDoc]
_Series = Sequence[_Item]
_Format = Literal["json", "msgpack", "csv"]
_Layout = Literal["rows", "columns"]

class BlockDecodeError(ValueError):
    """Bytes that are not a readable cache block.

    Raised by `decode_block` for every failure to decode: bad magic or version,
    truncation, a torn or failed zstd frame or checksum, lengths that do not agree.
    The block is damaged data (treat it as a cache miss), never a caller's bug.
    """

class PageParseError(ValueError):
    """An origin page that is not a valid `timeseries/paginated` document.

    Raised by `parse_page` for every failure to parse; the message names the problem
    and the byte offset where it was found. It is the origin's fault, not a transport
    failure: fetching the same page again gives the same bytes.
    """

@final
class ParsedPage:
    """One parsed origin page as columns (returned by `parse_page`)."""

    @property
    def names(self) -> list[str]:
        """Distinct point names of the kept samples, in first-seen order."""
    @property
    def point_index(self) -> _I32:
        """Per kept sample, its point's index into `names`."""
    @property
    def ts(self) -> _I64:
        """Per kept sample, its time in ms since the epoch (UTC)."""
    @property
    def values(self) -> _F64:
        """Per kept sample, its value; NaN where the origin sent something non-numeric."""
    @property
    def has_more(self) -> bool:
        """The page's `has_more`: whether another page follows."""
    @property
    def next_cursor(self) -> str | None:
        """The page's `next_cursor`, the cursor of the next page (None when absent)."""
    @property
    def non_numeric(self) -> int:
        """How many kept samples had a non-numeric value (stored as NaN)."""
    def __len__(self) -> int:
        """Number of kept samples."""

def parse_page(data: bytes, points: list[str] | None = None, *, paged: bool = True) -> ParsedPage:
    """Parse one ACE `timeseries/paginated` page without a Python object per sample.

    With `points`, samples of other points are skipped. With `paged=False` the body
    may lack the pagination fields (`GET /points/{name}/timeseries` answers
    `{"point_samples": [...]}` alone): a missing `has_more` is false and a missing
    `next_cursor` None; either is still validated when present. Times are ISO 8601
    (naive means UTC; fractions truncated to ms); values are numbers, numeric strings,
    booleans and `"true"/"on"/"active"` (1.0) or `"false"/"off"/"inactive"` (0.0),
    anything else NaN (counted in `non_numeric`). Releases the GIL.

    Raises:
        PageParseError: `data` is not a valid page (the message names the problem and
            its byte offset).
        TypeError: `data` is not `bytes`, or `points` is not a list of str.
    """

def sort_dedup(point_index: _I32, ts: _I64, values: _F64) -> tuple[_I32, _I64, _F64]:
    """Order samples by (point, time); of equal (point, time) pairs the last in input
    order wins. Releases the GIL.

    Raises:
        TypeError: an argument is not a contiguous 1-D array of its dtype
            (int32, int64, float64).
        ValueError: the arrays differ in length.
    """

def aggregate(ts: _I64, values: _F64, bucket_ms: int, origin_ms: int = 0) -> _Agg:
    """Bucket statistics of one time-sorted series.

    Bucket `k` covers `[origin_ms + k * bucket_ms, origin_ms + (k + 1) * bucket_ms)`.
    NaN values are skipped and buckets without a number omitted. Returns the arrays
    `ts` (bucket start) and `count` (int64), `sum`, `min`, `max`, `avg`, `stddev`
    (ddof=1) and the roll-up state `m2`, `first`, `last` (float64). Releases the GIL.

    Raises:
        TypeError: `ts` or `values` is not a contiguous 1-D int64 / float64 array.
        ValueError: `ts` and `values` differ in length, `ts` is not sorted ascending,
            `bucket_ms` is not positive, or a bucket start does not fit in int64.
    """

def aggregate_many(
    series: Sequence[tuple[_I64, _F64]], bucket_ms: int, origin_ms: int = 0
) -> list[_Agg]:
    """`aggregate` of every `(ts, values)` of `series` in one call, in the order given.

    The series are aggregated on every core with the GIL released once (one call
    instead of one per point and thread hop). Each result equals `aggregate(ts, values,
    bucket_ms, origin_ms)`.

    Raises:
        TypeError: an element is not a `(ts, values)` pair of contiguous 1-D int64 /
            float64 arrays.
        ValueError: as `aggregate`, for the first failing series (by position), its
            message prefixed with `series[i]: `.
    """

def rollup_aggregates(aggregates: _Agg, bucket_ms: int, origin_ms: int = 0) -> _Agg:
    """Roll the output of `aggregate` up into coarser buckets (1min -> 5min -> 1hr).

    Exact when `bucket_ms` is a multiple of the fine width on the same origin; `avg`
    and `stddev` of the input are not read (they are derived). Releases the GIL.

    Raises:
        TypeError: a column is not a contiguous 1-D array of its dtype.
        ValueError: a column is missing or of another length, bucket starts are not
            strictly increasing, a count is below 1, or `bucket_ms` is not positive.
    """

def rollup_edges(aggregates: _Agg, edges: _I64) -> _Agg:
    """Merge the output of `aggregate` into the buckets `[edges[k], edges[k + 1])` of any
    widths (local days of 23 or 25 hours, calendar weeks and months).

    Each bucket's `ts` is its start edge; buckets without a fine bucket are omitted and
    fine buckets outside the edges ignored. Exact when every edge lies on the fine grid
    (no fine bucket straddles an edge). Releases the GIL.

    Raises:
        TypeError: a column is not a contiguous 1-D array of its dtype.
        ValueError: a bad aggregate column (as `rollup_aggregates`), or edges that do
            not strictly increase.
    """

def meter_delta(ts: _I64, values: _F64, edges: _I64, reset_threshold: float) -> tuple[_I64, _F64]:
    """Consumption of a cumulative meter per bucket of `edges`: (bucket starts, values).

    Each increment between consecutive readings (NaN skipped) counts in the bucket of
    the later reading; samples before `edges[0]` are not bucketed but the last of them
    is the reading the first bucket is measured from. A drop larger than
    `reset_threshold` is a reset (the increment is the new reading). Buckets without a
    reading are omitted. Releases the GIL.

    Raises:
        ValueError: arrays of different lengths, unsorted `ts` or edges, or a negative
            or NaN threshold.
    """

def held_values(ts: _I64, values: _F64, edges: _I64, until_ms: int) -> dict[str, _I64 | _F64]:
    """Per bucket of `edges`, each value held from its sample to the next (the last one
    until `until_ms` or the bucket's end; NaN: unknown until the next sample), and the
    value in force at `edges[0]` (the last earlier sample) held into the first bucket.

    Returns `ts` (bucket starts), `twa` (time-weighted average over the known time),
    `on_time` (seconds with a non-zero value) and `known_ms` (int64); buckets without
    known time are omitted. Releases the GIL.

    Raises:
        ValueError: arrays of different lengths, unsorted `ts` or edges.
    """

def downsample(
    ts: _I64,
    values: _F64,
    n_out: int,
    method: Literal["minmaxlttb", "m4"] = "minmaxlttb",
    *,
    assume_sorted: bool = False,
) -> _I64:
    """Sorted indices of the samples worth drawing, at most `n_out`, first and last
    included.

    `"minmaxlttb"` needs `n_out >= 3`, `"m4"` a positive multiple of 4. NaN values are
    never selected except as the first or last sample; a series of at most `n_out`
    samples is returned whole. With `assume_sorted=True`, `ts` is trusted to be sorted
    and not checked (one pass fewer; on unsorted input the indices are unspecified).
    Inputs of 2**20 samples or more are scanned on every core, with exactly the
    single-threaded result. Releases the GIL.

    Raises:
        TypeError: `ts` or `values` is not a contiguous 1-D int64 / float64 array.
        ValueError: the arrays differ in length, `ts` is not sorted ascending (unless
            `assume_sorted`), the method is unknown, or `n_out` is invalid for it.
    """

#: How `render_thumbnail` draws a series.
_Mark = Literal["line", "step", "bar", "scatter"]

def render_thumbnail(
    series: Sequence[tuple[_I64, _F64] | tuple[_I64, _F64, int, _Mark]],
    width: int,
    height: int,
    start_ms: int,
    end_ms: int,
) -> bytes:
    """The PNG bytes of a `width` x `height` thumbnail of `series` over `[start_ms, end_ms)`.

    Each series is `(ts, values)` or `(ts, values, group, mark)`: `ts` int64 ms sorted
    ascending, `values` float64 of the same length, `group` the index of the y scale it
    shares with other series (default 0), `mark` how it is drawn: `line` (the default),
    `step` (each value held to the next sample), `bar` (a column from zero per sample, as
    wide as the closest spacing; bar series side by side) or `scatter` (a dot per sample).
    A group holding bars includes zero. Series longer than the width are downsampled to it
    with MinMaxLTTB; NaN breaks a line. Drawn anti-aliased with tiny-skia in ECharts'
    default palette. Releases the GIL.

    Raises:
        TypeError: a series is not such a tuple, or an array is not a contiguous 1-D int64
            / float64 array.
        ValueError: a side outside 1..4096, `end_ms <= start_ms`, arrays of different
            lengths, unsorted timestamps, a group outside 0..len(series)-1, or an unknown
            mark.
    """

def render_heatmap(cells: npt.NDArray[np.float64], width: int, height: int) -> bytes:
    """The PNG bytes of a `width` x `height` heat map of `cells` (2-D float64, C order).

    Row 0 is drawn at the top, column 0 on the left; the cells tile the image in whole
    pixels. Each is coloured by its value between the grid's lowest and highest finite
    values on the blue-to-red scale of ECharts' heat map examples (11 stops, linear
    between them; a flat grid takes the middle stop); NaN cells stay blank. Releases the
    GIL.

    Raises:
        TypeError: `cells` is not a C-contiguous 2-D float64 array.
        ValueError: a side outside 1..4096.
    """

def encode_json(metadata: dict[str, Any], series: _Series) -> bytes:
    """The response document as compact JSON.

    `{"metadata":{..},"series":[{"name":..,"data":[[ts,v],..]} |
    {"name":..,"aggregations":[{"timestamp":..,"avg":..,..},..]}]}`; NaN and
    infinities are `null`. Each series is `(name, ts, values)`, `(name, aggregates)`
    with the dict `aggregate` returns, or `(name, statistics)` with a `columns` list
    (its rows carry `timestamp` and exactly those columns, in order). The GIL is
    released for large documents.

    Raises:
        TypeError: `metadata` is not a dict or holds an unsupported type (allowed:
            dict, list, tuple, str, int, float, bool, None) or a non-str key; `series`
            is not a list or tuple of such tuples; a name is not str; an array is not a
            contiguous 1-D array of its dtype.
        ValueError: arrays of one series differ in length, an aggregate key is missing,
            a statistics column is missing, repeated, badly named or reserved (or `value`
            names none), an integer does not fit in 64 bits, a string is not valid UTF-8,
            or the metadata is nested deeper than 64 levels.
    """

def encode_msgpack(
    metadata: dict[str, Any], series: _Series, layout: Literal["rows", "columns"] = "rows"
) -> bytes:
    """The response document as MessagePack.

    `layout="rows"` is the JSON document's shape (the bytes `msgpack.packb` gives,
    NaN as nil); `"columns"` carries each array as a `bin` of little-endian float64.
    The GIL is released for large documents.

    Raises:
        TypeError: as `encode_json`.
        ValueError: as `encode_json`, or an unknown `layout`.
    """

def encode_csv(series: _Series) -> bytes:
    """Long-format CSV: `time,point,value` (raw series),
    `time,point,count,sum,min,max,avg,stddev` (aggregate series) or
    `time,point,<columns>,partial` (statistics series; `partial` is `true` on a
    series' running last bucket, else `false`), ISO 8601 UTC times.

    The GIL is released for large documents.

    Raises:
        TypeError: as `encode_json` for `series`.
        ValueError: as `encode_json`, raw and aggregate series in one list, or
            statistics series with different columns.
    """

def encode_head(
    format: _Format,
    metadata: dict[str, Any],
    n_series: int,
    layout: _Layout = "rows",
    *,
    aggregated: bool = False,
    columns: Sequence[str] | None = None,
) -> bytes:
    """Everything of a document before its first series.

    `head + b"".join(encode_part(format, s, i, layout) for i, s in enumerate(series))
    + encode_tail(format)` equals the whole document (`encode_json(metadata, series)`,
    `encode_msgpack(metadata, series, layout)` or `encode_csv(series)`) byte for byte.
    For MessagePack the head ends with the header of an array of `n_series`; for CSV it
    is the header line, of aggregate columns when `aggregated` and `n_series > 0`, or of
    statistics series' `columns` (and `partial`) when given and `n_series > 0`
    (`metadata` is validated but not written). `layout` is validated for every format;
    both MessagePack layouts share one head.

    Raises:
        TypeError: `metadata` as for `encode_json`; an argument of the wrong type.
        ValueError: an unknown `format` or `layout`, a negative `n_series` (or over
            2**32 - 1 for MessagePack), or metadata values as for `encode_json`.
    """

def encode_part(format: _Format, item: _Item, index: int, layout: _Layout = "rows") -> bytes:
    """One series, `(name, ts, values)` or `(name, aggregates)`, as it appears at
    position `index` of the document, with the separator that precedes it (a JSON
    comma when `index > 0`).

    The caller keeps one kind of series per CSV document (and says which to
    `encode_head`). The GIL is released for large series.

    Raises:
        TypeError: `item` is not such a tuple, or an array is not a contiguous 1-D
            array of its dtype.
        ValueError: an unknown `format` or `layout`, a negative `index`, arrays of
            different lengths, or a missing aggregate key.
    """

def encode_tail(format: _Format) -> bytes:
    """Everything of a document after its last series: `b"]}"` for JSON, nothing for
    MessagePack and CSV.

    Raises:
        ValueError: an unknown `format`.
    """

_Raw = Sequence[tuple[str, _I64, _F64]]

def ace_page_end(
    series: _Raw, after: tuple[int, int] | None, limit: int
) -> tuple[int, int, int, bool]:
    """Where an ACE `timeseries/paginated` page of `series` ends.

    Rows are ordered by time, then by the series' position in the list (pass the
    series sorted by name, as the origin orders points). Walking that order strictly
    after the position `after = (ts_ms, series_index)` (from the start when None), the
    page takes up to `limit` rows. Returns `(rows, last_ts, last_index, has_more)`: the
    number of rows taken, the position of the last one (`after`, or `(0, 0)`, when none
    was taken) and whether any row follows; the next page starts after that position.
    The GIL is released for large inputs.

    Raises:
        TypeError: `series` is not a list or tuple of `(name, ts, values)` tuples (an
            aggregates dict is refused), or an array is not a contiguous 1-D int64 /
            float64 array; `after` is not a pair of ints or None.
        ValueError: arrays of one series differ in length, a `ts` is not sorted
            ascending without duplicates, `limit < 1`, or a negative series index.
    """

def encode_ace_page(
    series: _Raw,
    after: tuple[int, int] | None,
    limit: int,
    next_cursor: str | None,
    has_more: bool,
    format: Literal["json", "msgpack"] = "json",
) -> bytes:
    """The whole body of the ACE page `ace_page_end(series, after, limit)` describes,
    in the ACE API's own shape:
    `{"point_samples":[{"name":..,"value":..,"time":..},..],"next_cursor":..,"has_more":..}`
    (JSON, or the same document as MessagePack, as `msgpack.packb` writes it).

    `value` is a string, the shortest decimal that reads back to the same float64 in
    JavaScript's `String(x)` spelling (`"45.5"`, `"72"`, `"1e+21"`, `"-0"` for negative
    zero), so `parseFloat` and `float` give it back exactly; NaN and infinities are
    null. `time` is ISO 8601 UTC with `Z`, with milliseconds only when the time is not
    a whole second (`2024-01-01T00:00:00Z`, `2024-01-01T00:00:00.250Z`). `next_cursor`
    and `has_more` are written as given. The GIL is released for large pages.

    Raises:
        TypeError: as `ace_page_end`; `next_cursor` is not str or None, `has_more` not
            bool.
        ValueError: as `ace_page_end`, or an unknown `format`.
    """

def encode_arrow(
    metadata: dict[str, Any],
    series: _Series,
    layout: Literal["series", "wide"] = "series",
    tz: str = "UTC",
) -> bytes:
    """The series as an Arrow IPC stream (`application/vnd.apache.arrow.stream`), read
    back by `pyarrow.ipc.open_stream` or `polars.read_ipc_stream`.

    `layout="series"`: one record batch per series, in list order, with the columns
    `point` (dictionary-encoded utf8 with int32 keys; one dictionary of all names),
    `time` (`timestamp[ms, tz]`) and `value` (float64); aggregate series (all or none)
    add `count` (int64), `sum`, `min`, `max`, `avg`, `stddev` (and `first`, `last` when
    given), and their `value` is `avg`; statistics series (all with the same columns)
    add their columns (int64 or float64) and `partial` (bool, true on the running last
    bucket), their `value` being the `value` column. Nothing is null: NaN stays NaN.
    `layout="wide"`: one batch, `time` (the sorted union of all times) and one nullable
    float64 column per series named by its point (aggregates: `avg`; statistics: their
    value), null where the series has no sample at that time.
    The schema metadata holds `metadata` as JSON under `acechart:metadata` and the
    series as a JSON list of `{"name", "rows"}` under `acechart:series`. `tz` is
    written into the time type, checked for its spelling only: a zone name such as
    `"America/Chicago"` (an offset such as `"+05:30"` is valid Arrow, but polars
    refuses it). The GIL is released for large inputs.

    Raises:
        TypeError: `metadata` or `series` as for `encode_json`.
        ValueError: as `encode_json`; an unknown `layout`; a malformed `tz`; raw,
            aggregate and statistics series mixed, or statistics series with different
            columns, in the `series` layout; in the `wide` layout, a
            point named `time` or twice, or a `ts` not sorted ascending without
            duplicates.
    """

def encode_arrow_wide_head(
    metadata: dict[str, Any], listing: Sequence[tuple[str, int]], tz: str = "UTC"
) -> bytes:
    """The schema message of a `layout="wide"` stream written in pieces, for series
    named and sized by `listing` (`(name, rows)` each, in order): the schema message
    `encode_arrow(metadata, series, "wide", tz)` begins with, and nothing after it.

    Record batches of row ranges of the same table may follow (each the batch of a
    wide `encode_arrow` of the series' rows in that time range), then the
    end-of-stream marker.

    Raises:
        TypeError: `metadata` as for `encode_json`, or `listing` not `(str, int)` pairs.
        ValueError: a malformed `tz`, metadata nested too deep, or a point named
            `time` or twice.
    """

def encode_block(point: str, ts: _I64, values: _F64, covered: npt.NDArray[np.int64]) -> bytes:
    """Serialise one point's samples for one period and the `[start, end)` intervals
    (shape `(k, 2)`, ms) they cover, zstd-compressed under a checksum. Releases the GIL.

    Raises:
        TypeError: an argument is not of its type (str; contiguous int64 / float64
            arrays).
        ValueError: `ts` and `values` differ in length, `ts` is not strictly
            increasing, `covered` is not of shape `(k, 2)` or its intervals are empty,
            reversed, unsorted or overlapping.
    """

def decode_block(data: bytes) -> tuple[str, _I64, _F64, npt.NDArray[np.int64]]:
    """Read a block back: `(point, ts, values, covered)`. Releases the GIL.

    Raises:
        BlockDecodeError: `data` is not a readable block, whatever the damage.
        TypeError: `data` is not `bytes`.
    """

def encode_agg_block(
    site: str,
    point: str,
    level: str,
    period: str,
    aggregates: _Agg,
    covered: npt.NDArray[np.int64],
) -> bytes:
    """Serialise the buckets of one point at one level for one period (the aggregate
    tier's blob): the mergeable state `ts`, `count`, `sum`, `min`, `max`, `m2`,
    `first`, `last` of `aggregates` (`avg` and `stddev` are derived on decoding) and
    the `(k, 2)` covered `[start, end)` intervals, with site, point, level and period
    under the checksum. Releases the GIL.

    Raises:
        TypeError: a column is not a contiguous 1-D array of its dtype.
        ValueError: a column is missing or of another length, bucket starts are not
            strictly increasing, a count is below 1, `covered` is not sorted, disjoint
            `(k, 2)` intervals, or a bucket start lies outside them.
    """

def decode_agg_block(data: bytes) -> tuple[str, str, str, str, _Agg, npt.NDArray[np.int64]]:
    """Read an aggregate blob back: `(site, point, level, period, aggregates, covered)`,
    `aggregates` as `aggregate` returns them. Releases the GIL.

    Raises:
        BlockDecodeError: `data` is not a readable aggregate block, whatever the damage.
    """

def decode_agg_blocks(
    site: str,
    level: str,
    points: list[str],
    blocks: Sequence[tuple[int, str, bytes, Sequence[tuple[int, int]]]],
    start_ms: int,
    end_ms: int,
) -> tuple[_Agg, _I64, list[tuple[int, str]]]:
    """Decode the aggregate blobs of one query together: `(columns, bounds, damaged)`.

    `blocks` holds `(point index, period, data, claimed intervals)` per stored blob.
    Point `points[i]` gets rows `bounds[i]:bounds[i + 1]` of every column of
    `columns` (keys as `aggregate` returns them): its buckets with
    `start_ms <= ts < end_ms`, in time order. A blob that does not decode, holds
    another site, point, level or period, does not cover its claimed intervals or
    overlaps another blob of its point contributes nothing and is listed in `damaged`
    as `(position in blocks, reason)`: damage is reported, never raised. Releases the
    GIL (blobs decode in parallel).

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: a point index outside `points`.
    """
