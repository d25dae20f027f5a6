"""Shared bench fixtures, and per benchmark group each contender's speed relative to acechart.

At the end of a run with timings, `benches/results.json` gets one entry per group that
ran: acechart's median, its baseline (the fastest contender of the group that is not
acechart) and their ratio (> 1 means acechart is faster), plus every contender's
median, the commit and the time of the run. Groups that did not run keep their
previous entry, so the file is the latest figure of every benchmark and its history
is the file's git log.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benches.bench_origin import start_simulator

RESULTS = Path(__file__).with_name("results.json")


def group_results(benches: list[Any]) -> dict[str, Any]:
    """acechart's median in one group, its baseline and their ratio.

    The baseline is the fastest contender that is not acechart itself (variants such
    as `acechart (checked)` or `acechart aggregate_many` are listed, never baselines).
    """
    medians = {b.extra_info.get("impl", b.name): b.stats.median for b in benches}
    ours = medians.get("acechart")
    others = {k: v for k, v in medians.items() if not k.startswith("acechart")}
    entry: dict[str, Any] = {
        "median_s": {k: round(v, 9) for k, v in sorted(medians.items(), key=lambda kv: kv[1])}
    }
    samples = next((b.extra_info["samples"] for b in benches if "samples" in b.extra_info), None)
    if samples:
        entry["samples"] = samples
    if ours is not None:
        entry["acechart_s"] = round(ours, 9)
    if ours is not None and others:
        name, base = min(others.items(), key=lambda kv: kv[1])
        entry["baseline"] = name
        entry["baseline_s"] = round(base, 9)
        entry["ratio"] = round(base / ours, 3)
    for b in benches:
        # Benchmarks whose figure is not a time (wrk sessions, peak memory) report it here;
        # an HTTP case's ratio is requests/s against the ceiling's (> 1: faster).
        http = b.extra_info.get("http")
        if http is not None:
            entry["http"] = http
            if "ratio" in http:
                entry["baseline"] = "aiohttp handler returning the bytes from a dict"
                entry["ratio"] = http["ratio"]
        if "report" in b.extra_info:
            entry["report"] = b.extra_info["report"]
    return entry


def write_results(groups: dict[str, list[Any]]) -> None:
    try:
        old = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        old = {}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    merged = dict(old.get("groups", {}))
    for group, benches in groups.items():
        merged[group] = {**group_results(benches), "commit": commit, "run_at": when}
    doc = {
        "about": "pytest-benchmark medians per group; ratio = baseline / acechart (> 1: faster)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "groups": dict(sorted(merged.items())),
    }
    RESULTS.write_text(json.dumps(doc, indent=1) + "\n")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict[str, list[Any]] = defaultdict(list)
    for bench in session.benchmarks:
        if bench.stats is not None and bench.stats.rounds:
            groups[bench.group or ""].append(bench)
    write_results(groups)
    tr = terminalreporter
    tr.section("acechart vs alternatives (median; ratio > 1 means acechart is faster)")
    tr.write_line(f"(written to {RESULTS})")
    for group, benches in sorted(groups.items()):
        ours = [b for b in benches if b.extra_info.get("impl") == "acechart"]
        base = ours[0].stats.median if ours else None
        tr.write_line(f"{group}")
        for b in sorted(benches, key=lambda b: b.stats.median):
            samples = b.extra_info.get("samples")
            rate = f"{samples / b.stats.median / 1e6:9.1f} M samples/s" if samples else ""
            ratio = f"x{b.stats.median / base:6.2f}" if base else ""
            impl = b.extra_info.get("impl", b.name)
            tr.write_line(f"    {impl:<28} {b.stats.median * 1e3:10.2f} ms  {rate}  {ratio}")


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    """`acechart simulate` in its own process (the origin is a remote server), per module."""
    proc, url = start_simulator()
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
