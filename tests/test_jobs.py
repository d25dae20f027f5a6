"""Background jobs end to end: simulator over HTTP, SQLite, local and S3 object stores.

Each test drives `JobService` as the server would (submit, watch, cancel) and
checks what it stored against the engine's direct answer encoded whole.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from acechart import _core
from acechart.errors import BadRequest, JobNotFound
from acechart.jobs import Job, JobRequest
from acechart.jobs.model import JobError
from acechart.jobs.queue import STATUSES, SqliteJobQueue
from acechart.jobs.redis_queue import RedisJobQueue
from acechart.query import Query
from acechart.simulator.faults import RequestRecord
from acechart.storage.objects import CorruptObject
from acechart.wire import Representation, series_item
from tests.backends import open_test_db
from tests.conftest import SITE, TOKEN
from tests.jobs_support import (
    Stack,
    StackFactory,
    encode_whole,
    finish,
    query,
    wait_for,
)
from tests.storage_fixtures import MotoS3

OTHER_TOKEN = "another-token"


async def converted(stack: Stack, job: Job, wanted: Representation) -> AsyncIterator[bytes]:
    """The job's result converted to `wanted`, whole, as the result route asks for it."""
    assert job.result_key is not None
    info = await stack.store.head(job.result_key)
    assert info is not None
    conversion = await stack.jobs.conversion(job, wanted, info)
    async for chunk in stack.jobs.converted(job, conversion):
        yield chunk


async def test_a_year_of_50_points_equals_the_direct_answer(stacks: StackFactory) -> None:
    """The seed's criterion in miniature: 365 days x 50 points, raw, as a job.

    The points are the simulator's 5-minute ones (5.2 M samples): the same shape
    of work as one-minute data at a fifth of the volume, so CI stays quick; the
    benchmark runs the one-minute version.
    """
    stack = await stacks.open()
    q = query(stack.sim, 50, 365)
    job = await stack.jobs.submit(q, "json", TOKEN)
    assert job.accepted_body()["status"] == "queued"
    final, seen = await finish(stack.jobs, job.id, timeout=120)
    assert final.status == "completed", final.body(0)
    assert seen == sorted(seen) and seen[-1] == 100
    assert len(set(seen)) >= 4, seen  # it moved through intermediate values

    direct = await stack.runtime.engine.query(q, token=TOKEN)
    assert direct.provenance.cache_status in ("HIT", "PARTIAL")  # the job filled the cache
    assert direct.total_samples > 50 * 365 * 280
    stored = await stack.store.get(final.result_key)
    assert stored == encode_whole(direct, "json")
    assert final.result_size == len(stored)

    summary = json.loads(await stack.store.get(f"exports/{job.id}/metadata.json"))
    assert summary["totalSamples"] == direct.total_samples and summary["totalPoints"] == 50
    assert summary["format"] == "json" and summary["sizeBytes"] == len(stored)
    assert summary["key"] == final.result_key and summary["aggregation"] == "raw"
    assert summary["blocks"]["key"] == f"exports/{job.id}/series.blocks"
    entry = summary["series"][7]
    item = series_item(direct.series[7])
    assert entry["name"] == item[0] and entry["samples"] == len(item[1])
    part = stored[entry["offset"] : entry["offset"] + entry["length"]]
    assert part == _core.encode_part("json", item, 7)  # a Range read of one series
    block = await stack.store.get_range(
        summary["blocks"]["key"], entry["blockOffset"], entry["blockOffset"] + entry["blockLength"]
    )
    name, ts, values, _ = _core.decode_block(block)
    assert name == item[0]
    np.testing.assert_array_equal(ts, item[1])
    np.testing.assert_array_equal(values, item[2])

    body = final.body(stack.jobs.clock())
    assert body["status"] == "completed" and body["progress"] == 100
    assert body["resultUrl"] == f"/api/jobs/{job.id}/result" and body["resultFormat"] == "json"
    assert {"createdAt", "completedAt", "duration", "resultSize"} <= set(body)


