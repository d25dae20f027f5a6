"""GET /metrics (Prometheus text) and GET /api/openapi.json (the API's description)."""

from __future__ import annotations

import time

from aiohttp import web

from acechart.jobs.queue import STATUSES, QueueStats
from acechart.server.keys import EDGE, JOBS, METRICS, OPENAPI, RUNTIME
from acechart.server.lane import LANE
from acechart.server.metrics import CONTENT_TYPE, Metrics

__all__ = ["metrics", "openapi"]


async def metrics(request: web.Request) -> web.Response:
    """Gauges that need a look at storage are read now, at scrape time."""
    app = request.app
    m = app[METRICS]
    runtime = app[RUNTIME]
    m.block_bytes.set(await runtime.db.total_block_bytes())
    m.database_bytes.set(await runtime.db.size_bytes())
    edge = app[EDGE]
    m.edge_bytes.set(edge.size_bytes)
    m.edge_entries.set(len(edge))
    lane = app[LANE]
    m.lane_answers.labels("connection").value = lane.answered_bytes
    m.lane_answers.labels("middleware").value = lane.answered
    for strategy, rate in runtime.engine.fetcher.throughput.snapshot().items():
        m.origin_rate.labels(strategy).set(rate.samples_per_s)
        m.origin_round.labels(strategy).set(rate.round_s)
    _queue_gauges(m, await app[JOBS].queue.stats())
    return web.Response(
        body=m.render(), headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"}
    )


async def openapi(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[OPENAPI],
        content_type="application/json",
        headers={"Cache-Control": "public, max-age=3600"},
    )


def _queue_gauges(m: Metrics, stats: QueueStats) -> None:
    """From the queue's own summary, so any backend reports the same gauges."""
    for status in STATUSES:
        m.jobs.labels(status).set(stats.counts.get(status, 0))
    m.queue_depth.set(stats.pending)
    m.queue_wait.set(stats.waited_s(time.time()))
    m.job_duration.set(stats.mean_completed_duration_s or 0.0)
