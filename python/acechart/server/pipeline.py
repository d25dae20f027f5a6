"""Answering a data query: token, rate limit, site access, edge cache, plan, engine, encoding.

The one path shared by `/api/timeseries` and `/api/aggregations`; a route only
parses its parameters and says how to encode a `Result`. Order matters for
safety and cost: the caller's access to the site is confirmed before the edge
cache is consulted (cached data is served only to tokens the origin accepted
for its site), a miss's point names are checked against the site's catalogue
(unknown ones are a 404 naming them), and the plan is classified before
anything is fetched.

Identical concurrent misses share one computation (a `Background` task keyed
by the cache key), which also serves stale-while-revalidate refreshes; when
the origin fails and an expired answer is still inside its stale-if-error
window, that answer is served with a Warning instead of the error.

A request waits at most `request_deadline_s` for its answer, the origin's
word on the token and the catalogue included: then it is a 504 in the seed's
`timeout` shape (or the stale copy, as for any origin timeout), however long a
hung origin keeps the connection open. The shared computation goes on and
fills the caches for the next caller; it is bounded by the origin client's own
timeouts. Jobs fetch through the engine directly and keep their own budget.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

from aiohttp import web

from acechart.cache.policy import retention
from acechart.errors import (
    AcechartError,
    DeadlineExceeded,
    NotFound,
    OriginTimeout,
    OriginUnavailable,
    RequestTooLarge,
)
from acechart.query import Query
from acechart.result import Result
from acechart.server.auth import CLIENT
from acechart.server.classify import Classification, classify, too_large
from acechart.server.edge_cache import Entry, Freshness
from acechart.server.headers import client_address, token_from, trusted_networks
from acechart.server.keys import (
    ACCESS,
    BACKGROUND,
    CATALOG,
    EDGE,
    INFO,
    JOBS,
    LIMITER,
    METRICS,
    RUNTIME,
    SETTINGS,
)
from acechart.server.respond import REVALIDATION_FAILED, STALE, entry_headers, respond
from acechart.wire import Representation

__all__ = ["DataRequest", "Encoder", "answer", "authorize", "check_points", "identify"]

logger = logging.getLogger(__name__)

Encoder = Callable[[Result, Representation], bytes]

_ENCODE_IN_THREAD_SAMPLES = 20_000


@dataclass(frozen=True)
class DataRequest:
    """One data query as a route parsed it, and how to encode its answer."""

    endpoint: str
    query: Query
    representation: Representation
    encode: Encoder = field(compare=False)
    wants_async: bool = False
    download_name: str = "acechart"
    """File name (without extension) of CSV downloads."""

    def cache_key(self) -> Hashable:
        q, r = self.query, self.representation
        return (
            self.endpoint,
            q.site,
            q.points,
            q.start_ms,
            q.end_ms,
            q.interval,
            q.downsample,
            q.max_points,
            r.format,
            r.layout,
        )


@dataclass(frozen=True)
class _Computed:
    entry: Entry
    cache_status: str
    cache_source: str
    classification: Classification


async def identify(request: web.Request, endpoint: str, *, limited: bool = True) -> tuple[str, str]:
    """(token, fingerprint) of the caller, after its rate limit for `endpoint` (unless
    `limited` is false: a request that is part of one already counted).

    Every authenticated route starts here, so each is limited and logged alike.
    """
    app = request.app
    token = token_from(request)
    fingerprint = app[ACCESS].fingerprint(token)
    request[INFO].client = fingerprint[:12]
    # Whatever this request asks the origin about its token counts against its client.
    CLIENT.set(client_address(request, trusted_networks(app[SETTINGS].server_trusted_proxies)))
    if limited:
        await app[LIMITER].acquire(fingerprint, endpoint, token)
    return token, fingerprint


async def authorize(request: web.Request, endpoint: str, site: str, *, limited: bool = True) -> str:
    """The caller's token, after the rate limit and the origin's word on the site."""
    token, fingerprint = await identify(request, endpoint, limited=limited)
    await request.app[ACCESS].check(token, site, fingerprint, client=CLIENT.get())
    return token


async def check_points(request: web.Request, site: str, points: Sequence[str], token: str) -> None:
    """404 naming every point the site's catalogue does not list (`unknownPoints`).

    A point the catalogue lists but without data in the range is no error (its
    series is empty). When the catalogue cannot be read (the origin or the
    database failing), the query goes ahead unchecked: a check must not make
    the data unreachable.
    """
    try:
        known = await request.app[CATALOG].names(site, token=token)
    except AcechartError as exc:
        logger.warning("point catalogue of %s unavailable (%s); point names not checked", site, exc)
        return
    unknown = [p for p in points if p not in known]
    if unknown:
        shown = ", ".join(unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        raise NotFound(
            f"unknown point(s) of site {site}: {shown}", siteId=site, unknownPoints=unknown
        )


async def answer(request: web.Request, data: DataRequest) -> web.Response:
    app = request.app
    info = request[INFO]
    q = data.query
    info.site, info.point_count = q.site, len(q.points)
    info.format = data.representation.format
    deadline = app[SETTINGS].request_deadline_s
    ends_at = asyncio.get_running_loop().time() + deadline
    # The token's check may wait on the origin too: it counts against the deadline.
    try:
        async with asyncio.timeout_at(ends_at) as budget:
            token = await authorize(request, data.endpoint, q.site)
    except TimeoutError:
        if not budget.expired():
            raise
        raise _deadline(deadline) from None

    key = data.cache_key()
    t0 = time.perf_counter()
    found = app[EDGE].lookup(key)
    if found is not None and found.freshness is not Freshness.ERROR_ONLY:
        app[METRICS].cache_latency.labels("edge").observe(time.perf_counter() - t0)
        info.classification = "cached"
        if found.freshness is Freshness.STALE:
            _revalidate(app, key, data, token)
        return await respond(
            request,
            key,
            found.entry,
            cache_status="HIT" if found.freshness is Freshness.FRESH else "STALE",
            cache_source="EDGE",
            size="cached",
            age_s=found.age_s,
            warning=STALE if found.freshness is Freshness.STALE else None,
        )

    try:
        async with asyncio.timeout_at(ends_at) as budget:
            await check_points(request, q.site, q.points, token)
            task = app[BACKGROUND].run(("answer", key), lambda: _compute(app, key, data, token))
            computed = await asyncio.shield(task)
    except TimeoutError:
        if not budget.expired():
            raise
        if found is None:
            raise _deadline(deadline) from None
        logger.warning(
            "answer for %s past its %g s deadline; serving a stale one", q.site, deadline
        )
        info.classification = "cached"
        return await respond(
            request,
            key,
            found.entry,
            cache_status="STALE",
            cache_source="EDGE",
            size="cached",
            age_s=found.age_s,
            warning=REVALIDATION_FAILED,
        )
    except RequestTooLarge as exc:
        # Submitted per request, not in the shared computation: that one is keyed
        # without the token, and a job belongs to the token that asked for it.
        jobs = app.get(JOBS)
        if not (data.wants_async and data.endpoint == "timeseries" and jobs is not None):
            raise
        job = await jobs.submit(
            q,
            data.representation.format,
            token,
            layout=data.representation.layout,
            estimated_samples=exc.estimated_samples,
        )
        info.classification = "large"
        return web.json_response(
            job.accepted_body(),
            status=202,
            headers={"Location": job.url, "Cache-Control": "no-store"},
        )
    except (OriginUnavailable, OriginTimeout) as exc:
        if found is None:
            raise
        logger.warning("origin failed (%s); serving a stale answer for %s", exc.reason, q.site)
        info.classification = "cached"
        return await respond(
            request,
            key,
            found.entry,
            cache_status="STALE",
            cache_source="EDGE",
            size="cached",
            age_s=found.age_s,
            warning=REVALIDATION_FAILED,
        )
    c = computed.classification
    info.classification, info.estimated_samples = c.size, c.estimated_samples
    return await respond(
        request,
        key,
        computed.entry,
        cache_status=computed.cache_status,
        cache_source=computed.cache_source,
        size=c.size,
    )


def _deadline(seconds: float) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"no answer within the request deadline of {seconds:g} s (the origin is slow or"
        " not answering); retry later, or submit a background job (?async=true)",
        retry_after=max(1.0, seconds),
    )


def _revalidate(app: web.Application, key: Hashable, data: DataRequest, token: str) -> None:
    """Refresh a stale entry in the background (once, however many requests see it stale)."""
    background = app[BACKGROUND]

    async def refresh() -> None:
        shared = background.run(("answer", key), lambda: _compute(app, key, data, token))
        try:
            await asyncio.shield(shared)
        except Exception as exc:
            logger.warning("background refresh of %s failed: %s", data.query.site, exc)

    background.run(("refresh", key), refresh)


async def _compute(app: web.Application, key: Hashable, data: DataRequest, token: str) -> _Computed:
    settings = app[SETTINGS]
    engine = app[RUNTIME].engine
    q = data.query
    plan = await engine.plan(q)
    c = classify(plan, settings)
    if c.large:
        raise too_large(c, settings, points=len(q.points), wants_async=data.wants_async)
    result = await engine.query(q, token=token)

    if result.total_samples >= _ENCODE_IN_THREAD_SAMPLES:
        body, etag = await asyncio.to_thread(_encode, data, result)
    else:
        body, etag = _encode(data, result)
    now = engine.clock()
    max_age = retention(min(q.end_ms, now), now).edge_s
    extra = {}
    if data.representation.format == "csv":
        extra["Content-Disposition"] = f'attachment; filename="{data.download_name}.csv"'
    content_type = data.representation.content_type
    entry = Entry(
        body=body,
        content_type=content_type,
        etag=etag,
        samples=result.total_samples,
        max_age_s=max_age,
        stale_s=max_age * settings.edge_stale_while_revalidate_factor,
        error_s=float(settings.edge_stale_if_error_s),
        headers=entry_headers(content_type, etag, result.total_samples, **extra),
    )
    app[EDGE].store(key, entry)
    prov = result.provenance
    return _Computed(entry, prov.cache_status, prov.cache_source, c)


def _encode(data: DataRequest, result: Result) -> tuple[bytes, str]:
    """Body and weak ETag (the Rust encoders release the GIL, so this may run in a thread)."""
    body = data.encode(result, data.representation)
    return body, f'W/"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
