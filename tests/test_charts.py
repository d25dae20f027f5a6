"""Saved charts (`/api/charts`) over a real service: CRUD, access rules, objects, thumbnails.

The simulator checks tokens per site like the ACE API: `tok-a` and `tok-a2` read
`ses_falls_city`, `tok-b` only `other_site`. A chart belongs to the token that saved it;
a public one is readable by tokens the origin confirms for its site, and by no other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from acechart._core import render_thumbnail
from acechart.server.charts import MAX_CONFIG_BYTES, THUMBNAIL_HEIGHT, THUMBNAIL_WIDTH
from acechart.server.keys import CHARTS, JOBS, RUNTIME
from acechart.storage.keys import chart_key
from acechart.times import format_time
from tests.conftest import NOW_MS, SITE, SimFactory
from tests.server_helpers import DAY, ClientFactory, Service, query, start_service
from tests.test_thumbnail import heat_reference

OTHER = "other_site"
TOKENS = {"tok-a": frozenset({SITE}), "tok-a2": frozenset({SITE}), "tok-b": frozenset({OTHER})}


async def _service(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> Service:
    sim = await make_simulator(mode="idealised", sites=(SITE, OTHER), tokens=TOKENS)
    svc = await start_service(aiohttp_client, sim, tmp_path, rate_limit_per_minute=0)
    svc.app[CHARTS].clock = lambda: NOW_MS / 1000
    return svc


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path) -> Service:
    return await _service(aiohttp_client, make_simulator, tmp_path)


def chart_body(svc: Service, **extra: Any) -> dict[str, Any]:
    return {
        "siteId": SITE,
        "chartType": "line",
        "title": "Discharge air",
        "pointNames": svc.points(2),
        "configJson": {"yAxis": [{"type": "value", "name": "°F"}], "legend": {"show": True}},
        "query": {"start": format_time(NOW_MS - 2 * DAY), "end": format_time(NOW_MS - DAY)},
        **extra,
    }


async def send(
    svc: Service, method: str, path: str, body: Any = None, *, token: str = "tok-a"
) -> Any:
    data = body if isinstance(body, bytes | str) or body is None else json.dumps(body)
    return await svc.client.request(method, path, data=data, headers={"X-ACE-Token": token})


async def create(svc: Service, token: str = "tok-a", **extra: Any) -> dict[str, Any]:
    resp = await send(svc, "POST", "/api/charts", chart_body(svc, **extra), token=token)
    assert resp.status == 201, await resp.text()
    chart: dict[str, Any] = await resp.json()
    assert resp.headers["Location"] == f"/api/charts/{chart['id']}"
    return chart


async def test_create_read_and_count_views(svc: Service) -> None:
    chart = await create(svc)
    owner = svc.app[JOBS].vault.fingerprint("tok-a")
    assert chart["userId"] == owner and "tok-a" not in json.dumps(chart)
    assert chart["siteId"] == SITE and chart["pointNames"] == svc.points(2)
    assert chart["configJson"]["yAxis"][0]["name"] == "°F"
    assert chart["thumbnailUrl"] == f"/api/charts/{chart['id']}/thumbnail.png"
    assert chart["isPublic"] is False and chart["viewCount"] == 0 and chart["owned"] is True
    assert chart["createdAt"] == chart["updatedAt"] == format_time(NOW_MS)

    for views in (1, 2):
        got = await send(svc, "GET", f"/api/charts/{chart['id']}")
        assert got.status == 200
        assert (await got.json())["viewCount"] == views
    row = await svc.app[RUNTIME].db.fetchone(
        "SELECT user_id, view_count, point_names FROM chart_configs WHERE id = ?", (chart["id"],)
    )
    assert row is not None and row[0] == owner and row[1] == 2
    assert json.loads(row[2]) == svc.points(2)

    # The seed's object layout: charts/{id}/config.json holds the config.
    stored = json.loads(await svc.app[RUNTIME].store.get(chart_key(chart["id"], "config.json")))
    assert stored["configJson"] == chart["configJson"] and stored["pointNames"] == svc.points(2)


async def test_lists_sort_by_recency_and_popularity(svc: Service) -> None:
    service = svc.app[CHARTS]
    ids = []
    for i in range(3):
        service.clock = lambda i=i: NOW_MS / 1000 + i
        ids.append((await create(svc, title=f"chart {i}", isPublic=i != 1))["id"])
    for _ in range(3):
        await send(svc, "GET", f"/api/charts/{ids[0]}")
    await send(svc, "GET", f"/api/charts/{ids[1]}")

    async def listed(params: str, token: str = "tok-a") -> list[str]:
        resp = await send(svc, "GET", f"/api/charts?{params}", token=token)
        assert resp.status == 200, await resp.text()
        return [c["id"] for c in (await resp.json())["charts"]]

    assert await listed("") == ids[::-1]
    assert await listed("sort=popular") == [ids[0], ids[1], ids[2]]
    assert await listed("limit=1&offset=1") == [ids[1]]
    assert await listed("site=other_site") == []
    # Another token of the site sees only the public ones, and owns none.
    assert await listed(f"scope=public&site={SITE}", "tok-a2") == [ids[2], ids[0]]
    assert await listed(f"scope=public&site={SITE}&sort=popular", "tok-a2") == [ids[0], ids[2]]
    assert await listed("", "tok-a2") == []
    # A token the origin refuses for the site cannot list its public charts.
    refused = await send(svc, "GET", f"/api/charts?scope=public&site={SITE}", token="tok-b")
    assert refused.status == 403
    for bad in ("scope=all", "sort=oldest", "limit=0", "limit=x", "scope=public", "site=..%2f"):
        resp = await send(svc, "GET", f"/api/charts?{bad}")
        assert resp.status == 400, bad
        assert (await resp.json())["parameter"] in ("scope", "sort", "limit", "site")


async def test_only_the_owner_changes_and_others_see_only_public_charts(svc: Service) -> None:
    private = await create(svc)
    public = await create(svc, isPublic=True)
    url_private, url_public = f"/api/charts/{private['id']}", f"/api/charts/{public['id']}"

    # Same site, another token: the private chart does not exist, the public one reads.
    missing = await send(svc, "GET", url_private, token="tok-a2")
    assert missing.status == 404 and (await missing.json())["error"] == "not_found"
    seen = await send(svc, "GET", url_public, token="tok-a2")
    assert seen.status == 200 and (await seen.json())["owned"] is False
    for method, body in (("PATCH", {"title": "mine"}), ("PUT", chart_body(svc)), ("DELETE", None)):
        assert (await send(svc, method, url_public, body, token="tok-a2")).status == 403
        assert (await send(svc, method, url_private, body, token="tok-a2")).status == 404
    # A token the origin refuses for the chart's site sees neither, not even the public one.
    for url in (url_private, url_public, url_public + "/thumbnail.png"):
        assert (await send(svc, "GET", url, token="tok-b")).status == 404
    # Nothing changed, and no view was counted for refused reads.
    got = await (await send(svc, "GET", url_public)).json()
    assert got["title"] == "Discharge air" and got["viewCount"] == 2
    # No token at all.
    resp = await svc.client.get(url_public)
    assert resp.status == 401


async def test_update_and_delete(svc: Service) -> None:
    chart = await create(svc)
    url = f"/api/charts/{chart['id']}"
    store = svc.app[RUNTIME].store
    svc.app[CHARTS].clock = lambda: NOW_MS / 1000 + 60
    patched = await send(svc, "PATCH", url, {"title": "New title", "isPublic": True})
    assert patched.status == 200, await patched.text()
    body = await patched.json()
    assert body["title"] == "New title" and body["isPublic"] is True
    assert body["pointNames"] == chart["pointNames"] and body["configJson"] == chart["configJson"]
    assert body["updatedAt"] == format_time(NOW_MS + 60_000) != body["createdAt"]
    stored = json.loads(await store.get(chart_key(chart["id"], "config.json")))
    assert stored["title"] == "New title" and stored["isPublic"] is True

    # PUT replaces every field: what it leaves out takes its default.
    replaced = await send(
        svc, "PUT", url, {"siteId": SITE, "pointNames": svc.points(1), "chartType": "bar"}
    )
    assert replaced.status == 200, await replaced.text()
    body = await replaced.json()
    assert body["chartType"] == "bar" and body["title"] is None and body["isPublic"] is False
    assert body["pointNames"] == svc.points(1) and body["configJson"] == {}
    # A GET's body sent back unchanged is a valid PUT.
    again = await send(svc, "PUT", url, body)
    assert again.status == 200 and (await again.json())["chartType"] == "bar"
    moved = await send(svc, "PATCH", url, {"siteId": OTHER})
    assert moved.status == 400 and (await moved.json())["parameter"] == "siteId"

    await store.put(chart_key(chart["id"], "thumbnail.png"), b"\x89PNG stale")
    assert (await send(svc, "DELETE", url)).status == 204
    assert (await send(svc, "GET", url)).status == 404
    assert (await send(svc, "DELETE", url)).status == 404
    assert [i.key async for i in store.list(f"charts/{chart['id']}/")] == []


@pytest.mark.parametrize(
    ("change", "parameter"),
    [
        ({"chartType": "pie"}, "chartType"),
        ({"pointNames": []}, "pointNames"),
        ({"pointNames": "a,b"}, "pointNames"),
        ({"pointNames": ["a", "a"]}, "pointNames"),
        ({"pointNames": ["x/../y"]}, "pointNames"),
        ({"siteId": ".."}, "siteId"),
        ({"siteId": None}, "siteId"),
        ({"title": 5}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"isPublic": "yes"}, "isPublic"),
        ({"configJson": "{not json"}, "configJson"),
        ({"configJson": [1, 2]}, "configJson"),
        ({"configJson": {"x": "y" * MAX_CONFIG_BYTES}}, "configJson"),
        ({"query": {"start": "2025-01-02", "end": "2025-01-01"}}, "query.end"),
        ({"query": {"start": "yesterday"}}, "query.start"),
        ({"query": {"start": "-2000d"}}, "query.end"),
        ({"query": {"interval": "2min"}}, "query.interval"),
        ({"query": {"stat": "median"}}, "query.stat"),
        ({"query": {"tz": "Mars/Olympus_Mons"}}, "query.tz"),
        ({"query": {"color": "red"}}, "query.color"),
        ({"query": "last week"}, "query"),
        ({"owner": "me"}, "owner"),
    ],
)
async def test_bad_fields_are_400s_naming_them(
    svc: Service, change: dict[str, Any], parameter: str
) -> None:
    resp = await send(svc, "POST", "/api/charts", chart_body(svc, **change))
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert body["error"] == "bad_request" and body["parameter"] == parameter


async def test_bad_bodies_and_ids(svc: Service) -> None:
    for raw in (b"not json", b"[1, 2]", b""):
        resp = await send(svc, "POST", "/api/charts", raw)
        assert resp.status == 400 and (await resp.json())["parameter"] == "body"
    for chart_id in ("nope", "0" * 32, "..", "%2e%2e"):
        resp = await send(svc, "GET", f"/api/charts/{chart_id}")
        assert resp.status == 404, chart_id
    # A site the token may not read cannot hold its charts.
    resp = await send(svc, "POST", "/api/charts", chart_body(svc, siteId=OTHER))
    assert resp.status == 403


async def test_ownership_survives_a_restart(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> None:
    first = await _service(aiohttp_client, make_simulator, tmp_path)
    chart = await create(first)
    await first.client.close()
    second = await _service(aiohttp_client, make_simulator, tmp_path)
    resp = await send(second, "PATCH", f"/api/charts/{chart['id']}", {"title": "still mine"})
    assert resp.status == 200 and (await resp.json())["owned"] is True


def _png(data: bytes) -> np.ndarray[Any, Any]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    assert image.size == (THUMBNAIL_WIDTH, THUMBNAIL_HEIGHT)
    return np.asarray(image.convert("RGB"), dtype=np.int16)


async def test_thumbnail_is_drawn_from_the_data_then_cached(svc: Service) -> None:
    chart = await create(svc, isPublic=True)
    url = f"/api/charts/{chart['id']}/thumbnail.png"
    first = await send(svc, "GET", url)
    assert first.status == 200 and first.content_type == "image/png"
    assert first.headers["X-Cache-Status"] == "MISS"
    pixels = _png(await first.read())
    # Not blank: the two lines' colours (ECharts' first two) are drawn across the image,
    # each reaching the top and the bottom (scaled to its own range: same unit, one scale).
    spread = pixels.max(axis=2) - pixels.min(axis=2)
    ink = spread > 40
    assert ink.mean() > 0.005
    columns = np.flatnonzero(ink.any(axis=0))
    assert columns.min() < 20 and columns.max() > THUMBNAIL_WIDTH - 20
    rows = np.flatnonzero(ink.any(axis=1))
    assert rows.min() < 12 and rows.max() > THUMBNAIL_HEIGHT - 12
    blue = (np.abs(pixels - np.array([0x54, 0x70, 0xC6])).sum(axis=2) < 60).sum()
    assert blue > 100

    stored = await svc.app[RUNTIME].store.get(chart_key(chart["id"], "thumbnail.png"))
    assert stored == await first.read()
    second = await send(svc, "GET", url, token="tok-a2")
    assert second.status == 200 and second.headers["X-Cache-Status"] == "HIT"
    assert await second.read() == stored
    etag = second.headers["ETag"]
    unchanged = await svc.client.get(url, headers={"X-ACE-Token": "tok-a", "If-None-Match": etag})
    assert unchanged.status == 304

    # Past the data's TTL (a day-old range: the seed's "recent" tier, 10 minutes) it is
    # drawn again; so it is after the chart changed.
    svc.app[CHARTS].clock = lambda: NOW_MS / 1000 + 601
    assert (await send(svc, "GET", url)).headers["X-Cache-Status"] == "MISS"
    assert (await send(svc, "GET", url)).headers["X-Cache-Status"] == "HIT"
    await send(svc, "PATCH", f"/api/charts/{chart['id']}", {"pointNames": svc.points(1)})
    redrawn = await send(svc, "GET", url)
    assert redrawn.headers["X-Cache-Status"] == "MISS"
    assert await redrawn.read() != stored


async def test_thumbnail_of_a_chart_without_data_is_the_empty_picture(svc: Service) -> None:
    chart = await create(
        svc, query={"start": format_time(NOW_MS + 10 * DAY), "end": format_time(NOW_MS + 11 * DAY)}
    )
    resp = await send(svc, "GET", f"/api/charts/{chart['id']}/thumbnail.png")
    assert resp.status == 200
    pixels = _png(await resp.read())
    assert (pixels.max(axis=2) - pixels.min(axis=2)).max() < 40  # grid only, no line


async def test_a_slow_origin_holds_a_thumbnail_to_the_deadline_and_the_drawing_goes_on(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> None:
    sim = await make_simulator(mode="idealised", sites=(SITE, OTHER), tokens=TOKENS)
    svc = await start_service(aiohttp_client, sim, tmp_path, rate_limit_per_minute=0)
    service = svc.app[CHARTS]
    service.clock = lambda: NOW_MS / 1000
    service.deadline_s = 0.3
    chart = await create(svc)
    url = f"/api/charts/{chart['id']}/thumbnail.png"
    sim.state.faults.configure(latency_s=1.0, path_contains="/timeseries")
    slow = await send(svc, "GET", url)
    assert slow.status == 504
    body = await slow.json()
    assert body["error"] == "timeout" and "still being drawn" in body["message"]
    assert slow.headers["Retry-After"] == "1"
    # The drawing went on and stored its PNG: the next request is served from it.
    for _ in range(100):
        if await svc.app[RUNTIME].store.head(chart_key(chart["id"], "thumbnail.png")):
            break
        await asyncio.sleep(0.1)
    sim.state.faults.configure(latency_s=0.0)
    again = await send(svc, "GET", url)
    assert again.status == 200 and again.headers["X-Cache-Status"] == "HIT"


# --- what a thumbnail draws: the dashboard's data for the saved query ---------------------

START, END = NOW_MS - 8 * DAY, NOW_MS - DAY
BLUE = np.array([0x54, 0x70, 0xC6])


async def api_series(svc: Service, points: list[str], start: int, end: int, **params: str) -> Any:
    """The API's answer for the request the dashboard makes for a saved query (JSON)."""
    resp = await svc.get("/api/timeseries", query(points, start, end, **params), token="tok-a")
    assert resp.status == 200, await resp.text()
    return [
        (
            np.array([t for t, _ in s["data"]], dtype=np.int64),
            np.array([np.nan if v is None else v for _, v in s["data"]], dtype=np.float64),
        )
        for s in (await resp.json())["series"]
    ]


