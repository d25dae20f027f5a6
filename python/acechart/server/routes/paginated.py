"""GET /api/sites/{site}/timeseries/paginated: the ACE API's own paginated body, from the caches.

Parameters are the origin's: `start_time` and `end_time` (both included, as
the origin reads them; ISO-8601 or epoch ms), `page_size` (1..500000, default
10000), `raw_data=true` for samples (else 5-minute bucket averages, as the
origin answers), `cursor` (the previous page's `next_cursor`), and
`point_names` (or `points`), which acechart honours although the origin
ignores it; without it every point of the site's catalogue is walked.

The body is `{"point_samples": [{"name", "value", "time"}], "next_cursor",
"has_more"}`, written in Rust from the engine's arrays (`encode_ace_page`):
samples in (time, point name) order, values as the shortest decimal text that
`parseFloat` reads back exactly (NaN as null), times ISO-8601 UTC with `Z`.
`Accept: application/x-msgpack` gives the same document as MessagePack. The
cursor is acechart's own (see `server.paging`): it never stalls or skips, and
one of another query is a 400. A walk needing too much origin data gets the
413 of `/api/timeseries`, with suggestions. Only a walk's first page counts
against the rate limit.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import numpy as np
from aiohttp import web

from acechart._core import ace_page_end, encode_ace_page
from acechart.errors import BadRequest
from acechart.query import MAX_TIME_MS, MIN_TIME_MS, Query
from acechart.result import Result
from acechart.server.classify import assess, refusal
from acechart.server.keys import CATALOG, INFO, METRICS, PAGES, RUNTIME, SETTINGS
from acechart.server.paging import PageCursor, Window, after_position, query_fingerprint
from acechart.server.params import (
    ALIASES,
    Params,
    bool_param,
    int_param,
    parse_points,
    path_site,
    time_param,
)
from acechart.server.pipeline import authorize, check_points
from acechart.server.respond import body_response
from acechart.settings import Settings
from acechart.wire import CONTENT_TYPES, RawItem, ace_format, series_item

__all__ = ["handle"]

DEFAULT_PAGE_SIZE = 10_000
MAX_PAGE_SIZE = 500_000
BUCKET_MS = 300_000
_THREAD_ROWS = 20_000
_MAX_GROWTH = 40


async def handle(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    site = path_site(request)
    params = Params.of(request)
    info = request[INFO]
    start = time_param(params, "start", label="start_time")
    end = time_param(params, "end", label="end_time")
    _check_range(start, end, settings)
    limit = int_param(params, "page_size", low=1, high=MAX_PAGE_SIZE) or DEFAULT_PAGE_SIZE
    interval = "raw" if bool_param(params, "raw_data") else "5min"
    wanted = parse_points(params) if any(a in params for a in ALIASES["points"]) else None
    fmt = ace_format(request.headers.get("Accept", ""))
    info.site, info.format = site, fmt
    raw_cursor = params.get("cursor", "").strip()
    # A walk counts once against the rate limit: its first page (the following ones are
    # cut from memory, and a client walking a site's day must not be throttled mid-walk).
    token = await authorize(request, "paginated", site, limited=not raw_cursor)

    catalog = app[CATALOG]
    if wanted is None:
        names = sorted(await catalog.names(site, token=token))
    else:
        await check_points(request, site, wanted, token)
        names = sorted(set(wanted))
    info.point_count = len(names)
    fingerprint = query_fingerprint(site, start, end, interval, wanted)
    cursor = PageCursor.decode(raw_cursor, fingerprint) if raw_cursor else None
    after = after_position(cursor, names)
    end_excl = end + 1  # the origin includes end_time

    key = (fingerprint, tuple(names))
    window = app[PAGES].get(key)
    page = None
    if window is not None and window.serves(after, start):
        page = _cut(window, after, limit, end_excl)
    if page is None:
        window = await _window(request, site, names, start, end_excl, interval, after, limit, token)
        app[PAGES].put(key, window)
        page = _cut(window, after, limit, end_excl, last=True)
        cache_status, cache_source = window.cache_status, window.cache_source
    else:
        cache_status, cache_source = "HIT", "EDGE"
    assert page is not None and window is not None
    rows, last_ts, last_index, has_more = page
    next_cursor = PageCursor(last_ts, names[last_index], fingerprint).encode() if has_more else None
    series = window.series
    if rows >= _THREAD_ROWS:
        body = await asyncio.to_thread(
            encode_ace_page, series, after, limit, next_cursor, has_more, fmt
        )
    else:
        body = encode_ace_page(series, after, limit, next_cursor, has_more, fmt)
    info.samples, info.cache_status, info.cache_source = rows, cache_status, cache_source
    app[METRICS].record_answer("paginated", fmt, cache_status, cache_source)
    headers = {
        "Cache-Control": "private, no-store",
        "Vary": "Accept, Accept-Encoding",
        "X-Cache-Status": cache_status,
        "X-Cache-Source": cache_source,
        "X-Data-Samples": str(rows),
        "X-Processing-Time": f"{info.elapsed_ms():.1f}ms",
    }
    return await body_response(request, body, CONTENT_TYPES[fmt], headers)


def _check_range(start: int, end: int, settings: Settings) -> None:
    for name, value in (("start_time", start), ("end_time", end)):
        if not MIN_TIME_MS <= value <= MAX_TIME_MS:
            raise BadRequest(f"{name} must lie between 1900-01-01 and 2200-01-01", parameter=name)
    if end < start:
        raise BadRequest("end_time must not be before start_time", parameter="end_time")
    if end - start > settings.max_range_days * 86_400_000:
        raise BadRequest(
            f"range too long: at most {settings.max_range_days} days per query",
            parameter="end_time",
            maxRangeDays=settings.max_range_days,
        )


def _cut(
    window: Window, after: tuple[int, int] | None, limit: int, end_excl: int, *, last: bool = False
) -> tuple[int, int, int, bool] | None:
    """(rows, last ts, last index, has_more) of the page after `after` in `window`; None
    when the window ends before the page is known complete (unless it is the `last` try)."""
    if not window.series:
        return 0, 0, 0, False
    rows, last_ts, last_index, more = ace_page_end(window.series, after, limit)
    if more or window.hi_ms >= end_excl:
        return rows, last_ts, last_index, more
    if rows == limit:
        # Full, and the range goes on past the window: say so (the next page may be empty).
        return rows, last_ts, last_index, True
    if last:
        return rows, last_ts, last_index, False
    return None


async def _window(
    request: web.Request,
    site: str,
    names: list[str],
    start: int,
    end_excl: int,
    interval: str,
    after: tuple[int, int] | None,
    limit: int,
    token: str,
) -> Window:
    """The engine's arrays from the page's position on, for about `compat_window_samples`
    samples (at least a page); grown until a page fills or the range ends."""
    app = request.app
    settings = app[SETTINGS]
    engine = app[RUNTIME].engine
    lo = start if after is None else max(start, after[0])
    if not names:
        return Window(lo, end_excl, [], "HIT", "R2")
    plan = await engine.plan(Query(site, tuple(names), lo, end_excl, interval))
    c = await assess(engine, plan, settings, token=token)
    request[INFO].classification, request[INFO].estimated_samples = c.size, c.estimated_samples
    if c.large:
        raise await refusal(
            engine,
            plan,
            c,
            settings,
            token=token,
            start_param="start_time",
            end_param="end_time",
            inclusive_end=True,
            alternatives=_ALTERNATIVES,
        )
    wanted = max(limit + 1, settings.compat_window_samples)
    span = await _span(request, site, names, interval, wanted, token)
    for _ in range(_MAX_GROWTH):
        hi = min(end_excl, lo + span)
        result = await engine.query(Query(site, tuple(names), lo, hi, interval), token=token)
        prov = result.provenance
        window = Window(lo, hi, _items(result, interval), prov.cache_status, prov.cache_source)
        if hi >= end_excl or _cut(window, after, limit, end_excl) is not None:
            break
        span *= 2
    return window


async def _span(
    request: web.Request, site: str, names: Sequence[str], interval: str, samples: int, token: str
) -> int:
    """Milliseconds holding about `samples` samples of `names` at their cadences."""
    if interval == "raw":
        cadences = await request.app[CATALOG].cadences(site, token=token)
        periods = [cadences.get(n, 60_000) for n in names]
    else:
        periods = [BUCKET_MS] * len(names)
    rate = sum(1.0 / max(p, 1) for p in periods)
    return math.ceil(samples / rate) + max(periods)


def _items(result: Result, interval: str) -> list[RawItem]:
    """The result's series in name order; buckets without a numeric sample are left out,
    as the origin leaves them out."""
    items = sorted((series_item(s) for s in result.series), key=lambda item: item[0])
    if interval == "raw":
        return items
    out: list[RawItem] = []
    for name, ts, values in items:
        keep = ~np.isnan(values)
        out.append((name, np.ascontiguousarray(ts[keep]), np.ascontiguousarray(values[keep])))
    return out


#: What else a walk refused as too large can do, beside the range that would fit.
_ALTERNATIVES = (
    "Name fewer points with point_names",
    "Use a background job: POST /api/jobs, or GET /api/timeseries?async=true",
    "Use 5-minute buckets (leave out raw_data=true) or /api/aggregations",
)
