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

A request with `Cache-Control: no-cache` or `max-age=0` is not answered from
the edge cache: it is computed again, so the fresh edge (never stored in
blocks) is refetched. An answer whose range reaches the freshness horizon is
kept at the edge no longer than its fastest point's cadence.

A request waits at most `request_deadline_s` for its answer, the origin's
word on the token and the catalogue included: then it is a 504 in the seed's
`timeout` shape (or the stale copy, as for any origin timeout), however long a
hung origin keeps the connection open. The shared computation goes on and
fills the caches for the next caller; it is bounded by the origin client's own
timeouts. Jobs fetch through the engine directly and keep their own budget.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field

from aiohttp import web

from acechart.cache import intervals as iv
from acechart.cache.policy import retention
from acechart.engine import PartialPolicy
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
from acechart.server.classify import ASYNC_MODE, Classification, assess, refusal
from acechart.server.edge_cache import ERROR_ONLY, FRESH, Entry, Lookup
from acechart.server.edge_cache import STALE as STALE_ENTRY
from acechart.server.headers import client_address, token_from, trusted_networks
from acechart.server.info import RequestInfo, Ticket
from acechart.server.keys import (
    ACCESS,
    BACKGROUND,
    CATALOG,
    EDGE,
    INFO,
    JOBS,
    LIMITER,
    METRICS,
    PARSED,
    RUNTIME,
    SETTINGS,
)
from acechart.server.params import Params, read_params
from acechart.server.ratelimit import take
from acechart.server.respond import (
    REVALIDATION_FAILED,
    STALE,
    VARY,
    entry_headers,
    partial_warning,
    respond,
)
from acechart.server.stream import send_stream
from acechart.times import format_time
from acechart.wire import Piece, Representation, streamable

__all__ = [
    "PARSED_ENTRIES",
    "DataRequest",
    "Encoder",
    "answer",
    "answer_query",
    "authorize",
    "check_points",
    "data_request",
    "identify",
    "wants_fresh",
]

logger = logging.getLogger(__name__)

Encoder = Callable[[Result, Representation], bytes]
PieceEncoder = Callable[[Result, Representation], Iterator[Piece]]
Measure = Callable[[Result, Representation], int]


def answer_samples(result: Result, rep: Representation) -> int:
    """The values a `/api/timeseries` answer writes: one per sample (or bucket)."""
    return result.total_samples


_ENCODE_IN_THREAD_SAMPLES = 20_000


@dataclass(frozen=True)
class DataRequest:
    """One data query as a route parsed it, and how to encode its answer."""

    endpoint: str
    query: Query
    representation: Representation
    encode: Encoder = field(compare=False)
    pieces: PieceEncoder | None = field(default=None, compare=False)
    """The document in pieces, for answers streamed (`stream_min_samples`); None: never."""
    values: Measure = field(default=answer_samples, compare=False)
    """How many values the answer writes, which `stream_min_samples` is compared with."""
    wants_async: bool = False
    partial: bool = True
    """Whether a mostly cached answer may be partial when the origin fails (`partial=`)."""
    download_name: str = "acechart"
    """File name (without extension) of CSV downloads."""

    @functools.cached_property
    def key(self) -> Hashable:
        """The edge cache's key of this request, made once (requests are remembered)."""
        return self.cache_key()

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
            q.tz,
            q.stat,
            q.max_buckets,
            q.reset_threshold,
            q.stats,
            r.format,
            r.layout,
        )


Builder = Callable[[web.Request, Params], DataRequest]
"""A route's parse of its parameters (and its `Accept` and `Prefer` headers)."""

_MEMO_MAX_QUERY = 4096
"""Longest query string whose parse is remembered (longer ones are parsed each time)."""
PARSED_ENTRIES = 1024
"""Parsed GETs remembered (`PARSED`), by endpoint, query string, `Accept` and `Prefer`."""


async def data_request(request: web.Request, endpoint: str, build: Builder) -> DataRequest:
    """The route's `DataRequest` for `request`: `build`'s over its parameters, a GET's
    remembered (`PARSED`) by endpoint, query string, `Accept` and `Prefer`.

    A parse is a pure function of those (no clock, no state) and dashboards repeat
    the same URLs; on an edge hit the parse was a third of the handler's time.
    Parameter errors are not remembered: they are raised again each time.
    """
    if request.method not in ("GET", "HEAD"):
        return build(request, await read_params(request))
    qs = request.query_string
    if len(qs) > _MEMO_MAX_QUERY:
        return build(request, Params.of(request))
    headers = request.headers
    key = (endpoint, qs, headers.get("Accept", ""), headers.get("Prefer", ""))
    memo = request.app[PARSED]
    data: DataRequest | None = memo.get(key)
    if data is None:
        data = build(request, Params.of(request))
        memo.put(key, data)
    return data


