"""GET /: a one-page dashboard that charts a point with fetch and a canvas (no CDN, no build).

It shows what a browser client of the API does: search the catalogue, ask
for a chart-sized answer (`maxPoints` = the canvas width) and read the cache
headers. The token is typed in or passed in the URL fragment
(`/#token=...`), which browsers never send to the server.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

__all__ = ["index"]

_PAGE = resources.files("acechart.server").joinpath("static/dashboard.html").read_bytes()


async def index(request: web.Request) -> web.Response:
    return web.Response(
        body=_PAGE,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
            "style-src 'unsafe-inline'",
        },
    )
