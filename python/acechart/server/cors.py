"""CORS for browser dashboards on other origins, including OPTIONS preflight.

Only configured origins (`cors_origins`, `*` for any) get CORS headers; the
custom response headers (cache status, timing, sample count, request id) are
exposed so a dashboard can show them. Credentials are never allowed: the API
authenticates with a token header, not cookies.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

__all__ = ["cors_middleware"]

ALLOW_HEADERS = (
    "X-ACE-Token, Authorization, Accept, Content-Type, If-None-Match, Prefer, X-Request-Id"
)
EXPOSE_HEADERS = (
    "X-Cache-Status, X-Cache-Source, X-Processing-Time, X-Data-Samples, X-Request-Id, "
    "ETag, Retry-After, Warning, Location, Content-Disposition"
)
MAX_AGE_S = 600


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
        preflight = (
            request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        )
        if preflight:
            response: web.StreamResponse = web.Response(status=204)
            if value is not None:
                response.headers.update(
                    {
                        "Access-Control-Allow-Methods": "GET, OPTIONS",
                        "Access-Control-Allow-Headers": ALLOW_HEADERS,
                        "Access-Control-Max-Age": str(MAX_AGE_S),
                    }
                )
        else:
            response = await handler(request)
        if value is not None:
            response.headers["Access-Control-Allow-Origin"] = value
            if not preflight:
                response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            if value != "*":
                response.headers.add("Vary", "Origin")
        return response

    return cors
