"""Tokens, per-site access, rate limits and CORS over a real service.

The simulator checks tokens per site like the ACE API: `tok-a` reads only
`ses_falls_city`, `tok-b` only `other_site`. A token the origin refuses for a
site must never see that site's data, even when it sits in the edge cache.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from acechart.server.keys import ACCESS
from tests.conftest import NOW_MS, SITE, SimFactory
from tests.server_helpers import DAY, ClientFactory, Service, query, start_service

OTHER = "other_site"


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path) -> Service:
    sim = await make_simulator(
        mode="idealised",  # as `sim`: the origin client still assumes that API
        sites=(SITE, OTHER),
        tokens={"tok-a": frozenset({SITE}), "tok-b": frozenset({OTHER})},
    )
    return await start_service(aiohttp_client, sim, tmp_path, rate_limit_per_minute=0)


async def test_missing_and_invalid_tokens_are_401(svc: Service) -> None:
    params = query(svc.points(1), NOW_MS - 10 * DAY, NOW_MS - 9 * DAY)
    missing = await svc.get("/api/timeseries", params, token=None)
    assert missing.status == 401
    assert (await missing.json())["error"] == "unauthorized"
    bad = await svc.get("/api/timeseries", params, token="nope")
    assert bad.status == 401
    for path in ("/api/points", "/api/aggregations"):
        assert (await svc.get(path, params, token=None)).status == 401


async def test_bearer_and_x_ace_token_are_both_accepted(svc: Service) -> None:
    params = query(svc.points(1), NOW_MS - 10 * DAY, NOW_MS - 9 * DAY)
    bearer = await svc.get(
        "/api/timeseries", params, token=None, headers={"Authorization": "Bearer tok-a"}
    )
    assert bearer.status == 200
    header = await svc.get("/api/timeseries", params, token="tok-a")
    assert header.status == 200


async def test_a_refused_token_never_gets_cached_data(svc: Service) -> None:
    params = query(svc.points(1), NOW_MS - 10 * DAY, NOW_MS - 9 * DAY)
    allowed = await svc.get("/api/timeseries", params, token="tok-a")
    assert allowed.status == 200
    assert (await svc.get("/api/timeseries", params, token="tok-a")).headers[
        "X-Cache-Source"
    ] == "EDGE"
    for path in ("/api/timeseries", "/api/aggregations", "/api/points"):
        for _ in range(2):  # the refusal is remembered, and still refuses
            refused = await svc.get(path, params, token="tok-b")
            assert refused.status == 403, path
            body = await refused.json()
            assert set(body) == {"error", "message", "siteId"}
            assert body["error"] == "forbidden"
            assert "X-Cache-Status" not in refused.headers
    # tok-b may read its own site.
    other = await svc.get("/api/points", {"site": OTHER}, token="tok-b")
    assert other.status == 200 and (await other.json())["points"]
    unknown = await svc.get("/api/points", {"site": "no_such_site"}, token="tok-a")
    assert unknown.status == 404


async def test_site_checks_are_cached_under_an_hmac(
    svc: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    params = query(svc.points(1), NOW_MS - 10 * DAY, NOW_MS - 9 * DAY)
    for _ in range(3):
        assert (await svc.get("/api/timeseries", params, token="tok-a")).status == 200
    site_checks = [r for r in svc.sim.log.records if r.path == f"/sites/{SITE}"]
    assert len(site_checks) == 1
    access = svc.app[ACCESS]
    assert all("tok-a" not in key[0] for key in access._verdicts)
    metrics = await (await svc.get("/metrics", token=None)).text()
    logged = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    for text in (metrics, logged):
        assert "tok-a" not in text and "tok-b" not in text
    assert access.fingerprint("tok-a")[:12] in logged  # the caller is still traceable


async def test_rate_limit_per_token_and_endpoint(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> None:
    sim = await make_simulator(
        mode="idealised", tokens={"tok-a": frozenset({SITE}), "tok-c": frozenset({SITE})}
    )
    svc = await start_service(aiohttp_client, sim, tmp_path, rate_limit_per_minute=3)
    params = query(svc.points(1), NOW_MS - 10 * DAY, NOW_MS - 9 * DAY)
    for _ in range(3):
        assert (await svc.get("/api/timeseries", params, token="tok-a")).status == 200
    limited = await svc.get("/api/timeseries", params, token="tok-a")
    assert limited.status == 429
    body = await limited.json()
    assert body["error"] == "rate_limit_exceeded"
    assert body["retryAfter"] == int(limited.headers["Retry-After"]) == 20
    assert "20 seconds" in body["message"]
    assert (await svc.get("/api/points", {"site": SITE}, token="tok-a")).status == 200
    assert (await svc.get("/api/timeseries", params, token="tok-c")).status == 200
    assert (await svc.get("/healthz", token="tok-a")).status == 200


async def test_cors_preflight_and_headers(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> None:
    sim = await make_simulator(mode="idealised")
    svc = await start_service(aiohttp_client, sim, tmp_path, cors_origins=("https://dash.example",))
    preflight = await svc.client.options(
        "/api/timeseries",
        headers={
            "Origin": "https://dash.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-ACE-Token",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://dash.example"
    assert "X-ACE-Token" in preflight.headers["Access-Control-Allow-Headers"]
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]

    params = query(svc.points(1), NOW_MS - 10 * DAY, NOW_MS - 9 * DAY)
    resp = await svc.get("/api/timeseries", params, headers={"Origin": "https://dash.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "https://dash.example"
    assert "X-Cache-Status" in resp.headers["Access-Control-Expose-Headers"]
    assert "Origin" in resp.headers.getall("Vary")
    err = await svc.get("/api/timeseries", {}, headers={"Origin": "https://dash.example"})
    assert (
        err.status == 400 and err.headers["Access-Control-Allow-Origin"] == "https://dash.example"
    )
    stranger = await svc.get("/api/timeseries", params, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in stranger.headers
    bad_preflight = await svc.client.options(
        "/api/timeseries",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in bad_preflight.headers


async def test_a_fingerprint_is_the_token_s_keyed_mac(svc: Service) -> None:
    import hashlib

    access = svc.app[ACCESS]
    for token in ("tok-a", "tok-b", "x" * 300):
        expected = hashlib.blake2b(token.encode(), key=access._secret, digest_size=32)
        assert access.fingerprint(token) == expected.hexdigest()
    assert access.fingerprint("tok-a") != access.fingerprint("tok-b")
