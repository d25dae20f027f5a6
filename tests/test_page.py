"""parse_page against a json.loads-based reference, on generated, edge-case and fuzzed pages."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from acechart import _core
from tests import reference

NAMES = [
    "ses/ses_falls_city/192.168.96.3/n4/AHU-1/VAV-707.points.DaTemp",
    "ses/ses_falls_city/192.168.96.3/n4/AHU-1/VAV-707.points.Damper",
    "a",
    'point with spaces, commas and "quotes"',
    "ünïcødé/点/🌡",
    "back\\slash/and/slash",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(ms: int, style: int) -> str:
    """Render ms in one of the timestamp spellings origins send."""
    dt = EPOCH + timedelta(milliseconds=ms)
    base = f"{dt.year:04d}-" + dt.strftime("%m-%dT%H:%M:%S")
    if style == 0:
        return base + "Z"
    if style == 1:
        return base + f".{dt.microsecond // 1000:03d}Z"
    if style == 2:
        return base + f".{dt.microsecond:06d}123+00:00"
    if style == 3:
        return base
    if style == 4:
        shifted = dt + timedelta(hours=5, minutes=30)
        stamp = f"{shifted.year:04d}-" + shifted.strftime("%m-%dT%H:%M:%S")
        return stamp + f".{dt.microsecond // 1000:03d}+05:30"
    return base[:16] + "Z"


values_st = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda f: f"{f:.3f}"),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63),
    st.booleans(),
    st.none(),
    st.sampled_from(
        [
            "",
            "NaN",
            "nan",
            "inf",
            "-Infinity",
            " 7 ",
            "-1e3",
            "+.5",
            "5.",
            "active",
            "Inactive",
            "ON",
            "off",
            "TRUE",
            "false",
            "fault",
            "1.2.3",
            "--1",
            "1e",
            "0x10",
            "\t42\n",
        ]
    ),
    st.text(max_size=8),
    st.just([1, 2]),
    st.just({"nested": True}),
)

# Years 0003..9892: every spelling, including the +05:30 shift, stays in 0001..9999.
times_st = st.integers(-62_000_000_000_000, 250_000_000_000_000)


@st.composite
def pages(draw: st.DrawFn) -> tuple[bytes, list[dict[str, Any]]]:
    samples = draw(
        st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(NAMES), "value": values_st, "time": times_st}
            ),
            max_size=60,
        )
    )
    styles = draw(st.lists(st.integers(0, 5), min_size=len(samples), max_size=len(samples)))
    docs = [
        {"name": s["name"], "value": s["value"], "time": iso(s["time"], style)}
        for s, style in zip(samples, styles, strict=True)
    ]
    page = {
        "point_samples": docs,
        "next_cursor": draw(st.none() | st.text(max_size=20)),
        "has_more": draw(st.booleans()),
    }
    if draw(st.booleans()):
        page["extra"] = {"ignored": [1, 2.5, None, "x"]}
    text = json.dumps(
        page, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1]))
    )
    return text.encode(), docs


def assert_same(ours: _core.ParsedPage, ref: reference.RefPage) -> None:
    assert ours.names == ref.names
    np.testing.assert_array_equal(ours.point_index, np.array(ref.point_index, dtype=np.int32))
    np.testing.assert_array_equal(ours.ts, np.array(ref.ts, dtype=np.int64))
    np.testing.assert_array_equal(ours.values, np.array(ref.values, dtype=np.float64))
    assert ours.has_more is ref.has_more
    assert ours.next_cursor == ref.next_cursor
    assert ours.non_numeric == ref.non_numeric
    assert ours.point_index.dtype == np.int32
    assert ours.ts.dtype == np.int64
    assert ours.values.dtype == np.float64


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(pages())
def test_matches_reference(page: tuple[bytes, list[dict[str, Any]]]) -> None:
    data, _ = page
    assert_same(_core.parse_page(data), reference.parse_page(data))


@settings(max_examples=150)
@given(pages(), st.lists(st.sampled_from([*NAMES, "absent"]), max_size=4))
def test_point_filter(page: tuple[bytes, list[dict[str, Any]]], points: list[str]) -> None:
    data, _ = page
    assert_same(_core.parse_page(data, points), reference.parse_page(data, points))


def _page(samples: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps(
        {"point_samples": samples, "next_cursor": None, "has_more": False, **extra}
    ).encode()


def test_empty_and_single() -> None:
    p = _core.parse_page(_page([]))
    assert len(p) == 0 and p.names == [] and p.ts.shape == (0,) and not p.has_more
    p = _core.parse_page(_page([{"name": "x", "value": "72.5", "time": "2024-01-01T00:00:00Z"}]))
    assert p.names == ["x"] and p.ts.tolist() == [1_704_067_200_000] and p.values.tolist() == [72.5]
    assert "samples=1" in repr(p)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2024-01-01T00:00:00Z", 1_704_067_200_000),
        ("2024-01-01T00:00:00.5Z", 1_704_067_200_500),
        ("2024-01-01T00:00:00.123456789Z", 1_704_067_200_123),
        ("2024-01-01T01:00:00+01:00", 1_704_067_200_000),
        ("2023-12-31T19:00:00-05:00", 1_704_067_200_000),
        ("2024-01-01T00:00Z", 1_704_067_200_000),
        ("2024-01-01T00:00:00", 1_704_067_200_000),
        ("1969-12-31T23:59:59.999Z", -1),
        ("1900-03-01T00:00:00Z", -2_203_891_200_000),
        ("2024-02-29T12:00:00Z", 1_709_208_000_000),
    ],
)
def test_time_spellings(text: str, ms: int) -> None:
    p = _core.parse_page(_page([{"name": "x", "value": 1, "time": text}]))
    assert p.ts.tolist() == [ms] == [reference.time_of(text)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("45.5", 45.5),
        ("-1e3", -1000.0),
        (" 7 ", 7.0),
        (3, 3.0),
        (2.25, 2.25),
        (True, 1.0),
        (False, 0.0),
        ("true", 1.0),
        ("false", 0.0),
        ("on", 1.0),
        ("off", 0.0),
        ("active", 1.0),
        ("inactive", 0.0),
        ("ACTIVE", 1.0),
        (None, None),
        ("", None),
        ("NaN", None),
        ("inf", None),
        ("fault", None),
        ([1], None),
    ],
)
def test_value_kinds(value: Any, expected: float | None) -> None:
    p = _core.parse_page(_page([{"name": "x", "value": value, "time": "2024-01-01T00:00:00Z"}]))
    if expected is None:
        assert math.isnan(p.values[0]) and p.non_numeric == 1
    else:
        assert p.values[0] == expected and p.non_numeric == 0


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "expected '{'"),
        (b"[]", "expected '{'"),
        (b'{"point_samples": [', "unexpected end of input"),
        (b'{"has_more": false}', 'missing field "point_samples"'),
        (b'{"point_samples": []}', 'missing field "has_more"'),
        (
            b'{"point_samples": [{"name": "a", "time": "2024-01-01"}], "has_more": false}',
            'sample 0: missing field "value"',
        ),
        (
            b'{"point_samples": [{"value": 1, "time": "2024-01-01"}], "has_more": false}',
            'sample 0: missing field "name"',
        ),
        (
            b'{"point_samples": [{"name": "a", "value": 1, "time": "2024-01-01"},'
            b' {"name": "a", "value": 1, "time": "yesterday"}], "has_more": false}',
            'sample 1: bad time "yesterday"',
        ),
        (
            b'{"point_samples": [{"name": "a", "value": 1, "time": "2024-13-01"}],'
            b' "has_more": false}',
            "month out of range",
        ),
        (b'{"point_samples": [], "has_more": false} trailing', "unexpected data after"),
        (b'{"point_samples": [], "has_more": false, "x": NaN}', "expected a value"),
        (b'{"point_samples": [], "has_more": "no"}', '"has_more" must be true or false'),
        (b'{"point_samples": [], "has_more": false, "x": "\xff"}', "invalid UTF-8"),
        (
            b'{"point_samples": [{"name": "a", "value": 1e999, "time": "2024-01-01"}],'
            b' "has_more": false}',
            "number out of range",
        ),
    ],
)
def test_errors_name_the_problem(data: bytes, needle: str) -> None:
    with pytest.raises(_core.PageParseError, match="invalid page at byte") as exc:
        _core.parse_page(data)
    assert needle in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_rejects_non_bytes() -> None:
    with pytest.raises(TypeError):
        _core.parse_page("not bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="points"):
        _core.parse_page(b'{"point_samples": [], "has_more": false}', "a")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="points"):
        _core.parse_page(b'{"point_samples": [], "has_more": false}', [1])  # type: ignore[list-item]


def test_page_parse_error_is_a_value_error() -> None:
    assert issubclass(_core.PageParseError, ValueError)
    assert _core.PageParseError.__module__ == "acechart._core"
    assert not issubclass(_core.PageParseError, _core.BlockDecodeError)


def _check_fuzz(data: bytes) -> None:
    """Ours never crashes; whatever we accept is valid JSON and matches the reference."""
    try:
        ours = _core.parse_page(data)
    except ValueError:
        return
    try:
        ref = reference.parse_page(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # reference rejected it
        pytest.fail(f"accepted a page the reference rejects ({exc!r}): {data!r}")
    assert_same(ours, ref)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check_fuzz(data)


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
@given(pages(), st.data())
def test_fuzz_mutated_pages(page: tuple[bytes, list[dict[str, Any]]], data: st.DataObject) -> None:
    raw = bytearray(page[0])
    assume(len(raw) > 2)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate", "dup"]))
        i = data.draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[i] = data.draw(
                st.sampled_from(b'{}[]",:\\0123456789.-eEtfnul \x00\x1f\x7f\xc3\xff')
            )
        elif op == "delete":
            del raw[i]
        elif op == "insert":
            raw.insert(i, data.draw(st.sampled_from(b'{}[]",:\\0-e ')))
        elif op == "truncate":
            del raw[i:]
        else:
            j = data.draw(st.integers(i, min(len(raw), i + 40)))
            raw[i:i] = raw[i:j]
        if len(raw) < 2:
            break
    _check_fuzz(bytes(raw))


def test_large_page_round_trip() -> None:
    n = 100_000
    rng = np.random.default_rng(1)
    vals = np.round(rng.normal(70, 5, n), 2)
    samples = [
        {
            "name": NAMES[i % 2],
            "value": f"{vals[i]}",
            "time": iso(1_700_000_000_000 + (i // 2) * 60_000, 0),
        }
        for i in range(n)
    ]
    p = _core.parse_page(_page(samples))
    assert len(p) == n
    np.testing.assert_array_equal(p.values, vals)
    assert p.ts[-1] == 1_700_000_000_000 + (n // 2 - 1) * 60_000


# --- unpaginated bodies (`GET /points/{name}/timeseries`) and the field's page shape ---


def _naive_us(ms: int, us: int) -> str:
    """The origin's spelling: naive ISO 8601 with six fraction digits (meaning UTC)."""
    dt = EPOCH + timedelta(milliseconds=ms, microseconds=us)
    return f"{dt.year:04d}-" + dt.strftime("%m-%dT%H:%M:%S.%f")


