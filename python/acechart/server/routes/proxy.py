"""Any other GET (or HEAD) under /api/: passed to the origin unchanged, with the caller's token.

The old Worker forwarded every `/api/...` path to the ACE API, so an existing
client may call routes acechart does not implement itself (`/api/points/{name}/timeseries`,
`/api/sites/{site}/timeseries`, ...). Those are sent on as they came, never
answered with a 404 of our own:

- the path under `/api/` becomes the same path under the origin's base URL,
  byte for byte (percent-encoding kept), and the query string is passed
  through unchanged;
- the path is refused (400) if any segment is `.` or `..` (also
  percent-encoded, also after decoding twice, also hidden behind an encoded
  `/` or `\\`), if it has an empty segment (`//`), or a control character; it
  is appended to the configured origin, and the URL built is checked to have
  the origin's scheme, host, port and path prefix, so no request leaves for
  another host or climbs out of the origin's API;
- the caller's token (`X-ACE-Token` or Bearer) is sent as `Authorization:
  Bearer`, with `Accept` and the conditional headers; nothing else of the
  request (cookies, other headers) is;
- the answer's status, body and `Content-Type` (and `ETag`, `Last-Modified`,
  `Cache-Control`, `Retry-After`, `Location`, `Content-Disposition`) come
  back unchanged, the body decompressed and compressed again for the client;
- an answer larger than `proxy_max_bytes` is a 502, one slower than
  `proxy_timeout_s` a 504, a connection failure a 502 (the seed's JSON
  errors). Redirects are not followed.

A GET on a path one of acechart's own routes has with other methods (`/api/jobs`)
is a 405, not passed on. The rate limit applies per token like on every route.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from yarl import URL

from acechart.errors import BadRequest, OriginTimeout, OriginUnavailable
from acechart.server.errors import own_methods
from acechart.server.keys import INFO, RUNTIME, SETTINGS
from acechart.server.pipeline import identify
from acechart.server.respond import body_response

__all__ = ["PREFIX", "handle", "origin_url"]

logger = logging.getLogger(__name__)

PREFIX = "/api/"
_FORWARDED = ("Accept", "Accept-Language", "If-None-Match", "If-Modified-Since")
_RETURNED = (
    "ETag",
    "Last-Modified",
    "Cache-Control",
    "Retry-After",
    "Location",
    "Content-Disposition",
)
_CHUNK = 64 * 1024


def origin_url(base: str, raw_path: str) -> URL:
    """The origin URL for a request target under `/api/` (path and query, still encoded);
    `BadRequest` for a path that would leave the origin's API."""
    path, sep, query = raw_path.partition("?")
    if not path.startswith(PREFIX) or "#" in raw_path:
        raise BadRequest("the path must lie under /api/", parameter="path")
    tail = path[len(PREFIX) :]
    segments = tail.split("/")
    for i, segment in enumerate(segments):
        if not segment and i != len(segments) - 1:
            raise BadRequest("the path must not contain an empty segment (//)", parameter="path")
        _check_segment(segment)
    root = URL(base.rstrip("/"))
    target = URL(f"{str(root).rstrip('/')}/{tail}{sep}{query}", encoded=True)
    prefix = root.raw_path.rstrip("/") + "/"
    if (
        target.scheme != root.scheme
        or target.host != root.host
        or target.port != root.port
        or not target.raw_path.startswith(prefix)
    ):
        raise BadRequest("the path must stay inside the origin's API", parameter="path")
    return target


def _check_segment(segment: str) -> None:
    decoded = segment
    for _ in range(3):
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    if any(ord(c) < 32 or ord(c) == 127 for c in decoded):
        raise BadRequest("the path must not contain control characters", parameter="path")
    parts = decoded.replace("\\", "/").split("/")
    if any(part in (".", "..") for part in parts):
        raise BadRequest("the path must not contain . or .. segments", parameter="path")


async def handle(request: web.Request) -> web.Response:
    app = request.app
    own = await own_methods(request)
    if own:
        raise web.HTTPMethodNotAllowed(request.method, sorted(own))
    settings = app[SETTINGS]
    url = origin_url(settings.origin_url, request.raw_path)
    token, _ = await identify(request, "proxy")
    info = request[INFO]
    info.cache_status, info.cache_source = "MISS", "ORIGIN"
    headers = {"Authorization": f"Bearer {token}"}
    for name in _FORWARDED:
        value = request.headers.get(name)
        if value is not None:
            headers[name] = value
    limit = settings.proxy_max_bytes
    timeout = aiohttp.ClientTimeout(total=settings.proxy_timeout_s)
    session = app[RUNTIME].origin.session
    try:
        async with session.get(
            url, headers=headers, timeout=timeout, allow_redirects=False
        ) as resp:
            if resp.content_length is not None and resp.content_length > limit:
                raise _too_big(limit)
            body = bytearray()
            async for chunk in resp.content.iter_chunked(_CHUNK):
                body += chunk
                if len(body) > limit:
                    raise _too_big(limit)
            status = resp.status
            content_type = resp.headers.get("Content-Type", "application/octet-stream")
            returned = {n: resp.headers[n] for n in _RETURNED if n in resp.headers}
    except TimeoutError:
        raise OriginTimeout(
            f"the origin did not answer {url.path} within {settings.proxy_timeout_s:g} s"
        ) from None
    except aiohttp.ClientError as exc:
        raise OriginUnavailable(f"connection to origin failed: {type(exc).__name__}") from None
    returned |= {"X-Cache-Status": "MISS", "X-Cache-Source": "ORIGIN"}
    response = await body_response(request, bytes(body), content_type, returned)
    response.set_status(status)
    return response


def _too_big(limit: int) -> OriginUnavailable:
    return OriginUnavailable(
        f"the origin's answer is larger than {limit} bytes (ACECHART_PROXY_MAX_BYTES)",
        origin_status=200,
    )
