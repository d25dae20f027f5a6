"""Typed keys of everything the service keeps on its application and requests."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from acechart.cache.catalog import PointCatalog
from acechart.jobs.service import JobService
from acechart.runtime import Runtime
from acechart.server.auth import SiteAccess
from acechart.server.background import Background
from acechart.server.charts import ChartService
from acechart.server.edge_cache import EdgeCache
from acechart.server.info import RequestInfo
from acechart.server.memo import Memo
from acechart.server.metrics import Metrics
from acechart.server.paging import WindowCache
from acechart.server.ratelimit import RateLimiter
from acechart.server.sites import SiteDirectory
from acechart.settings import Settings

__all__ = [
    "ACCESS",
    "BACKGROUND",
    "CATALOG",
    "CHARTS",
    "EDGE",
    "INFO",
    "JOBS",
    "LIMITER",
    "METRICS",
    "OPENAPI",
    "PAGES",
    "PARSED",
    "RUNTIME",
    "SETTINGS",
    "SITES",
]

SETTINGS = web.AppKey("acechart_settings", Settings)
METRICS = web.AppKey("acechart_metrics", Metrics)
EDGE = web.AppKey("acechart_edge_cache", EdgeCache)
LIMITER = web.AppKey("acechart_rate_limiter", RateLimiter)
BACKGROUND = web.AppKey("acechart_background", Background)
OPENAPI = web.AppKey("acechart_openapi", bytes)
"""The OpenAPI document, serialised once when the app is built."""
PAGES = web.AppKey("acechart_page_windows", WindowCache)
"""Windows of `timeseries/paginated` walks, cut into pages in memory."""
PARSED = web.AppKey("acechart_parsed_requests", Memo[tuple[str, str, str, str], Any])
"""The `pipeline.DataRequest` of recent data GETs (`pipeline.data_request`)."""

# Set by the runtime's cleanup context at startup.
RUNTIME = web.AppKey("acechart_runtime", Runtime)
ACCESS = web.AppKey("acechart_site_access", SiteAccess)
CATALOG = web.AppKey("acechart_point_catalog", PointCatalog)
JOBS = web.AppKey("acechart_jobs", JobService)
SITES = web.AppKey("acechart_site_directory", SiteDirectory)
CHARTS = web.AppKey("acechart_charts", ChartService)

INFO = web.RequestKey("acechart_request_info", RequestInfo)
