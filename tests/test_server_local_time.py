"""tz=, the calendar intervals, stat= and partial buckets over a real service and simulator.

References are pandas computations on the simulator's own raw samples
(`sim.data.expected`); the service must answer local days from the UTC aggregates
it stored, without reading raw samples again.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgpack
import numpy as np
import pandas as pd
import pytest
from timezonefinder import TimezoneFinder

from acechart.cache.catalog import zone_of
from acechart.jobs.model import JobRequest
from acechart.server.keys import RUNTIME
from acechart.times import to_ms
from tests.conftest import NOW_MS, SITE, TOKEN, Sim
from tests.reference import delta_reference, held_reference
from tests.server_helpers import DAY, HOUR, ClientFactory, Service, query, start_service

RULES = {"1day": "D", "1week": "W-MON", "1month": "MS", "1hr": "h"}


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path) -> Service:
    # Months of one point are answered synchronously here (not 413 for their size).
    return await start_service(aiohttp_client, sim, tmp_path, request_budget_s=1e6)


def local_ms(text: str, zone: str) -> int:
    return to_ms(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)))


def raw(svc: Service, point: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    rows = svc.sim.data.expected(SITE, point, start, end - 1)
    return rows.t_ms, rows.value


def pandas_buckets(
    svc: Service, point: str, start: int, end: int, interval: str, zone: str
) -> pd.DataFrame:
    ts, values = raw(svc, point, start, end)
    index = pd.DatetimeIndex(ts.view("datetime64[ms]"), tz="UTC").tz_convert(zone)
    grouped = (
        pd.Series(values, index=index)
        .dropna()
        .resample(RULES[interval], closed="left", label="left")
    )
    out = grouped.agg(["count", "sum", "min", "max", "mean", "first", "last"])
    out = out[out["count"] > 0]
    assert isinstance(out.index, pd.DatetimeIndex)
    out.index = out.index.tz_convert("UTC")
    return out


def kind_points(svc: Service, kind: int, n: int = 1) -> list[str]:
    table = svc.sim.site
    return [name for i, name in enumerate(table.names) if table.kind[i] == kind][:n]


def assert_rows_match(rows: list[dict[str, Any]], want: pd.DataFrame) -> None:
    assert isinstance(want.index, pd.DatetimeIndex)
    assert [r["timestamp"] for r in rows] == want.index.as_unit("ms").asi8.tolist()
    assert [r["count"] for r in rows] == want["count"].tolist()
    for key in ("min", "max", "first", "last"):
        assert [r[key] for r in rows] == want[key].tolist(), key
    np.testing.assert_allclose([r["sum"] for r in rows], want["sum"], rtol=1e-12)
    np.testing.assert_allclose([r["avg"] for r in rows], want["mean"], rtol=1e-12)


async def test_local_days_across_dst_come_from_stored_utc_hours(svc: Service) -> None:
    pts = svc.points(2)
    # Berlin falls back on 2024-10-27 (25 h), Chicago on 2024-11-03 (25 h).
    start, end = local_ms("2024-10-20T00:00", "UTC"), local_ms("2024-11-10T00:00", "UTC")
    # A UTC pass a day wider on each side stores the 1hr and 1day buckets.
    cold = await svc.get("/api/aggregations", query(pts, start - DAY, end + DAY, interval="1hr"))
    assert cold.status == 200
    svc.sim.log.clear()
    for zone, dst_day in (("Europe/Berlin", "2024-10-27"), ("America/Chicago", "2024-11-03")):
        resp = await svc.get("/api/aggregations", query(pts, start, end, interval="1day", tz=zone))
        assert resp.status == 200
        # From the aggregate tier alone: no origin request, no raw block.
        assert resp.headers["X-Cache-Source"] == "D1"
        body = await resp.json()
        assert body["metadata"]["timeZone"] == zone and body["metadata"]["partialLast"] is False
        for s in body["series"]:
            a, b = local_ms("2024-10-20T00:00", zone), local_ms("2024-11-10T00:00", zone)
            # The range [start, end) widened to whole local days.
            want = pandas_buckets(svc, s["name"], a - DAY, b + DAY, "1day", zone)
            want = want[
                (want.index >= pd.Timestamp(start, unit="ms", tz="UTC") - pd.Timedelta(days=1))
            ]
            rows = s["aggregations"]
            lo = pd.Timestamp(rows[0]["timestamp"], unit="ms", tz="UTC")
            hi = pd.Timestamp(rows[-1]["timestamp"], unit="ms", tz="UTC")
            assert_rows_match(rows, want[(want.index >= lo) & (want.index <= hi)])
            assert rows[0]["timestamp"] <= start < rows[0]["timestamp"] + 25 * HOUR
            long_day = next(r for r in rows if r["timestamp"] == local_ms(f"{dst_day}T00:00", zone))
            _, values = raw(
                svc, s["name"], long_day["timestamp"], long_day["timestamp"] + 25 * HOUR
            )
            assert long_day["count"] == np.count_nonzero(~np.isnan(values)) > 24 * 60
    assert svc.sim.log.matching("/timeseries") == []


async def test_kathmandu_days_and_hours_roll_up_from_15min(svc: Service) -> None:
    pts = svc.points(1)
    start, end = NOW_MS - 40 * DAY, NOW_MS - 20 * DAY
    zone = "Asia/Kathmandu"
    cold = await svc.get("/api/aggregations", query(pts, start - DAY, end + DAY, interval="15min"))
    assert cold.status == 200
    svc.sim.log.clear()
    for interval in ("1day", "1hr"):
        resp = await svc.get(
            "/api/aggregations", query(pts, start, end, interval=interval, tz=zone)
        )
        assert resp.headers["X-Cache-Source"] == "D1", interval
        rows = (await resp.json())["series"][0]["aggregations"]
        first = rows[0]["timestamp"]
        last_end = rows[-1]["timestamp"] + (DAY if interval == "1day" else HOUR)
        want = pandas_buckets(svc, pts[0], first, last_end, interval, zone)
        assert_rows_match(rows, want)
        assert first % HOUR == 15 * 60_000  # local hours start at :15 past the UTC hour
    assert svc.sim.log.matching("/timeseries") == []


async def test_lord_howe_hours_roll_up_from_15min_across_its_half_hour_shift(
    svc: Service,
) -> None:
    from tests.test_local_buckets import wall_clock_hours

    pts = svc.points(1)
    zone = "Australia/Lord_Howe"
    # 2024-10-06 02:00 local (+10:30, 15:30Z) springs forward to 02:30 (+11).
    shift = local_ms("2024-10-05T15:30", "UTC")
    start, end = shift - DAY, shift + DAY
    cold = await svc.get("/api/aggregations", query(pts, start - DAY, end + DAY, interval="15min"))
    assert cold.status == 200
    svc.sim.log.clear()
    resp = await svc.get("/api/aggregations", query(pts, start, end, interval="1hr", tz=zone))
    assert resp.headers["X-Cache-Source"] == "D1"
    rows = (await resp.json())["series"][0]["aggregations"]
    stamps = [r["timestamp"] for r in rows]
    assert {t % HOUR for t in stamps if t < shift} == {30 * 60_000}  # local hours at +10:30
    assert {t % HOUR for t in stamps if t > shift} == {0}  # and at +11
    assert shift in stamps and shift + 30 * 60_000 in stamps  # the half hour 02:30-03:00
    ts, values = raw(svc, pts[0], stamps[0], stamps[-1] + HOUR)
    want = wall_clock_hours(ts, values, zone)
    want = want.rename(columns={"std": "stddev"}).assign(mean=want["sum"] / want["count"])
    assert_rows_match(rows, want)
    assert svc.sim.log.matching("/timeseries") == []


async def test_weeks_and_months_follow_the_calendar(svc: Service) -> None:
    pts = svc.points(1)
    start, end = local_ms("2024-07-14T00:00", "UTC"), local_ms("2024-11-05T00:00", "UTC")
    zone = "America/Chicago"
    for interval in ("1week", "1month"):
        resp = await svc.get(
            "/api/aggregations", query(pts, start, end, interval=interval, tz=zone)
        )
        assert resp.status == 200
        rows = (await resp.json())["series"][0]["aggregations"]
        stamps = [pd.Timestamp(r["timestamp"], unit="ms", tz="UTC").tz_convert(zone) for r in rows]
        assert all((t.hour, t.minute) == (0, 0) for t in stamps)
        if interval == "1week":
            assert {t.weekday() for t in stamps} == {0}
            assert stamps[0] <= pd.Timestamp(start, unit="ms", tz="UTC") < stamps[1]
        else:
            assert [t.month for t in stamps] == [7, 8, 9, 10, 11]
        ends = [*(r["timestamp"] for r in rows[1:]), None]
        last_end = ends[-1] or (
            local_ms("2024-12-01T00:00", zone)
            if interval == "1month"
            else rows[-1]["timestamp"] + 7 * DAY
        )
        assert_rows_match(
            rows, pandas_buckets(svc, pts[0], rows[0]["timestamp"], last_end, interval, zone)
        )


async def test_the_last_bucket_is_partial_until_it_ends(svc: Service) -> None:
    pts = svc.points(1)
    # The engine's now is 2025-01-01T00:00Z: Chicago's Dec 31 runs until 06:00Z.
    start, end = NOW_MS - 3 * DAY, NOW_MS
    chicago = await (
        await svc.get(
            "/api/aggregations", query(pts, start, end, interval="1day", tz="America/Chicago")
        )
    ).json()
    rows = chicago["series"][0]["aggregations"]
    assert chicago["metadata"]["partialLast"] is True
    assert [r.get("partial") for r in rows] == [None] * (len(rows) - 1) + [True]
    assert rows[-1]["timestamp"] == local_ms("2024-12-31T00:00", "America/Chicago")
    series = await (
        await svc.get(
            "/api/timeseries", query(pts, start, end, interval="1day", tz="America/Chicago")
        )
    ).json()
    assert series["metadata"]["partialLast"] is True
    utc = await (await svc.get("/api/aggregations", query(pts, start, end, interval="1day"))).json()
    assert utc["metadata"]["partialLast"] is False
    assert all("partial" not in r for r in utc["series"][0]["aggregations"])
    # A raw answer says nothing about buckets.
    plain = await (await svc.get("/api/timeseries", query(pts, start, end))).json()
    assert "partialLast" not in plain["metadata"]


async def test_tz_site_is_the_zone_of_the_sites_coordinates(svc: Service) -> None:
    pts = svc.points(1)
    spec = svc.sim.site.site
    want = TimezoneFinder().timezone_at(lat=spec.latitude, lng=spec.longitude)
    assert want == "America/Chicago"
    start, end = NOW_MS - 30 * DAY, NOW_MS - 25 * DAY
    site = await (
        await svc.get("/api/aggregations", query(pts, start, end, interval="1day", tz="site"))
    ).json()
    named = await (
        await svc.get("/api/aggregations", query(pts, start, end, interval="1day", tz=want))
    ).json()
    assert site["metadata"]["timeZone"] == want
    assert site["series"] == named["series"]

    # The site record is then kept with the catalogue: a tz=site query reads the origin
    # exactly as much as one naming the zone (the token's access check aside).
    def site_reads() -> int:
        return len(svc.sim.log.matching(f"/sites/{SITE}", status=200))

    before = site_reads()
    await svc.get("/api/timeseries", query(pts, start, end, interval="1day", tz=want))
    by_name = site_reads() - before
    before = site_reads()
    other = query(pts, start - DAY, end, interval="1day", tz="site")
    assert (await svc.get("/api/timeseries", other)).status == 200
    assert site_reads() - before == by_name


@pytest.mark.parametrize(
    ("path", "extra", "parameter"),
    [
        ("/api/timeseries", {"interval": "1day", "tz": "Mars/Olympus_Mons"}, "tz"),
        ("/api/aggregations", {"interval": "1day", "tz": "../../etc/localtime"}, "tz"),
        ("/api/timeseries", {"interval": "1day", "stat": "median"}, "stat"),
        ("/api/timeseries", {"stat": "max"}, "stat"),
        ("/api/aggregations", {"stat": "max,median"}, "stat"),
        ("/api/aggregations", {"stat": "avg,AVG"}, "stat"),
        ("/api/aggregations", {"stat": "m2"}, "stat"),
        ("/api/aggregations", {"stat": ",,"}, "stat"),
        ("/api/aggregations", {"downsample": "m4", "maxPoints": "10"}, "downsample"),
        (
            "/api/timeseries",
            {"interval": "1day", "stat": "delta", "resetThreshold": "-1"},
            "resetThreshold",
        ),
        (
            "/api/timeseries",
            {"interval": "1day", "stat": "delta", "resetThreshold": "x"},
            "resetThreshold",
        ),
        ("/api/timeseries", {"interval": "2week"}, "interval"),
    ],
)
async def test_bad_tz_and_stat_are_400s_naming_the_parameter(
    svc: Service, path: str, extra: dict[str, str], parameter: str
) -> None:
    resp = await svc.get(path, query(svc.points(1), NOW_MS - 3 * DAY, NOW_MS - DAY, **extra))
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_request" and body["parameter"] == parameter


async def test_stat_picks_the_bucket_statistic(svc: Service) -> None:
    pts = svc.points(1)
    start, end = NOW_MS - 12 * DAY, NOW_MS - 10 * DAY
    rows = (
        await (await svc.get("/api/aggregations", query(pts, start, end, interval="1hr"))).json()
    )["series"][0]["aggregations"]
    for stat in ("avg", "min", "max", "sum", "count", "first", "last"):
        body = await (
            await svc.get("/api/timeseries", query(pts, start, end, interval="1hr", stat=stat))
        ).json()
        assert [d[1] for d in body["series"][0]["data"]] == [r[stat] for r in rows], stat
        assert body["metadata"].get("stat", "avg") == stat


async def test_delta_is_meter_consumption_across_block_edges(svc: Service) -> None:
    meter = kind_points(svc, 1)
    zone = "America/Chicago"
    # Across the UTC month edge of the raw blocks (2024-12-01T00:00Z).
    start, end = local_ms("2024-11-28T00:00", zone), local_ms("2024-12-04T00:00", zone)
    resp = await svc.get(
        "/api/timeseries", query(meter, start, end, interval="1day", tz=zone, stat="delta")
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["metadata"]["stat"] == "delta"
    got = body["series"][0]["data"]
    ts, values = raw(svc, meter[0], start - DAY, end)
    edges = np.array(
        [
            local_ms(f"2024-{d}T00:00", zone)
            for d in ("11-28", "11-29", "11-30", "12-01", "12-02", "12-03", "12-04")
        ],
        np.int64,
    )
    want_t, want_v = delta_reference(ts, values, edges, 0.0)
    assert [d[0] for d in got] == want_t.tolist()
    np.testing.assert_allclose([d[1] for d in got], want_v, rtol=1e-12)
    # Bucket by bucket it is last minus the previous bucket's last.
    before = values[~np.isnan(values) & (ts < start)][-1]
    inside = values[~np.isnan(values) & (ts < end)][-1]
    assert sum(d[1] for d in got) == pytest.approx(inside - before)
    assert all(d[1] >= 0 for d in got)


async def test_twa_and_on_time_carry_the_previous_sample(svc: Service) -> None:
    fan = kind_points(svc, 2)
    start, end = NOW_MS - 15 * DAY + 7 * 60_000, NOW_MS - 14 * DAY
    ts, values = raw(svc, fan[0], start - DAY, end + HOUR)
    edges = np.arange(start - start % HOUR, end + (-end) % HOUR + 1, HOUR, dtype=np.int64)
    want = held_reference(ts, values, edges, int(edges[-1]))
    for stat in ("on_time", "twa"):
        body = await (
            await svc.get("/api/timeseries", query(fan, start, end, interval="1hr", stat=stat))
        ).json()
        data = body["series"][0]["data"]
        assert [d[0] for d in data] == want["ts"].astype(np.int64).tolist()
        np.testing.assert_allclose([d[1] for d in data], want[stat], rtol=1e-12, atol=1e-9)
    assert 0 < sum(want["on_time"]) < 24 * 3600


def joined_reference(
    ts: np.ndarray, values: np.ndarray, edges: np.ndarray, until: int
) -> pd.DataFrame:
    """Every statistic per bucket of `edges`: pandas for the bucket statistics of the
    samples inside, `delta_reference` and `held_reference` for the raw-derived ones, on
    the union of the buckets each has (no sample: count and sum 0, the rest NaN)."""
    inside = (ts >= edges[0]) & (ts < edges[-1]) & ~np.isnan(values)
    bucket = edges[np.searchsorted(edges, ts[inside], side="right") - 1]
    grouped = pd.Series(values[inside], index=bucket).groupby(level=0)
    stats = grouped.agg(["count", "sum", "min", "max", "mean", "std", "first", "last"])
    stats = stats.rename(columns={"mean": "avg", "std": "stddev"})
    d_ts, d_v = delta_reference(ts, values, edges, 0.0)
    held = held_reference(ts, values, edges, until)
    out = stats.join(pd.Series(d_v, index=d_ts, name="delta"), how="outer")
    held_frame = pd.DataFrame(
        {"twa": held["twa"], "on_time": held["on_time"]}, index=held["ts"].astype(np.int64)
    )
    out = out.join(held_frame, how="outer").sort_index()
    out[["count", "sum"]] = out[["count", "sum"]].fillna(0)
    return out.astype({"count": np.int64})


def column(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [math.nan if r[key] is None else r[key] for r in rows]


@pytest.mark.parametrize(
    ("kind", "stats"),
    [
        (1, ["delta", "max", "count"]),  # a meter: consumption beside its readings
        (2, ["count", "twa", "on_time", "last"]),  # a fan: held values, sparse samples
        (0, ["stddev", "avg", "twa", "delta", "first", "min", "sum", "on_time"]),
    ],
)
async def test_stat_chooses_the_fields_of_aggregation_rows(
    svc: Service, kind: int, stats: list[str]
) -> None:
    point = kind_points(svc, kind)
    zone = "America/Chicago"
    start, end = local_ms("2024-11-02T00:00", zone), local_ms("2024-11-04T00:00", zone)
    resp = await svc.get(
        "/api/aggregations",
        query(point, start, end, interval="1hr", tz=zone, stat=",".join(stats)),
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["metadata"]["stat"] == stats
    rows = body["series"][0]["aggregations"]
    assert {tuple(r) for r in rows} == {("timestamp", *stats)}  # in the order asked for
    # Chicago falls back on 2024-11-03: 49 hours, each one hour long.
    edges = np.arange(start, end + 1, HOUR, dtype=np.int64)
    ts, values = raw(svc, point[0], start - DAY, end)
    want = joined_reference(ts, values, edges, int(edges[-1]))
    assert [r["timestamp"] for r in rows] == want.index.tolist()
    for stat in stats:
        np.testing.assert_allclose(
            column(rows, stat), want[stat].to_numpy(np.float64), rtol=1e-9, atol=1e-9,
            err_msg=stat,
        )  # fmt: skip
    if "count" in stats:
        assert all(isinstance(r["count"], int) for r in rows)
    # The raw-derived statistics are the timeseries' own, bucket for bucket.
    for stat in set(stats) & {"delta", "twa", "on_time"}:
        series = await (
            await svc.get(
                "/api/timeseries", query(point, start, end, interval="1hr", tz=zone, stat=stat)
            )
        ).json()
        data = dict(map(tuple, series["series"][0]["data"]))
        assert [r[stat] for r in rows if r["timestamp"] in data] == list(data.values())


async def test_stat_rows_join_buckets_with_a_held_value_but_no_sample(svc: Service) -> None:
    fan = kind_points(svc, 2)
    # The fan's longest silence in the last weeks spans whole hours: the value is held.
    ts, values = raw(svc, fan[0], NOW_MS - 40 * DAY, NOW_MS - 2 * DAY)
    at = int(np.argmax(np.diff(ts)))
    assert ts[at + 1] - ts[at] > 2 * HOUR
    start = int(ts[at]) // HOUR * HOUR - 6 * HOUR
    end = start + DAY
    body = await (
        await svc.get(
            "/api/aggregations",
            query(fan, start, end, interval="1hr", stat="count,max,twa,on_time"),
        )
    ).json()
    rows = body["series"][0]["aggregations"]
    edges = np.arange(start, end + 1, HOUR, dtype=np.int64)
    ts, values = raw(svc, fan[0], start - DAY, end)
    want = joined_reference(ts, values, edges, int(edges[-1]))
    assert [r["timestamp"] for r in rows] == want.index.tolist() == edges[:-1].tolist()
    silent = [r for r in rows if r["count"] == 0]
    assert silent and all(r["max"] is None and r["twa"] is not None for r in silent)
    for stat in ("count", "max", "twa", "on_time"):
        np.testing.assert_allclose(
            column(rows, stat), want[stat].to_numpy(np.float64), rtol=1e-9, atol=1e-9
        )


async def test_stat_with_max_points_merges_raw_derived_buckets_too(svc: Service) -> None:
    meter = kind_points(svc, 1)
    start, end = NOW_MS - 13 * DAY, NOW_MS - 10 * DAY  # 72 hourly buckets -> 9 of 8 hours
    params = query(meter, start, end, interval="1hr", stat="delta,sum,count")
    hourly = (await (await svc.get("/api/aggregations", params)).json())["series"][0]
    merged = await (await svc.get("/api/aggregations", {**params, "maxPoints": 10})).json()
    assert merged["metadata"]["rebucketed"] == {"interval": "1hr", "factor": 8}
    rows = merged["series"][0]["aggregations"]
    assert len(rows) == 9
    for k, row in enumerate(rows):
        group = hourly["aggregations"][8 * k : 8 * k + 8]
        assert row["timestamp"] == group[0]["timestamp"]
        assert row["count"] == sum(r["count"] for r in group)
        assert row["delta"] == pytest.approx(sum(r["delta"] for r in group), rel=1e-9)


async def test_stat_rows_equal_the_full_rows_and_default_is_unchanged(svc: Service) -> None:
    pts = svc.points(2)
    start, end = NOW_MS - 12 * DAY, NOW_MS - 10 * DAY
    params = query(pts, start, end, interval="1hr")
    full = await svc.get("/api/aggregations", params)
    full_body = await full.json()
    assert "stat" not in full_body["metadata"]
    for s in full_body["series"]:
        assert list(s["aggregations"][0]) == [
            "timestamp", "avg", "min", "max", "sum", "count", "stddev", "first", "last"
        ]  # fmt: skip
    # A stat list that names only bucket statistics comes from the same (stored) buckets.
    chosen = await svc.get("/api/aggregations", {**params, "stat": "last,AVG, count"})
    assert chosen.headers["X-Cache-Source"] == "D1"
    body = await chosen.json()
    assert body["metadata"]["stat"] == ["last", "avg", "count"]
    for s, f in zip(body["series"], full_body["series"], strict=True):
        want = [{k: r[k] for k in ("timestamp", "last", "avg", "count")} for r in f["aggregations"]]
        assert s["aggregations"] == want
    # The same in a POST body (a list or a comma string) and as MessagePack rows.
    headers = {"X-ACE-Token": TOKEN}
    post = {"site": SITE, "points": pts, "start": start, "end": end, "interval": "1hr"}
    for stat in (["last", "avg", "count"], "last,avg,count"):
        posted = await svc.client.post(
            "/api/aggregations", json={**post, "stat": stat}, headers=headers
        )
        assert await posted.json() == body
    packed = await svc.get(
        "/api/aggregations", {**params, "stat": "last,avg,count", "format": "msgpack"}
    )
    assert msgpack.unpackb(await packed.read()) == body
    columns = msgpack.unpackb(
        await (
            await svc.get(
                "/api/aggregations",
                {**params, "stat": "last,avg,count", "format": "msgpack", "layout": "columns"},
            )
        ).read()
    )
    for s, want in zip(columns["series"], body["series"], strict=True):
        assert list(s) == ["name", "t", "last", "avg", "count"]
        rows = want["aggregations"]
        for key in ("last", "avg", "count"):
            got = np.frombuffer(s[key], "<f8")
            np.testing.assert_array_equal(got, [r[key] for r in rows])
    # An empty stat is no stat: the seed's rows, byte for byte.
    again = await svc.get("/api/aggregations", {**params, "stat": ""})
    assert await again.read() == await full.read()


async def test_max_points_rebuckets_aggregations_keeping_sums_true(svc: Service) -> None:
    pts = svc.points(1)
    start, end = NOW_MS - 13 * DAY, NOW_MS - 10 * DAY  # 72 hourly buckets
    hourly = (
        await (await svc.get("/api/aggregations", query(pts, start, end, interval="1hr"))).json()
    )["series"][0]["aggregations"]
    assert len(hourly) == 72
    body = await (
        await svc.get("/api/aggregations", query(pts, start, end, interval="1hr", maxPoints=10))
    ).json()
    rows = body["series"][0]["aggregations"]
    assert body["metadata"]["rebucketed"] == {"interval": "1hr", "factor": 8}
    assert len(rows) == 9 <= 10
    for k, row in enumerate(rows):
        group = hourly[8 * k : 8 * k + 8]
        assert row["timestamp"] == group[0]["timestamp"]
        assert row["count"] == sum(r["count"] for r in group)
        assert row["sum"] == pytest.approx(sum(r["sum"] for r in group), rel=1e-12)
        assert (row["first"], row["last"]) == (group[0]["first"], group[-1]["last"])
        assert row["min"] == min(r["min"] for r in group)


def test_jobs_keep_tz_and_stat() -> None:
    body = {
        "siteId": SITE,
        "pointNames": ["a"],
        "startTime": "2024-11-01",
        "endTime": "2024-12-01",
        "aggregation": "1day",
        "tz": "Europe/Berlin",
        "stat": "delta",
        "resetThreshold": 5,
    }
    request = JobRequest.from_body(body, max_points=10, max_range_days=100)
    again = JobRequest.from_message(request.to_message("j", "u", 0))
    assert (again.query.tz, again.query.stat, again.query.reset_threshold) == (
        "Europe/Berlin",
        "delta",
        5.0,
    )
    assert again.dedup_key("t") == request.dedup_key("t")
    plain = JobRequest.from_body(
        {**body, "tz": "UTC", "stat": "avg", "resetThreshold": None},
        max_points=10,
        max_range_days=100,
    )
    assert plain.dedup_key("t") != request.dedup_key("t")
    with pytest.raises(Exception) as err:
        JobRequest.from_body({**body, "tz": "Nowhere"}, max_points=10, max_range_days=100)
    assert getattr(err.value, "parameter", None) == "tz"


def test_zone_of_a_site_record() -> None:
    finder = TimezoneFinder()
    assert zone_of({"latitude": 52.52, "longitude": 13.405}, finder) == "Europe/Berlin"
    assert zone_of({"latitude": "27.7172", "longitude": "85.324"}, finder) == "Asia/Kathmandu"
    assert zone_of({"geo_location": "40.0603,-95.6019"}, finder) == "America/Chicago"
    for record in (
        {},
        {"latitude": None, "longitude": None},
        {"latitude": 91, "longitude": 0},
        {"latitude": "north", "longitude": 3},
        {"geo_location": "somewhere"},
    ):
        assert zone_of(record, finder) is None


async def test_15min_is_a_stored_level(svc: Service) -> None:
    pts = svc.points(1)
    start, end = NOW_MS - 15 * DAY, NOW_MS - 12 * DAY
    first = await svc.get("/api/aggregations", query(pts, start, end, interval="15min"))
    assert first.status == 200 and first.headers["X-Cache-Source"] != "D1"
    rows = (await first.json())["series"][0]["aggregations"]
    assert len(rows) == 3 * 96 and rows[1]["timestamp"] - rows[0]["timestamp"] == 15 * 60_000
    db = svc.app[RUNTIME].db
    levels = {r["level"] for r in await db.fetchall("SELECT level FROM aggregate_blocks")}
    assert {"15min", "1hr", "1day"} <= levels
    again = await svc.get(
        "/api/aggregations", query(pts, start, end, interval="15min", format="msgpack")
    )
    assert again.headers["X-Cache-Source"] == "D1"
