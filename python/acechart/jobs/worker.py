"""`Workers`: N tasks that claim jobs from the queue and run them to an end.

A run fetches through the engine, so its samples land in the block cache and
aggregate table like any query's (seed pattern 3), and a resumed job finds what
its interrupted run already fetched. It asks for its points a group at a time,
sized by `job_chunk_samples` (`progress.ChunkSizer`), encodes each group's
series into a spool and lets them go before the next group: memory stays
bounded whatever the job's size. The finished document streams into the
object store (`export.py`).

Progress (`progress.RunProgress`) is written to the queue at most every
`job_progress_interval_s`, which is also when a cancellation requested through
the queue (by another process) is noticed. A cancellation made in this process
stops the run at once (`stop`): its task is cancelled, and the engine stops an
origin fetch nobody waits for any more.

A failed run is retried with exponential backoff while the error may pass
(origin or storage trouble) and attempts remain; then the job fails with the
seed's body. Closing hands running jobs back to the queue (`release`) without
counting the interrupted run; a crash leaves them `processing`, and `start`
(through `JobQueue.recover`) resumes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from acechart.engine import Engine
from acechart.jobs.export import ResultWriter, drop_outputs
from acechart.jobs.model import Job, JobError
from acechart.jobs.progress import ChunkSizer, RunProgress
from acechart.jobs.queue import JobQueue
from acechart.jobs.tokens import TokenVault
from acechart.jobs.webhook import Notifier
from acechart.query import Query
from acechart.settings import Settings
from acechart.storage.database import Database
from acechart.storage.objects import ObjectStore

__all__ = ["Run", "Workers"]

logger = logging.getLogger(__name__)

#: A running job's row is touched at least this often, even without progress.
_HEARTBEAT_S = 5.0
#: Longest a finished run waits for its progress reporter's heartbeat in flight.
_REPORTER_STOP_S = 15.0
#: How long `close` lets waiting claims end by themselves before cancelling them.
_CLAIM_STOP_S = 10.0


@dataclass(eq=False)
class Run:
    """One run of a job in this process: its task and live progress."""

    job: Job
    progress: RunProgress
    task: asyncio.Task[None] | None = None
    reported: int = -1
    """The percentage last written to the queue."""
    stop: Literal["cancel", "shutdown", "lost"] | None = None
    """Why the task was cancelled: by the owner, because the service is closing, or
    because the job is not this run's any more (a heartbeat said `lost`)."""
    finishing: bool = False
    """The result is stored and the run is being recorded as completed: too late to
    cancel (a cancellation now would delete the result of a completed job)."""
    ended: bool = False
    """Its attempt is over (it is recording how): a claim of the job now, a retry's,
    is another run's."""


