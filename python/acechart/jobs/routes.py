"""The job API over HTTP (seed sections 5 and 6.1): submit, poll, download, follow, cancel.

```
POST   /api/jobs                 the seed's QueueMessage fields -> 202, Location, the seed's body
GET    /api/jobs/{id}            queued / processing / completed / failed / cancelled body
GET    /api/jobs/{id}/result     the stored document (Range, ETag) or another format, streamed
GET    /api/jobs/{id}/events     Server-Sent Events of progress until the job ends
DELETE /api/jobs/{id}            cancel a queued or running job; delete a finished one
```

Every route needs the token (`X-ACE-Token` or `Authorization: Bearer`) that
created the job; any other token gets the same 404 as an unknown id. Failures
are raised as `AcechartError`s for the service's error middleware to render.

Mounting: `add_job_routes(app)` when the app is built, and, where the
runtime is opened at startup, `async with serve_jobs(app, runtime): yield`,
which opens the `JobService`, stores it under `JOBS` and closes it (handing
running jobs back to the queue) before the runtime goes.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from acechart.errors import BadRequest, JobNotFound, JobResultUnavailable
from acechart.httpheaders import parse_qualities, token_from
from acechart.jobs.export import CONTENT_TYPES, convert, metadata_key
from acechart.jobs.model import Job, JobFormat, JobRequest, Layout, parse_format
from acechart.jobs.service import JobService
from acechart.runtime import Runtime
from acechart.storage.objects import DEFAULT_CHUNK_SIZE, ObjectNotFound

__all__ = [
    "AUTHORIZE",
    "JOBS",
    "Authorize",
    "add_job_routes",
    "cancel_job",
    "job_events",
    "job_result",
    "job_status",
    "serve_jobs",
    "submit_job",
    "token_from",
]

logger = logging.getLogger(__name__)

#: Checks that a token may read a site before a job for it is accepted (raises 401/403/404).
Authorize = Callable[[web.Request, str, str], Awaitable[None]]

JOBS = web.AppKey("acechart_jobs", JobService)
AUTHORIZE: web.AppKey[Authorize] = web.AppKey("acechart_jobs_authorize")

_MSGPACK_TYPES = ("application/x-msgpack", "application/msgpack", "application/vnd.msgpack")
_MEDIA: dict[str, JobFormat] = {
    "application/json": "json",
    "text/csv": "csv",
    **{t: "msgpack" for t in _MSGPACK_TYPES},
}
_KEEPALIVE_S = 15.0
_RESULT_MAX_AGE_S = 3600


def add_job_routes(
    app: web.Application, jobs: JobService | None = None, *, authorize: Authorize | None = None
) -> None:
    """Register the job routes on `app`.

    `jobs` may be given now or stored under `JOBS` later (`serve_jobs` does it at
    startup, when the runtime exists). `authorize(request, token, site)` runs
    before a submission is accepted: the server passes its site access check,
    so a job is only queued for a token the origin lets read the site.
    """
    if jobs is not None:
        app[JOBS] = jobs
    if authorize is not None:
        app[AUTHORIZE] = authorize
    app.router.add_post("/api/jobs", _bound(submit_job), name="jobs")
    app.router.add_get("/api/jobs/{job_id}", _bound(job_status), name="job", allow_head=False)
    app.router.add_delete("/api/jobs/{job_id}", _bound(cancel_job), name="job-cancel")
    app.router.add_get("/api/jobs/{job_id}/result", _bound(job_result), name="job-result")
    app.router.add_get(
        "/api/jobs/{job_id}/events", _bound(job_events), name="job-events", allow_head=False
    )


@contextlib.asynccontextmanager
async def serve_jobs(
    app: web.Application, runtime: Runtime, **kwargs: Any
) -> AsyncIterator[JobService]:
    """Run a `JobService` over `runtime` for the app's lifetime (inside a cleanup context)."""
    jobs = await JobService.open(runtime, **kwargs)
    app[JOBS] = jobs
    try:
        yield jobs
    finally:
        await jobs.close()


# --- handlers: each takes the request and the job service -------------------------------


async def submit_job(request: web.Request, jobs: JobService) -> web.Response:
    """`POST /api/jobs`: queue a query (or join the identical live job) -> 202 + Location."""
    token = token_from(request)
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the body must be a JSON object", parameter="body") from None
    s = jobs.settings
    job_request = JobRequest.from_body(
        body, max_points=s.max_points_per_query, max_range_days=s.max_range_days
    )
    authorize = request.app.get(AUTHORIZE)
    if authorize is not None:
        await authorize(request, token, job_request.query.site)
    job, _ = await jobs.submit_request(job_request, token)
    return _json(job.accepted_body(), status=202, headers={"Location": job.url})