async def reference(
    svc: Service, points: list[str], start: int, end: int, mark: str = "line", **params: str
) -> bytes:
    """The thumbnail of the API's data for the same request, drawn by the kernel."""
    data = await api_series(
        svc, points, start, end, maxPoints=str(THUMBNAIL_WIDTH), downsample="minmaxlttb", **params
    )
    marked = [(ts, values, 0, mark) for ts, values in data]
    return render_thumbnail(marked, THUMBNAIL_WIDTH, THUMBNAIL_HEIGHT, start, end)


async def thumbnail_of(svc: Service, **fields: Any) -> bytes:
    chart = await create(svc, **fields)
    resp = await send(svc, "GET", f"/api/charts/{chart['id']}/thumbnail.png")
    assert resp.status == 200, await resp.text()
    png: bytes = await resp.read()
    return png


def column_runs(mask: np.ndarray[Any, Any]) -> list[tuple[int, int]]:
    """The runs of consecutive True columns of a 1-D mask, as (first, last)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


async def test_a_thumbnail_draws_the_saved_statistic(svc: Service) -> None:
    """stat=max and stat=min of the same hours are different pictures, each the one the
    API's buckets of that statistic draw."""
    point = svc.points(1)
    window = {"start": format_time(START), "end": format_time(END), "interval": "1hr"}
    pictures = {}
    for stat in ("max", "min"):
        saved = {**window, "stat": stat, "tz": "UTC"}
        png = await thumbnail_of(svc, pointNames=point, query=saved)
        expected = await reference(svc, point, START, END, interval="1hr", stat=stat, tz="UTC")
        assert png == expected, stat
        pictures[stat] = _png(png)
    # Noisy one-minute data: an hour's maximum is above its minimum, so the pictures differ
    # in most columns (each on its own scale, so the lines need not be parallel).
    differ = (pictures["max"] != pictures["min"]).any(axis=(0, 2))
    assert differ.mean() > 0.5
    highs, lows = (
        await api_series(svc, point, START, END, interval="1hr", stat="max"),
        await api_series(svc, point, START, END, interval="1hr", stat="min"),
    )
    assert (highs[0][1] >= lows[0][1]).all() and (highs[0][1] > lows[0][1]).mean() > 0.9


