"""Pieces every part of the OpenAPI document builds with: media types, parameters, errors."""

from __future__ import annotations

from typing import Any

from acechart.query import MAX_TIME_MS
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
    "DATE_TIME",
    "EPOCH_MS",
    "EVENTS",
    "EXAMPLE_POINT",
    "FORMAT_ENUM",
    "JOB_FORMAT_ENUM",
    "JOB_LAYOUT_ENUM",
    "JSON",
    "LAYOUT_ENUM",
    "LAYOUT_TEXT",
    "MAX_INT",
    "MSGPACK",
    "PARQUET",
    "POINT_NAME",
    "SITE_NAME",
    "TIME",
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

#: A site name: one origin path segment, so no `/`, `\\`, `%` or leading dot (the
#: server refuses `.`/`..` segments, percent-encoded or not, and control characters).
SITE_NAME: dict[str, Any] = {"type": "string", "pattern": r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$"}
#: A point name: an ACE path of segments, none of them a dot segment.
POINT_NAME: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[A-Za-z0-9_:-][A-Za-z0-9_.:-]*(/[A-Za-z0-9_:-][A-Za-z0-9_.:-]*){0,15}$",
    "maxLength": 512,
}
_YEAR = r"(190[1-9]|19[1-9][0-9]|20[0-9]{2}|21[0-8][0-9]|219[0-8])"
_DAY = r"((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)"
_HOUR = r"([01][0-9]|2[0-3])"
_CLOCK = rf"T{_HOUR}:[0-5][0-9](:[0-5][0-9](\.[0-9]{{1,6}})?)?(Z|[+-]{_HOUR}:[0-5][0-9])?"
#: A time parameter: a date, an ISO-8601 datetime (naive = UTC) or epoch milliseconds,
#: within the years the server takes (1900 to 2200; the pattern keeps a year clear of
#: either end, so no offset can carry a matching time past them).
TIME: dict[str, Any] = {
    "type": "string",
    "pattern": rf"^({_YEAR}-{_DAY}({_CLOCK})?|[0-9]{{1,12}})$",
}
#: A date or ISO-8601 datetime only (job bodies take epoch ms as a number, not as text).
DATE_TIME: dict[str, Any] = {"type": "string", "pattern": rf"^{_YEAR}-{_DAY}({_CLOCK})?$"}
#: Epoch milliseconds as a JSON number (in a body), from 1970 to the server's 2200.
EPOCH_MS: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": MAX_TIME_MS}
#: The largest integer parameter (int64).
MAX_INT = 2**63 - 1
#: A point of the simulator's demo site, so documented examples are real requests.
EXAMPLE_POINT = "ses/ses_falls_city/192.168.96.3/n4/Drivers/BacnetNetwork/AHU-1/AHU-1.points.SaTemp"

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
    416: "The byte range starts past the end of the result (`Content-Range: bytes */total`)",
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
