"""Where the buckets of an interval query lie: in UTC, or in a building's own time.

An interval query covers whole buckets: `[start, end)` is widened to the start of
the bucket holding `start` and the end of the bucket holding `end - 1`. In UTC
(the default) fixed intervals (`1min` .. `1day`) lie on a grid from the epoch.
With `tz=` (an IANA zone) buckets follow that zone's clock: `1day` starts at
local midnight (a daylight-saving day is 23 or 25 hours long), `1week` on
Monday at midnight, `1month` on the 1st at midnight; a fixed sub-day interval
follows the zone's wall clock (in Asia/Kathmandu, UTC+5:45, hours start at :15
past the UTC hour; on Lord Howe Island, whose clocks move by 30 minutes, hours start
on the UTC hour in summer and at :30 past it in winter).

Buckets with irregular edges are never computed from raw samples again: they
are exact roll-ups of the finest stored UTC level whose grid holds every edge
(`1hr` for whole-hour zones, `15min` for 30- and 45-minute offsets and shifts, `1day`
for UTC weeks and months), merged in the Rust core (`rollup_edges`). The edges are
computed here, with `zoneinfo`, once per query.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import NDArray

from acechart.errors import BadRequest
from acechart.times import from_ms, to_ms

__all__ = [
    "CALENDAR_INTERVALS",
    "FIXED_INTERVALS",
    "SITE",
    "STORED_LEVELS",
    "BucketPlan",
    "check_zone",
    "local_start",
    "plan_buckets",
    "wall_clock",
]

#: Fixed-width intervals and their widths (ms).
FIXED_INTERVALS: dict[str, int] = {
    "1min": 60_000,
    "5min": 300_000,
    "15min": 900_000,
    "1hr": 3_600_000,
    "1day": 86_400_000,
}
#: Intervals that follow the calendar of the query's zone.
CALENDAR_INTERVALS: tuple[str, ...] = ("1week", "1month")
#: The intervals whose buckets the aggregate tier stores (1min is always computed from
#: raw samples: a year of it would cost more to store than to recompute). 15min is the
#: utility demand interval and the level local days of 30/45-minute zones roll up from.
STORED_LEVELS: dict[str, int] = {
    "5min": 300_000,
    "15min": 900_000,
    "1hr": 3_600_000,
    "1day": 86_400_000,
}
#: `tz=site`: the zone of the site's coordinates (resolved by the engine).
SITE = "site"
_UTC_NAMES = frozenset({"UTC", "Etc/UTC"})


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def check_zone(name: object, parameter: str = "tz") -> str:
    """`name` if it is an IANA zone (`Europe/Berlin`, `UTC`), else a 400 naming `parameter`."""
    if not isinstance(name, str) or not name.strip():
        raise BadRequest(
            f"{parameter} must be an IANA time zone name or 'site'", parameter=parameter
        )
    text = name.strip()
    try:
        _zone(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        shown = text if len(text) <= 64 and text.isprintable() else f"{text[:64]!r}"
        raise BadRequest(
            f"{parameter}: unknown time zone {shown!r}; use an IANA name such as"
            " America/Chicago or Europe/Berlin, UTC, or 'site'",
            parameter=parameter,
        ) from None
    return text


def _is_utc(tz: str) -> bool:
    return tz in _UTC_NAMES


def _midnight(day: date, zone: ZoneInfo) -> int:
    """The first instant of `day` in `zone` (when midnight does not exist, the instant the
    clocks jumped past it)."""
    return to_ms(datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC))


def _period_start(day: date, interval: str) -> date:
    if interval == "1week":
        return day - timedelta(days=day.weekday())
    if interval == "1month":
        return day.replace(day=1)
    return day


def _next_period(day: date, interval: str) -> date:
    if interval == "1week":
        return day + timedelta(days=7)
    if interval == "1month":
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return day + timedelta(days=1)


def local_start(ms: int, interval: str, tz: str) -> int:
    """The start (ms) of the local day, week or month holding the instant `ms`."""
    zone = _zone(tz)
    day = _period_start(from_ms(ms).astimezone(zone).date(), interval)
    start = _midnight(day, zone)
    while start > ms:  # a midnight skipped by the clocks can land after `ms`
        day = _period_start(day - timedelta(days=1), interval)
        start = _midnight(day, zone)
    return start


_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000


def _offset_ms(zone: ZoneInfo, ms: int) -> int:
    offset = from_ms(ms).astimezone(zone).utcoffset()
    return 0 if offset is None else offset // timedelta(milliseconds=1)


def wall_clock(ts: NDArray[np.int64], tz: str) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Each instant's local date (days since 1970-01-01 on the zone's calendar) and hour of
    the day on its wall clock (0-23).

    The zone's offset is looked up at every UTC midnight of the range; only in a day
    whose offset changes (a DST day) is each instant looked up on its own.
    """
    ts = np.asarray(ts, dtype=np.int64)
    if _is_utc(tz) or not len(ts):
        return ts // _DAY_MS, ts % _DAY_MS // _HOUR_MS
    zone = _zone(tz)
    day = ts // _DAY_MS
    bounds = np.union1d(day, day + 1)
    offset_at = np.asarray([_offset_ms(zone, int(d) * _DAY_MS) for d in bounds], dtype=np.int64)
    offsets = offset_at[np.searchsorted(bounds, day)]
    changing = np.flatnonzero(offsets != offset_at[np.searchsorted(bounds, day + 1)])
    offsets[changing] = [_offset_ms(zone, int(ts[i])) for i in changing]
    local = ts + offsets
    return local // _DAY_MS, local % _DAY_MS // _HOUR_MS


