"""The origin client against the simulator over HTTP: completeness, windows, retries, errors."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from acechart._core import PageParseError
from acechart.errors import (
    BadRequest,
    ConfigError,
    Forbidden,
    NotFound,
    OriginAuthError,
    OriginBadRequest,
    OriginError,
    OriginNotFound,
    OriginTimeout,
    OriginUnavailable,
    RateLimited,
    RequestTooLarge,
    Unauthorized,
)
from acechart.origin.client import OriginClient, Progress, Samples
from acechart.settings import Settings
from acechart.times import parse_iso_ms
from tests.conftest import SITE, TOKEN, ClientFactory, Sim, SimFactory, origin_settings

START = parse_iso_ms("2024-03-04T00:00:00Z")
MINUTE = 60_000
HOUR = 3_600_000
PAGINATED = "/timeseries/paginated"


def assert_complete(sim: Sim, got: Samples, names: list[str], start: int, end: int) -> None:
    """`got` holds exactly the simulator's samples of `names` in [start, end), each once."""
    assert list(got.names) == names
    total = 0
    for name in names:
        expected = sim.data.expected(SITE, name, start, end)
        inside = expected.t_ms < end
        ts, values = got.point(name)
        np.testing.assert_array_equal(ts, expected.t_ms[inside], err_msg=name)
        np.testing.assert_array_equal(values, expected.value[inside], err_msg=name)
        total += int(inside.sum())
    assert len(got) == total
    order = np.lexsort((got.ts, got.point_index))
    np.testing.assert_array_equal(order, np.arange(len(got)))


def some_points(sim: Sim, count: int, step: int = 11) -> list[str]:
    return [sim.site.names[i] for i in range(0, step * count, step)][:count]


# --- completeness --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page_size", "window_s"),
    [(100, 3600), (1000, 1800), (100000, 86400), (3, 600), (500000, 900)],
)
async def test_every_sample_exactly_once(
    sim: Sim, make_client: ClientFactory, page_size: int, window_s: int
) -> None:
    names = some_points(sim, 12) if page_size > 3 else some_points(sim, 2)
    start, end = START + 7 * MINUTE + 500, START + 3 * HOUR + 13 * MINUTE
    client = make_client(origin_page_size=page_size, origin_window_s=window_s)
    got = await client.fetch_samples(SITE, names, start, end, token=TOKEN)
    assert_complete(sim, got, names, start, end)
    assert got.pages == got.requests == len(sim.log.matching(PAGINATED))
    assert got.samples >= len(got)


async def test_samples_on_window_edges_are_kept_once(sim: Sim, make_client: ClientFactory) -> None:
    """Window edges fall on sample times; the origin's end_time is inclusive."""
    on_edges = [p.name for p in sim.site.site.points if p.phase_s == 0][:6]
    assert on_edges
    start, end = START, START + 6 * HOUR
    client = make_client(origin_window_s=3600)
    got = await client.fetch_samples(SITE, on_edges, start, end, token=TOKEN)
    assert_complete(sim, got, on_edges, start, end)
    edge_times = np.arange(start, end, HOUR)
    for name in on_edges:
        ts, _ = got.point(name)
        assert np.isin(edge_times, ts).sum() >= 1
    assert got.samples > len(got)  # the edge samples came twice and were trimmed once


async def test_all_points_of_a_site(sim: Sim, make_client: ClientFactory) -> None:
    start, end = START, START + 40 * MINUTE
    client = make_client(origin_window_s=600, origin_page_size=5000)
    got = await client.fetch_samples(SITE, None, start, end, token=TOKEN)
    present = sorted(
        {
            sim.site.names[i]
            for i in sim.site.all_rows(sim.site.all_points, start, end - 1).idx.tolist()
        }
    )
    assert list(got.names) == present
    assert_complete(sim, got, present, start, end)
    assert all("point_names" not in r.params for r in sim.log.matching(PAGINATED))


async def test_point_not_in_origin_is_listed_without_samples(
    sim: Sim, make_client: ClientFactory
) -> None:
    names = [sim.site.names[0], "ses/ses_falls_city/nowhere.points.Nothing"]
    got = await make_client().fetch_samples(SITE, names, START, START + HOUR, token=TOKEN)
    assert list(got.names) == names
    assert len(got.point(names[1])[0]) == 0 and len(got.point(names[0])[0]) > 0


