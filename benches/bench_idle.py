"""What an idle `acechart serve` costs: CPU seconds while nobody asks anything.

Three `acechart serve` processes run side by side over one simulator (in a
fourth process), each on its own SQLite data directory, started and measured
over the same window: two job workers as configured (the default: idle ones
back off up to `ACECHART_JOB_IDLE_POLL_MAX_S`), two job workers that look every
poll interval (the baseline: what idle workers did before the back-off), and no
workers (the floor: everything the service does idle that is not the job
queue). Each one's CPU time over the window (its threads' `schedstat`, ns; the
10 ms ticks of `/proc/PID/stat` as a cross-check) is the figure; what the
workers cost is each one's excess over the floor, and the ratio is ours over
the baseline's. (The floor measures 0 on this machine: nothing else in the
service wakes within seconds.)

Run with `make bench`, or as a script for a plain table:
`.venv/bin/python -m benches.bench_idle --seconds 20` (`--poll 1.0` is the
configured job poll interval, the default; `--env K=V` adds a setting to all three).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from benches.bench_http import service
from benches.bench_origin import start_simulator

#: Let both processes finish starting (imports, migrations, first polls) before measuring.
SETTLE_S = 3.0
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Idle:
    """CPU seconds of the two processes over one window (threads' schedstat, and the
    process's own 10 ms-tick count as a cross-check)."""

    seconds: float
    workers_cpu_s: float
    fixed_cpu_s: float
    floor_cpu_s: float
    workers_ticks_s: float
    fixed_ticks_s: float
    floor_ticks_s: float

    @property
    def excess_s(self) -> float:
        """What the idle workers cost: CPU seconds above the floor."""
        return self.workers_cpu_s - self.floor_cpu_s

    @property
    def fixed_excess_s(self) -> float:
        """What workers polling every interval (the baseline) cost above the floor."""
        return self.fixed_cpu_s - self.floor_cpu_s

    @property
    def ratio(self) -> float:
        """Our idle workers' cost over the baseline's."""
        return self.excess_s / self.fixed_excess_s if self.fixed_excess_s > 0 else float("nan")

    def per_s(self, cpu_s: float) -> float:
        """CPU milliseconds per second of wall clock."""
        return cpu_s / self.seconds * 1e3

    def to_json(self) -> dict[str, float]:
        return {
            "seconds": self.seconds,
            "workers_cpu_ms_per_s": round(self.per_s(self.workers_cpu_s), 3),
            "fixed_poll_cpu_ms_per_s": round(self.per_s(self.fixed_cpu_s), 3),
            "floor_cpu_ms_per_s": round(self.per_s(self.floor_cpu_s), 3),
            "workers_stat_ms_per_s": round(self.per_s(self.workers_ticks_s), 3),
            "fixed_poll_stat_ms_per_s": round(self.per_s(self.fixed_ticks_s), 3),
            "floor_stat_ms_per_s": round(self.per_s(self.floor_ticks_s), 3),
            "excess_cpu_ms_per_s": round(self.per_s(self.excess_s), 3),
            "fixed_poll_excess_cpu_ms_per_s": round(self.per_s(self.fixed_excess_s), 3),
            "ratio": round(self.ratio, 4),
        }


def cpu_seconds(pid: int) -> float:
    """CPU time of a process's live threads so far, in nanosecond resolution.

    `/proc/PID/task/*/schedstat` (time on CPU, ns) rather than `/proc/PID/stat`, whose
    10 ms ticks are too coarse for a process that barely runs. A thread that ended in
    the window is not counted: the service's threads (aiosqlite's, the executor's) live
    as long as it does.
    """
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        path = f"/proc/{pid}/task/{task}/schedstat"
        with contextlib.suppress(FileNotFoundError), open(path) as f:
            total += int(f.read().split()[0])
    return total / 1e9


def stat_seconds(pid: int) -> float:
    """User + system CPU time of the whole process (`/proc/PID/stat`, 10 ms ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may hold spaces: split after its closing parenthesis.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@contextlib.contextmanager
def services(poll_s: float, env: dict[str, str]) -> Iterator[tuple[int, int, int]]:
    """(pid with two workers, pid with two polling every interval, pid with none), all
    serving, over one simulator."""
    sim, url = start_simulator()
    try:
        common = {"ACECHART_JOB_POLL_INTERVAL_S": str(poll_s), **env}
        fixed = {**common, "ACECHART_JOB_IDLE_POLL_MAX_S": str(poll_s)}
        quiet = ("--log-level", "WARNING")
        with (
            service(url, *quiet, ACECHART_JOB_WORKERS="2", **common) as (w, _),
            service(url, *quiet, ACECHART_JOB_WORKERS="2", **fixed) as (x, _),
            service(url, *quiet, ACECHART_JOB_WORKERS="0", **common) as (f, _),
        ):
            yield w.pid, x.pid, f.pid
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def measure(seconds: float, poll_s: float = 1.0, env: dict[str, str] | None = None) -> Idle:
    with services(poll_s, env or {}) as pids:
        time.sleep(SETTLE_S)
        before = [f(pid) for f in (cpu_seconds, stat_seconds) for pid in pids]
        time.sleep(seconds)
        after = [f(pid) for f in (cpu_seconds, stat_seconds) for pid in pids]
        w, x, f, wt, xt, ft = (end - start for start, end in zip(before, after, strict=True))
        return Idle(seconds, w, x, f, wt, xt, ft)


def test_idle_service(benchmark: Any) -> None:
    benchmark.group = "idle service cpu"
    idle = benchmark.pedantic(measure, args=(10.0,), rounds=1, iterations=1)
    benchmark.extra_info.update(
        impl="acechart",
        baseline="two workers looking every poll interval (no idle back-off)",
        ratio=round(idle.ratio, 4),
        report=idle.to_json(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--poll", type=float, default=1.0, help="job poll interval, seconds")
    parser.add_argument("--env", action="append", default=[], help="K=V setting for all three")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    idle = measure(args.seconds, args.poll, env)
    print(f"idle over {idle.seconds:.0f} s, CPU ms per second of wall clock (schedstat / stat)")
    for name, cpu, ticks in (
        ("2 job workers", idle.workers_cpu_s, idle.workers_ticks_s),
        ("2, polling every interval", idle.fixed_cpu_s, idle.fixed_ticks_s),
        ("no job workers (floor)", idle.floor_cpu_s, idle.floor_ticks_s),
    ):
        print(f"  {name:<26} {idle.per_s(cpu):8.3f}  {idle.per_s(ticks):8.3f}")
    print(
        f"  the idle workers' cost       {idle.per_s(idle.excess_s):8.3f}"
        f"  (baseline {idle.per_s(idle.fixed_excess_s):.3f}, ratio {idle.ratio:.3f})"
    )


if __name__ == "__main__":
    main()
