"""GET or POST /api/timeseries: the seed's chart data, as JSON rows, MessagePack rows or
columns, CSV, or an Arrow IPC stream (a record batch per series, or one wide table).
A POST carries the same parameters as a JSON object body."""

from __future__ import annotations

from aiohttp import web

from acechart.server.keys import SETTINGS
from acechart.server.params import Params, bool_param, parse_query, wants_async
from acechart.server.pipeline import DataRequest, answer_query
from acechart.times import format_time
from acechart.wire import encode_timeseries, negotiate, timeseries_pieces

__all__ = ["handle"]


async def handle(request: web.Request) -> web.StreamResponse:
    return await answer_query(request, "timeseries", _parse)


def _parse(request: web.Request, params: Params) -> DataRequest:
    query = parse_query(params, request.app[SETTINGS], default_interval="raw")
    return DataRequest(
        endpoint="timeseries",
        query=query,
        representation=negotiate(params, request.headers.get("Accept", "")),
        encode=encode_timeseries,
        pieces=timeseries_pieces,
        wants_async=wants_async(request, params),
        partial=bool_param(params, "partial", default=True),
        download_name=f"{query.site}_{format_time(query.start_ms)[:10]}_{query.interval}",
    )
