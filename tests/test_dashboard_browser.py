"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright.

Against a spawned `acechart demo` (the simulator as origin, data up to the wall clock),
each test drives the page as a user would and checks what it drew against what the API
answers: the series hold exactly the points the API returned, the y-axis labels span
the data's range and none is clipped (the old page lost the leading digits of a
27,850,000 kWh counter), a zoom asks again at a finer resolution, and a saved chart
comes back from its URL with its thumbnail. Bars, dots and heat maps are checked the
same way, through what ECharts holds (`getOption()`): the series' types and data against
the API's answer. Screenshots go to each test's `tmp_path`.

Nothing downloads a browser: Playwright's Python package (its driver ships in the
wheel) launches `/usr/bin/chromium`, which `.ci/run` installs with apt. Skipped, with
the reason, only where Chromium or Playwright is missing, and never in CI (`CI=true`),
where a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest

from tests.real_processes import free_port

CHROMIUM = "/usr/bin/chromium"
TOKEN = "demo-token"
SITE = "ses_falls_city"
METER = "ses/ses_falls_city/192.168.96.30/n4/Drivers/BacnetNetwork/Main_Meter/Main_Meter.points.kWh"
SUPPLY = "ses/ses_falls_city/192.168.96.3/n4/Drivers/BacnetNetwork/AHU-1/AHU-1.points.SaTemp"
VAV = "ses/ses_falls_city/192.168.96.10/n4/Drivers/BacnetNetwork/VAV-701/VAV-701.points."
#: Flags that keep Chromium from calling home (component updates, sync, field trials).
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
]

IN_CI = os.environ.get("CI") == "true"
if not IN_CI:
    pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
from playwright import sync_api  # noqa: E402

pytestmark = pytest.mark.skipif(
    not IN_CI and not os.access(CHROMIUM, os.X_OK),
    reason=f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run does)",
)


@contextlib.contextmanager
def run_demo(data: Path, **settings: str) -> Iterator[str]:
    """`acechart demo` on free loopback ports with `ACECHART_*` settings; its URL."""
    port, origin_port = free_port(), free_port()
    env = {**os.environ, "ACECHART_RATE_LIMIT_PER_MINUTE": "0", "ACECHART_LOG_FORMAT": "text"}
    env.update({f"ACECHART_{k.upper()}": v for k, v in settings.items()})
    proc = subprocess.Popen(
        [sys.executable, "-m", "acechart", "--log-level", "WARNING", "demo",
         "--port", str(port), "--origin-port", str(origin_port), "--data-dir", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "acechart demo is running" in line:
            break
    if proc.poll() is not None or not any("demo is running" in s for s in seen):
        proc.kill()
        pytest.fail("acechart demo did not start:\n" + "".join(seen))
    drain = threading.Thread(target=lambda: seen.extend(proc.stdout or ()), daemon=True)
    drain.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        drain.join(timeout=10)
        proc.stdout.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_demo(tmp_path_factory.mktemp("demo")) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, demo: str) -> Iterator[Any]:
    with watched_page(browser, demo) as p:
        yield p


@contextlib.contextmanager
def watched_page(browser: Any, demo: str) -> Iterator[Any]:
    """A fresh page that fails the test on a script error, a failed request or a request
    to anywhere but the demo."""
    # bypass_csp: Playwright's wait_for_function evaluates its predicate as a string,
    # which the page's Content-Security-Policy (script-src 'self') rightly forbids.
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # A request the page aborts (a newer zoom supersedes it) is no failure.
    page.on(
        "requestfailed",
        lambda r: (
            None if "ABORTED" in (r.failure or "") else errors.append(f"{r.url}: {r.failure}")
        ),
    )
    # Every request the page makes stays on the demo's loopback port.
    outside: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith((demo, "data:", "blob:")) else outside.append(r.url),
    )
    try:
        yield page
    finally:
        context.close()
    assert not errors, errors
    assert not outside, outside


def api(base: str, path: str) -> Any:
    request = urllib.request.Request(base + path, headers={"X-ACE-Token": TOKEN})
    with urllib.request.urlopen(request, timeout=60) as resp:
        return json.loads(resp.read())


