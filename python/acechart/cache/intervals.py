"""Half-open millisecond intervals `[start, end)` kept as sorted, disjoint lists.

Coverage of a block and the gaps of a query are small lists (a handful of
intervals), so plain Python is the right tool; samples never pass through here.
"""

from __future__ import annotations

from collections.abc import Iterable

Interval = tuple[int, int]


def normalize(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort, drop empty ones, and merge overlapping or touching intervals."""
    out: list[Interval] = []
    for start, end in sorted(iv for iv in intervals if iv[0] < iv[1]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def union(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    return normalize([*a, *b])


def intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """Both inputs normalized."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = max(a[i][0], b[j][0])
        end = min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """`a` minus `b`, both normalized."""
    out: list[Interval] = []
    j = 0
    for start, end in a:
        cur = start
        while j < len(b) and b[j][1] <= cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cur:
                out.append((cur, b[k][0]))
            cur = max(cur, b[k][1])
            k += 1
        if cur < end:
            out.append((cur, end))
    return out


def clip(intervals: list[Interval], start: int, end: int) -> list[Interval]:
    return intersect(intervals, [(start, end)]) if start < end else []


def total(intervals: Iterable[Interval]) -> int:
    return sum(e - s for s, e in intervals)
