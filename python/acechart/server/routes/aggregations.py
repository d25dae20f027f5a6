"""GET /api/aggregations: bucket statistics (avg, min, max, sum, count, stddev) per point.

The seed's shape for one point (`metadata` with siteId, pointName, interval,
dataPoints; rows of timestamp/avg/min/max/count/stddev), extended to several
points as a `series` list, each with its `aggregations`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from aiohttp import web

from acechart import _core
from acechart.errors import BadRequest
from acechart.query import format_time
from acechart.result import Aggregates, Result
from acechart.server.keys import SETTINGS
from acechart.server.negotiate import Representation, choose_representation
from acechart.server.params import parse_query, wants_async
from acechart.server.pipeline import DataRequest, answer

__all__ = ["encode", "handle"]


async def handle(request: web.Request) -> web.Response:
    query = parse_query(request, request.app[SETTINGS], default_interval="1hr")
    if query.interval == "raw":
        raise BadRequest(
            "aggregations need an interval: 1min, 5min, 1hr or 1day", parameter="interval"
        )
    data = DataRequest(
        endpoint="aggregations",
        query=query,
        representation=choose_representation(request.query, request.headers.get("Accept", "")),
        encode=encode,
        wants_async=wants_async(request),
        download_name=f"{query.site}_{format_time(query.start_ms)[:10]}_{query.interval}_stats",
    )
    return await answer(request, data)


def _columns(agg: Aggregates | None) -> Aggregates:
    """Contiguous columns for the encoder; an empty set for a point without buckets."""
    if agg is None:
        empty: Aggregates = {"ts": np.zeros(0, np.int64), "count": np.zeros(0, np.int64)}
        empty.update({k: np.zeros(0, np.float64) for k in ("sum", "min", "max", "avg", "stddev")})
        return empty
    return {k: v if v.flags.c_contiguous else v.copy() for k, v in agg.items()}


def encode(result: Result, rep: Representation) -> bytes:
    q = result.query
    series: list[tuple[str, Aggregates]] = [(s.name, _columns(s.aggregates)) for s in result.series]
    if rep.format == "csv":
        return _core.encode_csv(series)
    meta: dict[str, Any] = {"siteId": q.site}
    if len(q.points) == 1:
        meta["pointName"] = q.points[0]
    meta.update(
        pointNames=list(q.points),
        startTime=format_time(q.start_ms),
        endTime=format_time(q.end_ms),
        interval=q.interval,
        dataPoints=result.total_samples,
    )
    if rep.format == "msgpack":
        return _core.encode_msgpack(meta, series, rep.layout)
    return _core.encode_json(meta, series)
