"""What a caller asks for, validated once: the engine's and the server's common input."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

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
        if not self.site or "/" in self.site:
            raise BadRequest("site must be a non-empty site name", parameter="site")
        if not self.points:
            raise BadRequest("points must name at least one point", parameter="points")
        if any(not p for p in self.points):
            raise BadRequest("points must not contain empty names", parameter="points")
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