def _reference(data: bytes, points: list[str] | None = None) -> reference.RefPage:
    """The json.loads reference, reading absent pagination fields as unpaginated."""
    doc = json.loads(data)
    doc.setdefault("has_more", False)
    doc.setdefault("next_cursor", None)
    return reference.parse_page(json.dumps(doc).encode(), points)


field_values_st = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.decimals(-(10**6), 10**6, places=3, allow_nan=False, allow_infinity=False).map(str),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.sampled_from(["active", "inactive", "Active", "INACTIVE", "fault", "", "NaN"]),
)


@st.composite
def field_pages(draw: st.DrawFn) -> bytes:
    """Pages shaped as the field sends them: many points per naive-microsecond time."""
    n_points = draw(st.integers(1, 40))
    n_times = draw(st.integers(0, 6))
    start = draw(st.integers(0, 4_000_000_000_000))
    samples = []
    for k in range(n_times):
        stamp = _naive_us(start + k * 60_000, draw(st.integers(0, 999_999)))
        for i in range(n_points):
            samples.append({"name": f"site/pt-{i}", "value": draw(field_values_st), "time": stamp})
    doc: dict[str, Any] = {"point_samples": samples}
    if draw(st.booleans()):
        doc["has_more"] = draw(st.booleans())
    if draw(st.booleans()):
        doc["next_cursor"] = draw(st.none() | st.text(max_size=12))
    return json.dumps(doc).encode()


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(field_pages(), st.none() | st.lists(st.sampled_from(["site/pt-0", "site/pt-3"])))
def test_unpaged_field_pages_match_reference(data: bytes, points: list[str] | None) -> None:
    assert_same(_core.parse_page(data, points, paged=False), _reference(data, points))
    if b'"has_more"' in data:
        assert_same(_core.parse_page(data, points), _reference(data, points))
    else:
        with pytest.raises(_core.PageParseError, match='missing field "has_more"'):
            _core.parse_page(data, points)


def test_unpaged_body() -> None:
    sample = b'{"name": "p", "value": "45.5", "time": "2025-10-12T16:30:37.626470"}'
    body = b'{"point_samples": [' + sample + b"]}"
    p = _core.parse_page(body, paged=False)
    assert p.ts.tolist() == [1_760_286_637_626] and p.values.tolist() == [45.5]
    assert p.has_more is False and p.next_cursor is None
    both = b'{"point_samples": [], "has_more": true, "next_cursor": "c"}'
    p = _core.parse_page(both, paged=False)
    assert p.has_more is True and p.next_cursor == "c"
    for bad, needle in [
        (b'{"point_samples": [], "has_more": 1}', '"has_more" must be true or false'),
        (b'{"point_samples": [], "next_cursor": 1}', '"next_cursor" must be a string or null'),
        (b'{"has_more": false}', 'missing field "point_samples"'),
    ]:
        with pytest.raises(_core.PageParseError, match="invalid page at byte") as exc:
            _core.parse_page(bad, paged=False)
        assert needle in str(exc.value)
    with pytest.raises(TypeError):
        _core.parse_page(body, None, False)  # type: ignore[call-arg]