async def answer_query(request: web.Request, endpoint: str, build: Builder) -> web.StreamResponse:
    """A data route's whole handler: its parse (`data_request`), then `answer`."""
    return await answer(request, await data_request(request, endpoint, build))


@dataclass
class _Streamed:
    """A result too big to encode whole, for the one request that streams it (the series
    leave it as they are sent, so it cannot serve a second request)."""

    result: Result | None
    headers: dict[str, str]
    """The response's headers but the per-request ones (cache status, timing)."""

    def take(self) -> Result | None:
        result, self.result = self.result, None
        return result


@dataclass(frozen=True)
class _Computed:
    entry: Entry | None
    """The encoded answer; None when it is streamed."""
    cache_status: str
    cache_source: str
    classification: Classification
    streamed: _Streamed | None = None
    warning: str | None = None
    """Set for a partial answer (the origin failed): such an entry is not kept."""


async def identify(
    request: web.Request, endpoint: str, *, limited: bool = True, bind: bool = True
) -> tuple[str, str]:
    """(token, fingerprint) of the caller, after its rate limit for `endpoint` (unless
    `limited` is false: a request that is part of one already counted).

    Every authenticated route starts here, so each is limited and logged alike.
    `bind=False` leaves `bind_client` to the caller, for a path (a cached answer)
    that may never ask the origin anything.
    """
    app = request.app
    token = token_from(request)
    fingerprint = _caller(app, request[INFO], token)
    if limited:
        await take(app[LIMITER], fingerprint, endpoint, token)
    if bind:
        bind_client(request)
    return token, fingerprint


def _caller(app: web.Application, info: RequestInfo, token: str) -> str:
    """The token's fingerprint, the request log's `client` (its first 12 digits)."""
    fingerprint: str = app[ACCESS].fingerprint(token)
    info.client = fingerprint[:12]
    return fingerprint


def bind_client(request: web.Request) -> None:
    """Whatever this request asks the origin about its token counts against its client
    (`CLIENT`, read by the token check's per-address limit)."""
    proxies = trusted_networks(request.app[SETTINGS].server_trusted_proxies)
    CLIENT.set(client_address(request, proxies))


def _ends_at(request: web.Request) -> float:
    """The loop time the request's deadline falls at, counted from its arrival."""
    info = request[INFO]
    elapsed = time.perf_counter() - info.started
    return asyncio.get_running_loop().time() + request.app[SETTINGS].request_deadline_s - elapsed


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


