"""The job API over HTTP: a test-only app mounting `add_job_routes`, driven by aiohttp's client.

The app has just the job routes and an error middleware of the same shape as
the service's, so these tests hold whatever else the server mounts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiohttp.typedefs import Handler

from acechart.errors import AcechartError, Forbidden
from acechart.jobs.openapi import job_paths, job_schemas
from acechart.jobs.routes import add_job_routes, serve_jobs
from acechart.query import format_time
from acechart.runtime import Runtime
from tests.conftest import NOW_MS, SITE, TOKEN, Sim, origin_settings
from tests.jobs_support import FAST, Stack, StackFactory, encode_whole, finish, query

OWNER = {"X-ACE-Token": TOKEN}
BEARER = {"Authorization": f"Bearer {TOKEN}"}
STRANGER = {"X-ACE-Token": "someone-else"}

ClientMaker = Callable[..., Awaitable[TestClient[Any, Any]]]


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AcechartError as exc:
        return web.json_response(exc.to_body(), status=exc.status)


async def client_for(stack: Stack, aiohttp_client: ClientMaker, **kw: Any) -> TestClient[Any, Any]:
    app = web.Application(middlewares=[errors])
    add_job_routes(app, stack.jobs, **kw)
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


async def submit_and_finish(client: TestClient[Any, Any], stack: Stack, **extra: Any) -> str:
    resp = await client.post("/api/jobs", json=post_body(stack, **extra), headers=OWNER)
    assert resp.status == 202, await resp.text()
    job_id: str = (await resp.json())["jobId"]
    final, _ = await finish(stack.jobs, job_id)
    assert final.status == "completed"
    return job_id


async def test_submit_poll_and_download(stacks: StackFactory, aiohttp_client: ClientMaker) -> None:
    stack = await stacks.open()
    stack.sim.faults.configure(latency_s=0.01)
    client = await client_for(stack, aiohttp_client)
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
    q = stack.jobs.runtime.engine
    direct = await q.query(final.request.query, token=TOKEN)
    assert data == encode_whole(direct, "json")


async def test_range_requests(stacks: StackFactory, aiohttp_client: ClientMaker) -> None:
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

    etag = resp.headers["ETag"]
    resp = await client.get(url, headers={**OWNER, "Range": "bytes=0-9", "If-Range": '"stale"'})
    assert resp.status == 200 and len(await resp.read()) == size
    resp = await client.get(url, headers={**OWNER, "Range": "bytes=0-9", "If-Range": etag})
    assert resp.status == 206 and await resp.read() == whole[:10]
    resp = await client.get(url, headers={**OWNER, "If-None-Match": etag})
    assert resp.status == 304
    resp = await client.get(url, headers={**OWNER, "Range": "bytes=0-1,5-6"})
    assert resp.status == 200 and await resp.read() == whole  # several ranges: all of it


async def test_conversion_on_request(stacks: StackFactory, aiohttp_client: ClientMaker) -> None:
    stack = await stacks.open()
    client = await client_for(stack, aiohttp_client)
    job_id = await submit_and_finish(client, stack, format="json")
    job = await stack.jobs.get(job_id, TOKEN)
    direct = await stack.runtime.engine.query(job.request.query, token=TOKEN)
    url = f"/api/jobs/{job_id}/result"

    resp = await client.get(url, headers={**OWNER, "Accept": "application/x-msgpack"})
    assert resp.content_type == "application/x-msgpack" and resp.headers["Accept-Ranges"] == "none"
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
    assert json.loads(await resp.read()) == json.loads(encode_whole(direct, "json"))

    resp = await client.get(url + "?format=xml", headers=OWNER)
    assert resp.status == 400 and (await resp.json())["parameter"] == "format"


async def test_events_stream_progress_until_done(
    stacks: StackFactory, aiohttp_client: ClientMaker
) -> None:
    stack = await stacks.open(job_chunk_samples=20_000)
    stack.sim.faults.configure(latency_s=0.02)
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
    stacks: StackFactory, aiohttp_client: ClientMaker
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
    stacks: StackFactory, aiohttp_client: ClientMaker
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


async def test_bad_submissions(stacks: StackFactory, aiohttp_client: ClientMaker) -> None:
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


async def test_authorize_hook_guards_submission(
    stacks: StackFactory, aiohttp_client: ClientMaker
) -> None:
    stack = await stacks.open(job_workers=0)

    async def only_other_sites(request: web.Request, token: str, site: str) -> None:
        if site == SITE:
            raise Forbidden(f"this token may not read site {site}")

    client = await client_for(stack, aiohttp_client, authorize=only_other_sites)
    resp = await client.post("/api/jobs", json=post_body(stack), headers=OWNER)
    assert resp.status == 403


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
    stacks: StackFactory, aiohttp_client: ClientMaker
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


def test_openapi_describes_every_job_route() -> None:
    app = web.Application()
    add_job_routes(app)
    registered = {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.resource is not None
    }
    paths = job_paths()
    assert registered == {(path, method) for path, ops in paths.items() for method in ops}
    schemas = job_schemas()
    refs = {ref for ref in _refs(paths) if ref != "Error"}
    assert refs <= set(schemas)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value.rsplit("/", 1)[-1]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


async def test_mounted_as_the_service_does(
    sim: Sim, tmp_path: Path, aiohttp_client: ClientMaker
) -> None:
    """Routes at build time, the service at startup in a cleanup context, closed before the
    runtime: the recipe `acechart.server` follows."""

    async def runtime_and_jobs(app: web.Application) -> AsyncIterator[None]:
        settings = origin_settings(sim.url, data_dir=str(tmp_path / "svc"), **FAST)
        runtime = await Runtime.open(settings)
        runtime.engine.clock = lambda: NOW_MS
        async with serve_jobs(app, runtime):
            yield
        await runtime.close()

    app = web.Application(middlewares=[errors])
    app.cleanup_ctx.append(runtime_and_jobs)
    add_job_routes(app)
    client = await aiohttp_client(app)
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