@pytest.mark.parametrize(
    ("fmt", "layout", "interval"),
    [
        ("msgpack", "rows", "raw"),
        ("msgpack", "columns", "raw"),
        ("csv", "rows", "raw"),
        ("json", "rows", "1hr"),
        ("msgpack", "rows", "1hr"),
    ],
)
async def test_every_format_is_the_whole_document(
    stacks: StackFactory, fmt: str, layout: str, interval: str
) -> None:
    stack = await stacks.open(job_chunk_samples=20_000)  # several groups of points
    q = query(stack.sim, 6, 40, interval=interval)
    q = Query(
        q.site,
        (*q.points[:3], *query(stack.sim, 3, 1, cadence_s=30).points),
        q.start_ms,
        q.end_ms,
        interval,
    )
    job = await stack.jobs.submit(q, fmt, TOKEN, layout=layout)
    final, _ = await finish(stack.jobs, job.id)
    assert final.status == "completed"
    direct = await stack.runtime.engine.query(q, token=TOKEN)
    stored = await stack.store.get(final.result_key)
    assert stored == encode_whole(direct, fmt, layout)
    if fmt == "msgpack":
        doc = msgpack.unpackb(stored)
        assert doc["metadata"]["totalSamples"] == direct.total_samples


#: Every stored representation a job can have.
REPRESENTATIONS = [
    Representation("json"),
    Representation("msgpack"),
    Representation("msgpack", "columns"),
    Representation("csv"),
]


@pytest.mark.parametrize("interval", ["raw", "1hr"])
async def test_every_conversion_equals_the_direct_encoding(
    stacks: StackFactory, interval: str
) -> None:
    """Stored as any representation, converted to any other (or the same): the bytes are
    those of the synchronous answer encoded directly."""
    stack = await stacks.open(job_chunk_samples=20_000)
    q = query(stack.sim, 3, 20, interval=interval)
    q = Query(
        q.site, (*q.points, *query(stack.sim, 2, 1, cadence_s=30).points), q.start_ms, q.end_ms,
        interval,
    )  # fmt: skip
    direct = await stack.runtime.engine.query(q, token=TOKEN)
    for stored in REPRESENTATIONS:
        job = await stack.jobs.submit(q, stored.format, TOKEN, layout=stored.layout)
        final, _ = await finish(stack.jobs, job.id)
        assert final.status == "completed"
        assert await stack.store.get(final.result_key) == encode_whole(
            direct, stored.format, stored.layout
        )
        for wanted in REPRESENTATIONS:
            chunks = [c async for c in converted(stack, final, wanted)]
            assert b"".join(chunks) == encode_whole(direct, wanted.format, wanted.layout), (
                stored,
                wanted,
            )
            assert len(chunks) == len(q.points) + 2  # head, one part per series, tail


