"""The ACE simulator: API shapes, pagination, data, auth, faults, speed, and the vendor's client.

Everything goes over real HTTP to a simulator on a local port. Pages are read
with `json.loads` here on purpose: it is the independent reference for the
simulator's byte-level page assembly.

`real` is the default, realistic simulator (the API as it behaves in the field,
ARCHITECTURE.md "The origin"); `ideal` the idealised one that other layers'
tests still use. Tests of what both share run against both (`either`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import numpy as np
import pytest

from acechart.errors import ConfigError
from acechart.settings import VALID_PAGE_SIZES, Settings
from acechart.simulator.app import PER_PAGE_CHOICES, SimulatorConfig
from acechart.simulator.cursor import Cursor, OffsetCursor, query_fingerprint
from acechart.simulator.datagen import BUCKET_MS, Rows, SiteTable
from acechart.simulator.pagefmt import PageRenderer, naive_time, page_body
from acechart.simulator.settings import SimulatorSettings
from acechart.times import format_time, parse_iso_ms, to_ms
from tests.conftest import NOW_MS, SITE, TOKEN, Sim, SimFactory

START = parse_iso_ms("2024-03-04T00:00:00Z")  # a Monday
HOUR = 3_600_000
PAGINATED = f"/sites/{SITE}/timeseries/paginated"
NAIVE_US = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$")
"""The real API's times: naive ISO-8601 (meaning UTC), microseconds unless zero."""


@pytest.fixture
async def real(make_simulator: SimFactory) -> Sim:
    return await make_simulator()


@pytest.fixture
async def ideal(make_simulator: SimFactory) -> Sim:
    return await make_simulator(mode="idealised")


@pytest.fixture(params=["realistic", "idealised"])
async def either(request: pytest.FixtureRequest, make_simulator: SimFactory) -> Sim:
    return await make_simulator(mode=request.param)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(
    http: aiohttp.ClientSession, sim: Sim, path: str, token: str | None = TOKEN, **params: Any
) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with http.get(sim.url + path, params=params, headers=headers) as resp:
        return resp.status, await resp.read()


async def page_through(
    http: aiohttp.ClientSession, sim: Sim, **params: Any
) -> list[dict[str, Any]]:
    """Every page of one paginated query, as parsed JSON documents (a repeated cursor fails)."""
    pages = []
    cursor = None
    seen: set[str] = set()
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        status, body = await get(http, sim, PAGINATED, **query)
        assert status == 200, body
        page = json.loads(body)
        pages.append(page)
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return pages
        cursor = page["next_cursor"]
        assert cursor and cursor not in seen, f"cursor repeated on page {len(pages)}"
        seen.add(cursor)


def sample_time(table: SiteTable, rows: Rows, i: int) -> str:
    """The time of row i as the simulator's mode writes it."""
    if table.naive_us:
        return naive_time(int(rows.t_ms[i]), int(rows.sub_us[i]))
    return format_time(int(rows.t_ms[i]))


def reference_samples(table: SiteTable, rows: Rows) -> list[dict[str, Any]]:
    """What `json.loads` must give for `rows`, built one sample at a time in Python."""
    out = []
    for i in range(len(rows)):
        word = int(rows.word[i])
        if word >= 0:
            text, quoted = table.vocab[word]
            value: Any = text if quoted else json.loads(text)
        else:
            d = int(rows.decimals[i])
            text = f"{int(rows.vint[i]) / 10**d:.{d}f}"
            value = text if rows.quoted[i] else json.loads(text)
        out.append(
            {
                "name": table.names[int(rows.idx[i])],
                "value": value,
                "time": sample_time(table, rows, i),
            }
        )
    return out


