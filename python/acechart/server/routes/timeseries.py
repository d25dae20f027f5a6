"""GET or POST /api/timeseries: the seed's chart data, as JSON rows, MessagePack rows or
columns, CSV, or an Arrow IPC stream (a record batch per series, or one wide table).
A POST carries the same parameters as a JSON object body."""

from __future__ import annotations

from aiohttp import web

from acechart.server.keys import SETTINGS
from acechart.server.params import bool_param, parse_query, read_params, wants_async
from acechart.server.pipeline import DataRequest, answer
from acechart.times import format_time
from acechart.wire import encode_timeseries, negotiate

__all__ = ["handle"]


async def handle(request: web.Request) -> web.Response:
    params = await read_params(request)
    query = parse_query(params, request.app[SETTINGS], default_interval="raw")
    data = DataRequest(
        endpoint="timeseries",
        query=query,
        representation=negotiate(params, request.headers.get("Accept", "")),
        encode=encode_timeseries,
        wants_async=wants_async(request, params),
        partial=bool_param(params, "partial", default=True),
        download_name=f"{query.site}_{format_time(query.start_ms)[:10]}_{query.interval}",
    )
    return await answer(request, data)