async def test_empty_range_and_empty_point_list(sim: Sim, make_client: ClientFactory) -> None:
    client = make_client()
    for points, start, end in (([sim.site.names[0]], START, START), ([], START, START + HOUR)):
        got = await client.fetch_samples(SITE, points, start, end, token=TOKEN)
        assert len(got) == 0 and got.requests == 0
    assert len(sim.log) == 0


async def test_datetimes_are_accepted(sim: Sim, make_client: ClientFactory) -> None:
    from datetime import UTC, datetime

    name = sim.site.names[1]
    a = await make_client().fetch_samples(
        SITE, [name], datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 4, 1), token=TOKEN
    )
    assert_complete(sim, a, [name], START, START + HOUR)


async def test_non_numeric_values_are_nan_and_counted(sim: Sim, make_client: ClientFactory) -> None:
    words = [p.name for p in sim.site.site.points if p.model.words and "Occupied" in p.model.words]
    flaky = [p.name for p in sim.site.site.points if p.flaky]
    names = words[:2] + flaky[:3]
    start, end = START, START + 24 * HOUR
    got = await make_client().fetch_samples(SITE, names, start, end, token=TOKEN)
    assert_complete(sim, got, names, start, end)
    assert got.non_numeric == int(np.isnan(got.values).sum()) > 0


# --- windows, groups, concurrency, progress --------------------------------------------------


async def test_request_count_follows_windows_and_pages(
    sim: Sim, make_client: ClientFactory
) -> None:
    names = some_points(sim, 5)
    start, end = START, START + 6 * HOUR
    client = make_client(origin_window_s=3600, origin_page_size=100)
    got = await client.fetch_samples(SITE, names, start, end, token=TOKEN)
    expected_pages = 0
    for w in range(6):
        a, b = start + w * HOUR, start + (w + 1) * HOUR
        rows = sum(len(sim.data.expected(SITE, n, a, b)) for n in names)
        expected_pages += max(1, math.ceil(rows / 100))
    log = sim.log.matching(PAGINATED)
    assert len(log) == got.requests == got.pages == expected_pages
    windows = {(r.params["start_time"], r.params["end_time"]) for r in log}
    assert len(windows) == 6
    assert all(r.params["raw_data"] == "true" and r.params["page_size"] == "100" for r in log)


async def test_long_point_lists_are_split_to_fit_urls(sim: Sim, make_client: ClientFactory) -> None:
    names = list(sim.site.names[:60])
    client = make_client(origin_max_url_chars=2000)
    got = await client.fetch_samples(SITE, names, START, START + 30 * MINUTE, token=TOKEN)
    assert_complete(sim, got, names, START, START + 30 * MINUTE)
    log = sim.log.matching(PAGINATED)
    assert len(log) > 1
    assert all(len(r.params["point_names"]) <= 2000 for r in log)
    sent = [n for r in log for n in r.params["point_names"].split(",")]
    assert sorted(sent) == sorted(names)


async def test_parallel_windows_respect_the_concurrency_bound(
    sim: Sim, make_client: ClientFactory
) -> None:
    sim.faults.configure(latency_s=0.1)
    client = make_client(origin_window_s=3600, origin_concurrency=3)
    names = some_points(sim, 3)
    t0 = time.perf_counter()
    got = await client.fetch_samples(SITE, names, START, START + 12 * HOUR, token=TOKEN)
    elapsed = time.perf_counter() - t0
    assert_complete(sim, got, names, START, START + 12 * HOUR)
    log = sim.log.matching(PAGINATED)
    assert len(log) == 12
    events = sorted(
        [(r.started_s, 1) for r in log] + [(r.started_s + r.duration_s, -1) for r in log]
    )
    in_flight = peak = 0
    for _, step in events:
        in_flight += step
        peak = max(peak, in_flight)
    assert peak == 3
    assert elapsed < 12 * 0.1  # parallel, not one window after another


