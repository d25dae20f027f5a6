"""The one middleware every request passes: id and log line, CORS, the JSON body bound,
and errors rendered as the seed's bodies.

One middleware rather than a chain of four: aiohttp wraps each middleware in a
coroutine of its own, and on a cached answer the chain cost more than the
cache lookup. The steps keep the chain's order, outermost first:

1. the request id and the `RequestInfo` handlers fill (`requestlog.new_info`);
2. a CORS preflight is answered here (`cors.Cors`, when origins are configured);
3. a JSON body is bounded in size and nesting before any route parses it;
4. the route runs; what it raises becomes the seed's JSON error (`errors.render_error`);
5. the answer gets its CORS headers and `X-Request-Id`, and after it is made,
   metrics and the log line record status and time (499: the client went away).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from acechart.server.cors import Cors
from acechart.server.errors import render_error
from acechart.server.keys import INFO
from acechart.server.lane import Lane
from acechart.server.metrics import Metrics
from acechart.server.params import guard_json_body
from acechart.server.prepared import CachedResponse
from acechart.server.requestlog import endpoint_of, log_request, new_info

__all__ = ["front_middleware"]

_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))


def front_middleware(
    metrics: Metrics, cors: Cors | None = None, lane: Lane | None = None
) -> Middleware:
    """The service's middleware, recording into `metrics` (the app's); `cors`: the policy
    of the configured origins, if any; `lane`: the hit lane, which answers the data GETs
    it has tickets for before their route (and is given the tickets routes leave)."""
    record_response = metrics.record_response

    @web.middleware
    async def front(request: web.Request, handler: Handler) -> web.StreamResponse:
        info = new_info(request)
        request[INFO] = info
        status = 499
        response: web.StreamResponse | None = None
        try:
            preflight = cors.preflight(request) if cors is not None else None
            if preflight is not None:
                response = preflight
            else:
                try:
                    if request.method in _BODY_METHODS:
                        await guard_json_body(request)
                    response = await lane.answer(request, info) if lane is not None else None
                    if response is None:
                        response = await handler(request)
                        if info.ticket is not None and lane is not None:
                            lane.file(request, info.ticket)
                except Exception as exc:
                    response = await render_error(request, exc)
                    if response is None:  # a redirect: aiohttp sends it
                        status = getattr(exc, "status", status)
                        raise
                if cors is not None:
                    cors.decorate(request, response)
            status = response.status
            if type(response) is CachedResponse:
                response.request_id = info.request_id
            else:
                response.headers["X-Request-Id"] = info.request_id
            return response
        finally:
            elapsed = info.elapsed_ms()
            record_response(endpoint_of(request), status, elapsed / 1000.0)
            size = info.size
            if size is None and response is not None:
                size = response.content_length
            log_request(request, info, status, elapsed, size, cancelled=status == 499)

    return front
