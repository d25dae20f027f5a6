"""A warm local-day year: 50 points x 365 days of daily buckets in America/Chicago.

The aggregate tier holds the UTC 1hr buckets of the year (what any earlier query
stored); the question is the building's daily chart, days starting at local
midnight (23- and 25-hour days included), answered from those aggregates alone:
no raw sample and no origin request (the origin here is an unused loopback port,
so a request to it would fail the run).

- `acechart`: `Engine.query(interval=1day, tz=America/Chicago)`, which reads the
  1hr blobs (one SELECT, one Rust decode) and merges them at the local midnights
  (`rollup_edges`, in Rust, GIL released).
- `pandas`: the same aggregates read the same way, rolled up with pandas
  (`tz_convert`, `resample("D")`, count/sum/min/max/first/last and the m2 merge),
  the direct way to get local days from stored hourly statistics.

Run: `.venv/bin/python -m pytest benches/bench_local_time.py --benchmark-only`
(part of `make bench`); the target is acechart under 300 ms.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from acechart.query import Query
from acechart.result import Aggregates
from acechart.runtime import Runtime
from acechart.settings import Settings
from benches.data import NAMES, START_MS, year_series

SITE = "ses_falls_city"
TOKEN = "bench-token"
DAY = 86_400_000
ZONE = "America/Chicago"
# 2024 in Chicago: its local days Jan 1 .. Dec 29 (364 of them) lie inside the stored
# UTC range (2024-01-01T00:00Z + 365 days).
START = START_MS + DAY
END = START_MS + 364 * DAY
NOW = START_MS + 400 * DAY  # everything archived: kept for good


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, ...]]:
    """A runtime whose aggregate tier holds 50 points x 365 days of 1hr (and 1day) buckets."""
    loop = asyncio.new_event_loop()
    data = Path(tmp_path_factory.mktemp("local_time"))
    # Nothing listens on port 9: any origin request would fail the benchmark.
    settings = Settings.from_env({}, data_dir=str(data), origin_url="http://127.0.0.1:9")
    runtime = loop.run_until_complete(Runtime.open(settings))
    runtime.engine.clock = lambda: NOW
    raw = {
        n: (ts, v, [(int(ts[0]), int(ts[-1]) + 60_000)])
        for n, (ts, v) in zip(NAMES, year_series(50), strict=True)
    }
    loop.run_until_complete(runtime.engine.aggregates.write_from_raw(SITE, raw, NOW, "1hr"))
    try:
        yield loop, runtime
    finally:
        loop.run_until_complete(runtime.close())
        loop.close()


def pandas_days(agg: Aggregates, zone: str) -> pd.DataFrame:
    """Local days from hourly mergeable statistics, with pandas."""
    index = pd.DatetimeIndex(np.asarray(agg["ts"]).view("datetime64[ms]"), tz="UTC")
    frame = pd.DataFrame(
        {k: agg[k] for k in ("count", "sum", "min", "max", "m2", "first", "last")},
        index=index.tz_convert(zone),
    )
    frame["sq"] = frame["m2"] + frame["sum"] ** 2 / frame["count"]
    days = frame.resample("D").agg(
        {
            "count": "sum",
            "sum": "sum",
            "min": "min",
            "max": "max",
            "first": "first",
            "last": "last",
            "sq": "sum",
        }
    )
    days = days[days["count"] > 0]
    days["avg"] = days["sum"] / days["count"]
    days["m2"] = days["sq"] - days["sum"] * days["avg"]
    return days


def run_acechart(loop: asyncio.AbstractEventLoop, runtime: Runtime) -> dict[str, Any]:
    query = Query(SITE, tuple(NAMES), START, END, "1day", tz=ZONE)
    result = loop.run_until_complete(runtime.engine.query(query, token=TOKEN))
    assert result.provenance.sources == {"D1"} and result.provenance.origin_requests == 0
    return {s.name: s.aggregates for s in result.series}


def run_pandas(loop: asyncio.AbstractEventLoop, runtime: Runtime) -> dict[str, Any]:
    query = Query(SITE, tuple(NAMES), START, END, "1day", tz=ZONE)
    start, end = query.aligned()
    hourly = loop.run_until_complete(runtime.engine.aggregates.read(SITE, NAMES, "1hr", start, end))
    return {p: pandas_days(hourly[p], ZONE) for p in NAMES}


@pytest.mark.parametrize("impl", ["acechart", "pandas roll-up of the same aggregates"])
def test_warm_local_day_year(benchmark: Any, warm: tuple[Any, ...], impl: str) -> None:
    loop, runtime = warm
    benchmark.group = "warm local-day year (tz=America/Chicago, 1day): 50 points x 365 days"
    benchmark.extra_info.update(impl=impl, samples=50 * 365)
    fn = run_acechart if impl == "acechart" else run_pandas
    got = benchmark.pedantic(fn, args=(loop, runtime), rounds=5, iterations=1, warmup_rounds=1)
    # Both answer the same days: compare one point with the other contender.
    other = (run_pandas if impl == "acechart" else run_acechart)(loop, runtime)
    ours, theirs = (got, other) if impl == "acechart" else (other, got)
    name = NAMES[7]
    days = theirs[name]
    assert ours[name]["ts"].tolist() == (days.index.tz_convert("UTC").as_unit("ms").asi8).tolist()
    assert ours[name]["count"].tolist() == days["count"].tolist()
    np.testing.assert_allclose(ours[name]["sum"], days["sum"], rtol=1e-12)
    assert sorted(set(ours[name]["count"].tolist())) == [1380, 1440, 1500]  # 23, 24, 25 h


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        raise SystemExit(pytest.main([__file__, "--benchmark-only", "-q"]))
