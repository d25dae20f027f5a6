"""The progress model of a run: how far it is, how long it has left, how big its next group is.

Pure arithmetic, no I/O, so it can be reasoned about (and tested) on its own.

A run's progress is the share of points done plus the current group's share
from the origin client's callback, scaled to `FETCH_SHARE` percent; storing the
result fills the rest. It never decreases and never claims 100 before the
queue records the job complete, so a poller never sees it jump back or finish
early.

A job asks for its points a group at a time (`ChunkSizer`) so memory holds one
group's samples whatever the job's size. A point's sample count is guessed
from its collection interval, else from the most samples any point of this job
has had so far, else one per 30 s: the fastest common cadence, so a first
group can only come out smaller than the budget, never larger.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from acechart.origin.client import Progress
from acechart.result import Result

__all__ = ["FETCH_SHARE", "ChunkSizer", "RunProgress"]

#: Share of the progress bar for fetching and encoding; the rest is storing the result.
FETCH_SHARE = 95.0
#: Cadence assumed for a point of unknown interval until the job has seen one (ms).
_FIRST_GUESS_CADENCE_MS = 30_000


@dataclass
class RunProgress:
    """Live progress of one run over `total_points` points, in percent."""

    total_points: int
    estimated_duration: int | None = None
    """The job's first duration estimate (s), used until there is progress to extrapolate."""
    started: float = field(default_factory=time.monotonic)
    percent: float = 0.0
    points_done: int = 0
    chunk_points: int = 0
    """Points in the group being fetched now."""

    def advance(self, value: float) -> None:
        """Raise progress to `value` (never lower it, never claim 100 before the end)."""
        self.percent = max(self.percent, min(value, 99.0))

    def chunk_started(self, points: int) -> None:
        self.chunk_points = points

    def on_origin(self, p: Progress) -> None:
        """The origin client's callback: the current group's share of its range fetched."""
        if p.estimated_total:
            fraction = p.samples / p.estimated_total
        elif p.windows:
            fraction = p.windows_done / p.windows
        else:
            return
        done = self.points_done + self.chunk_points * min(max(fraction, 0.0), 1.0)
        self.advance(FETCH_SHARE * done / max(self.total_points, 1))

    def chunk_done(self, points: int) -> None:
        self.points_done += points
        self.chunk_points = 0
        self.advance(FETCH_SHARE * self.points_done / max(self.total_points, 1))

    def on_upload(self, fraction: float) -> None:
        """Storing the result: `fraction` of its bytes sent."""
        self.advance(FETCH_SHARE + (99.0 - FETCH_SHARE) * fraction)

    def remaining_s(self) -> int:
        """Seconds left at the pace so far (the first estimate until there is progress)."""
        elapsed = time.monotonic() - self.started
        if self.percent >= 1.0:
            return math.ceil(elapsed * (100.0 - self.percent) / self.percent)
        return max(0, math.ceil((self.estimated_duration or 0) - elapsed))


class ChunkSizer:
    """Splits a job's points into groups of about `budget` samples each."""

    def __init__(self, budget: int, span_ms: int, cadence_ms: dict[str, int]) -> None:
        self.budget = budget
        self.span_ms = max(span_ms, 1)
        self.cadence_ms = cadence_ms
        self.observed = 0

    def estimate(self, point: str) -> int:
        cadence = self.cadence_ms.get(point)
        if cadence:
            return self.span_ms // cadence
        return self.observed or self.span_ms // _FIRST_GUESS_CADENCE_MS

    def take(self, remaining: list[str]) -> list[str]:
        """Pop the next group off `remaining` (at least one point)."""
        group = [remaining.pop(0)]
        size = self.estimate(group[0])
        while remaining and size + self.estimate(remaining[0]) <= self.budget:
            size += self.estimate(remaining[0])
            group.append(remaining.pop(0))
        return group

    def observe(self, result: Result, points: int) -> None:
        """Learn from a group's answer the most samples a point of this job has had."""
        query = result.query
        if query.interval == "raw" and query.max_points is None:
            most = max((len(s) for s in result.series), default=0)
        else:
            most = result.provenance.samples_fetched // max(points, 1)
        self.observed = max(self.observed, most)
