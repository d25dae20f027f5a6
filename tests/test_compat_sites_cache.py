"""`/api/sites` costs the origin one listing per token and TTL, and fresh tokens are bounded.

Before, every fresh token (and every repeat of a refused one) made an origin call
(`GET /sites`) however fast they came: the listing was outside the bounds on origin
token checks. Now a token's listing is held per fingerprint for `compat_sites_ttl_s`,
a refusal for `auth_refusal_cache_s`, and a listing not held is asked only within
`auth_unconfirmed_per_minute` (per client, for tokens the origin never confirmed) and
`auth_checks_per_s`; past them the seed's 429. Counted in the simulator's request log.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from acechart.server.keys import ACCESS, SITES
from tests.conftest import SITE, TOKEN, SimFactory
from tests.server_helpers import ClientFactory, Clock, Service, start_service


async def _service(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path, **overrides: object
) -> tuple[Service, Clock]:
    sim = await make_simulator()  # the realistic API: a bad token is its 500
    settings = {"rate_limit_per_minute": 0, "auth_checks_per_s": 1000.0, **overrides}
    svc = await start_service(aiohttp_client, sim, tmp_path, **settings)
    clock = Clock()
    access = svc.app[ACCESS]
    access.clock = clock
    access._checks.clock = clock
    access._checks._last = clock()
    access._unconfirmed.clock = clock
    svc.app[SITES].clock = clock
    return svc, clock


def _listings(svc: Service) -> int:
    return len([r for r in svc.sim.log.records if r.path == "/sites"])


async def test_a_token_listing_is_asked_once_per_ttl(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> None:
    svc, clock = await _service(aiohttp_client, make_simulator, tmp_path, compat_sites_ttl_s=60)
    first = await svc.get("/api/sites", {"per_page": "1"})
    assert first.status == 200
    body = await first.json()
    assert [s["name"] for s in body["items"]] == [SITE]
    asked = _listings(svc)
    assert asked >= 1  # one walk (of every page of the origin's listing)
    for page in ("1", "2"):
        assert (await svc.get("/api/sites", {"page": page, "per_page": "1"})).status == 200
    assert _listings(svc) == asked
    clock.advance(61)
    assert (await svc.get("/api/sites")).status == 200
    assert _listings(svc) == 2 * asked


async def test_a_refused_token_is_remembered_as_refused(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> None:
    svc, clock = await _service(aiohttp_client, make_simulator, tmp_path, auth_refusal_cache_s=30)
    bad = "made-up-token"
    first = await svc.get("/api/sites", token=bad)
    assert first.status == 401
    asked = len(svc.sim.log.records)
    assert asked >= 1
    for _ in range(5):
        again = await svc.get("/api/sites", token=bad)
        assert again.status == 401
        assert (await again.json())["error"] == "unauthorized"
    assert len(svc.sim.log.records) == asked  # no origin call for a known refusal
    clock.advance(31)
    assert (await svc.get("/api/sites", token=bad)).status == 401
    assert len(svc.sim.log.records) > asked


async def test_fresh_tokens_cannot_drive_origin_listings(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> None:
    svc, clock = await _service(
        aiohttp_client, make_simulator, tmp_path, auth_unconfirmed_per_minute=10
    )
    assert (await svc.get("/api/sites", token=TOKEN)).status == 200  # one of the 10
    tokens = [f"fresh-{secrets.token_hex(8)}" for _ in range(200)]
    statuses: list[int] = []
    for i in range(0, len(tokens), 50):
        batch = [svc.get("/api/sites", token=t) for t in tokens[i : i + 50]]
        for resp in await asyncio.gather(*batch):
            statuses.append(resp.status)
            if resp.status == 429:
                assert (await resp.json())["error"] == "rate_limit_exceeded"
                assert int(resp.headers["Retry-After"]) >= 1
            resp.release()
    assert statuses.count(401) == 9 and statuses.count(429) == 191
    assert svc.app[SITES].origin_walks == 10
    # A token the origin confirmed is not limited as a made-up one, past its TTL too.
    clock.advance(61)
    assert (await svc.get("/api/sites", token=TOKEN)).status == 200
    assert (await svc.get("/api/points", {"site": SITE}, token=TOKEN)).status == 200
    assert svc.app[SITES].origin_walks == 11
