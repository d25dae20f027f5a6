"""ace_page_end / encode_ace_page against a pure-Python reference of the ACE page body."""

from __future__ import annotations

import json
import math
import shutil
import struct
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acechart import _core

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Item = tuple[str, np.ndarray, np.ndarray]


# --- the reference ---


def js_number(v: float) -> str:
    """JavaScript's `String(v)` for a finite float, but `-0` for negative zero."""
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    mantissa, _, exp = repr(abs(v)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    n = len(whole) + int(exp or 0)
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        text = (
            digits[0] + ("." + digits[1:] if k > 1 else "") + f"e{'+' if e >= 0 else '-'}{abs(e)}"
        )
    return ("-" if v < 0 else "") + text


def iso(ms: int) -> str:
    dt = EPOCH + timedelta(milliseconds=ms)
    text = f"{dt.year:04d}-" + dt.strftime("%m-%dT%H:%M:%S")
    frac = ms % 1000
    return text + (f".{frac:03d}Z" if frac else "Z")


def ref_rows(series: list[Item], after: tuple[int, int] | None) -> list[tuple[int, int, int]]:
    """(ts, series index, row index) of every row after `after`, in page order."""
    rows = [(int(t), i, j) for i, (_, ts, _) in enumerate(series) for j, t in enumerate(ts)]
    rows.sort()
    if after is not None:
        rows = [r for r in rows if (r[0], r[1]) > after]
    return rows


def ref_end(
    series: list[Item], after: tuple[int, int] | None, limit: int
) -> tuple[int, int, int, bool]:
    rows = ref_rows(series, after)
    page = rows[:limit]
    last = (page[-1][0], page[-1][1]) if page else (after or (0, 0))
    return (len(page), last[0], last[1], len(rows) > limit)


def ref_doc(
    series: list[Item],
    after: tuple[int, int] | None,
    limit: int,
    cursor: str | None,
    has_more: bool,
) -> dict[str, Any]:
    samples = []
    for t, i, j in ref_rows(series, after)[:limit]:
        v = float(series[i][2][j])
        samples.append(
            {
                "name": series[i][0],
                "value": js_number(v) if math.isfinite(v) else None,
                "time": iso(t),
            }
        )
    return {"point_samples": samples, "next_cursor": cursor, "has_more": has_more}


# --- strategies ---

names_st = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12
) | st.sampled_from(
    [
        "ses/ses_falls_city/192.168.96.3/n4/AHUDampers.points.Exhaust_Damper",
        'quote " and \\ slash',
        "line\nbreak\x00\x1f\x7f",
    ]
)
values_st = st.floats(width=64) | st.sampled_from([0.0, -0.0, 45.5, 72.0, -0.001, 1e21, 1e-7])
# Years 0001..9999, so the reference's datetime can render every time.
TS_MIN, TS_MAX = -62_135_596_800_000, 253_402_300_799_999


@st.composite
def series_lists(draw: st.DrawFn, max_series: int = 6, max_len: int = 25) -> list[Item]:
    names = sorted(draw(st.lists(names_st, max_size=max_series, unique=True)))
    grid = draw(st.booleans())  # points of one run share timestamps, as on the origin
    out = []
    for name in names:
        if grid:
            ticks = draw(st.sets(st.integers(0, 40), max_size=max_len))
            stamps = {1_760_286_637_000 + 60_000 * t for t in ticks}
        else:
            stamps = draw(
                st.sets(st.integers(TS_MIN, TS_MAX) | st.integers(-50, 50), max_size=max_len)
            )
        ts = np.array(sorted(stamps), dtype=np.int64)
        vs = np.array(draw(st.lists(values_st, min_size=len(ts), max_size=len(ts))), np.float64)
        out.append((name, ts, vs))
    return out


@st.composite
def positions(draw: st.DrawFn, series: list[Item]) -> tuple[int, int] | None:
    rows = ref_rows(series, None)
    kind = draw(st.sampled_from(["none", "row", "any"] if rows else ["none", "any"]))
    if kind == "none":
        return None
    if kind == "row":
        t, i, _ = draw(st.sampled_from(rows))
        return (t, i)
    return (draw(st.integers(-(2**63), 2**63 - 1)), draw(st.integers(0, len(series) + 2)))


# --- tests ---


