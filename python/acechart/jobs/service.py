"""`JobService`: the public face of background jobs: submit, look up, download, cancel, expire.

Jobs are for queries too large to answer while the caller waits (seed section
5): a submission is stored in the `JobQueue` and answered at once; `Workers`
(`worker.py`) run it in the background through the engine; the result, stored
in the object store beside a series index (`export.py`), is served from there
in its own representation or converted into another one series at a time.

The service takes exactly what it uses (the engine, the object store, the
database, the settings) rather than a whole runtime, so it sits above the
engine and below the server, and a notebook or a bench can build one over any
engine. Ownership is a token fingerprint (`tokens.py`): a job is visible only
to the token that created it, and to any other exactly as absent as an
unknown id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from acechart.engine import Engine
from acechart.errors import BadRequest, JobNotFound, JobResultUnavailable
from acechart.jobs.export import Conversion, Layout, drop_outputs
from acechart.jobs.model import Job, JobRequest
from acechart.jobs.queue import JobQueue, SqliteJobQueue
from acechart.jobs.redis_queue import RedisJobQueue
from acechart.jobs.tokens import WEBHOOK_KEY_FILE, TokenVault, stored_key
from acechart.jobs.webhook import Notifier, Resolve, WebhookPolicy, WebhookRefused
from acechart.jobs.worker import Workers
from acechart.query import Query
from acechart.settings import Settings
from acechart.storage.database import Database
from acechart.storage.objects import ObjectInfo, ObjectNotFound, ObjectStore
from acechart.storage.redis_client import SharedRedis
from acechart.wire import Representation

__all__ = ["JobService"]

logger = logging.getLogger(__name__)

#: How long `cancel` waits for a local run to stop before answering.
_CANCEL_WAIT_S = 5.0
_SWEEP_BATCH = 100


class JobService:
    """Background jobs over one engine, object store and database.

    `queue` defaults to the `SqliteJobQueue` in `db`, `vault` to the one
    `settings` describe, `clock` (unix seconds) to the wall clock, `resolve`
    (how notifyUrl hosts are looked up) to the system's resolver. Open with
    `JobService.open`, close with `close` (before closing what it was given,
    which stays the caller's).
    """

    def __init__(
        self,
        engine: Engine,
        store: ObjectStore,
        db: Database,
        settings: Settings,
        *,
        queue: JobQueue | None = None,
        redis: SharedRedis | None = None,
        vault: TokenVault | None = None,
        clock: Callable[[], float] = time.time,
        resolve: Resolve | None = None,
    ) -> None:
        s = settings
        self.engine = engine
        self.store = store
        self.db = db
        self.settings = s
        self.clock = clock
        if queue is not None:
            self.queue: JobQueue = queue
        elif redis is not None:
            # Shared: rows in the shared database, delivery through Redis Streams.
            self.queue = RedisJobQueue(
                db,
                redis,
                consumer=s.instance_id,
                result_ttl_s=s.job_result_ttl_s,
                poll_s=s.job_poll_interval_s,
                idle_poll_s=s.job_idle_poll_max_s,
                visibility_s=s.job_visibility_timeout_s,
                clock=clock,
            )
        else:
            self.queue = SqliteJobQueue(
                db,
                result_ttl_s=s.job_result_ttl_s,
                poll_s=s.job_poll_interval_s,
                idle_poll_s=s.job_idle_poll_max_s,
                clock=clock,
            )
        self.vault = vault or TokenVault.from_settings(s.job_token_key, s.data_dir)
        self.notifier = Notifier(
            # Signed always: a configured key, else one generated once beside the database.
            secret=s.job_webhook_secret
            or stored_key(Path(s.data_dir) / WEBHOOK_KEY_FILE, "webhook signing key"),
            attempts=s.job_webhook_attempts,
            timeout_s=s.job_webhook_timeout_s,
            policy=WebhookPolicy(
                allow=s.job_webhook_allow,
                allow_loopback_for_tests=s.job_webhook_allow_loopback_for_tests,
            ),
            resolve=resolve,
        )
        self.workers = Workers(
            engine=engine,
            store=store,
            db=db,
            settings=s,
            queue=self.queue,
            vault=self.vault,
            notifier=self.notifier,
            clock=clock,
            on_change=self._notify_change,
        )
        self._sweeper: asyncio.Task[None] | None = None
        self._change = asyncio.Event()
        self._closing = False
        # One measuring pass per conversion at a time, whoever asks (a download
        # manager opens several ranged connections at once): keyed by job and ETag.
        self._measuring: dict[tuple[str, str], asyncio.Task[Layout]] = {}

    @classmethod
    async def open(
        cls,
        engine: Engine,
        store: ObjectStore,
        db: Database,
        settings: Settings,
        *,
        start: bool = True,
        **kwargs: Any,
    ) -> JobService:
        """A service over these; with `start`, orphaned jobs are resumed and workers run."""
        service = cls(engine, store, db, settings, **kwargs)
        if start:
            await service.start()
        return service

    async def start(self) -> None:
        """Resume jobs a previous process left running, then start workers and the sweeper."""
        await self.workers.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="job-sweeper")

    async def close(self) -> None:
        """Stop workers, hand running jobs back to the queue, finish notifications."""
        self._closing = True
        measuring = list(self._measuring.values())
        for task in measuring:
            task.cancel()
        await asyncio.gather(*measuring, return_exceptions=True)
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self.workers.close()  # closes the queue, once its workers stop claiming
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
        """Queue a validated request; returns (job, whether it is new rather than a duplicate).

        A duplicate's notifyUrl is added to the live job's subscribers: each one is
        notified when it ends. A notifyUrl the webhook policy refuses outright (its
        form, an address literal, a host off the allow-list) is a `BadRequest`; a
        name is resolved and judged when the call is made.
        """
        if request.notify_url is not None:
            try:
                self.notifier.policy.check_url(request.notify_url)
            except WebhookRefused as exc:
                raise BadRequest(
                    f"metadata.notifyUrl is refused: {exc}", parameter="metadata.notifyUrl"
                ) from None
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
            logger.info(
                "identical request joined job %s (%s)%s",
                stored.id,
                stored.status,
                "; its notifyUrl subscribed" if request.notify_url else "",
            )
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
        await self.workers.stop(job_id, _CANCEL_WAIT_S)
        self._notify_change()
        logger.info("job %s: cancellation requested", job_id)
        latest = await self.queue.get(job_id)
        return latest or changed or job

    async def delete(self, job_id: str, token: str) -> None:
        """Delete a finished job and its result now, instead of at expiry."""
        job = await self.get(job_id, token)
        if not job.done:
            raise ValueError("only a finished job can be deleted; cancel it first")
        await drop_outputs(self.store, job_id)
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
            raise self._expired(job)
        return job, info

    async def conversion(self, job: Job, wanted: Representation, stored: ObjectInfo) -> Conversion:
        """A finished job's result in another representation (see `export.Conversion`);
        `stored` is its stored result object, whose ETag the conversion's derives from.

        `JobNotFound` once the result has expired.
        """
        try:
            return await Conversion.open(self.store, job.id, job.request.query, wanted, stored.etag)
        except ObjectNotFound:
            raise self._expired(job) from None

    async def measure(self, job: Job, conversion: Conversion, count: Callable[[int], None]) -> int:
        """The converted document's length, encoding it once if it never was.

        Concurrent requests for one conversion share a single pass, which runs on
        if the request that started it goes away (the others still wait for it).
        The pass encodes on a copy of the conversion and calls `count` with the
        series it encoded when it ends, so the count is whole whoever is still
        waiting; `conversion.encoded` stays the requester's own.
        """
        if conversion.layout is None:
            key = (job.id, conversion.etag)
            task = self._measuring.get(key)
            if task is None:
                task = asyncio.ensure_future(self._measure_pass(key, replace(conversion), count))
                self._measuring[key] = task
                task.add_done_callback(lambda _: self._measuring.pop(key, None))
            try:
                conversion.layout = await asyncio.shield(task)
            except ObjectNotFound:
                raise self._expired(job) from None
        return conversion.layout.size

    async def _measure_pass(
        self, key: tuple[str, str], conversion: Conversion, count: Callable[[int], None]
    ) -> Layout:
        """One measuring pass. Its failure reaches whoever waits (`shield` marks it seen
        for a waiter that left) and the log, for a pass nobody waits for any more."""
        try:
            return await conversion.measured()
        except ObjectNotFound:
            raise
        except Exception as exc:
            logger.warning("job %s: measuring its conversion failed: %s", key[0], exc)
            raise
        finally:
            count(conversion.encoded)

    async def converted(
        self, job: Job, conversion: Conversion, byte_range: tuple[int, int] | None = None
    ) -> AsyncGenerator[bytes, None]:
        """The converted document, whole or bytes [start, end) of it, a series at a time.

        `JobNotFound` once the result has expired; `CorruptObject` (a
        `StorageError`) when what was stored does not read back. Both come
        before the first chunk when they can.
        """
        parts = conversion.whole() if byte_range is None else conversion.span(*byte_range)
        try:
            async with contextlib.aclosing(parts) as chunks:
                async for chunk in chunks:
                    yield chunk
        except ObjectNotFound:
            raise self._expired(job) from None

    @staticmethod
    def _expired(job: Job) -> JobNotFound:
        return JobNotFound(f"the result of job {job.id} has expired", jobId=job.id)

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
                await drop_outputs(self.store, job.id)
            removed += await self.queue.delete([job.id for job in expired])
            logger.info("swept %d expired job(s)", len(expired))
            if len(expired) < _SWEEP_BATCH:
                return removed

    # --- helpers -------------------------------------------------------------------

    async def _owned(self, job_id: str, owner: str) -> Job:
        job = await self.queue.get(job_id)
        if job is None or not hmac.compare_digest(job.token_hmac, owner):
            raise JobNotFound(f"no job {job_id}", jobId=job_id)
        return job

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
