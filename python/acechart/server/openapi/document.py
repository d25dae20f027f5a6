"""The OpenAPI 3.1 description of every route, parameter and error of the service.

Kept as data beside the routes; a test checks that every registered route is
described here and that every described route exists, so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

from acechart._core import __version__
from acechart.query import DOWNSAMPLERS, INTERVALS
from acechart.server.openapi.common import (
    ARROW,
    CSV,
    FORMAT_ENUM,
    JSON,
    LAYOUT_ENUM,
    LAYOUT_TEXT,
    MSGPACK,
    errors,
    param,
    ref,
)
from acechart.server.openapi.compat import compat_paths, compat_schemas
from acechart.server.openapi.jobs import job_paths, job_schemas
from acechart.settings import Settings

__all__ = ["build_document"]


def _data_headers() -> dict[str, Any]:
    def header(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"description": description, "schema": schema or {"type": "string"}}

    return {
        "X-Cache-Status": header(
            "HIT, MISS, PARTIAL or STALE", {"enum": ["HIT", "MISS", "PARTIAL", "STALE"]}
        ),
        "X-Cache-Source": header("Slowest tier involved", {"enum": ["EDGE", "R2", "D1", "ORIGIN"]}),
        "X-Processing-Time": header("Server time, e.g. `3.2ms`"),
        "X-Data-Samples": header("Samples (or buckets) in the answer", {"type": "integer"}),
        "X-Request-Id": header("Request id, also in the log line"),
        "Cache-Control": header("`private, max-age=N, ...` with N from the seed's TTL table"),
        "ETag": header("Weak validator; send it back in If-None-Match for a 304"),
        "Vary": header("`Accept, Accept-Encoding`"),
        "Warning": header("`110` when stale, `111` when the origin failed and stale was served"),
    }


def _query_params(default_interval: str) -> list[dict[str, Any]]:
    intervals = (
        list(INTERVALS) if default_interval == "raw" else [i for i in INTERVALS if i != "raw"]
    )
    return [
        param("site", "Site name", {"type": "string"}, required=True, example="ses_falls_city"),
        param(
            "points",
            "Point names, comma-separated; may repeat. Names may contain `/` and `.`. "
            "Required (or `point_names`); a name the site's catalogue does not list is a 404 "
            "naming it in `unknownPoints`.",
            {"type": "array", "items": {"type": "string"}},
            style="form",
            explode=True,
        ),
        param("point_names", "Another name of `points`", {"type": "string"}),
        param(
            "start",
            "Start (inclusive): a date, an ISO-8601 datetime (UTC when naive) or epoch "
            "milliseconds (all digits). Required (or `start_time`).",
            {"type": "string"},
            example="2024-01-01",
        ),
        param("start_time", "Another name of `start`", {"type": "string"}),
        param(
            "end",
            "End (exclusive): like `start`. Required (or `end_time`).",
            {"type": "string"},
            example="2024-01-08",
        ),
        param("end_time", "Another name of `end`", {"type": "string"}),
        param(
            "interval",
            f"Bucket width (default {default_interval})",
            {"enum": intervals, "default": default_interval},
        ),
        param(
            "format",
            "Wire format; `Accept: application/x-msgpack` wins over json, msgpack and csv "
            f"(not over arrow). `Accept: {ARROW}` alone asks for Arrow.",
            {"enum": FORMAT_ENUM, "default": "json"},
        ),
        param(
            "layout",
            LAYOUT_TEXT + ". Without it: the format's own.",
            {"enum": LAYOUT_ENUM, "default": "rows"},
        ),
        param(
            "maxPoints",
            "Thin each series to at most this many samples (first/last kept)",
            {"type": "integer", "minimum": 3},
        ),
        param(
            "downsample",
            "Thinning method (needs maxPoints)",
            {"enum": list(DOWNSAMPLERS), "default": "minmaxlttb"},
        ),
        param(
            "async",
            "Queue a large query as a background job (202 + Location) instead of a 413",
            {"type": "boolean", "default": False},
        ),
        param(
            "X-ACE-Token",
            "The ACE token (or `Authorization: Bearer`)",
            {"type": "string"},
            where="header",
        ),
        param(
            "Prefer",
            "`respond-async` is the same as async=true",
            {"type": "string"},
            where="header",
        ),
        param(
            "If-None-Match", "ETag of a copy the client holds", {"type": "string"}, where="header"
        ),
    ]


def _data_content(schema: str) -> dict[str, Any]:
    return {
        JSON: {"schema": ref(schema)},
        MSGPACK: {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": f"{schema} as MessagePack (rows), or with layout=columns each "
                "series as `{name, t: bin, v: bin}` of little-endian float64 arrays",
            }
        },
        CSV: {"schema": {"type": "string", "description": "time,point,value[,...] rows"}},
        ARROW: {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": "An Arrow IPC stream. layout=series: a record batch per point, "
                "`point` (dictionary utf8), `time` (timestamp[ms, UTC]), `value` (float64; "
                "aggregations add `count, sum, min, max, avg, stddev`, and `value` is avg); "
                "layout=wide: one batch, `time` and a nullable float64 column per point. "
                f"The schema metadata holds the {schema} metadata as JSON under "
                "`acechart:metadata` and `[{name, rows}]` per point under `acechart:series`.",
            }
        },
    }


def _post(op: dict[str, Any], operation_id: str) -> dict[str, Any]:
    """The POST twin of a GET data route: the same parameters as a JSON object body."""
    return {
        **op,
        "operationId": operation_id,
        "summary": op["summary"] + " (parameters as a JSON body)",
        "description": "The same parameters as the GET, as a JSON object, for point lists "
        "too long for a request line; `points` may be a list. Query-string parameters fill "
        "in what the body leaves out.",
        "parameters": [p for p in op["parameters"] if p["in"] == "header"],
        "requestBody": {"required": True, "content": {JSON: {"schema": ref("QueryBody")}}},
    }


def with_head(paths: dict[str, Any]) -> dict[str, Any]:
    """Every GET also answers HEAD: the same headers, no body."""
    out: dict[str, Any] = {}
    for path, ops in paths.items():
        ops = dict(ops)
        if "get" in ops and "head" not in ops:
            get = ops["get"]
            ops["head"] = {
                **get,
                "operationId": "head" + get["operationId"][0].upper() + get["operationId"][1:],
                "summary": "HEAD of: " + get["summary"],
                "responses": {
                    code: {k: v for k, v in response.items() if k != "content"}
                    for code, response in get["responses"].items()
                },
            }
        out[path] = ops
    return out


def build_document(settings: Settings) -> dict[str, Any]:
    number_or_null = {"type": ["number", "null"]}
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": {"type": "string", "examples": ["bad_request", "rate_limit_exceeded"]},
                "message": {"type": "string"},
                "parameter": {"type": "string", "description": "400: the parameter at fault"},
                "retryAfter": {"type": "integer", "description": "429: seconds to wait"},
                "estimatedSamples": {"type": "integer", "description": "413"},
                "suggestions": {"type": "array", "items": {"type": "string"}},
                "originStatus": {"type": ["integer", "null"], "description": "502/504"},
                "requestId": {"type": "string", "description": "500"},
            },
        },
        "TimeseriesDocument": {
            "type": "object",
            "required": ["metadata", "series"],
            "properties": {
                "metadata": {
                    "type": "object",
                    "properties": {
                        "siteId": {"type": "string"},
                        "pointNames": {"type": "array", "items": {"type": "string"}},
                        "startTime": {"type": "string", "format": "date-time"},
                        "endTime": {"type": "string", "format": "date-time"},
                        "aggregation": {"enum": list(INTERVALS)},
                        "totalSamples": {"type": "integer"},
                        "downsample": {"enum": list(DOWNSAMPLERS)},
                        "maxPoints": {"type": "integer"},
                    },
                },
                "series": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "data": {
                                "type": "array",
                                "description": "[ms since epoch, value or null]",
                                "items": {
                                    "type": "array",
                                    "prefixItems": [{"type": "integer"}, number_or_null],
                                },
                            },
                        },
                    },
                },
            },
        },
        "AggregationsDocument": {
            "type": "object",
            "properties": {
                "metadata": {
                    "type": "object",
                    "properties": {
                        "siteId": {"type": "string"},
                        "pointName": {"type": "string", "description": "when one point"},
                        "pointNames": {"type": "array", "items": {"type": "string"}},
                        "startTime": {"type": "string", "format": "date-time"},
                        "endTime": {"type": "string", "format": "date-time"},
                        "interval": {"enum": [i for i in INTERVALS if i != "raw"]},
                        "dataPoints": {"type": "integer"},
                    },
                },
                "series": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "aggregations": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "timestamp": {"type": "integer"},
                                        "avg": number_or_null,
                                        "min": number_or_null,
                                        "max": number_or_null,
                                        "sum": number_or_null,
                                        "count": {"type": "integer"},
                                        "stddev": number_or_null,
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
        "Point": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "displayName": {"type": "string"},
                "equipment": {"type": ["string", "null"]},
                "equipmentId": {"type": ["string", "null"]},
                "equipmentName": {"type": ["string", "null"]},
                "pointType": {"type": ["string", "null"]},
                "unit": {"type": ["string", "null"]},
                "markerTags": {"type": "array", "items": {"type": "string"}},
                "kvTags": {"type": "object"},
                "collectInterval": {"type": ["integer", "null"], "description": "seconds"},
            },
        },
        "PointsDocument": {
            "type": "object",
            "properties": {
                "metadata": {
                    "type": "object",
                    "properties": {
                        "siteId": {"type": "string"},
                        "count": {"type": "integer"},
                        "offset": {"type": "integer"},
                        "updatedAt": {"type": ["string", "null"], "format": "date-time"},
                    },
                },
                "points": {"type": "array", "items": ref("Point")},
            },
        },
        "QueryBody": {
            "type": "object",
            "description": "The query parameters of the GET as a JSON object",
            "required": ["site"],
            "properties": {
                "site": {"type": "string"},
                "points": {
                    "type": ["array", "string"],
                    "items": {"type": "string"},
                    "description": "A list, or one comma-separated string (or `point_names`)",
                },
                "start": {
                    "type": ["string", "integer"],
                    "description": "Date, ISO-8601 or epoch ms (or `start_time`)",
                },
                "end": {"type": ["string", "integer"], "description": "Exclusive (or `end_time`)"},
                "interval": {"enum": list(INTERVALS)},
                "format": {"enum": FORMAT_ENUM},
                "layout": {"enum": LAYOUT_ENUM},
                "maxPoints": {"type": "integer"},
                "downsample": {"enum": list(DOWNSAMPLERS)},
                "async": {"type": "boolean"},
            },
        },
        "Ready": {
            "type": "object",
            "properties": {
                "status": {"enum": ["ready", "unavailable"]},
                "checks": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "database, objectStore, origin, and redis when one is"
                    " configured: `ok` or `error: ...`",
                },
                "instance": {
                    "type": "string",
                    "description": "The answering instance (ACECHART_INSTANCE_ID)",
                },
            },
        },
    }
    data_errors = errors(400, 401, 403, 404, 413, 414, 429, 500, 502, 504)
    ok_data = {
        "description": "The data (JSON by default, MessagePack or CSV by negotiation)",
        "headers": _data_headers(),
    }
    paths: dict[str, Any] = {
        "/api/timeseries": {
            "get": {
                "operationId": "getTimeseries",
                "summary": "Samples (or bucket averages) of points over a time range",
                "parameters": _query_params("raw"),
                "responses": {
                    "200": {**ok_data, "content": _data_content("TimeseriesDocument")},
                    "202": {
                        "description": "Large query queued (async=true or Prefer: "
                        "respond-async); `Location` is the job's status URL",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                        "content": {JSON: {"schema": ref("JobAccepted")}},
                    },
                    "304": {"description": "Not modified (If-None-Match matched the ETag)"},
                    **data_errors,
                },
            }
        },
        "/api/aggregations": {
            "get": {
                "operationId": "getAggregations",
                "summary": "Bucket statistics (avg, min, max, sum, count, stddev) per point",
                "parameters": _query_params("1hr"),
                "responses": {
                    "200": {**ok_data, "content": _data_content("AggregationsDocument")},
                    "304": {"description": "Not modified (If-None-Match matched the ETag)"},
                    **data_errors,
                },
            }
        },
        "/api/points": {
            "get": {
                "operationId": "listPoints",
                "summary": "A site's point catalogue (refreshed from the origin daily)",
                "parameters": [
                    param("site", "Site name", {"type": "string"}, required=True),
                    param("q", "Substring of the point or display name", {"type": "string"}),
                    param("equipment", "Exact equipment name", {"type": "string"}),
                    param("tag", "A marker tag the point carries", {"type": "string"}),
                    param(
                        "limit",
                        "Most points returned",
                        {"type": "integer", "minimum": 1, "maximum": 10000},
                    ),
                    param("offset", "Points skipped", {"type": "integer", "minimum": 0}),
                    param(
                        "X-ACE-Token",
                        "The ACE token (or `Authorization: Bearer`)",
                        {"type": "string"},
                        where="header",
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "Matching points, by name",
                        "content": {JSON: {"schema": ref("PointsDocument")}},
                    },
                    **errors(400, 401, 403, 404, 429, 500, 502, 504),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "security": [],
                "summary": "The process is alive",
                "responses": {"200": {"description": '`{"status": "ok"}`'}},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "ready",
                "security": [],
                "summary": "Database, object store and origin are reachable",
                "responses": {
                    "200": {"description": "Ready", "content": {JSON: {"schema": ref("Ready")}}},
                    "503": {
                        "description": "A dependency failed",
                        "content": {JSON: {"schema": ref("Ready")}},
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "security": [],
                "summary": "Prometheus metrics (the seed's section 7.1)",
                "responses": {"200": {"description": "Prometheus text exposition format"}},
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "security": [],
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1 document"}},
            }
        },
        "/": {
            "get": {
                "operationId": "dashboard",
                "security": [],
                "summary": "A one-page chart of a point (HTML)",
                "responses": {"200": {"description": "HTML page"}},
            }
        },
    }
    for path, operation_id in (
        ("/api/timeseries", "postTimeseries"),
        ("/api/aggregations", "postAggregations"),
    ):
        paths[path]["post"] = _post(paths[path]["get"], operation_id)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "acechart",
            "version": __version__,
            "description": "A chart-data proxy and cache in front of the ACE IoT timeseries API. "
            f"Limits: {settings.max_points_per_query} points and {settings.max_range_days} days "
            f"per query; {settings.rate_limit_per_minute} requests per minute per token and "
            "endpoint (0: unlimited). Every error has the body "
            '`{"error": code, "message": text, ...}`. Besides the seed\'s routes, the old '
            "Worker's ACE-shaped routes (`/api/sites...`, `/api/health`) are served from the "
            "caches and any other GET under /api/ is passed to the origin. A request line may "
            f"be up to {settings.server_max_line_bytes} bytes (else 414: POST the parameters).",
        },
        "components": {
            "schemas": {**schemas, **job_schemas(), **compat_schemas()},
            "securitySchemes": {
                "aceToken": {"type": "apiKey", "in": "header", "name": "X-ACE-Token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"aceToken": []}, {"bearer": []}],
        "paths": with_head({**paths, **job_paths(), **compat_paths(settings)}),
    }