def wait_draw(page: Any, after: int = 0, reason: str | None = None) -> dict[str, Any]:
    """The page's last drawing, once it has drawn more than `after` times (and, with
    `reason`, once the last drawing was for it)."""
    page.wait_for_function(
        "([n, why]) => window.acechartDebug && acechartDebug.draws > n"
        " && (!why || acechartDebug.lastDraw.reason === why)",
        arg=[after, reason],
        timeout=60_000,
    )
    page.wait_for_timeout(300)  # let a resize redraw, if any, start
    page.wait_for_function(
        "() => !document.querySelector('#status').textContent.startsWith('Loading')"
    )
    draw: dict[str, Any] = page.evaluate("() => acechartDebug.lastDraw")
    return draw


def drawn_lengths(page: Any) -> dict[str, int]:
    lengths: dict[str, int] = page.evaluate(
        """() => Object.fromEntries(acechartDebug.chart.getOption().series
            .filter((s) => s && s.id.startsWith('line:'))
            .map((s) => [s.id.slice(5), s.data.length]))"""
    )
    return lengths


def open_state(page: Any, base: str, **state: Any) -> None:
    params = [("site", SITE)] + [("point", p) for p in state.pop("points")]
    params += [(k, str(v)) for k, v in state.items()]
    page.goto(f"{base}/?{urlencode(params)}#token={TOKEN}")


def as_json(path: str) -> str:
    """A drawing's request, asked for as the seed's JSON document instead."""
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("format", "layout", "async")]
    return f"{parts.path}?{urlencode(query)}"


def texts_outside_the_chart(page: Any) -> list[str]:
    """Texts of the chart's SVG that reach past its edges (a clipped label would)."""
    outside: list[str] = page.evaluate(
        """() => {
            const box = document.querySelector('#chart svg').getBoundingClientRect();
            return [...document.querySelectorAll('#chart svg text')].filter((t) => {
                const r = t.getBoundingClientRect();
                return r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1
                    || r.top < box.top - 1 || r.bottom > box.bottom + 1);
            }).map((t) => t.textContent);
        }"""
    )
    return outside


def test_pick_a_site_and_two_points_and_draw_them(page: Any, demo: str, tmp_path: Path) -> None:
    page.goto(f"{demo}/#token={TOKEN}")
    page.wait_for_function("() => document.querySelector('#site').options.length > 0")
    page.select_option("#site", SITE)
    for text, name in (("Main_Meter", METER), ("SaTemp", SUPPLY)):
        page.fill("#q", text)
        item = page.locator(f'#results li[data-name="{name}"]')
        item.wait_for()
        item.click()
    page.click('#presets button[data-range="1d"]')
    page.wait_for_function(
        "(names) => acechartDebug.lastDraw"
        " && names.every((n) => n in acechartDebug.lastDraw.counts)",
        arg=[METER, SUPPLY],
        timeout=60_000,
    )
    draw = wait_draw(page)
    assert draw["interval"] == "raw"
    assert "maxPoints=" in draw["path"] and "downsample=minmaxlttb" in draw["path"]
    # State in the URL: the page's own link names the site and both points.
    url = page.url
    assert f"site={SITE}" in url and url.count("point=") == 2

    # The drawn series hold exactly what the API answers for that request.
    answer = api(demo, as_json(draw["path"]))
    returned = {s["name"]: s["data"] for s in answer["series"]}
    assert drawn_lengths(page) == {n: len(d) for n, d in returned.items()} == draw["counts"]
    assert all(len(d) > 10 for d in returned.values())

    # The kWh axis: its labels name kWh, span the meter's range, and keep every digit.
    values = [v for _, v in returned[METER] if v is not None]
    lo, hi = min(values), max(values)
    assert hi > 1_000_000  # the counter of the bug report: millions of kWh
    texts = page.eval_on_selector_all("#chart svg text", "els => els.map((e) => e.textContent)")
    kwh = [
        float(t[: -len(" kWh")].replace(",", "")) for t in texts if re.fullmatch(r"[\d,.-]+ kWh", t)
    ]
    assert len(kwh) >= 3, texts
    span = max(hi - lo, 1.0)
    assert min(kwh) <= lo and max(kwh) >= hi
    assert min(kwh) >= lo - span and max(kwh) <= hi + span
    # No text of the chart lies outside its drawing area (clipped labels would).
    assert texts_outside_the_chart(page) == []
    # Nor with four units, two axes on each side (a damper's %, an occupancy state).
    for name in (VAV + "Damper", VAV + "OccStatus"):
        page.fill("#q", name.rsplit("/", 1)[1])
        page.locator(f'#results li[data-name="{name}"]').click()
    page.wait_for_function(
        "() => acechartDebug.lastDraw && Object.keys(acechartDebug.lastDraw.counts).length === 4",
        timeout=60_000,
    )
    wait_draw(page)
    axis_names = page.evaluate("() => acechartDebug.chart.getOption().yAxis.map((a) => a.name)")
    assert axis_names == ["kWh", "°F", "%", "state"]
    assert texts_outside_the_chart(page) == []
    tooltip = page.evaluate(
        "() => acechartDebug.chart.getOption().tooltip[0]"
        ".formatter([{axisValue: acechartDebug.lastDraw.w1 - 3600000}])"
    )
    # The readout lists every point at the hovered time, with its unit; the state as on/off.
    assert tooltip.count("<br>") == 4 and " kWh</b>" in tooltip and " %</b>" in tooltip
    assert re.search(r"OccStatus: <b>(on|off)</b>", tooltip), tooltip
    # Cache status, source and time per request are shown.
    status = page.inner_text("#status")
    assert "cache " in status and "server " in status and " ms in all" in status
    page.screenshot(path=str(tmp_path / "dashboard.png"))


