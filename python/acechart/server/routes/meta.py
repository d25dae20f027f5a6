"""GET /metrics (Prometheus text) and GET /api/openapi.json (the API's description)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from aiohttp import web

from acechart.server.keys import EDGE, METRICS, OPENAPI, RUNTIME
from acechart.server.metrics import CONTENT_TYPE, Metrics
from acechart.storage.database import Database

__all__ = ["metrics", "openapi"]


async def metrics(request: web.Request) -> web.Response:
    """Gauges that need a look at storage are read now, at scrape time."""
    app = request.app
    m = app[METRICS]
    runtime = app[RUNTIME]
    m.block_bytes.set(await runtime.db.total_block_bytes())
    m.database_bytes.set(_file_bytes(runtime.db.path))
    edge = app[EDGE]
    m.edge_bytes.set(edge.size_bytes)
    m.edge_entries.set(len(edge))
    await _queue_gauges(m, runtime.db)
    return web.Response(
        body=m.render(), headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"}
    )


async def openapi(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[OPENAPI],
        content_type="application/json",
        headers={"Cache-Control": "public, max-age=3600"},
    )


def _file_bytes(path: Path) -> int:
    """The database file with its WAL, which holds recent writes until a checkpoint."""
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(OSError):
            total += os.stat(f"{path}{suffix}").st_size
    return total


_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")


async def _queue_gauges(m: Metrics, db: Database) -> None:
    rows = await db.fetchall("SELECT status, COUNT(*) FROM queue_jobs GROUP BY status")
    counts = {str(status): int(n) for status, n in rows}
    for status in _STATUSES:
        m.jobs.labels(status).set(counts.get(status, 0))
    m.queue_depth.set(counts.get("pending", 0))
    row = await db.fetchone(
        "SELECT MIN(created_at), (SELECT AVG(completed_at - started_at) FROM queue_jobs"
        " WHERE status = 'completed' AND started_at IS NOT NULL) FROM queue_jobs"
        " WHERE status = 'pending'"
    )
    oldest, mean = (row[0], row[1]) if row is not None else (None, None)
    m.queue_wait.set(max(0.0, time.time() - oldest) if oldest is not None else 0.0)
    m.job_duration.set(float(mean) if mean is not None else 0.0)
