"""Peak memory of the service answering the warm raw year of 50 one-minute points
(about 26 M samples, 420 MB of arrays), streamed against encoded whole.

`acechart serve` runs in its own process (the simulator as origin in another);
the year is fetched once (cold), then asked for warm in each format. Before
each request the server's peak RSS is reset (`/proc/<pid>/clear_refs`, 5) and
its RSS read; after it, its peak (`VmHWM` in `/proc/<pid>/status`). Each warm
request goes to a fresh service process over the same data directory, so its
peak is its own; the same requests then go to services that never stream
(`ACECHART_STREAM_MIN_SAMPLES=0`): the path before streaming. The
client reads each body in 1 MiB pieces and throws them away, as a browser
writing a download would.

Target: the peak under 2x the arrays' bytes (samples x 16).

`--aggregations` measures `/api/aggregations` instead: 50 points x 30 days at 1min
with the seed's every statistic (2.16 M buckets, 80 bytes of arrays each: `ts`,
`count`, `sum`, `min`, `max`, `avg`, `stddev`, `m2`, `first`, `last`), computed
from the warm raw blocks.

Run: `.venv/bin/python -m benches.bench_memory` (a few minutes: the cold year comes
from the simulator), or with `make bench` (`test_memory_warm_raw_year`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from acechart.times import format_time, parse_iso_ms
from benches.bench_http import service
from benches.bench_origin import SITE, TOKEN, one_minute_points, start_simulator

NOW = parse_iso_ms("2025-01-01T00:00:00Z")
DAY = 86_400_000
END = NOW - 7 * DAY
START = END - 365 * DAY
FORMATS = (("json", "rows"), ("msgpack", "rows"), ("msgpack", "columns"), ("csv", "rows"))
FORMATS += (("arrow", "series"),)
_ENV = {
    # A cold year in one request (it is fetched within it, not refused as `large`).
    "ACECHART_REQUEST_BUDGET_S": "100000",
    "ACECHART_REQUEST_DEADLINE_S": "900",
}


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    """Make the process's peak RSS its current RSS (Linux 4.0+, needs root or the owner)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _url(base: str, endpoint: str, points: list[str], start: int, **params: str) -> str:
    query = {"site": SITE, "points": ",".join(points), "start": format_time(start)}
    query.update(end=format_time(END), **params)
    return f"{base}/api/{endpoint}?{urlencode(query)}"


def year_url(base: str, points: list[str], fmt: str, layout: str) -> str:
    return _url(base, "timeseries", points, START, format=fmt, layout=layout)


AGG_START = END - 30 * DAY


def month_aggregations_url(base: str, points: list[str], fmt: str, layout: str) -> str:
    return _url(base, "aggregations", points, AGG_START, interval="1min", format=fmt, layout=layout)


def month_raw_url(base: str, points: list[str], fmt: str, layout: str) -> str:
    """The raw month under the aggregations, fetched once (cold) into the block store."""
    return _url(base, "timeseries", points, AGG_START, format=fmt, layout=layout)


@dataclass(frozen=True)
class Case:
    """What is measured: the warm answer's URL, the cold one that fills the caches, and
    the bytes of arrays behind each counted row (`X-Data-Samples`)."""

    url: Callable[[str, list[str], str, str], str]
    cold_url: Callable[[str, list[str], str, str], str]
    row_bytes: int


RAW_YEAR = Case(year_url, year_url, 16)
AGGREGATIONS_MONTH = Case(month_aggregations_url, month_raw_url, 80)


@dataclass
class Measured:
    path: str
    fmt: str
    samples: int
    body_bytes: int
    seconds: float
    rss_before_mib: float
    peak_mib: float
    streamed: bool
    row_bytes: int = 16

    @property
    def arrays_mib(self) -> float:
        return self.samples * self.row_bytes / 2**20

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.fmt,
            "samples": self.samples,
            "arrays_mib": round(self.arrays_mib, 1),
            "body_mib": round(self.body_bytes / 2**20, 1),
            "seconds": round(self.seconds, 2),
            "rss_before_mib": round(self.rss_before_mib, 1),
            "peak_mib": round(self.peak_mib, 1),
            "peak_over_arrays": round(self.peak_mib / self.arrays_mib, 2),
            "streamed": self.streamed,
        }


def ask(url: str, pid: int, path: str, fmt: str, row_bytes: int = 16) -> Measured:
    reset_peak(pid)
    before = status_kib(pid, "VmRSS") / 1024
    t0 = time.perf_counter()
    request = urllib.request.Request(url, headers={"X-ACE-Token": TOKEN})
    size = 0
    with urllib.request.urlopen(request, timeout=900) as response:  # loopback only
        samples = int(response.headers["X-Data-Samples"])
        streamed = response.headers.get("Transfer-Encoding") == "chunked"
        while chunk := response.read(1 << 20):
            size += len(chunk)
    seconds = time.perf_counter() - t0
    peak = status_kib(pid, "VmHWM") / 1024
    return Measured(path, fmt, samples, size, seconds, before, peak, streamed, row_bytes)


