"""Pieces every part of the OpenAPI document builds with: media types, parameters, errors."""

from __future__ import annotations

from typing import Any

from acechart.wire import (
    CONTENT_TYPES,
    FORMATS,
    JOB_FORMATS,
    JOB_LAYOUTS,
    LAYOUTS,
    LIVE_FORMATS,
)

__all__ = [
    "ARROW",
    "CSV",
    "EVENTS",
    "FORMAT_ENUM",
    "JOB_FORMAT_ENUM",
    "JOB_LAYOUT_ENUM",
    "JSON",
    "LAYOUT_ENUM",
    "LAYOUT_TEXT",
    "MSGPACK",
    "PARQUET",
    "errors",
    "param",
    "ref",
]

JSON = "application/json"
MSGPACK = "application/x-msgpack"
CSV = "text/csv"
ARROW = CONTENT_TYPES["arrow"]
PARQUET = CONTENT_TYPES["parquet"]
EVENTS = "text/event-stream"
#: Every name `format=` takes on the data routes and for jobs, and every layout (the
#: wire vocabulary's own lists).
FORMAT_ENUM: list[str] = [name for name, f in FORMATS.items() if f in LIVE_FORMATS]
JOB_FORMAT_ENUM: list[str] = [name for name, f in FORMATS.items() if f in JOB_FORMATS]
LAYOUT_ENUM: list[str] = list(LAYOUTS)
JOB_LAYOUT_ENUM: list[str] = list(JOB_LAYOUTS)
#: What `layout=` means, for every route that takes it.
LAYOUT_TEXT = (
    "`rows` and `series` both name the format's own layout (the seed's rows for JSON, "
    "MessagePack and CSV; a record batch per series for Arrow, a row group per series for "
    "Parquet); `columns` (MessagePack only) sends `t` and `v` as float64 arrays; `wide` "
    "(Arrow only) is one table, `time` and a nullable column per point"
)

_ERROR_TEXT: dict[int, str] = {
    400: "Bad parameter; `parameter` names it",
    401: "No token, or a token the origin refuses",
    403: "The token may not read this site",
    404: "Unknown site, points (named in `unknownPoints`) or route",
    409: "No result to download: the job is queued, running, failed or cancelled",
    413: "Too large to answer synchronously: the origin fetch is estimated past the request "
    "budget (`estimatedSamples`, `estimatedSeconds`, `budgetSeconds`, `suggestions`, "
    "`suggestedRange`, `suggestedPoints`)",
    414: "Request line too long: send the parameters as a JSON body with POST",
    416: "The byte range starts past the end of the result",
    429: "Rate limit exceeded; wait `Retry-After` seconds",
    431: "A request header is too long",
    500: "Internal error; the body quotes the request id",
    502: "The origin failed (and no stale copy could be served)",
    504: "The origin timed out (and no stale copy could be served)",
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def param(
    name: str,
    description: str,
    schema: dict[str, Any],
    *,
    required: bool = False,
    where: str = "query",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required,
        "description": description,
        "schema": schema,
        **extra,
    }


def errors(*statuses: int, text: dict[int, str] | None = None) -> dict[str, Any]:
    """Responses for `statuses`, each the `Error` schema; `text` overrides descriptions."""
    texts = {**_ERROR_TEXT, **(text or {})}
    out: dict[str, Any] = {
        str(s): {"description": texts[s], "content": {JSON: {"schema": ref("Error")}}}
        for s in statuses
    }
    if 429 in statuses:
        out["429"]["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return out
