"""Keep what a site-wide pass paid for: every point on its pages goes into the block store.

The real API's paginated route returns the whole site whatever was asked, so
a pass for 60 points of a 2,000-point site downloads all 2,000. `SiteHarvest`
receives that pass page by page: the requested points' samples are kept for
the answer, and everyone else's are buffered; when the buffer reaches its
bound, the rows below the time up to which each window is complete (rows of a
page's last timestamp may continue on the next page) move to a spool file on
disk, per (point, period). Each (point, period) block is written once, when
every window of the pass overlapping its period has finished, from the spool:
memory holds the buffer plus one batch of blocks being written, however large
the site and range (rewriting a growing month block at every flush made a
30-day pass of 2,000 points read and re-encode each block dozens of times and
hold thousands of them at once). The coverage written is exactly the finished
windows' spans, for every point of the site: a point with no rows there had no
data, which is worth caching too. `close()` writes what is left (after a
failed pass: the complete part of each window).
"""

from __future__ import annotations

import logging
import tempfile
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import IO

import numpy as np
from numpy.typing import NDArray

from acechart.cache import intervals as iv
from acechart.cache.blocks import BlockStore
from acechart.cache.periods import periods
from acechart.origin.client import ScanPage

__all__ = ["SiteHarvest"]

logger = logging.getLogger(__name__)

Columns = tuple[NDArray[np.int64], NDArray[np.float64]]
_EMPTY: Columns = (np.zeros(0, np.int64), np.zeros(0, np.float64))


@dataclass
class _Window:
    """One window of the pass: its buffered pages and what is spooled so far."""

    start: int
    end: int
    written_to: int
    complete_to: int
    pages: list[ScanPage] = field(default_factory=list)
    buffered: int = 0


class _Spool:
    """Samples waiting for their period to finish, on disk, per (point, period start)."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._size = 0
        self._chunks: defaultdict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)

    def append(
        self, point: str, period: int, ts: NDArray[np.int64], values: NDArray[np.float64]
    ) -> None:
        if self._file is None:
            # Lives for the whole pass; `close()` closes (and so deletes) it.
            self._file = tempfile.TemporaryFile(prefix="acechart-harvest-")  # noqa: SIM115
        self._file.seek(self._size)
        self._file.write(np.ascontiguousarray(ts, np.int64).tobytes())
        self._file.write(np.ascontiguousarray(values, np.float64).tobytes())
        self._chunks[(point, period)].append((self._size, len(ts)))
        self._size += 16 * len(ts)

    def take(self, point: str, period: int) -> Columns:
        """The point's spooled samples of the period, in time order, then forgotten."""
        chunks = self._chunks.pop((point, period), [])
        if not chunks or self._file is None:
            return _EMPTY
        ts_parts, value_parts = [], []
        for offset, n in chunks:
            self._file.seek(offset)
            data = self._file.read(16 * n)
            ts_parts.append(np.frombuffer(data, np.int64, n))
            value_parts.append(np.frombuffer(data, np.float64, n, 8 * n))
        ts, values = np.concatenate(ts_parts), np.concatenate(value_parts)
        order = np.argsort(ts, kind="stable")
        return ts[order], values[order]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._chunks.clear()


