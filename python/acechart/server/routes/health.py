"""GET /healthz (the process answers), GET /readyz (its dependencies answer too), and
GET /api/health, the old Worker's status route (`{"status": "ok", "version": ..}`).

Readiness checks the database (a query: the SQLite file, or the shared
PostgreSQL), the object store (a HEAD of a probe key, which also proves S3
credentials), the shared Redis when one is configured (a PING), and that the
origin answers HTTP at all: a 401 from `/sites` without a token counts as
reachable, a 5xx or no answer does not. The report names the instance, so a
balancer's health log says which one is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from acechart._core import __version__
from acechart.server.keys import RUNTIME, SETTINGS
from acechart.times import format_time

__all__ = ["api_health", "healthz", "readyz"]

CHECK_TIMEOUT_S = 3.0
_PROBE_KEY = "health/readyz-probe"


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def api_health(request: web.Request) -> web.Response:
    """The Worker's health route, as its clients read it: a small JSON status."""
    return web.json_response(
        {"status": "ok", "version": __version__, "timestamp": format_time(time.time_ns() // 10**6)},
        headers={"Cache-Control": "no-store"},
    )


async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    origin_url = request.app[SETTINGS].origin_url.rstrip("/") + "/sites"

    async def database() -> None:
        await runtime.db.fetchone("SELECT 1")

    async def object_store() -> None:
        await runtime.store.head(_PROBE_KEY)

    async def origin() -> None:
        timeout = aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S)
        async with runtime.origin.session.get(origin_url, timeout=timeout) as resp:
            if resp.status >= 500:
                raise RuntimeError(f"origin answered HTTP {resp.status}")

    checks: dict[str, Callable[[], Awaitable[None]]] = {
        "database": database,
        "objectStore": object_store,
        "origin": origin,
    }
    if runtime.redis is not None:
        checks["redis"] = runtime.redis.ping
    results = await asyncio.gather(
        *(asyncio.wait_for(check(), CHECK_TIMEOUT_S) for check in checks.values()),
        return_exceptions=True,
    )
    scrub = runtime.origin.scrub
    report = {
        name: "ok" if result is None else f"error: {scrub(_describe(result))}"
        for name, result in zip(checks, results, strict=True)
    }
    ready = all(v == "ok" for v in report.values())
    return web.json_response(
        {
            "status": "ready" if ready else "unavailable",
            "checks": report,
            "instance": request.app[SETTINGS].instance_id,
        },
        status=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {CHECK_TIMEOUT_S:g} s"
    text = str(exc).strip() or type(exc).__name__
    return text[:200]
