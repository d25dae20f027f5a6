"""`JobQueue`: durable job state and delivery to workers, and its SQLite implementation.

The runner (`JobService`) and the HTTP routes see only the `JobQueue` protocol.
Its operations are the ones a Redis Streams backend implements naturally:
`enqueue` = SET NX of the dedup key + HSET of the job + XADD; `claim` =
XREADGROUP BLOCK; `heartbeat` = HSET returning the cancel flag; `complete` /
`fail` = HSET + XACK; `retry` = a delayed re-add; `recover` = XAUTOCLAIM of
entries whose consumer died; `expired` = a sorted set by expiry. So a second
backend is a new class, not a change to any caller.

`SqliteJobQueue` keeps jobs as rows of the seed's `queue_jobs` table (see
migrations 2 and 4 for the columns) and their notifyUrls in `job_subscribers`
(migration 7). It is the single-instance backend: on
start, every row left `processing` was orphaned by this instance's previous
life (a crash or a kill), and `recover` puts it back to `pending`. Workers in
this process are woken at once by whatever may give them work (an enqueue, a
retry, a release, a recovery); a retry waiting for its due time is claimed
when it falls due. Changes made by other processes are seen at the next poll,
which is `poll_s` after the last job or change and backs off, doubling, to
`idle_poll_s` while the queue stays empty: an idle service barely wakes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args, runtime_checkable

from acechart.jobs.model import PRIORITIES, Job, JobError, JobRequest, JobStatus
from acechart.storage.database import Database, Row

__all__ = [
    "STATUSES",
    "Heartbeat",
    "JobQueue",
    "QueueStats",
    "SqliteJobQueue",
    "Wakeup",
    "heartbeat_of",
]


Heartbeat = Literal["run", "cancel", "lost"]
"""What a heartbeat tells a run: go on; stop, its owner cancelled the job; or stop
quietly, the job is not this run's any more (finished, deleted, or taken over by
another run, perhaps in this very process): nothing of the job is this run's to
change."""


def heartbeat_of(row: Row | None) -> Heartbeat:
    """The verdict of a heartbeat's `RETURNING cancel_requested` row (None: no row matched)."""
    if row is None:
        return "lost"
    return "cancel" if row[0] else "run"


logger = logging.getLogger(__name__)


#: Every status a job can have, in lifecycle order.
STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)


@dataclass(frozen=True)
class QueueStats:
    """What monitoring needs of a queue, whatever its backend (`/metrics` reads it).

    `counts` has every status in `STATUSES`, zero included. Times are unix
    seconds; None when there is nothing to measure.
    """

    counts: Mapping[JobStatus, int]
    oldest_pending_created_at: int | None
    """When the longest-waiting `pending` job was submitted."""
    mean_completed_duration_s: float | None
    """Mean run time (started to completed) of the `completed` jobs the queue still holds."""

    @property
    def pending(self) -> int:
        """The queue's depth: jobs waiting for a worker."""
        return self.counts.get("pending", 0)

    def waited_s(self, now: float) -> float:
        """How long the oldest pending job has waited at `now` (0 when none waits)."""
        if self.oldest_pending_created_at is None:
            return 0.0
        return max(0.0, now - self.oldest_pending_created_at)