class SiteHarvest:
    """The sink of one `OriginClient.scan_site` pass over `site` and `[start, end)`.

    `wanted` are the points the query needs (kept whole, returned by
    `requested`); with `harvest`, every other point of the pass, and every
    point of `site_points` that sent nothing, is written to `blocks`, one block
    per (point, period), as each period of the pass finishes.
    """

    def __init__(
        self,
        blocks: BlockStore,
        site: str,
        wanted: Collection[str],
        site_points: Collection[str],
        *,
        start: int,
        end: int,
        harvest: bool,
        buffer_samples: int,
        now: int,
    ) -> None:
        self.blocks = blocks
        self.site = site
        self.wanted = frozenset(wanted)
        self.site_points = set(site_points)
        self.start = start
        self.end = end
        self.harvest = harvest
        self.buffer_samples = buffer_samples
        self.now = now
        self.kept: defaultdict[str, list[Columns]] = defaultdict(list)
        self.harvested_points: set[str] = set()
        self.harvested_samples = 0
        self.blocks_written = 0
        self._windows: dict[tuple[int, int], _Window] = {}
        self._buffered = 0
        self._done: list[iv.Interval] = []
        self._open = {p_start: p_end for _, p_start, p_end in periods(start, end)}
        self._spool = _Spool()

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
            self._spool_window(window, window.end)
            del self._windows[page.window]
            self._done = iv.union(self._done, [(window.start, window.end)])
            await self._write_finished()
        elif self._buffered >= self.buffer_samples:
            for w in self._windows.values():
                self._spool_window(w, w.complete_to)

    def requested(self, point: str) -> Columns:
        """Every sample of a wanted point the pass delivered, in time order."""
        chunks = self.kept.get(point, [])
        if not chunks:
            return _EMPTY
        ts = np.concatenate([c[0] for c in chunks])
        values = np.concatenate([c[1] for c in chunks])
        order = np.argsort(ts, kind="stable")
        return ts[order], values[order]

    async def close(self) -> None:
        """Write every period still open with what is complete of it, and drop the spool.

        After a whole pass nothing is open; after a failed one, each window's
        complete part is kept, as the origin answered it.
        """
        try:
            if self.harvest:
                for w in self._windows.values():
                    self._spool_window(w, w.complete_to)
                partial = [(w.start, w.written_to) for w in self._windows.values()]
                covered = iv.union(self._done, [s for s in partial if s[0] < s[1]])
                for p_start in list(self._open):
                    await self._write_period(p_start, covered)
                self._windows.clear()
        finally:
            self._spool.close()

    def _spool_window(self, window: _Window, upto: int) -> None:
        """Move the window's rows below `upto` from the buffer to the spool."""
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
        edges = [(p_start, p_end) for _, p_start, p_end in periods(window.written_to, upto)]
        for point, chunks in by_point.items():
            ts = np.concatenate([c[0] for c in chunks])
            values = np.concatenate([c[1] for c in chunks])
            for p_start, p_end in edges:
                lo, hi = np.searchsorted(ts, [p_start, p_end]) if len(edges) > 1 else (0, len(ts))
                if lo < hi:
                    self._spool.append(point, p_start, ts[lo:hi], values[lo:hi])
        # Rows of `left` below `upto` are spooled; keep only what is above it.
        window.pages = [_above(page, upto) for page in left]
        self._buffered -= window.buffered
        window.buffered = sum(len(p.ts) for p in window.pages)
        self._buffered += window.buffered
        window.written_to = upto

    async def _write_finished(self) -> None:
        """Write every open period that the finished windows now cover whole."""
        for p_start, p_end in list(self._open.items()):
            span = (max(p_start, self.start), min(p_end, self.end))
            if p_start in self._open and iv.clip(self._done, *span) == [span]:
                await self._write_period(p_start, self._done)

    async def _write_period(self, p_start: int, covered: list[iv.Interval]) -> None:
        """One block per harvested point for the period, in batches of about the buffer."""
        # Another page's call may have written it while this one awaited a batch.
        p_end = self._open.pop(p_start, None)
        if p_end is None:
            return
        span = iv.clip(covered, max(p_start, self.start), min(p_end, self.end))
        if not span:
            return
        batch: dict[str, Columns] = {}
        held = 0
        for point in sorted(self.site_points - self.wanted):
            batch[point] = self._spool.take(point, p_start)
            held += len(batch[point][0])
            if held >= self.buffer_samples or len(batch) >= 256:
                await self._write(batch, span)
                batch, held = {}, 0
        if batch:
            await self._write(batch, span)

    async def _write(self, samples: dict[str, Columns], span: list[iv.Interval]) -> None:
        # Read the counter after the await: two periods may be written at once.
        written = await self.blocks.write(self.site, samples, {p: span for p in samples}, self.now)
        self.blocks_written += written
        self.harvested_points.update(p for p, c in samples.items() if len(c[0]))
        self.harvested_samples += sum(len(c[0]) for c in samples.values())


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
