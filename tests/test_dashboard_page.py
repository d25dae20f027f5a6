"""The dashboard's page and files as the service serves them (the browser tests drive them).

Everything the page loads comes from the service itself: its script and styles and the
vendored ECharts and @msgpack/msgpack builds with their licences, so it works offline.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from acechart.server.routes.dashboard import ASSETS, CSP
from tests.conftest import Sim
from tests.server_helpers import ClientFactory, Service, start_service

ECHARTS_VERSION = "6.1.0"
MSGPACK_VERSION = "3.1.3"


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path) -> Service:
    return await start_service(aiohttp_client, sim, tmp_path)


async def test_the_page_loads_only_its_own_files(svc: Service) -> None:
    resp = await svc.get("/", token=None)
    assert resp.status == 200 and resp.content_type == "text/html"
    assert resp.headers["Content-Security-Policy"] == CSP
    assert "script-src 'self';" in CSP and "connect-src 'self'" in CSP
    page = await resp.text()
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts == [
        "/static/vendor/echarts.min.js",
        "/static/vendor/msgpack.min.js",
        "/static/dashboard.js",
    ]
    assert "<script>" not in page  # no inline script: the CSP forbids it
    for text in (page, ASSETS["dashboard.js"][0].decode(), ASSETS["dashboard.css"][0].decode()):
        assert "http://" not in text and "https://" not in text  # nothing from a CDN


async def test_the_script_asks_the_api_as_the_dashboard_needs(svc: Service) -> None:
    script = ASSETS["dashboard.js"][0].decode()
    for needle in (
        "/api/timeseries", "/api/aggregations", "/api/sites", "/api/points", "/api/charts",
        "maxPoints", "minmaxlttb", 'layout: "columns"', "MessagePack.decode",
        "left: 8 + margins.left",
        '"X-ACE-Token"', "statusUrl", "Retry-After",
    ):  # fmt: skip
        assert needle in script, needle
    # tz=site is sent by default (the site's zone); stat only when not the default.
    assert 'if (state.tz === "site")' in script and 'common.tz = "site"' in script
    assert 'state.stat === "avg"' in script


async def test_vendored_libraries_and_their_licences(svc: Service) -> None:
    echarts = await svc.get("/static/vendor/echarts.min.js", token=None)
    assert echarts.status == 200
    assert echarts.headers["Content-Type"].startswith("text/javascript")
    assert f'version:"{ECHARTS_VERSION}"' in await echarts.text()
    assert echarts.headers["Cache-Control"] == "public, max-age=86400"
    msgpack = await svc.get("/static/vendor/msgpack.min.js", token=None)
    assert msgpack.status == 200 and "MessagePack" in await msgpack.text()
    licences = {
        "vendor/echarts.LICENSE.txt": "Apache License",
        "vendor/echarts.NOTICE.txt": "Apache ECharts",
        "vendor/echarts.LICENSE-d3.txt": "Mike Bostock",
        "vendor/msgpack.LICENSE.txt": "MessagePack",
    }
    for name, words in licences.items():
        resp = await svc.get(f"/static/{name}", token=None)
        assert resp.status == 200 and words in await resp.text(), name
    readme = await (await svc.get("/static/vendor/README.md", token=None)).text()
    assert (
        f"`echarts` {ECHARTS_VERSION}" in readme
        and f"`@msgpack/msgpack` {MSGPACK_VERSION}" in readme
    )


async def test_files_are_revalidated_and_compressed(svc: Service) -> None:
    first = await svc.get("/static/dashboard.js", token=None)
    assert first.headers["Cache-Control"] == "no-cache"
    etag = first.headers["ETag"]
    again = await svc.get("/static/dashboard.js", token=None, headers={"If-None-Match": etag})
    assert again.status == 304
    raw = await svc.client.get(
        "/static/vendor/echarts.min.js", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert raw.headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(await raw.read())
    assert body == ASSETS["vendor/echarts.min.js"][0]


async def test_only_the_listed_files_are_served(svc: Service) -> None:
    for path in (
        "/static/nope.js", "/static/../routes/dashboard.py", "/static/%2e%2e/app.py",
        "/static/dashboard.html", "/static/vendor", "/static/vendor/",
    ):  # fmt: skip
        resp = await svc.get(path, token=None)
        assert resp.status == 404, path
        assert (await resp.json())["error"] == "not_found"