async def test_a_damaged_export_is_a_corrupt_object(stacks: StackFactory) -> None:
    """A block or index that does not read back raises `CorruptObject` naming the key; a
    damaged first block does so before any byte is produced."""
    stack = await stacks.open()
    job = await stack.jobs.submit(query(stack.sim, 3, 5), "json", TOKEN)
    final, _ = await finish(stack.jobs, job.id)
    blocks_key = f"exports/{job.id}/series.blocks"
    blocks = await stack.store.get(blocks_key)
    summary = json.loads(await stack.store.get(f"exports/{job.id}/metadata.json"))
    second = summary["series"][1]
    wanted = Representation("csv")

    damaged = bytearray(blocks)
    damaged[second["blockOffset"] + second["blockLength"] // 2] ^= 0xFF
    await stack.store.put(blocks_key, bytes(damaged), None, "application/octet-stream")
    chunks = converted(stack, final, wanted)
    assert (await anext(chunks)).startswith(b"time,point,value")  # the head, then series 0
    await anext(chunks)
    with pytest.raises(CorruptObject, match=r"series\.blocks.*series 1"):
        await anext(chunks)
    await chunks.aclose()

    await stack.store.put(blocks_key, b"not blocks at all", None, "application/octet-stream")
    with pytest.raises(CorruptObject, match="series 0"):
        await anext(converted(stack, final, wanted))
    await stack.store.put(f"exports/{job.id}/metadata.json", b"{", None, "application/json")
    with pytest.raises(CorruptObject, match=r"metadata\.json"):
        await anext(converted(stack, final, wanted))
    await stack.store.delete(f"exports/{job.id}/metadata.json")
    with pytest.raises(JobNotFound, match="expired"):
        await anext(converted(stack, final, wanted))


def test_head_framing_for_many_series() -> None:
    """MessagePack array headers past 15 and 65535 elements match msgpack.packb."""
    for n in (0, 1, 15, 16, 65_535, 65_536):
        head = _core.encode_head("msgpack", {"a": 1}, n)
        packed = msgpack.packb({"metadata": {"a": 1}, "series": [0] * n})
        assert packed.startswith(head) and len(packed) == len(head) + n


async def test_s3_happy_path(stacks: StackFactory, moto_s3: MotoS3, tmp_path: Path) -> None:
    stack = await stacks.open(
        object_store="s3",
        s3_endpoint_url=moto_s3.endpoint_url,
        s3_bucket=moto_s3.bucket,
        s3_access_key="testing",
        s3_secret_key="testing",
        s3_prefix=f"jobs-{tmp_path.name}/",
    )
    q = query(stack.sim, 4, 30)
    job = await stack.jobs.submit(q, "msgpack", TOKEN)
    final, _ = await finish(stack.jobs, job.id)
    assert final.status == "completed" and final.result_key == f"exports/{job.id}/data.msgpack"
    direct = await stack.runtime.engine.query(q, token=TOKEN)
    assert await stack.store.get(final.result_key) == encode_whole(direct, "msgpack")
    keys = sorted([info.key async for info in stack.store.list(f"exports/{job.id}/")])
    assert keys == [
        f"exports/{job.id}/data.msgpack",
        f"exports/{job.id}/metadata.json",
        f"exports/{job.id}/series.blocks",
    ]


async def test_restart_mid_job_finishes_it(stacks: StackFactory) -> None:
    stack = await stacks.open(job_chunk_samples=30_000)
    stack.sim.faults.configure(latency_s=0.02)
    q = query(stack.sim, 12, 90, end_days_ago=10)  # sealed: a resumed run needs no refetch
    job = await stack.jobs.submit(q, "json", TOKEN)
    running = await wait_for(
        stack.jobs, job.id, lambda j: j.status == "processing" and j.progress >= 20
    )
    assert 0 < running.progress < 100
    await stacks.close(stack)  # shutdown mid-run: the job goes back to the queue

    db = await open_test_db(stacks.data_dir / "acechart.db")
    row = await db.fetchone("SELECT status, attempts FROM queue_jobs WHERE job_id = ?", (job.id,))
    await db.close()
    assert row is not None and tuple(row) == ("pending", 0)

    stack.sim.log.clear()
    stack.sim.faults.configure(latency_s=0.0)
    again = await stacks.open()
    final, _ = await finish(again.jobs, job.id)
    assert final.status == "completed" and final.attempts == 1
    asked = _asked_points(again.sim.log.matching("timeseries"), q.points)
    assert q.points[0] not in asked  # the first group came from the block cache
    direct = await again.runtime.engine.query(q, token=TOKEN)
    assert await again.store.get(final.result_key) == encode_whole(direct, "json")


async def test_a_job_left_running_by_a_crash_is_resumed(stacks: StackFactory) -> None:
    first = await stacks.open(job_workers=0)
    q = query(first.sim, 2, 3)
    job = await first.jobs.submit(q, "csv", TOKEN)
    # What a crash leaves behind: the row says a worker holds it.
    await first.runtime.db.execute(
        "UPDATE queue_jobs SET status = 'processing', attempts = 1 WHERE job_id = ?", (job.id,)
    )
    await stacks.close(first)
    second = await stacks.open()
    final, _ = await finish(second.jobs, job.id)
    assert final.status == "completed" and final.attempts == 2


async def test_origin_failures_are_retried_then_succeed(stacks: StackFactory) -> None:
    stack = await stacks.open(origin_max_attempts=1)
    stack.sim.faults.configure(path_contains="timeseries")  # not the catalogue's requests
    stack.sim.faults.script("500", "503")
    q = query(stack.sim, 1, 1, end_days_ago=5)  # one origin request per attempt
    job = await stack.jobs.submit(q, "json", TOKEN)
    final, _ = await finish(stack.jobs, job.id)
    assert final.status == "completed" and final.attempts == 3
    assert final.error is None


async def test_a_retry_claimed_while_its_failed_run_ends_is_run(
    stacks: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failed run is still recording its end when a worker claims the retry: the
    claim is a new run's, not the old run's to go on with (it goes on with nothing)."""
    stack = await stacks.open(origin_max_attempts=1, job_workers=2)
    queue = stack.jobs.queue
    retry = queue.retry

    async def slow_to_return(*args: Any, **kwargs: Any) -> Any:
        done = await retry(*args, **kwargs)
        await asyncio.sleep(0.5)  # the retry falls due and is claimed meanwhile
        return done

    monkeypatch.setattr(queue, "retry", slow_to_return)
    stack.sim.faults.configure(path_contains="timeseries")
    stack.sim.faults.script("500")
    job = await stack.jobs.submit(query(stack.sim, 1, 1, end_days_ago=5), "json", TOKEN)
    final, _ = await finish(stack.jobs, job.id, timeout=20)
    assert final.status == "completed" and final.attempts == 2


async def test_failures_past_the_budget_fail_with_the_seed_body(
    stacks: StackFactory, webhook: Webhook
) -> None:
    stack = await stacks.open(
        origin_max_attempts=1,
        job_webhook_secret="s3cret",
        job_webhook_allow_loopback_for_tests=True,  # the receiver listens on 127.0.0.1
    )
    stack.sim.faults.configure(error_rate=1.0, path_contains="timeseries")
    q = query(stack.sim, 2, 1, end_days_ago=5)
    job = await stack.jobs.submit(q, "json", TOKEN, notify_url=webhook.url)
    final, _ = await finish(stack.jobs, job.id)
    assert final.status == "failed" and final.attempts == 3
    body = final.body(stack.jobs.clock())
    assert body["jobId"] == job.id and body["status"] == "failed"
    assert body["error"] == "origin_unavailable" and "origin answered 50" in body["message"]
    assert body["retryable"] is True and body["retryAfter"] == 300
    assert [k async for k in _keys(stack, job.id)] == []
    received = await webhook.next()
    assert json.loads(received.body) == {"jobId": job.id, "status": "failed"}
    assert received.valid("s3cret")


async def test_a_refused_token_fails_at_once(stacks: StackFactory) -> None:
    stack = await stacks.open()
    stack.sim.faults.configure(path_contains="timeseries")
    stack.sim.faults.script("401")
    job = await stack.jobs.submit(query(stack.sim, 1, 1, end_days_ago=5), "json", TOKEN)
    final, _ = await finish(stack.jobs, job.id)
    assert final.status == "failed" and final.attempts == 1
    assert final.body(0)["retryable"] is False and "retryAfter" not in final.body(0)


async def test_webhook_on_completion_is_signed(stacks: StackFactory, webhook: Webhook) -> None:
    webhook.fail_first = 1  # the receiver is down once: the notifier tries again
    stack = await stacks.open(
        job_webhook_secret="hook-key", job_webhook_allow_loopback_for_tests=True
    )
    stack.jobs.notifier.first_delay_s = 0.01
    job = await stack.jobs.submit(query(stack.sim, 1, 2), "csv", TOKEN, notify_url=webhook.url)
    final, _ = await finish(stack.jobs, job.id)
    assert final.status == "completed"
    received = await webhook.next()
    assert json.loads(received.body) == {"jobId": job.id, "status": "completed"}
    assert received.valid("hook-key") and not received.valid("other-key")
    assert webhook.calls == 2


async def test_a_dead_webhook_never_fails_the_job(stacks: StackFactory) -> None:
    stack = await stacks.open(job_webhook_attempts=2, job_webhook_allow_loopback_for_tests=True)
    stack.jobs.notifier.first_delay_s = 0.01
    url = "http://127.0.0.1:9/nobody-listens"
    job = await stack.jobs.submit(query(stack.sim, 1, 1), "json", TOKEN, notify_url=url)
    final, _ = await finish(stack.jobs, job.id)
    assert final.status == "completed"
    assert await stack.jobs.notifier.deliver(url, job.id, "completed") is False


async def test_cancel_a_running_job_stops_its_origin_fetch(stacks: StackFactory) -> None:
    stack = await stacks.open(origin_concurrency=2)
    stack.sim.faults.configure(latency_s=0.05)
    q = query(stack.sim, 4, 200)
    job = await stack.jobs.submit(q, "json", TOKEN)
    await wait_for(stack.jobs, job.id, lambda j: j.status == "processing" and j.progress > 0)
    cancelled = await stack.jobs.cancel(job.id, TOKEN)
    assert cancelled.status == "cancelled"
    asked = len(stack.sim.log)
    await asyncio.sleep(0.4)
    assert len(stack.sim.log) <= asked + 2  # at most the requests already in flight
    assert [k async for k in _keys(stack, job.id)] == []
    body = cancelled.body(stack.jobs.clock())
    assert body["status"] == "cancelled" and "completedAt" in body


async def test_cancel_a_queued_job(stacks: StackFactory) -> None:
    stack = await stacks.open(job_workers=0)
    job = await stack.jobs.submit(query(stack.sim, 1, 1), "json", TOKEN)
    assert (await stack.jobs.cancel(job.id, TOKEN)).status == "cancelled"
    # cancelling again, or a finished job, changes nothing
    assert (await stack.jobs.cancel(job.id, TOKEN)).status == "cancelled"


async def test_a_cancel_seen_through_the_queue_stops_the_run(stacks: StackFactory) -> None:
    """Another process asks through the table; the running worker notices at its next write."""
    stack = await stacks.open()
    stack.sim.faults.configure(latency_s=0.05)
    job = await stack.jobs.submit(query(stack.sim, 3, 120), "json", TOKEN)
    await wait_for(stack.jobs, job.id, lambda j: j.status == "processing")
    await stack.runtime.db.execute(
        "UPDATE queue_jobs SET cancel_requested = 1 WHERE job_id = ?", (job.id,)
    )
    final, _ = await finish(stack.jobs, job.id)
    assert final.status == "cancelled"


async def test_a_run_taken_over_by_its_own_process_goes_on_alone(
    stacks: StackFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A run whose heartbeats stall past the visibility timeout (a busy loop) is taken
    over by the next claim, here by another worker of the same process. The run is alive,
    so it goes on as the new attempt, alone, and completes the job; it used to race a
    second run and be told it was cancelled, which cancelled the job."""
    stack = await stacks.open(job_workers=2, origin_concurrency=1)
    queue = stack.jobs.queue
    if not isinstance(queue, RedisJobQueue):
        pytest.skip("only the shared queue takes runs over")
    beat = queue.heartbeat
    stalls: list[str] = []

    async def first_beat_stalls(job_id: str, progress: int, remaining: int | None) -> Any:
        if not stalls:
            stalls.append(job_id)
            await asyncio.sleep(2.5)  # past the 1 s visibility timeout, then on
        return await beat(job_id, progress, remaining)

    monkeypatch.setattr(queue, "heartbeat", first_beat_stalls)
    stack.sim.faults.configure(latency_s=0.3)  # the run lasts past the stall
    q = query(stack.sim, 4, 200)
    job = await stack.jobs.submit(q, "json", TOKEN)
    final, _ = await finish(stack.jobs, job.id, timeout=60)
    adopted = caplog.text.count("still running here")  # once per second of the stall
    assert final.status == "completed" and adopted >= 1, final.body(0)
    assert final.attempts == 1 + adopted
    for _ in range(100):  # the run ends just after it records the job completed
        if not stack.jobs.workers.runs:
            break
        await asyncio.sleep(0.05)
    assert stack.jobs.workers.runs == {}
    assert final.result_key is not None
    direct = await stack.runtime.engine.query(q, token=TOKEN)
    assert await stack.store.get(final.result_key) == encode_whole(direct, "json")


async def test_duplicate_submission_returns_the_same_job(stacks: StackFactory) -> None:
    stack = await stacks.open(job_workers=0)
    q = query(stack.sim, 2, 10)
    first = await stack.jobs.submit(q, "json", TOKEN)
    same = Query(q.site, q.points, q.start_ms, q.end_ms, "raw")
    assert (await stack.jobs.submit(same, "json", TOKEN, priority="high")).id == first.id
    assert (await stack.jobs.submit(q, "csv", TOKEN)).id != first.id
    assert (await stack.jobs.submit(q, "json", OTHER_TOKEN)).id != first.id
    reordered = Query(q.site, q.points[::-1], q.start_ms, q.end_ms)
    assert (await stack.jobs.submit(reordered, "json", TOKEN)).id != first.id
    await stack.jobs.cancel(first.id, TOKEN)
    assert (await stack.jobs.submit(q, "json", TOKEN)).id != first.id  # only live jobs are shared


async def test_another_token_sees_nothing(stacks: StackFactory) -> None:
    stack = await stacks.open(job_workers=0)
    job = await stack.jobs.submit(query(stack.sim, 1, 1), "json", TOKEN)
    for call in (stack.jobs.get, stack.jobs.cancel):
        with pytest.raises(JobNotFound):
            await call(job.id, OTHER_TOKEN)
    with pytest.raises(JobNotFound):
        await stack.jobs.get("no-such-job", TOKEN)
    row = await stack.runtime.db.fetchone(
        "SELECT token_hmac, token_sealed, request_json FROM queue_jobs WHERE job_id = ?", (job.id,)
    )
    assert row is not None and TOKEN not in "".join(row)  # never stored in clear


async def test_priority_orders_the_queue(stacks: StackFactory) -> None:
    stack = await stacks.open(job_workers=0)
    low = await stack.jobs.submit(query(stack.sim, 1, 1), "json", TOKEN, priority="low")
    high = await stack.jobs.submit(query(stack.sim, 1, 2), "json", TOKEN, priority="high")
    normal = await stack.jobs.submit(query(stack.sim, 1, 3), "json", TOKEN)
    order = [(await stack.jobs.queue.claim("t", 0)) for _ in range(3)]
    assert [j.id for j in order if j] == [high.id, normal.id, low.id]
    for j in order:
        assert j is not None
        await stack.jobs.queue.release(j.id)


async def test_queue_stats_count_statuses_and_times(stacks: StackFactory) -> None:
    """`stats()`: every status counted (zeros too), the oldest pending job, mean run time."""
    stack = await stacks.open(job_workers=0)
    queue = stack.jobs.queue
    assert isinstance(queue, SqliteJobQueue)
    empty = await queue.stats()
    assert empty.counts == dict.fromkeys(STATUSES, 0) and empty.pending == 0
    assert empty.oldest_pending_created_at is None and empty.mean_completed_duration_s is None
    assert empty.waited_s(1e9) == 0.0

    t0 = 1_700_000_000
    now = [float(t0)]
    queue.clock = stack.jobs.clock = lambda: now[0]
    ids = []
    for days in range(1, 7):  # six jobs, created 10 s apart
        ids.append((await stack.jobs.submit(query(stack.sim, 1, days), "json", TOKEN)).id)
        now[0] += 10
    runs = {ids[0]: 30, ids[1]: 10}  # completed after 30 s and 10 s
    for job_id, seconds in runs.items():
        claimed = await queue.claim("t", 0)
        assert claimed is not None and claimed.id == job_id
        now[0] += seconds
        await queue.complete(job_id, f"exports/{job_id}/data.json", 1)
    claimed = await queue.claim("t", 0)
    assert claimed is not None and claimed.id == ids[2]
    await queue.fail(ids[2], JobError("origin_timeout", "slow", True, 300))
    assert (await queue.claim("t", 0)) is not None  # ids[3] stays processing
    await queue.cancel(ids[4])

    stats = await queue.stats()
    assert stats.counts == {
        "pending": 1,
        "processing": 1,
        "completed": 2,
        "failed": 1,
        "cancelled": 1,
    }
    assert stats.pending == 1 and stats.oldest_pending_created_at == t0 + 50
    assert stats.mean_completed_duration_s == 20.0
    assert stats.waited_s(t0 + 100) == 50.0


async def test_results_expire_through_the_sweeper(stacks: StackFactory) -> None:
    stack = await stacks.open(job_result_ttl_s=60)
    job = await stack.jobs.submit(query(stack.sim, 1, 1), "json", TOKEN)
    final, _ = await finish(stack.jobs, job.id)
    assert final.expires_at is not None
    assert await stack.jobs.sweep_once() == 0
    real = stack.jobs.clock
    stack.jobs.clock = lambda: real() + 61
    assert isinstance(stack.jobs.queue, SqliteJobQueue)
    stack.jobs.queue.clock = stack.jobs.clock
    assert await stack.jobs.sweep_once() == 1
    with pytest.raises(JobNotFound):
        await stack.jobs.get(job.id, TOKEN)
    assert [k async for k in _keys(stack, job.id)] == []


async def test_bad_requests_name_the_parameter(stacks: StackFactory) -> None:
    stack = await stacks.open(job_workers=0)
    q = query(stack.sim, 1, 1)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"fmt": "xml"}, "format"),
        ({"fmt": "json", "priority": "urgent"}, "priority"),
        ({"fmt": "json", "notify_url": "ftp://x/y"}, "metadata.notifyUrl"),
        ({"fmt": "csv", "layout": "columns"}, "layout"),
    ]
    for kwargs, parameter in cases:
        fmt = kwargs.pop("fmt")
        with pytest.raises(BadRequest) as info:
            await stack.jobs.submit(q, fmt, TOKEN, **kwargs)
        assert info.value.parameter == parameter
    with pytest.raises(BadRequest) as info:
        JobRequest.from_body(
            {"siteId": SITE, "pointNames": ["a"], "startTime": "2024-01-01"},
            max_points=10,
            max_range_days=10,
        )
    assert info.value.parameter == "endTime"