def check_page(
    series: list[Item], after: tuple[int, int] | None, limit: int, cursor: str | None, more: bool
) -> None:
    assert _core.ace_page_end(series, after, limit) == ref_end(series, after, limit)
    doc = ref_doc(series, after, limit, cursor, more)
    ours = _core.encode_ace_page(series, after, limit, cursor, more)
    assert json.loads(ours) == doc
    assert ours == json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    assert _core.encode_ace_page(series, after, limit, cursor, more, "msgpack") == msgpack.packb(
        doc
    )
    # every value reads back to the very same float64
    for sample, (_, i, j) in zip(
        doc["point_samples"], ref_rows(series, after)[:limit], strict=True
    ):
        v = float(series[i][2][j])
        if math.isfinite(v):
            assert struct.pack("<d", float(sample["value"])) == struct.pack("<d", v)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_matches_reference(data: st.DataObject) -> None:
    series = data.draw(series_lists())
    after = data.draw(positions(series))
    limit = data.draw(st.sampled_from([1, 3, 7, 1000]) | st.integers(1, 60))
    cursor = data.draw(st.none() | st.text(max_size=16))
    check_page(series, after, limit, cursor, data.draw(st.booleans()))


def walk(series: list[Item], limit: int) -> list[tuple[str, str]]:
    """Every row, page by page, as a client following the cursor would get it."""
    seen: list[tuple[str, str]] = []
    names = [s[0] for s in series]
    after = None
    for _ in range(10_000):
        rows, last_ts, last_index, more = _core.ace_page_end(series, after, limit)
        page = json.loads(_core.encode_ace_page(series, after, limit, "c" if more else None, more))
        got = [(s["name"], s["time"]) for s in page["point_samples"]]
        assert len(got) == rows <= limit
        assert page["has_more"] is more
        if rows:
            assert got[-1] == (names[last_index], iso(last_ts))
        seen.extend(got)
        if not more:
            return seen
        assert rows == limit, "only the last page may be short"
        after = (last_ts, last_index)
    pytest.fail("pagination stalled")


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(series_lists(max_series=8, max_len=30), st.sampled_from([1, 3, 7, 1000]))
def test_walking_pages_yields_every_row_once(series: list[Item], limit: int) -> None:
    everything = [(series[i][0], iso(t)) for t, i, _ in ref_rows(series, None)]
    assert walk(series, limit) == everything
    assert len(set(everything)) == len(everything)


