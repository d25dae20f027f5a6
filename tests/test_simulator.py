"""The ACE simulator: API shapes, pagination, data, auth, faults, speed, and the vendor's client.

Everything goes over real HTTP to a simulator on a local port. Pages are read
with `json.loads` here on purpose: it is the independent reference for the
simulator's byte-level page assembly.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
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

from acechart.settings import VALID_PAGE_SIZES
from acechart.simulator.cursor import Cursor, query_fingerprint
from acechart.simulator.datagen import BUCKET_MS, Rows, SiteTable
from acechart.simulator.pagefmt import PageRenderer, page_body
from acechart.times import format_time, parse_iso_ms
from tests.conftest import NOW_MS, SITE, TOKEN, Sim, SimFactory

START = parse_iso_ms("2024-03-04T00:00:00Z")  # a Monday
HOUR = 3_600_000
PAGINATED = f"/sites/{SITE}/timeseries/paginated"


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
    """Every page of one paginated query, as parsed JSON documents."""
    pages = []
    cursor = None
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
        assert cursor


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
                "time": format_time(int(rows.t_ms[i])),
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


# --- catalogue and metadata ----------------------------------------------------------


async def test_catalogue_is_a_realistic_site(sim: Sim) -> None:
    table = sim.site
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


async def test_sites_and_site(sim: Sim, http: aiohttp.ClientSession) -> None:
    status, body = await get(http, sim, "/sites")
    assert status == 200
    listing = json.loads(body)
    assert {k: listing[k] for k in ("page", "pages", "total")} == {
        "page": 1,
        "pages": 1,
        "total": 1,
    }
    assert listing["items"][0]["name"] == SITE
    status, body = await get(http, sim, f"/sites/{SITE}")
    assert status == 200 and json.loads(body) == listing["items"][0]
    status, body = await get(http, sim, "/sites/nowhere")
    assert status == 404 and json.loads(body)["code"] == 404


async def test_configured_points_pages(sim: Sim, http: aiohttp.ClientSession) -> None:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        status, body = await get(
            http, sim, f"/sites/{SITE}/configured_points", page=page, per_page=100
        )
        assert status == 200
        doc = json.loads(body)
        assert set(doc) == {"page", "pages", "per_page", "total", "items"}
        assert doc["page"] == page and doc["per_page"] == 100
        items += doc["items"]
        if page >= doc["pages"]:
            break
        page += 1
    assert doc["total"] == len(items) == len(sim.site.names)
    assert [p["name"] for p in items] == list(sim.site.names)
    fields = {
        "id", "name", "client", "site", "kv_tags", "bacnet_data", "marker_tags",
        "collect_config", "point_type", "collect_enabled", "collect_interval", "created",
        "updated",
    }  # fmt: skip
    assert all(fields <= set(p) for p in items)
    assert {p["collect_interval"] for p in items} == {30, 60, 300}
    assert all(all(isinstance(v, str) for v in p["kv_tags"].values()) for p in items)
    status, _ = await get(http, sim, f"/sites/{SITE}/configured_points", per_page=101)
    assert status == 422


# --- auth --------------------------------------------------------------------------------


async def test_auth_without_token_settings_demo_token_reads_all(
    sim: Sim, http: aiohttp.ClientSession
) -> None:
    params = {"start_time": "2024-03-04T00:00:00Z", "end_time": "2024-03-04T00:01:00Z"}
    assert (await get(http, sim, PAGINATED, token=None, **params))[0] == 401
    assert (await get(http, sim, PAGINATED, token="wrong", **params))[0] == 401
    assert (await get(http, sim, PAGINATED, **params))[0] == 200
    async with http.get(sim.url + "/sites", headers={"Authorization": "Basic abc"}) as resp:
        assert resp.status == 401


async def test_auth_with_configured_tokens(
    make_simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    sim = await make_simulator(
        sites=(SITE, "ses_lincoln"),
        vav_count=2,
        tokens={"alpha": frozenset({SITE}), "root": frozenset({"*"})},
    )
    params = {"start_time": "2024-03-04T00:00:00Z", "end_time": "2024-03-04T00:01:00Z"}
    other = "/sites/ses_lincoln/timeseries/paginated"
    assert (await get(http, sim, PAGINATED, token=TOKEN, **params))[0] == 401
    assert (await get(http, sim, PAGINATED, token="alpha", **params))[0] == 200
    status, body = await get(http, sim, other, token="alpha", **params)
    assert status == 403 and "ses_lincoln" in json.loads(body)["message"]
    assert (await get(http, sim, other, token="root", **params))[0] == 200
    status, body = await get(http, sim, "/sites", token="alpha")
    assert [s["name"] for s in json.loads(body)["items"]] == [SITE]
    status, body = await get(http, sim, "/sites", token="root")
    assert [s["name"] for s in json.loads(body)["items"]] == [SITE, "ses_lincoln"]


# --- paginated timeseries ----------------------------------------------------------------


async def test_page_shape_and_order(sim: Sim, http: aiohttp.ClientSession) -> None:
    status, body = await get(
        http, sim, PAGINATED, start_time=format_time(START),
        end_time=format_time(START + HOUR), page_size=1000, raw_data="true",
    )  # fmt: skip
    assert status == 200
    page = json.loads(body)
    assert list(page) == ["point_samples", "next_cursor", "has_more"]
    assert page["has_more"] is True and isinstance(page["next_cursor"], str)
    samples = page["point_samples"]
    assert len(samples) == 1000
    assert all(list(s) == ["name", "value", "time"] for s in samples)
    assert all(s["time"].endswith("Z") and len(s["time"]) == 20 for s in samples)
    index = sim.site.index
    keys = [(parse_iso_ms(s["time"]), index[s["name"]]) for s in samples]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert Counter(type(s["value"]).__name__ for s in samples)["str"] > 900


@pytest.mark.parametrize("page_size", [1000, 10000, 100000])
async def test_every_sample_exactly_once_across_pages(
    sim: Sim, http: aiohttp.ClientSession, page_size: int
) -> None:
    start, end = START + 5 * 60_000, START + 2 * HOUR
    pages = await page_through(
        http, sim, start_time=format_time(start), end_time=format_time(end),
        page_size=page_size, raw_data="true",
    )  # fmt: skip
    got = [s for p in pages for s in p["point_samples"]]
    expected = sim.site.all_rows(sim.site.all_points, start, end)
    assert len(pages) == max(1, math.ceil(len(expected) / page_size))
    assert got == reference_samples(sim.site, expected)
    times = {s["time"] for s in got}
    assert format_time(start) in times and format_time(end) in times  # both ends included


async def test_tiny_pages_with_point_filter(sim: Sim, http: aiohttp.ClientSession) -> None:
    names = [sim.site.names[i] for i in (3, 40, 200)]
    start, end = START, START + 10 * 60_000
    pages = await page_through(
        http, sim, start_time=format_time(start), end_time=format_time(end),
        page_size=3, raw_data="true", point_names=",".join(names),
    )  # fmt: skip
    got = [s for p in pages for s in p["point_samples"]]
    assert {s["name"] for s in got} == set(names)
    assert all(len(p["point_samples"]) == 3 for p in pages[:-1])
    expected = sim.site.all_rows(sim.site.select(names), start, end)
    assert got == reference_samples(sim.site, expected)


async def test_unknown_point_names_are_ignored(sim: Sim, http: aiohttp.ClientSession) -> None:
    status, body = await get(
        http, sim, PAGINATED, start_time=format_time(START),
        end_time=format_time(START + HOUR), page_size=100, raw_data="true",
        point_names="no/such/point",
    )  # fmt: skip
    assert status == 200
    assert json.loads(body) == {"point_samples": [], "next_cursor": None, "has_more": False}


async def test_same_request_same_bytes(sim: Sim, http: aiohttp.ClientSession) -> None:
    params: dict[str, Any] = {
        "start_time": format_time(START),
        "end_time": format_time(START + HOUR),
        "page_size": 5000,
        "raw_data": "true",
    }
    first = await get(http, sim, PAGINATED, **params)
    second = await get(http, sim, PAGINATED, **params)
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
async def test_invalid_parameters_are_422(
    sim: Sim, http: aiohttp.ClientSession, params: dict[str, Any], field: str
) -> None:
    query: dict[str, Any] = {
        "start_time": format_time(START),
        "end_time": format_time(START + HOUR),
        "page_size": 100,
    }
    query.update(params)
    query = {k: v for k, v in query.items() if v is not None}
    status, body = await get(http, sim, PAGINATED, **query)
    assert status == 422
    assert field in json.loads(body)["errors"]["query"]


async def test_all_valid_page_sizes_accepted(sim: Sim, http: aiohttp.ClientSession) -> None:
    for size in VALID_PAGE_SIZES:
        status, body = await get(
            http, sim, PAGINATED, start_time=format_time(START),
            end_time=format_time(START + 60_000), page_size=size, raw_data="true",
        )  # fmt: skip
        assert status == 200
        assert len(json.loads(body)["point_samples"]) <= size


async def test_cursor_of_another_query_is_rejected(sim: Sim, http: aiohttp.ClientSession) -> None:
    fp = query_fingerprint(SITE, START, START + HOUR, True, None)
    cursor = Cursor(fp, START, 0, 10).encode()
    ok = await get(
        http, sim, PAGINATED, start_time=format_time(START),
        end_time=format_time(START + HOUR), page_size=10, raw_data="true", cursor=cursor,
    )  # fmt: skip
    assert ok[0] == 200
    other = await get(
        http, sim, PAGINATED, start_time=format_time(START),
        end_time=format_time(START + 2 * HOUR), page_size=10, raw_data="true", cursor=cursor,
    )  # fmt: skip
    assert other[0] == 422


async def test_no_data_after_now(sim: Sim, http: aiohttp.ClientSession) -> None:
    pages = await page_through(
        http, sim, start_time=format_time(NOW_MS - 10 * 60_000),
        end_time=format_time(NOW_MS + HOUR), page_size=100000, raw_data="true",
    )  # fmt: skip
    times = [parse_iso_ms(s["time"]) for p in pages for s in p["point_samples"]]
    assert times and max(times) <= NOW_MS


async def test_page_limit_and_lazy_has_more(
    make_simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    sim = await make_simulator(max_page_size=50, exact_has_more=False)
    name = sim.site.names[0]
    start, end = START, START + 2 * HOUR
    expected = sim.site.all_rows(sim.site.select([name]), start, end)
    pages = await page_through(
        http, sim, start_time=format_time(start), end_time=format_time(end),
        page_size=1000, raw_data="true", point_names=name,
    )  # fmt: skip
    sizes = [len(p["point_samples"]) for p in pages]
    assert all(s == 50 for s in sizes[:-1]) and sizes[-1] < 50
    assert sum(sizes) == len(expected)
    if len(expected) % 50 == 0:
        assert sizes[-1] == 0  # the lazy API's empty last page


async def test_buckets_are_five_minute_means(sim: Sim, http: aiohttp.ClientSession) -> None:
    names = [p.name for p in sim.site.site.points if p.model.kind == "analog"][:4]
    names.append(next(p.name for p in sim.site.site.points if p.model.style == "words"))
    start, end = START + 60_000, START + HOUR
    pages = await page_through(
        http, sim, start_time=format_time(start), end_time=format_time(end),
        page_size=10, raw_data="false", point_names=",".join(names),
    )  # fmt: skip
    got = [s for p in pages for s in p["point_samples"]]
    buckets: dict[tuple[str, int], list[float]] = {}
    for name in names:
        rows = sim.data.expected(SITE, name, start, end)
        for t, v in zip(rows.t_ms.tolist(), rows.value.tolist(), strict=True):
            if not math.isnan(v):
                buckets.setdefault((name, t - t % BUCKET_MS), []).append(v)
    assert len(got) == len(buckets)
    keys = [(parse_iso_ms(s["time"]), sim.site.index[s["name"]]) for s in got]
    assert keys == sorted(keys)
    for s in got:
        t = parse_iso_ms(s["time"])
        assert t % BUCKET_MS == 0
        values = buckets[(s["name"], t)]
        assert float(s["value"]) == pytest.approx(sum(values) / len(values), abs=6e-4)


# --- data realism -------------------------------------------------------------------------


async def test_values_gaps_and_cadence_over_a_month(sim: Sim) -> None:
    table = sim.site
    start, end = START, START + 30 * 24 * HOUR
    gaps = 0
    for p in table.site.points[::7]:
        rows = sim.data.expected(SITE, p.name, start, end)
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


async def test_value_styles_cover_strings_numbers_words_and_junk(sim: Sim) -> None:
    table = sim.site
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


def test_renderer_matches_json_reference_on_random_rows(sim: Sim) -> None:
    table = sim.site
    rng = np.random.default_rng(7)
    n = 3000
    word = rng.integers(-1, len(table.vocab), n).astype(np.int16)
    word[rng.random(n) < 0.6] = -1
    decimals = rng.integers(0, 5, n).astype(np.int8)
    vint = rng.integers(-(10**12), 10**12, n) // (10 ** rng.integers(0, 12, n))
    rows = Rows(
        t_ms=np.sort(rng.integers(-(10**11), 4 * 10**12, n)) // 1000 * 1000,
        idx=rng.integers(0, len(table.names), n).astype(np.int32),
        vint=vint,
        decimals=decimals,
        word=word,
        quoted=rng.random(n) < 0.7,
        value=np.zeros(n),
    )
    rows = Rows(
        rows.t_ms, rows.idx, rows.vint, rows.decimals, rows.word,
        np.where(word >= 0, table.vocab_quoted[np.maximum(word, 0)], rows.quoted), rows.value,
    )  # fmt: skip
    body = b"[" + PageRenderer(table).render(rows) + b"]"
    assert json.loads(body) == reference_samples(table, rows)


# --- the other timeseries endpoints -----------------------------------------------------


async def test_site_timeseries_unpaginated(sim: Sim, http: aiohttp.ClientSession) -> None:
    start, end = START, START + 15 * 60_000
    status, body = await get(
        http, sim, f"/sites/{SITE}/timeseries",
        start_time=format_time(start), end_time=format_time(end),
    )  # fmt: skip
    assert status == 200
    expected = sim.site.all_rows(sim.site.all_points, start, end)
    assert json.loads(body) == {"point_samples": reference_samples(sim.site, expected)}


async def test_point_timeseries_with_slashes_in_the_name(
    sim: Sim, http: aiohttp.ClientSession
) -> None:
    name = sim.site.names[10]
    start, end = START, START + HOUR
    expected = reference_samples(sim.site, sim.data.expected(SITE, name, start, end))
    times = {"start_time": format_time(start), "end_time": format_time(end)}
    for path_name in (quote(name, safe=""), name):
        status, body = await get(http, sim, f"/points/{path_name}/timeseries", **times)
        assert status == 200
        assert json.loads(body)["point_samples"] == expected
    status, _ = await get(http, sim, "/points/no%2Fsuch/timeseries", **times)
    assert status == 404


async def test_post_points_get_timeseries(sim: Sim, http: aiohttp.ClientSession) -> None:
    names = [sim.site.names[i] for i in (0, 50, 100)]
    start, end = START, START + 20 * 60_000
    expected = reference_samples(sim.site, sim.site.all_rows(sim.site.select(names), start, end))
    params = {"start_time": format_time(start), "end_time": format_time(end)}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for points in (names, [{"name": n} for n in names]):
        async with http.post(
            sim.url + "/points/get_timeseries", params=params, json={"points": points},
            headers=headers,
        ) as resp:  # fmt: skip
            assert resp.status == 200
            assert (await resp.json())["point_samples"] == expected
    async with http.post(
        sim.url + "/points/get_timeseries", params=params, json={"points": ["nope/x"]},
        headers=headers,
    ) as resp:  # fmt: skip
        assert resp.status == 404


# --- faults and the request log ----------------------------------------------------------


async def test_scripted_faults_and_request_log(sim: Sim, http: aiohttp.ClientSession) -> None:
    sim.faults.configure(retry_after_s=0.25)
    sim.faults.script("429", "500", "503", "404")
    statuses = []
    retry_after = None
    for _ in range(5):
        async with http.get(sim.url + "/sites", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            statuses.append(r.status)
            retry_after = retry_after or r.headers.get("Retry-After")
    assert statuses == [429, 500, 503, 404, 200]
    assert retry_after == "0.25"
    log = sim.log.matching("/sites")
    assert [r.status for r in log] == statuses
    assert [r.fault for r in log] == ["429", "500", "503", "404", None]
    assert sim.faults.pending == 0


async def test_drop_cuts_the_body_and_corrupt_breaks_json(
    sim: Sim, http: aiohttp.ClientSession
) -> None:
    params: dict[str, Any] = {
        "start_time": format_time(START),
        "end_time": format_time(START + HOUR),
        "page_size": 10000,
        "raw_data": "true",
    }
    sim.faults.script("drop", "corrupt")
    with pytest.raises(aiohttp.ClientPayloadError):
        await get(http, sim, PAGINATED, **params)
    status, body = await get(http, sim, PAGINATED, **params)
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    status, body = await get(http, sim, PAGINATED, **params)
    assert len(json.loads(body)["point_samples"]) == 10000
    assert [r.fault for r in sim.log.matching("paginated")] == ["drop", "corrupt", None]


async def test_latency_jitter_and_slow_body(sim: Sim, http: aiohttp.ClientSession) -> None:
    sim.faults.configure(latency_s=0.1, jitter_s=0.05)
    t0 = time.perf_counter()
    await asyncio.gather(*(get(http, sim, "/sites") for _ in range(4)))
    assert 0.1 <= time.perf_counter() - t0 < 1.0  # concurrent, not serialised
    sim.faults.reset()
    sim.faults.configure(slow_body_s=0.3)
    t0 = time.perf_counter()
    status, body = await get(http, sim, f"/sites/{SITE}")
    assert status == 200 and json.loads(body)["name"] == SITE
    assert time.perf_counter() - t0 >= 0.3


async def test_random_fault_rates_are_seeded(make_simulator: SimFactory) -> None:
    outcomes = []
    for _ in range(2):
        sim = await make_simulator()
        sim.faults.configure(rate_limit_rate=0.2, error_rate=0.2)
        outcomes.append([sim.faults.decide("/sites") for _ in range(200)])
    assert outcomes[0] == outcomes[1]
    counts = Counter(outcomes[0])
    assert 20 < counts["429"] < 60 and 20 < counts["500"] + counts["503"] < 60


async def test_faults_limited_to_a_path(sim: Sim, http: aiohttp.ClientSession) -> None:
    sim.faults.configure(path_contains="/timeseries", error_rate=1.0)
    assert (await get(http, sim, "/sites"))[0] == 200
    status, _ = await get(
        http, sim, PAGINATED, start_time=format_time(START), end_time=format_time(START)
    )
    assert status in (500, 503)


# --- speed ------------------------------------------------------------------------------


def test_page_of_100k_samples_is_fast(sim: Sim) -> None:
    """Generating and serialising a 100,000-sample page stays well under 100 ms.

    Measured in CPU time (best of 7), so other processes sharing the machine do
    not make it flaky; `benches/bench_origin.py` reports the wall-clock cost.
    """
    table = sim.site
    renderer = sim.state.renderers[SITE]
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


async def test_vendor_client_and_models_accept_the_simulator(sim: Sim) -> None:
    """aceiot-models' APIClient (requests, so in a thread) and pydantic models against us."""
    import aceiot_models as models  # type: ignore[import-untyped]
    import aceiot_models.api as api  # type: ignore[import-untyped]

    start, end = START, START + 30 * 60_000
    expected = sim.site.all_rows(sim.site.all_points, start, end)

    def run() -> None:
        client = api.APIClient(base_url=sim.url, api_key=TOKEN, timeout=30)
        sites = client.get_sites()
        models.PaginatedResponse[models.Site].model_validate(sites)
        assert [s["name"] for s in sites["items"]] == [SITE]
        site = models.Site.model_validate(client.get_site(SITE))
        assert site.name == SITE

        points = api.PaginatedResults(
            client.get_site_configured_points, per_page=100, site_name=SITE
        ).all_items()
        assert [p["name"] for p in points] == list(sim.site.names)
        first_page = client.get_site_configured_points(SITE, page=1, per_page=100)
        models.PaginatedResponse[models.Point].model_validate(first_page)
        parsed = [models.Point.model_validate(p) for p in points]
        assert {p.collect_interval for p in parsed} == {30, 60, 300}

        series = client.get_site_timeseries_paginated(
            SITE, format_time(start), format_time(end), page_size=1000, raw_data=True
        )
        samples = [models.PointSample.model_validate(s) for s in series["point_samples"]]
        assert len(samples) == len(expected)
        assert [s.name for s in samples] == [sim.site.names[i] for i in expected.idx.tolist()]
        assert [int(s.time.timestamp() * 1000) for s in samples] == expected.t_ms.tolist()

        one = sim.site.names[5]
        data = client.get_point_timeseries(one, format_time(start), format_time(end))
        models.TimeseriesData.model_validate(data)
        several = client.get_points_timeseries(
            list(sim.site.names[:3]), format_time(start), format_time(end)
        )
        assert {s["name"] for s in several["point_samples"]} == set(sim.site.names[:3])

        bad = api.APIClient(base_url=sim.url, api_key="wrong", timeout=30)
        with pytest.raises(api.APIError) as info:
            bad.get_sites()
        assert info.value.status_code == 401

    await asyncio.to_thread(run)


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
    assert "ACE simulator on" in log.read_text()


def test_invalid_settings_are_a_clear_error(tmp_path: Path) -> None:
    env = dict(os.environ, ACECHART_SIMULATOR_PORT="99999")
    cmd = [sys.executable, "-m", "acechart", "simulate"]
    done = subprocess.run(cmd, env=env, capture_output=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert b"ACECHART_SIMULATOR_PORT" in done.stderr
