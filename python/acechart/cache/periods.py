"""The UTC period a block holds: one calendar month per point.

A month of one-minute data is 44,640 samples, about 100-250 kB as a compressed
block: small enough that a one-day chart decodes it in well under a millisecond,
large enough that a 365-day query touches only 12 blocks per point (object-store
round trips, not bytes, dominate cold reads). See README, "Block period".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from acechart.times import from_ms as _dt
from acechart.times import to_ms as _ms


def month_start(ms: int) -> int:
    dt = _dt(ms)
    return _ms(datetime(dt.year, dt.month, 1, tzinfo=UTC))


def next_month(ms: int) -> int:
    dt = _dt(ms)
    year, month = (dt.year + 1, 1) if dt.month == 12 else (dt.year, dt.month + 1)
    return _ms(datetime(year, month, 1, tzinfo=UTC))


def period_name(ms: int) -> str:
    dt = _dt(ms)
    return f"{dt.year:04d}-{dt.month:02d}"


def periods(start: int, end: int) -> Iterator[tuple[str, int, int]]:
    """(name, period_start, period_end) of every month overlapping `[start, end)`."""
    cur = month_start(start) if start < end else end
    while cur < end:
        nxt = next_month(cur)
        yield period_name(cur), cur, nxt
        cur = nxt
