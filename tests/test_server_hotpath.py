"""The cached-answer path: a GET's parse is remembered by URL and the headers it reads, and
remembering it changes no answer (format by Accept, async by Prefer, errors every time)."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from acechart.server.keys import ACCESS, PARSED
from tests.conftest import NOW_MS, SITE, Sim, SimFactory
from tests.server_helpers import DAY, ClientFactory, Service, query, start_service


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path) -> Service:
    return await start_service(aiohttp_client, sim, tmp_path)


async def test_a_remembered_parse_answers_like_a_fresh_one(svc: Service) -> None:
    params = query(svc.points(2), NOW_MS - 30 * DAY, NOW_MS - 29 * DAY)
    first = await svc.get("/api/timeseries", params)
    assert first.status == 200 and len(svc.app[PARSED]) == 1
    again = await svc.get("/api/timeseries", params)
    assert again.headers["X-Cache-Status"] == "HIT"
    assert await again.read() == await first.read()
    assert len(svc.app[PARSED]) == 1
    # The same URL with another Accept is another parse, and another format.
    packed = await svc.get("/api/timeseries", params, headers={"Accept": "application/x-msgpack"})
    assert packed.headers["Content-Type"].startswith("application/x-msgpack")
    assert msgpack.unpackb(await packed.read())["series"][0]["name"] == svc.points(2)[0]
    assert len(svc.app[PARSED]) == 2
    # Prefer: respond-async is read too: the same URL with it is its own entry.
    preferring = await svc.get("/api/timeseries", params, headers={"Prefer": "respond-async"})
    assert preferring.status == 200 and len(svc.app[PARSED]) == 3


async def test_bad_parameters_are_refused_every_time(svc: Service) -> None:
    params = {**query(svc.points(1), NOW_MS - 30 * DAY, NOW_MS - 29 * DAY), "start": "soon"}
    for _ in range(2):
        bad = await svc.get("/api/timeseries", params)
        assert bad.status == 400 and (await bad.json())["parameter"] == "start"
    assert len(svc.app[PARSED]) == 0


async def test_a_confirmed_token_is_still_limited_to_its_sites(
    aiohttp_client: ClientFactory, make_simulator: SimFactory, tmp_path: Path
) -> None:
    sim = await make_simulator(
        mode="idealised", tokens={"tok-a": frozenset({SITE}), "tok-b": frozenset()}
    )
    svc = await start_service(aiohttp_client, sim, tmp_path)
    params = query(svc.points(1), NOW_MS - 30 * DAY, NOW_MS - 29 * DAY)
    assert (await svc.get("/api/timeseries", params, token="tok-a")).status == 200
    access = svc.app[ACCESS]
    assert access.confirmed(access.fingerprint("tok-a"), SITE)
    assert not access.confirmed(access.fingerprint("tok-b"), SITE)
    # The edge holds the answer, the parse is remembered: another token still gets a 403.
    assert (await svc.get("/api/timeseries", params, token="tok-b")).status == 403