class Workers:
    """`settings.job_workers` tasks claiming jobs from `queue` and running them.

    `on_change` is called whenever a run starts, moves or ends, so whoever
    watches jobs in this process sees it at once rather than at the next poll.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        store: ObjectStore,
        db: Database,
        settings: Settings,
        queue: JobQueue,
        vault: TokenVault,
        notifier: Notifier,
        clock: Callable[[], float],
        on_change: Callable[[], None],
    ) -> None:
        self.engine = engine
        self.store = store
        self.db = db
        self.settings = settings
        self.queue = queue
        self.vault = vault
        self.notifier = notifier
        self.clock = clock
        self.on_change = on_change
        self.spool_dir = Path(settings.data_dir) / "tmp" / "jobs"
        self.runs: dict[str, Run] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping: set[asyncio.Task[None]] = set()
        """Progress reporters told to stop and not ended yet (referenced until they end)."""
        #: Workers inside `queue.claim` (the others wait for a run).
        self._claiming: set[asyncio.Task[Any]] = set()
        self._closing = False

    async def start(self) -> None:
        """Resume jobs a previous process left running, then start the workers."""
        await self.queue.recover()
        for i in range(self.settings.job_workers):
            self._tasks.append(asyncio.create_task(self._work(f"w{i}"), name=f"job-worker-{i}"))

    @property
    def running(self) -> int:
        """How many worker tasks are live (0 before `start` and after `close`)."""
        return sum(not task.done() for task in self._tasks)

    async def stop(self, job_id: str, timeout: float) -> None:
        """Cancel the job's run in this process, if any, waiting up to `timeout` for it."""
        run = self.runs.get(job_id)
        if run is not None and run.task is not None and run.stop is None and not run.finishing:
            run.stop = "cancel"
            run.task.cancel()
            await asyncio.wait([run.task], timeout=timeout)

    async def close(self) -> None:
        """Stop claiming, then hand every running job back to the queue."""
        self._closing = True
        # A closed queue ends every waiting claim within its current wait, so a claim is
        # not cancelled mid-command (redis-py can lose a cancelled command's reply);
        # workers waiting for a run are cancelled at once (the run is stopped below).
        await self.queue.close()
        for task in self._tasks:
            if task not in self._claiming:
                task.cancel()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=_CLAIM_STOP_S)
            for task in late:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        runs = [r for r in self.runs.values() if r.task is not None]
        for run in runs:
            run.stop = run.stop or "shutdown"
            assert run.task is not None
            run.task.cancel()
        await asyncio.gather(*(r.task for r in runs if r.task), return_exceptions=True)

    # --- the loop ------------------------------------------------------------------

    async def _work(self, name: str) -> None:
        poll = self.settings.job_poll_interval_s
        me = asyncio.current_task()
        assert me is not None
        while not self._closing:
            self._claiming.add(me)
            try:
                # One wait for as long as the queue is empty: the queue paces its own
                # looks (backing off while idle) and wakes at once for work.
                job = await self.queue.claim(name, math.inf)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("worker %s could not claim a job; retrying", name)
                await asyncio.sleep(poll)
                continue
            finally:
                self._claiming.discard(me)
            if job is None:
                continue
            if self._closing:
                await self.queue.release(job.id)  # claimed as the service closes
                return
            running = self.runs.get(job.id)
            if running is not None and not running.ended:
                # Taken over from this very process: its run stalled past the visibility
                # timeout and is alive. It goes on as the new attempt (the queue holds
                # that one now); a second run would race it to the same result.
                logger.warning("job %s: still running here; that run goes on", job.id)
                continue
            run = Run(job, RunProgress(len(job.request.query.points), job.estimated_duration))
            run.task = asyncio.create_task(self._execute(run), name=f"job-{job.id}")
            self.runs[job.id] = run
            self.on_change()
            # wait() rather than await: cancelling this worker must not cancel the run.
            await asyncio.wait([run.task])

    async def _execute(self, run: Run) -> None:
        job = run.job
        done = asyncio.Event()
        reporter = asyncio.create_task(self._report(run, done), name=f"job-{job.id}-progress")
        try:
            try:
                await self._attempt(run)
            except asyncio.CancelledError:
                run.ended = True
                await self._stopped(run)
            except Exception as exc:
                run.ended = True
                await self._failed(run, exc)
            else:
                run.ended = True
        except Exception:
            # The row still says processing, so the next start resumes the job.
            logger.exception("job %s: could not record how its run ended", job.id)
        finally:
            # Stopped, not cancelled: a heartbeat may be in a Redis command, and redis-py
            # can lose a cancellation that lands there (the reporter would never end). It
            # ends at its next wake; a heartbeat in flight is bounded by the client's and
            # the database's timeouts, and is not waited for past `_REPORTER_STOP_S`.
            done.set()
            self._stopping.add(reporter)
            reporter.add_done_callback(self._stopping.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reporter), _REPORTER_STOP_S)
            if self.runs.get(job.id) is run:  # not a later run of the same job, here too
                del self.runs[job.id]
            self.on_change()

    async def _attempt(self, run: Run) -> None:
        job = run.job
        s = self.settings
        if job.attempts > s.job_max_attempts:
            # Only crashes mid-run get here (each claim counts one attempt).
            error = JobError(
                "worker_lost",
                f"the process running this job stopped {job.attempts - 1} times mid-run",
                True,
                s.job_retry_after_s,
            )
            await self._final_failure(job, error)
            return
        if job.token_sealed is None:
            raise _TokenUnavailable("the job's token is gone")
        try:
            token = self.vault.open(job.token_sealed)
        except ValueError as exc:
            raise _TokenUnavailable(str(exc)) from exc
        key, size = await self._produce(run, token)
        run.finishing = True
        done = await self.queue.complete(job.id, key, size)
        elapsed = time.monotonic() - run.progress.started
        logger.info("job %s completed in %.1f s: %s, %d bytes", job.id, elapsed, key, size)
        if done is not None:
            await self._notify(job, done.status)

    async def _notify(self, job: Job, status: str) -> None:
        """Call every notifyUrl of the job: its submitter's and those of requests that
        joined it (never twice the same URL)."""
        try:
            urls = await self.queue.subscribers(job.id)
        except Exception:
            logger.exception("job %s: could not read its subscribers", job.id)
            urls = []
        if job.request.notify_url and job.request.notify_url not in urls:
            urls.insert(0, job.request.notify_url)
        for url in urls:
            self.notifier.send(url, job.id, status)

    async def _produce(self, run: Run, token: str) -> tuple[str, int]:
        """Fetch group by group, spool the encoded series, store the export (`export.py`)."""
        job = run.job
        request = job.request
        # tz=site becomes the site's zone once, so every group and the metadata agree.
        query = await self.engine.resolve(request.query, token=token)
        progress = run.progress
        writer = ResultWriter(job.id, query, request.representation, self.spool_dir)
        try:
            sizer = ChunkSizer(
                self.settings.job_chunk_samples,
                query.end_ms - query.start_ms,
                await self._cadences(query),
            )
            remaining = list(query.points)
            while remaining:
                group = sizer.take(remaining)
                progress.chunk_started(len(group))
                part = dataclasses.replace(query, points=tuple(group))
                result = await self.engine.query(part, token=token, progress=progress.on_origin)
                await writer.add(result.series)
                sizer.observe(result, len(group))
                progress.chunk_done(len(group))
                del result
            now = int(self.clock())
            info = await writer.finish(
                self.store,
                created_at=now,
                expires_at=now + self.settings.job_result_ttl_s,
                progress=progress.on_upload,
            )
        finally:
            writer.close()
        return info.key, info.size

    async def _cadences(self, query: Query) -> dict[str, int]:
        """Collection intervals (ms) of the query's points that the catalogue knows."""
        wanted = set(query.points)
        records = await self.db.points(query.site)
        return {
            r.name: r.collect_interval * 1000
            for r in records
            if r.name in wanted and r.collect_interval
        }

    # --- how a run ends --------------------------------------------------------------

    async def _stopped(self, run: Run) -> None:
        """The run's task was cancelled: by its owner, or because the service is closing."""
        job = run.job
        latest = await self.queue.get(job.id)
        if latest is not None and latest.status == "completed":
            # Cancelled as it completed: the result is the job's now; keep it.
            logger.info("job %s completed as it was being stopped", job.id)
            return
        if run.stop == "lost":
            # Another run owns the job now (or it finished): its outputs are that run's.
            # Only a job gone altogether leaves outputs nobody else would drop.
            if latest is None:
                await drop_outputs(self.store, job.id)
            logger.info("job %s: this run stopped, the job is no longer its own", job.id)
        elif run.stop == "cancel":
            await drop_outputs(self.store, job.id)
            await self.queue.mark_cancelled(job.id)
            logger.info("job %s cancelled while running", job.id)
        else:
            await self.queue.release(job.id)
            logger.info("job %s handed back to the queue (shutting down)", job.id)

    async def _failed(self, run: Run, exc: Exception) -> None:
        job = run.job
        s = self.settings
        await drop_outputs(self.store, job.id)
        if isinstance(exc, _TokenUnavailable):
            error = JobError("token_unavailable", str(exc), False)
        else:
            error = JobError.from_exception(exc, default_retry_after=s.job_retry_after_s)
        if not error.retryable or job.attempts >= s.job_max_attempts:
            if error.code == "internal_error":
                logger.error("job %s failed", job.id, exc_info=exc)
            await self._final_failure(job, error)
            return
        ceiling = min(s.job_retry_cap_s, s.job_retry_base_s * 2 ** (job.attempts - 1))
        delay = ceiling / 2 + random.random() * ceiling / 2
        logger.warning(
            "job %s attempt %d of %d failed (%s: %s); retrying in %.1f s",
            job.id,
            job.attempts,
            s.job_max_attempts,
            error.code,
            error.message,
            delay,
            exc_info=exc if error.code == "internal_error" else None,
        )
        await self.queue.retry(job.id, error, int((self.clock() + delay) * 1000))

    async def _final_failure(self, job: Job, error: JobError) -> None:
        done = await self.queue.fail(job.id, error)
        logger.error(
            "job %s failed after %d attempt(s): %s: %s",
            job.id,
            job.attempts,
            error.code,
            error.message,
        )
        if done is not None:
            await self._notify(job, done.status)

    # --- progress reporting ------------------------------------------------------------

    async def _report(self, run: Run, done: asyncio.Event) -> None:
        """Write progress while the run lasts (until `done`), and notice a cancellation
        made elsewhere."""
        interval = self.settings.job_progress_interval_s
        # Well inside the visibility timeout, or another instance would take the job over.
        beat_s = min(_HEARTBEAT_S, self.settings.job_visibility_timeout_s / 3)
        written = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), interval)
                return
            percent = int(run.progress.percent)
            if percent == run.reported and time.monotonic() - written < beat_s:
                continue
            try:
                verdict = await self.queue.heartbeat(
                    run.job.id, percent, run.progress.remaining_s()
                )
            except Exception:
                logger.exception("job %s: could not record progress", run.job.id)
                continue
            run.reported = percent
            written = time.monotonic()
            self.on_change()
            task = run.task
            if verdict != "run" and run.stop is None and task is not None and not run.finishing:
                run.stop = verdict
                task.cancel()


class _TokenUnavailable(Exception):
    """The job's token cannot be recovered (erased, or sealed under another key)."""
