"""One structured log line per request (seed 7.2) with a request id, and the JSON formatter.

The request id is the caller's `X-Request-Id` when it looks like one (so ids
follow a request through proxies), else a new one; it is returned in
`X-Request-Id` and quoted in 500 bodies. Handlers fill a `RequestInfo` as they
learn what the request is (site, points, format, class, cache tier); this
middleware, the outermost, writes it out with the status and timing and
records the request metrics. Tokens never reach it: only the first 12 hex
digits of the token's MAC identify a caller.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from acechart.server.info import RequestInfo
from acechart.server.keys import INFO, METRICS

__all__ = ["JsonFormatter", "configure_logging", "request_log"]

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


_ID_PREFIX = secrets.token_hex(8)
"""Random per process, so ids of different instances or restarts never collide."""
_ID_COUNTER = itertools.count()


def new_info(request: web.Request) -> RequestInfo:
    """The request's id: the caller's when it looks like one, else this process's prefix
    and a counter (unique without a system call per request: an id names, it guards
    nothing)."""
    given = request.headers.get("X-Request-Id", "")
    rid = given if _REQUEST_ID.fullmatch(given) else f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"
    return RequestInfo(rid, time.perf_counter())


def endpoint_of(request: web.Request) -> str:
    """The route's name (a closed set, safe as a metric label); `unmatched` otherwise."""
    name = request.match_info.route.name
    return name or "unmatched"


@web.middleware
async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    info = new_info(request)
    request[INFO] = info
    status = 499  # the client went away before an answer
    response: web.StreamResponse | None = None
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = info.request_id
        return response
    finally:
        elapsed = info.elapsed_ms()
        endpoint = endpoint_of(request)
        request.app[METRICS].record_response(endpoint, status, elapsed / 1000.0)
        size = response.content_length if response is not None else None
        _log(request, info, status, elapsed, size, cancelled=response is None)


def _log(
    request: web.Request,
    info: RequestInfo,
    status: int,
    elapsed_ms: float,
    size: int | None,
    *,
    cancelled: bool,
) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "type": "request",
        "requestId": info.request_id,
        "request": {
            "method": request.method,
            "url": request.rel_url.path_qs,
            "siteId": info.site,
            "pointCount": info.point_count,
            "estimatedSamples": info.estimated_samples,
            "format": info.format,
            "client": info.client,
        },
        "response": {
            "status": status,
            "cacheStatus": info.cache_status,
            "cacheSource": info.cache_source,
            "processingTime": round(elapsed_ms, 2),
            "dataSize": size,
            "samples": info.samples,
        },
        "classification": info.classification,
    }
    logger.info(
        "%s %s %d %.1fms%s",
        request.method,
        request.rel_url.path_qs,
        status,
        elapsed_ms,
        " (client gone)" if cancelled else "",
        extra={"fields": fields},
    )


_ENCODER = json.JSONEncoder(default=str)
"""Made once: `json.dumps` with any argument builds a new encoder per call, which cost
more than the encoding of a request line."""


class JsonFormatter(logging.Formatter):
    """Every record as one JSON object; request lines carry their seed 7.2 fields."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def timestamp(self, created: float) -> str:
        """ISO-8601 UTC with milliseconds (`2025-01-01T00:00:00.000+00:00`); the part up
        to the second is made once per second, as a request line is written per request."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._stamp}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": self.timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(out)


def configure_logging(log_format: str) -> None:
    """Switch the root handlers to JSON lines (`json`) or leave the text format (`text`).

    A record also skips what the service's lines never show (the caller's source
    line, thread, process and task names): the logging HOWTO's own optimisations,
    a fifth of the cost of the request line written per request.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if log_format != "json":
        return
    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonFormatter())
