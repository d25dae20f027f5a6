"""`RedisJobQueue`: jobs delivered to the workers of every instance through Redis Streams.

The `queue_jobs` rows in the shared database stay the durable record and the
only judge of a job's state: every transition is the same guarded UPDATE the
single-instance queue makes (`SqliteJobQueue`, which runs on PostgreSQL too).
Redis carries delivery:

- `enqueue` stores the row, then XADDs `{job: id}` to the stream of its
  priority (`jobs:stream:2|1|0`), read by one consumer group (`workers`) with
  one consumer per instance.
- `claim` reads the highest-priority stream first (XREADGROUP), then claims
  the row `pending -> processing`. An entry whose row is no longer pending (a
  cancelled job, a duplicate delivery) is acknowledged and dropped.
- A running job's heartbeat writes progress to its row (so every instance
  reads it, and a cancellation requested on any instance is seen by the one
  running it) and resets the entry's idle time (XCLAIM ... JUSTID).
- A worker that dies stops resetting it: after `job_visibility_timeout_s`
  another instance's XAUTOCLAIM takes the entry, and if the row has not been
  written for as long, takes the job over (`attempts` + 1).
- Exactly one completion: every finishing transition also requires the
  `attempts` the finishing worker claimed, so a run taken over from a worker
  that was only slow cannot complete, fail or retry the job a second time.
- Retries wait in a sorted set scored by `not_before_ms` and are moved back
  into the stream when due (one Lua script, so no two instances move one): by
  a timer of the instance that scheduled the retry, which wakes a blocked
  reader on any instance, and by every claim loop, which also learns when the
  next one falls due and blocks no longer than that.
- Idle workers block in XREADGROUP, which returns as soon as any instance
  XADDs: a submission anywhere is claimed at once. A block lasts at most
  `_BLOCK_MAX_S` (0.5 s: stopping the service waits for it, as a blocking read
  is not cancelled), less when the poll pause, the next due retry or the next
  XAUTOCLAIM round (every quarter of the visibility timeout, at most 5 s) comes
  sooner. So an idle Redis worker still looks every half second (a promote
  script, one read per priority stream and the blocking read): the idle
  back-off saves most with SQLite and PostgreSQL alone.
- `recover` (at start) creates the group, and re-adds pending rows Redis does
  not know (written while Redis was down, or lost with a Redis restart):
  `jobs:known` holds the ids Redis has been given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from redis.exceptions import RedisError, ResponseError

from acechart.jobs.model import PRIORITIES, Job, JobError
from acechart.jobs.queue import _COLUMNS, Heartbeat, SqliteJobQueue, _job_from_row, heartbeat_of
from acechart.storage.database import Database
from acechart.storage.redis_client import SharedRedis

__all__ = ["RedisJobQueue"]

logger = logging.getLogger(__name__)

_GROUP = "workers"
#: Highest priority first.
_LEVELS = tuple(sorted(set(PRIORITIES.values()), reverse=True))

# Moves due retries from the delayed set into their streams; atomic, so each moves once.
# KEYS[1] delayed zset; ARGV[1] now ms; ARGV[2] stream key prefix; ARGV[3] max count.
# Members are "<priority>:<job id>". Returns the score (due ms) of the next one still
# waiting, or nil when none waits.
_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local sep = string.find(member, ':', 1, true)
  local level = string.sub(member, 1, sep - 1)
  local job = string.sub(member, sep + 1)
  redis.call('XADD', ARGV[2] .. level, '*', 'job', job)
end
local after = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return after[2]
"""


