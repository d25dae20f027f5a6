"""Keep what a site-wide pass paid for: every point on its pages goes into the block store.

The real API's paginated route returns the whole site whatever was asked, so
a pass for 60 points of a 2,000-point site downloads all 2,000. `SiteHarvest`
receives that pass page by page: the requested points' samples are kept for
the answer, and everyone else's are buffered and written into their blocks
whenever the buffer reaches its bound, so memory stays bounded however large
the site and range. A window's rows are written only below the time up to
which it is complete (rows of a page's last timestamp may continue on the
next page), and the coverage written with them is exactly that, for every
point of the site: a point with no rows there had no data, which is worth
caching too.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from acechart.cache import intervals as iv
from acechart.cache.blocks import BlockStore
from acechart.origin.client import ScanPage

__all__ = ["SiteHarvest"]

logger = logging.getLogger(__name__)

Columns = tuple[NDArray[np.int64], NDArray[np.float64]]


@dataclass
class _Window:
    """One window of the pass: its buffered pages and what is written so far."""

    start: int
    end: int
    written_to: int
    complete_to: int
    pages: list[ScanPage] = field(default_factory=list)
    buffered: int = 0


class SiteHarvest:
    """The sink of one `OriginClient.scan_site` pass over `site`.

    `wanted` are the points the query needs (kept whole, returned by
    `requested`); with `harvest`, every other point of the pass, and every
    point of `site_points` that sent nothing, is written to `blocks` as the
    pass goes.
    """

    def __init__(
        self,
        blocks: BlockStore,
        site: str,
        wanted: Collection[str],
        site_points: Collection[str],
        *,
        harvest: bool,
        buffer_samples: int,
        now: int,
    ) -> None:
        self.blocks = blocks
        self.site = site
        self.wanted = frozenset(wanted)
        self.site_points = set(site_points)
        self.harvest = harvest
        self.buffer_samples = buffer_samples
        self.now = now
        self.kept: defaultdict[str, list[Columns]] = defaultdict(list)
        self.harvested_points: set[str] = set()
        self.harvested_samples = 0
        self.blocks_written = 0
        self._windows: dict[tuple[int, int], _Window] = {}
        self._buffered = 0

    async def __call__(self, page: ScanPage) -> None:
        window = self._windows.get(page.window)
        if window is None:
            window = _Window(*page.window, written_to=page.window[0], complete_to=page.window[0])
            self._windows[page.window] = window
        window.complete_to = max(window.complete_to, page.complete_ms)
        names = page.names
        if len(page.ts):
            order = np.argsort(page.point_index, kind="stable")
            index = page.point_index[order]
            bounds = np.searchsorted(index, np.arange(len(names) + 1))
            for i, name in enumerate(names):
                lo, hi = int(bounds[i]), int(bounds[i + 1])
                if lo < hi and name in self.wanted:
                    rows = order[lo:hi]
                    self.kept[name].append((page.ts[rows], page.values[rows]))
        if not self.harvest:
            return
        self.site_points.update(names)
        window.pages.append(page)
        window.buffered += len(page.ts)
        self._buffered += len(page.ts)
        if page.last:
            await self._flush(window, window.end)
            del self._windows[page.window]
        elif self._buffered >= self.buffer_samples:
            for w in list(self._windows.values()):
                await self._flush(w, w.complete_to)

    def requested(self, point: str) -> Columns:
        """Every sample of a wanted point the pass delivered, in time order."""
        chunks = self.kept.get(point, [])
        if not chunks:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        ts = np.concatenate([c[0] for c in chunks])
        values = np.concatenate([c[1] for c in chunks])
        order = np.argsort(ts, kind="stable")
        return ts[order], values[order]

    async def _flush(self, window: _Window, upto: int) -> None:
        """Write the window's rows below `upto` into blocks, with coverage up to it."""
        if upto <= window.written_to:
            return
        by_point: defaultdict[str, list[Columns]] = defaultdict(list)
        left: list[ScanPage] = []
        for page in window.pages:
            below = page.ts < upto
            if not below.all():
                left.append(page)
            if not below.any():
                continue
            rows = np.flatnonzero(below)
            index = page.point_index[rows]
            order = np.argsort(index, kind="stable")
            index, rows = index[order], rows[order]
            bounds = np.searchsorted(index, np.arange(len(page.names) + 1))
            for i, name in enumerate(page.names):
                lo, hi = int(bounds[i]), int(bounds[i + 1])
                if lo < hi and name not in self.wanted:
                    take = rows[lo:hi]
                    by_point[name].append((page.ts[take], page.values[take]))
        span: list[iv.Interval] = [(window.written_to, upto)]
        samples: dict[str, Columns] = {}
        for point in self.site_points - self.wanted:
            chunks = by_point.get(point, [])
            if chunks:
                ts = np.concatenate([c[0] for c in chunks])
                values = np.concatenate([c[1] for c in chunks])
                order = np.argsort(ts, kind="stable")
                samples[point] = (ts[order], values[order])
            else:
                samples[point] = (np.zeros(0, np.int64), np.zeros(0, np.float64))
        written = sum(len(c[0]) for c in samples.values())
        if samples:
            self.blocks_written += await self.blocks.write(
                self.site, samples, {p: span for p in samples}, self.now
            )
            self.harvested_points.update(p for p, c in samples.items() if len(c[0]))
            self.harvested_samples += written
        # Rows of `left` below `upto` were written; keep only what is above it.
        window.pages = [_above(page, upto) for page in left]
        self._buffered -= window.buffered
        window.buffered = sum(len(p.ts) for p in window.pages)
        self._buffered += window.buffered
        window.written_to = upto


def _above(page: ScanPage, upto: int) -> ScanPage:
    keep = page.ts >= upto
    return ScanPage(
        page.window,
        page.names,
        page.point_index[keep],
        page.ts[keep],
        page.values[keep],
        page.complete_ms,
        page.last,
    )
