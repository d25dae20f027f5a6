"""`/api/sites/{site}/timeseries/paginated`: the ACE body from the caches, over the
realistic simulator (the real API: no point filter, shared timestamps, naive microsecond
times). A walk must give exactly the samples the engine (and the origin) has, in (time,
point name) order, and its cursor must never stall, skip, or fit another query."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest

from acechart.query import Query
from acechart.server.keys import PAGES, RUNTIME
from acechart.times import format_time, parse_iso_ms
from tests.conftest import NOW_MS, SITE, TOKEN, Sim, SimFactory
from tests.server_helpers import DAY, HOUR, ClientFactory, Service, start_service

PATH = f"/api/sites/{SITE}/timeseries/paginated"
START = NOW_MS - 2 * DAY
Row = tuple[str, int, float | None]


@pytest.fixture
async def real(make_simulator: SimFactory) -> Sim:
    return await make_simulator()


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, real: Sim, tmp_path: Path) -> Service:
    return await start_service(aiohttp_client, real, tmp_path, rate_limit_per_minute=0)


def numeric_points(sim: Sim, n: int) -> list[str]:
    """Points whose every value is a number (temperatures), by catalogue order."""
    return [name for name in sim.site.names if name.endswith(("Temp", "DaTemp"))][:n]


def rows_of(page: dict[str, Any]) -> list[Row]:
    return [
        (
            s["name"],
            parse_iso_ms(s["time"]),
            None if s["value"] is None else float(s["value"]),
        )
        for s in page["point_samples"]
    ]


async def walk(
    svc: Service, params: dict[str, str], *, msgpack_accept: bool = False
) -> tuple[list[Row], list[dict[str, Any]]]:
    """Every row of a walk (following next_cursor until has_more is false) and its pages."""
    headers = {"Accept": "application/x-msgpack"} if msgpack_accept else {}
    rows: list[Row] = []
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(10_000):
        sent = dict(params, **({"cursor": cursor} if cursor else {}))
        resp = await svc.get(PATH, sent, headers=headers)
        assert resp.status == 200, await resp.text()
        raw = await resp.read()
        if msgpack_accept:
            assert resp.headers["Content-Type"] == "application/x-msgpack"
            page = msgpack.unpackb(raw)
        else:
            assert resp.headers["Content-Type"].startswith("application/json")
            page = json.loads(raw)
        assert list(page) == ["point_samples", "next_cursor", "has_more"]
        assert int(resp.headers["X-Data-Samples"]) == len(page["point_samples"])
        pages.append(page)
        rows += rows_of(page)
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return rows, pages
        assert page["next_cursor"] and page["next_cursor"] != cursor  # never stalls
        cursor = page["next_cursor"]
    raise AssertionError("the walk did not end")


async def timeseries_rows(
    svc: Service, points: list[str], start: int, end_excl: int, interval: str = "raw"
) -> list[Row]:
    resp = await svc.get(
        "/api/timeseries",
        {
            "site": SITE,
            "points": ",".join(points),
            "start": format_time(start),
            "end": format_time(end_excl),
            "interval": interval,
        },
    )
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    rows = [(s["name"], t, v) for s in doc["series"] for t, v in s["data"]]
    return sorted(rows, key=lambda r: (r[1], r[0]))


def params(start: int, end: int, **extra: str) -> dict[str, str]:
    return {
        "start_time": format_time(start),
        "end_time": format_time(end),
        "raw_data": "true",
        **extra,
    }


async def test_a_walk_gives_the_engines_samples_in_time_then_name_order(svc: Service) -> None:
    points = numeric_points(svc.sim, 4)
    end = START + 2 * HOUR
    rows, pages = await walk(svc, params(START, end, page_size="37", point_names=",".join(points)))
    assert len(pages) > 3
    assert all(len(p["point_samples"]) == 37 for p in pages[:-1])
    assert rows == sorted(rows, key=lambda r: (r[1], r[0]))
    assert len(set(rows)) == len(rows)  # nothing twice
    expected = await timeseries_rows(svc, points, START, end + 1)  # end_time is included
    assert rows == expected
    assert {r[0] for r in rows} == set(points)


async def test_the_samples_are_the_origins_for_those_points(svc: Service) -> None:
    points = numeric_points(svc.sim, 3)
    end = START + HOUR
    rows, _ = await walk(svc, params(START, end, page_size="1000", point_names=",".join(points)))
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            svc.sim.url + f"/sites/{SITE}/timeseries/paginated",
            params={
                "start_time": format_time(START)[:-1],
                "end_time": format_time(end)[:-1],
                "page_size": "500000",
                "raw_data": "true",
            },
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as resp,
    ):
        origin = await resp.json()
    assert not origin["has_more"]
    theirs = sorted(
        (s["name"], parse_iso_ms(s["time"]), float(s["value"]))
        for s in origin["point_samples"]
        if s["name"] in points
    )
    assert sorted(rows) == theirs


async def test_without_a_filter_the_whole_catalogue_is_walked(svc: Service) -> None:
    end = START + 10 * 60_000
    rows, pages = await walk(svc, params(START, end, page_size="500"))
    engine = svc.app[RUNTIME].engine
    names = sorted(svc.sim.site.names)
    result = await engine.query(Query(SITE, tuple(names), START, end + 1), token=TOKEN)
    expected = sorted(
        (
            (s.name, int(t), None if math.isnan(v) else float(v))
            for s in result.series
            for t, v in zip(s.ts, s.values, strict=True)
        ),
        key=lambda r: (r[1], r[0]),
    )
    assert len(pages) > 2
    assert rows == expected


async def test_small_pages_inside_one_timestamp_never_stall(svc: Service) -> None:
    end = START + 2 * 60_000
    rows, pages = await walk(svc, params(START, end, page_size="3"))
    assert len(pages) > 50
    assert len(set(rows)) == len(rows)
    big, _ = await walk(svc, params(START, end, page_size="100000"))
    assert rows == big


async def test_windows_smaller_than_the_walk_and_evicted_windows_change_nothing(
    aiohttp_client: ClientFactory, real: Sim, tmp_path: Path
) -> None:
    points = numeric_points(real, 3)
    q = params(START, START + 3 * HOUR, page_size="11", point_names=",".join(points))
    reference = await start_service(aiohttp_client, real, tmp_path / "a")
    expected, _ = await walk(reference, q)
    tiny = await start_service(aiohttp_client, real, tmp_path / "b", compat_window_samples=25)
    assert (await walk(tiny, q))[0] == expected
    none = await start_service(aiohttp_client, real, tmp_path / "c", compat_page_cache_bytes=0)
    assert (await walk(none, q))[0] == expected
    assert len(none.app[PAGES]) == 0


async def test_later_pages_are_cut_from_the_window(svc: Service) -> None:
    points = numeric_points(svc.sim, 2)
    q = params(START, START + HOUR, page_size="10", point_names=",".join(points))
    first = await svc.get(PATH, q)
    assert first.headers["X-Cache-Source"] == "ORIGIN"
    cursor = (await first.json())["next_cursor"]
    calls: list[Query] = []
    engine = svc.app[RUNTIME].engine
    original = engine.query

    async def counting(query: Query, **kw: Any) -> Any:
        calls.append(query)
        return await original(query, **kw)

    engine.query = counting  # type: ignore[method-assign]
    second = await svc.get(PATH, dict(q, cursor=cursor))
    assert second.status == 200
    assert (second.headers["X-Cache-Status"], second.headers["X-Cache-Source"]) == ("HIT", "EDGE")
    assert calls == []


async def test_messagepack_is_the_same_document(svc: Service) -> None:
    points = numeric_points(svc.sim, 2)
    q = params(START, START + HOUR, page_size="25", point_names=",".join(points))
    as_json, json_pages = await walk(svc, q)
    as_msgpack, msgpack_pages = await walk(svc, q, msgpack_accept=True)
    assert as_msgpack == as_json
    assert msgpack_pages == json_pages


async def test_values_are_parsefloat_text_and_times_iso_utc(svc: Service) -> None:
    points = numeric_points(svc.sim, 2)
    resp = await svc.get(
        PATH, params(START, START + HOUR, page_size="20", point_names=",".join(points))
    )
    for sample in (await resp.json())["point_samples"]:
        assert isinstance(sample["value"], str)
        assert repr(float(sample["value"])) == repr(float(sample["value"]))
        assert sample["time"].endswith("Z") and "T" in sample["time"]


async def test_without_raw_data_five_minute_bucket_averages(svc: Service) -> None:
    points = numeric_points(svc.sim, 3)
    end = START + 2 * HOUR
    q = {
        "start_time": format_time(START),
        "end_time": format_time(end - 1),
        "page_size": "10",
        "point_names": ",".join(points),
    }
    rows, _ = await walk(svc, q)
    expected = await timeseries_rows(svc, points, START, end, interval="5min")
    assert rows == [r for r in expected if r[2] is not None]
    assert {t % 300_000 for _, t, _ in rows} == {0}
    assert len(rows) > 2 * 24  # a few buckets of a gap in the data are left out


async def test_a_cursor_of_another_query_or_garbage_is_400(svc: Service) -> None:
    points = numeric_points(svc.sim, 2)
    q = params(START, START + HOUR, page_size="10", point_names=",".join(points))
    cursor = (await (await svc.get(PATH, q)).json())["next_cursor"]
    for other in (
        dict(q, end_time=format_time(START + 2 * HOUR)),
        dict(q, point_names=points[0]),
        dict(q, raw_data="false"),
    ):
        resp = await svc.get(PATH, dict(other, cursor=cursor))
        assert resp.status == 400
        body = await resp.json()
        assert body["parameter"] == "cursor" and "another query" in body["message"]
    origin_style = base64.b64encode(b'{"offset": 3, "timestamp": "2024-12-30T00:00:00"}')
    for bad in ("not-a-cursor", origin_style.decode(), "e30"):
        resp = await svc.get(PATH, dict(q, cursor=bad))
        assert resp.status == 400
        assert (await resp.json())["parameter"] == "cursor"


async def test_unknown_points_are_a_404_naming_them(svc: Service) -> None:
    known = numeric_points(svc.sim, 1)[0]
    resp = await svc.get(
        PATH, params(START, START + HOUR, point_names=f"{known},nope/a.b,nope/c.d")
    )
    assert resp.status == 404
    body = await resp.json()
    assert body["error"] == "not_found"
    assert body["unknownPoints"] == ["nope/a.b", "nope/c.d"]


@pytest.mark.parametrize(
    ("changes", "parameter"),
    [
        ({"start_time": None}, "start_time"),
        ({"end_time": None}, "end_time"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"end_time": format_time(START - HOUR)}, "end_time"),
        ({"end_time": format_time(START + 800 * DAY)}, "end_time"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "500001"}, "page_size"),
        ({"raw_data": "maybe"}, "raw_data"),
    ],
)
async def test_bad_parameters_are_400_naming_them(
    svc: Service, changes: dict[str, str | None], parameter: str
) -> None:
    q: dict[str, str] = {
        k: v for k, v in {**params(START, START + HOUR), **changes}.items() if v is not None
    }
    resp = await svc.get(PATH, q)
    assert resp.status == 400
    assert (await resp.json())["parameter"] == parameter


async def test_epoch_milliseconds_work_too(svc: Service) -> None:
    points = numeric_points(svc.sim, 2)
    iso = await svc.get(
        PATH, params(START, START + HOUR, page_size="50", point_names=",".join(points))
    )
    ms = await svc.get(
        PATH,
        {
            "start_time": str(START),
            "end_time": str(START + HOUR),
            "raw_data": "true",
            "page_size": "50",
            "point_names": ",".join(points),
        },
    )
    assert rows_of(await ms.json()) == rows_of(await iso.json())


async def test_a_walk_needing_too_much_origin_data_is_413(
    aiohttp_client: ClientFactory, real: Sim, tmp_path: Path
) -> None:
    svc = await start_service(
        aiohttp_client,
        real,
        tmp_path,
        small_max_samples=10,
        origin_estimate_samples_per_s=1_000,
        origin_estimate_round_s=0.01,
        request_budget_s=1.0,
    )
    resp = await svc.get(PATH, params(START - 5 * DAY, START, page_size="1000"))
    assert resp.status == 413
    body = await resp.json()
    assert body["error"] == "request_too_large"
    assert body["estimatedSamples"] >= 1000 and body["estimatedSeconds"] > 1.0
    assert any("at a time: start_time=" in s for s in body["suggestions"])
    suggested = body["suggestedRange"]
    assert suggested["end"] == format_time(START)
    fits = await svc.get(PATH, params(parse_iso_ms(suggested["start"]), START, page_size="1000"))
    assert fits.status == 200


async def test_head_and_access_checks(svc: Service) -> None:
    q = params(START, START + HOUR, point_names=numeric_points(svc.sim, 1)[0])
    head = await svc.client.head(PATH, params=q, headers={"X-ACE-Token": TOKEN})
    assert head.status == 200 and await head.read() == b""
    assert (await svc.get(PATH, q, token=None)).status == 401
    assert (await svc.get(PATH, q, token="nope")).status == 401


async def test_an_empty_range_is_an_empty_last_page(svc: Service) -> None:
    q = params(NOW_MS + HOUR, NOW_MS + 2 * HOUR, point_names=numeric_points(svc.sim, 1)[0])
    resp = await svc.get(PATH, q)
    assert resp.status == 200
    assert await resp.json() == {"point_samples": [], "next_cursor": None, "has_more": False}


async def test_a_walk_counts_once_against_the_rate_limit(
    aiohttp_client: ClientFactory, real: Sim, tmp_path: Path
) -> None:
    svc = await start_service(aiohttp_client, real, tmp_path, rate_limit_per_minute=2)
    points = numeric_points(real, 2)
    q = params(START, START + HOUR, page_size="5", point_names=",".join(points))
    _, pages = await walk(svc, q)
    assert len(pages) > 5
    assert (await svc.get(PATH, q)).status == 200  # the second walk
    limited = await svc.get(PATH, q)
    assert limited.status == 429
    assert "Retry-After" in limited.headers