def arr(ts: list[int], vs: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(ts, dtype=np.int64), np.array(vs, dtype=np.float64)


def test_empty_one_sample_and_nan() -> None:
    assert _core.ace_page_end([], None, 5) == (0, 0, 0, False)
    assert _core.ace_page_end([], (7, 2), 5) == (0, 7, 2, False)
    assert (
        _core.encode_ace_page([], None, 5, None, False)
        == b'{"point_samples":[],"next_cursor":null,"has_more":false}'
    )
    empty = [("a", *arr([], [])), ("b", *arr([], []))]
    assert _core.ace_page_end(empty, None, 1) == (0, 0, 0, False)
    one = [("p", *arr([1_704_067_200_000], [math.nan]))]
    assert _core.ace_page_end(one, None, 1) == (1, 1_704_067_200_000, 0, False)
    assert _core.ace_page_end(one, (1_704_067_200_000, 0), 1) == (0, 1_704_067_200_000, 0, False)
    assert json.loads(_core.encode_ace_page(one, None, 3, "x", True)) == {
        "point_samples": [{"name": "p", "value": None, "time": "2024-01-01T00:00:00Z"}],
        "next_cursor": "x",
        "has_more": True,
    }
    body = _core.encode_ace_page(
        [("p", *arr([1, 2_000], [math.inf, -math.inf]))], None, 9, None, False
    )
    assert [s["value"] for s in json.loads(body)["point_samples"]] == [None, None]
    assert [s["time"] for s in json.loads(body)["point_samples"]] == [
        "1970-01-01T00:00:00.001Z",
        "1970-01-01T00:00:02Z",
    ]


def test_value_text() -> None:
    vals = [45.5, 72.0, -0.001, 1e21, 1e-7, 0.1 + 0.2, -0.0, 5e-324, 1.7976931348623157e308]
    series = [("p", np.arange(len(vals), dtype=np.int64), np.array(vals))]
    got = [
        s["value"]
        for s in json.loads(_core.encode_ace_page(series, None, 99, None, False))["point_samples"]
    ]
    assert got == [
        "45.5",
        "72",
        "-0.001",
        "1e+21",
        "1e-7",
        "0.30000000000000004",
        "-0",
        "5e-324",
        "1.7976931348623157e+308",
    ]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_parse_float_reads_every_value_back() -> None:
    """JavaScript's parseFloat gives back the exact float64, and String() our text."""
    rng = np.random.default_rng(5)
    vals = np.concatenate(
        [
            rng.integers(0, 2**64, 3000, dtype=np.uint64).view(np.float64),
            np.round(rng.normal(70, 30, 1000) * 10.0**4) / 10.0 ** rng.integers(0, 9, 1000),
            np.array([0.0, -0.0, 1e21, 1e-7, 1e-6, 123456789012345680000.0, 2.0**53 + 2]),
        ]
    )
    vals = vals[np.isfinite(vals)]
    series = [("p", np.arange(len(vals), dtype=np.int64), vals)]
    texts = [
        s["value"]
        for s in json.loads(_core.encode_ace_page(series, None, len(vals), None, False))[
            "point_samples"
        ]
    ]
    script = (
        "const t = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "const f = new Float64Array(t.map(parseFloat));"
        "process.stdout.write(JSON.stringify({bits: Buffer.from(f.buffer).toString('hex'),"
        " str: Array.from(f, String)}));"
    )
    proc = subprocess.run(
        ["node", "-e", script], input=json.dumps(texts), capture_output=True, text=True, check=True
    )
    out = json.loads(proc.stdout)
    assert out["bits"] == vals.astype("<f8").tobytes().hex()
    assert [("-0" if t == "-0" else s) for t, s in zip(texts, out["str"], strict=True)] == texts


def test_field_sized_page() -> None:
    """2,000 points sharing each timestamp, a 100,000-row page, walked twice."""
    n_points, n_times = 2000, 60
    ts = 1_760_286_637_000 + 60_000 * np.arange(n_times, dtype=np.int64)
    series = [
        (f"site/ahu/{i:04d}.points.value", ts, np.full(n_times, float(i))) for i in range(n_points)
    ]
    rows, last_ts, last_index, more = _core.ace_page_end(series, None, 100_000)
    assert (rows, last_ts, last_index, more) == (100_000, int(ts[49]), 1999, True)
    page = json.loads(_core.encode_ace_page(series, None, 100_000, "n", True))
    assert len(page["point_samples"]) == 100_000
    first = page["point_samples"][:3]
    assert [s["value"] for s in first] == ["0", "1", "2"]
    assert {s["time"] for s in page["point_samples"][:2000]} == {"2025-10-12T16:30:37Z"}
    rest = _core.ace_page_end(series, (last_ts, last_index), 100_000)
    assert rest == (20_000, int(ts[-1]), 1999, False)


def test_errors() -> None:
    ok = [("a", *arr([1, 2], [1.0, 2.0]))]
    with pytest.raises(ValueError, match="limit must be at least 1"):
        _core.ace_page_end(ok, None, 0)
    with pytest.raises(ValueError, match="limit must be at least 1"):
        _core.encode_ace_page(ok, None, -3, None, False)
    with pytest.raises(ValueError, match="non-negative"):
        _core.ace_page_end(ok, (1, -1), 5)
    with pytest.raises(
        ValueError, match=r"'b'.*ts\[1\] = 1 follows 1|\"b\".*ts\[1\] = 1 follows 1"
    ):
        _core.ace_page_end([*ok, ("b", *arr([1, 1], [0.0, 0.0]))], None, 5)
    with pytest.raises(ValueError, match="sorted ascending"):
        _core.encode_ace_page([("c", *arr([3, 2], [0.0, 0.0]))], None, 5, None, False)
    with pytest.raises(ValueError, match="length mismatch"):
        _core.ace_page_end([("d", *arr([1, 2], [0.0]))], None, 5)
    with pytest.raises(ValueError, match="'json', 'msgpack'"):
        _core.encode_ace_page(ok, None, 5, None, False, "csv")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="aggregates"):
        agg = _core.aggregate(*arr([1, 2], [1.0, 2.0]), 10)
        _core.ace_page_end([("e", agg)], None, 5)  # type: ignore[list-item]
    with pytest.raises(TypeError, match="int64"):
        _core.ace_page_end([("f", [1, 2], np.zeros(2))], None, 5)  # type: ignore[list-item]
    with pytest.raises(TypeError):
        _core.ace_page_end(ok, 5, 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _core.encode_ace_page(ok, None, 5, 3, False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _core.encode_ace_page(ok, None, 5, None, "yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="series must be a list"):
        _core.ace_page_end("abc", None, 5)  # type: ignore[arg-type]
