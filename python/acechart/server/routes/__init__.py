"""Every route of the service, registered by name (names label metrics and log lines).

Every GET also answers HEAD. The ACE-shaped routes of the old Worker come
after the seed's; last, any other GET under `/api/` is passed to the origin
(`proxy`), so no path the Worker answered is a 404 here.
"""

from __future__ import annotations

from aiohttp import web

from acechart.server.errors import PASS_THROUGH
from acechart.server.routes import (
    aggregations,
    charts,
    dashboard,
    health,
    jobs,
    meta,
    paginated,
    points,
    proxy,
    sites,
    timeseries,
)

__all__ = ["add_routes"]


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", dashboard.index, name="dashboard")
    r.add_get("/static/{name:.+}", dashboard.asset, name="static")
    r.add_get("/api/timeseries", timeseries.handle, name="timeseries")
    r.add_post("/api/timeseries", timeseries.handle, name="timeseries")
    r.add_get("/api/aggregations", aggregations.handle, name="aggregations")
    r.add_post("/api/aggregations", aggregations.handle, name="aggregations")
    r.add_get("/api/points", points.handle, name="points")
    r.add_post("/api/jobs", jobs.submit, name="jobs")
    r.add_get("/api/jobs/{job_id}", jobs.status, name="job")
    r.add_delete("/api/jobs/{job_id}", jobs.cancel, name="job")
    r.add_get("/api/jobs/{job_id}/result", jobs.result, name="job-result")
    r.add_get("/api/jobs/{job_id}/events", jobs.events, name="job-events")
    r.add_post("/api/charts", charts.create, name="charts")
    r.add_get("/api/charts", charts.list_charts, name="charts")
    r.add_get("/api/charts/{chart_id}", charts.get, name="chart")
    r.add_put("/api/charts/{chart_id}", charts.replace, name="chart")
    r.add_patch("/api/charts/{chart_id}", charts.update, name="chart")
    r.add_delete("/api/charts/{chart_id}", charts.delete, name="chart")
    r.add_get("/api/charts/{chart_id}/thumbnail.png", charts.thumbnail, name="chart-thumbnail")
    # The old Worker's routes, in the ACE API's shapes.
    r.add_get("/api/sites", sites.list_sites, name="sites")
    r.add_get("/api/sites/{site}", sites.get_site, name="site")
    r.add_get(
        "/api/sites/{site}/configured_points", sites.configured_points, name="configured-points"
    )
    r.add_get("/api/sites/{site}/timeseries/paginated", paginated.handle, name="paginated")
    r.add_get("/api/health", health.api_health, name="api-health")
    r.add_get("/healthz", health.healthz, name="healthz")
    r.add_get("/readyz", health.readyz, name="readyz")
    r.add_get("/metrics", meta.metrics, name="metrics")
    r.add_get("/api/openapi.json", meta.openapi, name="openapi")
    # Last: every other GET under /api/ goes to the origin unchanged.
    r.add_get(proxy.PREFIX + "{tail:.*}", proxy.handle, name=PASS_THROUGH)
