"""Pages of the ACE API's `timeseries/paginated` body, cut from the engine's arrays.

A page is the next `limit` samples, in (time, point name) order, strictly
after a position (ts_ms, point). The cursor carries that position and a
fingerprint of the query (site, range, raw or 5min buckets, point filter), so
it can neither stall (the position always moves forward) nor skip (rows are
never counted, only ordered), and a cursor of another query is a 400:

    base64url(JSON {"v": 1, "t": ts_ms, "p": point name, "q": fingerprint}), unpadded

Walking a site's whole catalogue must not decode every block of every point
for every page, so the engine is asked for a *window*: from the position on,
long enough for about `compat_window_samples` samples at the points'
cadences (doubled until a page fills or the range ends). The window's arrays
are kept (`WindowCache`, bounded in bytes) and the following pages of the
walk are cut from them in memory; the cursor alone is enough to resume when
the window is gone.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from acechart.errors import BadRequest
from acechart.wire import RawItem

__all__ = [
    "PageCursor",
    "Window",
    "WindowCache",
    "after_position",
    "query_fingerprint",
]

_VERSION = 1
_WINDOW_TTL_S = 300.0
_OVERHEAD = 256


def query_fingerprint(
    site: str, start_ms: int, end_ms: int, interval: str, points: Sequence[str] | None
) -> str:
    """What a cursor belongs to: the site, range, bucket width and point filter
    (None: the site's whole catalogue, whatever it holds when the page is asked for)."""
    doc = [site, start_ms, end_ms, interval, None if points is None else sorted(points)]
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class PageCursor:
    """The position after the last sample sent: its time and its point's name."""

    ts_ms: int
    point: str
    fingerprint: str

    def encode(self) -> str:
        doc = {"v": _VERSION, "t": self.ts_ms, "p": self.point, "q": self.fingerprint}
        text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
        return base64.urlsafe_b64encode(text).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, fingerprint: str) -> PageCursor:
        """The cursor in `text`, which must belong to the query of `fingerprint`."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            doc = json.loads(raw)
            version, ts, point, owner = doc["v"], doc["t"], doc["p"], doc["q"]
            valid = (
                version == _VERSION
                and isinstance(ts, int)
                and not isinstance(ts, bool)
                and isinstance(point, str)
                and isinstance(owner, str)
            )
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, KeyError):
            valid = False
        if not valid:
            raise BadRequest(
                "cursor is not a cursor of this service: pass next_cursor of the previous page",
                parameter="cursor",
            )
        if owner != fingerprint:
            raise BadRequest(
                "cursor belongs to another query: keep site, start_time, end_time, raw_data"
                " and point_names as they were on the first page",
                parameter="cursor",
            )
        return cls(ts, point, owner)


def after_position(cursor: PageCursor | None, names: Sequence[str]) -> tuple[int, int] | None:
    """`ace_page_end`'s `after` for a cursor over the sorted `names`.

    A point that has left the catalogue since is placed where its name sorts,
    so the walk goes on exactly after it.
    """
    if cursor is None:
        return None
    i = bisect.bisect_left(names, cursor.point)
    if i < len(names) and names[i] == cursor.point:
        return cursor.ts_ms, i
    if i > 0:
        return cursor.ts_ms, i - 1
    return cursor.ts_ms - 1, max(len(names) - 1, 0)


@dataclass(eq=False)
class Window:
    """The engine's arrays of one walk over [lo_ms, hi_ms), series sorted by name."""

    lo_ms: int
    hi_ms: int
    series: list[RawItem]
    cache_status: str
    cache_source: str
    expires: float = 0.0

    @property
    def size(self) -> int:
        return _OVERHEAD + sum(ts.nbytes + v.nbytes + len(n) for n, ts, v in self.series)

    def serves(self, after: tuple[int, int] | None, start_ms: int) -> bool:
        """Whether every row after `after` up to `hi_ms` is in this window."""
        position = start_ms if after is None else after[0]
        return self.lo_ms <= position < self.hi_ms


class WindowCache:
    """The last window of each walk, least recently used dropped past `max_bytes`."""

    def __init__(
        self,
        max_bytes: int,
        *,
        ttl_s: float = _WINDOW_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.clock = clock
        self._windows: OrderedDict[Hashable, Window] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._windows)

    def clear(self) -> None:
        """Forget every window (their samples stay in the block store)."""
        self._windows.clear()
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: Hashable) -> Window | None:
        window = self._windows.get(key)
        if window is None:
            return None
        if self.clock() >= window.expires:
            self._drop(key)
            return None
        window.expires = self.clock() + self.ttl_s
        self._windows.move_to_end(key)
        return window

    def put(self, key: Hashable, window: Window) -> None:
        self._drop(key)
        size = window.size
        if size > self.max_bytes:
            return
        window.expires = self.clock() + self.ttl_s
        self._windows[key] = window
        self._bytes += size
        while self._bytes > self.max_bytes and self._windows:
            self._drop(next(iter(self._windows)))

    def _drop(self, key: Hashable) -> None:
        window = self._windows.pop(key, None)
        if window is not None:
            self._bytes -= window.size
