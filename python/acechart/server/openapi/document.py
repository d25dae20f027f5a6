"""The OpenAPI 3.1 description of every route, parameter and error of the service.

Kept as data beside the routes; a test checks that every registered route is
described here and that every described route exists, so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

from acechart._core import __version__
from acechart.query import AGG_STATS, DOWNSAMPLERS, INTERVALS, MAX_CHART_POINTS, STATS
from acechart.server.openapi.charts import chart_paths, chart_schemas
from acechart.server.openapi.common import (
    ARROW,
    CSV,
    EPOCH_MS,
    EXAMPLE_POINT,
    FORMAT_ENUM,
    JSON,
    LAYOUT_ENUM,
    LAYOUT_TEXT,
    MAX_INT,
    MSGPACK,
    POINT_NAME,
    SITE_NAME,
    TIME,
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
            "HIT (all cached), MISS (all from the origin), PARTIAL (cache and origin; or, with "
            "a `199` Warning, a partial answer: the origin failed and only what is cached is "
            "there, `metadata.missing` names the rest) or STALE",
            {"enum": ["HIT", "MISS", "PARTIAL", "STALE"]},
        ),
        "X-Cache-Source": header("Slowest tier involved", {"enum": ["EDGE", "R2", "D1", "ORIGIN"]}),
        "X-Processing-Time": header("Server time, e.g. `3.2ms`"),
        "X-Data-Samples": header("Samples (or buckets) in the answer", {"type": "integer"}),
        "X-Request-Id": header("Request id, also in the log line"),
        "Cache-Control": header(
            "`private, max-age=N, ...` with N from the seed's TTL table, at most the fastest "
            "point's cadence for a range reaching the freshness horizon, 0 for stale and "
            "partial answers"
        ),
        "ETag": header(
            "Weak validator; send it back in If-None-Match for a 304. Absent on a streamed "
            "answer (`/api/timeseries` of `stream_min_samples` samples or more, "
            "`/api/aggregations` of as many statistics: chunked, no Content-Length; a "
            "failure mid-stream aborts the connection)"
        ),
        "Vary": header("`Accept, Accept-Encoding`"),
        "Warning": header(
            "`110` when stale, `111` when the origin failed and stale was served, `199` "
            "(`Partial answer: ...`) when the origin failed and the answer holds only what is "
            "cached"
        ),
        "X-Data-Missing": header(
            "Partial answers only: the ranges any point lacks, as ISO-8601 intervals "
            "`start/end` (end exclusive), comma-separated (the last spans the rest past 16); "
            "the per-point ranges are in `metadata.missing` of JSON, MessagePack and Arrow "
            "answers, so this header is how CSV answers carry them"
        ),
    }


def _query_params(default_interval: str, settings: Settings) -> list[dict[str, Any]]:
    max_points, max_days = settings.max_points_per_query, settings.max_range_days
    intervals = (
        list(INTERVALS) if default_interval == "raw" else [i for i in INTERVALS if i != "raw"]
    )
    return [
        param("site", "Site name", SITE_NAME, required=True, example="ses_falls_city"),
        param(
            "points",
            "Point names, comma-separated; may repeat (`points=a&points=b,c`). Names may "
            "contain `/` and `.` but no `.` or `..` segment. Also accepted as `point_names` "
            "(both with different names: 400). A name the site's catalogue does not list is a "
            f"404 naming it in `unknownPoints`. At most {max_points} names.",
            {
                "type": "array",
                "items": POINT_NAME,
                "minItems": 1,
                "maxItems": max_points,
                "uniqueItems": True,
            },
            required=True,
            style="form",
            explode=True,
            example=[EXAMPLE_POINT],
        ),
        param(
            "start",
            "Start (inclusive): a date, an ISO-8601 datetime (UTC when naive) or epoch "
            "milliseconds (all digits). Also accepted as `start_time`. Before `end`, and at "
            f"most {max_days} days before it (else 400).",
            TIME,
            required=True,
            example="2024-01-01",
        ),
        param(
            "end",
            "End (exclusive): like `start`. Also accepted as `end_time`.",
            TIME,
            required=True,
            example="2024-01-08",
        ),
        param(
            "interval",
            f"Bucket width (default {default_interval}). An interval query covers whole "
            "buckets: [start, end) widens to the start of the bucket holding `start` and the "
            "end of the one holding `end`'s last instant. `1week` starts on Monday, `1month` "
            "on the 1st, both at midnight in `tz`.",
            {"enum": intervals, "default": default_interval},
        ),
        param(
            "tz",
            "Time zone of the buckets: an IANA name (`America/Chicago`), or `site` for the "
            "zone of the site's coordinates. `1day` starts at local midnight (a DST day is 23 "
            "or 25 hours, and its count shows it); sub-day intervals follow the zone's wall "
            "clock. Unknown zones are a 400 naming `tz`.",
            {"type": "string", "default": "UTC"},
            example="Europe/Berlin",
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
        *(
            [
                param(
                    "stat",
                    "What an interval series carries as its value: a bucket statistic (avg, "
                    "min, max, sum, count, first, last), `delta` (consumption of a cumulative "
                    "meter: last minus the previous bucket's last, a drop beyond "
                    "`resetThreshold` counted as a reset), `twa` (time-weighted average of a "
                    "point reported on change) or `on_time` (seconds a binary point was on). "
                    "Needs an interval.",
                    {"enum": list(STATS), "default": "avg"},
                ),
                param(
                    "resetThreshold",
                    "stat=delta: a drop larger than this is a meter reset or rollover "
                    "(default: the ACECHART_METER_RESET_THRESHOLD setting)",
                    {"type": "number", "minimum": 0},
                ),
                param(
                    "maxPoints",
                    "Thin each series to at most this many samples (first/last kept); at least "
                    "4 with `downsample=m4`",
                    {"type": "integer", "minimum": 3, "maximum": MAX_CHART_POINTS},
                ),
                param(
                    "downsample",
                    "Thinning method; needs maxPoints (without it: 400), which alone means "
                    "minmaxlttb",
                    {"enum": list(DOWNSAMPLERS), "default": "minmaxlttb"},
                ),
            ]
            if default_interval == "raw"
            else [
                param(
                    "stat",
                    "The statistics each row carries, comma-separated, in this order (no "
                    "repeats): bucket statistics (avg, min, max, sum, count, stddev, first, "
                    "last) and the raw-derived ones of /api/timeseries (`delta`, `twa`, "
                    "`on_time`, from the raw samples and the one before each bucket). "
                    "Without it: the seed's full row. Arrow's `value` is the first named; "
                    "CSV and Arrow columns follow the list (then `partial`). A bucket that "
                    "has a raw-derived value but no sample has count and sum 0 and null "
                    "statistics. Unknown names: 400 naming `stat`.",
                    {
                        "type": "array",
                        "items": {"enum": list(AGG_STATS)},
                        "minItems": 1,
                        "uniqueItems": True,
                    },
                    style="form",
                    explode=False,
                    example=["avg", "max", "delta"],
                ),
                param(
                    "resetThreshold",
                    "stat=delta: a drop larger than this is a meter reset or rollover "
                    "(default: the ACECHART_METER_RESET_THRESHOLD setting)",
                    {"type": "number", "minimum": 0},
                ),
                param(
                    "maxPoints",
                    "At most this many buckets per series: every k neighbouring buckets are "
                    "merged into one (k = ceil(buckets / maxPoints)), so sums, counts, min, "
                    "max, first and last stay true (and delta, twa and on_time are those of "
                    "the merged buckets); metadata.rebucketed names k",
                    {"type": "integer", "minimum": 1, "maximum": MAX_CHART_POINTS},
                ),
            ]
        ),
        param(
            "async",
            "Queue a large query as a background job (202 + Location) instead of a 413",
            {"type": "boolean", "default": False},
        ),
        param(
            "partial",
            "When the origin fails and at least ACECHART_PARTIAL_MIN_SHARE (90%) of the range "
            "is cached, answer 200 with what is cached (`X-Cache-Status: PARTIAL`, a `199` "
            "Warning, `metadata.missing`); `false` refuses and gets the 502/504",
            {"type": "boolean", "default": True},
        ),
        param(
            "Cache-Control",
            "`no-cache` or `max-age=0`: skip the edge cache and refetch the fresh edge",
            {"type": "string"},
            where="header",
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
        CSV: {
            "schema": {
                "type": "string",
                "description": "time,point,value rows; aggregations: "
                "time,point,count,sum,min,max,avg,stddev,first,last,partial (with `stat=`: "
                "time,point, the named statistics, partial), `partial` true on a series' "
                "running last bucket",
            }
        },
        ARROW: {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": "An Arrow IPC stream. layout=series: a record batch per point, "
                "`point` (dictionary utf8), `time` (timestamp[ms, UTC]), `value` (float64; "
                "aggregations add `count, sum, min, max, avg, stddev, first, last` and "
                "`partial` (bool: the running last bucket), and `value` is avg; with `stat=` "
                "the named statistics, then `partial`, and `value` is the first named); "
                "layout=wide: one batch, `time` and a nullable float64 column per point. "
                f"The schema metadata holds the {schema} metadata as JSON under "
                "`acechart:metadata` and `[{name, rows}]` per point under `acechart:series`.",
            }
        },
    }


_BODY_OWN = frozenset({"site", "points", "start", "end", "start_time", "end_time"})


def _body(base: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a GET data route's POST twin: `base`'s site, points and range,
    and every other query parameter of the GET with the GET's own schema (so the body
    takes exactly what the query string does)."""
    properties = {k: v for k, v in base["properties"].items() if k in _BODY_OWN}
    for p in op["parameters"]:
        if p["in"] == "query" and p["name"] not in _BODY_OWN:
            properties[p["name"]] = p["schema"]
    return {**base, "properties": properties}


