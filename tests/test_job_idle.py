"""Idle workers wait without polling, yet miss nothing (issue 12, "an idle service is idle").

Each test runs on the embedded backend (SQLite) and the shared one (PostgreSQL +
Redis). Poll intervals are set long (30 s) where the behaviour under test must
not depend on polling: a job submitted in this process, or a retry falling due,
is claimed within a few seconds or the test fails. These are not performance
assertions: with polling alone each would take the whole interval.
"""

from __future__ import annotations

import asyncio
import time

from acechart.jobs.model import JobError
from tests.backends import Backend
from tests.conftest import TOKEN
from tests.jobs_support import StackFactory, finish, query, wait_for

#: Long enough that a test passing within a few seconds cannot have relied on a poll.
LONG_POLL = {"job_poll_interval_s": 30.0, "job_idle_poll_max_s": 30.0}
#: With Redis, dead runs are looked for every quarter of this (at most 5 s).
SLOW_TAKEOVER = {"job_visibility_timeout_s": 30.0}


async def test_a_job_submitted_here_is_claimed_at_once(
    backend: Backend, stacks: StackFactory
) -> None:
    stack = await stacks.open(**LONG_POLL, **SLOW_TAKEOVER)
    await asyncio.sleep(0.5)  # the workers have looked, found nothing and wait
    submitted = time.monotonic()
    job = await stack.jobs.submit(query(stack.sim, 1, 1), "json", TOKEN)
    started = await wait_for(stack.jobs, job.id, lambda j: j.status != "pending", timeout=10.0)
    assert started.attempts == 1
    assert time.monotonic() - submitted < 5.0  # not the 30 s poll
    final, _ = await finish(stack.jobs, job.id, timeout=30.0)
    assert final.status == "completed"


async def test_jobs_submitted_one_after_another_each_start_at_once(
    backend: Backend, stacks: StackFactory
) -> None:
    """Every change wakes a waiting worker, also one made while it was looking."""
    stack = await stacks.open(**LONG_POLL, **SLOW_TAKEOVER)
    await asyncio.sleep(0.5)
    submitted = time.monotonic()
    jobs = [await stack.jobs.submit(query(stack.sim, 1, 1 + i), "csv", TOKEN) for i in range(3)]
    for job in jobs:
        final, _ = await finish(stack.jobs, job.id, timeout=30.0)
        assert final.status == "completed"
    assert time.monotonic() - submitted < 15.0


async def test_a_retry_is_claimed_when_due_by_a_claim_already_waiting(
    backend: Backend, stacks: StackFactory
) -> None:
    stack = await stacks.open(job_workers=0, **LONG_POLL, **SLOW_TAKEOVER)
    queue = stack.jobs.queue
    job = await stack.jobs.submit(query(stack.sim, 1, 1), "json", TOKEN)
    claimed = await queue.claim("w0", 5.0)
    assert claimed is not None and claimed.id == job.id
    # A second worker is already waiting when the retry is scheduled.
    waiting = asyncio.create_task(queue.claim("w1", 10.0))
    await asyncio.sleep(0.3)
    due_ms = int((time.time() + 1.0) * 1000)
    error = JobError("origin_unavailable", "origin answered 503", True, 1)
    assert await queue.retry(job.id, error, due_ms) is not None
    again = await asyncio.wait_for(waiting, 10.0)
    claimed_at_ms = time.time() * 1000
    assert again is not None and again.id == job.id and again.attempts == 2
    assert claimed_at_ms >= due_ms  # not before it is due
    assert claimed_at_ms - due_ms < 3000  # and when due, not at the 30 s poll


async def test_a_job_submitted_on_another_instance_is_picked_up(
    backend: Backend, stacks: StackFactory
) -> None:
    """Two services on one database (and one Redis when shared): A stores, B runs.

    With Redis, B's blocked read wakes when A adds the job; with SQLite only B's
    poll can see it, so its idle ceiling is short here.
    """
    if backend.shared:
        settings = {**LONG_POLL, **SLOW_TAKEOVER}
    else:
        settings = {"job_poll_interval_s": 0.05, "job_idle_poll_max_s": 0.4}
    b = await stacks.open(instance_id="b", **settings)
    a = await stacks.open(job_workers=0, instance_id="a", **settings)
    await asyncio.sleep(1.0)  # B's workers have backed off to their idle pause
    submitted = time.monotonic()
    job = await a.jobs.submit(query(a.sim, 1, 1), "json", TOKEN)
    started = await wait_for(b.jobs, job.id, lambda j: j.status != "pending", timeout=60.0)
    assert started.attempts == 1
    # Redis: woken by A's XADD, well before B's next look for dead runs (every 4-5 s).
    assert time.monotonic() - submitted < (3.0 if backend.shared else 5.0)
    final, _ = await finish(b.jobs, job.id, timeout=60.0)  # A would see it at its poll
    assert final.status == "completed"
    assert (await a.jobs.get(job.id, TOKEN)).result_key == final.result_key
    assert a.jobs.workers.running == 0 and b.jobs.workers.running == 2


async def test_idle_workers_stop_promptly(backend: Backend, stacks: StackFactory) -> None:
    """Stopping waits for each worker's wait to end (a blocking Redis read is not
    cancelled, redis-py could lose it): that wait is short even with a long poll."""
    stack = await stacks.open(**LONG_POLL, **SLOW_TAKEOVER)
    await asyncio.sleep(1.0)  # every worker is waiting (backed off to the 30 s ceiling)
    stopping = time.monotonic()
    await stack.jobs.close()
    assert time.monotonic() - stopping < 2.0  # not a poll interval, nor a 4 s read
