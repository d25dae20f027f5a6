"""What a caller asks for, validated once: the engine's and the server's common input."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

from acechart.errors import BadRequest
from acechart.times import to_ms

INTERVALS: dict[str, int | None] = {
    "raw": None,
    "1min": 60_000,
    "5min": 300_000,
    "1hr": 3_600_000,
    "1day": 86_400_000,
}
#: The intervals whose buckets the aggregate tier stores (1min is always computed from
#: raw samples: a year of it would cost more to store than to recompute).
STORED_LEVELS: dict[str, int] = {"5min": 300_000, "1hr": 3_600_000, "1day": 86_400_000}
DOWNSAMPLERS = ("minmaxlttb", "m4")
#: Times a query may name: 1900-01-01 .. 2200-01-01 UTC. Outside it no building
#: data exists, and every date computation downstream stays in range.
MIN_TIME_MS = -2_208_988_800_000
MAX_TIME_MS = 7_258_118_400_000
#: Most samples a downsampled series may keep (a chart's width, generously).
MAX_CHART_POINTS = 1_000_000
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: Characters no site or point name may hold: controls (a header or log line could be
#: split), DEL, and lone surrogates (what undecodable bytes or a JSON `"\ud800"` become;
#: they cannot be encoded, so they would fail deep inside instead of here).
_FORBIDDEN = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_DOT_SEGMENTS = frozenset({".", ".."})


def _decodings(text: str) -> list[str]:
    """`text` and its percent-decodings, up to three deep (`%252e` -> `%2e` -> `.`)."""
    out = [text]
    for _ in range(3):
        once = unquote(out[-1])
        if once == out[-1]:
            break
        out.append(once)
    return out


def check_site(site: object, parameter: str = "site") -> str:
    """`site` if it is a plain site name, else `BadRequest` naming `parameter`.

    A site name becomes one segment of an origin path (`/sites/{site}`) and of an
    object key, so it must not be empty, hold a `/` or `\\`, a control character or a
    lone surrogate, or be a dot segment (`.`, `..`), percent-encoded or not: the
    origin would see another path (`/sites/..` is the API's root), and a yes from it
    would mark the token as allowed to read a site named `..`.
    """
    if not isinstance(site, str) or not site.strip():
        raise BadRequest(f"{parameter} must be a non-empty site name", parameter=parameter)
    if _FORBIDDEN.search(site):
        raise BadRequest(
            f"{parameter} must not contain control characters or undecodable text",
            parameter=parameter,
        )
    for text in _decodings(site):
        if "/" in text or "\\" in text or text in _DOT_SEGMENTS:
            raise BadRequest(
                f"{parameter} must be a site name, not a path (no /, \\, . or .. segment)",
                parameter=parameter,
            )
    return site


def check_point_name(name: object, parameter: str = "points") -> str:
    """`name` if it can be a point name, else `BadRequest` naming `parameter`.

    ACE point names are paths (`site/AHU-1/zone.temp`), so `/` and `.` are fine;
    an empty name, a control character, a lone surrogate, or a segment that is
    `.` or `..` (percent-encoded or not) is not: a point name becomes one origin
    path segment (`/points/{name}/timeseries`), and a dot segment would point
    the request elsewhere.
    """
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{parameter} must not contain empty names", parameter=parameter)
    if _FORBIDDEN.search(name):
        raise BadRequest(
            f"{parameter} must not contain control characters or undecodable text",
            parameter=parameter,
        )
    for text in _decodings(name):
        if any(part in _DOT_SEGMENTS for part in text.replace("\\", "/").split("/")):
            raise BadRequest(
                f"{parameter} must not hold a . or .. path segment", parameter=parameter
            )
    return name


def parse_time(text: str, parameter: str) -> int:
    """A date (`2024-01-01`, midnight UTC) or ISO-8601 datetime (naive = UTC) -> ms."""
    raw = text.strip()
    try:
        if _DATE.fullmatch(raw):
            dt = datetime.fromisoformat(raw).replace(tzinfo=UTC)
        else:
            dt = datetime.fromisoformat(raw.replace("z", "Z"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise BadRequest(
            f"{parameter} must be a date (2024-01-01) or an ISO-8601 datetime, got {text!r}",
            parameter=parameter,
        ) from None
    return to_ms(dt)


@dataclass(frozen=True)
class Query:
    """One request for data: points of a site over `[start_ms, end_ms)`.

    `interval` "raw" returns samples; otherwise buckets whose start
    lies in the range, each aggregated over its full width. `downsample` with
    `max_points` thins each series to a chart's size (first and last kept).
    """

    site: str
    points: tuple[str, ...]
    start_ms: int
    end_ms: int
    interval: str = "raw"
    downsample: str | None = None
    max_points: int | None = None

    @property
    def bucket_ms(self) -> int | None:
        return INTERVALS[self.interval]

    def validate(self, *, max_points: int, max_range_days: int) -> Query:
        """Raise `BadRequest` naming the parameter at fault; return self for chaining."""
        check_site(self.site)
        if not self.points:
            raise BadRequest("points must name at least one point", parameter="points")
        for point in self.points:
            check_point_name(point)
        if len(self.points) > max_points:
            raise BadRequest(
                f"too many points: {len(self.points)} > {max_points}",
                parameter="points",
                maxPoints=max_points,
            )
        if len(set(self.points)) != len(self.points):
            raise BadRequest("points must not repeat a name", parameter="points")
        for name, value in (("start", self.start_ms), ("end", self.end_ms)):
            if not MIN_TIME_MS <= value <= MAX_TIME_MS:
                raise BadRequest(
                    f"{name} must lie between 1900-01-01 and 2200-01-01", parameter=name
                )
        if self.end_ms <= self.start_ms:
            raise BadRequest("end must be after start", parameter="end")
        if self.end_ms - self.start_ms > max_range_days * 86_400_000:
            raise BadRequest(
                f"range too long: at most {max_range_days} days per query",
                parameter="end",
                maxRangeDays=max_range_days,
            )
        if self.interval not in INTERVALS:
            raise BadRequest(
                f"unknown interval {self.interval!r}; use one of {', '.join(INTERVALS)}",
                parameter="interval",
            )
        if self.downsample is not None and self.downsample not in DOWNSAMPLERS:
            raise BadRequest(
                f"unknown downsample method {self.downsample!r}; use {' or '.join(DOWNSAMPLERS)}",
                parameter="downsample",
            )
        if self.downsample is not None and self.max_points is None:
            raise BadRequest(
                "downsample needs maxPoints (the chart's size in points)", parameter="maxPoints"
            )
        if self.max_points is not None:
            low = 4 if self.downsample == "m4" else 3
            if not low <= self.max_points <= MAX_CHART_POINTS:
                raise BadRequest(
                    f"maxPoints must be at least {low} and at most {MAX_CHART_POINTS}",
                    parameter="maxPoints",
                )
        return self

    def aligned(self) -> tuple[int, int]:
        """The raw range an interval query needs: whole buckets around the range."""
        width = self.bucket_ms
        if width is None:
            return self.start_ms, self.end_ms
        start = self.start_ms - self.start_ms % width
        end = -((-self.end_ms) // width) * width
        return start, end
