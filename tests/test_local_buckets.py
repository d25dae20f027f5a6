"""Local days, weeks and months as roll-ups of UTC aggregates, against pandas on raw samples.

pandas is the reference: the raw samples' index converted to the zone (`tz_convert`)
and resampled by the calendar (`resample("D")`, `"W-MON"`, `"MS"`, `"h"`). The
roll-up under test never sees a raw sample: it merges the UTC 15min or 1hr buckets
`aggregate` makes (what the aggregate tier stores) at the edges `plan_buckets`
computes with zoneinfo.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from acechart import _core
from acechart.buckets import check_zone, plan_buckets, wall_clock
from acechart.errors import BadRequest
from acechart.query import Query
from acechart.times import to_ms

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
RULES = {"1day": "D", "1week": "W-MON", "1month": "MS", "1hr": "h"}


def local_ms(text: str, zone: str) -> int:
    return to_ms(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)))


def pandas_buckets(ts: np.ndarray, values: np.ndarray, interval: str, zone: str) -> pd.DataFrame:
    """Bucket statistics straight from the raw samples, by pandas."""
    index = pd.DatetimeIndex(ts.view("datetime64[ms]"), tz="UTC").tz_convert(zone)
    frame = pd.Series(values, index=index).dropna()
    grouped = frame.resample(RULES[interval], closed="left", label="left")
    out = grouped.agg(["count", "sum", "min", "max", "first", "last", "std"])
    out = out[out["count"] > 0]
    assert isinstance(out.index, pd.DatetimeIndex)
    out.index = out.index.tz_convert("UTC")
    return out


def rolled(ts: np.ndarray, values: np.ndarray, interval: str, zone: str) -> dict[str, np.ndarray]:
    """The roll-up under test: UTC fine aggregates merged at the plan's edges."""
    plan = plan_buckets(int(ts[0]), int(ts[-1]) + 1, interval, zone)
    fine = _core.aggregate(ts, values, plan.fine_ms)
    if plan.edges is None:
        return fine
    return _core.rollup_edges(fine, plan.edges)


def assert_matches_pandas(got: dict[str, np.ndarray], want: pd.DataFrame) -> None:
    assert isinstance(want.index, pd.DatetimeIndex)
    np.testing.assert_array_equal(got["ts"], want.index.as_unit("ms").asi8)
    np.testing.assert_array_equal(got["count"], want["count"].to_numpy())
    for key in ("min", "max", "first", "last"):
        np.testing.assert_array_equal(got[key], want[key].to_numpy(), err_msg=key)
    np.testing.assert_allclose(got["sum"], want["sum"].to_numpy(), rtol=1e-12, atol=1e-6)
    np.testing.assert_allclose(
        got["stddev"], want["std"].to_numpy(), rtol=1e-8, atol=1e-9, equal_nan=True
    )


