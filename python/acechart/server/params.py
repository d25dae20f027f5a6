"""Request parameters -> a validated `Query`, with 400s that name the parameter at fault.

Parameters come from the query string or, for `POST`, from a JSON object body
(the query string fills in what the body leaves out), so a long point list
need not fit in a request line. Every name clients use is taken:

- `start` or `start_time`, `end` or `end_time`: a date, an ISO-8601 datetime
  (naive means UTC) or epoch milliseconds (a string of digits, or a JSON
  number in a body); `end` is exclusive;
- `points` or `point_names`: comma-separated, and may repeat
  (`points=a&points=b,c`); in a JSON body also a list of names. Names keep
  their `/` and `.` (ACE point names are paths).

Limits (points per query, days per query) come from the settings via
`Query.validate`. A JSON body is bounded before it is parsed: in size by the
application's `client_max_size` (413 past it) and in nesting by
`MAX_JSON_DEPTH` (`guard_json_body`, for every POST route), since Python's
parser recurses and a deeply nested body would otherwise be a 500.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from aiohttp import web
from multidict import MultiDict

from acechart.errors import BadRequest
from acechart.query import Query, check_point_name, check_site, parse_time
from acechart.settings import Settings

__all__ = [
    "ALIASES",
    "BODY_NAMES",
    "MAX_INT",
    "MAX_JSON_DEPTH",
    "Params",
    "bool_param",
    "check_json_depth",
    "float_param",
    "guard_json_body",
    "int_param",
    "parse_points",
    "parse_query",
    "path_site",
    "read_params",
    "required",
    "site_param",
    "time_param",
    "wants_async",
]

#: Deepest nesting of arrays and objects a JSON body may have (a query or job body has 3).
MAX_JSON_DEPTH = 32
#: Largest integer parameter: what SQLite (and any int64 column) can hold.
MAX_INT = 2**63 - 1
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})
_DIGITS = re.compile(r"\d+")

#: Each parameter's other names, as clients of the old Worker and the ACE API send them.
ALIASES: dict[str, tuple[str, ...]] = {
    "start": ("start", "start_time"),
    "end": ("end", "end_time"),
    "points": ("points", "point_names"),
}


#: Every name a JSON body of `/api/timeseries` or `/api/aggregations` may carry.
BODY_NAMES: frozenset[str] = frozenset(
    {
        *(alias for names in ALIASES.values() for alias in names),
        "site",
        "interval",
        "format",
        "layout",
        "maxPoints",
        "downsample",
        "async",
        "tz",
        "stat",
        "resetThreshold",
        "partial",
    }
)


class Params(Mapping[str, str]):
    """A request's parameters: each name's first value, `getall` for repeated ones.

    From the query string (`Params.of(request)`) or a JSON body merged over it
    (`await read_params(request)`); a JSON list under `points` keeps its names
    whole (a comma inside a name is then safe).
    """

    def __init__(
        self, values: MultiDict[str], lists: Mapping[str, tuple[str, ...]] | None = None
    ) -> None:
        self._values = values
        self._lists: dict[str, tuple[str, ...]] = dict(lists or {})

    @classmethod
    def of(cls, request: web.Request) -> Params:
        """The query string's parameters."""
        return cls(MultiDict(request.query))

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(self._values.keys()))

    def __len__(self) -> int:
        return len(set(self._values.keys()))

    def pairs(self) -> list[tuple[str, str]]:
        """Every (name, value), repeats included, in order."""
        return list(self._values.items())

    def getall(self, name: str) -> list[str]:
        return list(self._values.getall(name, []))

    def names(self, name: str) -> list[str]:
        """Names given under `name`: a body's list as is, else comma-separated values."""
        if name in self._lists:
            return [n.strip() for n in self._lists[name] if n.strip()]
        return [part.strip() for value in self.getall(name) for part in value.split(",")]

    def pick(self, canonical: str) -> tuple[str, str | None]:
        """(the name the caller used, its value) among `canonical`'s aliases.

        Two aliases with different values are a 400: which one was meant is a guess.
        """
        given = [
            (alias, self[alias]) for alias in ALIASES.get(canonical, (canonical,)) if alias in self
        ]
        if not given:
            return canonical, None
        if len({value for _, value in given}) > 1:
            names = " and ".join(alias for alias, _ in given)
            raise BadRequest(f"give only one of {names}", parameter=given[1][0])
        return given[0]


