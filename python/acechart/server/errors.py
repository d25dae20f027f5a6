"""The one place failures become HTTP: every error becomes the seed's JSON error body.

`AcechartError`s carry their status, code and extra fields; aiohttp's own HTTP
errors (unknown route, wrong method, a body past the size limit, a byte range
past the end) get the same shape; anything else is a
bug, logged with its traceback under the request id and answered as a plain
500 that quotes the id and shows nothing of the code. The logged traceback has
every credential the request carried (`X-ACE-Token`, `Authorization`,
`Cookie`, in any quoting) replaced by `[redacted]`: an exception message may
quote what it choked on.
"""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from aiohttp import web

from acechart.errors import AcechartError, OriginError
from acechart.server.keys import INFO, RUNTIME

__all__ = ["PASS_THROUGH", "error_response", "own_methods", "render_error"]

logger = logging.getLogger(__name__)

PASS_THROUGH = "proxy"
"""The name of the catch-all route that passes other GETs under /api/ to the origin."""

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    413: "request_too_large",
    414: "uri_too_long",
    416: "range_not_satisfiable",
    431: "headers_too_large",
}

#: Headers of aiohttp's own errors that say something the JSON body does not.
_KEPT_HEADERS = ("Allow", "Content-Range", "ETag", "Retry-After")
#: Request headers whose values never reach a log line.
_SECRET_HEADERS = ("X-ACE-Token", "Authorization", "Proxy-Authorization", "Cookie")


async def own_methods(request: web.Request) -> frozenset[str]:
    """The methods acechart's own routes (all but the pass-through) take at the request's
    path; empty when none has it. A GET on `/api/jobs` (a POST route of ours) is then a
    405 with these in `Allow`, not a question to the origin about a path of ours."""
    methods: set[str] = set()
    for resource in request.app.router.resources():
        if resource.name == PASS_THROUGH:
            continue
        match, allowed = await resource.resolve(request)
        if match is not None:
            methods.add(request.method)
        methods |= allowed
    return frozenset(methods)


def redacted(text: str, request: web.BaseRequest) -> str:
    """`text` with every credential of `request` (whole header values and the token part
    of `Bearer ...`, as they are and as repr() or escapes would quote them) blanked."""
    found: set[str] = set()
    for name in _SECRET_HEADERS:
        for value in request.headers.getall(name, []):
            found.add(value)
            found.update(part for part in value.replace(";", " ").split() if len(part) >= 4)
    variants: set[str] = set()
    for secret in found:
        if len(secret) < 4:
            continue
        variants.update({secret, repr(secret)[1:-1], ascii(secret)[1:-1]})
        variants.add(secret.encode("utf-8", "surrogateescape").decode("latin-1"))
        variants.add(repr(secret.encode("utf-8", "surrogateescape"))[2:-1])
    for secret in sorted(variants, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text


def error_response(status: int, body: dict[str, Any]) -> web.Response:
    """A JSON error; `retryAfter` in the body is also sent as `Retry-After`."""
    headers = {"Cache-Control": "no-store"}
    if "retryAfter" in body and body["retryAfter"] is not None:
        headers["Retry-After"] = str(body["retryAfter"])
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


async def render_error(request: web.Request, error: Exception) -> web.StreamResponse | None:
    """The response for `error` raised while answering `request`; None for an aiohttp
    HTTP exception that is no error (a redirect), which the caller raises on."""
    try:
        raise error
    except AcechartError as exc:
        runtime = request.app.get(RUNTIME)
        if runtime is not None:
            # The origin client words its errors without the origin's address; this
            # catches any that another path (a proxy, a catalogue read) let through.
            runtime.origin.hide_address(exc)
        if exc.status >= 500:
            log = logger.warning if isinstance(exc, OriginError) else logger.error
            log(
                "%s %s -> %d %s: %s",
                request.method,
                request.path,
                exc.status,
                exc.code,
                redacted(str(exc), request),
            )
        return error_response(exc.status, exc.to_body())
    except web.HTTPException as exc:
        if exc.status < 400:
            return None
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.reason
        if exc.status == 404:
            message = f"no such endpoint: {request.path}"
        elif exc.status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        elif exc.status == 416:
            message = "the byte range starts past the end of the result"
        elif exc.status == 413:
            message = f"the request body is too large ({(exc.text or '').strip()})"
        response = error_response(exc.status, {"error": code, "message": message})
        for name in _KEPT_HEADERS:
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        if exc.status == 405:
            own = await own_methods(request)
            if own:
                response.headers["Allow"] = ",".join(sorted(own))
        return response
    except Exception as exc:
        info = request.get(INFO)
        rid = info.request_id if info is not None else "-"
        logger.error(
            "unhandled error in %s %s (request %s)\n%s",
            request.method,
            request.path,
            rid,
            redacted("".join(traceback.format_exception(exc)), request).rstrip(),
        )
        return error_response(
            500,
            {
                "error": "internal_error",
                "message": f"internal error; quote request id {rid} when reporting it",
                "requestId": rid,
            },
        )