def minute_samples(start: int, end: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = np.arange(start, end, MIN, dtype=np.int64)
    values = np.round(rng.normal(50, 10, len(ts)), 2)
    values[rng.random(len(ts)) < 0.01] = np.nan
    return ts, values


# The four 2025 transitions of Chicago and Berlin (the days the clocks change), and a
# zone 5:45 ahead of UTC that must roll up from 15min.
DST_DAYS = [
    ("America/Chicago", "2025-03-09", 23),
    ("America/Chicago", "2025-11-02", 25),
    ("Europe/Berlin", "2025-03-30", 23),
    ("Europe/Berlin", "2025-10-26", 25),
]


@pytest.mark.parametrize(("zone", "day", "hours"), DST_DAYS)
def test_dst_days_are_23_or_25_hours_and_match_pandas(zone: str, day: str, hours: int) -> None:
    start = local_ms(f"{day}T00:00", zone) - 3 * DAY + 17 * MIN
    ts, values = minute_samples(start, start + 7 * DAY, seed=hours)
    plan = plan_buckets(int(ts[0]), int(ts[-1]) + 1, "1day", zone)
    assert plan.level == "1hr" and plan.fine_ms == HOUR
    assert plan.edges is not None
    widths = np.diff(plan.edges)
    midnight = local_ms(f"{day}T00:00", zone)
    k = int(np.searchsorted(plan.edges, midnight))
    assert widths[k] == hours * HOUR
    assert set(np.delete(widths, k).tolist()) == {DAY}
    got = rolled(ts, values, "1day", zone)
    want = pandas_buckets(ts, values, "1day", zone)
    assert_matches_pandas(got, want)
    # The count shows the day's length: one sample a minute, less the NaN ones.
    i = int(np.searchsorted(got["ts"], midnight))
    in_day = (ts >= midnight) & (ts < midnight + hours * HOUR)
    assert got["count"][i] == np.count_nonzero(~np.isnan(values[in_day]))
    assert np.count_nonzero(in_day) == hours * 60


@pytest.mark.parametrize("interval", ["1day", "1week", "1month", "1hr"])
def test_kathmandu_rolls_up_from_15min(interval: str) -> None:
    start = local_ms("2025-01-27T05:00", "Asia/Kathmandu")
    ts, values = minute_samples(start, start + 70 * DAY, seed=7)
    plan = plan_buckets(int(ts[0]), int(ts[-1]) + 1, interval, "Asia/Kathmandu")
    assert plan.level == "15min"
    assert plan.edges is not None and not np.any((plan.edges - 15 * MIN) % HOUR)
    assert_matches_pandas(
        rolled(ts, values, interval, "Asia/Kathmandu"),
        pandas_buckets(ts, values, interval, "Asia/Kathmandu"),
    )


def wall_clock_hours(ts: np.ndarray, values: np.ndarray, zone: str) -> pd.DataFrame:
    """Hourly statistics by pandas on the zone's wall clock: each sample converted to the
    zone (`tz_convert`), grouped by its local hour (`floor("h")` of the local time), the
    group labelled by the first instant of that local hour; a local hour whose start the
    clocks skip starts when they jump past it (zoneinfo's reading of the skipped time).

    Not `resample("h")`: pandas steps fixed hours from the first local midnight, so
    after a 30-minute shift its hours no longer start on the wall clock's hour. Nor
    pandas' `nonexistent="shift_forward"` for the labels: it moves a skipped 02:00 to
    03:00 (a whole hour), past the half hour the clocks really skipped."""
    index = pd.DatetimeIndex(ts.view("datetime64[ms]"), tz="UTC").tz_convert(zone)
    frame = pd.Series(values, index=index).dropna()
    local = pd.DatetimeIndex(frame.index).tz_localize(None).floor("h")
    out = frame.groupby(local).agg(["count", "sum", "min", "max", "first", "last", "std"])
    labels = [to_ms(t.to_pydatetime().replace(tzinfo=ZoneInfo(zone))) for t in out.index]
    out.index = pd.DatetimeIndex(np.asarray(labels, np.int64).view("datetime64[ms]"), tz="UTC")
    return out


# Lord Howe Island: UTC+11 in summer, +10:30 in winter. 2025-04-06 02:00 local (15:00Z)
# falls back to 01:30; 2025-10-05 02:00 local (15:30Z) springs forward to 02:30.
LORD_HOWE = "Australia/Lord_Howe"


@pytest.mark.parametrize(
    ("transition", "long_hour", "width"),
    [
        ("2025-04-05T15:00:00+00:00", "2025-04-05T14:00:00+00:00", 90 * MIN),
        ("2025-10-04T15:30:00+00:00", "2025-10-04T15:30:00+00:00", 30 * MIN),
    ],
)
def test_lord_howe_hours_follow_the_wall_clock_across_its_30_minute_shifts(
    transition: str, long_hour: str, width: int
) -> None:
    at = to_ms(datetime.fromisoformat(transition))
    ts, values = minute_samples(at - 3 * DAY + 7 * MIN, at + 3 * DAY, seed=width)
    plan = plan_buckets(int(ts[0]), int(ts[-1]) + 1, "1hr", LORD_HOWE)
    # Hours start on the UTC hour on one side and at :30 on the other: 15min holds both.
    assert plan.level == "15min" and plan.edges is not None
    widths = dict(zip(plan.edges[:-1].tolist(), np.diff(plan.edges).tolist(), strict=True))
    odd = {t: w for t, w in widths.items() if w != HOUR}
    assert odd == {to_ms(datetime.fromisoformat(long_hour)): width}
    before = [t for t in widths if t < at - HOUR]
    after = [t for t in widths if t > at + HOUR]
    summer_first = transition.startswith("2025-04")
    assert {t % HOUR for t in before} == {0 if summer_first else 30 * MIN}
    assert {t % HOUR for t in after} == {30 * MIN if summer_first else 0}
    got = rolled(ts, values, "1hr", LORD_HOWE)
    want = wall_clock_hours(ts, values, LORD_HOWE)
    assert_matches_pandas(got, want)
    # Every local hour starts at :00 on the local clock (or when the clock jumped past it).
    local = [pd.Timestamp(t, unit="ms", tz="UTC").tz_convert(LORD_HOWE) for t in got["ts"]]
    assert {(s.minute, s.second) for s in local} <= {(0, 0), (30, 0)}
    assert sum(s.minute == 30 for s in local) == (0 if summer_first else 1)


def test_lord_howe_plans_are_exact_at_every_start() -> None:
    """Whatever the range, its plan's edges are the same instants: the buckets of a wider
    range restricted to a narrower one."""
    at = to_ms(datetime.fromisoformat("2025-04-05T15:00:00+00:00"))
    wide = plan_buckets(at - 2 * DAY, at + 2 * DAY, "1hr", LORD_HOWE)
    assert wide.edges is not None
    for start in range(at - 5 * HOUR, at + 5 * HOUR, 13 * MIN):
        plan = plan_buckets(start, start + 7 * HOUR, "1hr", LORD_HOWE)
        edges = plan.edges if plan.edges is not None else plan.edge_array()
        assert set(edges.tolist()) <= set(wide.edges.tolist())
        assert edges[0] <= start < edges[1] and edges[-2] < start + 7 * HOUR <= edges[-1]
    # A summer range on one offset keeps the plain hourly grid (stored 1hr buckets).
    summer = plan_buckets(at - 10 * DAY, at - 9 * DAY, "1hr", LORD_HOWE)
    assert (summer.level, summer.edges) == ("1hr", None)
    # 15min buckets lie on one grid in both offsets.
    quarter = plan_buckets(at - DAY, at + DAY, "15min", LORD_HOWE)
    assert (quarter.level, quarter.edges) == ("15min", None)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/Chicago", "UTC", "Asia/Kolkata"])
@pytest.mark.parametrize("interval", ["1week", "1month"])
def test_calendar_weeks_and_months(zone: str, interval: str) -> None:
    start = local_ms("2025-02-11T13:00", zone)
    ts, values = minute_samples(start, start + 300 * DAY, seed=3)
    got = rolled(ts, values, interval, zone)
    assert_matches_pandas(got, pandas_buckets(ts, values, interval, zone))
    starts = [pd.Timestamp(t, unit="ms", tz="UTC").tz_convert(zone) for t in got["ts"]]
    assert all(s.hour == 0 and s.minute == 0 for s in starts)
    if interval == "1week":
        assert {s.weekday() for s in starts} == {0}
    else:
        assert {s.day for s in starts} == {1}


def test_utc_weeks_come_from_stored_days_and_utc_days_stay_as_they_were() -> None:
    week = plan_buckets(0, 30 * DAY, "1week", "UTC")
    assert week.level == "1day" and week.edges is not None
    day = plan_buckets(5 * HOUR, 30 * DAY, "1day", "UTC")
    assert (day.level, day.edges, day.start, day.end) == ("1day", None, 0, 30 * DAY)
    # A whole-hour zone leaves hours on the UTC grid: no roll-up at all.
    hour = plan_buckets(5 * MIN, 3 * HOUR, "1hr", "Europe/Berlin")
    assert (hour.edges, hour.start, hour.end) == (None, 0, 3 * HOUR)


def test_range_expands_to_whole_local_buckets() -> None:
    zone = "America/Chicago"
    q = Query("s", ("p",), local_ms("2025-03-09T10:00", zone), local_ms("2025-03-10T01:00", zone))
    q = Query(q.site, q.points, q.start_ms, q.end_ms, "1day", tz=zone)
    assert q.aligned() == (local_ms("2025-03-09T00:00", zone), local_ms("2025-03-11T00:00", zone))
    assert q.buckets.count == 2


zones = st.sampled_from(
    ["America/Chicago", "Europe/Berlin", "Asia/Kathmandu", "Australia/Adelaide", "UTC"]
)


@settings(max_examples=60, deadline=None)
@given(
    zone=zones,
    interval=st.sampled_from(["1day", "1week", "1month", "1hr"]),
    start=st.integers(
        to_ms(datetime.fromisoformat("2024-12-01T00:00+00:00")),
        to_ms(datetime.fromisoformat("2025-11-30T00:00+00:00")),
    ),
    steps=hnp.arrays(np.int64, st.integers(1, 300), elements=st.integers(0, 4 * HOUR)),
    data=st.data(),
)
def test_random_samples_roll_up_like_pandas(
    zone: str, interval: str, start: int, steps: np.ndarray, data: st.DataObject
) -> None:
    ts = (start + np.cumsum(steps)).astype(np.int64)
    finite = st.floats(-1e4, 1e4, allow_nan=False)
    values = data.draw(hnp.arrays(np.float64, len(ts), elements=finite | st.just(np.nan)))
    if np.isnan(values).all():
        values[0] = 1.0
    assert_matches_pandas(
        rolled(ts, values, interval, zone), pandas_buckets(ts, values, interval, zone)
    )


@settings(max_examples=40, deadline=None)
@given(
    start=st.sampled_from(["2025-04-05T15:00:00+00:00", "2025-10-04T15:30:00+00:00"]).map(
        lambda text: to_ms(datetime.fromisoformat(text))
    ),
    lead=st.integers(0, 2 * DAY),
    steps=hnp.arrays(np.int64, st.integers(1, 300), elements=st.integers(0, 40 * MIN)),
    data=st.data(),
)
def test_random_lord_howe_samples_roll_up_like_the_wall_clock(
    start: int, lead: int, steps: np.ndarray, data: st.DataObject
) -> None:
    ts = (start - lead + np.cumsum(steps)).astype(np.int64)
    finite = st.floats(-1e4, 1e4, allow_nan=False)
    values = data.draw(hnp.arrays(np.float64, len(ts), elements=finite | st.just(np.nan)))
    if np.isnan(values).all():
        values[0] = 1.0
    assert_matches_pandas(
        rolled(ts, values, "1hr", LORD_HOWE), wall_clock_hours(ts, values, LORD_HOWE)
    )


def test_unknown_zone_is_a_400_naming_tz() -> None:
    for bad in ("Mars/Olympus", "../etc/passwd", "", "Europe/Berlin\x00"):
        with pytest.raises(BadRequest) as err:
            check_zone(bad)
        assert err.value.parameter == "tz"
    with pytest.raises(BadRequest) as err:
        Query("s", ("p",), 0, DAY, "1day", tz="Nowhere/City").validate(
            max_points=10, max_range_days=10
        )
    assert err.value.parameter == "tz"


def test_rollup_edges_rejects_bad_edges() -> None:
    fine = _core.aggregate(np.arange(10, dtype=np.int64), np.ones(10), 5)
    with pytest.raises(ValueError, match="edges must be strictly increasing"):
        _core.rollup_edges(fine, np.array([0, 0], np.int64))
    with pytest.raises(TypeError):
        _core.rollup_edges(fine, np.array([0.0, 5.0]))  # type: ignore[arg-type,unused-ignore]
    empty = _core.rollup_edges(fine, np.array([100], np.int64))
    assert len(empty["ts"]) == 0


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(
        ["UTC", "America/Chicago", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu",
         "America/St_Johns", "Pacific/Chatham"]
    ),
    start=st.integers(min_value=local_ms("2023-01-01T00:00", "UTC"),
                      max_value=local_ms("2025-12-01T00:00", "UTC")),
    step=st.sampled_from([HOUR, 15 * MIN, 7 * MIN + 13_000, DAY]),
    n=st.integers(min_value=0, max_value=1500),
)  # fmt: skip
def test_wall_clock_is_pandas_local_date_and_hour(zone: str, start: int, step: int, n: int) -> None:
    ts = start + step * np.arange(n, dtype=np.int64)
    days, hours = wall_clock(ts, zone)
    index = pd.DatetimeIndex(ts.view("datetime64[ms]"), tz="UTC").tz_convert(zone)
    local_days = (index.tz_localize(None).normalize() - pd.Timestamp("1970-01-01")).days
    np.testing.assert_array_equal(days, np.asarray(local_days, dtype=np.int64))
    np.testing.assert_array_equal(hours, np.asarray(index.hour, dtype=np.int64))


def test_wall_clock_on_dst_days() -> None:
    # Chicago, 2024-11-03: 01:00-02:00 happens twice (CDT, then CST); 2024-03-10 skips 02:00.
    fall = local_ms("2024-11-03T00:00", "America/Chicago") + HOUR * np.arange(25)
    _, hours = wall_clock(fall, "America/Chicago")
    assert hours.tolist() == [0, 1, 1, *range(2, 24)]
    spring = local_ms("2024-03-10T00:00", "America/Chicago") + HOUR * np.arange(23)
    days, hours = wall_clock(spring, "America/Chicago")
    assert hours.tolist() == [0, 1, *range(3, 24)] and len(set(days.tolist())) == 1