async def job_status(request: web.Request, jobs: JobService) -> web.Response:
    """`GET /api/jobs/{id}`: the seed's body for the job's current status."""
    job = await jobs.get(request.match_info["job_id"], token_from(request))
    return _json(job.body(jobs.clock()))


async def cancel_job(request: web.Request, jobs: JobService) -> web.Response:
    """`DELETE /api/jobs/{id}`: cancel a queued or running job (200 once it has stopped,
    202 while a run elsewhere is still stopping); delete a finished job and its result (204)."""
    job_id, token = request.match_info["job_id"], token_from(request)
    job = await jobs.get(job_id, token)
    if job.done:
        await jobs.delete(job_id, token)
        return web.Response(status=204, headers={"Cache-Control": "no-store"})
    job = await jobs.cancel(job_id, token)
    return _json(job.body(jobs.clock()), status=200 if job.done else 202)


async def job_events(request: web.Request, jobs: JobService) -> web.StreamResponse:
    """`GET /api/jobs/{id}/events`: `progress` events, then one named by the final status.

    Each event's data is the job's status body; a comment line every 15 s keeps
    proxies from closing a quiet stream.
    """
    job_id, token = request.match_info["job_id"], token_from(request)
    await jobs.get(job_id, token)  # 404 before the stream starts
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    sequence = 0
    try:
        async with contextlib.aclosing(
            jobs.watch(job_id, token, keepalive_s=_KEEPALIVE_S)
        ) as updates:
            async for job in updates:
                if job is None:
                    await response.write(b": keepalive\n\n")
                    continue
                sequence += 1
                event = job.public_status if job.done else "progress"
                data = json.dumps(job.body(jobs.clock()), separators=(",", ":"))
                await response.write(f"event: {event}\nid: {sequence}\ndata: {data}\n\n".encode())
    except JobNotFound:
        await response.write(b'event: gone\ndata: {"error":"not_found"}\n\n')
    except ConnectionResetError:
        return response
    await response.write_eof()
    return response


async def job_result(request: web.Request, jobs: JobService) -> web.StreamResponse:
    """`GET /api/jobs/{id}/result`: the result, streamed from the object store.

    The stored format is served as is, with `Content-Length`, `ETag` and single
    byte ranges (`Range`, `If-Range`). Another format (`format=` or `Accept`;
    `Accept: application/x-msgpack` wins, as on `/api/timeseries`) is converted
    series by series and sent chunked, without ranges.
    """
    job = await jobs.get(request.match_info["job_id"], token_from(request))
    if job.status != "completed" or job.result_key is None:
        raise JobResultUnavailable(
            f"job {job.id} is {job.public_status}: no result to download",
            jobId=job.id,
            status=job.public_status,
            progress=job.progress,
        )
    stored: tuple[JobFormat, Layout] = (job.request.format, job.request.layout)
    wanted = _representation(request, stored)
    if wanted == stored:
        return await _send_stored(request, jobs, job, job.result_key)
    return await _send_converted(request, jobs, job, job.result_key, stored, wanted)


# --- result delivery --------------------------------------------------------------------


async def _send_stored(
    request: web.Request, jobs: JobService, job: Job, key: str
) -> web.StreamResponse:
    store = jobs.runtime.store
    info = await store.head(key)
    if info is None:
        raise JobNotFound(f"the result of job {job.id} has expired", jobId=job.id)
    etag = f'"{info.etag}"'
    headers = {
        "Content-Type": CONTENT_TYPES[job.request.format],
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Cache-Control": f"private, max-age={_RESULT_MAX_AGE_S}",
        "Content-Disposition": _disposition(job, job.request.format),
        "Vary": "Accept",
    }
    if etag in _etags(request.headers.get("If-None-Match", "")):
        return web.Response(status=304, headers={"ETag": etag})
    size = info.size
    start, end = 0, size
    status = 200
    header = request.headers.get("Range")
    if header and request.headers.get("If-Range", etag) == etag:
        byte_range = _parse_range(header, size)
        if isinstance(byte_range, str):
            return web.Response(
                status=416, headers={"Content-Range": f"bytes */{size}", "ETag": etag}
            )
        if byte_range is not None:
            start, end = byte_range
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = end - start
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    try:
        if status == 200:
            async with contextlib.aclosing(store.iter_chunks(key)) as chunks:
                async for chunk in chunks:
                    await response.write(chunk)
        else:
            position = start
            while position < end:
                stop = min(end, position + DEFAULT_CHUNK_SIZE)
                await response.write(await store.get_range(key, position, stop))
                position = stop
    except ObjectNotFound:
        logger.warning("result of job %s vanished while being sent", job.id)
        raise
    await response.write_eof()
    return response


