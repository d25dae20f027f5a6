"""The OpenAPI 3.1 description of the old Worker's routes (the ACE API's own shapes).

`compat_paths(settings)` goes into `paths` and `compat_schemas()` into
`components.schemas`, beside the seed's routes; `server.routes` registers
exactly these paths (HEAD of every GET is added by `document.with_head`).
"""

from __future__ import annotations

from typing import Any

from acechart.server.openapi.common import (
    JSON,
    MAX_INT,
    MSGPACK,
    POINT_NAME,
    SITE_NAME,
    TIME,
    errors,
    param,
    ref,
)
from acechart.settings import Settings

__all__ = ["compat_paths", "compat_schemas"]

_TOKEN = param(
    "X-ACE-Token", "The ACE token (or `Authorization: Bearer`)", {"type": "string"}, where="header"
)
_SITE = param("site", "Site name", SITE_NAME, required=True, where="path")
_PAGING = [
    param(
        "page",
        "Page number, from 1",
        {"type": "integer", "minimum": 1, "maximum": MAX_INT, "default": 1},
    ),
    param(
        "per_page",
        "Items per page",
        {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10},
    ),
]


def _listing(item: str, description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": ["items", "page", "pages", "per_page", "total"],
        "properties": {
            "page": {"type": "integer"},
            "pages": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {"type": "integer"},
            "items": {"type": "array", "items": ref(item)},
        },
    }


def compat_schemas() -> dict[str, Any]:
    """`components.schemas` entries of the ACE-shaped routes."""
    text_or_null = {"type": ["string", "null"]}
    return {
        "AceSite": {
            "type": "object",
            "description": "A site as the origin's `/sites/{site}` returns it, unchanged",
            "additionalProperties": True,
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "nice_name": {"type": "string"},
                "address": text_or_null,
                "latitude": {"type": ["number", "null"]},
                "longitude": {"type": ["number", "null"]},
                "client": {"type": "string"},
            },
        },
        "AceSiteListing": _listing("AceSite", "The origin's paged site listing"),
        "AcePoint": {
            "type": "object",
            "description": "A point as the origin's `/configured_points` lists it, unchanged",
            "additionalProperties": True,
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "client": {"type": "string"},
                "site": {"type": "string"},
                "kv_tags": {"type": "object"},
                "bacnet_data": {"type": ["object", "null"]},
                "marker_tags": {"type": "array", "items": {"type": "string"}},
                "collect_config": {"type": ["object", "null"]},
                "point_type": text_or_null,
                "collect_enabled": {"type": "boolean"},
                "collect_interval": {"type": ["integer", "null"], "description": "seconds"},
                "created": text_or_null,
                "updated": text_or_null,
            },
        },
        "AcePointListing": _listing("AcePoint", "The origin's paged point listing"),
        "AcePage": {
            "type": "object",
            "description": "One page of the origin's `timeseries/paginated` body",
            "required": ["point_samples", "next_cursor", "has_more"],
            "properties": {
                "point_samples": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "value", "time"],
                        "properties": {
                            "name": {"type": "string"},
                            "value": {
                                "type": ["string", "null"],
                                "description": "The value as decimal text (`parseFloat` reads "
                                "it back exactly); null for NaN",
                            },
                            "time": {
                                "type": "string",
                                "format": "date-time",
                                "description": "ISO-8601 UTC (`Z`), milliseconds when not whole",
                            },
                        },
                    },
                },
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as `cursor` for the next page; null on the last",
                },
                "has_more": {"type": "boolean"},
            },
        },
        "Health": {
            "type": "object",
            "properties": {
                "status": {"const": "ok"},
                "version": {"type": "string"},
                "timestamp": {"type": "string", "format": "date-time"},
            },
        },
    }