class RedisJobQueue(SqliteJobQueue):
    """Jobs as rows of `queue_jobs` in the shared database, delivered by Redis Streams."""

    def __init__(
        self,
        db: Database,
        redis: SharedRedis,
        *,
        consumer: str,
        result_ttl_s: int,
        poll_s: float,
        visibility_s: float,
        idle_poll_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            db, result_ttl_s=result_ttl_s, poll_s=poll_s, idle_poll_s=idle_poll_s, clock=clock
        )
        self.redis = redis
        self.consumer = consumer
        self.visibility_s = visibility_s
        self._streams = {level: redis.key("jobs", "stream", str(level)) for level in _LEVELS}
        self._delayed = redis.key("jobs", "delayed")
        self._known = redis.key("jobs", "known")
        self._promote = redis.script(_PROMOTE)
        #: job id -> (stream, entry id, attempts claimed) of the runs this instance holds.
        self._held: dict[str, tuple[str, str, int]] = {}
        #: Entries read but not yet turned into a claim (a blocking read may return several).
        self._buffer: list[tuple[int, str, str, str]] = []
        self._last_autoclaim = 0.0
        #: Dead runs are looked for this often (a share of the visibility timeout).
        self._autoclaim_every = min(self.visibility_s / 4, 5.0)
        #: Timers promoting the retries this instance scheduled (each when it falls due),
        #: and reads handed back by stopped workers.
        self._tasks: set[asyncio.Task[None]] = set()
        # A blocking read must end well before the client's socket timeout (redis-py's
        # default is 5 s): past it the read fails, and the client reconnects and retries.
        # And `close` waits for a read rather than cancel it (see `_claim_from_redis`), so
        # the longest read is what stopping the service waits: at most `_BLOCK_MAX_S`.
        socket_timeout = redis.client.connection_pool.connection_kwargs.get("socket_timeout")
        self._max_block_s = _BLOCK_MAX_S
        if socket_timeout is not None:
            self._max_block_s = min(_BLOCK_MAX_S, 0.8 * float(socket_timeout))

    # --- the protocol ---------------------------------------------------------------

    async def recover(self) -> int:
        """Create the consumer group; give Redis every pending job it does not know.

        Unlike the single-instance queue it never resets `processing` rows: other
        instances may be running them. Those whose worker died come back through
        XAUTOCLAIM once their entry has been idle for the visibility timeout.
        """
        r = self.redis.client
        for stream in self._streams.values():
            try:
                await r.xgroup_create(stream, _GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        rows = await self.db.fetchall(
            "SELECT job_id, priority, not_before_ms FROM queue_jobs WHERE status = 'pending'"
        )
        added = 0
        for job_id, priority, not_before_ms in rows:
            if not await r.sismember(self._known, str(job_id)):
                await self._deliver(str(job_id), int(priority), int(not_before_ms or 0))
                added += 1
        if added:
            logger.warning("gave Redis %d pending job(s) it did not hold", added)
        return added

    async def enqueue(self, job: Job, dedup_key: str) -> tuple[Job, bool]:
        stored, created = await super().enqueue(job, dedup_key)
        if created:
            await self._deliver(stored.id, PRIORITIES[stored.request.priority], 0)
        return stored, created

    async def claim(self, worker: str, timeout: float) -> Job | None:
        deadline = time.monotonic() + timeout
        pause = self.poll_s
        while not self._closed:
            left = max(0.0, deadline - time.monotonic())
            job, delivered = await self._claim_from_redis(left, pause)
            pause = self.next_pause(pause, delivered)
            if job is not None:
                logger.info(
                    "worker %s/%s claimed job %s (attempt %d)",
                    self.consumer,
                    worker,
                    job.id,
                    job.attempts,
                )
                return job
            if time.monotonic() >= deadline:
                return None
        return None

    async def heartbeat(
        self, job_id: str, progress: int, estimated_remaining: int | None
    ) -> Heartbeat:
        held = self._held.get(job_id)
        if held is None:
            return await super().heartbeat(job_id, progress, estimated_remaining)
        while True:
            row = await self.db.fetchone(
                "UPDATE queue_jobs SET progress = MAX(progress, ?), estimated_remaining = ?,"
                " updated_at = ? WHERE job_id = ? AND status = 'processing' AND attempts = ?"
                " RETURNING cancel_requested",
                (progress, estimated_remaining, self._now(), job_id, held[2]),
            )
            now_held = self._held.get(job_id)
            if row is not None or now_held is None or now_held[2] == held[2]:
                break
            # This process took the job over meanwhile (the run stalled, and goes on:
            # `Workers` does not start a second one): the run is that attempt's now.
            held = now_held
        if row is not None:
            stream, entry, _ = held
            with contextlib.suppress(RedisError):
                # Resets the entry's idle time: no other instance takes it over.
                await self.redis.client.xclaim(
                    stream, _GROUP, self.consumer, 0, [entry], justid=True
                )
        # No row: gone, finished, or taken over by another run (another attempt).
        return heartbeat_of(row)

    async def complete(self, job_id: str, result_key: str, result_size: int) -> Job | None:
        job = await self._held_update(super().complete, job_id, result_key, result_size)
        await self._finish(job_id)
        return job

    async def fail(self, job_id: str, error: JobError) -> Job | None:
        job = await self._held_update(super().fail, job_id, error)
        await self._finish(job_id)
        return job

    async def mark_cancelled(self, job_id: str) -> Job | None:
        job = await self._held_update(super().mark_cancelled, job_id)
        await self._finish(job_id)
        return job

    async def retry(self, job_id: str, error: JobError, not_before_ms: int) -> Job | None:
        job = await self._held_update(super().retry, job_id, error, not_before_ms)
        await self._finish(job_id, keep_known=job is not None)
        if job is not None:
            await self._deliver(job.id, PRIORITIES[job.request.priority], not_before_ms)
        return job

    async def release(self, job_id: str) -> Job | None:
        job = await self._held_update(super().release, job_id)
        await self._finish(job_id, keep_known=job is not None)
        if job is not None:
            await self._deliver(job.id, PRIORITIES[job.request.priority], 0)
        return job

    async def cancel(self, job_id: str) -> Job | None:
        # A pending job's entry stays in its stream: the claim finds the row cancelled
        # and drops it. A running one is flagged in its row, which its heartbeat reads.
        return await super().cancel(job_id)

    async def delete(self, job_ids: Sequence[str]) -> int:
        removed = await super().delete(job_ids)
        if job_ids:
            with contextlib.suppress(RedisError):
                await self.redis.client.srem(self._known, *job_ids)
        return removed

    # --- internals ------------------------------------------------------------------

    async def _held_update(self, change: Callable[..., Any], job_id: str, *args: Any) -> Job | None:
        """Run a finishing transition only if this instance still holds the run it claimed."""
        held = self._held.get(job_id)
        if held is not None:
            row = await self.db.fetchone(
                "SELECT attempts FROM queue_jobs WHERE job_id = ?", (job_id,)
            )
            if row is None or int(row[0]) != held[2]:
                logger.warning(
                    "job %s was taken over by another instance; dropping this run", job_id
                )
                return None
        job: Job | None = await change(job_id, *args)
        return job

    async def _deliver(self, job_id: str, priority: int, not_before_ms: int) -> None:
        """Hand the job to Redis: its stream now, or the delayed set until `not_before_ms`."""
        r = self.redis.client
        async with r.pipeline(transaction=True) as pipe:
            pipe.sadd(self._known, job_id)
            if not_before_ms > self.clock() * 1000:
                pipe.zadd(self._delayed, {f"{priority}:{job_id}": not_before_ms})
            else:
                pipe.xadd(self._streams.get(priority, self._streams[1]), {"job": job_id})
            await pipe.execute()
        if not_before_ms > self.clock() * 1000 and not self._closed:
            self._background(self._promote_at(not_before_ms), f"job-{job_id}-retry-timer")

    def _background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hand_back(self, read: asyncio.Future[Any]) -> None:
        """A worker stopped during a blocking read: give back what the read delivered."""
        try:
            got = await read
            for _, stream, entry, job_id in _entries(got, 0, self._streams):
                await self._drop(stream, entry)
                await self.redis.client.xadd(stream, {"job": job_id})
        except RedisError:
            logger.warning("could not hand back a read; XAUTOCLAIM will", exc_info=True)

    async def _promote_at(self, due_ms: int) -> None:
        """Move retries into their streams once `due_ms` has come, waking a blocked reader."""
        await asyncio.sleep(max(0.0, due_ms / 1000 - self.clock()))
        try:
            await self._promote_due()
        except RedisError:
            logger.warning("could not move due retries into their streams; the next poll will")

    async def _promote_due(self) -> int | None:
        """Move due retries into their streams; when the next one falls due (unix ms)."""
        after = await self._promote(
            keys=[self._delayed],
            args=[int(self.clock() * 1000), self.redis.key("jobs", "stream", ""), 100],
        )
        return None if after is None else int(float(after))

    async def _finish(self, job_id: str, *, keep_known: bool = False) -> None:
        """Acknowledge and delete the run's entry; forget the job unless it runs again."""
        held = self._held.pop(job_id, None)
        r = self.redis.client
        with contextlib.suppress(RedisError):
            async with r.pipeline(transaction=True) as pipe:
                if held is not None:
                    stream, entry, _ = held
                    pipe.xack(stream, _GROUP, entry)
                    pipe.xdel(stream, entry)
                if not keep_known:
                    pipe.srem(self._known, job_id)
                await pipe.execute()

    async def _drop(self, stream: str, entry: str) -> None:
        with contextlib.suppress(RedisError):
            async with self.redis.client.pipeline(transaction=True) as pipe:
                pipe.xack(stream, _GROUP, entry)
                pipe.xdel(stream, entry)
                await pipe.execute()

    async def _claim_from_redis(self, wait_s: float, pause: float) -> tuple[Job | None, bool]:
        """One look: a job, or None after blocking up to `pause` (and `wait_s`) for one;
        with whether anything was delivered (a look that found work resets the pause)."""
        r = self.redis.client
        next_due_ms = await self._promote_due()
        autoclaim_in = self._autoclaim_every - (time.monotonic() - self._last_autoclaim)
        if autoclaim_in <= 0:
            self._last_autoclaim = time.monotonic()
            autoclaim_in = self._autoclaim_every
            job = await self._take_over_dead()
            if job is not None:
                return job, True
        if not self._buffer:
            for level, stream in self._streams.items():
                got = await r.xreadgroup(_GROUP, self.consumer, {stream: ">"}, count=1)
                self._buffer += _entries(got, level, self._streams)
                if self._buffer:
                    break
        if not self._buffer and wait_s > 0:
            # Woken by any instance's XADD; no longer than the next due retry (promoted
            # between two reads) or the next look for dead runs.
            block_s = min(wait_s, pause, autoclaim_in, self._max_block_s)
            if next_due_ms is not None:
                block_s = min(block_s, max(0.0, next_due_ms / 1000 - self.clock()))
            read = asyncio.ensure_future(
                r.xreadgroup(
                    _GROUP,
                    self.consumer,
                    {s: ">" for s in self._streams.values()},
                    count=1,
                    block=max(1, int(block_s * 1000)),  # 0 would block for ever
                )
            )
            try:
                # Shielded: redis-py can lose a cancellation that lands in a blocking
                # read (the read is retried and the task never ends). The read ends by
                # itself within the block; what it delivered then is handed back.
                got = await asyncio.shield(read)
            except asyncio.CancelledError:
                self._background(self._hand_back(read), "job-read-hand-back")
                raise
            self._buffer += _entries(got, 0, self._streams)
        delivered = bool(self._buffer)
        self._buffer.sort(key=lambda e: -e[0])
        while self._buffer:
            _, stream, entry, job_id = self._buffer.pop(0)
            job = await self._claim_row(stream, entry, job_id)
            if job is not None:
                return job, True
        return None, delivered

    async def _claim_row(self, stream: str, entry: str, job_id: str) -> Job | None:
        """`pending -> processing` for a delivered entry; a dead run's takeover; or drop it."""
        now_s = self.clock()
        row = await self.db.fetchone(
            "UPDATE queue_jobs SET status = 'processing', attempts = attempts + 1,"
            " started_at = COALESCE(started_at, ?), updated_at = ?"
            " WHERE job_id = ? AND status = 'pending' AND not_before_ms <= ?"
            f" RETURNING {_COLUMNS}",
            (int(now_s), int(now_s), job_id, int(now_s * 1000)),
        )
        if row is not None:
            job = _job_from_row(row)
            self._held[job.id] = (stream, entry, job.attempts)
            return job
        state = await self.db.fetchone(
            "SELECT status, priority, not_before_ms FROM queue_jobs WHERE job_id = ?", (job_id,)
        )
        if state is not None and state[0] == "processing":
            # Its worker may have died (or is alive elsewhere): take it over once its row
            # is stale; until then the entry stays pending here and XAUTOCLAIM brings it
            # back after the visibility timeout.
            return await self._take_over(stream, entry, job_id)
        # Finished, cancelled, deleted, or a pending retry not yet due.
        await self._drop(stream, entry)
        if state is not None and state[0] == "pending":
            await self._deliver(job_id, int(state[1]), int(state[2] or 0))
        return None

    async def _take_over_dead(self) -> Job | None:
        """XAUTOCLAIM entries idle past the visibility timeout; take over a dead run."""
        r = self.redis.client
        idle_ms = int(self.visibility_s * 1000)
        for stream in self._streams.values():
            got = await r.xautoclaim(stream, _GROUP, self.consumer, idle_ms, "0-0", count=10)
            for entry_id, fields in got[1]:
                entry = _text(entry_id)
                job_id = _text((fields or {}).get(b"job", b""))
                job = await self._claim_row(stream, entry, job_id)
                if job is not None:
                    return job
        return None

    async def _take_over(self, stream: str, entry: str, job_id: str) -> Job | None:
        """A `processing` job whose row nobody has written for the visibility timeout."""
        now_s = self.clock()
        row = await self.db.fetchone(
            "UPDATE queue_jobs SET attempts = attempts + 1, updated_at = ?,"
            " started_at = COALESCE(started_at, ?)"
            " WHERE job_id = ? AND status = 'processing' AND updated_at <= ?"
            f" RETURNING {_COLUMNS}",
            (int(now_s), int(now_s), job_id, int(now_s - self.visibility_s)),
        )
        if row is None:
            return None  # alive: it wrote recently
        job = _job_from_row(row)
        logger.warning(
            "job %s: its worker stopped writing; %s takes it over (attempt %d)",
            job.id,
            self.consumer,
            job.attempts,
        )
        self._held[job.id] = (stream, entry, job.attempts)
        if job.cancel_requested:
            # Cancelled while its worker was dying: end it here, run nothing.
            await self.mark_cancelled(job.id)
            return None
        return job

    async def close(self) -> None:
        await super().close()
        self._buffer.clear()
        tasks = list(self._tasks)
        for task in tasks:
            if task.get_name().endswith("-retry-timer"):
                task.cancel()  # asleep until a retry falls due; a hand-back ends by itself
        await asyncio.gather(*tasks, return_exceptions=True)


_BLOCK_MAX_S = 0.5
"""Longest blocking read: an idle worker's one wakeup per half second costs a round trip
to Redis, and a stopping service waits at most this long for its workers' reads."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(
    got: Any, default_level: int, streams: dict[int, str]
) -> list[tuple[int, str, str, str]]:
    """(priority, stream, entry id, job id) of an XREADGROUP reply."""
    levels = {v: k for k, v in streams.items()}
    out: list[tuple[int, str, str, str]] = []
    for stream_name, items in got or []:
        stream = _text(stream_name)
        for entry_id, fields in items:
            job_id = _text((fields or {}).get(b"job", b""))
            out.append((levels.get(stream, default_level), stream, _text(entry_id), job_id))
    return out