def _post(op: dict[str, Any], operation_id: str, body: str) -> dict[str, Any]:
    """The POST twin of a GET data route: the same parameters as a JSON object body."""
    return {
        **op,
        "operationId": operation_id,
        "summary": op["summary"] + " (parameters as a JSON body)",
        "description": "The same parameters as the GET, as a JSON object, for point lists "
        "too long for a request line; `points` may be a list. Query-string parameters fill "
        "in what the body leaves out.",
        "parameters": [p for p in op["parameters"] if p["in"] == "header"],
        "requestBody": {"required": True, "content": {JSON: {"schema": ref(body)}}},
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
    bucket_meta: dict[str, Any] = {
        "timeZone": {"type": "string", "description": "the buckets' zone, when not UTC"},
        "partialLast": {
            "type": "boolean",
            "description": "interval answers: some series' last bucket has not ended yet",
        },
    }
    missing: dict[str, Any] = {
        "type": "object",
        "description": "Partial answers only: per point, the [start ms, end ms) ranges it "
        "lacks because the origin failed",
        "additionalProperties": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
        },
    }
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
                "estimatedSeconds": {
                    "type": "number",
                    "description": "413: estimated origin time of the uncached part",
                },
                "budgetSeconds": {"type": "number", "description": "413: the request budget"},
                "suggestedRange": {
                    "type": "object",
                    "description": "413: the longest range ending at `end` estimated to fit",
                    "properties": {"start": {"type": "string"}, "end": {"type": "string"}},
                },
                "suggestedPoints": {
                    "type": "integer",
                    "description": "413: how many of the points fit over the whole range",
                },
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
                        "missing": missing,
                        **bucket_meta,
                        "stat": {"enum": list(STATS), "description": "when not avg"},
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
                                    "minItems": 2,
                                    "maxItems": 2,
                                    "items": number_or_null,
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
                        "missing": missing,
                        **bucket_meta,
                        "stat": {
                            "type": "array",
                            "items": {"enum": list(AGG_STATS)},
                            "description": "the statistics `stat=` chose, when given",
                        },
                        "rebucketed": {
                            "type": "object",
                            "description": "maxPoints merged every `factor` buckets into one",
                            "properties": {
                                "interval": {"type": "string"},
                                "factor": {"type": "integer"},
                            },
                        },
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
                                        "first": number_or_null,
                                        "last": number_or_null,
                                        "delta": number_or_null,
                                        "twa": number_or_null,
                                        "on_time": number_or_null,
                                        "partial": {
                                            "const": True,
                                            "description": "on the last row when its bucket "
                                            "has not ended yet",
                                        },
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
            "required": ["site", "points", "start", "end"],
            "properties": {
                "site": SITE_NAME,
                "points": {
                    "type": "array",
                    "items": POINT_NAME,
                    "minItems": 1,
                    "maxItems": settings.max_points_per_query,
                    "uniqueItems": True,
                    "description": "Point names (also `point_names`; a comma-separated string "
                    "is taken too)",
                },
                "start": {
                    "anyOf": [TIME, EPOCH_MS],
                    "description": "Date, ISO-8601 or epoch ms (also `start_time`)",
                },
                "end": {"anyOf": [TIME, EPOCH_MS], "description": "Exclusive (also `end_time`)"},
                "interval": {"enum": list(INTERVALS)},
                "format": {"enum": FORMAT_ENUM},
                "layout": {"enum": LAYOUT_ENUM},
                "maxPoints": {"type": "integer", "minimum": 3, "maximum": MAX_CHART_POINTS},
                "downsample": {"enum": list(DOWNSAMPLERS)},
                "async": {"type": "boolean"},
                "partial": {"type": "boolean"},
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
                "parameters": _query_params("raw", settings),
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
                "summary": "Bucket statistics (avg, min, max, sum, count, stddev, first, last; "
                "`stat=` chooses, delta, twa and on_time too) per point",
                "parameters": _query_params("1hr", settings),
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
                    param("site", "Site name", SITE_NAME, required=True),
                    param("q", "Substring of the point or display name", {"type": "string"}),
                    param("equipment", "Exact equipment name", {"type": "string"}),
                    param("tag", "A marker tag the point carries", {"type": "string"}),
                    param(
                        "limit",
                        "Most points returned",
                        {"type": "integer", "minimum": 1, "maximum": 10000},
                    ),
                    param(
                        "offset",
                        "Points skipped",
                        {"type": "integer", "minimum": 0, "maximum": MAX_INT},
                    ),
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
                "summary": "The dashboard (HTML): ECharts over the API, with saved charts",
                "responses": {"200": {"description": "HTML page"}},
            }
        },
        "/static/{name}": {
            "get": {
                "operationId": "dashboardAsset",
                "security": [],
                "summary": "The dashboard's script and styles, and its vendored libraries "
                "(ECharts, @msgpack/msgpack) with their licences",
                "parameters": [
                    param(
                        "name",
                        "A file name, e.g. vendor/echarts.min.js",
                        {"type": "string"},
                        required=True,
                        where="path",
                    ),
                ],
                "responses": {
                    "200": {"description": "The file"},
                    "304": {"description": "Unchanged (`If-None-Match`)"},
                    **errors(404),
                },
            }
        },
    }
    query_body = schemas.pop("QueryBody")
    for path, operation_id, body in (
        ("/api/timeseries", "postTimeseries", "QueryBody"),
        ("/api/aggregations", "postAggregations", "AggregationsBody"),
    ):
        schemas[body] = _body(query_body, paths[path]["get"])
        paths[path]["post"] = _post(paths[path]["get"], operation_id, body)
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
            "schemas": {
                **schemas,
                **job_schemas(),
                **chart_schemas(settings.max_points_per_query),
                **compat_schemas(),
            },
            "securitySchemes": {
                "aceToken": {"type": "apiKey", "in": "header", "name": "X-ACE-Token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"aceToken": []}, {"bearer": []}],
        "paths": with_head({**paths, **job_paths(), **chart_paths(), **compat_paths(settings)}),
    }
