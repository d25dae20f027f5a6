"""Shared bench fixtures, and per benchmark group each contender's speed relative to acechart."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from benches.bench_origin import start_simulator


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict[str, list[Any]] = defaultdict(list)
    for bench in session.benchmarks:
        if bench.stats is not None and bench.stats.rounds:
            groups[bench.group or ""].append(bench)
    tr = terminalreporter
    tr.section("acechart vs alternatives (median; ratio > 1 means acechart is faster)")
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