def test_zoom_asks_again_at_a_finer_resolution(page: Any, demo: str, tmp_path: Path) -> None:
    open_state(page, demo, points=[SUPPLY], range="7d")
    first = wait_draw(page)
    assert first["interval"] == "1hr" and "/api/aggregations" in first["path"]
    box = page.locator("#chart").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    draws = page.evaluate("() => acechartDebug.draws")
    for _ in range(12):  # the inside zoom: the mouse wheel, as a user zooms
        page.mouse.wheel(0, -400)
        page.wait_for_timeout(40)
    zoomed = wait_draw(page, draws, reason="zoom")
    window = zoomed["w1"] - zoomed["w0"]
    assert window < (first["w1"] - first["w0"]) / 2

    def resolution(draw: dict[str, Any]) -> float:
        """Milliseconds of data per drawn point."""
        bucket = {"1min": 6e4, "5min": 3e5, "1hr": 3.6e6, "1day": 8.64e7}.get(draw["interval"])
        per_pixel = (draw["w1"] - draw["w0"]) / draw["width"]
        return max(bucket or 0.0, per_pixel)

    assert resolution(zoomed) < resolution(first)
    # Asked at the plot's own width: about the chart's width in pixels, not the width the
    # whole range would have at this zoom.
    assert 300 < zoomed["width"] <= box["width"]
    assert "zoom=" in page.url  # the zoom is part of the link
    answer = api(demo, as_json(zoomed["path"]))
    assert drawn_lengths(page) == {s["name"]: len(s["data"]) for s in answer["series"]}
    page.screenshot(path=str(tmp_path / "zoomed.png"))


def test_interval_charts_are_in_the_sites_zone_by_default(page: Any, demo: str) -> None:
    """Falls City's buckets, labels and readout are in America/Chicago unless the user
    picks another zone, which the link then records."""
    open_state(page, demo, points=[SUPPLY], range="7d")
    draw = wait_draw(page)
    assert draw["interval"] == "1hr" and "/api/aggregations" in draw["path"]
    assert dict(parse_qsl(urlsplit(draw["path"]).query))["tz"] == "site"
    assert "tz=" not in page.url  # the default is not spelled out in the link
    assert "times in America/Chicago" in page.inner_text("#status")
    assert page.get_attribute("#tz-site", "title") == "America/Chicago"
    answer = api(demo, as_json(draw["path"]))
    assert answer["metadata"]["timeZone"] == "America/Chicago"
    readout = (
        "() => acechartDebug.chart.getOption().tooltip[0].formatter([{axisValue: 1735689600000}])"
    )
    assert "Dec 31, 2024, 18:00:00 CST" in page.evaluate(readout)  # 00:00 UTC, local time

    draws = page.evaluate("() => acechartDebug.draws")
    page.select_option("#tz", "UTC")
    chosen = wait_draw(page, draws)
    assert dict(parse_qsl(urlsplit(chosen["path"]).query))["tz"] == "UTC"
    assert "tz=UTC" in page.url and "times in UTC" in page.inner_text("#status")
    assert "Jan 01, 2025, 00:00:00 UTC" in page.evaluate(readout)


