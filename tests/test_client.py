"""The notebook API: `Client` and `AsyncClient` over the real engine, catalogue and simulator."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import acechart
from acechart.client import parse_stats, parse_when
from acechart.errors import BadRequest, ConfigError, OriginAuthError
from acechart.server import create_app
from acechart.server.keys import RUNTIME
from tests.conftest import TOKEN, SimFactory, origin_settings
from tests.real_processes import free_port, start_process
from tests.server_helpers import ClientFactory, ServiceServer

SITE = "ses_falls_city"
NOW = "2025-01-01T00:00:00Z"
NOW_MS = 1_735_689_600_000
DAY = 86_400_000
README = (Path(__file__).parent.parent / "README.md").read_text()


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    """`acechart simulate` (realistic) in a child process, as a notebook would reach it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACECHART_")}
    env.update(ACECHART_SIMULATOR_NOW=NOW, ACECHART_SIMULATOR_TOKENS="demo-token=*;other=nowhere")
    with start_process(["simulate", "--port", str(port)], env, port):
        yield f"http://127.0.0.1:{port}"


def client(origin: str, tmp_path: Path, token: str = "demo-token", **kw: Any) -> acechart.Client:
    ace = acechart.Client(
        token=token, origin_url=origin, data_dir=str(tmp_path / "cache"), progress=False, **kw
    )
    ace.runtime.engine.clock = lambda: NOW_MS
    return ace


def test_parse_when_takes_what_people_pass() -> None:
    now = NOW_MS
    assert parse_when("now", "start", now_ms=now) == now
    assert parse_when("-7d", "start", now_ms=now) == now - 7 * DAY
    assert parse_when(" -2h ", "start", now_ms=now) == now - 2 * 3_600_000
    assert parse_when("-30m", "start", now_ms=now) == now - 30 * 60_000
    assert parse_when("-1w", "start", now_ms=now) == now - 7 * DAY
    assert parse_when(now - 5, "start", now_ms=now) == now - 5
    assert parse_when(str(now), "start", now_ms=now) == now
    assert parse_when(dt.date(2025, 1, 1), "start", now_ms=0) == NOW_MS
    assert parse_when(dt.datetime(2025, 1, 1), "start", now_ms=0) == NOW_MS
    aware = dt.datetime(2024, 12, 31, 18, tzinfo=dt.timezone(dt.timedelta(hours=-6)))
    assert parse_when(aware, "start", now_ms=0) == NOW_MS
    assert parse_when(pd.Timestamp("2025-01-01", tz="UTC"), "start", now_ms=0) == NOW_MS
    assert parse_when("2025-01-01", "start", now_ms=0) == NOW_MS
    for bad in ("yesterday", "-7x", 1.5, None, True):
        with pytest.raises(BadRequest) as caught:
            parse_when(bad, "end", now_ms=now)
        assert caught.value.extra["parameter"] == "end"


def test_one_point_as_a_string_and_the_frames(origin: str, tmp_path: Path) -> None:
    with client(origin, tmp_path) as ace:
        points = ace.points(SITE, q="DaTemp")
        assert {"name", "unit", "equipment", "tags"} <= set(points.columns) and len(points) > 1
        name, other = points["name"].iloc[0], points["name"].iloc[1]
        result = ace.query(SITE, name, "-2d", "now")  # one string, not its characters
        assert [s.name for s in result.series] == [name]
        both = ace.query(SITE, [name, other], dt.date(2024, 12, 30), NOW_MS)
        hourly = ace.query(SITE, f"{name},{other}", "-2d", "now", interval="1hr")
        sites = ace.sites()
    assert SITE in set(sites["name"])

    wide = both.to_pandas()
    assert str(wide.index.tz) == "UTC" and list(wide.columns) == [name, other]
    for s in both.series:
        column = wide[s.name].dropna()
        np.testing.assert_array_equal(column.index.as_unit("ms").asi8, s.ts[~np.isnan(s.values)])
    tidy = both.to_pandas(long=True)
    assert list(tidy.columns) == ["point", "time", "value"] and len(tidy) == both.total_samples

    table = both.to_arrow()
    assert table.schema.field("time").type == pa.timestamp("ms", tz="UTC")
    first = both.series[0]
    np.testing.assert_array_equal(
        table.column("value").chunk(0).to_numpy(zero_copy_only=True), first.values
    )

    polars_wide = both.to_polars()
    assert polars_wide.columns == ["time", name, other]
    polars_long = hourly.to_polars(long=True)
    assert {"count", "sum", "min", "max", "avg", "stddev"} <= set(polars_long.columns)
    assert polars_long.height == hourly.total_samples
    assert isinstance(polars_long["point"].dtype, type(pl.String()))


