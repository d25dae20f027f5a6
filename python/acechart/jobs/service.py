"""`JobService`: accepts jobs, runs them on N workers, and serves their state and results.

A job fetches through the engine, so its samples land in the block cache and
aggregate table like any query's (seed pattern 3), and a resumed job finds what
its interrupted run already fetched. It asks for its points a group at a time,
sized by `job_chunk_samples`, encodes each group's series into a spool and lets
them go before the next group: memory stays bounded whatever the job's size.
The finished document streams into the object store (`export.py`).

Progress is the share of points done plus the current group's share from the
origin client's callback, never decreasing; it is written to the queue at most
every `job_progress_interval_s`, which is also when a cancellation requested
through the queue (by another process) is noticed. A cancellation made here
stops the run at once: its task is cancelled, and the engine stops an origin
fetch nobody waits for any more.

A failed run is retried with exponential backoff while the error may pass
(origin or storage trouble) and attempts remain; then the job fails with the
seed's body. Closing the service hands running jobs back to the queue
(`release`) without counting the interrupted run; a crash leaves them
`processing`, and `start` (through `JobQueue.recover`) resumes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import json
import logging
import math
import random
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acechart.errors import JobNotFound, JobResultUnavailable
from acechart.jobs.export import (
    DocumentCodec,
    ResultWriter,
    convert,
    data_key,
    document_metadata,
    export_metadata,
    metadata_key,
)
from acechart.jobs.model import Job, JobError, JobRequest
from acechart.jobs.queue import JobQueue, SqliteJobQueue
from acechart.jobs.tokens import TokenVault
from acechart.jobs.webhook import Notifier
from acechart.origin.client import Progress
from acechart.query import Query
from acechart.result import Result
from acechart.runtime import Runtime
from acechart.storage.keys import export_prefix
from acechart.storage.objects import ObjectInfo, ObjectNotFound
from acechart.wire import Representation

__all__ = ["JobService"]

logger = logging.getLogger(__name__)

#: Share of the progress bar for fetching and encoding; the rest is storing the result.
_FETCH_SHARE = 95.0
#: A running job's row is touched at least this often, even without progress.
_HEARTBEAT_S = 5.0
#: How long `cancel` waits for a local run to stop before answering.
_CANCEL_WAIT_S = 5.0
#: Cadence assumed for a point of unknown interval until the job has seen one: 30 s, the
#: fastest common one, so a first group can only be smaller than the budget, never larger.
_FIRST_GUESS_CADENCE_MS = 30_000
_SWEEP_BATCH = 100


@dataclass(eq=False)
class _Run:
    """One run of a job in this process: its task and live progress."""

    job: Job
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None
    progress: float = 0.0
    reported: int = -1
    points_done: int = 0
    chunk_points: int = 0
    stop: str | None = None
    """Why the task was cancelled: "cancel" (by the owner) or "shutdown"."""

    def advance(self, value: float) -> None:
        """Raise progress to `value` (never lower it, never claim 100 before the end)."""
        self.progress = max(self.progress, min(value, 99.0))

    def on_origin(self, p: Progress) -> None:
        """The origin client's callback: the current group's share of its range fetched."""
        if p.estimated_total:
            fraction = p.samples / p.estimated_total
        elif p.windows:
            fraction = p.windows_done / p.windows
        else:
            return
        total = len(self.job.request.query.points)
        done = self.points_done + self.chunk_points * min(max(fraction, 0.0), 1.0)
        self.advance(_FETCH_SHARE * done / total)

    def chunk_done(self, points: int) -> None:
        self.points_done += points
        self.chunk_points = 0
        self.advance(_FETCH_SHARE * self.points_done / len(self.job.request.query.points))

    def on_upload(self, fraction: float) -> None:
        self.advance(_FETCH_SHARE + (99.0 - _FETCH_SHARE) * fraction)

    def remaining_s(self) -> int:
        """Seconds left at the pace so far (the first estimate until there is progress)."""
        elapsed = time.monotonic() - self.started
        if self.progress >= 1.0:
            return math.ceil(elapsed * (100.0 - self.progress) / self.progress)
        return max(0, math.ceil((self.job.estimated_duration or 0) - elapsed))


class _ChunkSizer:
    """Splits a job's points into groups of about `budget` samples each.

    A point's sample count comes from its known collection interval, else the
    most samples any point of this job has had so far, else one per 30 s.
    """

    def __init__(self, budget: int, span_ms: int, cadence_ms: dict[str, int]) -> None:
        self.budget = budget
        self.span_ms = max(span_ms, 1)
        self.cadence_ms = cadence_ms
        self.observed = 0

    def estimate(self, point: str) -> int:
        cadence = self.cadence_ms.get(point)
        if cadence:
            return self.span_ms // cadence
        return self.observed or self.span_ms // _FIRST_GUESS_CADENCE_MS

    def take(self, remaining: list[str]) -> list[str]:
        """Pop the next group off `remaining` (at least one point)."""
        group = [remaining.pop(0)]
        size = self.estimate(group[0])
        while remaining and size + self.estimate(remaining[0]) <= self.budget:
            size += self.estimate(remaining[0])
            group.append(remaining.pop(0))
        return group

    def observe(self, result: Result, points: int) -> None:
        query = result.query
        if query.interval == "raw" and query.max_points is None:
            most = max((len(s) for s in result.series), default=0)
        else:
            most = result.provenance.samples_fetched // max(points, 1)
        self.observed = max(self.observed, most)


class JobService:
    """Background jobs over one `Runtime`: submit, run, report, cancel, expire.

    `token_hmac` is the one fingerprint of tokens that job ownership uses; it
    is stable across restarts (see `tokens.py`). Open with `JobService.open`,
    close with `close` (before closing the runtime).
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        queue: JobQueue | None = None,
        vault: TokenVault | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.store = runtime.store
        self.settings = s
        self.clock = clock
        self.queue: JobQueue = queue or SqliteJobQueue(
            runtime.db, result_ttl_s=s.job_result_ttl_s, poll_s=s.job_poll_interval_s, clock=clock
        )
        self.vault = vault or TokenVault.from_settings(s.job_token_key, s.data_dir)
        self.notifier = Notifier(
            secret=s.job_webhook_secret,
            attempts=s.job_webhook_attempts,
            timeout_s=s.job_webhook_timeout_s,
        )
        self.spool_dir = Path(s.data_dir) / "tmp" / "jobs"
        self._runs: dict[str, _Run] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._change = asyncio.Event()
        self._closing = False

    @classmethod
    async def open(cls, runtime: Runtime, *, start: bool = True, **kwargs: Any) -> JobService:
        """A service over `runtime`; with `start`, orphaned jobs are resumed and workers run."""
        service = cls(runtime, **kwargs)
        if start:
            await service.start()
        return service

    async def start(self) -> None:
        """Resume jobs a previous process left running, then start workers and the sweeper."""
        await self.queue.recover()
        for i in range(self.settings.job_workers):
            self._workers.append(asyncio.create_task(self._work(f"w{i}"), name=f"job-worker-{i}"))
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="job-sweeper")

    async def close(self) -> None:
        """Stop workers, hand running jobs back to the queue, finish notifications."""
        self._closing = True
        tasks = [*self._workers, *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        runs = [r for r in self._runs.values() if r.task is not None]
        for run in runs:
            run.stop = run.stop or "shutdown"
            assert run.task is not None
            run.task.cancel()
        await asyncio.gather(*(r.task for r in runs if r.task), return_exceptions=True)
        await self.queue.close()
        await self.notifier.close()
        self._notify_change()

    def token_hmac(self, token: str) -> str:
        """The stored fingerprint of a token (ownership of jobs)."""
        return self.vault.fingerprint(token)

    # --- the API's operations ------------------------------------------------------

    async def submit(
        self,
        query: Query,
        fmt: str,
        token: str,
        priority: str = "normal",
        notify_url: str | None = None,
        *,
        layout: str = "rows",
        job_type: str = "large_query",
        estimated_samples: int | None = None,
    ) -> Job:
        """Queue `query` as a job (or find the identical live one); `job.accepted_body()` is
        the seed's 202 body. `BadRequest` names a bad parameter."""
        s = self.settings
        request = JobRequest.build(
            query,
            fmt,
            layout=layout,
            priority=priority,
            notify_url=notify_url,
            job_type=job_type,
            estimated_samples=estimated_samples,
            max_points=s.max_points_per_query,
            max_range_days=s.max_range_days,
        )
        job, _ = await self.submit_request(request, token)
        return job

    async def submit_request(self, request: JobRequest, token: str) -> tuple[Job, bool]:
        """Queue a validated request; returns (job, whether it is new rather than a duplicate)."""
        owner = self.token_hmac(token)
        job = Job(
            id=str(uuid.uuid4()),
            request=request,
            status="pending",
            token_hmac=owner,
            created_at=int(self.clock()),
            estimated_duration=request.estimated_duration_s,
            token_sealed=self.vault.seal(token),
        )
        stored, created = await self.queue.enqueue(job, request.dedup_key(owner))
        if created:
            q = request.query
            logger.info(
                "job %s queued: %s, %d points, %s..%s, %s as %s",
                stored.id,
                q.site,
                len(q.points),
                q.start_ms,
                q.end_ms,
                q.interval,
                request.format,
            )
        else:
            logger.info("identical request joined job %s (%s)", stored.id, stored.status)
        self._notify_change()
        return stored, created

    async def get(self, job_id: str, token: str) -> Job:
        """The caller's job; `JobNotFound` when there is none or it belongs to another token."""
        return await self._owned(job_id, self.token_hmac(token))

    async def cancel(self, job_id: str, token: str) -> Job:
        """Cancel a queued or running job and return it as it stands afterwards.

        A queued job is cancelled at once; a job running here stops within
        moments; one running in another process stops at its next progress
        write. A finished job is returned unchanged.
        """
        job = await self.get(job_id, token)
        if job.done:
            return job
        changed = await self.queue.cancel(job_id)
        run = self._runs.get(job_id)
        if run is not None and run.task is not None and run.stop is None:
            run.stop = "cancel"
            run.task.cancel()
            await asyncio.wait([run.task], timeout=_CANCEL_WAIT_S)
        self._notify_change()
        logger.info("job %s: cancellation requested", job_id)
        latest = await self.queue.get(job_id)
        return latest or changed or job

    async def delete(self, job_id: str, token: str) -> None:
        """Delete a finished job and its result now, instead of at expiry."""
        job = await self.get(job_id, token)
        if not job.done:
            raise ValueError("only a finished job can be deleted; cancel it first")
        await self._drop_outputs(job_id)
        await self.queue.delete([job_id])
        self._notify_change()

    async def result(self, job_id: str, token: str) -> tuple[Job, ObjectInfo]:
        """The caller's finished job and its stored result object.

        `JobResultUnavailable` while the job has no result; `JobNotFound` once
        the result has expired.
        """
        job = await self.get(job_id, token)
        if job.status != "completed" or job.result_key is None:
            raise JobResultUnavailable(
                f"job {job.id} is {job.public_status}: no result to download",
                jobId=job.id,
                status=job.public_status,
                progress=job.progress,
            )
        info = await self.store.head(job.result_key)
        if info is None:
            raise JobNotFound(f"the result of job {job.id} has expired", jobId=job.id)
        return job, info

    async def converted(self, job: Job, wanted: Representation) -> AsyncGenerator[bytes, None]:
        """A finished job's result in another representation, one series at a time."""
        assert job.result_key is not None
        try:
            summary = json.loads(await self.store.get(metadata_key(job.id)))
        except ObjectNotFound:
            raise JobNotFound(f"the result of job {job.id} has expired", jobId=job.id) from None
        stored = (job.request.format, job.request.layout)
        parts = convert(
            self.store,
            job.request.query,
            stored,
            (wanted.format, wanted.layout),
            job.result_key,
            summary["series"],
        )
        async with contextlib.aclosing(parts) as chunks:
            async for chunk in chunks:
                yield chunk

    async def watch(
        self, job_id: str, token: str, *, keepalive_s: float | None = None
    ) -> AsyncGenerator[Job | None, None]:
        """The job each time its status or progress changes, ending with its final state.

        With `keepalive_s`, None is yielded after that long without a change, so
        a stream can show it is alive. Changes in this process are seen at once,
        others' at the next poll.
        """
        owner = self.token_hmac(token)
        last: tuple[Any, ...] | None = None
        quiet_since = time.monotonic()
        while True:
            changed = self._change
            job = await self._owned(job_id, owner)
            state = (job.status, job.progress, job.attempts, job.cancel_requested)
            if state != last:
                last = state
                quiet_since = time.monotonic()
                yield job
            elif keepalive_s is not None and time.monotonic() - quiet_since >= keepalive_s:
                quiet_since = time.monotonic()
                yield None
            if job.done or self._closing:
                return
            wait = self.settings.job_poll_interval_s
            if keepalive_s is not None:
                wait = min(wait, max(0.0, quiet_since + keepalive_s - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), wait)

    async def sweep_once(self) -> int:
        """Delete finished jobs past their expiry and their results; returns how many."""
        removed = 0
        while True:
            expired = await self.queue.expired(self.clock(), _SWEEP_BATCH)
            if not expired:
                return removed
            for job in expired:
                await self._drop_outputs(job.id)
            removed += await self.queue.delete([job.id for job in expired])
            logger.info("swept %d expired job(s)", len(expired))
            if len(expired) < _SWEEP_BATCH:
                return removed

    # --- workers -------------------------------------------------------------------

    async def _work(self, name: str) -> None:
        poll = self.settings.job_poll_interval_s
        while not self._closing:
            try:
                job = await self.queue.claim(name, poll)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("worker %s could not claim a job; retrying", name)
                await asyncio.sleep(poll)
                continue
            if job is None:
                continue
            run = _Run(job)
            run.task = asyncio.create_task(self._execute(run), name=f"job-{job.id}")
            self._runs[job.id] = run
            self._notify_change()
            # wait() rather than await: cancelling this worker must not cancel the run.
            await asyncio.wait([run.task])

    async def _execute(self, run: _Run) -> None:
        job = run.job
        reporter = asyncio.create_task(self._report(run), name=f"job-{job.id}-progress")
        try:
            try:
                await self._attempt(run)
            except asyncio.CancelledError:
                await self._stopped(run)
            except Exception as exc:
                await self._failed(run, exc)
        except Exception:
            # The row still says processing, so the next start resumes the job.
            logger.exception("job %s: could not record how its run ended", job.id)
        finally:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
            self._runs.pop(job.id, None)
            self._notify_change()

    async def _attempt(self, run: _Run) -> None:
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
        done = await self.queue.complete(job.id, key, size)
        elapsed = time.monotonic() - run.started
        logger.info("job %s completed in %.1f s: %s, %d bytes", job.id, elapsed, key, size)
        if done is not None and job.request.notify_url:
            self.notifier.send(job.request.notify_url, job.id, done.status)

    async def _produce(self, run: _Run, token: str) -> tuple[str, int]:
        """Fetch group by group, spool the encoded series, store data and metadata.json."""
        job = run.job
        request = job.request
        query = request.query
        store = self.runtime.store
        writer = ResultWriter(DocumentCodec(request.format, request.layout), self.spool_dir)
        try:
            sizer = _ChunkSizer(
                self.settings.job_chunk_samples,
                query.end_ms - query.start_ms,
                await self._cadences(query),
            )
            remaining = list(query.points)
            while remaining:
                group = sizer.take(remaining)
                run.chunk_points = len(group)
                part = dataclasses.replace(query, points=tuple(group))
                result = await self.runtime.engine.query(part, token=token, progress=run.on_origin)
                await writer.add(result.series)
                sizer.observe(result, len(group))
                run.chunk_done(len(group))
                del result
            key = data_key(job.id, request.format)
            meta = document_metadata(query, writer.total_samples)
            info, entries = await writer.store(store, key, meta, progress=run.on_upload)
        finally:
            writer.close()
        now = int(self.clock())
        summary = export_metadata(
            job_id=job.id,
            key=key,
            query=query,
            fmt=request.format,
            layout=request.layout,
            entries=entries,
            size=info.size,
            created_at=now,
            expires_at=now + self.settings.job_result_ttl_s,
        )
        await store.put(
            metadata_key(job.id), json.dumps(summary).encode(), None, "application/json"
        )
        return key, info.size

    async def _cadences(self, query: Query) -> dict[str, int]:
        """Collection intervals (ms) of the query's points that the catalogue knows."""
        wanted = set(query.points)
        records = await self.runtime.db.points(query.site)
        return {
            r.name: r.collect_interval * 1000
            for r in records
            if r.name in wanted and r.collect_interval
        }

    async def _stopped(self, run: _Run) -> None:
        """The run's task was cancelled: by its owner, or because the service is closing."""
        job = run.job
        if run.stop == "cancel":
            await self._drop_outputs(job.id)
            await self.queue.mark_cancelled(job.id)
            logger.info("job %s cancelled while running", job.id)
        else:
            await self.queue.release(job.id)
            logger.info("job %s handed back to the queue (shutting down)", job.id)

    async def _failed(self, run: _Run, exc: Exception) -> None:
        job = run.job
        s = self.settings
        await self._drop_outputs(job.id)
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
        if done is not None and job.request.notify_url:
            self.notifier.send(job.request.notify_url, job.id, done.status)

    async def _report(self, run: _Run) -> None:
        """Write progress while the run lasts, and notice a cancellation made elsewhere."""
        interval = self.settings.job_progress_interval_s
        written = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            percent = int(run.progress)
            if percent == run.reported and time.monotonic() - written < _HEARTBEAT_S:
                continue
            try:
                cancel = await self.queue.heartbeat(run.job.id, percent, run.remaining_s())
            except Exception:
                logger.exception("job %s: could not record progress", run.job.id)
                continue
            run.reported = percent
            written = time.monotonic()
            self._notify_change()
            if cancel and run.stop is None and run.task is not None:
                run.stop = "cancel"
                run.task.cancel()

    # --- helpers -------------------------------------------------------------------

    async def _owned(self, job_id: str, owner: str) -> Job:
        job = await self.queue.get(job_id)
        if job is None or not hmac.compare_digest(job.token_hmac, owner):
            raise JobNotFound(f"no job {job_id}", jobId=job_id)
        return job

    async def _drop_outputs(self, job_id: str) -> None:
        """Delete whatever a job stored (a finished result, or a failed run's remains)."""
        store = self.runtime.store
        keys = [info.key async for info in store.list(export_prefix(job_id))]
        if keys:
            await store.delete_many(keys)

    def _notify_change(self) -> None:
        """Wake every `watch` (a fresh event per change, so none misses one)."""
        self._change.set()
        self._change = asyncio.Event()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval_s)
            try:
                await self.sweep_once()
            except Exception:
                logger.exception("job sweep failed; retrying at the next interval")


class _TokenUnavailable(Exception):
    """The job's token cannot be recovered (erased, or sealed under another key)."""
