"""The OpenAPI 3.1 description of the saved-chart routes (`/api/charts`), merged into the
service's document beside the routes they describe (`server.routes.charts`)."""

from __future__ import annotations

from typing import Any

from acechart.query import INTERVALS, STATS
from acechart.server.charts import (
    CHART_SORTS,
    CHART_TYPES,
    MAX_CONFIG_BYTES,
    THUMBNAIL_HEIGHT,
    THUMBNAIL_WIDTH,
)
from acechart.server.openapi.common import JSON, POINT_NAME, SITE_NAME, errors, param, ref

__all__ = ["chart_paths", "chart_schemas"]

_TEXT = {
    403: "Not the chart's owner (it may read the chart, not change it), or the token may "
    "not read the site",
    404: "No such chart for this token: unknown, deleted, private to another token, or "
    "on a site the origin does not confirm this token for",
}
_ID = param("chart_id", "The chart's id", {"type": "string"}, required=True, where="path")


def _errors(*statuses: int) -> dict[str, Any]:
    return errors(*statuses, text=_TEXT)


def _chart(description: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {JSON: {"schema": ref("Chart")}}}}


def chart_paths() -> dict[str, Any]:
    """`paths` entries of every chart route."""
    body = {"required": True, "content": {JSON: {"schema": ref("ChartInput")}}}
    return {
        "/api/charts": {
            "post": {
                "operationId": "createChart",
                "summary": "Save a chart of a site the token may read (the caller owns it)",
                "requestBody": body,
                "responses": {
                    **_chart("Saved; `Location` is its URL", "201"),
                    **_errors(400, 401, 403, 429),
                },
            },
            "get": {
                "operationId": "listCharts",
                "summary": "The caller's charts (scope=own), or a site's public charts",
                "parameters": [
                    param("scope", "own (default) or public", {"enum": ["own", "public"]}),
                    param("site", "The site (required for scope=public)", {"type": "string"}),
                    param(
                        "sort",
                        "recent (newest first, default) or popular (most viewed first)",
                        {"enum": list(CHART_SORTS)},
                    ),
                    param(
                        "limit",
                        "Charts per page (default 50)",
                        {"type": "integer", "minimum": 1, "maximum": 500},
                    ),
                    param("offset", "Charts to skip", {"type": "integer", "minimum": 0}),
                ],
                "responses": {
                    "200": {
                        "description": "The charts",
                        "content": {JSON: {"schema": ref("ChartList")}},
                    },
                    **_errors(400, 401, 403, 429),
                },
            },
        },
        "/api/charts/{chart_id}": {
            "get": {
                "operationId": "getChart",
                "summary": "One chart (each GET counts a view)",
                "parameters": [_ID],
                "responses": {**_chart("The chart"), **_errors(401, 404, 429)},
            },
            "put": {
                "operationId": "replaceChart",
                "summary": "Replace every field of the caller's chart (omitted: defaults)",
                "parameters": [_ID],
                "requestBody": body,
                "responses": {**_chart("The chart"), **_errors(400, 401, 403, 404, 429)},
            },
            "patch": {
                "operationId": "updateChart",
                "summary": "Change the given fields of the caller's chart",
                "parameters": [_ID],
                "requestBody": body,
                "responses": {**_chart("The chart"), **_errors(400, 401, 403, 404, 429)},
            },
            "delete": {
                "operationId": "deleteChart",
                "summary": "Delete the caller's chart and its stored objects",
                "parameters": [_ID],
                "responses": {"204": {"description": "Deleted"}, **_errors(401, 403, 404, 429)},
            },
        },
        "/api/charts/{chart_id}/thumbnail.png": {
            "get": {
                "operationId": "chartThumbnail",
                "summary": f"A {THUMBNAIL_WIDTH}x{THUMBNAIL_HEIGHT} PNG of what the dashboard "
                "draws for the chart's saved query (its chart type: lines, bars, dots, or an "
                "hour-by-date heat map of its first point; its interval, stat and zone), drawn "
                "on the server; stored and served until the data's TTL passes or the chart "
                "changes (`X-Cache-Status` HIT or MISS)",
                "parameters": [_ID],
                "responses": {
                    "200": {
                        "description": "The PNG",
                        "content": {
                            "image/png": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    "304": {"description": "Unchanged (`If-None-Match`)"},
                    **_errors(400, 401, 404, 429, 502, 504),
                },
            }
        },
    }


def chart_schemas(max_points: int) -> dict[str, Any]:
    """`components.schemas` entries the chart paths refer to (`max_points` per chart)."""
    when = {"type": "string", "format": "date-time"}
    query = {
        "type": "object",
        "description": "What the chart draws: `start`/`end` a date, ISO time, epoch ms or a "
        "relative time (`-7d`, `-2h`, `now`), kept as given; the thumbnail uses them",
        "properties": {
            "start": {"type": "string", "default": "-1d"},
            "end": {"type": "string", "default": "now"},
            "interval": {
                "enum": ["auto", *INTERVALS],
                "default": "auto",
                "description": "`auto`: the dashboard's choice by range and width (heat maps "
                "are always hourly)",
            },
            "stat": {"enum": list(STATS), "default": "avg"},
            "tz": {
                "type": "string",
                "default": "site",
                "description": "An IANA zone name, or `site`; always stored (a chart saved "
                "without it has `site`)",
            },
            "downsample": {"enum": ["minmaxlttb", "m4"]},
        },
        "additionalProperties": False,
    }
    fields: dict[str, Any] = {
        "siteId": SITE_NAME,
        "chartType": {"enum": list(CHART_TYPES), "default": "line"},
        "title": {"type": ["string", "null"], "maxLength": 200},
        "pointNames": {
            "type": "array",
            "items": POINT_NAME,
            "minItems": 1,
            "maxItems": max_points,
            "uniqueItems": True,
        },
        "configJson": {
            "type": "object",
            "description": f"The ECharts options (a JSON object, or a string holding one; at "
            f"most {MAX_CONFIG_BYTES} bytes as compact JSON)",
        },
        "isPublic": {"type": "boolean", "default": False},
        "query": query,
    }
    read_only: dict[str, Any] = {
        "id": {"type": "string"},
        "userId": {
            "type": "string",
            "description": "The owner: a fingerprint of its token, never the token",
        },
        "thumbnailUrl": {"type": "string"},
        "viewCount": {"type": "integer"},
        "createdAt": when,
        "updatedAt": when,
        "owned": {"type": "boolean", "description": "Whether the caller owns it"},
    }
    return {
        "ChartInput": {
            "type": "object",
            "description": "POST and PUT need siteId and pointNames; PATCH any subset. The "
            "read-only fields of a GET may be sent back and are ignored",
            "required": ["siteId", "pointNames"],
            "properties": {**fields, **read_only},
            "additionalProperties": False,
        },
        "Chart": {
            "type": "object",
            "required": ["id", "userId", "siteId", "chartType", "pointNames", "configJson"],
            "properties": {**fields, **read_only},
        },
        "ChartList": {
            "type": "object",
            "properties": {
                "metadata": {
                    "type": "object",
                    "properties": {
                        "scope": {"enum": ["own", "public"]},
                        "siteId": {"type": ["string", "null"]},
                        "sort": {"enum": list(CHART_SORTS)},
                        "count": {"type": "integer"},
                        "limit": {"type": "integer"},
                        "offset": {"type": "integer"},
                    },
                },
                "charts": {"type": "array", "items": ref("Chart")},
            },
        },
    }
