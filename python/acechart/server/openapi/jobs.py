"""The OpenAPI 3.1 description of the job routes, merged into the service's document.

`job_paths()` goes into `paths` and `job_schemas()` into `components.schemas`;
error responses refer to the service's `Error` schema. Kept beside the routes
so the two change together (`server.routes` registers exactly these paths
and methods, HEAD of the result included).
"""

from __future__ import annotations

from typing import Any

from acechart.query import INTERVALS, MAX_CHART_POINTS, STATS
from acechart.server.openapi.common import (
    ARROW,
    CSV,
    DATE_TIME,
    EPOCH_MS,
    EVENTS,
    JOB_FORMAT_ENUM,
    JOB_LAYOUT_ENUM,
    JSON,
    LAYOUT_TEXT,
    MSGPACK,
    PARQUET,
    POINT_NAME,
    SITE_NAME,
    errors,
    ref,
)
from acechart.wire import FORMATS

__all__ = ["job_paths", "job_schemas"]

_JOB_ERRORS = {
    401: "No token",
    404: "No such job for this token (unknown, expired, or another token's)",
}


def _errors(*statuses: int) -> dict[str, Any]:
    return errors(*statuses, text=_JOB_ERRORS)


_TOKEN = {
    "name": "X-ACE-Token",
    "in": "header",
    "required": False,
    "description": "The token that submitted the job (or `Authorization: Bearer`)",
    "schema": {"type": "string"},
}
_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "description": "The job's id, from the 202 answer",
    "schema": {"type": "string"},
}


_RESULT_HEADERS: dict[str, Any] = {
    "ETag": {
        "description": "Strong: the stored object's, or the conversion's (`\"c-...\"`)",
        "schema": {"type": "string"},
    },
    "Accept-Ranges": {"schema": {"type": "string", "enum": ["bytes"]}},
}


def _result_op(head: bool) -> dict[str, Any]:
    return {
        "operationId": "headJobResult" if head else "getJobResult",
        "summary": "The result: stored, or converted (format / Accept); byte ranges of both",
        "parameters": [
            _JOB_ID,
            _TOKEN,
            {
                "name": "format",
                "in": "query",
                "required": False,
                "description": "json, msgpack (binary), csv, arrow or parquet (Parquet needs "
                "the server's `acechart[arrow]` extra); default: as stored",
                "schema": {"enum": JOB_FORMAT_ENUM},
            },
            {
                "name": "layout",
                "in": "query",
                "required": False,
                "description": LAYOUT_TEXT + ". A result is converted series by series, so "
                "it has no `wide` layout.",
                "schema": {"enum": JOB_LAYOUT_ENUM},
            },
            {
                "name": "Range",
                "in": "header",
                "required": False,
                "description": "One byte range (`bytes=0-1023`, `bytes=1024-`, `bytes=-500`) "
                "of the stored or the converted document (a conversion never encoded before is "
                "encoded once to learn its length; then only the series a range overlaps "
                "are); several ranges get the whole document",
                "schema": {"type": "string"},
            },
            {
                "name": "If-Range",
                "in": "header",
                "required": False,
                "description": "The ETag the range belongs to; any other value gets the whole "
                "document (200)",
                "schema": {"type": "string"},
            },
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "ETags already held: 304 when one is the representation's",
                "schema": {"type": "string"},
            },
        ],
        "responses": {
            "200": {
                "description": "The whole document (with `Content-Length` once its length is "
                "known: always for the stored one, for a conversion once it has been encoded)",
                "headers": _RESULT_HEADERS,
                "content": {
                    JSON: {"schema": {"type": "object"}},
                    MSGPACK: {"schema": {"type": "string", "format": "binary"}},
                    CSV: {"schema": {"type": "string"}},
                    ARROW: {
                        "schema": {
                            "type": "string",
                            "format": "binary",
                            "description": "An Arrow IPC stream, a record batch per series "
                            "(`point, time, value`), each with its own dictionary of the "
                            "point's name",
                        }
                    },
                    PARQUET: {
                        "schema": {
                            "type": "string",
                            "format": "binary",
                            "description": "A Parquet file, `point, time, value`, a row group "
                            "per series (split past 2**20 rows), zstd; the schema metadata as "
                            "Arrow's",
                        }
                    },
                },
            },
            "206": {
                "description": "The requested byte range (`Content-Range: bytes a-b/total`), "
                "of the stored or the converted document",
                "headers": {
                    **_RESULT_HEADERS,
                    "Content-Range": {"schema": {"type": "string"}},
                },
            },
            "304": {"description": "Unchanged (`If-None-Match`)"},
            **_errors(400, 401, 404, 409, 416),
        },
    }