async def test_progress_reports_reach_the_total(sim: Sim, make_client: ClientFactory) -> None:
    reports: list[Progress] = []
    client = make_client(origin_window_s=3600, origin_page_size=500)
    names = some_points(sim, 8)
    got = await client.fetch_samples(
        SITE, names, START, START + 4 * HOUR, token=TOKEN, progress=reports.append
    )
    assert len(reports) == got.pages
    assert [r.samples for r in reports] == sorted(r.samples for r in reports)
    assert [r.pages for r in reports] == list(range(1, got.pages + 1))
    last = reports[-1]
    assert last.windows == last.windows_done == 4
    assert last.estimated_total == last.samples == len(got)
    middle = reports[len(reports) // 2]
    assert middle.estimated_total is not None
    assert 0.5 * len(got) < middle.estimated_total < 1.5 * len(got)


# --- metadata ---------------------------------------------------------------------------------


async def test_list_points_walks_every_page(sim: Sim, make_client: ClientFactory) -> None:
    points = await make_client().list_points(SITE, token=TOKEN)
    assert [p["name"] for p in points] == list(sim.site.names)
    pages = sim.log.matching("configured_points")
    assert len(pages) == math.ceil(len(sim.site.names) / 100)
    assert all(r.params["per_page"] == "100" for r in pages)


async def test_sites(sim: Sim, make_client: ClientFactory) -> None:
    client = make_client()
    assert [s["name"] for s in await client.list_sites(token=TOKEN)] == [SITE]
    assert (await client.get_site(SITE, token=TOKEN))["name"] == SITE


# --- retries ------------------------------------------------------------------------------------

FAULT_CASES = [("429",), ("500",), ("503",), ("drop",), ("503", "drop", "429")]


@pytest.mark.parametrize("faults", FAULT_CASES, ids=["-".join(f) for f in FAULT_CASES])
async def test_faults_are_retried_within_budget(
    sim: Sim, make_client: ClientFactory, faults: tuple[Any, ...]
) -> None:
    sim.faults.configure(retry_after_s=0.05, path_contains=PAGINATED)
    sim.faults.script(*faults)
    names = some_points(sim, 4)
    client = make_client(origin_max_attempts=len(faults) + 1, origin_page_size=1000)
    got = await client.fetch_samples(SITE, names, START, START + 2 * HOUR, token=TOKEN)
    assert_complete(sim, got, names, START, START + 2 * HOUR)
    assert got.retries == len(faults)
    log = sim.log.matching(PAGINATED)
    assert [r.fault for r in log[: len(faults)]] == list(faults)
    assert len(log) == got.pages + len(faults) == got.requests
    assert sim.faults.pending == 0


async def test_retry_after_is_honoured(sim: Sim, make_client: ClientFactory) -> None:
    sim.faults.configure(retry_after_s=0.4, path_contains=PAGINATED)
    sim.faults.script("429")
    t0 = time.perf_counter()
    await make_client().fetch_samples(SITE, [sim.site.names[0]], START, START + HOUR, token=TOKEN)
    assert time.perf_counter() - t0 >= 0.4


async def test_too_long_retry_after_fails_at_once(sim: Sim, make_client: ClientFactory) -> None:
    sim.faults.configure(retry_after_s=120, path_contains=PAGINATED)
    sim.faults.script("429")
    with pytest.raises(OriginUnavailable) as info:
        await make_client().fetch_samples(
            SITE, [sim.site.names[0]], START, START + HOUR, token=TOKEN
        )
    assert info.value.origin_status == 429 and info.value.retry_after == 120
    assert info.value.to_body()["retryAfter"] == 120
    assert len(sim.log) == 1


async def test_hang_is_a_timeout_and_is_retried(sim: Sim, make_client: ClientFactory) -> None:
    sim.faults.configure(hang_s=5.0, path_contains=PAGINATED)
    sim.faults.script("hang")
    client = make_client(origin_read_timeout_s=0.3, origin_timeout_s=0.6)
    names = some_points(sim, 2)
    got = await client.fetch_samples(SITE, names, START, START + HOUR, token=TOKEN)
    assert_complete(sim, got, names, START, START + HOUR)
    assert got.retries == 1


async def test_slow_body_within_timeout_succeeds(sim: Sim, make_client: ClientFactory) -> None:
    sim.faults.configure(slow_body_s=0.3, path_contains=PAGINATED)
    names = some_points(sim, 2)
    got = await make_client().fetch_samples(SITE, names, START, START + HOUR, token=TOKEN)
    assert_complete(sim, got, names, START, START + HOUR)
    assert got.retries == 0


async def test_random_faults_at_a_rate_are_absorbed(sim: Sim, make_client: ClientFactory) -> None:
    sim.faults.configure(
        error_rate=0.1, drop_rate=0.05, rate_limit_rate=0.05, retry_after_s=0.01,
        path_contains=PAGINATED,
    )  # fmt: skip
    names = some_points(sim, 6)
    client = make_client(origin_window_s=1800, origin_page_size=100, origin_max_attempts=10)
    got = await client.fetch_samples(SITE, names, START, START + 6 * HOUR, token=TOKEN)
    assert_complete(sim, got, names, START, START + 6 * HOUR)
    assert got.retries > 0
    assert got.requests == len(sim.log.matching(PAGINATED))


# --- errors past the budget, and errors never retried ----------------------------------------


async def test_past_the_budget_is_origin_unavailable(sim: Sim, make_client: ClientFactory) -> None:
    sim.faults.configure(path_contains=PAGINATED)
    sim.faults.script("503", "500", "503")
    with pytest.raises(OriginUnavailable) as info:
        await make_client(origin_max_attempts=3).fetch_samples(
            SITE, [sim.site.names[0]], START, START + HOUR, token=TOKEN
        )
    err = info.value
    assert err.status == 502 and err.code == "origin_unavailable"
    assert err.origin_status == 503 and "3 attempts" in err.reason
    assert len(sim.log) == 3


async def test_timeouts_past_the_budget_are_origin_timeout(
    sim: Sim, make_client: ClientFactory
) -> None:
    sim.faults.configure(hang_s=3.0, path_contains=PAGINATED)
    sim.faults.script("hang", "hang")
    client = make_client(origin_max_attempts=2, origin_read_timeout_s=0.2, origin_timeout_s=0.4)
    with pytest.raises(OriginTimeout) as info:
        await client.fetch_samples(SITE, [sim.site.names[0]], START, START + HOUR, token=TOKEN)
    assert info.value.status == 504 and info.value.origin_status is None


async def test_drops_past_the_budget(sim: Sim, make_client: ClientFactory) -> None:
    sim.faults.configure(path_contains=PAGINATED)
    sim.faults.script("drop", "drop")
    with pytest.raises(OriginUnavailable, match="2 attempts"):
        await make_client(origin_max_attempts=2, origin_page_size=1000).fetch_samples(
            SITE, some_points(sim, 4), START, START + HOUR, token=TOKEN
        )


@pytest.mark.parametrize(
    ("fault", "error", "status", "code"),
    [
        ("401", OriginAuthError, 401, "unauthorized"),
        ("403", OriginAuthError, 403, "forbidden"),
        ("404", OriginNotFound, 404, "not_found"),
        ("422", OriginBadRequest, 400, "bad_request"),
    ],
)
async def test_client_errors_are_not_retried(
    sim: Sim,
    make_client: ClientFactory,
    fault: Any,
    error: type[OriginError],
    status: int,
    code: str,
) -> None:
    sim.faults.configure(path_contains=PAGINATED)
    sim.faults.script(fault)
    with pytest.raises(error) as info:
        await make_client().fetch_samples(
            SITE, [sim.site.names[0]], START, START + HOUR, token=TOKEN
        )
    err = info.value
    assert (err.status, err.code, err.origin_status) == (status, code, int(fault))
    assert err.to_body()["error"] == code and "Injected fault" in err.reason
    assert len(sim.log) == 1


async def test_real_auth_and_not_found(make_simulator: SimFactory) -> None:
    sim = await make_simulator(
        mode="idealised",  # the real API answers a bad token 500 and an unknown site 403
        sites=(SITE, "ses_lincoln"),
        vav_count=2,
        tokens={"alpha": frozenset({SITE})},
    )
    async with OriginClient(origin_settings(sim.url)) as client:
        with pytest.raises(OriginAuthError) as info:
            await client.fetch_samples(SITE, None, START, START + HOUR, token="wrong")
        assert info.value.status == 401
        with pytest.raises(OriginAuthError) as info:
            await client.fetch_samples("ses_lincoln", None, START, START + HOUR, token="alpha")
        assert info.value.status == 403
        with pytest.raises(OriginNotFound):
            await client.list_points("atlantis", token="alpha")
    assert all(r.fault is None for r in sim.log.records) and len(sim.log) == 3


async def test_nothing_listening_is_origin_unavailable() -> None:
    server = TestServer(web.Application())
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    await server.close()
    async with OriginClient(origin_settings(url, origin_max_attempts=2)) as client:
        with pytest.raises(OriginUnavailable, match="connection"):
            await client.fetch_samples(SITE, ["x"], START, START + HOUR, token=TOKEN)


async def test_one_failing_window_cancels_the_others(sim: Sim, make_client: ClientFactory) -> None:
    sim.faults.configure(latency_s=0.05, path_contains=PAGINATED)
    sim.faults.script("404")
    client = make_client(origin_window_s=3600, origin_concurrency=2)
    with pytest.raises(OriginNotFound):
        await client.fetch_samples(SITE, some_points(sim, 2), START, START + 24 * HOUR, token=TOKEN)
    await asyncio.sleep(0.2)
    # Without cancelling, the other windows would go on two at a time (about 8 more
    # in 0.2 s); cancelled, only the requests in flight with the 404 were answered.
    assert len(sim.log.matching(PAGINATED)) <= 3


# --- an origin that breaks the pagination contract ---------------------------------------------

PageHandler = Callable[[web.Request], web.Response]


async def _fake_origin(aiohttp_server: Any, pages: list[bytes]) -> str:
    """A real HTTP server answering each paginated request with the next crafted page."""
    served = iter(pages)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=next(served), content_type="application/json")

    app = web.Application()
    app.router.add_get("/sites/{site}/timeseries/paginated", handler)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