def parsed_value(value: Any) -> float:
    """The number `_core.parse_page` reads from a JSON value (NaN when non-numeric)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        words = {"true": 1.0, "on": 1.0, "active": 1.0, "false": 0.0, "off": 0.0, "inactive": 0.0}
        if value.lower() in words:
            return words[value.lower()]
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


def window(start: int, end: int, **params: Any) -> dict[str, Any]:
    return {"start_time": format_time(start), "end_time": format_time(end), **params}


# --- catalogue and metadata ----------------------------------------------------------


async def test_catalogue_is_a_realistic_site(either: Sim) -> None:
    table = either.site
    names = table.names
    assert 250 <= len(names) <= 400
    assert len(set(names)) == len(names)
    assert all(n.startswith(f"ses/{SITE}/192.168.96.") and "/n4/" in n for n in names)
    assert any(n.endswith("/VAV-707.points.DaTemp") for n in names)
    assert any(n.endswith("/AHUDampers.points.Exhaust_Damper") for n in names)
    assert set(table.cadence_ms // 1000) == {30, 60, 300}
    kinds = Counter(p.model.kind for p in table.site.points)
    assert kinds["binary"] > 10 and kinds["multistate"] > 2 and kinds["counter"] == 3
    assert sum(p.flaky for p in table.site.points) >= 3


async def test_same_seed_same_catalogue_other_seed_other_data(make_simulator: SimFactory) -> None:
    a, b, c = await make_simulator(), await make_simulator(), await make_simulator(seed=2)
    assert a.site.names == b.site.names == c.site.names
    rows_a = a.site.all_rows(a.site.all_points, START, START + HOUR)
    rows_b = b.site.all_rows(b.site.all_points, START, START + HOUR)
    rows_c = c.site.all_rows(c.site.all_points, START, START + HOUR)
    np.testing.assert_array_equal(rows_a.t_ms, rows_b.t_ms)
    np.testing.assert_array_equal(rows_a.vint, rows_b.vint)
    assert len(rows_a) != len(rows_c) or not np.array_equal(rows_a.vint, rows_c.vint)


async def test_sites_and_site(either: Sim, http: aiohttp.ClientSession) -> None:
    status, body = await get(http, either, "/sites")
    assert status == 200
    listing = json.loads(body)
    assert {k: listing[k] for k in ("page", "pages", "total")} == {
        "page": 1,
        "pages": 1,
        "total": 1,
    }
    site = listing["items"][0]
    assert site["name"] == SITE and site["nice_name"] == "Ses Falls City"
    assert "Falls City, NE" in site["address"]
    assert (site["latitude"], site["longitude"]) == pytest.approx((40.06, -95.60), abs=0.01)
    status, body = await get(http, either, f"/sites/{SITE}")
    assert status == 200 and json.loads(body) == site


async def test_sites_stand_in_different_time_zones(
    make_simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    sim = await make_simulator(sites=(SITE, "ses_ridgeview"), vav_count=2)
    status, body = await get(http, sim, "/sites", per_page=100)
    assert status == 200
    falls, other = json.loads(body)["items"]
    assert [falls["name"], other["name"]] == [SITE, "ses_ridgeview"]
    assert other["longitude"] < -110 and "CA" in other["address"]  # Sacramento: Pacific time
    tables = sim.data.sites
    assert tables[SITE].site.tz_offset_s == -6 * 3600
    assert tables["ses_ridgeview"].site.tz_offset_s == -8 * 3600


async def test_configured_points_pages(either: Sim, http: aiohttp.ClientSession) -> None:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        status, body = await get(
            http, either, f"/sites/{SITE}/configured_points", page=page, per_page=100
        )
        assert status == 200
        doc = json.loads(body)
        assert set(doc) == {"page", "pages", "per_page", "total", "items"}
        assert doc["page"] == page and doc["per_page"] == 100
        items += doc["items"]
        if page >= doc["pages"]:
            break
        page += 1
    assert doc["total"] == len(items) == len(either.site.names)
    assert [p["name"] for p in items] == list(either.site.names)
    fields = {
        "id", "name", "client", "site", "kv_tags", "bacnet_data", "marker_tags",
        "collect_config", "point_type", "collect_enabled", "collect_interval", "created",
        "updated",
    }  # fmt: skip
    assert all(fields <= set(p) for p in items)
    assert {p["collect_interval"] for p in items} == {30, 60, 300}
    assert all(all(isinstance(v, str) for v in p["kv_tags"].values()) for p in items)
    assert all(p["client"] == "ses" and p["site"] == SITE for p in items)


async def test_real_per_page_is_an_enum_and_large_values_fail(
    real: Sim, http: aiohttp.ClientSession
) -> None:
    points = f"/sites/{SITE}/configured_points"
    for per_page in (2, 10, 20, 30, 40, 50, 100):
        assert per_page in PER_PAGE_CHOICES
        status, body = await get(http, real, points, per_page=per_page)
        assert status == 200 and len(json.loads(body)["items"]) == per_page
    status, body = await get(http, real, points, per_page=25)
    assert status == 400
    assert json.loads(body) == {
        "errors": {"per_page": "The value '25' is not a valid choice for 'per_page'."},
        "message": "Input payload validation failed",
    }
    status, body = await get(http, real, points, per_page=500)
    assert status == 500 and json.loads(body) == {"message": "An unhandled exception occurred."}
    assert (await get(http, real, "/sites", per_page=100000))[0] == 200  # listings of sites may


async def test_ideal_per_page_is_bounded(ideal: Sim, http: aiohttp.ClientSession) -> None:
    status, _ = await get(http, ideal, f"/sites/{SITE}/configured_points", per_page=101)
    assert status == 422
    status, body = await get(http, ideal, "/sites/nowhere")
    assert status == 404 and json.loads(body)["code"] == 404


# --- auth --------------------------------------------------------------------------------


async def test_real_auth_failures(make_simulator: SimFactory, http: aiohttp.ClientSession) -> None:
    """Missing token 401; a bad one 500; unknown or forbidden site 403 with a `null` body."""
    sim = await make_simulator(
        sites=(SITE, "ses_lincoln"), vav_count=2, tokens={"alpha": frozenset({SITE})}
    )
    params = window(START, START + 60_000)
    status, body = await get(http, sim, PAGINATED, token=None, **params)
    assert status == 401 and "message" in json.loads(body)
    async with http.get(sim.url + "/sites", headers={"Authorization": "Basic abc"}) as resp:
        assert resp.status == 401
    for token in ("wrong", TOKEN):  # demo-token is not configured here
        status, body = await get(http, sim, PAGINATED, token=token, **params)
        assert status == 500
        assert json.loads(body) == {"message": "An unhandled exception occurred."}
    assert (await get(http, sim, PAGINATED, token="alpha", **params))[0] == 200
    lincoln = "/sites/ses_lincoln"
    for path in (
        lincoln, f"{lincoln}/configured_points", f"{lincoln}/timeseries/paginated",
        "/sites/atlantis", "/sites/atlantis/configured_points",
        "/sites/atlantis/timeseries/paginated",
    ):  # fmt: skip
        status, body = await get(http, sim, path, token="alpha", **params)
        assert (status, body) == (403, b"null"), path
    status, body = await get(http, sim, "/sites", token="alpha")
    assert [s["name"] for s in json.loads(body)["items"]] == [SITE]
    forbidden_point = sim.data.sites["ses_lincoln"].names[0]
    path = f"/points/{quote(forbidden_point, safe='')}/timeseries"
    assert await get(http, sim, path, token="alpha", **params) == (403, b"null")
    status, body = await get(http, sim, "/points/no%2Fsuch/timeseries", token="alpha", **params)
    assert status == 404 and "message" in json.loads(body)


async def test_ideal_auth(make_simulator: SimFactory, http: aiohttp.ClientSession) -> None:
    sim = await make_simulator(
        mode="idealised",
        sites=(SITE, "ses_lincoln"),
        vav_count=2,
        tokens={"alpha": frozenset({SITE}), "root": frozenset({"*"})},
    )
    params = window(START, START + 60_000)
    other = "/sites/ses_lincoln/timeseries/paginated"
    assert (await get(http, sim, PAGINATED, token=None, **params))[0] == 401
    assert (await get(http, sim, PAGINATED, token=TOKEN, **params))[0] == 401
    assert (await get(http, sim, PAGINATED, token="alpha", **params))[0] == 200
    status, body = await get(http, sim, other, token="alpha", **params)
    assert status == 403 and "ses_lincoln" in json.loads(body)["message"]
    assert (await get(http, sim, other, token="root", **params))[0] == 200
    status, body = await get(http, sim, "/sites", token="root")
    assert [s["name"] for s in json.loads(body)["items"]] == [SITE, "ses_lincoln"]
    async with http.get(sim.url + "/sites", headers={"Authorization": "Basic abc"}) as resp:
        assert resp.status == 401


async def test_demo_token_reads_everything_without_token_settings(
    either: Sim, http: aiohttp.ClientSession
) -> None:
    assert (await get(http, either, PAGINATED, **window(START, START + 60_000)))[0] == 200
    assert (await get(http, either, "/sites"))[0] == 200


# --- the realistic paginated timeseries ------------------------------------------------------


async def test_real_pages_hold_the_whole_site_whatever_point_names(
    real: Sim, http: aiohttp.ClientSession
) -> None:
    params = window(START, START + HOUR, page_size=1000, raw_data="true")
    status, plain = await get(http, real, PAGINATED, **params)
    assert status == 200
    page = json.loads(plain)
    assert list(page) == ["point_samples", "next_cursor", "has_more"]
    assert page["has_more"] is True and isinstance(page["next_cursor"], str)
    samples = page["point_samples"]
    assert len(samples) == 1000
    assert all(list(s) == ["name", "value", "time"] for s in samples)
    assert len({s["name"] for s in samples}) > 100
    index = real.site.index
    keys = [(s["time"], index[s["name"]]) for s in samples]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)  # by time, then point
    assert Counter(type(s["value"]).__name__ for s in samples)["str"] > 900
    one = real.site.names[3]
    for names in (one, f"{one},{real.site.names[40]}", "no/such/point"):
        assert await get(http, real, PAGINATED, **params, point_names=names) == (200, plain)


async def test_real_collection_runs_share_one_naive_microsecond_timestamp(
    real: Sim, http: aiohttp.ClientSession
) -> None:
    start, end = START + 7 * 60_000, START + 37 * 60_000
    pages = await page_through(http, real, **window(start, end, page_size=100000, raw_data="true"))
    samples = [s for p in pages for s in p["point_samples"]]
    assert samples and all(NAIVE_US.match(s["time"]) and "." in s["time"] for s in samples)
    cadence = {p.name: p.cadence_s for p in real.site.site.points}
    runs: dict[str, set[int]] = {}
    for s in samples:
        runs.setdefault(s["time"], set()).add(cadence[s["name"]])
    assert all(len(c) == 1 for c in runs.values())  # one run, one cadence, one instant
    per_cadence = Counter(next(iter(c)) for c in runs.values())
    assert per_cadence == {30: 60, 60: 30, 300: 6}  # one instant per run, the same phase
    sizes = Counter(s["time"] for s in samples)
    one_minute = sum(1 for c in cadence.values() if c == 60)
    assert max(sizes.values()) <= max(Counter(cadence.values()).values())
    assert np.median([n for t, n in sizes.items() if 60 in runs[t]]) >= 0.9 * one_minute
    expected = real.site.all_rows(real.site.all_points, start, end)
    assert samples == reference_samples(real.site, expected)


@pytest.mark.parametrize("page_size", [1000, 10000, 100000])
async def test_real_every_sample_exactly_once_when_pages_exceed_a_run(
    real: Sim, http: aiohttp.ClientSession, page_size: int
) -> None:
    start, end = START + 5 * 60_000, START + 2 * HOUR
    pages = await page_through(
        http, real, **window(start, end, page_size=page_size, raw_data="true")
    )
    got = [s for p in pages for s in p["point_samples"]]
    expected = real.site.all_rows(real.site.all_points, start, end)
    assert len(pages) == max(1, math.ceil(len(expected) / page_size))
    assert got == reference_samples(real.site, expected)


async def test_real_cursor_is_base64_json_offset_and_timestamp(
    real: Sim, http: aiohttp.ClientSession
) -> None:
    status, body = await get(
        http, real, PAGINATED, **window(START, START + HOUR, page_size=500, raw_data="true")
    )
    page = json.loads(body)
    doc = json.loads(base64.b64decode(page["next_cursor"]))
    assert set(doc) == {"offset", "timestamp"}
    last = page["point_samples"][-1]["time"]
    assert doc["timestamp"] == last and NAIVE_US.match(last)
    at_last = sum(1 for s in page["point_samples"] if s["time"] == last)
    assert doc["offset"] == at_last
    assert OffsetCursor.decode(page["next_cursor"]) == OffsetCursor(at_last, last)
    status, body = await get(
        http, real, PAGINATED,
        **window(START, START + HOUR, page_size=500, raw_data="true", cursor=page["next_cursor"]),
    )  # fmt: skip
    assert status == 200
    following = json.loads(body)["point_samples"]
    expected = reference_samples(
        real.site, real.site.all_rows(real.site.all_points, START, START + HOUR)
    )
    assert page["point_samples"] + following == expected[:1000]


@pytest.mark.parametrize(
    ("vav_count", "cadence_s", "page_size"),
    [(36, None, 3), (36, None, 10), (36, 60, 100), (317, 60, 500), (317, 60, 1000)],
)
async def test_real_cursor_stalls_inside_one_timestamp(
    make_simulator: SimFactory,
    http: aiohttp.ClientSession,
    vav_count: int,
    cadence_s: int | None,
    page_size: int,
) -> None:
    """The API does not add the offset it was given: a page inside one timestamp (smaller
    than a collection run) hands back its own cursor, and following it returns the same
    page forever. On a site of 2,000 one-minute points that is any page under 2,000."""
    sim = await make_simulator(vav_count=vav_count, cadence_s=cadence_s)
    table = sim.site
    params = window(START, START + HOUR, page_size=page_size, raw_data="true")
    status, body = await get(http, sim, PAGINATED, **params)
    first = json.loads(body)
    assert len({s["time"] for s in first["point_samples"]}) == 1  # inside the first run
    cursor = first["next_cursor"]
    assert OffsetCursor.decode(cursor).offset == page_size
    bodies, cursors = [], []
    for _ in range(3):
        status, body = await get(http, sim, PAGINATED, **params, cursor=cursor)
        assert status == 200
        page = json.loads(body)
        bodies.append(body)
        cursors.append(page["next_cursor"])
        assert page["has_more"] is True
        cursor = page["next_cursor"]
    assert cursors == [first["next_cursor"]] * 3  # the same cursor again and again
    assert bodies[0] == bodies[1] == bodies[2]
    expected = reference_samples(table, table.all_rows(table.all_points, START, START + HOUR))
    assert json.loads(bodies[0])["point_samples"] == expected[page_size : 2 * page_size]


async def test_real_page_size_is_a_strict_enum(real: Sim, http: aiohttp.ClientSession) -> None:
    for size in VALID_PAGE_SIZES:
        status, body = await get(
            http, real, PAGINATED, **window(START, START + 60_000, page_size=size, raw_data="true")
        )
        assert status == 200 and len(json.loads(body)["point_samples"]) <= size
    for size in (30000, 7, 1, 1_000_000):
        status, body = await get(
            http, real, PAGINATED, **window(START, START + HOUR, page_size=size)
        )
        assert status == 400
        assert f"'{size}' is not a valid choice for 'page_size'" in body.decode()
        assert json.loads(body) == {
            "errors": {"page_size": f"The value '{size}' is not a valid choice for 'page_size'."},
            "message": "Input payload validation failed",
        }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": "many"}, "page_size"),
        ({"start_time": None}, "start_time"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"raw_data": "perhaps"}, "raw_data"),
    ],
)
async def test_real_invalid_parameters_are_400(
    real: Sim, http: aiohttp.ClientSession, params: dict[str, Any], field: str
) -> None:
    query = {**window(START, START + HOUR, page_size=100), **params}
    query = {k: v for k, v in query.items() if v is not None}
    status, body = await get(http, real, PAGINATED, **query)
    assert status == 400
    doc = json.loads(body)
    assert doc["message"] == "Input payload validation failed" and field in doc["errors"]


async def test_real_malformed_cursor_is_a_500(real: Sim, http: aiohttp.ClientSession) -> None:
    for cursor in ("!!!", base64.b64encode(b'{"offset": -1}').decode()):
        status, body = await get(
            http, real, PAGINATED, **window(START, START + HOUR, page_size=10, cursor=cursor)
        )
        assert status == 500 and json.loads(body) == {"message": "An unhandled exception occurred."}


async def test_real_empty_window_is_an_empty_200(real: Sim, http: aiohttp.ClientSession) -> None:
    empty = {"point_samples": [], "next_cursor": None, "has_more": False}
    for start, end in ((NOW_MS + HOUR, NOW_MS + 2 * HOUR), (START + HOUR, START)):
        for raw in ("true", "false"):
            status, body = await get(
                http, real, PAGINATED, **window(start, end, page_size=100, raw_data=raw)
            )
            assert status == 200 and json.loads(body) == empty


async def test_real_buckets_without_raw_data(real: Sim, http: aiohttp.ClientSession) -> None:
    """No `raw_data=true`: five-minute means of every point, stamped at the bucket's start."""
    start, end = START + 60_000, START + 20 * 60_000
    pages = await page_through(http, real, **window(start, end, page_size=1000))
    got = [s for p in pages for s in p["point_samples"]]
    assert {s["time"] for s in got} == {
        naive_time(t) for t in range(START, end, BUCKET_MS)
    }  # naive, no fraction on whole seconds
    assert len({s["name"] for s in got}) > 250
    for s in got[:: max(1, len(got) // 40)]:
        rows = real.data.expected(SITE, s["name"], start, end)
        t = parse_iso_ms(s["time"])
        inside = (rows.t_ms >= t) & (rows.t_ms < t + BUCKET_MS) & ~np.isnan(rows.value)
        assert float(s["value"]) == pytest.approx(rows.value[inside].mean(), abs=6e-4)
    with pytest.raises(AssertionError, match="cursor repeated"):  # a bucket is one timestamp
        await page_through(http, real, **window(start, end, page_size=100))


async def test_real_page_limit_and_lazy_has_more(
    make_simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    """Page limits (and a lazy `has_more`) larger than a collection run still cover all."""
    sim = await make_simulator(max_page_size=500, exact_has_more=False)
    start, end = START, START + HOUR
    pages = await page_through(http, sim, **window(start, end, page_size=100000, raw_data="true"))
    sizes = [len(p["point_samples"]) for p in pages]
    assert all(s == 500 for s in sizes[:-1]) and sizes[-1] < 500
    got = [s for p in pages for s in p["point_samples"]]
    assert got == reference_samples(sim.site, sim.site.all_rows(sim.site.all_points, start, end))


async def test_large_site_one_minute_runs_of_2000_points(
    make_simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    """The benchmark's site: about 2,000 points all collected each minute at one instant,
    and a page of 100,000 of its samples generated and written in well under 100 ms."""
    sim = await make_simulator(vav_count=317, cadence_s=60)
    table = sim.site
    assert len(table.names) >= 2000 and set(table.cadence_ms) == {60_000}
    status, body = await get(
        http, sim, PAGINATED, **window(START, START + HOUR, page_size=10000, raw_data="true")
    )
    assert status == 200
    samples = json.loads(body)["point_samples"]
    runs = Counter(s["time"] for s in samples)
    assert max(runs.values()) >= 0.95 * len(table.names)
    assert len({parse_iso_ms(t) % 60_000 for t in runs}) == 1  # every run at the same phase
    renderer = sim.state.renderers[SITE]
    costs = []
    for i in range(5):
        t0 = time.process_time()
        rows = table.next_rows(table.all_points, START + i * HOUR, START + 9 * HOUR, None, 100_000)
        body = page_body(renderer.render(rows), "cursor", True)
        costs.append(time.process_time() - t0)
    assert len(rows) == 100_000 and len(np.unique(rows.t_ms)) <= 52
    assert min(costs) < 0.1, costs


# --- the idealised paginated timeseries ------------------------------------------------------


async def test_ideal_page_shape_and_order(ideal: Sim, http: aiohttp.ClientSession) -> None:
    status, body = await get(
        http, ideal, PAGINATED, **window(START, START + HOUR, page_size=1000, raw_data="true")
    )
    assert status == 200
    page = json.loads(body)
    assert list(page) == ["point_samples", "next_cursor", "has_more"]
    assert page["has_more"] is True and isinstance(page["next_cursor"], str)
    samples = page["point_samples"]
    assert len(samples) == 1000
    assert all(s["time"].endswith("Z") and len(s["time"]) == 20 for s in samples)
    index = ideal.site.index
    keys = [(parse_iso_ms(s["time"]), index[s["name"]]) for s in samples]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    per_time = Counter(s["time"] for s in samples)
    assert max(per_time.values()) < 20  # each point has its own phase: few share a second


@pytest.mark.parametrize("page_size", [1000, 10000, 100000])
async def test_ideal_every_sample_exactly_once_across_pages(
    ideal: Sim, http: aiohttp.ClientSession, page_size: int
) -> None:
    start, end = START + 5 * 60_000, START + 2 * HOUR
    pages = await page_through(
        http, ideal, **window(start, end, page_size=page_size, raw_data="true")
    )
    got = [s for p in pages for s in p["point_samples"]]
    expected = ideal.site.all_rows(ideal.site.all_points, start, end)
    assert len(pages) == max(1, math.ceil(len(expected) / page_size))
    assert got == reference_samples(ideal.site, expected)
    times = {s["time"] for s in got}
    assert format_time(start) in times and format_time(end) in times  # both ends included


async def test_ideal_tiny_pages_with_point_filter(ideal: Sim, http: aiohttp.ClientSession) -> None:
    names = [ideal.site.names[i] for i in (3, 40, 200)]
    start, end = START, START + 10 * 60_000
    pages = await page_through(
        http, ideal, **window(start, end, page_size=3, raw_data="true", point_names=",".join(names))
    )
    got = [s for p in pages for s in p["point_samples"]]
    assert {s["name"] for s in got} == set(names)
    assert all(len(p["point_samples"]) == 3 for p in pages[:-1])
    expected = ideal.site.all_rows(ideal.site.select(names), start, end)
    assert got == reference_samples(ideal.site, expected)


async def test_ideal_unknown_point_names_are_ignored(
    ideal: Sim, http: aiohttp.ClientSession
) -> None:
    status, body = await get(
        http, ideal, PAGINATED,
        **window(START, START + HOUR, page_size=100, raw_data="true", point_names="no/such/point"),
    )  # fmt: skip
    assert status == 200
    assert json.loads(body) == {"point_samples": [], "next_cursor": None, "has_more": False}


async def test_same_request_same_bytes(either: Sim, http: aiohttp.ClientSession) -> None:
    params = window(START, START + HOUR, page_size=5000, raw_data="true")
    first = await get(http, either, PAGINATED, **params)
    second = await get(http, either, PAGINATED, **params)
    assert first == second


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": 7}, "page_size"),
        ({"page_size": "many"}, "page_size"),
        ({"start_time": None}, "start_time"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"end_time": "2024-03-03T00:00:00Z"}, "end_time"),
        ({"cursor": "!!!"}, "cursor"),
        ({"raw_data": "perhaps"}, "raw_data"),
    ],
)
async def test_ideal_invalid_parameters_are_422(
    ideal: Sim, http: aiohttp.ClientSession, params: dict[str, Any], field: str
) -> None:
    query = {**window(START, START + HOUR, page_size=100), **params}
    query = {k: v for k, v in query.items() if v is not None}
    status, body = await get(http, ideal, PAGINATED, **query)
    assert status == 422
    assert field in json.loads(body)["errors"]["query"]


async def test_ideal_all_valid_page_sizes_accepted(ideal: Sim, http: aiohttp.ClientSession) -> None:
    for size in VALID_PAGE_SIZES:
        status, body = await get(
            http, ideal, PAGINATED, **window(START, START + 60_000, page_size=size, raw_data="true")
        )
        assert status == 200
        assert len(json.loads(body)["point_samples"]) <= size


async def test_ideal_cursor_of_another_query_is_rejected(
    ideal: Sim, http: aiohttp.ClientSession
) -> None:
    fp = query_fingerprint(SITE, START, START + HOUR, True, None)
    cursor = Cursor(fp, START, 0, 10).encode()
    ok = await get(
        http,
        ideal,
        PAGINATED,
        **window(START, START + HOUR, page_size=10, raw_data="true", cursor=cursor),
    )
    assert ok[0] == 200
    other = await get(
        http, ideal, PAGINATED,
        **window(START, START + 2 * HOUR, page_size=10, raw_data="true", cursor=cursor),
    )  # fmt: skip
    assert other[0] == 422


async def test_no_data_after_now(either: Sim, http: aiohttp.ClientSession) -> None:
    pages = await page_through(
        http,
        either,
        **window(NOW_MS - 10 * 60_000, NOW_MS + HOUR, page_size=100000, raw_data="true"),
    )
    times = [parse_iso_ms(s["time"]) for p in pages for s in p["point_samples"]]
    assert times and max(times) <= NOW_MS


async def test_ideal_page_limit_and_lazy_has_more(
    make_simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    sim = await make_simulator(mode="idealised", max_page_size=50, exact_has_more=False)
    name = sim.site.names[0]
    start, end = START, START + 2 * HOUR
    expected = sim.site.all_rows(sim.site.select([name]), start, end)
    pages = await page_through(
        http, sim, **window(start, end, page_size=1000, raw_data="true", point_names=name)
    )
    sizes = [len(p["point_samples"]) for p in pages]
    assert all(s == 50 for s in sizes[:-1]) and sizes[-1] < 50
    assert sum(sizes) == len(expected)
    if len(expected) % 50 == 0:
        assert sizes[-1] == 0  # the lazy API's empty last page


async def test_ideal_buckets_are_five_minute_means(ideal: Sim, http: aiohttp.ClientSession) -> None:
    names = [p.name for p in ideal.site.site.points if p.model.kind == "analog"][:4]
    names.append(next(p.name for p in ideal.site.site.points if p.model.style == "words"))
    start, end = START + 60_000, START + HOUR
    pages = await page_through(
        http,
        ideal,
        **window(start, end, page_size=10, raw_data="false", point_names=",".join(names)),
    )
    got = [s for p in pages for s in p["point_samples"]]
    buckets: dict[tuple[str, int], list[float]] = {}
    for name in names:
        rows = ideal.data.expected(SITE, name, start, end)
        for t, v in zip(rows.t_ms.tolist(), rows.value.tolist(), strict=True):
            if not math.isnan(v):
                buckets.setdefault((name, t - t % BUCKET_MS), []).append(v)
    assert len(got) == len(buckets)
    keys = [(parse_iso_ms(s["time"]), ideal.site.index[s["name"]]) for s in got]
    assert keys == sorted(keys)
    for s in got:
        t = parse_iso_ms(s["time"])
        assert t % BUCKET_MS == 0
        values = buckets[(s["name"], t)]
        assert float(s["value"]) == pytest.approx(sum(values) / len(values), abs=6e-4)


# --- data realism -------------------------------------------------------------------------


async def test_values_gaps_and_cadence_over_a_month(either: Sim) -> None:
    table = either.site
    start, end = START, START + 30 * 24 * HOUR
    gaps = 0
    for p in table.site.points[::7]:
        rows = either.data.expected(SITE, p.name, start, end)
        step = np.diff(rows.t_ms)
        assert step.min() == p.cadence_s * 1000
        assert np.all(step % (p.cadence_s * 1000) == 0)
        gaps += int(np.count_nonzero(step > p.cadence_s * 1000))
        full = (end - start) // (p.cadence_s * 1000)
        assert 0.8 * full < len(rows) <= full + 1
        if p.model.kind == "counter":
            assert np.all(np.diff(rows.value) >= 0)
        if p.model.kind == "analog" and not p.flaky:
            assert np.isnan(rows.value).sum() == 0
            assert p.model.lo <= rows.value.min() and rows.value.max() <= p.model.hi
            assert rows.value.std() > 0
    assert gaps > 5


async def test_value_styles_cover_strings_numbers_words_and_junk(either: Sim) -> None:
    table = either.site
    rows = table.all_rows(table.all_points, START, START + 24 * HOUR)
    texts = Counter(
        (table.vocab[w][0] if w >= 0 else "<number>", bool(q))
        for w, q in zip(rows.word.tolist(), rows.quoted.tolist(), strict=True)
    )
    assert texts[("<number>", True)] > 0.9 * len(rows)  # "72.5", the common case
    assert texts[("<number>", False)] > 0  # bare JSON numbers
    for literal in ("true", "false", "null"):
        assert texts[(literal, False)] > 0, literal
    for word in ("active", "inactive", "true", "false", "Occupied", "Unoccupied", ""):
        assert texts[(word, True)] > 0, word
    sample = np.random.default_rng(3).choice(len(rows), 20_000, replace=False)
    sample.sort()
    subset = rows.take(sample)
    parsed = np.array([parsed_value(s["value"]) for s in reference_samples(table, subset)])
    np.testing.assert_array_equal(parsed, subset.value)
    non_numeric = np.isnan(rows.value).mean()
    assert 0 < non_numeric < 0.05


def random_rows(table: SiteTable, n: int, seed: int) -> Rows:
    rng = np.random.default_rng(seed)
    word = rng.integers(-1, len(table.vocab), n).astype(np.int16)
    word[rng.random(n) < 0.6] = -1
    quoted = np.where(word >= 0, table.vocab_quoted[np.maximum(word, 0)], rng.random(n) < 0.7)
    sub_us = rng.integers(0, 1000, n).astype(np.int16)
    t_ms = np.sort(rng.integers(-(10**11), 4 * 10**12, n))
    whole = rng.random(n) < 0.2
    t_ms[whole] = t_ms[whole] // 1000 * 1000
    sub_us[whole] = 0
    return Rows(
        t_ms=t_ms // 1000 * 1000 if not table.naive_us else t_ms,
        idx=rng.integers(0, len(table.names), n).astype(np.int32),
        vint=rng.integers(-(10**12), 10**12, n) // (10 ** rng.integers(0, 12, n)),
        decimals=rng.integers(0, 5, n).astype(np.int8),
        word=word,
        quoted=quoted,
        value=np.zeros(n),
        sub_us=sub_us if table.naive_us else np.zeros(n, np.int16),
    )


def test_renderer_matches_json_reference_on_random_rows(either: Sim) -> None:
    table = either.site
    rows = random_rows(table, 3000, 7)
    body = b"[" + PageRenderer(table).render(rows) + b"]"
    got = json.loads(body)
    assert got == reference_samples(table, rows)
    if table.naive_us:
        assert all(NAIVE_US.match(s["time"]) for s in got)
        assert any("." not in s["time"] for s in got)  # a zero fraction is left out


# --- the other timeseries endpoints -----------------------------------------------------


async def test_site_timeseries_unpaginated(either: Sim, http: aiohttp.ClientSession) -> None:
    start, end = START, START + 15 * 60_000
    status, body = await get(
        http, either, f"/sites/{SITE}/timeseries", **window(start, end, point_names="x")
    )
    assert status == 200
    if either.state.config.realistic:  # no filter: the whole site
        expected = either.site.all_rows(either.site.all_points, start, end)
    else:
        expected = either.site.all_rows(either.site.select(["x"]), start, end)
    assert json.loads(body) == {"point_samples": reference_samples(either.site, expected)}


async def test_point_timeseries_with_slashes_in_the_name(
    either: Sim, http: aiohttp.ClientSession
) -> None:
    """`/points/{name}/timeseries`: one point's raw samples, unpaginated; unknown: 404."""
    name = either.site.names[10]
    start, end = START, START + HOUR
    expected = reference_samples(either.site, either.data.expected(SITE, name, start, end))
    times = window(start, end)
    for path_name in (quote(name, safe=""), name):
        status, body = await get(http, either, f"/points/{path_name}/timeseries", **times)
        assert status == 200
        assert json.loads(body) == {"point_samples": expected}
    status, _ = await get(http, either, "/points/no%2Fsuch/timeseries", **times)
    assert status == 404
    status, body = await get(http, either, f"/points/{quote(name, safe='')}/timeseries",
                             **window(NOW_MS + HOUR, NOW_MS + 2 * HOUR))  # fmt: skip
    assert status == 200 and json.loads(body) == {"point_samples": []}


async def test_post_points_get_timeseries(either: Sim, http: aiohttp.ClientSession) -> None:
    """In the swagger; the real API answers it 400, the idealised one serves it."""
    names = [either.site.names[i] for i in (0, 50, 100)]
    start, end = START, START + 20 * 60_000
    table = either.site
    expected = reference_samples(table, table.all_rows(table.select(names), start, end))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = either.url + "/points/get_timeseries"
    for points in (names, [{"name": n} for n in names]):
        async with http.post(url, params=window(start, end), json={"points": points},
                             headers=headers) as resp:  # fmt: skip
            if either.state.config.realistic:
                assert resp.status == 400
                assert (await resp.json())["message"] == "Input payload validation failed"
            else:
                assert resp.status == 200
                assert (await resp.json())["point_samples"] == expected
    if not either.state.config.realistic:
        async with http.post(url, params=window(start, end), json={"points": ["nope/x"]},
                             headers=headers) as resp:  # fmt: skip
            assert resp.status == 404


# --- faults and the request log ----------------------------------------------------------


async def test_scripted_faults_and_request_log(either: Sim, http: aiohttp.ClientSession) -> None:
    either.faults.configure(retry_after_s=0.25)
    either.faults.script("429", "500", "503", "422", "404")
    statuses, bodies = [], []
    retry_after = None
    for _ in range(6):
        async with http.get(
            either.url + "/sites", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as r:
            statuses.append(r.status)
            bodies.append(await r.json())
            retry_after = retry_after or r.headers.get("Retry-After")
    assert statuses == [429, 500, 503, 422, 404, 200]
    assert retry_after == "0.25"
    assert all("message" in b for b in bodies[:5])
    if either.state.config.realistic:
        assert all(set(b) == {"message"} for b in bodies[:5])
    log = either.log.matching("/sites")
    assert [r.status for r in log] == statuses
    assert [r.fault for r in log] == ["429", "500", "503", "422", "404", None]
    assert either.faults.pending == 0


async def test_drop_cuts_the_body_and_corrupt_breaks_json(
    either: Sim, http: aiohttp.ClientSession
) -> None:
    params = window(START, START + HOUR, page_size=10000, raw_data="true")
    either.faults.script("drop", "corrupt")
    with pytest.raises(aiohttp.ClientPayloadError):
        await get(http, either, PAGINATED, **params)
    status, body = await get(http, either, PAGINATED, **params)
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    status, body = await get(http, either, PAGINATED, **params)
    assert len(json.loads(body)["point_samples"]) == 10000
    assert [r.fault for r in either.log.matching("paginated")] == ["drop", "corrupt", None]
    assert [r.samples for r in either.log.matching("paginated")][-1] == 10000


async def test_latency_jitter_and_slow_body(either: Sim, http: aiohttp.ClientSession) -> None:
    either.faults.configure(latency_s=0.1, jitter_s=0.05)
    t0 = time.perf_counter()
    await asyncio.gather(*(get(http, either, "/sites") for _ in range(4)))
    assert 0.1 <= time.perf_counter() - t0 < 1.0  # concurrent, not serialised
    either.faults.reset()
    either.faults.configure(slow_body_s=0.3)
    t0 = time.perf_counter()
    status, body = await get(http, either, f"/sites/{SITE}")
    assert status == 200 and json.loads(body)["name"] == SITE
    assert time.perf_counter() - t0 >= 0.3


async def test_a_body_for_a_client_already_gone_is_dropped_not_raised() -> None:
    """A fetch that gave up (its timeout, a cancelled query) leaves the simulator writing
    to a closing connection: a dropped connection, as for a gateway, not a server error
    with a traceback (the chaos test saw one)."""
    from aiohttp import web
    from aiohttp.http_writer import StreamWriter
    from aiohttp.test_utils import make_mocked_request

    from acechart.simulator.app import _stream_faulty
    from acechart.simulator.faults import Fault

    class Closing(asyncio.Transport):
        aborted = False

        def is_closing(self) -> bool:
            return True

        def abort(self) -> None:
            self.aborted = True

    class Protocol:
        def __init__(self, transport: asyncio.Transport) -> None:
            self.transport = transport

    transport = Closing()
    loop = asyncio.get_running_loop()
    cases: list[tuple[float, Fault | None]] = [(0.0, "drop"), (0.01, None), (0.0, "corrupt")]
    for slow_s, fault in cases:
        writer = StreamWriter(Protocol(transport), loop)  # type: ignore[arg-type]
        request = make_mocked_request("GET", "/sites", transport=transport, writer=writer)
        sent = await _stream_faulty(request, web.Response(body=b"x" * 100), fault, slow_s)
        assert isinstance(sent, web.StreamResponse) and transport.aborted
        transport.aborted = False


async def test_random_fault_rates_are_seeded(make_simulator: SimFactory) -> None:
    outcomes = []
    for _ in range(2):
        sim = await make_simulator()
        sim.faults.configure(rate_limit_rate=0.2, error_rate=0.2)
        outcomes.append([sim.faults.decide("/sites") for _ in range(200)])
    assert outcomes[0] == outcomes[1]
    counts = Counter(outcomes[0])
    assert 20 < counts["429"] < 60 and 20 < counts["500"] + counts["503"] < 60


async def test_faults_limited_to_a_path(either: Sim, http: aiohttp.ClientSession) -> None:
    either.faults.configure(path_contains="/timeseries", error_rate=1.0)
    assert (await get(http, either, "/sites"))[0] == 200
    status, _ = await get(http, either, PAGINATED, **window(START, START))
    assert status in (500, 503)


# --- speed ------------------------------------------------------------------------------


def test_page_of_100k_samples_is_fast(either: Sim) -> None:
    """Generating and serialising a 100,000-sample page stays well under 100 ms.

    Measured in CPU time (best of 7), so other processes sharing the machine do
    not make it flaky; `benches/bench_origin.py` reports the wall-clock cost.
    """
    table = either.site
    renderer = either.state.renderers[SITE]
    costs = []
    body = b"{}"
    for i in range(7):
        t0 = time.process_time()
        rows = table.next_rows(
            table.all_points, START + i * HOUR, START + 30 * 24 * HOUR, None, 100_000
        )
        body = page_body(renderer.render(rows), "cursor", True)
        costs.append(time.process_time() - t0)
    assert len(json.loads(body)["point_samples"]) == 100_000
    assert min(costs) < 0.1, costs


# --- the vendor's own client and models -----------------------------------------------------


async def test_vendor_client_and_models_accept_the_simulator(either: Sim) -> None:
    """aceiot-models' APIClient (requests, so in a thread) and pydantic models against us,
    in both modes (naive microsecond times are UTC, as the vendor's client reads them)."""
    import aceiot_models as models  # type: ignore[import-untyped]
    import aceiot_models.api as api  # type: ignore[import-untyped]

    sim = either
    realistic = sim.state.config.realistic
    start, end = START, START + 30 * 60_000
    expected = sim.site.all_rows(sim.site.all_points, start, end)

    def run() -> None:
        client = api.APIClient(base_url=sim.url, api_key=TOKEN, timeout=30)
        sites = client.get_sites()
        models.PaginatedResponse[models.Site].model_validate(sites)
        assert [s["name"] for s in sites["items"]] == [SITE]
        site = models.Site.model_validate(client.get_site(SITE))
        assert site.name == SITE and site.latitude == pytest.approx(40.06, abs=0.01)

        points = api.PaginatedResults(
            client.get_site_configured_points, per_page=100, site_name=SITE
        ).all_items()
        assert [p["name"] for p in points] == list(sim.site.names)
        first_page = client.get_site_configured_points(SITE, page=1, per_page=100)
        models.PaginatedResponse[models.Point].model_validate(first_page)
        parsed = [models.Point.model_validate(p) for p in points]
        assert {p.collect_interval for p in parsed} == {30, 60, 300}

        # Pages of 1000 exceed a collection run, so the vendor's loop does not stall.
        series = client.get_site_timeseries_paginated(
            SITE, format_time(start), format_time(end), page_size=1000, raw_data=True
        )
        samples = [models.PointSample.model_validate(s) for s in series["point_samples"]]
        assert len(samples) == len(expected)
        assert [s.name for s in samples] == [sim.site.names[i] for i in expected.idx.tolist()]
        assert [to_ms(s.time) for s in samples] == expected.t_ms.tolist()
        assert all((s.time.tzinfo is None) == realistic for s in samples)
        if realistic:
            assert [s.time.microsecond % 1000 for s in samples] == expected.sub_us.tolist()
        models.TimeseriesData.model_validate(series)

        one = sim.site.names[5]
        data = client.get_point_timeseries(one, format_time(start), format_time(end))
        assert {s.name for s in models.TimeseriesData.model_validate(data).point_samples} == {one}
        if realistic:
            with pytest.raises(api.APIError) as refused:
                client.get_points_timeseries(
                    list(sim.site.names[:3]), format_time(start), format_time(end)
                )
            assert refused.value.status_code == 400
        else:
            several = client.get_points_timeseries(
                list(sim.site.names[:3]), format_time(start), format_time(end)
            )
            assert {s["name"] for s in several["point_samples"]} == set(sim.site.names[:3])

        bad = api.APIClient(base_url=sim.url, api_key="wrong", timeout=30)
        with pytest.raises(api.APIError) as info:
            bad.get_sites()
        if realistic:  # the vendor's client retries 500s, then gives up without a status
            assert "500 error responses" in str(info.value)
        else:
            assert info.value.status_code == 401

    await asyncio.to_thread(run)


# --- settings -----------------------------------------------------------------------------


def test_simulator_settings_from_env(caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "ACECHART_SIMULATOR_MODE": "idealised",
        "ACECHART_SIMULATOR_SITES": "a_site, b_site",
        "ACECHART_SIMULATOR_TOKENS": "t1=a_site,b_site; t2=*",
        "ACECHART_SIMULATOR_EXACT_HAS_MORE": "false",
        "ACECHART_SIMULATOR_NOW": "2025-01-01T00:00:00Z",
        "ACECHART_SIMULATOR_CADENCE_S": "60",
        "ACECHART_SIMULATOR_VAV_COUNT": "317",
        "ACECHART_SIMULATOR_ERROR_RATE": "0.25",
        "ACECHART_ORIGIN_URL": "http://origin:8081",
    }
    s = SimulatorSettings.from_env(env, seed=7)
    assert (s.mode, s.sites, s.seed, s.cadence_s, s.vav_count) == (
        "idealised", ("a_site", "b_site"), 7, 60, 317,
    )  # fmt: skip
    assert s.tokens == {"t1": {"a_site", "b_site"}, "t2": {"*"}}
    assert s.exact_has_more is False and s.error_rate == 0.25
    config = SimulatorConfig.from_settings(s)
    assert (config.mode, config.now_ms, config.cadence_s) == ("idealised", NOW_MS, 60)
    assert config.faults.error_rate == 0.25 and not config.realistic
    defaults = SimulatorSettings.from_env({})
    assert defaults == SimulatorSettings() and defaults.mode == "realistic"
    assert SimulatorConfig.from_settings(defaults).realistic
    with caplog.at_level(logging.WARNING):
        Settings.from_env(env)  # the service's settings leave the simulator's alone
    assert not caplog.records


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ACECHART_SIMULATOR_MODE": "ideal"}, "ACECHART_SIMULATOR_MODE"),
        ({"ACECHART_SIMULATOR_PORT": "99999"}, "ACECHART_SIMULATOR_PORT"),
        ({"ACECHART_SIMULATOR_DROP_RATE": "1.5"}, "ACECHART_SIMULATOR_DROP_RATE"),
        ({"ACECHART_SIMULATOR_TOKENS": "nosites"}, "ACECHART_SIMULATOR_TOKENS"),
        ({"ACECHART_SIMULATOR_NOW": "soon"}, "ACECHART_SIMULATOR_NOW"),
        ({"ACECHART_SIMULATOR_SITES": "a b"}, "ACECHART_SIMULATOR_SITES"),
        ({"ACECHART_SIMULATOR_CADENCE_S": "0"}, "ACECHART_SIMULATOR_CADENCE_S"),
        ({"ACECHART_SIMULATOR_VAV_COUNT": "many"}, "ACECHART_SIMULATOR_VAV_COUNT"),
    ],
)
def test_invalid_simulator_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        SimulatorSettings.from_env(env)
    assert named in str(info.value) and info.value.extra.get("setting", named) == named


def test_unknown_simulator_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="simulator_seed"):
        SimulatorSettings.from_env({}, simulator_seed=3)
    with pytest.raises(ValueError, match="mode"):
        SimulatorConfig(mode="perfect")


