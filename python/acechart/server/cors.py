"""CORS for browser dashboards on other origins, including OPTIONS preflight.

Only configured origins (`cors_origins`, `*` for any) get CORS headers. A
preflight is answered with every method the path's routes have (GET and HEAD
of the data routes, POST of `/api/timeseries` and `/api/jobs`, DELETE of a
job, ...), as the router resolved them; a path no route has is a 404 like any
other request. Every header a response of the service may carry beyond the
CORS-safelisted ones is exposed, so a dashboard can read cache status,
timing, request id, job location, byte ranges and retry hints. Credentials
are never allowed: the API authenticates with a token header, not cookies.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

__all__ = ["ALLOW_HEADERS", "EXPOSE_HEADERS", "allowed_methods", "cors_middleware"]

ALLOW_HEADERS = (
    "X-ACE-Token, Authorization, Accept, Content-Type, If-None-Match, If-Range, Range, "
    "Prefer, X-Request-Id, Last-Event-ID"
)
#: Every header the service sets that a browser hides unless it is listed.
EXPOSE_HEADERS = (
    "X-Cache-Status, X-Cache-Source, X-Processing-Time, X-Data-Samples, X-Request-Id, "
    "Location, ETag, Content-Range, Accept-Ranges, Content-Disposition, Content-Encoding, "
    "Retry-After, Warning, Age, Allow, Vary"
)
MAX_AGE_S = 600


def allowed_methods(request: web.Request) -> list[str] | None:
    """The methods the routes of the request's path allow (OPTIONS included), or None when
    no route has the path."""
    match = request.match_info
    problem = match.http_exception
    if isinstance(problem, web.HTTPMethodNotAllowed):
        methods = set(problem.allowed_methods)
    elif problem is None:
        methods = {request.method}
    else:
        return None
    return sorted(methods | {"OPTIONS"})


def cors_middleware(origins: tuple[str, ...]) -> Middleware:
    allow_any = "*" in origins
    allowed = frozenset(o.rstrip("/") for o in origins)

    def allow_origin(origin: str) -> str | None:
        if allow_any:
            return "*"
        return origin if origin in allowed else None

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None:
            return await handler(request)
        value = allow_origin(origin)
        methods = None
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            methods = allowed_methods(request)
        if methods is not None:
            response: web.StreamResponse = web.Response(status=204)
            if value is not None:
                response.headers.update(
                    {
                        "Access-Control-Allow-Methods": ", ".join(methods),
                        "Access-Control-Allow-Headers": ALLOW_HEADERS,
                        "Access-Control-Max-Age": str(MAX_AGE_S),
                    }
                )
        else:
            response = await handler(request)
        if value is not None:
            response.headers["Access-Control-Allow-Origin"] = value
            if methods is None:
                response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            if value != "*":
                response.headers.add("Vary", "Origin")
        return response

    return cors