def test_a_token_the_origin_refuses_gets_nothing_from_the_shared_cache(
    origin: str, tmp_path: Path
) -> None:
    with client(origin, tmp_path) as ace:
        name = ace.points(SITE)["name"].iloc[0]
        warm = ace.query(SITE, name, "-1d", "now")
        assert warm.total_samples > 0
    with client(origin, tmp_path, token="not-a-token") as stranger, pytest.raises(OriginAuthError):
        stranger.query(SITE, name, "-1d", "now")
    # a real token, but not for this site
    with client(origin, tmp_path, token="other") as other, pytest.raises(OriginAuthError) as caught:
        other.query(SITE, name, "-1d", "now")
    assert caught.value.status == 403


async def test_the_blocking_client_works_inside_a_running_loop(origin: str, tmp_path: Path) -> None:
    """Jupyter runs an event loop in the main thread; the blocking client must not need it."""
    assert asyncio.get_running_loop() is not None
    with client(origin, tmp_path) as ace:
        name = ace.points(SITE)["name"].iloc[0]
        assert ace.query(SITE, name, "-1h", "now").total_samples > 0


async def test_the_async_client(origin: str, tmp_path: Path) -> None:
    async with await acechart.AsyncClient.open(
        "demo-token", origin_url=origin, data_dir=str(tmp_path / "a"), progress=False
    ) as ace:
        ace.runtime.engine.clock = lambda: NOW_MS
        name = (await ace.points(SITE))["name"].iloc[0]
        result = await ace.query(SITE, [name], "-3h", "now")
    assert result.total_samples > 0


