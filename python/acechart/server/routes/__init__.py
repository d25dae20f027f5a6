"""Every route of the service, registered by name (names label metrics and log lines)."""

from __future__ import annotations

from aiohttp import web

from acechart.server.routes import aggregations, dashboard, health, jobs, meta, points, timeseries

__all__ = ["add_routes"]


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", dashboard.index, name="dashboard", allow_head=False)
    r.add_get("/api/timeseries", timeseries.handle, name="timeseries", allow_head=False)
    r.add_get("/api/aggregations", aggregations.handle, name="aggregations", allow_head=False)
    r.add_get("/api/points", points.handle, name="points", allow_head=False)
    r.add_post("/api/jobs", jobs.submit, name="jobs")
    r.add_get("/api/jobs/{job_id}", jobs.status, name="job", allow_head=False)
    r.add_delete("/api/jobs/{job_id}", jobs.cancel, name="job-cancel")
    r.add_get("/api/jobs/{job_id}/result", jobs.result, name="job-result")
    r.add_get("/api/jobs/{job_id}/events", jobs.events, name="job-events", allow_head=False)
    r.add_get("/healthz", health.healthz, name="healthz", allow_head=False)
    r.add_get("/readyz", health.readyz, name="readyz", allow_head=False)
    r.add_get("/metrics", meta.metrics, name="metrics", allow_head=False)
    r.add_get("/api/openapi.json", meta.openapi, name="openapi", allow_head=False)
