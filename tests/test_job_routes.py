"""The job API over HTTP, through the real service: `create_app` with an open runtime and
`JobService`, served by pytest-aiohttp's `aiohttp_client`.

So every request takes the service's own path: the token and rate limit, the
origin's word on the site for a submission (the simulator), the error
middleware and the request log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from acechart.jobs.queue import STATUSES, QueueStats
from acechart.server import create_app
from acechart.server.keys import JOBS, RUNTIME
from acechart.times import format_time
from tests.conftest import NOW_MS, TOKEN, Sim, origin_settings
from tests.jobs_support import FAST, Stack, StackFactory, encode_whole, finish, query
from tests.server_helpers import ClientFactory, unlabelled

OWNER = {"X-ACE-Token": TOKEN}
BEARER = {"Authorization": f"Bearer {TOKEN}"}
STRANGER = {"X-ACE-Token": "someone-else"}

Client = TestClient[web.Request, web.Application]


async def client_for(stack: Stack, aiohttp_client: ClientFactory) -> Client:
    """The service over the stack's runtime and job service (which stay open after it)."""
    app = create_app(stack.runtime.settings, stack.runtime, stack.jobs)
    return await aiohttp_client(app)


def post_body(
    stack: Stack, n: int = 3, days: int = 20, cadence_s: int = 300, **extra: Any
) -> dict[str, Any]:
    q = query(stack.sim, n, days, cadence_s=cadence_s)
    return {
        "siteId": q.site,
        "pointNames": list(q.points),
        "startTime": format_time(q.start_ms),
        "endTime": format_time(q.end_ms),
        **extra,
    }


async def submit_and_finish(client: Client, stack: Stack, **extra: Any) -> str:
    resp = await client.post("/api/jobs", json=post_body(stack, **extra), headers=OWNER)
    assert resp.status == 202, await resp.text()
    job_id: str = (await resp.json())["jobId"]
    final, _ = await finish(stack.jobs, job_id)
    assert final.status == "completed"
    return job_id


