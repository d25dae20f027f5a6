"""Fuzz targets: every parser of untrusted bytes, each with the property it must keep.

Each target takes one input (bytes from the fuzzer) and raises `AssertionError`
(or any exception it does not expect) when the property fails, which atheris
reports as a crash and saves as a reproducer. The properties:

- `page`: `parse_page` (Rust) accepts only a JSON document the way the origin
  writes it, raising `PageParseError` for anything else; what it accepts agrees
  with Python's `json` sample by sample (names, times, numeric values, cursor).
- `block`, `aggblock`: a damaged block is `BlockDecodeError`, never a panic or
  another error; what decodes is well formed (sorted, consistent lengths) and
  survives a round trip through the encoder.
- `cursor`: `repair_cursor` never fails, and changes a cursor only to the ACE
  form with the offset the repair promises.
- `range`, `etag`, `accept`: header parsers never fail; a range is within the
  object and as RFC 9110's grammar reads it; qualities lie in [0, 1].
- `isotime`: `parse_iso_ms` and `parse_time` raise only their documented errors,
  and agree with `datetime` on what they accept.
- `query`: a query string becomes a `Query` or a `BadRequest`, nothing else.

`tests/fuzz/run.py` runs one under atheris (or `all`: `every_target`);
`tests/test_fuzz.py` runs them all for a bounded number of inputs from the committed
corpus in `tests/fuzz/corpus/<target>/`, `make fuzz` each for longer.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import numpy as np
from multidict import MultiDict

from acechart import _core
from acechart.errors import BadRequest
from acechart.origin.client import repair_cursor
from acechart.query import parse_time
from acechart.server.headers import etag_matches, parse_range
from acechart.server.params import Params, parse_query
from acechart.settings import Settings
from acechart.times import parse_iso_ms
from acechart.wire import negotiate, parse_qualities

__all__ = ["ORDER", "TARGETS", "every_target"]

_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
#: RFC 9110's one-range grammar (`bytes=first-last`, `bytes=first-`, `bytes=-suffix`),
#: whitespace around it allowed: a reference written apart from `parse_range`.
_RANGE = re.compile(r"\s*bytes=([0-9]*)-([0-9]*)\s*", re.IGNORECASE | re.ASCII)
_SETTINGS = Settings.from_env({})


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _reference_ms(text: str) -> int | None:
    """Milliseconds of an ISO-8601 time as Python's `datetime` reads it (naive = UTC,
    fractions truncated), or None when it does not."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def page(data: bytes) -> None:
    try:
        parsed = _core.parse_page(data)
    except _core.PageParseError:
        return
    body = json.loads(data)  # accepted: it must be JSON
    samples = body["point_samples"]
    assert isinstance(samples, list)
    assert len(parsed) == len(samples)
    assert parsed.has_more is body["has_more"]
    assert parsed.next_cursor == body.get("next_cursor")  # only has_more is required
    names = parsed.names
    index = parsed.point_index
    for i, sample in enumerate(samples):
        assert names[index[i]] == sample["name"]
        ms = _reference_ms(sample["time"])
        if ms is not None:
            assert parsed.ts[i] == ms, (sample["time"], parsed.ts[i], ms)
        value = sample["value"]
        if isinstance(value, bool):
            assert parsed.values[i] == float(value)
        elif isinstance(value, int | float) or (
            isinstance(value, str) and _NUMBER.fullmatch(value)
        ):
            expected = float(value)
            if math.isfinite(expected):
                assert parsed.values[i] == expected, (value, parsed.values[i])
        elif value is None:
            assert math.isnan(parsed.values[i])


def block(data: bytes) -> None:
    try:
        point, ts, values, covered = _core.decode_block(data)
    except _core.BlockDecodeError:
        return
    assert len(ts) == len(values)
    assert covered.ndim == 2 and covered.shape[1] == 2
    assert bool(np.all(np.diff(ts) > 0))
    again = _core.decode_block(_core.encode_block(point, ts, values, covered))
    assert again[0] == point
    np.testing.assert_array_equal(again[1], ts)
    np.testing.assert_array_equal(again[2], values)
    np.testing.assert_array_equal(again[3], covered)


