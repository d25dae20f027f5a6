"""What a query costs the real API: acechart's strategies, the seed's worker, the old client.

The simulator runs in realistic mode (the API as the field sees it: the paginated
route ignores `point_names` and returns the whole site) with 2,000 one-minute
points, in its own process, with 20 ms latency per request. Each approach gets a
fresh cache and answers the same queries, each followed by a second query for
other points over the same range:

- **acechart**: per-point or site-wide by estimated cost, site-wide passes harvested;
- **seed worker**: one site-wide pass per query, filtered, nothing harvested
  (`origin_strategy=site_wide`, `origin_harvest=false`);
- **old client**: the paginated route with `point_names` groups, as acechart did
  before (`origin_strategy=filtered`), which the real API answers with the whole site.

For each query: origin requests, origin samples, origin MB, wall seconds and the
amplification (origin samples / answered samples). Then the peak RSS of one
harvested site-wide pass over 30 days of the 2,000 points, in a child process.

Run: `.venv/bin/python -m benches.bench_amplification` (about 10 minutes; `--quick`
for a smaller site and shorter ranges).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from acechart.query import Query
from acechart.runtime import Runtime
from acechart.settings import Settings
from acechart.simulator.datagen import DataSource
from acechart.times import parse_iso_ms
from benches.bench_origin import _free_port

SITE = "ses_falls_city"
TOKEN = "demo-token"
NOW = "2025-01-01T00:00:00Z"
END = parse_iso_ms("2024-12-20T00:00:00Z")
DAY = 86_400_000
#: VAV boxes giving about 2,000 points (6 each plus the site's other equipment).
VAV_COUNT = 317
LATENCY_S = 0.02

APPROACHES: dict[str, dict[str, Any]] = {
    "acechart": {},
    "seed worker": {"origin_strategy": "site_wide", "origin_harvest": False},
    "old client": {"origin_strategy": "filtered"},
}


@dataclass
class Row:
    approach: str
    query: str
    requests: int
    samples: int
    bytes: int
    seconds: float
    answered: int

    @property
    def amplification(self) -> float:
        return self.samples / max(self.answered, 1)

    def markdown(self) -> str:
        return (
            f"| {self.query} | {self.approach} | {self.requests:,} | {self.samples:,} |"
            f" {self.bytes / 1e6:,.1f} | {self.seconds:.2f} | {self.amplification:.2f} |"
        )


def start_simulator(vav_count: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = dict(
        os.environ,
        ACECHART_SIMULATOR_NOW=NOW,
        ACECHART_SIMULATOR_MODE="realistic",
        ACECHART_SIMULATOR_VAV_COUNT=str(vav_count),
        ACECHART_SIMULATOR_CADENCE_S="60",
        ACECHART_SIMULATOR_LATENCY_S=str(LATENCY_S),
    )
    cmd = [sys.executable, "-m", "acechart", "--log-level", "WARNING", "simulate"]
    proc = subprocess.Popen([*cmd, "--port", str(port)], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("simulator did not start")


def site_points(vav_count: int) -> list[str]:
    return list(DataSource((SITE,), seed=1, vav_count=vav_count).sites[SITE].names)


async def run_approach(
    name: str, url: str, queries: list[tuple[str, list[str], list[str], int]], data_dir: str
) -> list[Row]:
    settings = Settings.from_env(
        {}, origin_url=url, data_dir=data_dir, max_points_per_query=5000, **APPROACHES[name]
    )
    rows: list[Row] = []
    async with await Runtime.open(settings) as runtime:
        runtime.engine.clock = lambda: parse_iso_ms(NOW)
        await runtime.catalog.refresh(SITE, token=TOKEN)
        for label, first, second, days in queries:
            for which, points in (("", first), (" then other points", second)):
                q = Query(SITE, tuple(points), END - days * DAY, END)
                t0 = time.perf_counter()
                result = await runtime.engine.query(q, token=TOKEN)
                seconds = time.perf_counter() - t0
                p = result.provenance
                rows.append(
                    Row(
                        name,
                        label + which,
                        p.origin_requests,
                        p.origin_samples,
                        p.origin_bytes,
                        seconds,
                        result.total_samples,
                    )
                )
                print("  " + rows[-1].markdown(), flush=True)
    return rows


def peak_rss_of_pass(url: str, days: int) -> float:
    """Peak RSS (MiB) of a child that runs one harvested site-wide pass over `days`."""
    code = f"""
import asyncio, resource, tempfile
from acechart.query import Query
from acechart.runtime import Runtime
from acechart.settings import Settings
from acechart.times import parse_iso_ms
async def main():
    with tempfile.TemporaryDirectory() as d:
        s = Settings.from_env({{}}, origin_url={url!r}, data_dir=d, origin_strategy="site_wide")
        async with await Runtime.open(s) as rt:
            rt.engine.clock = lambda: parse_iso_ms({NOW!r})
            await rt.catalog.refresh({SITE!r}, token={TOKEN!r})
            names = sorted((await rt.catalog.cadences({SITE!r}, token={TOKEN!r})))[:5]
            q = Query({SITE!r}, tuple(names), {END - days * DAY}, {END})
            r = await rt.engine.query(q, token={TOKEN!r})
            print(r.provenance.harvested_points, r.provenance.harvested_samples)
asyncio.run(main())
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    print(f"  harvested {out[0]} points, {int(out[1]):,} samples")
    return int(out[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 300-point site, shorter ranges")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="APPROACH=N",
        help="run only the first N queries for this approach (e.g. 'old client=1'); the"
        " baselines download the whole site for every query, which takes long",
    )
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS pass")
    args = parser.parse_args()
    limits = {k: int(v) for k, _, v in (item.rpartition("=") for item in args.limit)}
    vav = 36 if args.quick else VAV_COUNT
    scale = 0.2 if args.quick else 1.0
    every = site_points(vav)
    proc, url = start_simulator(vav)
    try:
        queries = [
            ("1 point x 1 day", every[:1], every[1:2], 1),
            ("5 points x 7 days", every[10:15], every[15:20], max(1, round(7 * scale))),
            ("50 points x 30 days", every[100:150], every[150:200], max(1, round(30 * scale))),
            ("all points x 1 day", every, every[:50], 1),
        ]
        rows: list[Row] = []
        for name in APPROACHES:
            with tempfile.TemporaryDirectory() as data_dir:
                chosen = queries[: limits.get(name, len(queries))]
                rows += asyncio.run(run_approach(name, url, chosen, data_dir))
        rss = 0.0 if args.no_rss else peak_rss_of_pass(url, max(1, round(30 * scale)))
    finally:
        proc.terminate()
        proc.wait()
    print(f"\n{len(every)} points at 1 min, realistic API, {LATENCY_S * 1000:.0f} ms per request\n")
    print("| query | approach | requests | origin samples | origin MB | seconds | amplification |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label in dict.fromkeys(r.query for r in rows):
        for r in (r for r in rows if r.query == label):
            print(r.markdown())
    days = max(1, round(30 * scale))
    print(
        f"\npeak RSS of one harvested site-wide pass, {len(every)} points x {days} days:"
        f" {rss:,.0f} MiB"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": [r.__dict__ for r in rows], "peak_rss_mib": rss}, f, indent=1)


if __name__ == "__main__":
    main()