def _calendar_edges(start_ms: int, end_ms: int, interval: str, tz: str) -> NDArray[np.int64]:
    zone = _zone(tz)
    first = local_start(start_ms, interval, tz)
    day = _period_start(from_ms(first).astimezone(zone).date(), interval)
    edges = [first]
    while edges[-1] < end_ms:
        day = _next_period(day, interval)
        edges.append(_midnight(day, zone))
    return np.asarray(edges, dtype=np.int64)


@dataclass(frozen=True)
class BucketPlan:
    """The buckets of one interval query and how they are computed.

    `fine_ms` buckets on the epoch grid (the stored `level` when it has one, else
    computed from raw samples only) are either the answer themselves (`edges` is
    None) or merged into the buckets `[edges[k], edges[k + 1])`.
    """

    interval: str
    start: int
    end: int
    fine_ms: int
    level: str | None
    edges: NDArray[np.int64] | None

    @property
    def count(self) -> int:
        """How many buckets `[start, end)` holds."""
        if self.edges is not None:
            return len(self.edges) - 1
        return (self.end - self.start) // self.fine_ms

    def edge_array(self) -> NDArray[np.int64]:
        """Every bucket edge, also on the fixed grid (for kernels that take edges)."""
        if self.edges is not None:
            return self.edges
        return np.arange(self.start, self.end + 1, self.fine_ms, dtype=np.int64)

    def ends_of(self, starts: NDArray[np.int64]) -> NDArray[np.int64]:
        """The end of each bucket whose start is in `starts`."""
        if self.edges is None:
            return starts + self.fine_ms
        at = np.searchsorted(self.edges, starts, side="right")
        return self.edges[np.minimum(at, len(self.edges) - 1)]


def _finest_stored(edges: NDArray[np.int64]) -> tuple[int, str | None]:
    """The widest stored level whose grid holds every edge, else the widest width that
    does (1min, or the edges' greatest common divisor: zones of another era)."""
    for level, width in sorted(STORED_LEVELS.items(), key=lambda kv: -kv[1]):
        if not np.any(edges % width):
            return width, level
    if not np.any(edges % 60_000):
        return 60_000, None
    return max(1, math.gcd(*(int(e) for e in np.unique(np.abs(edges))))), None


#: How often `_offset_segments` looks at a zone's offset: no zone changes its clocks
#: twice within it.
_OFFSET_PROBE_MS = 6 * 3_600_000


def _offset_segments(start_ms: int, end_ms: int, zone: ZoneInfo) -> list[tuple[int, int]]:
    """`(from_ms, offset_ms)` of each stretch of one offset in `[start_ms, end_ms)`: the
    offset looked at every `_OFFSET_PROBE_MS`, each change found to the millisecond."""
    out = [(start_ms, _offset_ms(zone, start_ms))]
    at = start_ms
    while at < end_ms:
        step = min(at + _OFFSET_PROBE_MS, end_ms)
        offset = _offset_ms(zone, step)
        if offset != out[-1][1]:
            lo, hi = at, step  # the offset at lo is the old one, at hi the new one
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset_ms(zone, mid) == offset:
                    hi = mid
                else:
                    lo = mid
            out.append((hi, offset))
        at = step
    return out