def _page(samples: list[tuple[str, str, str]], cursor: str | None, more: bool) -> bytes:
    import json

    body = {
        "point_samples": [{"name": n, "value": v, "time": t} for n, v, t in samples],
        "next_cursor": cursor,
        "has_more": more,
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("pages", "message"),
    [
        ([_page([("a", "1", "2024-03-04T00:00:00Z")], None, True)], "without a next_cursor"),
        (
            [
                _page([("a", "1", "2024-03-04T00:00:00Z")], "c1", True),
                _page([("a", "2", "2024-03-04T00:01:00Z")], "c1", True),
            ],
            "repeated a cursor",
        ),
        ([_page([], f"c{i}", True) for i in range(5)], "more than 3 pages"),
    ],
    ids=["no-cursor", "cursor-loop", "page-bound"],
)
async def test_pagination_contract_violations_are_loud(
    aiohttp_server: Any, pages: list[bytes], message: str
) -> None:
    url = await _fake_origin(aiohttp_server, pages)
    async with OriginClient(origin_settings(url, origin_max_pages=3)) as client:
        with pytest.raises(OriginUnavailable, match=message):
            await client.fetch_samples(SITE, ["a"], START, START + HOUR, token=TOKEN)


async def test_duplicates_and_strays_from_the_origin_are_cleaned(aiohttp_server: Any) -> None:
    pages = [
        _page(
            [
                ("a", "1", "2024-03-04T00:00:00Z"),
                ("b", "5", "2024-03-04T00:00:00Z"),
                ("stray", "9", "2024-03-04T00:00:00Z"),
                ("a", "1.5", "2024-03-04T00:00:00Z"),
                ("a", "3", "2024-03-04T02:00:00Z"),
            ],
            "next",
            True,
        ),
        _page([("a", "2", "2024-03-04T00:30:00Z")], None, False),
    ]
    url = await _fake_origin(aiohttp_server, pages)
    async with OriginClient(origin_settings(url)) as client:
        got = await client.fetch_samples(SITE, ["b", "a"], START, START + HOUR, token=TOKEN)
    assert got.names == ("b", "a")
    assert got.point("a")[1].tolist() == [1.5, 2.0]  # last duplicate wins, 02:00 is outside
    assert got.point("b")[1].tolist() == [5.0]
    assert got.samples == 6 and got.pages == 2  # the stray was sent, so it counts as paid for


