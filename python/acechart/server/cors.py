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

__all__ = ["ALLOW_HEADERS", "EXPOSE_HEADERS", "Cors", "allowed_methods"]

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


class Cors:
    """The CORS policy of the configured origins, applied by the front middleware."""

    def __init__(self, origins: tuple[str, ...]) -> None:
        self.allow_any = "*" in origins
        self.allowed = frozenset(o.rstrip("/") for o in origins)

    def allow_origin(self, origin: str) -> str | None:
        if self.allow_any:
            return "*"
        return origin if origin in self.allowed else None

    def preflight(self, request: web.Request) -> web.Response | None:
        """The answer to a CORS preflight (an OPTIONS with `Access-Control-Request-Method`
        from an `Origin`, at a path some route has); None for any other request."""
        origin = request.headers.get("Origin")
        if (
            origin is None
            or request.method != "OPTIONS"
            or "Access-Control-Request-Method" not in request.headers
        ):
            return None
        methods = allowed_methods(request)
        if methods is None:
            return None
        response = web.Response(status=204)
        value = self.allow_origin(origin)
        if value is not None:
            response.headers.update(
                {
                    "Access-Control-Allow-Methods": ", ".join(methods),
                    "Access-Control-Allow-Headers": ALLOW_HEADERS,
                    "Access-Control-Max-Age": str(MAX_AGE_S),
                }
            )
            self._allow(response, value)
        return response

    def decorate(self, request: web.Request, response: web.StreamResponse) -> None:
        """The CORS headers of an answer (errors included) to a request from an allowed
        `Origin`."""
        origin = request.headers.get("Origin")
        if origin is None:
            return
        value = self.allow_origin(origin)
        if value is not None:
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            self._allow(response, value)

    @staticmethod
    def _allow(response: web.StreamResponse, value: str) -> None:
        response.headers["Access-Control-Allow-Origin"] = value
        if value != "*":
            response.headers.add("Vary", "Origin")
