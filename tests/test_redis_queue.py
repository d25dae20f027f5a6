"""The Redis Streams job queue across instances: two job services on one PostgreSQL
database and one Redis, as two `acechart serve` processes would be.

Each "instance" is a real `Runtime` + `JobService` (its own database pool, Redis
client and consumer name); the simulator is the origin. What the issue asks of
the queue, one test each: a job submitted on one instance runs on the other's
workers; a dead worker's job is taken over after the visibility timeout and
completed exactly once; retries wait their backoff; a cancellation made on one
instance stops the run on the other; progress is visible from both; pending jobs
Redis lost are given back to it at start.
"""

from __future__ import annotations

import asyncio
import time

from acechart.jobs.model import JobError
from acechart.jobs.redis_queue import RedisJobQueue
from tests.backends import Backend
from tests.conftest import TOKEN
from tests.jobs_support import StackFactory, finish, query, wait_for


async def test_submitted_on_one_instance_runs_on_the_other(
    shared: Backend, stacks: StackFactory
) -> None:
    a = await stacks.open(job_workers=0, instance_id="a")
    b = await stacks.open(instance_id="b")
    assert isinstance(a.jobs.queue, RedisJobQueue) and a.runtime.db.dialect == "postgresql"
    job = await a.jobs.submit(query(a.sim, 2, 3), "json", TOKEN)
    final, _ = await finish(a.jobs, job.id)  # followed from A, run by B
    assert final.status == "completed" and final.attempts == 1
    assert (await b.jobs.get(job.id, TOKEN)).result_key == final.result_key
    assert a.jobs.workers.running == 0


async def test_a_dead_workers_job_is_taken_over_and_completed_once(
    shared: Backend, stacks: StackFactory
) -> None:
    a = await stacks.open(job_workers=0, instance_id="a")
    b = await stacks.open(job_workers=0, instance_id="b")
    job = await a.jobs.submit(query(a.sim, 1, 1), "json", TOKEN)
    qa, qb = a.jobs.queue, b.jobs.queue
    claimed = await qa.claim("w0", 2.0)
    assert claimed is not None and claimed.id == job.id and claimed.attempts == 1
    # A dies here: no heartbeat. Until the visibility timeout nobody else may take it.
    assert await qb.claim("w0", 0.2) is None
    started = time.monotonic()
    taken = None
    while taken is None and time.monotonic() - started < 10:
        taken = await qb.claim("w0", 0.5)
    assert taken is not None and taken.id == job.id and taken.attempts == 2
    assert time.monotonic() - started >= 0.5  # only once the lease had lapsed
    # A comes back to life: its run was taken over, so it can neither heartbeat nor finish.
    assert await qa.heartbeat(job.id, 50, None) == "lost"
    assert await qa.complete(job.id, "exports/a", 1) is None
    done = await qb.complete(job.id, "exports/b", 2)
    assert done is not None and done.status == "completed" and done.result_key == "exports/b"
    assert await qb.complete(job.id, "exports/b", 2) is None  # exactly one completion
    assert (await qa.get(job.id)).result_key == "exports/b"  # type: ignore[union-attr]


async def test_a_retry_waits_its_backoff_then_runs_anywhere(
    shared: Backend, stacks: StackFactory
) -> None:
    a = await stacks.open(job_workers=0, instance_id="a")
    b = await stacks.open(job_workers=0, instance_id="b")
    job = await a.jobs.submit(query(a.sim, 1, 1), "json", TOKEN)
    claimed = await a.jobs.queue.claim("w0", 2.0)
    assert claimed is not None
    due_ms = int((time.time() + 0.6) * 1000)
    error = JobError("origin_unavailable", "origin answered 503", True, 1)
    assert (await a.jobs.queue.retry(job.id, error, due_ms)) is not None
    assert await b.jobs.queue.claim("w0", 0.2) is None  # not yet due
    again = await b.jobs.queue.claim("w0", 3.0)
    assert again is not None and again.id == job.id and again.attempts == 2
    assert time.time() * 1000 >= due_ms


async def test_cancel_on_one_instance_stops_the_run_on_the_other_and_progress_is_shared(
    shared: Backend, stacks: StackFactory
) -> None:
    a = await stacks.open(job_workers=0, instance_id="a")
    b = await stacks.open(instance_id="b", origin_concurrency=2)
    b.sim.faults.configure(latency_s=0.05)
    job = await a.jobs.submit(query(a.sim, 4, 200), "json", TOKEN)
    running = await wait_for(a.jobs, job.id, lambda j: j.status == "processing" and j.progress > 0)
    assert running.progress > 0  # B's progress, read on A
    cancelled = await a.jobs.cancel(job.id, TOKEN)
    assert cancelled.status in ("processing", "cancelled")
    final, _ = await finish(a.jobs, job.id)
    assert final.status == "cancelled"
    await asyncio.sleep(0.2)
    assert job.id not in b.jobs.workers.runs  # B stopped its run


async def test_pending_jobs_redis_lost_are_given_back_at_start(
    shared: Backend, stacks: StackFactory
) -> None:
    a = await stacks.open(job_workers=0, instance_id="a")
    job = await a.jobs.submit(query(a.sim, 1, 1), "json", TOKEN)
    redis = a.runtime.redis
    assert redis is not None
    keys = [k async for k in redis.client.scan_iter(match=redis.prefix + "*")]
    await redis.client.delete(*keys)  # Redis restarted without persistence
    await stacks.close(a)
    b = await stacks.open(instance_id="b")
    final, _ = await finish(b.jobs, job.id)
    assert final.status == "completed"
