"""What the engine answers: per-point arrays plus where they came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from acechart.query import Query

Aggregates = dict[str, NDArray[np.int64] | NDArray[np.float64]]
"""One point's bucket columns, keyed by `AGG_KEYS`, as `acechart._core.aggregate` returns them."""

#: Keys of an aggregate column set, exactly as `acechart._core.aggregate` returns them.
AGG_KEYS: tuple[str, ...] = (
    "ts",
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "stddev",
    "m2",
    "first",
    "last",
)
AGG_INT_KEYS: frozenset[str] = frozenset({"ts", "count"})
AGG_FLOAT_KEYS: tuple[str, ...] = tuple(k for k in AGG_KEYS if k not in AGG_INT_KEYS)


@dataclass(frozen=True, eq=False)
class Series:
    """One point's answer: samples (`ts`, `values`) and, for interval queries, the
    bucket statistics they were taken from (`ts` = bucket starts, `values` = avg)."""

    name: str
    ts: NDArray[np.int64]
    values: NDArray[np.float64]
    aggregates: Aggregates | None = None

    def __len__(self) -> int:
        return len(self.ts)


@dataclass
class Provenance:
    """Which tiers served a query and what had to come from the origin.

    `sources` uses the seed's names: D1 (aggregate table), R2 (block store),
    ORIGIN. `origin_intervals` lists (points, start_ms, end_ms) fetched.
    """

    sources: set[str] = field(default_factory=set)
    origin_intervals: list[tuple[tuple[str, ...], int, int]] = field(default_factory=list)
    origin_requests: int = 0
    origin_pages: int = 0
    samples_fetched: int = 0
    blocks_read: int = 0
    blocks_written: int = 0
    corrupt_blocks: int = 0
    aggregate_points: int = 0
    strategies: dict[str, int] = field(default_factory=dict)
    """Origin fetches by strategy (`per_point`, `site_wide`, `filtered`): how gaps were paid."""
    origin_samples: int = 0
    """Samples the origin sent (before trimming): what the query paid for."""
    origin_bytes: int = 0
    harvested_points: int = 0
    """Points a site-wide pass stored beyond the ones asked for."""
    harvested_samples: int = 0

    def count_strategy(self, strategy: str) -> None:
        self.strategies[strategy] = self.strategies.get(strategy, 0) + 1

    @property
    def cache_status(self) -> str:
        """HIT (nothing from the origin), MISS (nothing from cache), else PARTIAL."""
        if "ORIGIN" not in self.sources:
            return "HIT"
        return "PARTIAL" if self.sources - {"ORIGIN"} else "MISS"

    @property
    def cache_source(self) -> str:
        """The seed's X-Cache-Source: the slowest tier involved."""
        for source in ("ORIGIN", "R2", "D1"):
            if source in self.sources:
                return source
        return "R2"


@dataclass(frozen=True, eq=False)
class Result:
    query: Query
    series: list[Series]
    provenance: Provenance

    @property
    def total_samples(self) -> int:
        return sum(len(s) for s in self.series)

    @property
    def amplification(self) -> float:
        """Origin samples paid per sample answered (0 when nothing came from the origin)."""
        paid = self.provenance.origin_samples
        return paid / max(self.total_samples, 1) if paid else 0.0