def job_paths() -> dict[str, Any]:
    """`paths` entries of every job route."""
    return {
        "/api/jobs": {
            "post": {
                "operationId": "submitJob",
                "summary": "Queue a large query or export (identical live requests share a job)",
                "parameters": [_TOKEN],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": ref("JobRequest")}},
                },
                "responses": {
                    "202": {
                        "description": "Queued; `Location` is the status URL",
                        "content": {JSON: {"schema": ref("JobAccepted")}},
                    },
                    **_errors(400, 401, 403),
                },
            }
        },
        "/api/jobs/{job_id}": {
            "get": {
                "operationId": "getJob",
                "summary": "A job's status, progress and, when done, its result or error",
                "parameters": [_JOB_ID, _TOKEN],
                "responses": {
                    "200": {
                        "description": "The job",
                        "content": {JSON: {"schema": ref("JobStatus")}},
                    },
                    **_errors(401, 404),
                },
            },
            "delete": {
                "operationId": "cancelJob",
                "summary": "Cancel a queued or running job; delete a finished one and its result",
                "parameters": [_JOB_ID, _TOKEN],
                "responses": {
                    "200": {
                        "description": "Cancelled",
                        "content": {JSON: {"schema": ref("JobStatus")}},
                    },
                    "202": {
                        "description": "Cancel asked; the run stops at its next progress write",
                        "content": {JSON: {"schema": ref("JobStatus")}},
                    },
                    "204": {"description": "A finished job and its result were deleted"},
                    **_errors(401, 404),
                },
            },
        },
        "/api/jobs/{job_id}/result": {"get": _result_op(False), "head": _result_op(True)},
        "/api/jobs/{job_id}/events": {
            "get": {
                "operationId": "jobEvents",
                "summary": "Server-Sent Events: `progress`, then `completed`/`failed`/`cancelled`",
                "parameters": [_JOB_ID, _TOKEN],
                "responses": {
                    "200": {
                        "description": "Each event's data is the job's status body",
                        "content": {EVENTS: {"schema": {"type": "string"}}},
                    },
                    **_errors(401, 404),
                },
            }
        },
    }


def job_schemas() -> dict[str, Any]:
    """`components.schemas` entries the job paths refer to (besides `Error`)."""
    when = {"type": "string", "format": "date-time"}
    return {
        "JobRequest": {
            "type": "object",
            "description": "The seed's QueueMessage fields",
            "required": ["siteId", "pointNames", "startTime", "endTime"],
            "properties": {
                "siteId": SITE_NAME,
                "pointNames": {
                    "type": "array",
                    "items": POINT_NAME,
                    "minItems": 1,
                    "uniqueItems": True,
                    "description": "Also one comma-separated string",
                },
                "startTime": {
                    "anyOf": [DATE_TIME, EPOCH_MS],
                    "description": "A date or ISO-8601 datetime (naive = UTC), or epoch ms as "
                    "a number; before `endTime`, by at most the query limit in days",
                },
                "endTime": {"anyOf": [DATE_TIME, EPOCH_MS], "description": "exclusive"},
                "aggregation": {"enum": list(INTERVALS)},
                "tz": {
                    "type": "string",
                    "default": "UTC",
                    "description": "IANA zone of the buckets, or `site`",
                },
                "stat": {"enum": list(STATS), "default": "avg"},
                "resetThreshold": {"type": "number", "minimum": 0},
                "format": {"enum": JOB_FORMAT_ENUM},
                "layout": {"enum": JOB_LAYOUT_ENUM},
                "priority": {"enum": ["low", "normal", "high"]},
                "downsample": {"enum": ["minmaxlttb", "m4"]},
                "maxPoints": {"type": "integer", "minimum": 3, "maximum": MAX_CHART_POINTS},
                "metadata": {
                    "type": "object",
                    "properties": {
                        "notifyUrl": {
                            "type": "string",
                            "format": "uri",
                            "pattern": "^https?://",
                            "description": "POSTed the job's status when it ends; a URL the "
                            "webhook policy refuses (userinfo, a loopback, link-local or "
                            "private address not allowed) is a 400",
                        }
                    },
                },
            },
        },
        "JobAccepted": {
            "type": "object",
            "required": ["jobId", "status", "estimatedDuration", "statusUrl", "message"],
            "properties": {
                "jobId": {"type": "string"},
                "status": {"enum": ["queued", "processing"]},
                "estimatedDuration": {"type": "integer", "description": "seconds"},
                "statusUrl": {"type": "string"},
                "message": {"type": "string"},
            },
        },
        "JobStatus": {
            "type": "object",
            "required": ["jobId", "status", "createdAt"],
            "properties": {
                "jobId": {"type": "string"},
                "status": {"enum": ["queued", "processing", "completed", "failed", "cancelled"]},
                "progress": {"type": "integer", "minimum": 0, "maximum": 100},
                "estimatedRemaining": {"type": "integer", "description": "seconds"},
                "createdAt": when,
                "startedAt": when,
                "completedAt": when,
                "expiresAt": when,
                "duration": {"type": "integer", "description": "seconds"},
                "resultUrl": {"type": "string"},
                "resultFormat": {"enum": sorted(set(FORMATS.values()))},
                "resultSize": {"type": "integer"},
                "error": {"type": "string"},
                "message": {"type": "string"},
                "retryable": {"type": "boolean"},
                "retryAfter": {"type": "integer"},
                "attempts": {"type": "integer"},
                "cancelRequested": {"type": "boolean"},
            },
        },
    }