async def answer(request: web.Request, data: DataRequest) -> web.StreamResponse:
    """The answer to `data`: from the edge cache when it holds it, else computed."""
    app = request.app
    info = request[INFO]
    q = data.query
    info.site, info.point_count = q.site, len(q.points)
    info.format = data.representation.format
    token = token_from(request)
    fingerprint = _caller(app, info, token)
    await take(app[LIMITER], fingerprint, data.endpoint, token)
    access = app[ACCESS]
    if not access.confirmed(fingerprint, q.site):
        # The token's check may wait on the origin: it counts against the deadline.
        bind_client(request)
        try:
            async with asyncio.timeout_at(_ends_at(request)) as budget:
                await access.check(token, q.site, fingerprint, client=CLIENT.get())
        except TimeoutError:
            if not budget.expired():
                raise
            raise _deadline(app[SETTINGS].request_deadline_s) from None

    key = data.key
    t0 = time.perf_counter()
    found = app[EDGE].lookup(key)
    # `Cache-Control: no-cache` (or max-age=0) asks for a fresh answer: the edge copy is
    # kept only to answer if the origin fails, and the fresh edge is refetched.
    control = request.headers.get("Cache-Control")
    fresh_only = control is not None and wants_fresh(control)
    if found is not None and not fresh_only and found.freshness is not ERROR_ONLY:
        app[METRICS].record_edge_hit(time.perf_counter() - t0)
        info.classification = "cached"
        if found.freshness is STALE_ENTRY:
            bind_client(request)
            _revalidate(app, key, data, token)
        else:
            info.ticket = Ticket(
                key, data.endpoint, q.site, len(q.points), data.representation.format
            )
        return await respond(
            request,
            key,
            found.entry,
            cache_status="HIT" if found.freshness is FRESH else "STALE",
            cache_source="EDGE",
            size="cached",
            age_s=found.age_s,
            warning=STALE if found.freshness is STALE_ENTRY else None,
        )

    bind_client(request)
    deadline = app[SETTINGS].request_deadline_s
    ends_at = _ends_at(request)
    try:
        async with asyncio.timeout_at(ends_at) as budget:
            await check_points(request, q.site, q.points, token)
            # A complete copy kept for stale-if-error beats a partial answer.
            may_be_partial = data.partial and found is None
            task = app[BACKGROUND].run(
                ("answer", key, may_be_partial),
                lambda: _compute(app, key, data, token, partial=may_be_partial),
            )
            computed = await asyncio.shield(task)
    except TimeoutError:
        if not budget.expired():
            raise
        if found is None:
            raise _deadline(deadline) from None
        logger.warning(
            "answer for %s past its %g s deadline; serving a stale one", q.site, deadline
        )
        return await _serve_stale(request, key, found)
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
        return await _serve_stale(request, key, found)
    c = computed.classification
    info.classification, info.estimated_samples = c.size, c.estimated_samples
    if computed.streamed is not None:
        return await _send_streamed(request, data, computed, token, ends_at)
    assert computed.entry is not None
    return await respond(
        request,
        key,
        computed.entry,
        cache_status=computed.cache_status,
        cache_source=computed.cache_source,
        size=c.size,
        warning=computed.warning,
    )


async def _send_streamed(
    request: web.Request, data: DataRequest, computed: _Computed, token: str, ends_at: float
) -> web.StreamResponse:
    """Stream a result too big to encode whole (see `server.stream`)."""
    assert computed.streamed is not None and data.pieces is not None
    result = computed.streamed.take()
    if result is None:
        # A concurrent request of the same query took the shared result: compute our own
        # (from the caches it just filled).
        try:
            async with asyncio.timeout_at(ends_at):
                computed = await _compute(request.app, data.key, data, token, partial=data.partial)
        except TimeoutError:
            raise _deadline(request.app[SETTINGS].request_deadline_s) from None
        assert computed.streamed is not None
        result = computed.streamed.take()
        assert result is not None
    streamed = computed.streamed
    assert streamed is not None
    info = request[INFO]
    info.cache_status, info.cache_source = computed.cache_status, computed.cache_source
    info.samples = result.total_samples
    size = computed.classification.size
    request.app[METRICS].record_answer(
        size, info.format or "json", computed.cache_status, computed.cache_source
    )
    headers = dict(streamed.headers)
    headers["X-Cache-Status"] = computed.cache_status
    headers["X-Cache-Source"] = computed.cache_source
    headers["X-Processing-Time"] = f"{info.elapsed_ms():.1f}ms"
    del computed, streamed
    return await send_stream(request, headers, data.pieces(result, data.representation))


async def _serve_stale(request: web.Request, key: Hashable, found: Lookup) -> web.StreamResponse:
    """The edge's kept copy, for a fresh answer that could not be had (deadline, origin)."""
    request[INFO].classification = "cached"
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
        shared = background.run(
            ("answer", key, False), lambda: _compute(app, key, data, token, partial=False)
        )
        try:
            await asyncio.shield(shared)
        except Exception as exc:
            logger.warning("background refresh of %s failed: %s", data.query.site, exc)

    background.run(("refresh", key), refresh)


