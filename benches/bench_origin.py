"""Origin fetch: sequential pagination vs parallel windows, and the simulator's page cost.

50 one-minute points x 30 days (about 2.1 M samples) through `acechart simulate`
running in its own process with 50 ms latency per page, as the real origin is a
remote server. Reports wall time, samples/s and the share of wall time spent in
`_core.parse_page` (for parallel windows parses overlap, so the share is parse
seconds summed over all pages divided by wall time).

Run with `make bench`, or as a script for a plain table:
`.venv/bin/python -m benches.bench_origin`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from acechart.origin.client import OriginClient, Samples
from acechart.settings import Settings
from acechart.simulator.datagen import DataSource
from acechart.simulator.pagefmt import PageRenderer, page_body
from acechart.times import parse_iso_ms

SITE = "ses_falls_city"
TOKEN = "demo-token"
START = parse_iso_ms("2024-03-01T00:00:00Z")
END = START + 30 * 86_400_000
LATENCY_S = 0.05
POINTS = 50
PAGE_ROWS = 100_000

#: (label, window seconds, concurrency): one cursor chain vs one-day windows, 8 at a time.
MODES = [("sequential", 31 * 86_400, 1), ("parallel windows", 86_400, 8)]
PAGE_SIZES = [10_000, 500_000]


def one_minute_points(count: int = POINTS) -> list[str]:
    table = DataSource((SITE,), seed=1, vav_count=36).sites[SITE]
    return [p.name for p in table.site.points if p.cadence_s == 60][:count]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_simulator(latency_s: float = LATENCY_S) -> tuple[subprocess.Popen[bytes], str]:
    """`acechart simulate` in a child process; returns it and its URL once it accepts."""
    port = _free_port()
    env = dict(
        os.environ,
        ACECHART_SIMULATOR_LATENCY_S=str(latency_s),
        ACECHART_SIMULATOR_NOW="2025-01-01T00:00:00Z",
        # The origin client still sends point_names and expects per-point times.
        ACECHART_SIMULATOR_MODE="idealised",
    )
    cmd = [
        sys.executable,
        "-m",
        "acechart",
        "--log-level",
        "WARNING",
        "simulate",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the simulator did not start")


def fetch(url: str, names: list[str], window_s: int, concurrency: int, page_size: int) -> Samples:
    settings = Settings.from_env(
        {},
        origin_url=url,
        origin_window_s=window_s,
        origin_concurrency=concurrency,
        origin_page_size=page_size,
    )

    async def run() -> Samples:
        async with OriginClient(settings) as client:
            return await client.fetch_samples(SITE, names, START, END, token=TOKEN)

    return asyncio.run(run())


def describe(result: Samples) -> dict[str, Any]:
    return {
        "samples": len(result),
        "pages": result.pages,
        "wall_s": round(result.elapsed_s, 3),
        "samples_per_s": round(len(result) / result.elapsed_s),
        "parse_s": round(result.parse_s, 3),
        "parse_share": round(result.parse_s / result.elapsed_s, 3),
    }


def page_cost(rows: int = PAGE_ROWS) -> tuple[float, float, int]:
    """Simulator cost of one `rows`-sample page: (generate s, serialise s, bytes), best of 5."""
    table = DataSource((SITE,), seed=1, vav_count=36).sites[SITE]
    renderer = PageRenderer(table)
    best = (float("inf"), float("inf"), 0)
    for i in range(5):
        t0 = time.perf_counter()
        page = table.next_rows(table.all_points, START + i * 3_600_000, END, None, rows)
        t1 = time.perf_counter()
        body = page_body(renderer.render(page), "cursor", True)
        t2 = time.perf_counter()
        if t2 - t0 < sum(best[:2]):
            best = (t1 - t0, t2 - t1, len(body))
    return best


@pytest.mark.parametrize("page_size", PAGE_SIZES)
@pytest.mark.parametrize(("mode", "window_s", "concurrency"), MODES, ids=[m[0] for m in MODES])
def test_fetch_50_points_30_days(
    benchmark: Any, simulator: str, mode: str, window_s: int, concurrency: int, page_size: int
) -> None:
    names = one_minute_points()
    benchmark.group = f"origin fetch 50 points x 30 days, 1-min data, page_size {page_size:,}"
    result = benchmark.pedantic(
        fetch, args=(simulator, names, window_s, concurrency, page_size), rounds=2, iterations=1
    )
    assert len(result.names) == POINTS and len(result) > 0.9 * POINTS * 30 * 1440
    benchmark.extra_info.update(impl=mode, **describe(result))


def test_simulator_page_cost(benchmark: Any) -> None:
    table = DataSource((SITE,), seed=1, vav_count=36).sites[SITE]
    renderer = PageRenderer(table)

    def build() -> bytes:
        page = table.next_rows(table.all_points, START, END, None, PAGE_ROWS)
        return page_body(renderer.render(page), "cursor", True)

    benchmark.group = "simulator: one 100,000-sample page (generate + serialise)"
    body = benchmark(build)
    benchmark.extra_info.update(impl="simulator", samples=PAGE_ROWS, mb=len(body) / 1e6)


def main() -> None:
    generate, serialise, size = page_cost()
    print(
        f"simulator page of {PAGE_ROWS:,} samples: generate {generate * 1e3:.1f} ms + "
        f"serialise {serialise * 1e3:.1f} ms = {(generate + serialise) * 1e3:.1f} ms "
        f"({size / 1e6:.1f} MB)"
    )
    names = one_minute_points()
    proc, url = start_simulator()
    try:
        print(f"\n50 points x 30 days of 1-min data, {LATENCY_S * 1e3:.0f} ms latency per page")
        header = f"{'mode':<18}{'page_size':>10}{'samples':>10}{'pages':>7}{'wall s':>9}"
        print(header + f"{'samples/s':>12}{'parse s':>9}{'parse share':>13}")
        for mode, window_s, concurrency in MODES:
            for page_size in PAGE_SIZES:
                d = describe(fetch(url, names, window_s, concurrency, page_size))
                print(
                    f"{mode:<18}{page_size:>10,}{d['samples']:>10,}{d['pages']:>7}"
                    f"{d['wall_s']:>9.2f}{d['samples_per_s']:>12,}{d['parse_s']:>9.2f}"
                    f"{d['parse_share']:>13.1%}"
                )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