@contextlib.contextmanager
def origin() -> Iterator[str]:
    sim, url = start_simulator(latency_s=0.0)
    try:
        yield url
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def run(
    formats: tuple[tuple[str, str], ...] = FORMATS,
    paths: tuple[str, ...] = ("streamed", "whole"),
    extra_env: dict[str, str] | None = None,
    case: Case = RAW_YEAR,
) -> list[Measured]:
    """The cold data once, then each warm request in a service process of its own (so a
    peak is that request's, not what an earlier one left in the heap)."""
    points = one_minute_points(50)
    out = []
    with origin() as url, tempfile.TemporaryDirectory(prefix="acechart-mem-") as data:
        with service(url, data_dir=data, **_ENV) as (proc, base):
            cold_url = case.cold_url(base, points, "json", "rows")
            cold = ask(cold_url, proc.pid, "streamed (cold)", "json")
            if case is RAW_YEAR:
                out.append(cold)
        for path in paths:
            env = {**_ENV, **(_WHOLE if path == "whole" else {}), **(extra_env or {})}
            for fmt, layout in formats:
                if path == "whole" and fmt == "csv":
                    continue  # a 2.9 GB body held whole (and copied by the transport): 9 GB
                name = fmt if layout == FORMATS_OWN[fmt] else f"{fmt} {layout}"
                with service(url, data_dir=data, **env) as (proc, base):
                    warm = case.url(base, points, fmt, layout)
                    out.append(ask(warm, proc.pid, path, name, case.row_bytes))
    return out


_WHOLE = {"ACECHART_STREAM_MIN_SAMPLES": "0"}
"""The path before streaming: every answer encoded whole."""
FORMATS_OWN = {"json": "rows", "msgpack": "rows", "csv": "rows", "arrow": "series"}


def table(rows: list[Measured]) -> str:
    lines = [
        "| path | format | samples | arrays MiB | body MiB | s | RSS before MiB "
        "| peak RSS MiB | peak / arrays |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in rows:
        j = m.to_json()
        lines.append(
            f"| {m.path} | {m.fmt} | {m.samples:,} | {j['arrays_mib']:,.0f} | "
            f"{j['body_mib']:,.0f} | {m.seconds:.1f} | {m.rss_before_mib:,.0f} | "
            f"{m.peak_mib:,.0f} | {j['peak_over_arrays']:.2f} |"
        )
    return "\n".join(lines)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_memory_warm_raw_year(benchmark: Any) -> None:
    benchmark.group = "memory warm raw year 50 points"
    rows = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(impl="acechart", report=[m.to_json() for m in rows])
    streamed = [m for m in rows if m.path == "streamed"]
    assert streamed and all(m.streamed for m in streamed)
    assert all(m.samples == rows[0].samples for m in rows)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_memory_warm_aggregations_month(benchmark: Any) -> None:
    benchmark.group = "memory warm 1min aggregations 50 points x 30 days"
    formats = (("json", "rows"), ("msgpack", "rows"), ("arrow", "series"))
    rows = benchmark.pedantic(
        run, args=(formats,), kwargs={"case": AGGREGATIONS_MONTH}, rounds=1, iterations=1
    )
    benchmark.extra_info.update(impl="acechart", report=[m.to_json() for m in rows])
    streamed = [m for m in rows if m.path == "streamed"]
    assert streamed and all(m.streamed for m in streamed)
    assert all(m.samples == rows[0].samples for m in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benches.bench_memory", description=__doc__)
    p.add_argument("--json", action="store_true", help="print the rows as JSON too")
    p.add_argument("--formats", nargs="*", help="e.g. json msgpack:columns (default: all)")
    p.add_argument("--paths", nargs="*", default=["streamed", "whole"], help="streamed, whole")
    p.add_argument("--env", nargs="*", default=[], help="K=V settings of the warm services")
    p.add_argument(
        "--aggregations", action="store_true", help="1min aggregations of 50 points x 30 days"
    )
    args = p.parse_args(argv)
    formats = FORMATS
    if args.formats:
        formats = tuple(
            (f.partition(":")[0], f.partition(":")[2] or FORMATS_OWN[f.partition(":")[0]])
            for f in args.formats
        )
    env = dict(e.split("=", 1) for e in args.env)
    case = AGGREGATIONS_MONTH if args.aggregations else RAW_YEAR
    rows = run(formats, tuple(args.paths), env, case)
    print(table(rows))
    if args.json:
        print(json.dumps([m.to_json() for m in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
