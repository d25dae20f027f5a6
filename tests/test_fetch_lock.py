"""Cross-instance single-flight of origin fetches (storage/locks.py through the engine).

Two real runtimes (each its own engine, database pool and Redis client) on one
PostgreSQL database, one Redis and one S3 bucket (moto), the simulator as
origin: what two `acechart serve` instances share.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from acechart.query import Query
from acechart.runtime import Runtime
from tests.backends import Backend
from tests.conftest import NOW_MS, SITE, TOKEN, Sim, origin_settings
from tests.storage_fixtures import ACCESS_KEY, REGION, SECRET_KEY, MotoS3

DAY = 86_400_000
Open = Callable[..., Awaitable[Runtime]]


def s3_settings(moto: MotoS3, prefix: str) -> dict[str, Any]:
    return {
        "object_store": "s3",
        "s3_endpoint_url": moto.endpoint_url,
        "s3_bucket": moto.bucket,
        "s3_region": REGION,
        "s3_access_key": ACCESS_KEY,
        "s3_secret_key": SECRET_KEY,
        "s3_prefix": prefix,
    }


@pytest.fixture
async def instances(
    shared: Backend, sim: Sim, moto_s3: MotoS3, tmp_path: Path
) -> AsyncIterator[Open]:
    opened: list[Runtime] = []
    prefix = f"lock-{uuid.uuid4().hex[:8]}/"

    async def open_one(name: str, **overrides: Any) -> Runtime:
        settings = origin_settings(
            sim.url,
            data_dir=str(tmp_path / name),
            instance_id=name,
            **{**s3_settings(moto_s3, prefix), **overrides},
        )
        runtime = await Runtime.open(settings)
        runtime.engine.clock = lambda: NOW_MS
        opened.append(runtime)
        return runtime

    yield open_one
    for runtime in opened:
        await runtime.close()


def cold_query(sim: Sim) -> Query:
    points = tuple(sim.site.names[:3])
    return Query(SITE, points, NOW_MS - 20 * DAY, NOW_MS - 18 * DAY)


def origin_requests(sim: Sim) -> int:
    return len(sim.log.matching("timeseries"))


async def test_a_query_on_one_instance_warms_the_other(instances: Open, sim: Sim) -> None:
    a, b = await instances("a"), await instances("b")
    q = cold_query(sim)
    first = await a.engine.query(q, token=TOKEN)
    asked = origin_requests(sim)
    assert asked > 0 and first.provenance.origin_requests > 0
    again = await b.engine.query(q, token=TOKEN)
    assert origin_requests(sim) == asked and again.provenance.origin_requests == 0
    assert "R2" in again.provenance.sources
    for x, y in zip(first.series, again.series, strict=True):
        np.testing.assert_array_equal(x.ts, y.ts)
        np.testing.assert_array_equal(x.values, y.values)


async def test_concurrent_identical_cold_queries_make_one_fetch(instances: Open, sim: Sim) -> None:
    a, b = await instances("a"), await instances("b")
    sim.faults.configure(latency_s=0.2)  # both are surely in flight together
    q = cold_query(sim)
    one, two = await asyncio.gather(a.engine.query(q, token=TOKEN), b.engine.query(q, token=TOKEN))
    fetched = [r.provenance.origin_requests for r in (one, two)]
    assert sorted(fetched)[0] == 0 and sorted(fetched)[1] == origin_requests(sim) > 0
    waited = [r.engine.locks.waited for r in (a, b) if r.engine.locks is not None]
    assert sum(waited) == 1
    for x, y in zip(one.series, two.series, strict=True):
        np.testing.assert_array_equal(x.values, y.values)


async def test_a_lock_taken_after_its_holder_let_go_rechecks_the_cache(
    instances: Open, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B reads the empty cache, then A fetches, writes and lets the lock go, all before B
    asks for the lock: B takes it without waiting, and must still find A's blocks."""
    a, b = await instances("a"), await instances("b")
    q = cold_query(sim)
    read = b.engine.blocks.read
    calls = 0

    async def read_then_a_fetches(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        got = await read(*args, **kwargs)
        calls += 1
        if calls == 1:
            await a.engine.query(q, token=TOKEN)
        return got

    monkeypatch.setattr(b.engine.blocks, "read", read_then_a_fetches)
    asked_before = origin_requests(sim)
    got = await b.engine.query(q, token=TOKEN)
    assert calls == 2 and got.provenance.origin_requests == 0
    assert b.engine.locks is not None and b.engine.locks.waited == 0
    assert origin_requests(sim) - asked_before > 0  # A's fetch alone
    assert got.total_samples == sum(
        len(sim.data.expected(SITE, p, q.start_ms, q.end_ms - 1).t_ms) for p in q.points
    )


async def test_a_dead_holders_lease_lapses_and_the_fetch_is_retried(
    instances: Open, sim: Sim
) -> None:
    a = await instances("a", fetch_lock_lease_s=0.5)
    b = await instances("b", fetch_lock_lease_s=0.5)
    q = cold_query(sim)
    locks = a.engine.locks
    assert locks is not None and b.engine.locks is not None
    # A takes the lock for the query's gaps and dies holding it (its renewal stops).
    gaps = (await b.engine.plan(q)).gaps
    name = locks.key_of(q.site, sorted((p, tuple(g)) for p, g in gaps.items() if g))
    assert await locks.redis.client.set(locks.redis.key("fetch", name), "a:dead", nx=True, px=500)
    started = time.monotonic()
    got = await b.engine.query(q, token=TOKEN)
    assert time.monotonic() - started >= 0.4  # B waited for the lease to lapse
    assert got.provenance.origin_requests > 0 and b.engine.locks.waited == 1
    assert got.total_samples == sum(
        len(sim.data.expected(SITE, p, q.start_ms, q.end_ms - 1).t_ms) for p in q.points
    )


async def test_the_lease_is_renewed_while_held_and_its_renewer_ends_with_the_block(
    instances: Open,
) -> None:
    a = await instances("a", fetch_lock_lease_s=0.3)
    locks = a.engine.locks
    assert locks is not None
    key = locks.redis.key("fetch", "renewed")
    before = asyncio.all_tasks()
    async with locks.hold("renewed") as waited:
        assert not waited
        await asyncio.sleep(0.75)  # past two leases: only the renewals keep it
        assert await locks.redis.client.get(key) is not None
        assert 0 < await locks.redis.client.pttl(key) <= 300
    assert await locks.redis.client.get(key) is None  # released
    assert asyncio.all_tasks() - before == set()  # the renewer stopped, not left behind
