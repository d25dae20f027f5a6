"""An encoded answer -> the HTTP response: cache headers, ETag and 304, compression.

Headers follow the seed (X-Cache-Status, X-Cache-Source, X-Processing-Time,
X-Data-Samples, Cache-Control by data age). Cache-Control says `private`
where the seed said `public`: answers depend on the caller's token, and a
shared HTTP cache in front of acechart would hand them to anyone. The ETag is
weak because one answer has several content codings; `If-None-Match` is
compared weakly, as RFC 9110 asks for it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from acechart.server.compress import compress_async
from acechart.server.edge_cache import Entry, Slot
from acechart.server.headers import choose_coding, etag_matches
from acechart.server.keys import EDGE, INFO, METRICS, SETTINGS
from acechart.server.prepared import CachedResponse, serialise_headers

__all__ = [
    "REVALIDATION_FAILED",
    "STALE",
    "answer_block",
    "answer_headers",
    "body_response",
    "cached_coding",
    "entry_headers",
    "json_response",
    "partial_warning",
    "respond",
]

STALE = '110 - "Response is Stale"'
REVALIDATION_FAILED = '111 - "Revalidation Failed"'


def partial_warning(missing: Mapping[str, Sequence[object]]) -> str:
    """The Warning of a partial answer (RFC 9111's 199, miscellaneous): what it lacks."""
    ranges = sum(len(r) for r in missing.values())
    return (
        f'199 - "Partial answer: the origin failed; {ranges} range(s) of {len(missing)}'
        ' point(s) missing (metadata.missing, X-Data-Missing)"'
    )


VARY = "Accept, Accept-Encoding"


def entry_headers(content_type: str, etag: str, samples: int, **extra: str) -> dict[str, str]:
    """The headers every response of one entry shares, built once when it is stored."""
    return {
        "Content-Type": content_type,
        "ETag": etag,
        "Vary": VARY,
        "X-Data-Samples": str(samples),
        **extra,
    }


async def respond(
    request: web.Request,
    key: Hashable,
    entry: Entry,
    *,
    cache_status: str,
    cache_source: str,
    size: str,
    age_s: float = 0.0,
    warning: str | None = None,
) -> web.StreamResponse:
    app = request.app
    info = request[INFO]
    info.cache_status, info.cache_source, info.samples = cache_status, cache_source, entry.samples
    app[METRICS].record_answer(size, info.format or "json", cache_status, cache_source)

    max_age = 0 if warning else max(0, int(entry.max_age_s - age_s))
    age = int(age_s)
    asked = request.headers
    if "If-None-Match" in asked and etag_matches(asked["If-None-Match"], entry.etag):
        headers = answer_headers(entry, cache_status, cache_source, max_age, age, warning)
        headers.pop("Content-Type", None)
        headers["X-Processing-Time"] = f"{info.elapsed_ms():.1f}ms"
        return web.Response(status=304, headers=headers)

    body, coding = cached_coding(
        entry, asked.get("Accept-Encoding", ""), app[SETTINGS].compress_min_bytes
    )
    if body is None:
        assert coding is not None
        packed = await compress_async(entry.body, coding)
        app[EDGE].add_variant(key, entry, coding, packed)
        body, coding = (packed, coding) if len(packed) < len(entry.body) else (entry.body, None)
    info.size = len(body)
    fallback = functools.partial(
        answer_headers, entry, cache_status, cache_source, max_age, age, warning, coding
    )
    return CachedResponse(
        body,
        answer_block(entry, (cache_status, cache_source, coding, warning), max_age, age, len(body)),
        fallback,
        processing=f"{info.elapsed_ms():.1f}ms",
        plain=not app.on_response_prepare,
    )


def answer_headers(
    entry: Entry,
    cache_status: str,
    cache_source: str,
    max_age: int,
    age: int,
    warning: str | None,
    coding: str | None = None,
) -> dict[str, str]:
    """The headers of an answer from `entry` (its body in `coding`, if any) but the
    per-request ones."""
    headers = dict(entry.headers)
    headers["Cache-Control"] = (
        f"private, max-age={max_age}, stale-while-revalidate={int(entry.stale_s)}, "
        f"stale-if-error={int(entry.error_s)}"
    )
    headers["X-Cache-Status"] = cache_status
    headers["X-Cache-Source"] = cache_source
    if age >= 1:
        headers["Age"] = str(age)
    if warning:
        headers["Warning"] = warning
    if coding is not None:
        headers["Content-Encoding"] = coding
    return headers


def answer_block(entry: Entry, slot: Slot, max_age: int, age: int, length: int) -> bytes | None:
    """The serialised headers of `slot`'s answers (cache status, source, coding, warning)
    from `entry` for this `max_age` and `age` (both change once a second), but the
    per-request ones: made once, kept until they change; None when they cannot be
    serialised (`serialise_headers`)."""
    kept = entry.blocks.get(slot)
    if kept is not None and kept[0] == max_age and kept[1] == age:
        return kept[2]
    cache_status, cache_source, coding, warning = slot
    made = answer_headers(entry, cache_status, cache_source, max_age, age, warning, coding)
    made["Content-Length"] = str(length)
    block = serialise_headers(made.items())
    entry.blocks[slot] = (max_age, age, block)
    return block


def cached_coding(
    entry: Entry, accept_encoding: str, min_bytes: int
) -> tuple[bytes | None, str | None]:
    """The body of `entry` to send and its coding: a coding the client takes whose variant
    is smaller, else the identity. The body is None when the variant of the coding to use
    is not made yet (`respond` makes it)."""
    body = entry.body
    if len(body) < min_bytes:
        return body, None
    coding = choose_coding(accept_encoding)
    if coding is None:
        return body, None
    packed = entry.variants.get(coding)
    if packed is None:
        return None, coding
    return (packed, coding) if len(packed) < len(body) else (body, None)


async def json_response(
    request: web.Request, document: Any, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON document made per request (not cached), compressed like data answers."""
    body = json.dumps(document, ensure_ascii=False).encode()
    return await body_response(request, body, "application/json; charset=utf-8", headers)


async def body_response(
    request: web.Request, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> web.Response:
    """An encoded body made per request (not cached), compressed like data answers."""
    out: CIMultiDict[str] = CIMultiDict(headers or {})
    out["Content-Type"] = content_type
    if len(body) >= request.app[SETTINGS].compress_min_bytes:
        coding = choose_coding(request.headers.get("Accept-Encoding", ""))
        if coding is not None:
            body = await compress_async(body, coding)
            out["Content-Encoding"] = coding
    return web.Response(body=body, headers=out)