# --- a page that does not parse -------------------------------------------------------------


async def test_garbled_page_is_an_origin_error_not_retried(
    sim: Sim, make_client: ClientFactory
) -> None:
    """A 200 whose body is not a page is the origin's answer, not a transport failure."""
    sim.faults.configure(path_contains=PAGINATED)
    sim.faults.script("corrupt")  # half the body, complete by its Content-Length
    client = make_client(origin_max_attempts=4, origin_page_size=1000)
    with pytest.raises(OriginUnavailable, match="origin sent a page that does not parse") as info:
        await client.fetch_samples(SITE, some_points(sim, 2), START, START + HOUR, token=TOKEN)
    err = info.value
    assert err.origin_status == 200 and err.status == 502
    assert "invalid page at byte" in err.reason and "attempts" not in err.reason
    assert isinstance(err.__cause__, PageParseError)
    assert [r.fault for r in sim.log.matching(PAGINATED)] == ["corrupt"]  # asked once


@pytest.mark.parametrize(
    "garbled",
    [
        b'{"point_samples": [{"name": "a", "value": "1", "time": "2024-03-04T00:0',
        b"<html>502 Bad Gateway</html>",
        b'{"point_samples": {}, "has_more": false}',
        b"",
    ],
    ids=["cut-off", "html", "wrong-shape", "empty"],
)
async def test_garbled_page_from_a_loopback_origin(aiohttp_server: Any, garbled: bytes) -> None:
    """A good first page, then a garbled one: one request each, then OriginUnavailable."""
    requests = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal requests
        requests += 1
        if "cursor" not in request.query:
            body = _page([("a", "1", "2024-03-04T00:00:00Z")], "c1", True)
        else:
            body = garbled
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/sites/{site}/timeseries/paginated", handler)
    server = await aiohttp_server(app, host="127.0.0.1")
    url = str(server.make_url("")).rstrip("/")
    async with OriginClient(origin_settings(url, origin_max_attempts=3)) as client:
        with pytest.raises(OriginUnavailable, match="does not parse") as info:
            await client.fetch_samples(SITE, ["a"], START, START + HOUR, token=TOKEN)
    assert requests == 2  # the garbled page was not asked for again
    assert info.value.origin_status == 200
    assert isinstance(info.value.__cause__, PageParseError)