class Wakeup:
    """Changes that may give a waiting worker work, counted, so that none is missed.

    A waiter takes a `ticket` before it looks at the queue and then waits with it:
    a change made while it was looking (by another coroutine of this process) ends
    the wait at once, where a plain `asyncio.Event` cleared by another waiter would
    let it sleep through that change until the next poll.
    """

    def __init__(self) -> None:
        self._changes = 0
        self._event = asyncio.Event()

    def ticket(self) -> int:
        """The count of changes so far; pass it to `wait`."""
        return self._changes

    def set(self) -> None:
        """Something changed: wake every waiter (and any that waits with an older ticket)."""
        self._changes += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, ticket: int, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a change after `ticket`; whether one came."""
        if self._changes != ticket:
            return True
        event = self._event
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            return False
        return True


@runtime_checkable
class JobQueue(Protocol):
    """Durable jobs: stored once, run by one worker at a time, never lost.

    Times are unix seconds (`not_before_ms`: ms). Every state change returns the
    job as it is afterwards, or None when the job is gone or in another state.
    """

    async def recover(self) -> int:
        """Put jobs whose worker died back to `pending`; returns how many."""
        ...

    async def enqueue(self, job: Job, dedup_key: str) -> tuple[Job, bool]:
        """Store a new `pending` job, unless a job with `dedup_key` is pending or processing.

        Either way the request's notifyUrl (if any) becomes a subscriber of the job
        returned. Returns (the stored job or the existing one, whether it was created).
        """
        ...

    async def subscribers(self, job_id: str) -> list[str]:
        """Every notifyUrl to call when the job ends, in the order they subscribed."""
        ...

    async def get(self, job_id: str) -> Job | None:
        """The job, or None if there is no such job (or it was deleted)."""
        ...

    async def claim(self, worker: str, timeout: float) -> Job | None:
        """The next due `pending` job, now `processing` with `attempts` + 1.

        Highest priority first, then oldest. Waits up to `timeout` seconds for one
        (`math.inf`: until one comes or the queue closes); None when none came.
        """
        ...

    async def heartbeat(
        self, job_id: str, progress: int, estimated_remaining: int | None
    ) -> Heartbeat:
        """Record a running job's progress; returns what the run should do (`Heartbeat`)."""
        ...

    async def complete(self, job_id: str, result_key: str, result_size: int) -> Job | None:
        """`processing` -> `completed` with its result; the sealed token is erased."""
        ...

    async def retry(self, job_id: str, error: JobError, not_before_ms: int) -> Job | None:
        """`processing` -> `pending`, to run again from `not_before_ms` on."""
        ...

    async def fail(self, job_id: str, error: JobError) -> Job | None:
        """`processing` -> `failed` for good; the sealed token is erased."""
        ...

    async def cancel(self, job_id: str) -> Job | None:
        """Cancel: a `pending` job becomes `cancelled` at once; a `processing` one is flagged
        and its worker ends it (`mark_cancelled`). A finished job is returned unchanged."""
        ...

    async def mark_cancelled(self, job_id: str) -> Job | None:
        """A worker stopped a flagged job: `processing` -> `cancelled`."""
        ...

    async def release(self, job_id: str) -> Job | None:
        """A worker shutting down gives its job back: `processing` -> `pending`, and the
        interrupted run does not count as an attempt."""
        ...

    async def expired(self, now: float, limit: int = 100) -> list[Job]:
        """Finished jobs whose `expires_at` has passed, soonest first."""
        ...

    async def delete(self, job_ids: Sequence[str]) -> int:
        """Remove jobs for good; returns how many existed."""
        ...

    async def stats(self) -> QueueStats:
        """Counts per status, the oldest pending job's age and the mean run time."""
        ...

    async def close(self) -> None:
        """Stop waking waiters; the storage itself belongs to the caller."""
        ...


#: Columns read into a `Job`, in `_job_from_row` order.
_COLUMNS = (
    "job_id, status, token_hmac, created_at, progress, attempts, started_at, completed_at,"
    " updated_at, estimated_duration, estimated_remaining, result_key, result_size,"
    " error_code, error_message, retryable, retry_after_s, cancel_requested, expires_at,"
    " not_before_ms, token_sealed, request_json"
)


_SUBSCRIBE = "INSERT OR IGNORE INTO job_subscribers (job_id, notify_url) VALUES (?, ?)"