# --- the command line ---------------------------------------------------------------------


def test_acechart_simulate_serves_out_of_the_box(tmp_path: Path) -> None:
    """`python -m acechart simulate --port N` answers demo-token with no configuration."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACECHART_")}
    cmd = [sys.executable, "-m", "acechart", "simulate", "--port", str(port)]
    log = tmp_path / "simulate.log"
    with log.open("wb") as err, subprocess.Popen(cmd, env=env, stderr=err, cwd=tmp_path) as proc:
        try:
            deadline = time.monotonic() + 20
            body = None
            while body is None and time.monotonic() < deadline:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/sites/{SITE}",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=2) as resp:
                        body = json.loads(resp.read())
                except OSError:
                    assert proc.poll() is None, log.read_text()
                    time.sleep(0.1)
            assert body is not None and body["name"] == SITE
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert "ACE simulator on" in log.read_text() and "realistic API" in log.read_text()


def test_invalid_settings_are_a_clear_error(tmp_path: Path) -> None:
    env = dict(os.environ, ACECHART_SIMULATOR_PORT="99999")
    cmd = [sys.executable, "-m", "acechart", "simulate"]
    done = subprocess.run(cmd, env=env, capture_output=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert b"ACECHART_SIMULATOR_PORT" in done.stderr