async def read_params(request: web.Request) -> Params:
    """The parameters of a GET (query string) or a POST (JSON object body over it)."""
    params = Params.of(request)
    if request.method != "POST" or not request.body_exists:
        return params
    raw = await request.read()
    if not raw.strip():
        return params
    check_json_depth(raw)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise BadRequest(
            "the body must be a JSON object of the query parameters"
            ' (e.g. {"site": .., "points": [..], "start": .., "end": ..})',
            parameter="body",
        )
    values: MultiDict[str] = MultiDict()
    lists: dict[str, tuple[str, ...]] = {}
    for name, value in body.items():
        if value is None or name not in BODY_NAMES:
            continue  # as in a query string, a name no route reads is ignored
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                raise BadRequest(f"{name} must be a list of strings", parameter=name)
            lists[name] = tuple(value)
            values.add(name, ",".join(value))
        else:
            values.add(name, _scalar_text(name, value))
    for name, value in params.pairs():
        if name not in values:
            values.add(name, value)
    return Params(values, lists)


def _scalar_text(name: str, value: Any) -> str:
    """A JSON scalar as the query-string text it stands for (numbers: epoch ms and counts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        raise BadRequest(f"{name} must be a whole number, got {value!r}", parameter=name)
    if isinstance(value, str):
        return value
    raise BadRequest(f"{name} must be a string, number, boolean or list", parameter=name)


def check_json_depth(raw: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """`BadRequest` (parameter `body`) when `raw` nests arrays and objects deeper than
    `limit`, found without parsing: brackets are counted outside strings."""
    outside = np.frombuffer(_JSON_STRING.sub(b'""', raw), dtype=np.uint8)
    steps = np.isin(outside, (0x5B, 0x7B)).astype(np.int32) - np.isin(outside, (0x5D, 0x7D))
    depth = int(np.cumsum(steps).max(initial=0))
    if depth > limit:
        raise BadRequest(
            f"the JSON body nests deeper than {limit} levels", parameter="body", maxDepth=limit
        )


async def guard_json_body(request: web.Request) -> None:
    """Bound a JSON body's size and nesting before any route parses it (the front
    middleware calls it for every request with a body; the error it raises is a 400 or
    413). The body read is kept for the route."""
    if request.method in ("POST", "PUT", "PATCH") and request.body_exists:
        raw = await request.read()  # past client_max_size: HTTPRequestEntityTooLarge, 413
        if raw.lstrip()[:1] in (b"{", b"["):
            check_json_depth(raw)


def path_site(request: web.Request) -> str:
    """The `{site}` of an ACE-shaped path: a plain name (no `/`, `\\`, dot segment,
    percent-encoded or not, or control character: the path goes on to the origin)."""
    return check_site(request.match_info["site"], "site")


def site_param(source: web.Request | Params) -> str:
    """The `site` parameter, checked as a site name (`query.check_site`) before any use."""
    params = _params(source)
    used, _ = params.pick("site")
    return check_site(required(params, "site"), used)


def _params(source: web.Request | Params) -> Params:
    return source if isinstance(source, Params) else Params.of(source)


def required(source: web.Request | Params, name: str, *, label: str | None = None) -> str:
    """The value of `name` (or an alias); a 400 names the alias used, else `label`."""
    params = _params(source)
    used, value = params.pick(name)
    value = (value or "").strip()
    if not value:
        missing = used if used in params else (label or name)
        raise BadRequest(f"{missing} is required", parameter=missing)
    return value


def time_param(source: web.Request | Params, name: str, *, label: str | None = None) -> int:
    """`start` or `end` (any alias): epoch ms when all digits, else a date or ISO datetime."""
    params = _params(source)
    used, _ = params.pick(name)
    text = required(params, name, label=label)
    if _DIGITS.fullmatch(text):
        return int(text)
    return parse_time(text, used)


def parse_points(source: web.Request | Params) -> tuple[str, ...]:
    params = _params(source)
    present = [alias for alias in ALIASES["points"] if alias in params]
    given = {alias: [n for n in params.names(alias) if n] for alias in present}
    if len(present) > 1 and any(given[a] != given[present[0]] for a in present[1:]):
        raise BadRequest("give only one of points and point_names", parameter=present[1])
    used = present[0] if present else "points"
    names = given.get(used, [])
    if not names:
        raise BadRequest(
            f"{used} is required: one or more point names, comma-separated", parameter=used
        )
    for name in names:
        check_point_name(name, used)
    return tuple(names)


def int_param(
    source: web.Request | Params, name: str, *, low: int = 0, high: int | None = None
) -> int | None:
    raw = _params(source).get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}", parameter=name) from None
    top = MAX_INT if high is None else min(high, MAX_INT)
    if value < low or value > top:
        bounds = f"at least {low} and at most {top}" if high is None else f"between {low} and {top}"
        raise BadRequest(f"{name} must be {bounds}, got {value}", parameter=name)
    return value


def bool_param(source: web.Request | Params, name: str, default: bool = False) -> bool:
    raw = _params(source).get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False if lowered else default
    raise BadRequest(f"{name} must be true or false, got {raw!r}", parameter=name)


def float_param(source: web.Request | Params, name: str) -> float | None:
    """A number parameter (None when absent); anything else is a 400 naming it."""
    raw = _params(source).get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        raise BadRequest(f"{name} must be a number, got {raw!r}", parameter=name) from None
    if not math.isfinite(value):
        raise BadRequest(f"{name} must be a finite number, got {raw!r}", parameter=name)
    return value


def parse_query(
    source: web.Request | Params,
    settings: Settings,
    *,
    default_interval: str,
    rebucket: bool = False,
) -> Query:
    """The query of `/api/timeseries` and `/api/aggregations`.

    `tz` (an IANA zone or `site`, default UTC) places the buckets; `stat` and
    `resetThreshold` choose a timeseries' value. With `rebucket` (aggregations)
    `maxPoints` merges neighbouring buckets instead of picking some, and `stat` is a
    comma list of the statistics each row carries (a JSON body may give a list).
    """
    params = _params(source)
    site = site_param(params)
    points = parse_points(params)
    start = time_param(params, "start")
    end = time_param(params, "end")
    interval = params.get("interval", "").strip() or default_interval
    downsample = params.get("downsample", "").strip().lower() or None
    max_points = int_param(params, "maxPoints", low=0)
    tz = params.get("tz", "").strip() or "UTC"
    stat = params.get("stat", "").strip().lower() or "avg"
    threshold = float_param(params, "resetThreshold")
    max_buckets = None
    stats: tuple[str, ...] = ()
    if rebucket:
        stat = "avg"
        stats = tuple(name.lower() for name in params.names("stat") if name)
        if not stats and params.get("stat", "").strip():
            # `stat=,`: something was asked for, but no statistic named.
            raise BadRequest("stat names no statistic", parameter="stat")
        if downsample is not None:
            raise BadRequest(
                "aggregations re-bucket to maxPoints buckets (sums and counts stay true);"
                " downsample applies to /api/timeseries",
                parameter="downsample",
            )
        max_buckets, max_points = max_points, None
    return Query(
        site,
        points,
        start,
        end,
        interval,
        downsample,
        max_points,
        tz=tz,
        stat=stat,
        max_buckets=max_buckets,
        reset_threshold=threshold,
        stats=stats,
    ).validate(max_points=settings.max_points_per_query, max_range_days=settings.max_range_days)


def wants_async(request: web.Request, params: Params | None = None) -> bool:
    """Whether the client accepts a 202 and a job (`async=true` or `Prefer: respond-async`);
    an explicit `async=false` wins over the header."""
    raw = _params(params if params is not None else request).get("async")
    if raw is not None:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered not in _FALSE:
            raise BadRequest(f"async must be true or false, got {raw!r}", parameter="async")
        if lowered:
            return False
    prefer = request.headers.get("Prefer", "")
    return any(p.split(";")[0].strip().lower() == "respond-async" for p in prefer.split(","))