async def test_a_thumbnail_draws_the_saved_zone_and_site_is_the_default(svc: Service) -> None:
    """Local days (America/Chicago, the site's) are other buckets than UTC days; a chart
    saved without a zone is in the site's, and its query says so."""
    point = svc.points(1)
    window = {"start": format_time(START), "end": format_time(END), "interval": "1day"}
    chicago = await thumbnail_of(svc, pointNames=point, query={**window, "tz": "America/Chicago"})
    utc = await thumbnail_of(svc, pointNames=point, query={**window, "tz": "UTC"})
    assert chicago == await reference(svc, point, START, END, interval="1day", tz="America/Chicago")
    assert utc == await reference(svc, point, START, END, interval="1day", tz="UTC")
    assert chicago != utc
    default = await create(svc, pointNames=point, query=window)
    assert default["query"]["tz"] == "site"
    resp = await send(svc, "GET", f"/api/charts/{default['id']}/thumbnail.png")
    assert await resp.read() == chicago


async def test_the_zone_is_stored_always_and_old_rows_without_it_read_as_the_sites(
    svc: Service,
) -> None:
    db = svc.app[RUNTIME].db
    plain = await create(svc)
    none = await create(svc, query=None)
    berlin = await create(svc, query={"start": "-3d", "end": "now", "tz": "Europe/Berlin"})
    stored = {
        c["id"]: json.loads(
            (await db.fetchone("SELECT query_json FROM chart_configs WHERE id = ?", (c["id"],)))[0]
        )
        for c in (plain, none, berlin)
    }
    assert stored[plain["id"]]["tz"] == stored[none["id"]]["tz"] == "site"
    assert stored[berlin["id"]] == {"start": "-3d", "end": "now", "tz": "Europe/Berlin"}
    # PATCH and PUT keep it too.
    url = f"/api/charts/{berlin['id']}"
    patched = await (await send(svc, "PATCH", url, {"query": {"start": "-2d"}})).json()
    assert patched["query"] == {"start": "-2d", "tz": "site"}

    # A row saved before the zone was stored always (the dashboard left out its default).
    old = await create(svc, query={"start": format_time(START), "end": format_time(END)})
    await db.execute(
        "UPDATE chart_configs SET query_json = ? WHERE id = ?",
        (json.dumps({"start": format_time(START), "end": format_time(END)}), old["id"]),
    )
    await svc.app[RUNTIME].store.delete(chart_key(old["id"], "thumbnail.png"))
    got = await (await send(svc, "GET", f"/api/charts/{old['id']}")).json()
    assert got["query"] == {"start": format_time(START), "end": format_time(END), "tz": "site"}
    resp = await send(svc, "GET", f"/api/charts/{old['id']}/thumbnail.png")
    assert resp.status == 200
    # `auto` over 7 days at 400 px is hourly, in the site's zone.
    expected = await reference(svc, old["pointNames"], START, END, interval="1hr", tz="site")
    assert await resp.read() == expected