def test_save_a_chart_and_reopen_it_from_its_url(page: Any, demo: str, tmp_path: Path) -> None:
    open_state(page, demo, points=[SUPPLY, METER], range="1d")
    wait_draw(page)
    title = "Supply air and the main meter"
    page.fill("#chart-title", title)
    page.check("#chart-public")
    page.click("#save")
    page.wait_for_function("() => new URLSearchParams(location.search).get('chart')")
    chart_id = dict(parse_qsl(urlsplit(page.url).query))["chart"]
    saved = api(demo, f"/api/charts/{chart_id}")
    assert saved["title"] == title and saved["isPublic"] is True
    assert saved["pointNames"] == [SUPPLY, METER] and saved["query"]["start"] == "-1d"

    page.goto(page.url.split("#")[0])  # the link itself, in a fresh page load
    drawn = wait_draw(page)
    assert set(drawn["counts"]) == {SUPPLY, METER}
    page.wait_for_function(
        "(t) => document.querySelector('#heading').textContent.includes(t)", arg=title
    )
    assert page.input_value("#chart-title") == title
    thumb = page.locator(f'#mine li[data-id="{chart_id}"] img')
    thumb.wait_for()
    page.wait_for_function(
        '(id) => { const i = document.querySelector(`#mine li[data-id="${id}"] img`);'
        " return i && i.complete && i.naturalWidth > 0; }",
        arg=chart_id,
    )
    size = thumb.evaluate("(i) => [i.naturalWidth, i.naturalHeight]")
    assert size == [400, 200]
    page.screenshot(path=str(tmp_path / "saved.png"))
    target = os.environ.get("ACECHART_DASHBOARD_SCREENSHOT")
    if target:  # README's picture: ACECHART_DASHBOARD_SCREENSHOT=docs/dashboard.png
        shutil.copyfile(tmp_path / "saved.png", target)


def test_a_large_query_is_followed_to_its_job(browser: Any, tmp_path: Path) -> None:
    # Small thresholds: a week of raw one-minute samples is a large query, so a 202.
    limits = {"small_max_samples": "100", "request_budget_s": "0.3"}
    with run_demo(tmp_path / "demo", **limits) as base, watched_page(browser, base) as page:
        open_state(page, base, points=[SUPPLY], range="7d", interval="raw")
        draw = wait_draw(page)
        requests = page.evaluate("() => acechartDebug.requests.map((r) => [r.path, r.status])")
        statuses = [status for path, status in requests if path.startswith("/api/timeseries")]
        assert statuses == [202]
        assert any("/api/jobs/" in path and path.endswith("/result?format=msgpack&layout=columns")
                   for path, _ in requests)  # fmt: skip
        assert draw["counts"][SUPPLY] > 100
        assert drawn_lengths(page) == draw["counts"]


def test_a_rate_limit_is_said_in_plain_words(browser: Any, tmp_path: Path) -> None:
    with (
        run_demo(tmp_path / "demo", rate_limit_per_minute="3") as base,
        watched_page(browser, base) as page,
    ):
        page.goto(f"{base}/#token={TOKEN}")
        page.wait_for_function("() => document.querySelector('#site').options.length > 0")
        for text in ("Sa", "Da", "Zn", "kW", "Oa"):
            page.fill("#q", text)
            page.wait_for_timeout(400)
        page.wait_for_function(
            "() => document.querySelector('#banner').textContent.includes('Too many requests')"
        )
        banner = page.inner_text("#banner")
        assert re.search(r"the server asks to wait \d+ seconds", banner), banner


def drawn_series(page: Any) -> list[dict[str, Any]]:
    """The chart's series as ECharts holds them: id, type and data."""
    series: list[dict[str, Any]] = page.evaluate(
        "() => acechartDebug.chart.getOption().series"
        ".map((s) => ({id: s.id, type: s.type, data: s.data}))"
    )
    return series