def aggblock(data: bytes) -> None:
    try:
        site, point, level, period, aggs, covered = _core.decode_agg_block(data)
    except _core.BlockDecodeError:
        return
    ts = aggs["ts"]
    assert bool(np.all(np.diff(ts) > 0))
    assert all(len(column) == len(ts) for column in aggs.values())
    assert bool(np.all(aggs["count"] >= 1))
    blob = _core.encode_agg_block(site, point, level, period, aggs, covered)
    again = _core.decode_agg_block(blob)
    assert again[:4] == (site, point, level, period)
    for key, column in aggs.items():
        np.testing.assert_array_equal(again[4][key], column)
    np.testing.assert_array_equal(again[5], covered)


def _ace_cursor(text: str) -> tuple[int, str] | None:
    try:
        value = json.loads(base64.b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(value, dict) and type(value.get("offset")) is int:
        stamp = value.get("timestamp")
        if isinstance(stamp, str):
            return value["offset"], stamp
    return None


def cursor(data: bytes) -> None:
    head, _, rest = data.partition(b"\n")
    sent_raw, _, returned_raw = rest.partition(b"\n")
    rows = head[0] if head else 0
    sent = None if not sent_raw else _text(sent_raw)
    returned = _text(returned_raw)
    result = repair_cursor(sent, returned, np.zeros(rows, dtype=np.int64))
    if result != returned:
        assert sent is not None
        before, after, fixed = _ace_cursor(sent), _ace_cursor(returned), _ace_cursor(result)
        assert before is not None and after is not None and fixed is not None
        assert after == (rows, before[1]) and fixed == (before[0] + rows, before[1])


def range_header(data: bytes) -> None:
    size = int.from_bytes(data[:2], "little")
    header = _text(data[2:])
    result = parse_range(header, size)
    grammar = _RANGE.fullmatch(header)
    if result is None or result == "unsatisfiable":
        if grammar is None:
            return
        first, last = grammar.groups()
        if result is None:
            # Ignored: only a malformed spec or an end before its start may be.
            assert (not first and not last) or (first and last and int(last) < int(first))
        return
    assert grammar is not None, header  # a range is only ever read from the grammar
    start, end = result
    assert 0 <= start < end <= size
    first, last = grammar.groups()
    if first:
        assert start == int(first)
        assert end == (min(int(last) + 1, size) if last else size)
    else:
        assert (start, end) == (max(0, size - int(last)), size)


def etag(data: bytes) -> None:
    header, _, tag = _text(data).partition("\n")
    assert etag_matches(header, tag or '"x"') in (True, False)
    if tag and tag.strip() and "," not in tag:
        assert etag_matches(f"{header},{tag.strip()}", tag.strip())


def accept(data: bytes) -> None:
    text = _text(data)
    for quality in parse_qualities(text).values():
        assert 0.0 <= quality <= 1.0, quality
    try:
        negotiate({}, text)
        negotiate({"format": text[:16]}, text)
    except BadRequest:
        pass


def isotime(data: bytes) -> None:
    text = _text(data)
    try:
        ms = parse_iso_ms(text)
    except ValueError:
        ms = None
    reference = _reference_ms(text.strip())
    assert ms == reference, (text, ms, reference)
    with contextlib.suppress(BadRequest):
        parse_time(text, "start")


def query(data: bytes) -> None:
    pairs = parse_qsl(_text(data), keep_blank_values=True)
    with contextlib.suppress(BadRequest):
        parse_query(Params(MultiDict(pairs)), _SETTINGS, default_interval="raw")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "page": page,
    "block": block,
    "aggblock": aggblock,
    "cursor": cursor,
    "range": range_header,
    "etag": etag,
    "accept": accept,
    "isotime": isotime,
    "query": query,
}

#: Targets by index, for `every_target`.
ORDER: tuple[str, ...] = tuple(sorted(TARGETS))


def every_target(data: bytes) -> None:
    """All targets in one: the first byte picks one (`ORDER[byte % n]`), the rest is its
    input. One process then fuzzes them all, which a bounded run in the tests affords."""
    if data:
        TARGETS[ORDER[data[0] % len(ORDER)]](data[1:])
