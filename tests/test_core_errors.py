"""Errors cross the Rust boundary typed: callers catch exactly what they mean.

Damaged block bytes are `BlockDecodeError`, a malformed origin page `PageParseError`
(both `ValueError`s, and raised by nothing else); an argument of the wrong type is a
`TypeError`; an argument with a bad value is a plain `ValueError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from acechart import _core

TS = np.arange(10, dtype=np.int64)
V = np.linspace(0.0, 1.0, 10)
NO_COVER = np.zeros((0, 2), np.int64)
AGG = _core.aggregate(TS, V, 3)
PAGE = b'{"point_samples": [{"name": "a", "value": "1", "time": "2024-01-01"}], "has_more": false}'


def test_exception_classes() -> None:
    for cls in (_core.BlockDecodeError, _core.PageParseError):
        assert issubclass(cls, ValueError)
        assert cls.__module__ == "acechart._core"
        assert cls.__name__ in _core.__all__
        assert cls.__doc__
    assert not issubclass(_core.BlockDecodeError, _core.PageParseError)
    assert not issubclass(_core.PageParseError, _core.BlockDecodeError)


WRONG_TYPES: list[tuple[str, Callable[[], object], str]] = [
    ("parse_page-str", lambda: _core.parse_page("{}"), "data"),  # type: ignore[arg-type]
    ("parse_page-points", lambda: _core.parse_page(PAGE, [1]), "points"),  # type: ignore[arg-type]
    ("sort_dedup-list", lambda: _core.sort_dedup([0], TS[:1], V[:1]), "point_index"),  # type: ignore[arg-type]
    ("sort_dedup-dtype", lambda: _core.sort_dedup(TS[:1], TS[:1], V[:1]), "point_index"),  # type: ignore[arg-type]
    ("aggregate-list", lambda: _core.aggregate(list(TS), V, 3), "ts"),  # type: ignore[arg-type]
    ("aggregate-strided", lambda: _core.aggregate(TS[::2], V[::2], 3), "contiguous"),
    ("rollup-not-dict", lambda: _core.rollup_aggregates([AGG], 6), "aggregates"),  # type: ignore[arg-type]
    (
        "rollup-dtype",
        lambda: _core.rollup_aggregates({**AGG, "ts": AGG["ts"].astype(float)}, 6),
        '"ts" must be a 1-D int64',
    ),
    ("downsample-dtype", lambda: _core.downsample(TS, V.astype(np.float32), 4), "values"),  # type: ignore[arg-type]
    ("downsample-n_out", lambda: _core.downsample(TS, V, "4"), "n_out"),  # type: ignore[arg-type]
    ("encode_json-metadata", lambda: _core.encode_json(None, []), "metadata must be a dict"),  # type: ignore[arg-type]
    ("encode_json-series", lambda: _core.encode_json({}, {"p": TS}), "series must be a list"),  # type: ignore[arg-type]
    ("encode_msgpack-array", lambda: _core.encode_msgpack({}, [("p", list(TS), V)]), '"ts"'),  # type: ignore[list-item]
    ("encode_csv-name", lambda: _core.encode_csv([(1, TS, V)]), "name must be str"),  # type: ignore[list-item]
    ("encode_head-metadata", lambda: _core.encode_head("json", {"a": object()}, 1), "unsupported"),
    ("encode_part-item", lambda: _core.encode_part("json", None, 0), r"series\[0\]"),  # type: ignore[arg-type]
    ("encode_tail-format", lambda: _core.encode_tail(b"json"), "format"),  # type: ignore[arg-type]
    ("encode_block-point", lambda: _core.encode_block(1, TS, V, NO_COVER), "point"),  # type: ignore[arg-type]
    ("encode_block-covered", lambda: _core.encode_block("p", TS, V, [[0, 1]]), "covered"),  # type: ignore[arg-type]
    ("decode_block-str", lambda: _core.decode_block("ACB"), "data"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("call", "needle"), [w[1:] for w in WRONG_TYPES], ids=[w[0] for w in WRONG_TYPES]
)
def test_wrong_types_are_type_errors(call: Callable[[], object], needle: str) -> None:
    with pytest.raises(TypeError, match=needle):
        call()


BAD_VALUES: list[tuple[str, Callable[[], object], str]] = [
    ("sort_dedup-lengths", lambda: _core.sort_dedup(TS[:2].astype(np.int32), TS, V), "same length"),
    ("aggregate-bucket", lambda: _core.aggregate(TS, V, 0), "bucket_ms must be positive"),
    ("aggregate-unsorted", lambda: _core.aggregate(TS[::-1].copy(), V, 3), "sorted"),
    ("rollup-missing", lambda: _core.rollup_aggregates({"ts": AGG["ts"]}, 6), 'missing "count"'),
    ("downsample-method", lambda: _core.downsample(TS, V, 4, "lttb"), "unknown downsampling"),  # type: ignore[arg-type]
    ("downsample-n_out", lambda: _core.downsample(TS, V, -1), "n_out"),
    ("encode_json-lengths", lambda: _core.encode_json({}, [("p", TS, V[:3])]), "'values' has 3"),
    ("encode_json-big-int", lambda: _core.encode_json({"n": 2**70}, []), "64 bits"),
    ("encode_msgpack-layout", lambda: _core.encode_msgpack({}, [], "cols"), "layout"),  # type: ignore[arg-type]
    ("encode_csv-mixed", lambda: _core.encode_csv([("r", TS, V), ("a", AGG)]), "raw and"),
    ("encode_head-format", lambda: _core.encode_head("xml", {}, 0), "format"),  # type: ignore[arg-type]
    ("encode_part-index", lambda: _core.encode_part("json", ("p", TS, V), -1), "index"),
    (
        "encode_block-order",
        lambda: _core.encode_block("p", TS[::-1].copy(), V, NO_COVER),
        "strictly",
    ),
    (
        "encode_block-shape",
        lambda: _core.encode_block("p", TS, V, np.zeros((1, 3), np.int64)),
        "shape",
    ),
]


@pytest.mark.parametrize(
    ("call", "needle"), [b[1:] for b in BAD_VALUES], ids=[b[0] for b in BAD_VALUES]
)
def test_bad_values_are_plain_value_errors(call: Callable[[], object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle) as info:
        call()
    assert type(info.value) is ValueError  # not mistaken for damaged data


@pytest.mark.parametrize(
    "data",
    [b"", b"ACB", b"ACB\x01", b"XYZ\x01" + bytes(30), PAGE],
    ids=["empty", "magic-only", "no-count", "bad-magic", "a-page"],
)
def test_damaged_blocks_are_block_decode_errors(data: bytes) -> None:
    with pytest.raises(_core.BlockDecodeError, match="corrupt block"):
        _core.decode_block(data)


def test_every_truncation_of_a_block_is_a_block_decode_error() -> None:
    good = _core.encode_block("p", TS, V, np.array([[0, 10]], np.int64))
    for cut in range(len(good)):
        with pytest.raises(_core.BlockDecodeError):
            _core.decode_block(good[:cut])


@pytest.mark.parametrize(
    "data",
    [b"", b"{", PAGE[:-1], PAGE + b"x", b"\xff", _core.encode_block("p", TS, V, NO_COVER)],
    ids=["empty", "open", "cut", "trailing", "not-utf8", "a-block"],
)
def test_malformed_pages_are_page_parse_errors(data: bytes) -> None:
    with pytest.raises(_core.PageParseError, match="invalid page at byte"):
        _core.parse_page(data)


def test_good_inputs_still_work() -> None:
    assert len(_core.parse_page(PAGE)) == 1
    block = _core.encode_block("p", TS, V, NO_COVER)
    assert _core.decode_block(block)[0] == "p"
    meta: dict[str, Any] = {"ok": True}
    assert _core.encode_json(meta, []) == b'{"metadata":{"ok":true},"series":[]}'