def test_the_readme_example_runs_as_a_plain_script(origin: str, tmp_path: Path) -> None:
    block = re.search(r"## Using it from Python.*?```python\n(.*?)```", README, re.S)
    assert block is not None
    script = tmp_path / "script.py"
    script.write_text(block.group(1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACECHART_")}
    env.update(ACECHART_ORIGIN_URL=origin, ACECHART_DATA_DIR=str(tmp_path / "readme"))
    run = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] in ("HIT", "PARTIAL", "MISS")


def test_a_wrong_origin_url_is_named(origin: str, tmp_path: Path) -> None:
    """A base URL missing its path answers 404 pages, not the API: the error says so."""
    wrong = origin + "/not-the-api"
    with (
        acechart.Client(
            token="demo-token", origin_url=wrong, data_dir=str(tmp_path), progress=False
        ) as ace,
        pytest.raises(ConfigError) as caught,
    ):
        ace.query(SITE, "a/b", "-1d", "now")
    assert wrong in str(caught.value) and "ACE API" in str(caught.value)


def test_nothing_is_created_in_the_working_directory(tmp_path: Path) -> None:
    """With no data dir given, the cache goes to the per-user cache directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACECHART_")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    code = "from acechart.settings import Settings; print(Settings.from_env({}).data_dir)"
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert run.stdout.strip() == str(tmp_path / "xdg" / "acechart")
    assert (
        sorted(p.name for p in tmp_path.iterdir()) == ["xdg"]
        or not (tmp_path / "acechart-data").exists()
    )


def test_local_days_and_meters_in_the_notebook_api(origin: str, tmp_path: Path) -> None:
    with client(origin, tmp_path) as ace:
        name = ace.points(SITE, q="DaTemp")["name"].iloc[0]
        site = ace.query(SITE, name, "-10d", "-3d", interval="1day", tz="site")
        named = ace.query(SITE, name, "-10d", "-3d", interval="1day", tz="America/Chicago")
        peak = ace.query(SITE, name, "-10d", "-3d", interval="1day", tz="site", stat="max")
        with pytest.raises(BadRequest) as err:
            ace.query(SITE, name, "-10d", "-3d", interval="1day", tz="Nowhere/Town")
    assert err.value.parameter == "tz"
    assert site.query.tz == "America/Chicago"
    np.testing.assert_array_equal(site.series[0].ts, named.series[0].ts)
    frame = site.to_pandas()
    assert str(frame.index.tz) == "America/Chicago"
    assert {(t.hour, t.minute) for t in frame.index} == {(0, 0)}  # local midnights
    assert site.to_pandas(long=True)["time"].dt.tz is not None
    agg = site.series[0].aggregates
    assert agg is not None
    np.testing.assert_array_equal(peak.series[0].values, agg["max"])


def chicago_ms(text: str) -> int:
    return int(pd.Timestamp(text, tz="America/Chicago").tz_convert("UTC").value // 1_000_000)


def test_interval_queries_default_to_the_sites_local_days(origin: str, tmp_path: Path) -> None:
    """No `tz`: days of Falls City (America/Chicago), across the fall-back day, equal to
    pandas resampling the raw samples in that zone; `tz="UTC"` still gives UTC days."""
    start, end = chicago_ms("2024-11-01"), chicago_ms("2024-11-06")
    with client(origin, tmp_path) as ace:
        name = ace.points(SITE, q="DaTemp")["name"].iloc[0]
        local = ace.query(SITE, name, start, end, interval="1day")
        utc = ace.query(SITE, name, start, end, interval="1day", tz="UTC")
        raw = ace.query(SITE, name, start, end)
        raw_local = ace.query(SITE, name, start, end, tz="America/Chicago")
    assert local.query.tz == local.zone == "America/Chicago"
    (series,) = local.series
    samples = raw.to_pandas()[name].dropna()
    want = (
        samples.tz_convert("America/Chicago")
        .resample("D", closed="left", label="left")
        .agg(["count", "mean"])
    )
    assert series.aggregates is not None
    np.testing.assert_array_equal(series.ts, want.index.as_unit("ms").asi8)
    np.testing.assert_array_equal(series.aggregates["count"], want["count"])
    np.testing.assert_allclose(series.values, want["mean"], rtol=1e-12)
    # 2024-11-03 is 25 hours long in Chicago: its count shows the extra hour.
    counts = dict(zip(want.index.strftime("%m-%d"), want["count"], strict=True))
    assert counts["11-03"] > counts["11-04"]

    frame = local.to_pandas()
    assert str(frame.index.tz) == "America/Chicago"
    assert {(t.hour, t.minute) for t in frame.index} == {(0, 0)}  # local midnights
    wide = local.to_polars()
    assert wide.schema["time"] == pl.Datetime("ms", "America/Chicago")
    assert [t.hour for t in wide["time"]] == [0] * len(want)

    assert utc.zone == "UTC" and str(utc.to_pandas().index.tz) == "UTC"
    assert {t.hour for t in utc.to_pandas().index} == {0}
    assert not np.array_equal(utc.series[0].ts, series.ts)

    # Raw samples are instants: the zone changes neither which nor when.
    assert raw.query.tz == "UTC" and str(raw.to_pandas().index.tz) == "UTC"
    np.testing.assert_array_equal(raw.series[0].ts, raw_local.series[0].ts)
    np.testing.assert_array_equal(raw.series[0].values, raw_local.series[0].values)


async def test_a_site_without_coordinates_falls_back_to_utc_with_a_warning(
    make_simulator: SimFactory, tmp_path: Path
) -> None:
    """The default zone is a convenience: a site record without a latitude and longitude
    gives UTC buckets and a warning naming why, not a failed query. Asking for
    `tz="site"` outright is still the 400 naming `tz` the service answers."""
    sim = await make_simulator()
    table = sim.site
    table.site = dataclasses.replace(table.site, latitude=math.nan, longitude=math.nan)
    settings = origin_settings(sim.url, data_dir=str(tmp_path / "nb"))
    async with await acechart.AsyncClient.open(TOKEN, settings, progress=False) as ace:
        ace.runtime.engine.clock = lambda: NOW_MS
        name = table.names[0]
        with pytest.warns(UserWarning, match=r"no usable latitude and longitude.*UTC"):
            fallback = await ace.query(SITE, name, "-3d", "-1d", interval="1day")
        utc = await ace.query(SITE, name, "-3d", "-1d", interval="1day", tz="UTC")
        with pytest.raises(BadRequest) as caught:
            await ace.query(SITE, name, "-3d", "-1d", interval="1day", tz="site")
    assert caught.value.parameter == "tz"
    assert fallback.zone == "UTC" and str(fallback.to_pandas().index.tz) == "UTC"
    np.testing.assert_array_equal(fallback.series[0].ts, utc.series[0].ts)
    np.testing.assert_array_equal(fallback.series[0].values, utc.series[0].values)


# --- stats=: exactly the statistics asked for, as /api/aggregations gives them ------

STATS = ["max", "avg", "delta", "count", "twa", "last", "stddev"]


async def test_stats_give_the_columns_the_http_api_gives(
    origin: str, tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    """`stats=` in the notebook API against `/api/aggregations?stat=` of a running service
    over the same origin: the same columns in the same order, value for value."""
    settings = origin_settings(origin, data_dir=str(tmp_path / "service"))
    http = await aiohttp_client(ServiceServer(create_app(settings)))
    http.app[RUNTIME].engine.clock = lambda: NOW_MS
    async with await acechart.AsyncClient.open(
        "demo-token", origin_url=origin, data_dir=str(tmp_path / "nb"), progress=False
    ) as ace:
        ace.runtime.engine.clock = lambda: NOW_MS
        names = list((await ace.points(SITE))["name"].iloc[:3])
        start, end = "2024-12-20T00:00:00Z", "2024-12-23T06:00:00Z"
        for interval, tz in (("1hr", "UTC"), ("1day", "America/Chicago")):
            result = await ace.query(SITE, names, start, end, interval=interval, tz=tz, stats=STATS)
            resp = await http.get(
                "/api/aggregations",
                params={
                    "site": SITE,
                    "points": ",".join(names),
                    "start": start,
                    "end": end,
                    "interval": interval,
                    "tz": tz,
                    "stat": ",".join(STATS),
                    "format": "arrow",
                },
                headers={"X-ACE-Token": "demo-token"},
            )
            assert resp.status == 200, await resp.text()
            served = pa.ipc.open_stream(await resp.read()).read_all()
            table = result.to_arrow()
            assert table.column_names == ["point", "time", "value", *STATS]
            assert served.column_names == ["point", "time", "value", *STATS, "partial"]
            assert table.num_rows == served.num_rows > 0
            assert (
                table.column("point").cast(pa.string()).to_pylist()
                == served.column("point").cast(pa.string()).to_pylist()
            )
            for column in ("time", "value", *STATS):
                ours, theirs = table.column(column), served.column(column)
                assert ours.type == theirs.type, column
                if column == "time":
                    assert ours.cast(pa.int64()).equals(theirs.cast(pa.int64()))
                else:
                    mine, want = ours.to_numpy(), theirs.to_numpy()
                    if column != "count":
                        mine, want = mine.view(np.int64), want.view(np.int64)  # NaN for NaN
                    assert np.array_equal(mine, want), (interval, column)
            assert np.array_equal(table.column("value"), table.column("max"))
            tidy = result.to_pandas(long=True)
            assert list(tidy.columns) == ["point", "time", "value", *STATS]
            assert str(tidy["time"].dt.tz) == tz
            assert list(result.to_polars(long=True).columns) == ["point", "time", "value", *STATS]


def test_stats_are_checked_before_any_request(tmp_path: Path) -> None:
    """Nothing listens at the origin URL: every refusal below comes before a request."""
    ace = acechart.Client(
        token="demo-token",
        origin_url=f"http://127.0.0.1:{free_port()}",
        data_dir=str(tmp_path / "cache"),
        progress=False,
    )
    with ace:
        refusals: list[tuple[dict[str, Any], str]] = [
            ({"stats": ["avg", "median"]}, r"unknown statistic 'median' in stats; use any of avg"),
            ({"stats": ["p95", "mode", "max"]}, r"'p95', 'mode'"),
            ({"stats": []}, "must name statistics"),
            ({"stats": "avg,,max"}, "must name statistics"),
            ({"stats": ["max", "MAX"]}, "max twice"),
            ({"stats": [1, 2]}, "strings"),
            ({"stats": ["max"], "interval": "raw"}, "give an interval"),
            ({"stats": ["max"], "stat": "min"}, "not both"),
        ]
        for extra, words in refusals:
            kw: dict[str, Any] = {"interval": "1hr", **extra}
            with pytest.raises(BadRequest, match=words) as caught:
                ace.query(SITE, "a/point", "-1d", "now", **kw)
            assert caught.value.extra["parameter"] == "stats", extra
        with pytest.raises(BadRequest) as caught:
            ace.query(SITE, "a/point", "-1d", "now", interval="1hr", stats=["median"])
        assert caught.value.extra["unknownStats"] == ["median"]
    assert parse_stats("Max, avg", interval="1hr") == ("max", "avg")
    assert parse_stats(("twa",), interval="1day") == ("twa",)
    assert parse_stats(None, interval="raw") == ()
    with pytest.raises(BadRequest, match="stats must be names"):
        parse_stats(5, interval="1hr")  # type: ignore[arg-type]
