"""A job that completed keeps its result, whatever happens while its end is recorded.

The progress reporter cancels a run whose row is no longer `processing`, which is also
true of a row the run itself just marked `completed`; a cancellation at that moment
deleted the stored result of a completed job (`ObjectNotFound` on download). Now a run
that is recording its completion is no longer cancellable, and a stopped run whose job
completed keeps the result.
"""

from __future__ import annotations

import asyncio

from tests.conftest import TOKEN
from tests.jobs_support import StackFactory, finish, query


async def test_a_slow_end_of_run_keeps_the_result(stacks: StackFactory) -> None:
    stack = await stacks.open(job_progress_interval_s=0.01)
    queue = stack.jobs.queue
    subscribers = queue.subscribers

    async def slow(job_id: str) -> list[str]:
        await asyncio.sleep(0.3)  # several progress ticks while the end is recorded
        return await subscribers(job_id)

    queue.subscribers = slow  # type: ignore[method-assign]
    for days in (1, 2, 3):
        job = await stack.jobs.submit(query(stack.sim, 1, days), "json", TOKEN)
        final, _ = await finish(stack.jobs, job.id)
        assert final.status == "completed" and final.result_key is not None
        await asyncio.sleep(0.4)
        assert await stack.store.head(final.result_key) is not None


async def test_cancelling_as_a_job_completes_keeps_its_result(stacks: StackFactory) -> None:
    stack = await stacks.open()
    queue = stack.jobs.queue
    complete = queue.complete
    completing = asyncio.Event()

    async def slow_complete(job_id: str, key: str, size: int) -> object:
        done = await complete(job_id, key, size)
        completing.set()
        await asyncio.sleep(0.2)
        return done

    queue.complete = slow_complete  # type: ignore[assignment, method-assign]
    job = await stack.jobs.submit(query(stack.sim, 1, 1), "json", TOKEN)
    await asyncio.wait_for(completing.wait(), 30)
    after = await stack.jobs.cancel(job.id, TOKEN)
    assert after.status == "completed"
    final, _ = await finish(stack.jobs, job.id)
    assert final.status == "completed" and final.result_key is not None
    await asyncio.sleep(0.3)
    assert await stack.store.head(final.result_key) is not None
