"""JSON bytes of sample rows, assembled with NumPy instead of a loop per sample.

Each sample becomes one row of a byte matrix, every field at a fixed, 8-byte
aligned place and padded with NUL bytes:

    {"name":"<point>","value":  |  "-1234.5"  |  ,"time":"2024-03-04  |  T01:02:03Z"},

or, in the real API's naive time format (a site table with `naive_us`),

    ...  |  ,"time":"2024-03-04T01:02:03  |  .123456"},

where the fraction is left out when it is zero, as Python's `isoformat` does.

The point prefix, the day and the time of day come from lookup tables (per
point, per distinct day, per second of the day) and the value from tables of
digit groups, each placed with one gather of 32- or 64-bit words; then one
boolean mask drops every NUL. JSON text never holds a NUL byte (names go
through `json.dumps`, which escapes control characters), so what remains is
exactly the comma-joined sample objects.
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
from numpy.typing import NDArray

from acechart.simulator.datagen import Rows, SiteTable
from acechart.times import EPOCH

__all__ = ["PageRenderer", "naive_time", "page_body", "samples_body"]

U8 = NDArray[np.uint8]
U32 = NDArray[np.uint32]
U64 = NDArray[np.uint64]

_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)
_MAX_WHOLE = 10**12
_VALUE_WORDS = 3  # 24 bytes: quote, sign, 12 integer digits, dot, 4 decimals, quote
_TIME_WORDS = 4  # ',"time":"YYYY-MM-DDTHH:MM:SSZ"},' is exactly 32 bytes
_NAIVE_TIME_WORDS = 5  # ',"time":"YYYY-MM-DDTHH:MM:SS.ffffff"},' is 38 bytes, padded to 40
_CHUNK_ROWS = 100_000


def _pad8(n: int) -> int:
    return (n + 7) // 8 * 8


def _text_table(texts: list[bytes], width: int, right: bool = False) -> U8:
    """Texts as rows of a NUL-padded byte matrix, left- or right-aligned."""
    table = np.zeros((len(texts), width), dtype=np.uint8)
    for i, text in enumerate(texts):
        raw = np.frombuffer(text, dtype=np.uint8)
        if right:
            table[i, width - len(raw) :] = raw
        else:
            table[i, : len(raw)] = raw
    return table


def _words32(table: U8) -> U32:
    """A (n, 4) byte table as one uint32 per row."""
    return table.view(np.uint32).reshape(-1)


def _digit_columns(values: NDArray[np.int64], width: int) -> U8:
    """ASCII digits of `values`, zero-padded to `width` columns."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers[None, :] % 10 + ord("0")).astype(np.uint8)


def _digit_tables() -> tuple[U32, U32, U32, U32]:
    """For 0..9999: no leading zeros (right-aligned), four digits, "." + three, the fourth."""
    n = np.arange(10_000, dtype=np.int64)
    digits = _digit_columns(n, 4)
    unpadded = digits * (n[:, None] >= np.array([1000, 100, 10, 0])[None, :])
    dot3 = np.concatenate([np.full((10_000, 1), ord("."), np.uint8), digits[:, :3]], axis=1)
    fourth = np.zeros((10_000, 4), np.uint8)
    fourth[:, 0] = digits[:, 3]
    return (
        _words32(unpadded.astype(np.uint8)),
        _words32(digits),
        _words32(np.ascontiguousarray(dot3)),
        _words32(fourth),
    )


