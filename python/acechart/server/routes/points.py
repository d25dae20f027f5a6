"""GET /api/points: a site's point catalogue, searchable, from point_metadata."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from acechart.server.keys import CATALOG, INFO, METRICS
from acechart.server.params import MAX_INT, int_param, site_param
from acechart.server.pipeline import authorize
from acechart.server.respond import STALE, json_response
from acechart.storage.records import PointRecord
from acechart.times import format_time

__all__ = ["handle", "point_json"]

MAX_LIMIT = 10_000


def point_json(p: PointRecord) -> dict[str, Any]:
    return {
        "name": p.name,
        "displayName": p.display_name,
        "equipment": p.equipment,
        "equipmentId": p.equipment_id,
        "equipmentName": p.equipment_name,
        "pointType": p.point_type,
        "unit": p.unit,
        "markerTags": list(p.marker_tags),
        "kvTags": p.kv_tags,
        "collectInterval": p.collect_interval,
    }


async def handle(request: web.Request) -> web.Response:
    site = site_param(request)
    info = request[INFO]
    info.site, info.format = site, "json"
    limit = int_param(request, "limit", low=1, high=MAX_LIMIT)
    offset = int_param(request, "offset", low=0, high=MAX_INT) or 0
    token = await authorize(request, "points", site)
    listing = await request.app[CATALOG].list(
        site,
        token=token,
        q=request.query.get("q", "").strip() or None,
        equipment=request.query.get("equipment") or None,
        tag=request.query.get("tag") or None,
        limit=limit,
        offset=offset,
    )
    request.app[METRICS].point_reads.inc()
    updated = listing.updated_at
    body = {
        "metadata": {
            "siteId": site,
            "count": len(listing.points),
            "offset": offset,
            "updatedAt": None if updated is None else format_time(updated * 1000),
        },
        "points": [point_json(p) for p in listing.points],
    }
    info.samples = len(listing.points)
    headers = {"Cache-Control": "private, max-age=300", "Vary": "Accept-Encoding"}
    if listing.stale:
        headers["Warning"] = STALE
    return await json_response(request, body, headers)