def answer_pairs(base: str, path: str) -> dict[str, list[list[Any]]]:
    """The API's answer for a drawing's request, as [time, value] pairs per point (the
    average of `/api/aggregations` rows)."""
    answer = api(base, as_json(path))
    return {
        s["name"]: (
            [[r["timestamp"], r["avg"]] for r in s["aggregations"]]
            if "aggregations" in s
            else s["data"]
        )
        for s in answer["series"]
    }


def auto_for(draw: dict[str, Any], per_pixel: float) -> str:
    """The interval the dashboard's `auto` rule gives a drawing's window and width."""
    span = draw["w1"] - draw["w0"]
    for name, ms in (("1min", 6e4), ("5min", 3e5), ("1hr", 3.6e6), ("1day", 8.64e7)):
        if span / ms <= per_pixel * draw["width"]:
            return name
    return "1day"


def test_bars_are_the_interval_buckets_centred_on_them(
    page: Any, demo: str, tmp_path: Path
) -> None:
    open_state(page, demo, points=[SUPPLY, METER], range="1d", type="bar")
    draw = wait_draw(page)
    # Never raw samples: the finest interval with at most one bucket per 4 pixels.
    assert draw["type"] == "bar" and draw["interval"] == auto_for(draw, 0.25) != "raw"
    assert page.input_value("#type") == "bar" and "type=bar" in page.url
    half = {"1min": 30_000, "5min": 150_000, "1hr": 1_800_000, "1day": 43_200_000}[draw["interval"]]
    series = drawn_series(page)
    assert {s["type"] for s in series} == {"bar"}
    assert {s["id"] for s in series} == {f"bar:{SUPPLY}", f"bar:{METER}"}
    returned = answer_pairs(demo, draw["path"])
    for s in series:
        expected = [[t + half, v] for t, v in returned[s["id"][4:]]]
        assert s["data"] == expected and len(expected) > 10
    # Bars stand on zero: no axis leaves it out (the kWh counter's bars are tall).
    axes = page.evaluate("() => acechartDebug.chart.getOption().yAxis.map((a) => a.scale)")
    assert axes == [False, False]
    assert texts_outside_the_chart(page) == []
    page.screenshot(path=str(tmp_path / "bars.png"))


def test_scatter_draws_a_dot_per_sample(page: Any, demo: str, tmp_path: Path) -> None:
    open_state(page, demo, points=[SUPPLY], range="1d", type="scatter")
    draw = wait_draw(page)
    assert draw["type"] == "scatter" and draw["interval"] == "raw"
    [series] = drawn_series(page)
    assert series["type"] == "scatter" and series["id"] == f"scatter:{SUPPLY}"
    returned = answer_pairs(demo, draw["path"])[SUPPLY]
    assert series["data"] == returned and len(returned) > 100
    page.screenshot(path=str(tmp_path / "scatter.png"))


def local_cells(pairs: list[list[Any]], zone: str) -> set[tuple[str, int, float]]:
    """(local date, wall-clock hour, value) of each bucket with a value, by zoneinfo."""
    out = set()
    for t, v in pairs:
        if v is None:
            continue
        local = datetime.fromtimestamp(t / 1000, UTC).astimezone(ZoneInfo(zone))
        out.add((local.date().isoformat(), local.hour, v))
    return out


