"""`acechart serve` in front of `acechart simulate` in its realistic mode, as processes.

The simulator behaves as the real ACE API does (no point filter on the paginated
route, one timestamp per collection run, naive microsecond times, the stalling
cursor, 500 for an unknown token, 403 `null` for a site that is not yours), and
every answer of the service is checked sample by sample against the simulator's
own generator, read directly in this process with the same seed and "now".
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from acechart.simulator.datagen import DataSource
from acechart.times import format_time, parse_iso_ms
from tests.real_processes import free_port, wait_listening

SITE = "ses_falls_city"
OTHER_SITE = "ses_other"
NOW = "2025-01-01T00:00:00Z"
NOW_MS = parse_iso_ms(NOW)
DAY = 86_400_000
TOKEN = "field-token"
TOKENS = f"{TOKEN}={SITE};other-token={OTHER_SITE}"


@dataclass
class Stack:
    origin: str
    services: dict[str, str]
    data: DataSource

    def expected(self, point: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.data.expected(SITE, point, start, end - 1)
        return rows.t_ms, rows.value


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One realistic simulator and two services: one choosing strategies itself, one forced
    to site-wide passes in 10-row pages (so pages start and end inside one timestamp)."""
    base = tmp_path_factory.mktemp("real-api")
    procs: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACECHART_")}
    sim_port = free_port()
    sim_env = dict(
        env,
        ACECHART_SIMULATOR_MODE="realistic",
        ACECHART_SIMULATOR_NOW=NOW,
        ACECHART_SIMULATOR_SITES=f"{SITE},{OTHER_SITE}",
        ACECHART_SIMULATOR_TOKENS=TOKENS,
    )
    cmd = [sys.executable, "-m", "acechart", "--log-level", "WARNING"]
    try:
        sim = subprocess.Popen([*cmd, "simulate", "--port", str(sim_port)], env=sim_env)
        procs.append(sim)
        wait_listening(sim_port, sim, "acechart simulate")
        origin = f"http://127.0.0.1:{sim_port}"
        services = {}
        for name, extra in {
            "auto": {},
            "site_wide": {
                "ACECHART_ORIGIN_STRATEGY": "site_wide",
                "ACECHART_ORIGIN_PAGE_SIZE": "10",
                "ACECHART_ORIGIN_SITE_PAGE_SIZE": "10",
                # Hundreds of 10-row pages: at the seed's 0.5 s a round (a remote origin)
                # that is past the request budget; this origin is local, a round is ~1 ms.
                "ACECHART_ORIGIN_ESTIMATE_ROUND_S": "0.01",
            },
        }.items():
            port = free_port()
            svc_env = dict(
                env,
                ACECHART_DATA_DIR=str(Path(base) / name),
                ACECHART_RATE_LIMIT_PER_MINUTE="0",
                ACECHART_ORIGIN_RETRY_BASE_S="0.01",
                **extra,
            )
            svc = subprocess.Popen(
                [*cmd, "serve", "--port", str(port), "--origin", origin], env=svc_env
            )
            procs.append(svc)
            wait_listening(port, svc, f"acechart serve ({name})")
            services[name] = f"http://127.0.0.1:{port}"
        data = DataSource((SITE, OTHER_SITE), seed=1, vav_count=36)
        yield Stack(origin, services, data)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


async def get(url: str, params: dict[str, Any], token: str = TOKEN) -> tuple[int, Any, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, params=params, headers={"X-ACE-Token": token}) as resp,
    ):
        body = await resp.json(content_type=None)
        return resp.status, body, resp.headers


def ts_params(points: list[str], start: int, end: int) -> dict[str, str]:
    return {
        "site": SITE,
        "points": ",".join(points),
        "start": format_time(start),
        "end": format_time(end),
    }


def check(stack: Stack, body: Any, start: int, end: int) -> None:
    for series in body["series"]:
        data = np.array(series["data"], dtype=np.float64).reshape(-1, 2)
        ts, values = stack.expected(series["name"], start, end)
        np.testing.assert_array_equal(data[:, 0].astype(np.int64), ts)
        np.testing.assert_array_equal(data[:, 1], values)


def names(stack: Stack) -> list[str]:
    return list(stack.data.sites[SITE].names)


async def test_a_few_points_point_by_point(stack: Stack) -> None:
    every = names(stack)
    start = NOW_MS - 10 * DAY
    status, body, headers = await get(
        f"{stack.services['auto']}/api/timeseries", ts_params(every[:2], start, start + 2 * DAY)
    )
    assert status == 200, body
    assert headers["X-Cache-Status"] == "MISS"
    check(stack, body, start, start + 2 * DAY)
    assert body["metadata"]["totalSamples"] == sum(len(s["data"]) for s in body["series"]) > 0


async def test_site_wide_pass_in_small_pages_harvests_the_site(stack: Stack) -> None:
    """10-row pages over a site whose points share timestamps: the API's cursor repeats
    inside a timestamp and the client repairs it; the pass's other points are harvested."""
    every = names(stack)
    url = f"{stack.services['site_wide']}/api/timeseries"
    start = NOW_MS - 20 * DAY
    end = start + 15 * 60_000
    status, body, _ = await get(url, ts_params(every[:2], start, end))
    assert status == 200, body
    check(stack, body, start, end)
    status, body, headers = await get(url, ts_params(every[50:60], start, end))
    assert status == 200, body
    assert headers["X-Cache-Status"] == "HIT" and headers["X-Cache-Source"] == "R2"
    check(stack, body, start, end)


async def test_an_unknown_token_is_401_not_a_502(stack: Stack) -> None:
    t0 = time.monotonic()
    status, body, _ = await get(
        f"{stack.services['auto']}/api/timeseries",
        ts_params(names(stack)[:1], NOW_MS - DAY, NOW_MS),
        token="not-a-token",
    )
    assert status == 401, body
    assert body["error"] == "unauthorized" and "message" in body
    assert time.monotonic() - t0 < 5


async def test_a_site_that_is_not_yours_is_403(stack: Stack) -> None:
    params = ts_params(names(stack)[:1], NOW_MS - DAY, NOW_MS)
    params["site"] = OTHER_SITE
    status, body, _ = await get(f"{stack.services['auto']}/api/timeseries", params)
    assert status == 403, body
    assert body["error"] == "forbidden" and OTHER_SITE in body["message"]
