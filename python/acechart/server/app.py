"""The aiohttp application: `create_app(settings)` wires every part of the service.

One middleware (`server.front`) gives every request its id, log line and
metrics, CORS (when origins are configured), the bound on JSON bodies, and
the seed's error bodies, so error responses carry CORS headers and are logged
like any other. The connection
limits (`handler_args`) let a request line hold 100 long point names; what
aiohttp refuses before routing is answered in JSON by `server.runner`.
Resources live in cleanup contexts: the runtime (database, object store,
origin client, engine; opened here unless the caller passes one it owns) and
the background tasks, cancelled and awaited on the way out before the runtime
closes.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from acechart.jobs.service import JobService
from acechart.result import Result
from acechart.runtime import Runtime
from acechart.server import connection
from acechart.server.auth import SiteAccess
from acechart.server.background import Background
from acechart.server.charts import ChartService
from acechart.server.cors import Cors
from acechart.server.edge_cache import EdgeCache
from acechart.server.front import front_middleware
from acechart.server.keys import (
    ACCESS,
    BACKGROUND,
    CATALOG,
    CHARTS,
    EDGE,
    JOBS,
    LIMITER,
    METRICS,
    OPENAPI,
    PAGES,
    PARSED,
    RUNTIME,
    SETTINGS,
    SITES,
)
from acechart.server.lane import LANE, Lane
from acechart.server.memo import Memo
from acechart.server.metrics import Metrics
from acechart.server.openapi import build_document
from acechart.server.paging import WindowCache
from acechart.server.pipeline import PARSED_ENTRIES
from acechart.server.ratelimit import RateLimiter, RedisRateLimiter
from acechart.server.routes import add_routes
from acechart.server.runner import CONNECTIONS, Connections, handler_args
from acechart.server.sites import SiteDirectory
from acechart.settings import Settings
from acechart.storage.charts import ChartTable

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def create_app(
    settings: Settings, runtime: Runtime | None = None, jobs: JobService | None = None
) -> web.Application:
    """The service over `settings`; with `runtime` (and `jobs`), those are used and left open."""
    cors = Cors(settings.cors_origins) if settings.cors_origins else None
    metrics = Metrics(settings.instance_id)
    lane = Lane(PARSED_ENTRIES)
    app = web.Application(
        middlewares=[front_middleware(metrics, cors, lane)], handler_args=handler_args(settings)
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[EDGE] = EdgeCache(settings.edge_cache_bytes)
    app[LIMITER] = RateLimiter(settings.rate_limit_per_minute)
    app[BACKGROUND] = Background()
    app[OPENAPI] = json.dumps(build_document(settings), indent=1).encode()
    app[PAGES] = WindowCache(settings.compat_page_cache_bytes)
    app[PARSED] = Memo(PARSED_ENTRIES)
    app[LANE] = lane
    app.cleanup_ctx.append(_runtime_context(runtime))
    if settings.server_connection_lane and connection.available():
        connections: Connections = functools.partial(connection.LaneHandler, lane=lane)
        app[CONNECTIONS] = connections
    app.cleanup_ctx.append(_lane_context(lane))
    app.cleanup_ctx.append(_jobs_context(jobs))
    app.cleanup_ctx.append(_charts_context)
    app.cleanup_ctx.append(_background_context)
    add_routes(app)
    return app


def _lane_context(lane: Lane) -> CleanupContext:
    """The hit lane answers once the services it checks with exist (and stops first)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        lane.bind(
            app[EDGE],
            app[ACCESS],
            app[LIMITER],
            app[METRICS],
            compress_min_bytes=settings.compress_min_bytes,
            connection=settings.server_connection_lane and not app.on_response_prepare,
        )
        try:
            yield
        finally:
            lane.unbind()

    return context


def _runtime_context(given: Runtime | None) -> CleanupContext:
    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        runtime = given if given is not None else await Runtime.open(settings, sweep=True)
        app[RUNTIME] = runtime
        app[ACCESS] = SiteAccess(
            runtime.origin,
            ttl_s=settings.auth_cache_s,
            refusal_ttl_s=settings.auth_refusal_cache_s,
            grace_s=settings.edge_stale_if_error_s,
            checks_per_s=settings.auth_checks_per_s,
            unconfirmed_per_minute=settings.auth_unconfirmed_per_minute,
        )
        if runtime.redis is not None:
            # One limit for every instance: the buckets live in the shared Redis.
            app[LIMITER] = RedisRateLimiter(
                settings.rate_limit_per_minute, runtime.redis, settings.job_token_key or ""
            )
        app[CATALOG] = runtime.catalog
        app[SITES] = SiteDirectory(
            runtime.origin,
            app[ACCESS],
            ttl_s=settings.compat_sites_ttl_s,
            refusal_ttl_s=settings.auth_refusal_cache_s,
        )
        logger.info(
            "acechart service ready: origin %s, data in %s", settings.origin_url, settings.data_dir
        )
        metrics = app[METRICS]

        def count(result: Result, seconds: float) -> None:
            metrics.record_engine(result.provenance, seconds, result.total_samples)

        runtime.engine.observers.append(count)
        try:
            yield
        finally:
            runtime.engine.observers.remove(count)
            if given is None:
                await runtime.close()

    return context


def _jobs_context(given: JobService | None) -> CleanupContext:
    """The job workers run while the app does, and hand running jobs back to the queue
    when it stops, before the runtime under them closes."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        if given is not None:
            jobs = given
        else:
            runtime = app[RUNTIME]
            jobs = await JobService.open(
                runtime.engine, runtime.store, runtime.db, runtime.settings, redis=runtime.redis
            )
        app[JOBS] = jobs
        try:
            yield
        finally:
            if given is None:
                await jobs.close()

    return context


async def _charts_context(app: web.Application) -> AsyncIterator[None]:
    """Saved charts, owned by the job vault's stable token fingerprint (it survives
    restarts and is shared by instances with one `ACECHART_JOB_TOKEN_KEY`)."""
    runtime, settings = app[RUNTIME], app[SETTINGS]
    app[CHARTS] = ChartService(
        ChartTable(runtime.db),
        runtime.store,
        runtime.engine,
        app[ACCESS],
        runtime.catalog,
        owner_of=app[JOBS].vault.fingerprint,
        max_points=settings.max_points_per_query,
        max_range_days=settings.max_range_days,
        deadline_s=settings.request_deadline_s,
    )
    yield


async def _background_context(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[BACKGROUND].close()