async def _compute(
    app: web.Application, key: Hashable, data: DataRequest, token: str, *, partial: bool
) -> _Computed:
    settings = app[SETTINGS]
    engine = app[RUNTIME].engine
    q = await engine.resolve(data.query, token=token)
    plan = await engine.plan(q)
    c = await assess(engine, plan, settings, token=token)
    if c.large:
        alternatives = _AGGREGATIONS_ALTERNATIVES if data.endpoint == "aggregations" else ASYNC_MODE
        raise await refusal(engine, plan, c, settings, token=token, alternatives=alternatives)
    policy = PartialPolicy(settings.partial_min_share, settings.partial_wait_s) if partial else None
    result = await engine.query(q, token=token, partial=policy)

    now = engine.clock()
    max_age = retention(min(q.end_ms, now), now).edge_s
    extra = {}
    if data.representation.format == "csv":
        extra["Content-Disposition"] = f'attachment; filename="{data.download_name}.csv"'
    content_type = data.representation.content_type
    prov = result.provenance
    warning = None
    if result.missing:
        warning = partial_warning(result.missing)
        extra["X-Data-Missing"] = _missing_header(result.missing)
        max_age = 0
    elif q.end_ms > now - settings.freshness_horizon_s * 1000:
        # The range reaches the fresh edge, which gains a sample every cadence: no copy
        # may outlive the fastest point's cadence (a 30 s point is never 5 minutes stale).
        max_age = min(max_age, await _cadence_s(app, q, token))

    if _streams(data, data.values(result, data.representation), settings.stream_min_samples):
        headers = {
            "Content-Type": content_type,
            "Vary": VARY,
            "X-Data-Samples": str(result.total_samples),
            "Cache-Control": f"private, max-age={max_age}",
            **extra,
        }
        if warning is not None:
            headers["Warning"] = warning
        return _Computed(
            None,
            prov.cache_status,
            prov.cache_source,
            c,
            streamed=_Streamed(result, headers),
            warning=warning,
        )
    if result.total_samples >= _ENCODE_IN_THREAD_SAMPLES:
        body, etag = await asyncio.to_thread(_encode, data, result)
    else:
        body, etag = _encode(data, result)
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
    if warning is None:
        app[EDGE].store(key, entry)  # a partial answer is never kept: the next one asks again
    return _Computed(entry, prov.cache_status, prov.cache_source, c, warning=warning)


_AGGREGATIONS_ALTERNATIVES = (
    "Fetch the raw data first with a background job: /api/timeseries with the same "
    "site, points, start and end and async=true (or POST /api/jobs); once it completes "
    "the data is cached and this aggregation is answered synchronously",
)
"""What a too-large `/api/aggregations` suggests: jobs take timeseries queries, and the
aggregation of cached data costs no origin time."""

_MISSING_HEADER_RANGES = 16


def _missing_header(missing: dict[str, list[tuple[int, int]]]) -> str:
    """X-Data-Missing: what any point lacks, as ISO-8601 intervals (`start/end`, end
    exclusive), comma-separated; the per-point ranges are in the body's `metadata.missing`
    (JSON, MessagePack, Arrow), and this header is how CSV answers say it. Past 16 ranges
    the last one spans the rest."""
    ranges = iv.normalize([r for rs in missing.values() for r in rs])
    if len(ranges) > _MISSING_HEADER_RANGES:
        keep = ranges[: _MISSING_HEADER_RANGES - 1]
        ranges = [*keep, (ranges[len(keep)][0], ranges[-1][1])]
    return ", ".join(f"{format_time(a)}/{format_time(b)}" for a, b in ranges)


def wants_fresh(cache_control: str) -> bool:
    """Whether a request's Cache-Control asks for an answer no cache has kept
    (`no-cache`, or `max-age=0`), as RFC 9111 section 5.2.1 reads them."""
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name == "no-cache":
            return True
        if name == "max-age" and value.strip().strip('"') == "0":
            return True
    return False


async def _cadence_s(app: web.Application, q: Query, token: str) -> int:
    """The shortest collection interval of the query's points, in whole seconds (the
    catalogue's; one minute where it does not know a point or cannot be read)."""
    try:
        cadences = await app[CATALOG].cadences(q.site, token=token)
    except AcechartError as exc:
        logger.warning("no cadences for %s (%s); assuming one minute", q.site, exc)
        cadences = {}
    shortest = min((cadences.get(p, 60_000) for p in q.points), default=60_000)
    return max(1, shortest // 1000)


def _streams(data: DataRequest, values: int, stream_min: int) -> bool:
    """Whether an answer writing `values` (`DataRequest.values`) is streamed rather
    than encoded whole."""
    return (
        data.pieces is not None
        and stream_min > 0
        and values >= stream_min
        and streamable(data.representation)
    )


def _encode(data: DataRequest, result: Result) -> tuple[bytes, str]:
    """Body and weak ETag (the Rust encoders release the GIL, so this may run in a thread)."""
    body = data.encode(result, data.representation)
    return body, f'W/"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
