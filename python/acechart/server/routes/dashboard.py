"""GET /: the dashboard, and GET /static/{name}: its script, styles and vendored libraries.

The page is ECharts over the API (MessagePack columns, decoded by the vendored
`@msgpack/msgpack`), with saved charts. Everything it loads comes from this
service: the files are read from the package once, at import, and only those
names are served (no path is ever joined from the request), each with a strong
ETag and compressed like any answer. The token is typed in or passed in the
URL fragment (`/#token=...`), which browsers never send to the server, and is
kept in the browser's local storage; the page's state is in its query string.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from aiohttp import web

from acechart.errors import NotFound
from acechart.server.headers import etag_matches
from acechart.server.respond import body_response

__all__ = ["ASSETS", "asset", "index"]

_STATIC = resources.files("acechart.server").joinpath("static")
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
}


def _load(name: str) -> tuple[bytes, str, str]:
    data = _STATIC.joinpath(name).read_bytes()
    kind = _TYPES[name[name.rindex(".") :]]
    return data, kind, f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"'


#: Every file `/static/` serves: name -> (bytes, content type, ETag).
ASSETS: dict[str, tuple[bytes, str, str]] = {
    name: _load(name)
    for name in (
        "dashboard.js",
        "dashboard.css",
        "vendor/echarts.min.js",
        "vendor/echarts.LICENSE.txt",
        "vendor/echarts.NOTICE.txt",
        "vendor/echarts.LICENSE-d3.txt",
        "vendor/msgpack.min.js",
        "vendor/msgpack.LICENSE.txt",
        "vendor/README.md",
    )
}

_PAGE = _STATIC.joinpath("dashboard.html").read_bytes()

#: Scripts and styles only from here; thumbnails are fetched with the token and shown
#: as blob: URLs; ECharts styles its elements inline.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


async def index(request: web.Request) -> web.Response:
    return web.Response(
        body=_PAGE,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP},
    )


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    found = ASSETS.get(name)
    if found is None:
        raise NotFound(f"no such file: /static/{name[:100]}")
    data, kind, etag = found
    # Vendored libraries never change under a name; the page's own files may, so they
    # are revalidated (their ETag makes that a 304).
    cache = "public, max-age=86400" if name.startswith("vendor/") else "no-cache"
    headers = {"Cache-Control": cache, "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return await body_response(request, data, kind, headers)
