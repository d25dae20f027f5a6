"""Peak RSS of one harvested site-wide pass, against the bytes of the raw arrays it stores.

The realistic simulator (every page holds the whole site) runs in its own
process with `--points`-ish points (VAV boxes x 6 plus the site's other
equipment) at one-minute cadence; a fresh child process runs one query that is
forced site-wide over `--days`, so every point of the site is harvested into
blocks, and reports its peak RSS (`ru_maxrss`) and how many blocks it wrote.
`--baseline DIR` runs the same pass first with another checkout's `python/`
directory (e.g. the code before a change, from `git archive`), side by side.

Run: `python -m benches.bench_harvest_memory --points 500 --days 10`
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benches.bench_amplification import DAY, END, NOW, SITE, TOKEN, site_points, start_simulator

_CHILD = """
import asyncio, resource, sys, tempfile, time
from acechart.query import Query
from acechart.runtime import Runtime
from acechart.settings import Settings
from acechart.times import parse_iso_ms
url, now, site, token = sys.argv[1], sys.argv[4], sys.argv[5], sys.argv[6]
start, end = int(sys.argv[2]), int(sys.argv[3])
async def main():
    with tempfile.TemporaryDirectory() as d:
        s = Settings.from_env({}, origin_url=url, data_dir=d, origin_strategy="site_wide",
                              max_points_per_query=5000)
        async with await Runtime.open(s) as rt:
            rt.engine.clock = lambda: parse_iso_ms(now)
            await rt.catalog.refresh(site, token=token)
            names = sorted(await rt.catalog.cadences(site, token=token))[:5]
            t0 = time.perf_counter()
            r = await rt.engine.query(Query(site, tuple(names), start, end), token=token)
            p = r.provenance
            print(p.harvested_points, p.harvested_samples, p.blocks_written,
                  time.perf_counter() - t0)
asyncio.run(main())
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run_pass(python_dir: str, url: str, days: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=python_dir)
    args = [url, str(END - days * DAY), str(END), NOW, SITE, TOKEN]
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    return {
        "points": int(out[0]),
        "samples": int(out[1]),
        "blocks": int(out[2]),
        "seconds": float(out[3]),
        "rss_mib": int(out[-1]) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=500, help="about this many site points")
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--baseline", help="a python/ directory of other code to run first")
    args = parser.parse_args()
    vav = max(1, (args.points - 100) // 6)
    every = site_points(vav)
    ours = str(Path(__file__).resolve().parent.parent / "python")
    runs = [("baseline", args.baseline)] if args.baseline else []
    runs.append(("this checkout", ours))
    proc, url = start_simulator(vav)
    try:
        rows = [(label, run_pass(d, url, args.days)) for label, d in runs]
    finally:
        proc.terminate()
        proc.wait()
    raw = rows[-1][1]["samples"] * 16 / 2**20
    print(f"\n{len(every)} points x {args.days} days; harvested raw arrays {raw:,.0f} MiB\n")
    print("| code | harvested samples | block writes | seconds | peak RSS MiB | RSS / raw |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, r in rows:
        print(
            f"| {label} | {r['samples']:,.0f} | {r['blocks']:,.0f} | {r['seconds']:.1f} |"
            f" {r['rss_mib']:,.0f} | {r['rss_mib'] / raw:.2f} |"
        )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