def compat_paths(settings: Settings) -> dict[str, Any]:
    """`paths` entries of the old Worker's routes."""
    listing_errors = errors(400, 401, 429, 500, 502, 504)
    site_errors = errors(400, 401, 403, 404, 429, 500, 502, 504)
    return {
        "/api/sites": {
            "get": {
                "operationId": "aceListSites",
                "summary": "The token's sites, in the origin's paged shape",
                "description": "The origin's whole list, kept per token for "
                f"{settings.compat_sites_ttl_s:g} s and paged here.",
                "parameters": [*_PAGING, _TOKEN],
                "responses": {
                    "200": {
                        "description": "One page of sites",
                        "content": {JSON: {"schema": ref("AceSiteListing")}},
                    },
                    **listing_errors,
                },
            }
        },
        "/api/sites/{site}": {
            "get": {
                "operationId": "aceGetSite",
                "summary": "One site's record, as the origin returns it",
                "parameters": [_SITE, _TOKEN],
                "responses": {
                    "200": {
                        "description": "The site",
                        "content": {JSON: {"schema": ref("AceSite")}},
                    },
                    **site_errors,
                },
            }
        },
        "/api/sites/{site}/configured_points": {
            "get": {
                "operationId": "aceConfiguredPoints",
                "summary": "The site's points from the point catalogue, in the origin's shape",
                "parameters": [
                    _SITE,
                    *_PAGING,
                    param(
                        "bypass_cache",
                        "Refresh the catalogue from the origin first",
                        {"type": "boolean", "default": False},
                    ),
                    _TOKEN,
                ],
                "responses": {
                    "200": {
                        "description": "One page of points, by name",
                        "content": {JSON: {"schema": ref("AcePointListing")}},
                    },
                    **site_errors,
                },
            }
        },
        "/api/sites/{site}/timeseries/paginated": {
            "get": {
                "operationId": "acePaginatedTimeseries",
                "summary": "The origin's paginated samples, answered from acechart's caches",
                "description": "Samples in (time, point name) order; without `raw_data=true` "
                "5-minute bucket averages, as the origin answers. `point_names` is honoured "
                "(the origin ignores it); without it every point of the site's catalogue is "
                "walked. The cursor is acechart's: it never stalls or skips, and one of "
                "another query is a 400. A walk whose uncached data is estimated to take the "
                f"origin longer than the request budget ({settings.request_budget_s:g} s) is a "
                "413 with suggestions naming a range that fits, as on /api/timeseries.",
                "parameters": [
                    _SITE,
                    param(
                        "start_time",
                        "Start (included): ISO-8601 (naive = UTC), a date, or epoch ms",
                        TIME,
                        required=True,
                    ),
                    param(
                        "end_time",
                        "End (included, as the origin reads it); after `start_time`, by at "
                        f"most {settings.max_range_days} days",
                        TIME,
                        required=True,
                    ),
                    param(
                        "page_size",
                        "Samples per page",
                        {"type": "integer", "minimum": 1, "maximum": 500000, "default": 10000},
                    ),
                    param(
                        "raw_data",
                        "true: samples; false: 5-minute bucket averages",
                        {"type": "boolean", "default": False},
                    ),
                    param("cursor", "`next_cursor` of the previous page", {"type": "string"}),
                    param(
                        "point_names",
                        "Only these points, comma-separated (also `points`); unknown ones: 404",
                        {"type": "array", "items": POINT_NAME, "minItems": 1, "uniqueItems": True},
                        style="form",
                        explode=False,
                    ),
                    _TOKEN,
                    param(
                        "Accept",
                        "`application/x-msgpack` for the same document as MessagePack",
                        {"type": "string"},
                        where="header",
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "One page",
                        "headers": {
                            "X-Cache-Status": {"schema": {"type": "string"}},
                            "X-Cache-Source": {"schema": {"type": "string"}},
                            "X-Data-Samples": {"schema": {"type": "integer"}},
                        },
                        "content": {
                            JSON: {"schema": ref("AcePage")},
                            MSGPACK: {
                                "schema": {
                                    "type": "string",
                                    "format": "binary",
                                    "description": "AcePage as MessagePack",
                                }
                            },
                        },
                    },
                    **errors(400, 401, 403, 404, 413, 429, 500, 502, 504),
                },
            }
        },
        "/api/health": {
            "get": {
                "operationId": "aceHealth",
                "security": [],
                "summary": "The old Worker's health route",
                "responses": {
                    "200": {
                        "description": "Alive",
                        "content": {JSON: {"schema": ref("Health")}},
                    }
                },
            }
        },
        "/api/{tail}": {
            "get": {
                "operationId": "originPassThrough",
                "summary": "Any other GET under /api/, passed to the origin unchanged",
                "description": "The path under /api/ is sent to the same path of the origin's "
                "API with the query string, the caller's token as Bearer, `Accept` and the "
                "conditional headers; the answer's status, body and type come back unchanged. "
                "Paths with `.`/`..` segments (also percent-encoded) or empty segments are "
                f"refused (400). Answers over {settings.proxy_max_bytes} bytes are a 502, "
                f"slower than {settings.proxy_timeout_s:g} s a 504.",
                "parameters": [
                    param(
                        "tail",
                        "The origin's path, e.g. `points/{name}/timeseries`: segments of "
                        "unreserved characters, none empty, `.` or `..`",
                        {"type": "string", "pattern": r"^[A-Za-z0-9_~-][A-Za-z0-9_.~-]*$"},
                        required=True,
                        where="path",
                    ),
                    _TOKEN,
                ],
                "responses": {
                    "200": {"description": "The origin's answer, unchanged"},
                    **errors(400, 401, 429, 502, 504),
                    "default": {"description": "The origin's answer, its status unchanged"},
                },
            }
        },
    }
