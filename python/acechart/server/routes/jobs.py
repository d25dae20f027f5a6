"""The job API over HTTP (seed sections 5 and 6.1): submit, poll, download, follow, cancel.

```
POST   /api/jobs                 the seed's QueueMessage fields -> 202, Location, the seed's body
GET    /api/jobs/{id}            queued / processing / completed / failed / cancelled body
GET    /api/jobs/{id}/result     the stored document or another format (Range, ETag), streamed
GET    /api/jobs/{id}/events     Server-Sent Events of progress until the job ends
DELETE /api/jobs/{id}            cancel a queued or running job; delete a finished one
```

Every route goes through the same door as the data routes: the token, the
rate limit and the request log (`identify`), and for a submission the
origin's word on the site (`authorize`) and its point names against the site's
catalogue (`check_points`). Only the token that created a job
sees it; any other gets the same 404 as an unknown id. Failures are raised as
`AcechartError`s for the error middleware to render.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncGenerator

from aiohttp import web

from acechart.errors import AcechartError, BadRequest, JobNotFound
from acechart.jobs.export import conversion_etag
from acechart.jobs.model import Job, JobRequest
from acechart.server.headers import etag_matches, parse_range
from acechart.server.keys import INFO, JOBS, METRICS, SETTINGS
from acechart.server.pipeline import authorize, check_points, identify
from acechart.server.respond import json_response
from acechart.storage.objects import DEFAULT_CHUNK_SIZE, ObjectInfo, ObjectNotFound
from acechart.wire import JOB_FORMATS, JOB_LAYOUTS, Representation, negotiate

__all__ = ["cancel", "events", "result", "status", "submit"]

logger = logging.getLogger(__name__)

_KEEPALIVE_S = 15.0
_RESULT_MAX_AGE_S = 3600
_NO_STORE = {"Cache-Control": "no-store"}


async def submit(request: web.Request) -> web.Response:
    """`POST /api/jobs`: queue a query (or join the identical live job) -> 202 + Location."""
    s = request.app[SETTINGS]
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the body must be a JSON object", parameter="body") from None
    job_request = JobRequest.from_body(
        body, max_points=s.max_points_per_query, max_range_days=s.max_range_days
    )
    q = job_request.query
    info = request[INFO]
    info.site, info.point_count = q.site, len(q.points)
    token = await authorize(request, "jobs", q.site)
    await check_points(request, q.site, q.points, token)
    job, _ = await request.app[JOBS].submit_request(job_request, token)
    response = await json_response(request, job.accepted_body(), {"Location": job.url, **_NO_STORE})
    response.set_status(202)
    return response


async def status(request: web.Request) -> web.Response:
    """`GET /api/jobs/{id}`: the seed's body for the job's current status."""
    token, _ = await identify(request, "job")
    jobs = request.app[JOBS]
    job = await jobs.get(request.match_info["job_id"], token)
    return await json_response(request, job.body(jobs.clock()), _NO_STORE)


async def cancel(request: web.Request) -> web.Response:
    """`DELETE /api/jobs/{id}`: cancel a queued or running job (200 once it has stopped,
    202 while a run elsewhere is still stopping); delete a finished job and its result (204)."""
    token, _ = await identify(request, "job-cancel")
    jobs = request.app[JOBS]
    job_id = request.match_info["job_id"]
    job = await jobs.get(job_id, token)
    if job.done:
        await jobs.delete(job_id, token)
        return web.Response(status=204, headers=_NO_STORE)
    job = await jobs.cancel(job_id, token)
    response = await json_response(request, job.body(jobs.clock()), _NO_STORE)
    response.set_status(200 if job.done else 202)
    return response


async def events(request: web.Request) -> web.StreamResponse:
    """`GET /api/jobs/{id}/events`: `progress` events, then one named by the final status.

    Each event's data is the job's status body; a comment line every 15 s keeps
    proxies from closing a quiet stream.
    """
    token, _ = await identify(request, "job-events")
    jobs = request.app[JOBS]
    job_id = request.match_info["job_id"]
    await jobs.get(job_id, token)  # 404 before the stream starts
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    if request.method == "HEAD":
        return response
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


async def result(request: web.Request) -> web.StreamResponse:
    """`GET /api/jobs/{id}/result`: the result, streamed from the object store.

    The representation is negotiated exactly as on `/api/timeseries`, with the
    stored one as the default, Parquet among the formats and no `wide` layout
    (a result is converted series by series). The stored representation is
    served as is, with `Content-Length`, `ETag` and single byte ranges (`Range`,
    `If-Range`); another is converted series by series, with its own strong
    ETag and the same ranges (see `export.Conversion`).
    """
    token, _ = await identify(request, "job-result")
    jobs = request.app[JOBS]
    job, stored_info = await jobs.result(request.match_info["job_id"], token)
    stored = job.request.representation
    wanted = negotiate(
        request.query,
        request.headers.get("Accept", ""),
        default=stored,
        formats=JOB_FORMATS,
        layouts=JOB_LAYOUTS,
    )
    request[INFO].format = wanted.format
    headers = {
        "Content-Type": wanted.content_type,
        "Cache-Control": f"private, max-age={_RESULT_MAX_AGE_S}",
        "Content-Disposition": f'attachment; filename="{job.id}.{wanted.extension}"',
        "Vary": "Accept",
    }
    if wanted != stored:
        return await _send_converted(request, job, stored_info, wanted, headers)

    etag = f'"{stored_info.etag}"'
    headers |= {"Accept-Ranges": "bytes", "ETag": etag}
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers={"ETag": etag})
    size = stored_info.size
    start, end, code = _byte_range(request, size, etag, headers)
    response = web.StreamResponse(status=code, headers=headers)
    response.content_length = end - start
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    store, key = jobs.store, stored_info.key
    try:
        if code == 200:
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


def _range_asked(request: web.Request, etag: str) -> bool:
    """Whether a `Range` header applies: there is one, and `If-Range` (if any) names our
    ETag (a date or another tag means "send it all")."""
    return bool(request.headers.get("Range")) and request.headers.get("If-Range", etag) == etag


def _one_range(request: web.Request) -> bool:
    """Whether `Range` names one range whatever the size: only then is a conversion
    measured for it (a malformed one, or several, get the whole answer anyway)."""
    return parse_range(request.headers["Range"], _ANY_SIZE) is not None


_ANY_SIZE = 1 << 62


def _byte_range(
    request: web.Request, size: int, etag: str, headers: dict[str, str]
) -> tuple[int, int, int]:
    """[start, end) and the status of an answer of `size` bytes: 206 (with `Content-Range`
    added to `headers`) for one satisfiable range, 200 for all of it (no range, a stale
    `If-Range`, several ranges); `RangeNotSatisfiable` past the end."""
    if not _range_asked(request, etag):
        return 0, size, 200
    byte_range = parse_range(request.headers["Range"], size)
    if isinstance(byte_range, str):
        raise RangeNotSatisfiable(size, etag)
    if byte_range is None:
        return 0, size, 200
    start, end = byte_range
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return start, end, 206


async def _send_converted(
    request: web.Request,
    job: Job,
    stored: ObjectInfo,
    wanted: Representation,
    headers: dict[str, str],
) -> web.StreamResponse:
    """A converted result, with ranges like the stored one's.

    Its length is known once the conversion has been encoded whole (by an
    earlier download, or now for a range); until then a whole answer is sent
    chunked.
    """
    jobs = request.app[JOBS]
    etag = conversion_etag(stored.etag, wanted)  # known without reading the conversion
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers={"ETag": etag})
    conversion = await jobs.conversion(job, wanted, stored)
    headers |= {"Accept-Ranges": "bytes", "ETag": etag}
    try:
        size = conversion.size
        if size is None and _range_asked(request, etag) and _one_range(request):
            size = await jobs.measure(
                job, conversion, request.app[METRICS].job_converted_series.inc
            )
        if size is None:
            start, end, code = 0, 0, 200
        else:
            start, end, code = _byte_range(request, size, etag, headers)
        return await _stream_converted(
            request,
            job,
            wanted,
            jobs.converted(job, conversion, (start, end) if code == 206 else None),
            web.StreamResponse(status=code, headers=headers),
            None if size is None else end - start,
        )
    finally:
        request.app[METRICS].job_converted_series.inc(conversion.encoded)


async def _stream_converted(
    request: web.Request,
    job: Job,
    wanted: Representation,
    parts: AsyncGenerator[bytes, None],
    response: web.StreamResponse,
    length: int | None,
) -> web.StreamResponse:
    async with contextlib.aclosing(parts) as chunks:
        first = await anext(chunks, None)  # an expired result is a 404 before any byte is sent
        if length is None:
            response.enable_chunked_encoding()
        else:
            response.content_length = length
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        if first is not None:
            await response.write(first)
        try:
            async for chunk in chunks:
                await response.write(chunk)
        except AcechartError as exc:
            # The status line is out: cutting the connection is the one honest signal
            # left, so the client sees an incomplete body rather than a short document
            # (or a keep-alive connection that never ends).
            logger.error(
                "job %s: conversion to %s (%s) failed mid-stream: %s",
                job.id,
                wanted.format,
                wanted.layout,
                exc,
            )
            if request.transport is not None:
                request.transport.close()
            return response
    await response.write_eof()
    return response


class RangeNotSatisfiable(web.HTTPRequestRangeNotSatisfiable):
    """416 for a range past the end of the result, with its size in Content-Range."""

    def __init__(self, size: int, etag: str) -> None:
        super().__init__(headers={"Content-Range": f"bytes */{size}", "ETag": etag})
