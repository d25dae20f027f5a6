"""What a caller asks for, validated once: the engine's and the server's common input."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from urllib.parse import unquote

from acechart.buckets import (
    CALENDAR_INTERVALS,
    FIXED_INTERVALS,
    SITE,
    STORED_LEVELS,
    BucketPlan,
    check_zone,
    plan_buckets,
)
from acechart.errors import BadRequest
from acechart.times import relative_ms, to_ms

#: Every interval and its fixed width (None: raw samples, or a calendar interval).
INTERVALS: dict[str, int | None] = {
    "raw": None,
    **FIXED_INTERVALS,
    **dict.fromkeys(CALENDAR_INTERVALS),
}
__all__ = [
    "AGG_STATS",
    "DOWNSAMPLERS",
    "INTERVALS",
    "RAW_STATS",
    "STATS",
    "STORED_LEVELS",
    "Query",
    "check_point_name",
    "check_site",
    "parse_instant",
    "parse_time",
]
#: What an interval series may carry as its value (`stat=`). The first seven come from
#: mergeable bucket statistics (so from the aggregate tier); `RAW_STATS` need the raw
#: samples and the sample before each bucket.
STATS: tuple[str, ...] = (
    "avg",
    "min",
    "max",
    "sum",
    "count",
    "first",
    "last",
    "delta",
    "twa",
    "on_time",
)
RAW_STATS: frozenset[str] = frozenset({"delta", "twa", "on_time"})
#: What an aggregation row may carry (`stat=` on `/api/aggregations`, a comma list): every
#: value statistic and the sample standard deviation that the seed's rows carry.
AGG_STATS: tuple[str, ...] = (*STATS, "stddev")
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


def parse_instant(text: str, parameter: str, *, now_ms: int) -> int:
    """`now`, a relative time (`-7d`), epoch ms, a date or an ISO-8601 datetime -> ms;
    `BadRequest` naming `parameter` otherwise. What saved charts and notebooks accept."""
    relative = relative_ms(text, now_ms)
    if relative is not None:
        return relative
    if text.strip().isdigit():
        return int(text.strip())
    return parse_time(text, parameter)


@dataclass(frozen=True)
class Query:
    """One request for data: points of a site over `[start_ms, end_ms)`.

    `interval` "raw" returns samples; otherwise the whole buckets covering the
    range (`buckets`), each aggregated over its full width, in zone `tz` (an IANA
    name; `site` until the engine resolves it), carrying `stat` as their value.
    `downsample` with `max_points` thins each series to a chart's size (first and
    last kept); `max_buckets` instead merges neighbouring buckets into at most that
    many (sums and counts stay true). `reset_threshold` is the drop a `delta` series
    takes as a meter reset (None: the engine's setting). `stats` (aggregations) names
    the statistics each bucket row carries, in order (empty: the seed's full row); the
    series' value is then the first of them.
    """

    site: str
    points: tuple[str, ...]
    start_ms: int
    end_ms: int
    interval: str = "raw"
    downsample: str | None = None
    max_points: int | None = None
    tz: str = "UTC"
    stat: str = "avg"
    max_buckets: int | None = None
    reset_threshold: float | None = None
    stats: tuple[str, ...] = ()

    @property
    def value_stat(self) -> str:
        """The statistic a bucket series carries as its value."""
        return self.stats[0] if self.stats else self.stat

    @property
    def raw_stats(self) -> frozenset[str]:
        """The statistics asked for that need the raw samples (`delta`, `twa`, `on_time`)."""
        return RAW_STATS.intersection((self.stat, *self.stats))

    @property
    def bucket_ms(self) -> int | None:
        """The fixed width of the buckets (None for raw and calendar intervals)."""
        return INTERVALS[self.interval]

    @cached_property
    def buckets(self) -> BucketPlan:
        """Where the buckets of an interval query lie and which level they come from."""
        if self.interval == "raw":
            raise ValueError("a raw query has no buckets")
        if self.tz == SITE:
            raise ValueError("tz=site must be resolved to a zone first (Engine.resolve)")
        return plan_buckets(self.start_ms, self.end_ms, self.interval, self.tz)

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
        if self.tz != SITE:
            check_zone(self.tz)
        if self.stat not in STATS:
            raise BadRequest(
                f"unknown stat {self.stat!r}; use one of {', '.join(STATS)}", parameter="stat"
            )
        if (self.stat != "avg" or self.stats) and self.interval == "raw":
            raise BadRequest(
                "stat applies to interval series: give an interval (1min .. 1month)",
                parameter="stat",
            )
        for name in self.stats:
            if name not in AGG_STATS:
                raise BadRequest(
                    f"unknown stat {name!r}; use a comma list of {', '.join(AGG_STATS)}",
                    parameter="stat",
                )
        if len(set(self.stats)) != len(self.stats):
            raise BadRequest("stat must not repeat a statistic", parameter="stat")
        if self.reset_threshold is not None and not (
            math.isfinite(self.reset_threshold) and self.reset_threshold >= 0
        ):
            raise BadRequest(
                "resetThreshold must be a non-negative number", parameter="resetThreshold"
            )
        if self.max_buckets is not None and not 1 <= self.max_buckets <= MAX_CHART_POINTS:
            raise BadRequest(
                f"maxPoints must be at least 1 and at most {MAX_CHART_POINTS}",
                parameter="maxPoints",
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
        """The raw range an interval query needs: the whole buckets covering the range
        (the local day holding `start` to the end of the one holding `end - 1`)."""
        if self.interval == "raw":
            return self.start_ms, self.end_ms
        plan = self.buckets
        return plan.start, plan.end