def test_error_classification() -> None:
    from acechart.errors import OriginBadRequest, OriginTimeout, RateLimited

    timeout = JobError.from_exception(OriginTimeout("slow"), default_retry_after=300)
    assert timeout.fields() == {
        "error": "origin_timeout",
        "message": "slow",
        "retryable": True,
        "retryAfter": 300,
    }
    limited = JobError.from_exception(RateLimited("later", retry_after=7.5), default_retry_after=1)
    assert limited.retryable and limited.retry_after == 8
    bad = JobError.from_exception(OriginBadRequest("no"), default_retry_after=300)
    assert not bad.retryable and "retryAfter" not in bad.fields()
    assert JobError.from_exception(KeyError("x"), default_retry_after=5).code == "internal_error"


# --- a webhook receiver ------------------------------------------------------------------


class Received:
    def __init__(self, body: bytes, signature: str | None) -> None:
        self.body = body
        self.signature = signature

    def valid(self, secret: str) -> bool:
        want = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return self.signature is not None and hmac.compare_digest(want, self.signature)


class Webhook:
    def __init__(self) -> None:
        self.url = ""
        self.calls = 0
        self.fail_first = 0
        self.received: asyncio.Queue[Received] = asyncio.Queue()

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.calls <= self.fail_first:
            return web.Response(status=503)
        body = await request.read()
        await self.received.put(Received(body, request.headers.get("X-Acechart-Signature")))
        return web.Response(status=204)

    async def next(self) -> Received:
        return await asyncio.wait_for(self.received.get(), 10)


@pytest.fixture
async def webhook(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> Webhook:
    hook = Webhook()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = await aiohttp_server(app)
    hook.url = str(server.make_url("/hook"))
    return hook


def _asked_points(records: Sequence[RequestRecord], every: Sequence[str]) -> set[str]:
    """The points the origin was asked for: named by a per-point path or a `point_names`
    filter; a site-wide pass without a filter asks for `every` one."""
    asked: set[str] = set()
    for r in records:
        if r.path.startswith("/points/") and r.path.endswith("/timeseries"):
            asked.add(r.path.removeprefix("/points/").removesuffix("/timeseries"))
        elif "point_names" in r.params:
            asked.update(r.params["point_names"].split(","))
        else:
            asked.update(every)
    return asked


async def _keys(stack: Any, job_id: str) -> Any:
    async for info in stack.store.list(f"exports/{job_id}/"):
        yield info.key