async def test_a_bar_thumbnail_has_a_filled_column_per_bucket(svc: Service) -> None:
    point = svc.points(1)
    start, end = NOW_MS - 2 * DAY, NOW_MS - DAY
    # `auto` for bars on 400 px: at most one bucket per 4 px, so a day is 24 hours.
    png = await thumbnail_of(
        svc, chartType="bar", pointNames=point,
        query={"start": format_time(start), "end": format_time(end), "tz": "UTC"},
    )  # fmt: skip
    assert png == await reference(svc, point, start, end, "bar", interval="1hr", tz="UTC")
    blue = (_png(png) == BLUE).all(axis=2)
    # Temperatures are positive: every column stands on the bottom (zero) and is solid
    # from there to its top.
    bottom = THUMBNAIL_HEIGHT - 5
    runs = column_runs(blue[bottom])
    assert len(runs) == 24
    for first, last in runs:
        assert last - first + 1 >= 8  # 16 px buckets, 80 % filled
        column = blue[:, (first + last) // 2]
        top = int(np.flatnonzero(column)[0])
        assert column[top : bottom + 1].all()


async def test_a_scatter_thumbnail_has_a_dot_per_sample(svc: Service) -> None:
    point = svc.points(1)
    start, end = NOW_MS - 2 * DAY, NOW_MS - DAY
    saved = {"start": format_time(start), "end": format_time(end), "interval": "1hr", "tz": "UTC"}
    png = await thumbnail_of(svc, chartType="scatter", pointNames=point, query=saved)
    assert png == await reference(svc, point, start, end, "scatter", interval="1hr", tz="UTC")
    pixels = _png(png)
    ink = (pixels.max(axis=2) - pixels.min(axis=2)) > 40
    runs = column_runs(ink.any(axis=0))
    assert len(runs) == 24 and all(last - first < 6 for first, last in runs)
    line = _png(await thumbnail_of(svc, chartType="line", pointNames=point, query=saved))
    assert ink.sum() < ((line.max(axis=2) - line.min(axis=2)) > 40).sum()


def heat_cells(ts: np.ndarray[Any, Any], values: np.ndarray[Any, Any], zone: str) -> Any:
    """The reference grid: pandas' local hour and date of each hourly bucket."""
    local = pd.DatetimeIndex(ts.view("datetime64[ms]"), tz="UTC").tz_convert(zone)
    first = pd.Timestamp(START, unit="ms", tz="UTC").tz_convert(zone).normalize()
    last = pd.Timestamp(END - 1, unit="ms", tz="UTC").tz_convert(zone).normalize()
    days = (local.normalize() - first).days
    grid = np.full((24, (last - first).days + 1), np.nan)
    grid[np.asarray(local.hour), np.asarray(days)] = values
    return grid


async def test_a_heatmap_thumbnail_is_hour_by_date_of_the_first_point(svc: Service) -> None:
    points = svc.points(2)
    window = {"start": format_time(START), "end": format_time(END), "stat": "max"}
    png = await thumbnail_of(svc, chartType="heatmap", pointNames=points, query=window)
    # The first point's hourly maxima in the site's zone, hour (rows) by local date.
    [(ts, values)] = await api_series(
        svc, points[:1], START, END, interval="1hr", stat="max", tz="site"
    )
    cells = heat_cells(ts, values, "America/Chicago")
    assert cells.shape == (24, 8) and np.isfinite(cells).mean() > 0.8
    pixels = _png(png)
    np.testing.assert_array_equal(pixels, heat_reference(cells, THUMBNAIL_WIDTH, THUMBNAIL_HEIGHT))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 30
    # In UTC the same buckets fall on other rows: another picture.
    utc = await thumbnail_of(
        svc, chartType="heatmap", pointNames=points, query={**window, "tz": "UTC"}
    )
    assert utc != png


async def test_a_site_without_coordinates_draws_its_thumbnail_in_utc(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> None:
    """As the dashboard does: tz=site cannot be resolved, so UTC, not a failed picture."""
    svc = await _service(aiohttp_client, make_simulator, tmp_path)
    table = svc.sim.site
    table.site = dataclasses.replace(table.site, latitude=math.nan, longitude=math.nan)
    point = svc.points(1)
    window = {"start": format_time(START), "end": format_time(END), "interval": "1day"}
    png = await thumbnail_of(svc, pointNames=point, query=window)
    assert png == await reference(svc, point, START, END, interval="1day", tz="UTC")
