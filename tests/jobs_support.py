"""Shared pieces of the job tests: a runtime + job service over the simulator, and helpers.

Everything is real: the simulator on a local port, SQLite in `tmp_path`, the
local object store (or moto's S3), the engine. Timings are shortened through
settings (polling, progress writes, retry backoff) so the suite stays quick.
The `stacks` fixture is registered for every test module by `pytest_plugins`
in `conftest.py`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from acechart import _core
from acechart.jobs import Job, JobService
from acechart.query import Query
from acechart.result import Result
from acechart.runtime import Runtime
from acechart.wire import series_item
from acechart.wire import timeseries_metadata as document_metadata
from tests.conftest import NOW_MS, SITE, TOKEN, Sim, origin_settings

DAY = 86_400_000

#: Job settings for tests: fast polling, progress and retries.
FAST: dict[str, Any] = {
    "job_poll_interval_s": 0.05,
    "job_progress_interval_s": 0.05,
    "job_retry_base_s": 0.05,
    "job_retry_cap_s": 0.2,
    # With Redis: a run whose instance stopped writing is taken over after this.
    "job_visibility_timeout_s": 1.0,
}


@dataclass
class Stack:
    """A runtime and a job service over it, on one data directory."""

    runtime: Runtime
    jobs: JobService
    sim: Sim

    @property
    def store(self) -> Any:
        return self.runtime.store

    async def close(self) -> None:
        await self.jobs.close()
        await self.runtime.close()


@dataclass
class StackFactory:
    """Opens stacks (closing them all at the end of the test)."""

    sim: Sim
    data_dir: Path
    opened: list[Stack] = field(default_factory=list)

    async def open(self, *, start: bool = True, **overrides: Any) -> Stack:
        settings = origin_settings(
            self.sim.url, **{"data_dir": str(self.data_dir), **FAST, **overrides}
        )
        runtime = await Runtime.open(settings)
        runtime.engine.clock = lambda: NOW_MS
        try:
            jobs = await JobService.open(
                runtime.engine,
                runtime.store,
                runtime.db,
                runtime.settings,
                start=start,
                redis=runtime.redis,
            )
        except BaseException:
            await runtime.close()
            raise
        stack = Stack(runtime, jobs, self.sim)
        self.opened.append(stack)
        return stack

    async def close(self, stack: Stack) -> None:
        self.opened.remove(stack)
        await stack.close()


@pytest.fixture
async def stacks(sim: Sim, tmp_path: Path) -> AsyncIterator[StackFactory]:
    factory = StackFactory(sim, tmp_path / "data")
    yield factory
    for stack in list(factory.opened):
        await stack.close()


def points(sim: Sim, n: int, cadence_s: int = 300) -> tuple[str, ...]:
    table = sim.site
    picked = [name for i, name in enumerate(table.names) if table.cadence_ms[i] == cadence_s * 1000]
    assert len(picked) >= n
    return tuple(picked[:n])


def query(sim: Sim, n: int, days: int, *, end_days_ago: int = 0, **kw: Any) -> Query:
    end = NOW_MS - end_days_ago * DAY
    return Query(SITE, points(sim, n, kw.pop("cadence_s", 300)), end - days * DAY, end, **kw)


async def finish(jobs: JobService, job_id: str, timeout: float = 60.0) -> tuple[Job, list[int]]:
    """Follow a job to its end; returns the final state and the progress values seen."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    final: Job | None = None
    async for job in jobs.watch(job_id, TOKEN):
        assert job is not None
        seen.append(job.progress)
        final = job
        assert time.monotonic() < deadline, f"job {job_id} still {job.status} after {timeout} s"
    assert final is not None
    return final, seen


async def wait_for(jobs: JobService, job_id: str, condition: Any, timeout: float = 30.0) -> Job:
    """The job once `condition(job)` holds."""
    deadline = time.monotonic() + timeout
    async for job in jobs.watch(job_id, TOKEN):
        assert job is not None
        if condition(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id}: condition not met in {timeout} s"
    raise AssertionError(f"job {job_id} ended before the condition held")


def encode_whole(result: Result, fmt: str, layout: str = "rows") -> bytes:
    """The engine's direct answer encoded as one document (what the job must have stored)."""
    items = [series_item(s) for s in result.series]
    meta = document_metadata(result.query, result.total_samples)
    if fmt == "json":
        return _core.encode_json(meta, items)
    if fmt == "msgpack":
        return _core.encode_msgpack(meta, items, "columns" if layout == "columns" else "rows")
    return _core.encode_csv(items)
