"""Unknown tokens cannot drive origin traffic: checks are bounded per client and overall.

Before, every fresh token cost one origin request (`GET /sites/{site}`), whatever the
rate: 600 made-up tokens were 600 origin calls. Now a token the origin never confirmed
may be checked `auth_unconfirmed_per_minute` times a minute per client address, all
checks together at most `auth_checks_per_s` a second, and concurrent checks of one
(token, site) share one question. Past a bound: the seed's 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest

from acechart.server.keys import ACCESS
from tests.conftest import NOW_MS, SITE, TOKEN, SimFactory
from tests.server_helpers import DAY, ClientFactory, Clock, Service, query, start_service


async def _service(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path, **overrides: object
) -> tuple[Service, Clock]:
    sim = await make_simulator(mode="idealised")
    svc = await start_service(aiohttp_client, sim, tmp_path, rate_limit_per_minute=0, **overrides)
    clock = Clock()
    access = svc.app[ACCESS]
    access.clock = clock
    access._checks.clock = clock
    access._checks._last = clock()
    access._unconfirmed.clock = clock
    return svc, clock


def _site_checks(svc: Service) -> int:
    return len([r for r in svc.sim.log.records if r.path.startswith("/sites/")])


async def _burst(
    svc: Service, tokens: list[str], headers: dict[str, str] | None = None
) -> list[int]:
    """GET /api/points for each token, 50 at a time; the statuses."""
    statuses: list[int] = []
    for i in range(0, len(tokens), 50):
        batch = [
            svc.get("/api/points", {"site": SITE}, token=t, headers=headers)
            for t in tokens[i : i + 50]
        ]
        for resp in await asyncio.gather(*batch):
            statuses.append(resp.status)
            if resp.status == 429:
                body = await resp.json()
                assert body["error"] == "rate_limit_exceeded"
                assert body["message"].startswith("Too many requests. Please try again in")
                assert int(resp.headers["Retry-After"]) == body["retryAfter"] >= 1
            resp.release()
    return statuses


async def test_600_fresh_tokens_do_not_make_600_origin_calls(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> None:
    svc, clock = await _service(
        aiohttp_client,
        make_simulator,
        tmp_path,
        auth_unconfirmed_per_minute=20,
        auth_checks_per_s=1000,
        auth_cache_s=30,
    )
    assert (await svc.get("/api/points", {"site": SITE}, token=TOKEN)).status == 200
    svc.sim.log.clear()
    clock.advance(31)  # its yes has expired: the next request asks the origin again
    tokens = [f"fresh-{secrets.token_hex(8)}" for _ in range(600)]
    statuses = await asyncio.wait_for(_burst(svc, tokens), 60)
    # The first 20 were asked about (and refused); nothing more reached the origin.
    assert statuses.count(401) == 20 and statuses.count(429) == 580
    assert _site_checks(svc) == 20
    # A token the origin confirmed before is not held back by strangers from its address.
    ok = await svc.get("/api/points", {"site": SITE}, token=TOKEN)
    assert ok.status == 200 and _site_checks(svc) == 21


async def test_a_global_bound_on_origin_checks(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> None:
    svc, clock = await _service(
        aiohttp_client,
        make_simulator,
        tmp_path,
        auth_unconfirmed_per_minute=0,  # per client: unlimited; only the global bound holds
        auth_checks_per_s=5,
    )
    statuses = await _burst(svc, [f"t-{i}" for i in range(40)])
    assert statuses.count(401) == 5 and statuses.count(429) == 35
    assert _site_checks(svc) == 5
    clock.advance(1.0)  # a second later, five more
    statuses = await _burst(svc, [f"u-{i}" for i in range(10)])
    assert statuses.count(401) == 5 and _site_checks(svc) == 10


async def test_a_confirmed_pair_keeps_its_earlier_yes_when_the_bound_is_spent(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> None:
    svc, clock = await _service(
        aiohttp_client, make_simulator, tmp_path, auth_checks_per_s=1, auth_cache_s=10
    )
    assert (await svc.get("/api/points", {"site": SITE})).status == 200
    clock.advance(11)  # the yes has expired; a stranger takes the one check there is
    await _burst(svc, ["stranger"])
    resp = await svc.get("/api/points", {"site": SITE})
    assert resp.status == 200  # within the grace period the earlier yes still holds


async def test_concurrent_checks_of_one_pair_share_one_question(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> None:
    svc, _ = await _service(aiohttp_client, make_simulator, tmp_path, auth_unconfirmed_per_minute=2)
    svc.sim.faults.configure(latency_s=0.2, path_contains="/sites/")
    statuses = await _burst(svc, ["same-unknown-token"] * 30)
    assert statuses == [401] * 30
    assert _site_checks(svc) == 1


async def test_forwarded_for_counts_only_from_a_trusted_proxy(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> None:
    # The test client connects from 127.0.0.1.
    untrusted, _ = await _service(
        aiohttp_client, make_simulator, tmp_path / "a", auth_unconfirmed_per_minute=3
    )
    spoofed = [
        await untrusted.get(
            "/api/points",
            {"site": SITE},
            token=f"x-{i}",
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
        )
        for i in range(6)
    ]
    assert [r.status for r in spoofed] == [401] * 3 + [429] * 3  # one client, however named

    trusted, _ = await _service(
        aiohttp_client,
        make_simulator,
        tmp_path / "b",
        auth_unconfirmed_per_minute=3,
        server_trusted_proxies=("127.0.0.1",),
    )
    first = await _burst(trusted, [f"a-{i}" for i in range(4)], {"X-Forwarded-For": "198.51.100.7"})
    second = await _burst(
        trusted, [f"b-{i}" for i in range(4)], {"X-Forwarded-For": "9.9.9.9, 198.51.100.8"}
    )
    assert first == [401] * 3 + [429] and second == [401] * 3 + [429]


async def test_data_routes_and_jobs_share_the_bound(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> None:
    svc, _ = await _service(aiohttp_client, make_simulator, tmp_path, auth_unconfirmed_per_minute=2)
    params = query(svc.points(1), NOW_MS - 2 * DAY, NOW_MS - DAY)
    assert (await svc.get("/api/timeseries", params, token="n1")).status == 401
    assert (await svc.get("/api/aggregations", params, token="n2")).status == 401
    job = {
        "siteId": SITE,
        "pointNames": svc.points(1),
        "startTime": "2024-06-01",
        "endTime": "2024-06-02",
    }
    resp = await svc.client.post("/api/jobs", json=job, headers={"X-ACE-Token": "n3"})
    assert resp.status == 429
    assert (await svc.get(f"/api/sites/{SITE}", token="n4")).status == 429
    assert _site_checks(svc) == 2


@pytest.mark.parametrize("value", ["not-an-address", "10.0.0.0/33"])
def test_trusted_proxies_must_be_addresses(value: str) -> None:
    from acechart.errors import ConfigError
    from acechart.settings import Settings

    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        Settings.from_env({"ACECHART_SERVER_TRUSTED_PROXIES": value})
