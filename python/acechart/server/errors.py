"""The one error middleware: every failure becomes the seed's JSON error body.

`AcechartError`s carry their status, code and extra fields; aiohttp's own HTTP
errors (unknown route, wrong method, a body past the size limit, a byte range
past the end) get the same shape; anything else is a
bug, logged with its traceback under the request id and answered as a plain
500 that quotes the id and shows nothing of the code.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from acechart.errors import AcechartError, OriginError
from acechart.server.keys import INFO

__all__ = ["error_middleware", "error_response"]

logger = logging.getLogger(__name__)

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


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AcechartError as exc:
        if exc.status >= 500:
            log = logger.warning if isinstance(exc, OriginError) else logger.error
            log("%s %s -> %d %s: %s", request.method, request.path, exc.status, exc.code, exc)
        return error_response(exc.status, exc.to_body())
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
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
        return response
    except Exception:
        info = request.get(INFO)
        rid = info.request_id if info is not None else "-"
        logger.exception("unhandled error in %s %s (request %s)", request.method, request.path, rid)
        return error_response(
            500,
            {
                "error": "internal_error",
                "message": f"internal error; quote request id {rid} when reporting it",
                "requestId": rid,
            },
        )