@lru_cache(maxsize=256)
def _year_offsets(tz: str, year: int) -> tuple[tuple[int, int], ...]:
    """`_offset_segments` of one UTC calendar year of zone `tz` (looked at once per zone
    and year: a query's plan then costs a lookup)."""
    begin = to_ms(datetime(year, 1, 1, tzinfo=UTC))
    end = to_ms(datetime(year + 1, 1, 1, tzinfo=UTC))
    return tuple(_offset_segments(begin, end, _zone(tz)))


def _offsets_in(tz: str, start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """`(from_ms, offset_ms)` of each stretch of one offset of zone `tz` in
    `[start_ms, end_ms)`, the first from `start_ms`."""
    first, last = from_ms(start_ms).year, from_ms(end_ms - 1).year
    out: list[tuple[int, int]] = []
    for year in range(first, last + 1):
        for begin, offset in _year_offsets(tz, year):
            if begin >= end_ms or (out and offset == out[-1][1]):
                continue
            if begin <= start_ms:
                out = [(start_ms, offset)]
            else:
                out.append((begin, offset))
    return out


def _wall_clock_plan(
    interval: str,
    start_ms: int,
    end_ms: int,
    width: int,
    segments: list[tuple[int, int]],
    stop_ms: int,
) -> BucketPlan:
    """Buckets of `width` on a wall clock whose offset changes by other than a multiple of
    it: the edges are the instants the clock shows a multiple of `width`, and the instant
    it jumps forward past one (as a local midnight that does not exist starts its day).
    A stretch the clock passes twice makes its bucket longer (Lord Howe's 01:00 hour on
    the night it falls back lasts 90 minutes); one it skips, shorter."""
    pieces: list[NDArray[np.int64]] = []
    bounds = [*(a for a, _ in segments[1:]), stop_ms]
    previous: int | None = None
    for (begin, offset), finish in zip(segments, bounds, strict=True):
        first = begin + (-(begin + offset)) % width
        pieces.append(np.arange(first, finish, width, dtype=np.int64))
        if previous is not None and offset > previous:
            skipped_from, skipped_to = begin + previous, begin + offset  # wall-clock times
            if skipped_to - 1 - (skipped_to - 1) % width >= skipped_from:
                pieces.append(np.asarray([begin], np.int64))
        previous = offset
    every = np.unique(np.concatenate(pieces))
    lo = int(np.searchsorted(every, start_ms, side="right")) - 1
    hi = int(np.searchsorted(every, end_ms, side="left"))
    if lo < 0 or hi >= len(every):
        raise ValueError(f"no {interval} edge around [{start_ms}, {end_ms})")
    edges = np.ascontiguousarray(every[lo : hi + 1])
    fine, level = _finest_stored(edges)
    return BucketPlan(interval, int(edges[0]), int(edges[-1]), fine, level, edges)


def plan_buckets(start_ms: int, end_ms: int, interval: str, tz: str) -> BucketPlan:
    """The whole buckets of `interval` in zone `tz` covering `[start_ms, end_ms)`."""
    if interval in CALENDAR_INTERVALS or (interval == "1day" and not _is_utc(tz)):
        edges = _calendar_edges(start_ms, end_ms, interval, tz)
        fine, level = _finest_stored(edges)
        return BucketPlan(interval, int(edges[0]), int(edges[-1]), fine, level, edges)
    width = FIXED_INTERVALS[interval]
    shift = 0
    if not _is_utc(tz):
        # The zone's wall-clock grid. Offsets that agree modulo the width (most zones:
        # daylight saving moves clocks by whole hours) give one grid, shifted by the
        # offset; others (Lord Howe's 30-minute shift under 1hr) give edges where the
        # wall clock shows a multiple of the width.
        pad = 3 * width
        segments = _offsets_in(tz, start_ms - pad, end_ms + pad)
        shifts = {(-offset) % width for _, offset in segments}
        if len(shifts) > 1:
            return _wall_clock_plan(interval, start_ms, end_ms, width, segments, end_ms + pad)
        shift = shifts.pop()
    start = start_ms - (start_ms - shift) % width
    end = end_ms + (-(end_ms - shift)) % width
    level = interval if interval in STORED_LEVELS else None
    if shift == 0:
        return BucketPlan(interval, start, end, width, level, None)
    edges = np.arange(start, end + 1, width, dtype=np.int64)
    fine, level = _finest_stored(edges)
    return BucketPlan(interval, start, end, fine, level, edges)