async def _send_converted(
    request: web.Request,
    jobs: JobService,
    job: Job,
    key: str,
    stored: tuple[JobFormat, Layout],
    wanted: tuple[JobFormat, Layout],
) -> web.StreamResponse:
    store = jobs.runtime.store
    try:
        summary = json.loads(await store.get(metadata_key(job.id)))
    except ObjectNotFound:
        raise JobNotFound(f"the result of job {job.id} has expired", jobId=job.id) from None
    response = web.StreamResponse(
        headers={
            "Content-Type": CONTENT_TYPES[wanted[0]],
            "Accept-Ranges": "none",
            "Cache-Control": f"private, max-age={_RESULT_MAX_AGE_S}",
            "Content-Disposition": _disposition(job, wanted[0]),
            "Vary": "Accept",
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    parts = convert(store, job.request.query, stored, wanted, key, summary["series"])
    async with contextlib.aclosing(parts) as chunks:
        async for chunk in chunks:
            await response.write(chunk)
    await response.write_eof()
    return response


def _representation(
    request: web.Request, stored: tuple[JobFormat, Layout]
) -> tuple[JobFormat, Layout]:
    """The format and layout to send: `format=` / `layout=` / `Accept`, else as stored."""
    accepted = parse_qualities(request.headers.get("Accept", ""))
    raw = request.query.get("format")
    fmt: JobFormat
    if any(accepted.get(t, 0.0) > 0 for t in _MSGPACK_TYPES):
        fmt = "msgpack"
    elif raw is not None:
        fmt = parse_format(raw)
    else:
        fmt = _from_accept(accepted, stored[0])
    layout_name = request.query.get("layout")
    if layout_name is None:
        layout: Layout = stored[1] if fmt == stored[0] else "rows"
    elif layout_name in ("rows", "columns"):
        layout = "rows" if layout_name == "rows" else "columns"
    else:
        raise BadRequest(f"unknown layout {layout_name!r}; use rows or columns", parameter="layout")
    if layout == "columns" and fmt != "msgpack":
        raise BadRequest("layout=columns needs MessagePack", parameter="layout")
    return fmt, layout


def _from_accept(accepted: dict[str, float], stored: JobFormat) -> JobFormat:
    """The stored format unless `Accept` names only other formats we have."""
    if not accepted or accepted.get("*/*", 0.0) > 0:
        return stored
    named = {fmt: q for media, fmt in _MEDIA.items() if (q := accepted.get(media, 0.0)) > 0}
    if not named or stored in named:
        return stored
    return max(named, key=lambda f: (named[f], f == "json"))


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """One `bytes=` range as [start, end), "unsatisfiable", or None to ignore the header.

    Several ranges, other units and malformed values are ignored (the whole
    object is sent), as RFC 9110 allows.
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first:
            suffix = int(last)
            if suffix <= 0:
                return "unsatisfiable"
            return max(0, size - suffix), size
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start >= size:
        return "unsatisfiable"
    if end <= start:
        return None
    return start, min(end, size)


def _etags(header: str) -> set[str]:
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


def _disposition(job: Job, fmt: JobFormat) -> str:
    return f'attachment; filename="{job.id}.{fmt}"'


def _json(
    body: dict[str, Any], *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        body, status=status, headers={"Cache-Control": "no-store", **(headers or {})}
    )


def _bound(
    handler: Callable[[web.Request, JobService], Awaitable[web.StreamResponse]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler calling `handler` with the app's job service."""

    async def route(request: web.Request) -> web.StreamResponse:
        jobs = request.app.get(JOBS)
        if jobs is None:
            raise RuntimeError("the job service is not running (see acechart.jobs.routes)")
        return await handler(request, jobs)

    route.__name__ = handler.__name__
    route.__doc__ = handler.__doc__
    return route