# --- settings and errors the client relies on -------------------------------------------------


def test_settings_from_env_parse_and_validate() -> None:
    env = {
        "ACECHART_ORIGIN_URL": "http://origin:8081",
        "ACECHART_ORIGIN_CONCURRENCY": "3",
        "ACECHART_ORIGIN_TIMEOUT_S": "2.5",
        "ACECHART_SIMULATOR_SITES": "a_site, b_site",  # the simulator's own (test_simulator)
        "UNRELATED": "x",
    }
    s = Settings.from_env(env, origin_concurrency=4)
    assert s.origin_url == "http://origin:8081" and s.origin_timeout_s == 2.5
    assert s.origin_concurrency == 4  # overrides win over the environment
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(
    ("env", "overrides", "named"),
    [
        ({"ACECHART_ORIGIN_CONCURRENCY": "many"}, {}, "ACECHART_ORIGIN_CONCURRENCY"),
        ({"ACECHART_ORIGIN_CONCURRENCY": "0"}, {}, "ACECHART_ORIGIN_CONCURRENCY"),
        ({"ACECHART_ORIGIN_PAGE_SIZE": "2000"}, {}, "ACECHART_ORIGIN_PAGE_SIZE"),
        ({"ACECHART_ORIGIN_URL": "ftp://x"}, {}, "ACECHART_ORIGIN_URL"),
        ({}, {"origin_max_attempts": -1}, "ACECHART_ORIGIN_MAX_ATTEMPTS"),
    ],
)
def test_invalid_settings_name_the_variable(
    env: dict[str, str], overrides: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError, match=named) as info:
        Settings.from_env(env, **overrides)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.from_env({}, no_such_setting=1)


def test_error_bodies_follow_the_seed() -> None:
    assert RateLimited("slow down", retry_after=59.2).to_body() == {
        "error": "rate_limit_exceeded",
        "message": "slow down",
        "retryAfter": 60,
    }
    too_large = RequestTooLarge("too big", estimated_samples=2_500_000, suggestions=["narrow"])
    assert (too_large.status, too_large.to_body()["estimatedSamples"]) == (413, 2_500_000)
    bad = BadRequest("start must be ISO-8601", parameter="start")
    assert bad.to_body() == {
        "error": "bad_request",
        "message": "start must be ISO-8601",
        "parameter": "start",
    }
    unavailable = OriginUnavailable("origin answered 503", origin_status=503)
    assert (unavailable.status, unavailable.to_body()["originStatus"]) == (502, 503)
    assert OriginTimeout("late").status == 504
    for cls, status, code in (
        (Unauthorized, 401, "unauthorized"),
        (Forbidden, 403, "forbidden"),
        (NotFound, 404, "not_found"),
    ):
        assert (cls.status, cls.code, cls("x").to_body()["error"]) == (status, code, code)


@pytest.mark.parametrize(
    "body",
    [
        b'{"pages": null, "items": []}',
        b'{"items": null}',
        b'{"pages": "two", "items": []}',
        b'{"pages": 1000000000, "total": 3, "items": []}',
        b'{"items": [1, 2]}',
    ],
    ids=["null-pages", "null-items", "text-pages", "absurd-pages", "non-object-items"],
)
async def test_malformed_listings_are_origin_errors(aiohttp_server: Any, body: bytes) -> None:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/sites/{site}/configured_points", handler)
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    async with OriginClient(origin_settings(url, origin_max_attempts=2)) as client:
        with pytest.raises(OriginUnavailable):
            await client.list_points(SITE, token=TOKEN)
