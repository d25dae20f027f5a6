"""Saved charts over HTTP: the seed's `chart_configs`, with PNG thumbnails.

```
POST   /api/charts                     save a chart -> 201, Location
GET    /api/charts[?scope&site&sort]   own charts (scope=own), or a site's public ones
GET    /api/charts/{id}                one chart (counts a view)
PUT    /api/charts/{id}                replace its fields (owner only)
PATCH  /api/charts/{id}                change the given fields (owner only)
DELETE /api/charts/{id}                delete it and its objects (owner only) -> 204
GET    /api/charts/{id}/thumbnail.png  its PNG thumbnail (400x200)
```

The rules are `server.charts.ChartService`'s; every route goes through the
same door as the data routes (`identify`: token, rate limit, request log).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from acechart.errors import BadRequest
from acechart.query import check_site
from acechart.server.auth import CLIENT
from acechart.server.charts import CHART_SORTS, chart_json
from acechart.server.headers import etag_matches
from acechart.server.keys import CHARTS, INFO, SITES
from acechart.server.params import MAX_INT, Params, int_param
from acechart.server.pipeline import identify
from acechart.server.respond import json_response
from acechart.storage.charts import ChartSort

__all__ = ["create", "delete", "get", "list_charts", "replace", "thumbnail", "update"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_NO_STORE = {"Cache-Control": "no-store"}


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (ValueError, RecursionError):
        raise BadRequest("the body must be a JSON object", parameter="body") from None


async def create(request: web.Request) -> web.Response:
    token, _ = await identify(request, "charts")
    service = request.app[CHARTS]
    chart = await service.create(await _body(request), token)
    request[INFO].site = chart.site_id
    url = f"/api/charts/{chart.id}"
    response = await json_response(
        request, chart_json(chart, service.owner_of(token)), {"Location": url, **_NO_STORE}
    )
    response.set_status(201)
    return response


async def list_charts(request: web.Request) -> web.Response:
    token, fingerprint = await identify(request, "charts")
    # Only a token the origin accepts has charts to list: asked once per token and TTL,
    # as `/api/sites` asks, so a made-up token is a 401, not an empty list.
    await request.app[SITES].list(token, fingerprint, client=CLIENT.get())
    params = Params.of(request)
    scope = params.get("scope", "own").strip() or "own"
    if scope not in ("own", "public"):
        raise BadRequest("scope must be own or public", parameter="scope")
    sort_name = params.get("sort", "recent").strip() or "recent"
    if sort_name not in CHART_SORTS:
        raise BadRequest(f"sort must be one of {', '.join(CHART_SORTS)}", parameter="sort")
    sort: ChartSort = "popular" if sort_name == "popular" else "recent"
    limit = int_param(params, "limit", low=1, high=MAX_LIMIT) or DEFAULT_LIMIT
    offset = int_param(params, "offset", low=0, high=MAX_INT) or 0
    raw_site = params.get("site")
    site = None if raw_site is None or not raw_site.strip() else check_site(raw_site, "site")
    service = request.app[CHARTS]
    if scope == "public":
        if site is None:
            raise BadRequest("site is required for scope=public", parameter="site")
        charts = await service.list_public(
            token,
            site,
            sort=sort,
            limit=limit,
            offset=offset,
        )
    else:
        charts = await service.list_owned(
            token,
            site=site,
            sort=sort,
            limit=limit,
            offset=offset,
        )
    request[INFO].site = site
    request[INFO].samples = len(charts)
    viewer = service.owner_of(token)
    body = {
        "metadata": {
            "scope": scope,
            "siteId": site,
            "sort": sort,
            "count": len(charts),
            "limit": limit,
            "offset": offset,
        },
        "charts": [chart_json(c, viewer) for c in charts],
    }
    return await json_response(request, body, _NO_STORE)


async def get(request: web.Request) -> web.Response:
    token, _ = await identify(request, "chart")
    service = request.app[CHARTS]
    chart_id = request.match_info["chart_id"]
    # A HEAD shows nothing of the chart to anyone: it is not a view.
    if request.method == "HEAD":
        chart = await service.readable(chart_id, token)
    else:
        chart = await service.view(chart_id, token)
    request[INFO].site = chart.site_id
    return await json_response(request, chart_json(chart, service.owner_of(token)), _NO_STORE)


async def _change(request: web.Request, *, partial: bool) -> web.Response:
    token, _ = await identify(request, "chart-update")
    service = request.app[CHARTS]
    chart = await service.update(
        request.match_info["chart_id"], await _body(request), token, partial=partial
    )
    request[INFO].site = chart.site_id
    return await json_response(request, chart_json(chart, service.owner_of(token)), _NO_STORE)


async def replace(request: web.Request) -> web.Response:
    return await _change(request, partial=False)


async def update(request: web.Request) -> web.Response:
    return await _change(request, partial=True)


async def delete(request: web.Request) -> web.Response:
    token, _ = await identify(request, "chart-update")
    await request.app[CHARTS].delete(request.match_info["chart_id"], token)
    return web.Response(status=204, headers=_NO_STORE)


async def thumbnail(request: web.Request) -> web.Response:
    token, _ = await identify(request, "chart-thumbnail")
    service = request.app[CHARTS]
    thumb = await service.thumbnail(request.match_info["chart_id"], token)
    info = request[INFO]
    info.format = "png"
    info.cache_status = "HIT" if thumb.cached else "MISS"
    etag = f'"{hashlib.blake2b(thumb.png, digest_size=12).hexdigest()}"'
    max_age = max(0, thumb.expires_at - int(service.clock()))
    headers = {
        "Cache-Control": f"private, max-age={max_age}",
        "ETag": etag,
        "X-Cache-Status": info.cache_status,
        "X-Processing-Time": f"{info.elapsed_ms():.1f}ms",
    }
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=thumb.png, content_type="image/png", headers=headers)
