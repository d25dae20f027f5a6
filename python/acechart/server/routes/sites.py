"""The old Worker's site routes, in the ACE API's own shapes, served from acechart's caches.

```
GET /api/sites                          the token's sites: {items, page, pages, per_page, total}
GET /api/sites/{site}                   the origin's site record
GET /api/sites/{site}/configured_points the site's points, the origin's items, paged alike
```

`page` (from 1) and `per_page` (1..1000, default 10, as the origin's) page
the listings here, over the origin's whole list: sites from the token's
listing (`SiteDirectory`, a short TTL), points from the point catalogue
(refreshed daily, or now with `bypass_cache=true`), each point the very item
the origin listed. A page past the last is empty, as the origin's is.
`/api/sites/{site}` and `configured_points` go through the (token, site)
check like every data route.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from acechart.errors import OriginTimeout, OriginUnavailable
from acechart.server.auth import CLIENT
from acechart.server.keys import ACCESS, CATALOG, INFO, SITES
from acechart.server.params import Params, bool_param, int_param, path_site
from acechart.server.pipeline import authorize, identify
from acechart.server.respond import STALE, json_response
from acechart.storage.records import PointRecord

__all__ = ["configured_points", "get_site", "list_sites", "paged"]

DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 1000


def paged(items: Sequence[Any], page: int, per_page: int) -> dict[str, Any]:
    """The origin's page-numbered listing shape."""
    total = len(items)
    return {
        "page": page,
        "pages": max(1, math.ceil(total / per_page)),
        "per_page": per_page,
        "total": total,
        "items": list(items[(page - 1) * per_page : page * per_page]),
    }


def _paging(params: Params) -> tuple[int, int]:
    page = int_param(params, "page", low=1) or 1
    per_page = int_param(params, "per_page", low=1, high=MAX_PER_PAGE) or DEFAULT_PER_PAGE
    return page, per_page


async def list_sites(request: web.Request) -> web.Response:
    params = Params.of(request)
    page, per_page = _paging(params)
    token, fingerprint = await identify(request, "sites")
    sites = await request.app[SITES].list(token, fingerprint, client=CLIENT.get())
    request[INFO].samples = len(sites)
    return await json_response(
        request, paged(sites, page, per_page), {"Cache-Control": "private, max-age=60"}
    )


async def get_site(request: web.Request) -> web.Response:
    site = path_site(request)
    request[INFO].site = site
    token, fingerprint = await identify(request, "site")
    record = await request.app[ACCESS].site(token, site, fingerprint)
    return await json_response(request, record, {"Cache-Control": "private, max-age=60"})


def origin_item(site: str, p: PointRecord) -> dict[str, Any]:
    """The origin's item of a point; for a row catalogued before items were kept, the
    fields the catalogue has (a refresh replaces it)."""
    if p.origin is not None:
        return p.origin
    return {
        "name": p.name,
        "site": site,
        "kv_tags": p.kv_tags,
        "marker_tags": list(p.marker_tags),
        "point_type": p.point_type,
        "collect_interval": p.collect_interval,
    }


async def configured_points(request: web.Request) -> web.Response:
    site = path_site(request)
    info = request[INFO]
    info.site, info.format = site, "json"
    params = Params.of(request)
    page, per_page = _paging(params)
    bypass = bool_param(params, "bypass_cache")
    token = await authorize(request, "configured-points", site)
    catalog = request.app[CATALOG]
    if bypass:
        await catalog.refresh(site, token=token)
    listing = await catalog.list(site, token=token)
    if not bypass and any(p.origin is None for p in listing.points):
        # Catalogued before the origin's items were kept: fetch them once.
        try:
            await catalog.refresh(site, token=token)
        except (OriginUnavailable, OriginTimeout):
            listing = dataclasses.replace(listing, stale=True)
        else:
            listing = await catalog.list(site, token=token)
    items = [origin_item(site, p) for p in listing.points]
    info.samples = len(items)
    headers = {"Cache-Control": "private, max-age=300"}
    if listing.stale:
        headers["Warning"] = STALE
    return await json_response(request, paged(items, page, per_page), headers)