async def test_submit_poll_and_download(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    stack = await stacks.open()
    stack.sim.faults.configure(latency_s=0.01)
    client = await client_for(stack, aiohttp_client)
    assert client.app[JOBS] is stack.jobs
    body = post_body(stack, format="json", priority="high")
    resp = await client.post("/api/jobs", json=body, headers=OWNER)
    assert resp.status == 202
    accepted = await resp.json()
    job_id = accepted["jobId"]
    assert resp.headers["Location"] == f"/api/jobs/{job_id}" == accepted["statusUrl"]
    assert set(accepted) == {"jobId", "status", "estimatedDuration", "statusUrl", "message"}
    assert accepted["status"] in ("queued", "processing")

    # the same request again joins the same job
    again = await client.post("/api/jobs", json=body, headers=BEARER)
    assert (await again.json())["jobId"] == job_id

    early = await client.get(f"/api/jobs/{job_id}", headers=OWNER)
    assert early.status == 200
    status = await early.json()
    if status["status"] == "processing":
        assert {"progress", "estimatedRemaining", "createdAt", "startedAt"} <= set(status)

    final, _ = await finish(stack.jobs, job_id)
    resp = await client.get(f"/api/jobs/{job_id}", headers=OWNER)
    done = await resp.json()
    assert done["status"] == "completed" and done["progress"] == 100
    assert done["resultUrl"] == f"/api/jobs/{job_id}/result" and done["resultFormat"] == "json"

    result = await client.get(done["resultUrl"], headers=OWNER)
    assert result.status == 200 and result.content_type == "application/json"
    data = await result.read()
    assert result.headers["Content-Length"] == str(len(data)) == str(done["resultSize"])
    direct = await stack.runtime.engine.query(final.request.query, token=TOKEN)
    assert data == encode_whole(direct, "json")


async def test_range_requests(stacks: StackFactory, aiohttp_client: ClientFactory) -> None:
    stack = await stacks.open()
    client = await client_for(stack, aiohttp_client)
    job_id = await submit_and_finish(client, stack, days=40, cadence_s=30, format="msgpack")
    url = f"/api/jobs/{job_id}/result"
    whole = await (await client.get(url, headers=OWNER)).read()
    size = len(whole)
    assert size > 3 * 1024 * 1024  # longer than one streamed chunk

    resp = await client.get(url, headers={**OWNER, "Range": "bytes=100-1048675"})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 100-1048675/{size}"
    assert await resp.read() == whole[100:1048676]

    resp = await client.get(url, headers={**OWNER, "Range": "bytes=-50"})
    assert resp.status == 206 and await resp.read() == whole[-50:]
    resp = await client.get(url, headers={**OWNER, "Range": f"bytes={size - 10}-"})
    assert await resp.read() == whole[-10:]

    resp = await client.get(url, headers={**OWNER, "Range": f"bytes={size}-"})
    assert resp.status == 416 and resp.headers["Content-Range"] == f"bytes */{size}"
    assert (await resp.json())["error"] == "range_not_satisfiable"

    etag = resp.headers["ETag"]
    resp = await client.get(url, headers={**OWNER, "Range": "bytes=0-9", "If-Range": '"stale"'})
    assert resp.status == 200 and len(await resp.read()) == size
    resp = await client.get(url, headers={**OWNER, "Range": "bytes=0-9", "If-Range": etag})
    assert resp.status == 206 and await resp.read() == whole[:10]
    resp = await client.get(url, headers={**OWNER, "If-None-Match": etag})
    assert resp.status == 304
    resp = await client.get(url, headers={**OWNER, "Range": "bytes=0-1,5-6"})
    assert resp.status == 200 and await resp.read() == whole  # several ranges: all of it


async def test_conversion_on_request(stacks: StackFactory, aiohttp_client: ClientFactory) -> None:
    stack = await stacks.open()
    client = await client_for(stack, aiohttp_client)
    job_id = await submit_and_finish(client, stack, format="json")
    job = await stack.jobs.get(job_id, TOKEN)
    direct = await stack.runtime.engine.query(job.request.query, token=TOKEN)
    url = f"/api/jobs/{job_id}/result"

    resp = await client.get(url, headers={**OWNER, "Accept": "application/x-msgpack"})
    assert resp.content_type == "application/x-msgpack" and resp.headers["Accept-Ranges"] == "bytes"
    assert await resp.read() == encode_whole(direct, "msgpack")

    resp = await client.get(url + "?format=csv", headers=OWNER)
    assert resp.content_type == "text/csv"
    csv_bytes = await resp.read()
    assert csv_bytes == encode_whole(direct, "csv")

    resp = await client.get(url + "?format=msgpack&layout=columns", headers=OWNER)
    columns = await resp.read()
    assert columns == encode_whole(direct, "msgpack", "columns")

    resp = await client.get(url, headers={**OWNER, "Accept": "text/csv"})
    assert await resp.read() == csv_bytes
    resp = await client.get(url, headers={**OWNER, "Accept": "text/html,*/*;q=0.8"})
    assert resp.content_type == "application/json"  # a browser gets what was stored

    # from a stored CSV and columns back to JSON
    csv_job = await submit_and_finish(client, stack, format="csv")
    resp = await client.get(f"/api/jobs/{csv_job}/result?format=json", headers=OWNER)
    assert await resp.read() == encode_whole(direct, "json")
    col_job = await submit_and_finish(client, stack, format="msgpack", layout="columns")
    resp = await client.get(f"/api/jobs/{col_job}/result?format=json", headers=OWNER)
    assert await resp.read() == encode_whole(direct, "json")

    resp = await client.get(url + "?format=xml", headers=OWNER)
    assert resp.status == 400 and (await resp.json())["parameter"] == "format"


async def test_a_damaged_sidecar_is_a_clear_error(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    """Conversion reads the series blocks; damaged ones give the JSON error body, while the
    stored representation is still served as it is."""
    stack = await stacks.open()
    client = await client_for(stack, aiohttp_client)
    job_id = await submit_and_finish(client, stack, format="msgpack")
    key = f"exports/{job_id}/series.blocks"
    blocks = await stack.store.get(key)
    url = f"/api/jobs/{job_id}/result"

    # the first block damaged: nothing is sent but the JSON error
    await stack.store.put(key, b"\x00" * 64, None, "application/octet-stream")
    resp = await client.get(url + "?format=json", headers=OWNER)
    assert resp.status == 503
    body = await resp.json()
    assert body["error"] == "storage_unavailable"
    # The object key is internal: logged, never answered.
    assert key not in json.dumps(body) and "damaged" in body["message"]
    assert "Traceback" not in json.dumps(body)
    assert (await client.get(url, headers=OWNER)).status == 200

    # a later block damaged, once the answer has begun: the connection is cut, so the
    # client sees an incomplete body, never a short document that looks whole
    summary = json.loads(await stack.store.get(f"exports/{job_id}/metadata.json"))
    second = summary["series"][1]
    damaged = bytearray(blocks)
    damaged[second["blockOffset"] + second["blockLength"] // 2] ^= 0xFF
    await stack.store.put(key, bytes(damaged), None, "application/octet-stream")
    resp = await client.get(url + "?format=csv", headers=OWNER)
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await asyncio.wait_for(resp.read(), 10)


async def test_events_stream_progress_until_done(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    # Daily windows on the per-point route, each a little slow: a run long enough to report.
    stack = await stacks.open(job_chunk_samples=20_000, origin_point_window_s=86_400)
    stack.sim.faults.configure(latency_s=0.05)
    client = await client_for(stack, aiohttp_client)
    resp = await client.post("/api/jobs", json=post_body(stack), headers=OWNER)
    job_id = (await resp.json())["jobId"]
    events = await client.get(f"/api/jobs/{job_id}/events", headers=OWNER)
    assert events.status == 200 and events.content_type == "text/event-stream"
    text = (await events.read()).decode()  # the stream ends when the job does
    parsed = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            parsed.append((fields["event"], json.loads(fields["data"])))
    names = [name for name, _ in parsed]
    assert names[-1] == "completed" and set(names[:-1]) <= {"progress"}
    progress = [data.get("progress", 0) for _, data in parsed]
    assert progress == sorted(progress) and progress[-1] == 100
    assert len(parsed) >= 3, names
    assert parsed[-1][1]["resultUrl"] == f"/api/jobs/{job_id}/result"


async def test_other_tokens_get_404_and_no_token_401(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    stack = await stacks.open(job_workers=0)
    client = await client_for(stack, aiohttp_client)
    resp = await client.post("/api/jobs", json=post_body(stack), headers=OWNER)
    job_id = (await resp.json())["jobId"]
    for method, path in [
        ("GET", f"/api/jobs/{job_id}"),
        ("GET", f"/api/jobs/{job_id}/result"),
        ("GET", f"/api/jobs/{job_id}/events"),
        ("DELETE", f"/api/jobs/{job_id}"),
    ]:
        stranger = await client.request(method, path, headers=STRANGER)
        assert stranger.status == 404, (method, path)
        assert (await stranger.json())["error"] == "not_found"
        anonymous = await client.request(method, path)
        assert anonymous.status == 401
    unknown = await client.get("/api/jobs/not-a-job", headers=OWNER)
    assert unknown.status == 404
    # the owner still sees it, queued
    mine = await client.get(f"/api/jobs/{job_id}", headers=OWNER)
    assert (await mine.json())["status"] == "queued"


async def test_result_before_completion_and_delete(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    stack = await stacks.open(job_workers=0)
    client = await client_for(stack, aiohttp_client)
    resp = await client.post("/api/jobs", json=post_body(stack), headers=OWNER)
    job_id = (await resp.json())["jobId"]
    early = await client.get(f"/api/jobs/{job_id}/result", headers=OWNER)
    assert early.status == 409
    assert (await early.json())["status"] == "queued"

    cancel = await client.delete(f"/api/jobs/{job_id}", headers=OWNER)
    assert cancel.status == 200 and (await cancel.json())["status"] == "cancelled"
    gone = await client.delete(f"/api/jobs/{job_id}", headers=OWNER)  # finished: deleted
    assert gone.status == 204
    assert (await client.get(f"/api/jobs/{job_id}", headers=OWNER)).status == 404


async def test_cancel_a_running_job_over_http(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    stack = await stacks.open()
    stack.sim.faults.configure(latency_s=0.05)
    client = await client_for(stack, aiohttp_client)
    resp = await client.post("/api/jobs", json=post_body(stack, days=200), headers=OWNER)
    job_id = (await resp.json())["jobId"]
    async for job in stack.jobs.watch(job_id, TOKEN):
        assert job is not None and not job.done
        if job.status == "processing":
            break
    cancel = await client.delete(f"/api/jobs/{job_id}", headers=OWNER)
    assert cancel.status == 200 and (await cancel.json())["status"] == "cancelled"
    keys = [info.key async for info in stack.store.list(f"exports/{job_id}/")]
    assert keys == []


async def test_bad_submissions(stacks: StackFactory, aiohttp_client: ClientFactory) -> None:
    stack = await stacks.open(job_workers=0)
    client = await client_for(stack, aiohttp_client)
    cases = [
        ({"pointNames": ["x"], "startTime": "2024-01-01", "endTime": "2024-01-02"}, "siteId"),
        ({**post_body(stack), "aggregation": "2min"}, "interval"),
        ({**post_body(stack), "endTime": "yesterday"}, "endTime"),
        ({**post_body(stack), "format": "xml"}, "format"),
        ({**post_body(stack), "metadata": {"notifyUrl": "not a url"}}, "metadata.notifyUrl"),
        ({**post_body(stack), "pointNames": []}, "points"),
        ({**post_body(stack), "metadata": {"notifyUrl": "http://[::1"}}, "metadata.notifyUrl"),
        (
            {**post_body(stack), "metadata": {"notifyUrl": "http://127.0.0.1:99999/hook"}},
            "metadata.notifyUrl",
        ),
        ({**post_body(stack), "startTime": 10**15, "endTime": 10**15 + 60_000}, "start"),
        ({**post_body(stack), "downsample": "m4"}, "maxPoints"),
    ]
    for body, parameter in cases:
        resp = await client.post("/api/jobs", json=body, headers=OWNER)
        assert resp.status == 400, body
        assert (await resp.json())["parameter"] == parameter
    resp = await client.post("/api/jobs", data=b"{not json", headers=OWNER)
    assert resp.status == 400


async def test_the_origin_guards_submission(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    """A submission is queued only for a site the origin lets the token read."""
    stack = await stacks.open(job_workers=0)
    stack.sim.state.tokens["other-site-token"] = frozenset({"some_other_site"})
    client = await client_for(stack, aiohttp_client)
    resp = await client.post(
        "/api/jobs", json=post_body(stack), headers={"X-ACE-Token": "other-site-token"}
    )
    assert resp.status == 403
    resp = await client.post("/api/jobs", json=post_body(stack), headers=STRANGER)
    assert resp.status == 401
    queued = await stack.jobs.queue.stats()
    assert sum(queued.counts.values()) == 0


@pytest.mark.parametrize("fmt", ["msgpack"])
async def test_timeseries_style_submit(stacks: StackFactory, fmt: str) -> None:
    """What `/api/timeseries` does for a large request: `submit` and answer the 202 body."""
    stack = await stacks.open(job_workers=0)
    q = query(stack.sim, 2, 30)
    job = await stack.jobs.submit(q, fmt, TOKEN, notify_url="https://example.com/hook")
    body = job.accepted_body()
    assert body["status"] == "queued" and body["statusUrl"] == job.url
    again = await stack.jobs.submit(q, fmt, TOKEN)
    assert again.id == job.id
    stored = await stack.runtime.db.fetchone(
        "SELECT request_json FROM queue_jobs WHERE job_id = ?", (job.id,)
    )
    assert stored is not None
    message = json.loads(stored[0])  # the seed's QueueMessage
    assert message["jobId"] == job.id and message["format"] == fmt
    assert message["metadata"] == {"notifyUrl": "https://example.com/hook"}
    assert msgpack.unpackb(msgpack.packb(message)) == message


async def test_clients_leaving_mid_download_leak_nothing(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    """Aborted downloads close their files (the suite turns a ResourceWarning into an error)."""
    stack = await stacks.open()
    client = await client_for(stack, aiohttp_client)
    job_id = await submit_and_finish(client, stack, days=40, cadence_s=30, format="msgpack")
    for i in range(12):
        resp = await client.get(f"/api/jobs/{job_id}/result", headers=OWNER)
        if i % 2:
            await resp.content.read(100)
        resp.close()
        await asyncio.sleep(0.01 * (i % 3))
    await asyncio.sleep(0.3)


async def test_metrics_come_from_the_queue(
    stacks: StackFactory, aiohttp_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`/metrics` asks `JobQueue.stats()`, not a table: any backend reports the same gauges."""
    stack = await stacks.open(job_workers=0)
    client = await client_for(stack, aiohttp_client)
    await client.post("/api/jobs", json=post_body(stack), headers=OWNER)
    text = unlabelled(await (await client.get("/metrics")).text())
    assert 'acechart_jobs{status="pending"} 1.0' in text
    assert "acechart_queue_depth 1.0" in text

    async def stats() -> QueueStats:
        counts = dict.fromkeys(STATUSES, 0) | {"pending": 4, "completed": 7}
        return QueueStats(counts, int(stack.jobs.clock()) - 90, 12.5)

    monkeypatch.setattr(stack.jobs.queue, "stats", stats)
    text = unlabelled(await (await client.get("/metrics")).text())
    for line in (
        'acechart_jobs{status="pending"} 4.0',
        'acechart_jobs{status="completed"} 7.0',
        'acechart_jobs{status="failed"} 0.0',
        "acechart_queue_depth 4.0",
        "acechart_job_duration_seconds_mean 12.5",
    ):
        assert line in text, line
    gauges = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert 89.0 <= float(gauges["acechart_queue_oldest_wait_seconds"]) < 100.0


async def test_the_app_opens_and_closes_its_own_job_service(
    sim: Sim, tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    """Without a given runtime and job service, `create_app` opens both at startup (workers
    running) and closes them on the way out."""
    settings = origin_settings(sim.url, data_dir=str(tmp_path / "svc"), **FAST)
    client = await aiohttp_client(create_app(settings))
    client.app[RUNTIME].engine.clock = lambda: NOW_MS
    q = query(sim, 1, 2)
    body = {
        "siteId": q.site,
        "pointNames": list(q.points),
        "startTime": q.start_ms,
        "endTime": q.end_ms,
        "format": "csv",
    }
    resp = await client.post("/api/jobs", json=body, headers=OWNER)
    assert resp.status == 202
    job_id = (await resp.json())["jobId"]
    events = await client.get(f"/api/jobs/{job_id}/events", headers=OWNER)
    assert "event: completed" in (await events.text())
    result = await client.get(f"/api/jobs/{job_id}/result", headers=OWNER)
    assert (await result.read()).startswith(b"time,point,value\r\n")
    jobs = client.app[JOBS]
    assert jobs.workers.running == settings.job_workers
    await client.close()
    assert jobs.workers.running == 0


async def test_given_runtime_and_jobs_are_left_open(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    stack = await stacks.open(job_workers=0)
    client = await client_for(stack, aiohttp_client)
    assert client.app[RUNTIME] is stack.runtime and client.app[JOBS] is stack.jobs
    await client.close()
    job = await stack.jobs.submit(query(stack.sim, 1, 1), "json", TOKEN)
    assert (await stack.jobs.get(job.id, TOKEN)).status == "pending"


async def test_a_job_answers_local_days_with_its_stat(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    stack = await stacks.open()
    client = await client_for(stack, aiohttp_client)
    job_id = await submit_and_finish(client, stack, n=2, aggregation="1day", tz="site", stat="max")
    result = await client.get(f"/api/jobs/{job_id}/result", headers=OWNER)
    doc = json.loads(await result.read())
    # tz=site became the zone of the site's coordinates before the job ran.
    assert doc["metadata"]["timeZone"] == "America/Chicago" and doc["metadata"]["stat"] == "max"
    q = query(stack.sim, 2, 20, cadence_s=300)
    local = dataclasses.replace(q, interval="1day", tz="America/Chicago", stat="max")
    direct = await stack.runtime.engine.query(local, token=TOKEN)
    for series, want in zip(doc["series"], direct.series, strict=True):
        assert [d[0] for d in series["data"]] == want.ts.tolist()
        assert [d[1] for d in series["data"]] == want.values.tolist()
    bad = await client.post(
        "/api/jobs", json=post_body(stack, tz="Atlantis/Capital"), headers=OWNER
    )
    assert bad.status == 400 and (await bad.json())["parameter"] == "tz"