def _clock_table() -> U8:
    """'THH:MM:SSZ"},' for every second of a day."""
    s = np.arange(86_400, dtype=np.int64)
    table = np.empty((86_400, 13), dtype=np.uint8)
    table[:] = np.frombuffer(b'T00:00:00Z"},', dtype=np.uint8)
    table[:, 1:3] = _digit_columns(s // 3600, 2)
    table[:, 4:6] = _digit_columns(s // 60 % 60, 2)
    table[:, 7:9] = _digit_columns(s % 60, 2)
    return table


#: For 0..9999: written without leading zeros, as four digits, as "." and the first
#: three of four decimals, and the fourth decimal alone.
_INT4, _DIGITS4, _DOT3, _FOURTH = _digit_tables()
#: Keeps the first k bytes (in memory order) of a 4-byte group, k = 0..4.
_KEEP = _words32(_text_table([b"\xff" * k for k in range(5)], 4))
_CLOCK = _clock_table()
_QUOTE, _MINUS, _QUOTE_SECOND = _words32(_text_table([b'"', b"\0-", b'\0"'], 4))
_ENDS = _words32(_text_table([b'\0\0\0"', b"},"], 4))
_DIGITS3 = _digit_columns(np.arange(1000, dtype=np.int64), 3)
#: For 0..999: "." and three digits (milliseconds), three digits and the closing quote (µs).
_DOT_MS = _words32(np.concatenate([np.full((1000, 1), ord("."), np.uint8), _DIGITS3], axis=1))
_US_QUOTE = _words32(np.concatenate([_DIGITS3, np.full((1000, 1), ord('"'), np.uint8)], axis=1))


class PageRenderer:
    """Renders rows of one site's points; built once per site and reused."""

    def __init__(self, table: SiteTable) -> None:
        prefixes = [b'{"name":' + json.dumps(n).encode() + b',"value":' for n in table.names]
        self.naive_us = table.naive_us
        self.prefix_words = _pad8(max((len(p) for p in prefixes), default=0)) // 8
        time_words = _NAIVE_TIME_WORDS if self.naive_us else _TIME_WORDS
        self.row_words = self.prefix_words + _VALUE_WORDS + time_words
        # Whole-row templates: the point's prefix, NUL everywhere else.
        self.template = (
            _text_table(prefixes, 8 * self.row_words).view(np.uint64).reshape(len(prefixes), -1)
        )
        words = [w.encode() for w, _ in table.vocab]
        if max(len(w) for w in words) > 12:
            raise ValueError("vocabulary words are limited to 12 bytes")
        self.vocab = _text_table(words, 12).view(np.uint32).reshape(len(words), 3)

    def render(self, rows: Rows) -> memoryview:
        """Comma-joined JSON sample objects of `rows`, without enclosing brackets.

        Big pages are rendered in chunks so the byte matrix stays small (cache
        friendly, and a 500,000-sample page does not allocate hundreds of MB).
        """
        n = len(rows)
        if n <= _CHUNK_ROWS:
            return self._render(rows)
        parts = [
            self._render(rows.take(slice(a, a + _CHUNK_ROWS))) for a in range(0, n, _CHUNK_ROWS)
        ]
        return memoryview(b",".join(parts))

    def _render(self, rows: Rows) -> memoryview:
        if len(rows) == 0:
            return memoryview(b"")
        m = np.take(self.template, rows.idx, axis=0)
        v0 = self.prefix_words
        m[:, v0 : v0 + _VALUE_WORDS] = _value_words(rows, self.vocab)
        if self.naive_us:
            m[:, v0 + _VALUE_WORDS :] = _naive_time_words(rows.t_ms, rows.sub_us)
        else:
            m[:, v0 + _VALUE_WORDS :] = _time_words(rows.t_ms // 1000)
        flat = m.view(np.uint8).reshape(-1)
        kept: U8 = flat[flat != 0]
        return kept[:-1].data


def _value_words(rows: Rows, vocab: U32) -> U64:
    """The value field of each row as 6 uint32 groups (viewed as 3 uint64).

    Groups: [quote, sign] [digits 9-12] [digits 5-8] [digits 1-4] [dot, 3 decimals]
    [4th decimal, quote]. Integer groups above the highest non-zero one stay NUL,
    lower ones are zero-padded, the top one is not; decimals keep `decimals` bytes.
    """
    n = len(rows)
    out = np.zeros((n, 6), dtype=np.uint32)
    quoted = rows.quoted
    vint = rows.vint
    dec = rows.decimals.astype(np.intp)
    mag = np.abs(vint)
    unit = _POW10[dec]
    whole = mag // unit
    if n and int(whole.max()) >= _MAX_WHOLE:
        raise ValueError("values of 10**12 and more are not supported")
    frac4 = (mag - whole * unit) * _POW10[4 - dec]
    out[:, 0] = np.where(quoted, _QUOTE, 0) | np.where(vint < 0, _MINUS, 0)
    low = whole % 10_000
    out[:, 3] = _INT4[low]
    big = np.flatnonzero(whole >= 10_000)
    if len(big):
        w = whole[big]
        mid = w // 10_000 % 10_000
        high = w // 100_000_000
        out[big, 3] = _DIGITS4[low[big]]
        out[big, 2] = np.where(high > 0, _DIGITS4[mid], _INT4[mid])
        out[big, 1] = np.where(high > 0, _INT4[high], 0)
    out[:, 4] = _DOT3[frac4] & _KEEP[np.minimum(dec + (dec > 0), 4)]
    out[:, 5] = np.where(dec == 4, _FOURTH[frac4], 0) | np.where(quoted, _QUOTE_SECOND, 0)
    word = np.flatnonzero(rows.word >= 0)
    if len(word):
        out[word, 0] = np.where(quoted[word], _QUOTE, 0)
        out[word, 1:4] = vocab[rows.word[word]]
        out[word, 4] = 0
        out[word, 5] = np.where(quoted[word], _QUOTE_SECOND, 0)
    return out.view(np.uint64)


def _time_words(seconds: NDArray[np.int64]) -> U64:
    """`,"time":"YYYY-MM-DDTHH:MM:SSZ"},` per row as 4 uint64, built once per distinct second.

    Pages are sorted by time, so distinct seconds are found by comparing neighbours.
    """
    distinct, inverse = _distinct(seconds)
    days, sod = np.divmod(distinct, 86_400)
    day_list, day_inverse = _distinct(days)
    text = np.empty((len(distinct), 32), dtype=np.uint8)
    text[:, :19] = _day_text(day_list)[day_inverse]
    text[:, 19:] = _CLOCK[sod]
    words: U64 = text.view(np.uint64)[inverse]
    return words


def _naive_time_words(t_ms: NDArray[np.int64], sub_us: NDArray[np.int16]) -> U64:
    """`,"time":"YYYY-MM-DDTHH:MM:SS.ffffff"},` per row as 5 uint64 (10 groups of 4 bytes).

    Groups 0-6 are the date and time of day, built once per distinct second as
    in `_time_words`; group 7 is "." and the milliseconds, group 8 the
    microseconds and the closing quote, group 9 `},`. A zero fraction is left
    out (groups 7 and 8 keep only the quote).
    """
    distinct, inverse = _distinct(t_ms // 1000)
    days, sod = np.divmod(distinct, 86_400)
    day_list, day_inverse = _distinct(days)
    head = np.empty((len(distinct), 28), dtype=np.uint8)
    head[:, :19] = _day_text(day_list)[day_inverse]
    head[:, 19:] = _CLOCK[sod, :9]
    out = np.empty((len(t_ms), 10), dtype=np.uint32)
    out[:, :7] = head.view(np.uint32)[inverse]
    ms = t_ms % 1000
    us = sub_us.astype(np.intp)
    fraction = (ms != 0) | (us != 0)
    out[:, 7] = np.where(fraction, _DOT_MS[ms], 0)
    out[:, 8] = np.where(fraction, _US_QUOTE[us], _ENDS[0])
    out[:, 9] = _ENDS[1]
    words: U64 = out.view(np.uint64)
    return words


def naive_time(t_ms: int, sub_us: int = 0) -> str:
    """One instant as the renderer writes it in the naive format (`2024-03-04T01:02:03.123456`)."""
    moment = EPOCH + timedelta(milliseconds=t_ms, microseconds=sub_us)
    return moment.replace(tzinfo=None).isoformat()


def _distinct(values: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.intp]]:
    """(distinct values, index of each value in them): `np.unique`, cheap when sorted."""
    if len(values) and bool(np.all(values[1:] >= values[:-1])):
        new = np.empty(len(values), dtype=np.bool_)
        new[0] = True
        np.not_equal(values[1:], values[:-1], out=new[1:])
        return values[new], np.cumsum(new) - 1
    distinct, inverse = np.unique(values, return_inverse=True)
    return distinct, inverse


def _day_text(days: NDArray[np.int64]) -> U8:
    """`,"time":"YYYY-MM-DD` (19 bytes) per day number.

    Civil date by Howard Hinnant's `civil_from_days`, vectorised.
    """
    z = days + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    texts = [
        f',"time":"{y:04d}-{mo:02d}-{d:02d}'.encode()
        for y, mo, d in zip(year.tolist(), month.tolist(), day.tolist(), strict=True)
    ]
    return _text_table(texts, 19)


def page_body(samples: memoryview, next_cursor: str | None, has_more: bool) -> bytes:
    """A `/timeseries/paginated` page: `{"point_samples":[..],"next_cursor":..,"has_more":..}`."""
    cursor = json.dumps(next_cursor).encode()
    more = b"true" if has_more else b"false"
    tail = b'],"next_cursor":' + cursor + b',"has_more":' + more + b"}"
    return b"".join((b'{"point_samples":[', samples, tail))


def samples_body(parts: list[memoryview]) -> bytes:
    """An unpaginated answer: `{"point_samples":[..]}` from rendered parts."""
    return b"".join((b'{"point_samples":[', b",".join(p for p in parts if len(p)), b"]}"))
