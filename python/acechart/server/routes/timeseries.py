"""GET /api/timeseries: the seed's chart data, as JSON rows, MessagePack rows or columns, or CSV."""

from __future__ import annotations

from aiohttp import web

from acechart.server.keys import SETTINGS
from acechart.server.params import parse_query, wants_async
from acechart.server.pipeline import DataRequest, answer
from acechart.times import format_time
from acechart.wire import encode_timeseries, negotiate

__all__ = ["handle"]


async def handle(request: web.Request) -> web.Response:
    query = parse_query(request, request.app[SETTINGS], default_interval="raw")
    data = DataRequest(
        endpoint="timeseries",
        query=query,
        representation=negotiate(request.query, request.headers.get("Accept", "")),
        encode=encode_timeseries,
        wants_async=wants_async(request),
        download_name=f"{query.site}_{format_time(query.start_ms)[:10]}_{query.interval}",
    )
    return await answer(request, data)
