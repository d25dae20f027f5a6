"""GET /api/timeseries: the seed's chart data, as JSON rows, MessagePack rows or columns, or CSV."""

from __future__ import annotations

from aiohttp import web

from acechart import _core
from acechart.documents import document_metadata, series_item
from acechart.query import format_time
from acechart.result import Result
from acechart.server.keys import SETTINGS
from acechart.server.negotiate import Representation, choose_representation
from acechart.server.params import parse_query, wants_async
from acechart.server.pipeline import DataRequest, answer

__all__ = ["encode", "handle", "metadata"]


async def handle(request: web.Request) -> web.Response:
    query = parse_query(request, request.app[SETTINGS], default_interval="raw")
    data = DataRequest(
        endpoint="timeseries",
        query=query,
        representation=choose_representation(request.query, request.headers.get("Accept", "")),
        encode=encode,
        wants_async=wants_async(request),
        download_name=f"{query.site}_{format_time(query.start_ms)[:10]}_{query.interval}",
    )
    return await answer(request, data)


def metadata(result: Result) -> dict[str, object]:
    """The seed's metadata block of this answer."""
    return document_metadata(result.query, result.total_samples)


def encode(result: Result, rep: Representation) -> bytes:
    series = [series_item(s) for s in result.series]
    if rep.format == "csv":
        return _core.encode_csv(series)
    if rep.format == "msgpack":
        return _core.encode_msgpack(metadata(result), series, rep.layout)
    return _core.encode_json(metadata(result), series)
