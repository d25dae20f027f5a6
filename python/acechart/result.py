"""What the engine answers: per-point arrays plus where they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from acechart.query import Query

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

Aggregates = dict[str, NDArray[np.int64] | NDArray[np.float64]]
"""One point's bucket columns, keyed by `AGG_KEYS`, as `acechart._core.aggregate` returns them."""

#: The statistics `Result.to_arrow` gives each bucket when the query names none.
_BUCKET_COLUMNS: tuple[str, ...] = ("count", "sum", "min", "max", "avg", "stddev")

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
    bucket statistics they were taken from (`ts` = bucket starts, `values` = the
    query's `stat`, avg by default). `partial_last`: the last bucket has not ended yet."""

    name: str
    ts: NDArray[np.int64]
    values: NDArray[np.float64]
    aggregates: Aggregates | None = None
    partial_last: bool = False

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
    incomplete: bool = False
    """The origin failed and the answer holds only what was cached (`Result.missing`)."""

    def count_strategy(self, strategy: str) -> None:
        self.strategies[strategy] = self.strategies.get(strategy, 0) + 1

    @property
    def cache_status(self) -> str:
        """HIT (nothing from the origin), MISS (nothing from cache), else PARTIAL; PARTIAL
        too for an incomplete answer (the origin failed, see `Result.missing`)."""
        if self.incomplete:
            return "PARTIAL"
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
    missing: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    """Per point, the [start, end) ms ranges a partial answer lacks because the origin
    failed (empty for a complete answer)."""
    bucket_factor: int = 1
    """Buckets of the query's interval merged into each answered one (`max_buckets`)."""

    @property
    def partial_last(self) -> bool:
        """Whether some series ends with a bucket that is not complete yet."""
        return any(s.partial_last for s in self.series)

    @property
    def total_samples(self) -> int:
        return sum(len(s) for s in self.series)

    @property
    def amplification(self) -> float:
        """Origin samples paid per sample answered (0 when nothing came from the origin)."""
        paid = self.provenance.origin_samples
        return paid / max(self.total_samples, 1) if paid else 0.0

    # --- conversions (pandas, polars and pyarrow are optional: imported when called) ---

    def to_arrow(self) -> pa.Table:
        """The long table: `point` (dictionary), `time` (timestamp[ms, UTC]), `value`, and
        for interval queries each bucket's statistics: those the query names
        (`Query.stats`, in order), else `count, sum, min, max, avg, stddev`.

        Each series' arrays enter Arrow without a copy; the table is their
        concatenation, one chunk per series.
        """
        import pyarrow as pa

        stamp = pa.timestamp("ms", tz="UTC")
        stats = () if self.query.interval == "raw" else self.query.stats or _BUCKET_COLUMNS
        names = [s.name for s in self.series]
        batches = []
        for i, s in enumerate(self.series):
            columns: dict[str, pa.Array] = {
                "point": pa.DictionaryArray.from_arrays(
                    pa.array(np.full(len(s), i, np.int32)), pa.array(names, pa.string())
                ),
                "time": pa.array(np.asarray(s.ts, np.int64)).view(stamp),
                "value": pa.array(np.asarray(s.values, np.float64)),
            }
            agg = s.aggregates
            for key in stats:
                dtype = np.int64 if key == "count" else np.float64
                # A series without buckets has no statistics; one with buckets has them all.
                column = np.zeros(0, dtype) if agg is None else agg[key]
                columns[key] = pa.array(np.asarray(column, dtype))
            batches.append(pa.record_batch(columns))
        if not batches:
            schema = pa.schema(
                [
                    ("point", pa.dictionary(pa.int32(), pa.string())),
                    ("time", stamp),
                    ("value", pa.float64()),
                    *[(key, pa.int64() if key == "count" else pa.float64()) for key in stats],
                ]
            )
            return schema.empty_table()
        return pa.Table.from_batches(batches)

    @property
    def zone(self) -> str:
        """The zone the answer's times are shown in: the query's resolved `tz`
        (`metadata.timeZone` over HTTP), UTC for an unresolved "site"."""
        return "UTC" if self.query.tz == "site" else self.query.tz

    def to_pandas(self, *, long: bool = False) -> pd.DataFrame:
        """A DataFrame with a tz-aware DatetimeIndex (in the query's zone, UTC by default)
        and one column per point, outer joined on time; `long=True` gives the tidy form
        (`time, point, value`, plus the bucket statistics of interval queries)."""
        import pandas as pd

        if long:
            tidy: pd.DataFrame = self.to_arrow().to_pandas()
            if self.zone != "UTC":
                tidy["time"] = tidy["time"].dt.tz_convert(self.zone)
            return tidy
        columns = {
            s.name: pd.Series(
                np.asarray(s.values, np.float64),
                index=pd.DatetimeIndex(np.asarray(s.ts, np.int64).view("datetime64[ms]"), tz="UTC"),
            )
            for s in self.series
        }
        if not columns:
            return pd.DataFrame(index=pd.DatetimeIndex([], tz=self.zone, name="time"))
        frame = pd.concat(columns, axis=1, sort=True)
        if self.zone != "UTC" and isinstance(frame.index, pd.DatetimeIndex):
            frame.index = frame.index.tz_convert(self.zone)
        frame.index.name = "time"
        return frame

    def to_polars(self, *, long: bool = False) -> pl.DataFrame:
        """The same two shapes as `to_pandas`, as a polars DataFrame (through Arrow), its
        `time` in the query's zone too."""
        import polars as pl

        tidy = pl.from_arrow(self.to_arrow())
        assert isinstance(tidy, pl.DataFrame)
        tidy = tidy.with_columns(pl.col("point").cast(pl.String))
        if self.zone != "UTC":
            tidy = tidy.with_columns(pl.col("time").dt.convert_time_zone(self.zone))
        if long:
            return tidy
        names = [s.name for s in self.series]
        wide = tidy.pivot(on="point", index="time", values="value").sort("time")
        return wide.select(["time", *[n for n in names if n in wide.columns]])
