"""Request parameters -> a validated `Query`, with 400s that name the parameter at fault.

`points` is comma-separated and may also repeat (`points=a&points=b,c`);
names keep their `/` and `.` (ACE point names are paths). `start` and `end`
are dates or ISO-8601 datetimes, `end` exclusive. Limits (points per query,
days per query) come from the settings via `Query.validate`.
"""

from __future__ import annotations

from aiohttp import web

from acechart.errors import BadRequest
from acechart.query import Query, parse_time
from acechart.settings import Settings

__all__ = ["int_param", "parse_points", "parse_query", "required", "wants_async"]

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})


def required(request: web.Request, name: str) -> str:
    value = request.query.get(name, "").strip()
    if not value:
        raise BadRequest(f"{name} is required", parameter=name)
    return value


def parse_points(request: web.Request) -> tuple[str, ...]:
    names = [
        part.strip()
        for value in request.query.getall("points", [])
        for part in value.split(",")
        if part.strip()
    ]
    if not names:
        raise BadRequest(
            "points is required: one or more point names, comma-separated", parameter="points"
        )
    return tuple(names)


def int_param(
    request: web.Request, name: str, *, low: int = 0, high: int | None = None
) -> int | None:
    raw = request.query.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}", parameter=name) from None
    if value < low or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise BadRequest(f"{name} must be {bounds}, got {value}", parameter=name)
    return value


def parse_query(request: web.Request, settings: Settings, *, default_interval: str) -> Query:
    """The query of `/api/timeseries` and `/api/aggregations`."""
    site = required(request, "site")
    points = parse_points(request)
    start = parse_time(required(request, "start"), "start")
    end = parse_time(required(request, "end"), "end")
    interval = request.query.get("interval", "").strip() or default_interval
    downsample = request.query.get("downsample", "").strip().lower() or None
    max_points = int_param(request, "maxPoints", low=0)
    return Query(site, points, start, end, interval, downsample, max_points).validate(
        max_points=settings.max_points_per_query, max_range_days=settings.max_range_days
    )


def wants_async(request: web.Request) -> bool:
    """Whether the client accepts a 202 and a job (`async=true` or `Prefer: respond-async`)."""
    raw = request.query.get("async")
    if raw is not None:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            if lowered:
                return False
        else:
            raise BadRequest(f"async must be true or false, got {raw!r}", parameter="async")
    prefer = request.headers.get("Prefer", "")
    return any(p.split(";")[0].strip().lower() == "respond-async" for p in prefer.split(","))