def test_a_heat_map_is_hour_by_date_of_the_first_point(
    page: Any, demo: str, tmp_path: Path
) -> None:
    open_state(page, demo, points=[SUPPLY, METER], range="7d")
    first = wait_draw(page)
    assert first["type"] == "line"
    draws = page.evaluate("() => acechartDebug.draws")
    page.select_option("#type", "heatmap")  # the user picks the chart type
    draw = wait_draw(page, draws)
    assert draw["type"] == "heatmap" and draw["interval"] == "1hr" and "type=heatmap" in page.url
    sent = dict(parse_qsl(urlsplit(draw["path"]).query))
    assert urlsplit(draw["path"]).path == "/api/timeseries"
    assert sent["points"] == SUPPLY and sent["interval"] == "1hr" and sent["tz"] == "site"
    assert page.is_disabled("#interval")  # always hourly

    option = page.evaluate(
        """() => { const o = acechartDebug.chart.getOption();
            return {series: o.series.map((s) => ({type: s.type, data: s.data})),
                    x: o.xAxis[0].data, y: o.yAxis[0].data,
                    map: [o.visualMap[0].min, o.visualMap[0].max]}; }"""
    )
    [series] = option["series"]
    assert series["type"] == "heatmap"
    assert option["y"] == [f"{h:02d}:00" for h in range(24)]
    # Columns: every local date of the window in the site's zone (America/Chicago).
    zone = ZoneInfo("America/Chicago")
    day0 = datetime.fromtimestamp(draw["w0"] / 1000, UTC).astimezone(zone).date()
    day1 = datetime.fromtimestamp((draw["w1"] - 1) / 1000, UTC).astimezone(zone).date()
    assert option["x"] == [
        (day0 + timedelta(days=k)).isoformat() for k in range((day1 - day0).days + 1)
    ]
    assert len(option["x"]) == 8
    # Cells: exactly the API's hourly buckets of the first point, at their local date and hour.
    returned = answer_pairs(demo, draw["path"])
    assert list(returned) == [SUPPLY]
    expected = local_cells(returned[SUPPLY], "America/Chicago")
    drawn = {(option["x"][x], y, v) for x, y, v in series["data"]}
    assert drawn == expected and len(expected) > 100
    values = [v for _, _, v in expected]
    assert option["map"] == [min(values), max(values)]
    assert texts_outside_the_chart(page) == []
    page.screenshot(path=str(tmp_path / "heatmap.png"))


def test_a_chart_type_is_saved_and_reopened(page: Any, demo: str, tmp_path: Path) -> None:
    open_state(page, demo, points=[SUPPLY, METER], range="7d", type="bar", stat="max")
    wait_draw(page)
    page.fill("#chart-title", "Peaks by hour")
    page.click("#save")
    page.wait_for_function("() => new URLSearchParams(location.search).get('chart')")
    chart_id = dict(parse_qsl(urlsplit(page.url).query))["chart"]
    saved = api(demo, f"/api/charts/{chart_id}")
    assert saved["chartType"] == "bar"
    # The zone is saved even when it is the default.
    assert saved["query"] == {"start": "-7d", "end": "now", "stat": "max", "tz": "site"}
    assert [s["type"] for s in saved["configJson"]["echarts"]["series"]] == ["bar", "bar"]

    page.goto(f"{demo}/?chart={chart_id}")  # the link, without the type in it
    draw = wait_draw(page)
    assert draw["type"] == "bar" and page.input_value("#type") == "bar"
    assert {s["type"] for s in drawn_series(page)} == {"bar"}
    assert dict(parse_qsl(urlsplit(draw["path"]).query))["stat"] == "max"

    # Changed to a heat map and updated: the saved chart is one, and so is its thumbnail.
    draws = page.evaluate("() => acechartDebug.draws")
    page.select_option("#type", "heatmap")
    wait_draw(page, draws)
    page.click("#update")
    page.wait_for_function(
        "() => document.querySelector('#banner').textContent.startsWith('Updated')"
    )
    assert api(demo, f"/api/charts/{chart_id}")["chartType"] == "heatmap"
    page.goto(f"{demo}/?chart={chart_id}")
    draw = wait_draw(page)
    assert draw["type"] == "heatmap" and page.input_value("#type") == "heatmap"
    page.wait_for_function(
        '(id) => { const i = document.querySelector(`#mine li[data-id="${id}"] img`);'
        " return i && i.complete && i.naturalWidth > 0; }",
        arg=chart_id,
    )
    colours = page.evaluate(
        """(id) => { const i = document.querySelector(`#mine li[data-id="${id}"] img`);
            const c = document.createElement('canvas'); c.width = i.naturalWidth;
            c.height = i.naturalHeight; const g = c.getContext('2d'); g.drawImage(i, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data; const seen = new Set();
            for (let k = 0; k < d.length; k += 4) seen.add(d[k] << 16 | d[k + 1] << 8 | d[k + 2]);
            return seen.size; }""",
        chart_id,
    )
    assert colours > 30  # the heat map's scale, not two lines on white
    page.screenshot(path=str(tmp_path / "saved-heatmap.png"))
