"""GET or POST /api/aggregations: bucket statistics per point.

The seed's shape for one point (`metadata` with siteId, pointName, interval,
dataPoints; rows of timestamp/avg/min/max/count/stddev), extended to several
points as a `series` list, each with its `aggregations` (see
`acechart.wire.encode_aggregations`); as MessagePack, CSV
(`time,point,count,sum,min,max,avg,stddev,first,last,partial`), or an Arrow IPC
stream (`point, time, value` = avg, `count, sum, min, max, avg, stddev, first,
last, partial` per bucket, a record batch per point; `layout=wide`: one avg column
per point). A POST carries the same parameters as a JSON object body.

Rows carry `first` and `last` too, and the last row of a series whose bucket has
not ended yet says `"partial": true`. `stat=` (a comma list) chooses the
statistics of every row, in order, `delta`, `twa` and `on_time` included. `tz=`
places the buckets in a zone (local days, weeks, months); `maxPoints` merges every
k neighbouring buckets into one (at most maxPoints rows, sums and counts true)
instead of picking some.

An answer of `stream_min_samples` statistics or more (buckets times the statistics
of a row, `wire.aggregation_values`) is streamed point by point
(`wire.aggregation_pieces`), as large `/api/timeseries` answers are.
"""

from __future__ import annotations

from aiohttp import web

from acechart.errors import BadRequest
from acechart.server.keys import SETTINGS
from acechart.server.params import Params, bool_param, parse_query, wants_async
from acechart.server.pipeline import DataRequest, answer_query
from acechart.times import format_time
from acechart.wire import aggregation_pieces, aggregation_values, encode_aggregations, negotiate

__all__ = ["handle"]


async def handle(request: web.Request) -> web.StreamResponse:
    return await answer_query(request, "aggregations", _parse)


def _parse(request: web.Request, params: Params) -> DataRequest:
    query = parse_query(params, request.app[SETTINGS], default_interval="1hr", rebucket=True)
    if query.interval == "raw":
        raise BadRequest(
            "aggregations need an interval: 1min, 5min, 15min, 1hr, 1day, 1week or 1month",
            parameter="interval",
        )
    return DataRequest(
        endpoint="aggregations",
        query=query,
        representation=negotiate(params, request.headers.get("Accept", "")),
        encode=encode_aggregations,
        pieces=aggregation_pieces,
        values=aggregation_values,
        wants_async=wants_async(request, params),
        partial=bool_param(params, "partial", default=True),
        download_name=f"{query.site}_{format_time(query.start_ms)[:10]}_{query.interval}_stats",
    )
