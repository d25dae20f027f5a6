"""Chaos: the service under concurrent load while the origin fails at random.

The realistic simulator answers with seeded random 429s, 500s and 503s, dropped
connections, latency, and a seeded script of 502s, 504s, hangs, half bodies
(`corrupt`) and slow bodies; meanwhile a bounded number of requests (the same
queries several times over, so the caches are read and written under the
faults) run a few at a time, within a time bound. Then:

- every answer is a 200 equal, byte for byte, to the fault-free service's
  answer (or marked stale with a Warning), or one of the seed's documented
  origin errors: 502 `origin_unavailable`, 503 `storage_unavailable`, 504
  `origin_timeout`/`timeout`, or a 429 `rate_limit_exceeded` passed on;
- each request ends within the request deadline plus the last attempt's
  timeouts (the retry budget is bounded by the deadline, never the sum of all
  attempts);
- no traceback, and no unhandled error, reaches the log;
- once the faults stop, every query answers exactly as a fresh service does:
  nothing the faults interrupted was cached wrong.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from acechart.server.keys import EDGE, PAGES
from acechart.simulator.faults import Fault
from tests.conftest import NOW_MS, SITE, SimFactory
from tests.server_helpers import DAY, HOUR, ClientFactory, Service, query, start_service

SEED = 15
REQUESTS = 96
CONCURRENCY = 8
TIME_BOUND_S = 120.0
DEADLINE_S = 4.0
READ_TIMEOUT_S = 1.0
DOCUMENTED = {
    429: {"rate_limit_exceeded"},
    502: {"origin_unavailable"},
    503: {"storage_unavailable"},
    504: {"origin_timeout", "timeout"},
}
SETTINGS: dict[str, Any] = {
    "rate_limit_per_minute": 0,
    "request_deadline_s": DEADLINE_S,
    "origin_read_timeout_s": READ_TIMEOUT_S,
    "origin_timeout_s": 3.0,
    "origin_connect_timeout_s": 1.0,
    "origin_max_attempts": 4,
    "origin_retry_after_max_s": 0.5,
    "auth_checks_per_s": 1000.0,
}


def _queries(svc: Service) -> list[tuple[str, dict[str, Any]]]:
    one, three = svc.points(1), svc.points(3)
    day = NOW_MS - 6 * DAY
    return [
        ("/api/timeseries", query(one, day, day + DAY)),
        ("/api/timeseries", query(three, day + 6 * HOUR, day + 30 * HOUR)),
        ("/api/timeseries", query(three[:2], day - 2 * DAY, day + DAY, interval="1hr")),
        ("/api/aggregations", query(one, day - 3 * DAY, day + DAY, interval="1hr")),
        ("/api/timeseries", query(three, day, day + 2 * DAY, maxPoints="200")),
        (
            f"/api/sites/{SITE}/timeseries/paginated",
            {
                "start_time": "2024-12-25T00:00:00",
                "end_time": "2024-12-25T06:00:00",
                "point_names": ",".join(one),
                "raw_data": "true",
                "page_size": "500",
            },
        ),
    ]


async def _answer(svc: Service, path: str, params: dict[str, Any]) -> tuple[int, bytes, Any]:
    resp = await svc.get(path, params)
    return resp.status, await resp.read(), resp.headers


def _fault_script(rng: random.Random) -> list[Fault]:
    kinds: list[Fault] = ["502", "504", "hang", "corrupt", "slow", "drop", "500", "429"]
    return [rng.choice(kinds) for _ in range(40)]


async def test_answers_under_random_origin_faults_are_right_or_named_errors(
    aiohttp_client: ClientFactory,
    make_simulator: SimFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = await make_simulator(seed=SEED)
    clean = await start_service(aiohttp_client, sim, tmp_path / "clean", **SETTINGS)
    chaos = await start_service(aiohttp_client, sim, tmp_path / "chaos", **SETTINGS)
    queries = _queries(clean)
    expected = {}
    for i, (path, params) in enumerate(queries):
        status, body, _ = await _answer(clean, path, params)
        assert status == 200, body[:300]
        expected[i] = body
    # Confirm the token and load the catalogue before the faults, as a running service has.
    assert (await chaos.get("/api/points", {"site": SITE})).status == 200

    rng = random.Random(SEED)
    sim.faults.configure(
        latency_s=0.0,
        jitter_s=0.02,
        rate_limit_rate=0.04,
        retry_after_s=0.05,
        error_rate=0.12,
        drop_rate=0.06,
        hang_s=2.0,
        slow_body_s=0.3,
        path_contains="",
    )
    sim.faults.script(*_fault_script(rng))
    order = [rng.randrange(len(queries)) for _ in range(REQUESTS)]
    gate = asyncio.Semaphore(CONCURRENCY)
    outcomes: list[tuple[int, int, bytes, Any, float]] = []

    async def one(index: int) -> None:
        async with gate:
            path, params = queries[index]
            started = time.monotonic()
            status, body, headers = await _answer(chaos, path, params)
            outcomes.append((index, status, body, headers, time.monotonic() - started))

    with caplog.at_level("WARNING"):
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in order)), TIME_BOUND_S)
        faulted = sum(1 for r in sim.log.records if r.fault is not None)

        # The faults stop: every answer is the fault-free one.
        sim.faults.reset()
        sim.faults.configure(
            jitter_s=0.0, rate_limit_rate=0.0, error_rate=0.0, drop_rate=0.0, slow_body_s=0.0
        )
        assert sim.faults.pending == 0
        # Twice: from the edge cache, then with it emptied, from the block store alone.
        after = [await _answer(chaos, path, params) for path, params in queries]
        chaos.app[EDGE].clear()
        chaos.app[PAGES].clear()
        after += [await _answer(chaos, path, params) for path, params in queries]

    assert faulted >= 20, f"only {faulted} origin requests were faulted"
    assert len(outcomes) == REQUESTS
    served = 0
    for index, status, body, headers, seconds in outcomes:
        path = queries[index][0]
        # The deadline, then at most one origin read left to time out, and slack.
        assert seconds < DEADLINE_S + READ_TIMEOUT_S + 3.0, (path, status, seconds)
        if status == 200:
            served += 1
            assert body == expected[index] or "Warning" in headers, (path, body[:200])
            continue
        assert status in DOCUMENTED, (path, status, body[:300])
        error = json.loads(body)
        assert error["error"] in DOCUMENTED[status], (status, error)
        assert isinstance(error["message"], str) and error["message"]
        if status in (429, 504) and "Retry-After" in headers:
            assert int(headers["Retry-After"]) >= 1
    assert served >= REQUESTS // 2, f"only {served} of {REQUESTS} answered under faults"
    for index, (status, body, _) in enumerate(after):
        path = queries[index % len(queries)][0]
        assert status == 200, (path, body[:300])
        assert body == expected[index % len(queries)], path
    for record in caplog.records:
        text = record.getMessage()
        assert record.exc_info is None and "Traceback" not in text, text[:500]
        assert "unhandled error" not in text, text[:500]