class SqliteJobQueue:
    """Jobs as rows of `queue_jobs` in the instance's SQLite database.

    `result_ttl_s` sets `expires_at` when a job finishes. A waiting `claim`
    looks at the table `poll_s` after its last look, then after twice as long
    each time it finds nothing, up to `idle_poll_s` (never less than `poll_s`);
    a change in this process (`wakeup`) brings it back to `poll_s` at once.
    """

    def __init__(
        self,
        db: Database,
        *,
        result_ttl_s: int,
        poll_s: float,
        idle_poll_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.result_ttl_s = result_ttl_s
        self.poll_s = poll_s
        self.idle_poll_s = max(poll_s, poll_s if idle_poll_s is None else idle_poll_s)
        self.clock = clock
        self.wakeup = Wakeup()
        self._closed = False

    # --- the protocol ---------------------------------------------------------------

    async def recover(self) -> int:
        now = self._now()
        async with self.db.transaction() as tx:
            # A cancellation asked for before the crash still stands.
            await tx.execute(
                "UPDATE queue_jobs SET status = 'cancelled', completed_at = ?, updated_at = ?,"
                " expires_at = ?, token_sealed = NULL"
                " WHERE status = 'processing' AND cancel_requested = 1",
                (now, now, now + self.result_ttl_s),
            )
            changed = await tx.execute(
                "UPDATE queue_jobs SET status = 'pending', updated_at = ?, not_before_ms = 0"
                " WHERE status = 'processing'",
                (now,),
            )
        if changed:
            logger.warning("recovered %d job(s) left running by a previous process", changed)
            self.wakeup.set()
        return changed

    async def enqueue(self, job: Job, dedup_key: str) -> tuple[Job, bool]:
        request = job.request
        q = request.query
        message = request.to_message(job.id, job.token_hmac, job.created_at)
        async with self.db.transaction() as tx:
            existing = await tx.fetchone(
                f"SELECT {_COLUMNS} FROM queue_jobs WHERE dedup_key = ?"
                " AND status IN ('pending', 'processing')",
                (dedup_key,),
            )
            if existing is not None:
                joined = _job_from_row(existing)
                if request.notify_url is not None:
                    await tx.execute(_SUBSCRIBE, (joined.id, request.notify_url))
                return joined, False
            row = await tx.fetchone(
                "INSERT INTO queue_jobs (job_id, user_id, site_id, point_names, start_time,"
                " end_time, job_type, status, progress, created_at, updated_at,"
                " estimated_duration, attempts, token_hmac, request_json, result_format,"
                " cancel_requested, priority, not_before_ms, dedup_key, token_sealed)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, 0, ?, ?, ?, 0, ?, 0, ?, ?)"
                f" RETURNING {_COLUMNS}",
                (
                    job.id,
                    job.token_hmac,
                    q.site,
                    json.dumps(list(q.points)),
                    q.start_ms,
                    q.end_ms,
                    request.job_type,
                    job.created_at,
                    job.created_at,
                    job.estimated_duration,
                    job.token_hmac,
                    json.dumps(message),
                    request.format,
                    PRIORITIES[request.priority],
                    dedup_key,
                    job.token_sealed,
                ),
            )
            if request.notify_url is not None:
                await tx.execute(_SUBSCRIBE, (job.id, request.notify_url))
        assert row is not None
        self.wakeup.set()
        return _job_from_row(row), True

    async def subscribers(self, job_id: str) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT notify_url FROM job_subscribers WHERE job_id = ? ORDER BY id", (job_id,)
        )
        return [str(row[0]) for row in rows]

    async def get(self, job_id: str) -> Job | None:
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM queue_jobs WHERE job_id = ?", (job_id,)
        )
        return None if row is None else _job_from_row(row)

    async def claim(self, worker: str, timeout: float) -> Job | None:
        deadline = time.monotonic() + timeout
        pause = self.poll_s
        while not self._closed:
            ticket = self.wakeup.ticket()
            # Shielded: a claim committed as the caller is cancelled must not be lost.
            attempt = asyncio.ensure_future(self._claim_once())
            try:
                job, next_due_ms = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                job, _ = await attempt
                if job is not None:
                    await self.release(job.id)
                raise
            if job is not None:
                logger.info("worker %s claimed job %s (attempt %d)", worker, job.id, job.attempts)
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            wait = min(left, pause)
            if next_due_ms is not None:
                # A retry is claimed when it falls due, however long the idle pause.
                wait = min(wait, max(0.0, next_due_ms / 1000 - self.clock()))
            pause = self.next_pause(pause, await self.wakeup.wait(ticket, wait))
        return None

    def next_pause(self, pause: float, woken: bool) -> float:
        """The wait before the next look: the poll interval after a change in this
        process, else twice the last one, up to the idle ceiling."""
        return self.poll_s if woken else min(pause * 2, self.idle_poll_s)

    async def heartbeat(
        self, job_id: str, progress: int, estimated_remaining: int | None
    ) -> Heartbeat:
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "UPDATE queue_jobs SET progress = MAX(progress, ?), estimated_remaining = ?,"
                " updated_at = ? WHERE job_id = ? AND status = 'processing'"
                " RETURNING cancel_requested",
                (progress, estimated_remaining, self._now(), job_id),
            )
        return heartbeat_of(row)

    async def complete(self, job_id: str, result_key: str, result_size: int) -> Job | None:
        now = self._now()
        return await self._update(
            "status = 'completed', progress = 100, result_key = ?, result_size = ?,"
            " completed_at = ?, updated_at = ?, estimated_remaining = 0, expires_at = ?,"
            " token_sealed = NULL, error_code = NULL, error_message = NULL, retryable = NULL,"
            " retry_after_s = NULL",
            (result_key, result_size, now, now, now + self.result_ttl_s),
            job_id,
            "processing",
        )

    async def retry(self, job_id: str, error: JobError, not_before_ms: int) -> Job | None:
        job = await self._update(
            "status = 'pending', not_before_ms = ?, updated_at = ?, estimated_remaining = NULL,"
            " error_code = ?, error_message = ?, retryable = ?, retry_after_s = ?",
            (
                not_before_ms,
                self._now(),
                error.code,
                error.message,
                int(error.retryable),
                error.retry_after,
            ),
            job_id,
            "processing",
        )
        self.wakeup.set()
        return job

    async def fail(self, job_id: str, error: JobError) -> Job | None:
        now = self._now()
        return await self._update(
            "status = 'failed', completed_at = ?, updated_at = ?, expires_at = ?,"
            " token_sealed = NULL, estimated_remaining = NULL, error_code = ?,"
            " error_message = ?, retryable = ?, retry_after_s = ?",
            (
                now,
                now,
                now + self.result_ttl_s,
                error.code,
                error.message,
                int(error.retryable),
                error.retry_after,
            ),
            job_id,
            "processing",
        )

    async def cancel(self, job_id: str) -> Job | None:
        now = self._now()
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE queue_jobs SET status = 'cancelled', completed_at = ?, updated_at = ?,"
                " expires_at = ?, token_sealed = NULL, cancel_requested = 1"
                " WHERE job_id = ? AND status = 'pending'",
                (now, now, now + self.result_ttl_s, job_id),
            )
            await tx.execute(
                "UPDATE queue_jobs SET cancel_requested = 1, updated_at = ?"
                " WHERE job_id = ? AND status = 'processing'",
                (now, job_id),
            )
            row = await tx.fetchone(
                f"SELECT {_COLUMNS} FROM queue_jobs WHERE job_id = ?", (job_id,)
            )
        return None if row is None else _job_from_row(row)

    async def mark_cancelled(self, job_id: str) -> Job | None:
        now = self._now()
        return await self._update(
            "status = 'cancelled', completed_at = ?, updated_at = ?, expires_at = ?,"
            " token_sealed = NULL, estimated_remaining = NULL",
            (now, now, now + self.result_ttl_s),
            job_id,
            "processing",
        )

    async def release(self, job_id: str) -> Job | None:
        job = await self._update(
            "status = 'pending', attempts = MAX(attempts - 1, 0), updated_at = ?,"
            " estimated_remaining = NULL, not_before_ms = 0",
            (self._now(),),
            job_id,
            "processing",
        )
        self.wakeup.set()
        return job

    async def expired(self, now: float, limit: int = 100) -> list[Job]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM queue_jobs WHERE expires_at IS NOT NULL AND expires_at <= ?"
            " ORDER BY expires_at LIMIT ?",
            (int(now), limit),
        )
        return [_job_from_row(row) for row in rows]

    async def delete(self, job_ids: Sequence[str]) -> int:
        if not job_ids:
            return 0
        return await self.db.execute(
            "DELETE FROM queue_jobs WHERE job_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(job_ids)),),
        )

    async def stats(self) -> QueueStats:
        # One statement, so the counts and times describe the same moment.
        rows = await self.db.fetchall(
            "SELECT status, COUNT(*),"
            " MIN(created_at),"
            " AVG(CASE WHEN started_at IS NOT NULL AND completed_at IS NOT NULL"
            "  THEN completed_at - started_at END)"
            " FROM queue_jobs GROUP BY status"
        )
        counts: dict[JobStatus, int] = dict.fromkeys(STATUSES, 0)
        oldest: int | None = None
        mean: float | None = None
        for status, n, first_created, mean_duration in rows:
            if status not in counts:
                continue
            counts[status] = int(n)
            if status == "pending" and first_created is not None:
                oldest = int(first_created)
            elif status == "completed" and mean_duration is not None:
                mean = float(mean_duration)
        return QueueStats(counts, oldest, mean)

    async def close(self) -> None:
        self._closed = True
        self.wakeup.set()

    # --- internals ------------------------------------------------------------------

    def _now(self) -> int:
        return int(self.clock())

    async def _claim_once(self) -> tuple[Job | None, int | None]:
        """Claim the next due job in one statement; else when the next one falls due."""
        now_s = self.clock()
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "UPDATE queue_jobs SET status = 'processing', attempts = attempts + 1,"
                " started_at = COALESCE(started_at, ?), updated_at = ?"
                " WHERE job_id = (SELECT job_id FROM queue_jobs WHERE status = 'pending'"
                "  AND not_before_ms <= ? ORDER BY priority DESC, created_at, rowid LIMIT 1)"
                f" RETURNING {_COLUMNS}",
                (int(now_s), int(now_s), int(now_s * 1000)),
            )
            if row is not None:
                return _job_from_row(row), None
            due = await tx.fetchone(
                "SELECT MIN(not_before_ms) FROM queue_jobs WHERE status = 'pending'"
            )
        return None, None if due is None or due[0] is None else int(due[0])

    async def _update(
        self, assignments: str, params: tuple[Any, ...], job_id: str, expected: JobStatus
    ) -> Job | None:
        """One guarded state change: only from `expected`, returning the new row."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                f"UPDATE queue_jobs SET {assignments} WHERE job_id = ? AND status = ?"
                f" RETURNING {_COLUMNS}",
                (*params, job_id, expected),
            )
        return None if row is None else _job_from_row(row)


def _job_from_row(row: Row) -> Job:
    error = None
    if row["error_code"] is not None:
        error = JobError(
            row["error_code"],
            row["error_message"] or "",
            bool(row["retryable"]),
            row["retry_after_s"],
        )
    return Job(
        id=row["job_id"],
        request=JobRequest.from_message(json.loads(row["request_json"])),
        status=row["status"],
        token_hmac=row["token_hmac"] or "",
        created_at=int(row["created_at"]),
        progress=int(row["progress"] or 0),
        attempts=int(row["attempts"] or 0),
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        updated_at=row["updated_at"],
        estimated_duration=row["estimated_duration"],
        estimated_remaining=row["estimated_remaining"],
        result_key=row["result_key"],
        result_size=row["result_size"],
        error=error,
        cancel_requested=bool(row["cancel_requested"]),
        expires_at=row["expires_at"],
        not_before_ms=int(row["not_before_ms"] or 0),
        token_sealed=row["token_sealed"],
    )
