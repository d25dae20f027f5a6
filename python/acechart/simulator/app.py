"""An ACE-compatible API over generated data: `acechart simulate`, tests, benchmarks, demo.

By default (`mode="realistic"`) it behaves as the real ACE API does in the
field (ARCHITECTURE.md, "The origin"): the site-wide paginated route ignores
`point_names` and pages through every point of the site, ordered by time then
point, each collection run sharing one naive microsecond timestamp; its cursor
is base64 JSON `{"offset", "timestamp"}` and stalls (comes back unchanged) when
a page starts and ends inside one timestamp; `page_size` and `per_page` are
strict enums (400); a bad token is a 500, an unknown or forbidden site a 403
with a `null` body; `POST /points/get_timeseries` is a 400.

`mode="idealised"` is the API a client would wish for, as tests of other
layers assume it: the point filter is honoured, each point has its own
whole-second phase, times end in `Z`, the cursor is exact (and bound to its
query), validation errors are 422s, a bad token a 401, an unknown site a 404.

Both check Bearer tokens per site and inject latency and faults on demand.
Data comes from `datagen` (nothing is stored) and pages are serialised by
`pagefmt` without a Python loop per sample, so the simulator is never what a
benchmark measures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from aiohttp import web

from acechart.settings import VALID_PAGE_SIZES
from acechart.simulator.cursor import Cursor, OffsetCursor, query_fingerprint
from acechart.simulator.datagen import DataSource, Rows, SiteTable
from acechart.simulator.faults import (
    STATUS_FAULTS,
    Fault,
    FaultInjector,
    FaultPlan,
    RequestLog,
    RequestRecord,
)
from acechart.simulator.pagefmt import PageRenderer, naive_time, page_body, samples_body
from acechart.simulator.settings import MODES, SimulatorSettings
from acechart.times import parse_iso_ms

__all__ = [
    "DEMO_TOKEN",
    "PER_PAGE_CHOICES",
    "SAMPLES_HEADER",
    "SIMULATOR",
    "RunningSimulator",
    "SimulatorConfig",
    "SimulatorState",
    "create_simulator_app",
    "run_simulator",
]

logger = logging.getLogger(__name__)

DEMO_TOKEN = "demo-token"
"""The token that reads every site when no tokens are configured."""

PER_PAGE_CHOICES: tuple[int, ...] = (2, 10, 20, 30, 40, 50, 100, 500, 1000, 10000, 100000)
"""`per_page` values the real API accepts for listings (others: 400)."""

_ALL_SITES = "*"
_MAX_PER_PAGE = 100
"""Largest `per_page` of the idealised API; the realistic one answers 500 above it for points."""
_UNPAGINATED_LIMIT_DEFAULT = 500_000
_EXECUTOR_ROWS = 5_000
T = TypeVar("T")

SAMPLES_HEADER = "X-Simulator-Samples"
"""Response header with the number of samples in a timeseries answer (for logs and tests)."""


@dataclass(frozen=True)
class SimulatorConfig:
    """What the simulator serves and how it misbehaves; see `SimulatorSettings` for each field."""

    mode: str = "realistic"
    seed: int = 1
    sites: tuple[str, ...] = ("ses_falls_city",)
    vav_count: int = 36
    cadence_s: int | None = None
    tokens: Mapping[str, frozenset[str]] = field(default_factory=dict, hash=False)
    now_ms: int | None = None
    max_page_size: int = 500_000
    exact_has_more: bool = True
    faults: FaultPlan = field(default_factory=FaultPlan, hash=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")

    @property
    def realistic(self) -> bool:
        return self.mode == "realistic"

    @classmethod
    def from_settings(cls, settings: SimulatorSettings) -> SimulatorConfig:
        return cls(
            mode=settings.mode,
            seed=settings.seed,
            sites=settings.sites,
            vav_count=settings.vav_count,
            cadence_s=settings.cadence_s,
            tokens=dict(settings.tokens),
            now_ms=None if settings.now is None else parse_iso_ms(settings.now),
            max_page_size=settings.max_page_size,
            exact_has_more=settings.exact_has_more,
            faults=FaultPlan(
                latency_s=settings.latency_s,
                jitter_s=settings.jitter_s,
                rate_limit_rate=settings.rate_limit_rate,
                retry_after_s=settings.retry_after_s,
                error_rate=settings.error_rate,
                drop_rate=settings.drop_rate,
                slow_body_s=settings.slow_body_s,
            ),
        )


class SimulatorState:
    """Everything a running simulator holds: data, renderers, tokens, faults, request log."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.data = DataSource(
            config.sites,
            config.seed,
            config.vav_count,
            realistic=config.realistic,
            cadence_s=config.cadence_s,
        )
        self.api: _Dialect = _Realistic() if config.realistic else _Idealised()
        self.renderers = {name: PageRenderer(t) for name, t in self.data.sites.items()}
        self.tokens: dict[str, frozenset[str]] = dict(config.tokens) or {
            DEMO_TOKEN: frozenset({_ALL_SITES})
        }
        self.faults = FaultInjector(config.faults, seed=config.seed)
        self.log = RequestLog()

    def now_ms(self) -> int:
        """The end of all data: the fixed `now_ms` of the config, else the wall clock."""
        if self.config.now_ms is not None:
            return self.config.now_ms
        return int(time.time() * 1000)

    def may_read(self, token: str, site: str) -> bool:
        sites = self.tokens.get(token, frozenset())
        return _ALL_SITES in sites or site in sites


SIMULATOR = web.AppKey("acechart_simulator", SimulatorState)


def create_simulator_app(config: SimulatorConfig | None = None) -> web.Application:
    """The simulator as an aiohttp application (state under the `SIMULATOR` key)."""
    state = SimulatorState(config or SimulatorConfig())
    app = web.Application(middlewares=[_faults_and_log])
    app[SIMULATOR] = state
    app.router.add_get("/sites", _list_sites)
    app.router.add_get("/sites/{site}", _get_site)
    app.router.add_get("/sites/{site}/configured_points", _configured_points)
    app.router.add_get("/sites/{site}/points", _configured_points)
    app.router.add_get("/sites/{site}/timeseries/paginated", _timeseries_paginated)
    app.router.add_get("/sites/{site}/timeseries", _site_timeseries)
    app.router.add_post("/points/get_timeseries", _points_timeseries)
    app.router.add_get(r"/points/{name:.+}/timeseries", _point_timeseries)
    return app


@dataclass(frozen=True)
class RunningSimulator:
    """A simulator listening on a real port: its base URL and its live state."""

    url: str
    state: SimulatorState


@asynccontextmanager
async def run_simulator(
    config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningSimulator]:
    """Serve the simulator in this event loop (port 0: any free port) until the block exits."""
    app = create_simulator_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        yield RunningSimulator(f"http://{bound_host}:{bound_port}", app[SIMULATOR])
    finally:
        await runner.cleanup()


# --- how each mode refuses -----------------------------------------------------------

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class _Reject(Exception):
    """Raised inside a handler to answer with `response` instead."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


class _Dialect:
    """The words of one mode's refusals; handlers raise what these return."""

    def error(self, status: int, message: str) -> web.Response:
        raise NotImplementedError

    def reject(self, status: int, message: str) -> _Reject:
        return _Reject(self.error(status, message))

    def bad_param(self, name: str, message: str) -> _Reject:
        raise NotImplementedError

    def no_token(self, message: str) -> _Reject:
        return self.reject(401, message)

    def bad_token(self) -> _Reject:
        raise NotImplementedError

    def unknown_site(self, name: str) -> _Reject:
        raise NotImplementedError

    def forbidden_site(self, name: str) -> _Reject:
        raise NotImplementedError

    def unknown_point(self, name: str) -> _Reject:
        return self.reject(404, f"Point {name} not found")

    def unhandled(self) -> _Reject:
        """What the real API answers when it raises: a bare 500."""
        return self.reject(500, "An unhandled exception occurred.")


class _Realistic(_Dialect):
    """The real API (flask-restx): `{"message"}` bodies, 400s for input, 500 for what it
    does not handle (a bad token, a malformed cursor, too large a listing), 403 null."""

    def error(self, status: int, message: str) -> web.Response:
        return web.json_response({"message": message}, status=status)

    def bad_param(self, name: str, message: str) -> _Reject:
        body = {"errors": {name: message}, "message": "Input payload validation failed"}
        return _Reject(web.json_response(body, status=400))

    def bad_token(self) -> _Reject:
        return self.unhandled()

    def unknown_site(self, name: str) -> _Reject:
        return self.forbidden_site(name)

    def forbidden_site(self, name: str) -> _Reject:
        return _Reject(web.json_response(None, status=403))


class _Idealised(_Dialect):
    """A tidy API: `{"code", "status", "message"}` bodies, 422 with `errors` for input."""

    def error(self, status: int, message: str) -> web.Response:
        body = {"code": status, "status": _REASONS.get(status, ""), "message": message}
        return web.json_response(body, status=status)

    def bad_param(self, name: str, message: str) -> _Reject:
        body = {
            "code": 422,
            "status": _REASONS[422],
            "message": f"{name}: {message}",
            "errors": {"query": {name: [message]}},
        }
        return _Reject(web.json_response(body, status=422))

    def bad_token(self) -> _Reject:
        return self.reject(401, "Invalid token")

    def unknown_site(self, name: str) -> _Reject:
        return self.reject(404, f"Site {name} not found")

    def forbidden_site(self, name: str) -> _Reject:
        return self.reject(403, f"Token may not read site {name}")


# --- middleware: faults, latency, request log --------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _faults_and_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[SIMULATOR]
    started = time.perf_counter()
    path = request.path
    fault = state.faults.decide(path)
    delay = state.faults.delay(path)
    if delay:
        await asyncio.sleep(delay)
    if fault == "hang":
        await asyncio.sleep(state.faults.plan.hang_s)
    response: web.StreamResponse
    if fault == "429":
        retry_after = state.faults.plan.retry_after_s
        response = state.api.error(429, "Rate limit exceeded")
        response.headers["Retry-After"] = _retry_after_text(retry_after)
    elif fault in ("502", "504"):
        response = _gateway_page(request, int(fault))
    elif fault in STATUS_FAULTS:
        response = state.api.error(int(fault), "Injected fault")
    else:
        try:
            response = await handler(request)
        except _Reject as reject:
            response = reject.response
    samples_text = response.headers.get(SAMPLES_HEADER)
    samples = int(samples_text) if samples_text is not None else None
    record = RequestRecord(
        method=request.method,
        path=path,
        params=dict(request.query),
        status=response.status,
        fault=fault,
        started_s=started,
        duration_s=time.perf_counter() - started,
        samples=samples,
    )
    state.log.add(record)
    slow_s = state.faults.plan.slow_body_s if state.faults.applies(path) else 0.0
    if fault == "slow" and not slow_s:
        slow_s = 1.0
    if isinstance(response, web.Response) and (fault in ("drop", "corrupt") or slow_s):
        return await _stream_faulty(request, response, fault, slow_s)
    return response


def _gateway_page(request: web.Request, status: int) -> web.Response:
    """What a gateway in front of the API answers when the API behind it fails: an HTML
    page naming the upstream it tried (as load balancers' error pages do), not JSON."""
    reason = _REASONS.get(status, "Error")
    upstream = request.host
    body = (
        f"<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1>"
        f"<p>The upstream server {upstream} (http://{upstream}{request.path}) did not answer."
        "</p></body></html>"
    )
    return web.Response(text=body, status=status, content_type="text/html")


def _retry_after_text(seconds: float) -> str:
    """Retry-After as whole seconds when whole, else a decimal (tests use short waits)."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


async def _stream_faulty(
    request: web.Request, response: web.Response, fault: Fault | None, slow_s: float
) -> web.StreamResponse:
    """Send a body in chunks: slowly (`slow_s`), cut off (`drop`) or halved (`corrupt`)."""
    body = response.body if isinstance(response.body, bytes) else b""
    if fault == "corrupt":
        body = body[: len(body) // 2]
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    cut = len(body) // 2 if fault == "drop" else len(body)
    chunks = 10 if slow_s else 1
    step = max(1, math.ceil(cut / chunks))
    try:
        await stream.prepare(request)
        for offset in range(0, cut, step):
            if slow_s:
                await asyncio.sleep(slow_s / chunks)
            await stream.write(body[offset : offset + step])
    except ConnectionResetError:
        # The client gave up mid-answer (its timeout, a cancelled fetch): as a real
        # gateway would, drop the connection without logging a server error.
        fault = "drop"
    if fault == "drop":
        if request.transport is not None:
            request.transport.abort()
        return stream
    await stream.write_eof()
    return stream


# --- auth and parameters ---------------------------------------------------------------


def _token(request: web.Request) -> str:
    """The Bearer token, known to the simulator (else 401, or the realistic 500)."""
    state = request.app[SIMULATOR]
    header = request.headers.get("Authorization")
    if header is None:
        raise state.api.no_token("Missing Authorization Header")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise state.api.no_token(
            "Missing 'Bearer' type in 'Authorization' header. "
            "Expected 'Authorization: Bearer <JWT>'"
        )
    token = token.strip()
    if token not in state.tokens:
        raise state.api.bad_token()
    return token


def _site(request: web.Request, name: str | None = None) -> SiteTable:
    """The site of the path, after checking the token may read it."""
    state = request.app[SIMULATOR]
    token = _token(request)
    name = name if name is not None else request.match_info["site"]
    table = state.data.sites.get(name)
    if table is None:
        raise state.api.unknown_site(name)
    if not state.may_read(token, name):
        raise state.api.forbidden_site(name)
    return table


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """An integer in [lo, hi] (the idealised API's bounds)."""
    api = request.app[SIMULATOR].api
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise api.bad_param(name, "Not a valid integer.") from None
    if not lo <= value <= hi:
        raise api.bad_param(
            name, f"Must be greater than or equal to {lo} and less than or equal to {hi}."
        )
    return value


def _choice_param(request: web.Request, name: str, default: int, choices: Sequence[int]) -> int:
    """An integer among `choices`, refused as flask-restx's reqparse does (the real API)."""
    api = request.app[SIMULATOR].api
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise api.bad_param(name, f"invalid literal for int() with base 10: {raw!r}") from None
    if value not in choices:
        raise api.bad_param(name, f"The value '{value}' is not a valid choice for '{name}'.")
    return value


def _time_param(request: web.Request, name: str) -> int:
    state = request.app[SIMULATOR]
    raw = request.query.get(name)
    if not raw:
        if state.config.realistic:
            raise state.api.bad_param(name, "Missing required parameter in the query string")
        raise state.api.bad_param(name, "Missing data for required field.")
    try:
        return parse_iso_ms(raw)
    except ValueError:
        if state.config.realistic:
            raise state.api.bad_param(
                name, f"Invalid argument: {raw}. argument must be a valid ISO8601 date/time string"
            ) from None
        raise state.api.bad_param(name, "Not a valid datetime.") from None


def _time_range(request: web.Request) -> tuple[int, int]:
    """start_time and end_time, both included; the real API answers an inverted range empty."""
    state = request.app[SIMULATOR]
    start = _time_param(request, "start_time")
    end = _time_param(request, "end_time")
    if end < start and not state.config.realistic:
        raise state.api.bad_param("end_time", "Must not be before start_time.")
    return start, end


def _bool_param(request: web.Request, name: str, default: bool) -> bool:
    state = request.app[SIMULATOR]
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    if state.config.realistic:
        raise state.api.bad_param(name, f"Invalid literal for boolean(): {raw}")
    raise state.api.bad_param(name, "Not a valid boolean.")


def _per_page(request: web.Request, largest: int | None) -> int:
    """`per_page` of a listing: an enum in the real API (500 past `largest`), else 1..100."""
    state = request.app[SIMULATOR]
    if not state.config.realistic:
        return _int_param(request, "per_page", 10, 1, _MAX_PER_PAGE)
    per_page = _choice_param(request, "per_page", 10, PER_PAGE_CHOICES)
    if largest is not None and per_page > largest:
        raise state.api.unhandled()
    return per_page


def _paginated(items: Sequence[Any], page: int, per_page: int) -> dict[str, Any]:
    """The API's page-numbered listing: page, pages, per_page, total, items."""
    total = len(items)
    pages = max(1, math.ceil(total / per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    return {"page": page, "pages": pages, "per_page": per_page, "total": total, "items": chunk}


def _json_bytes(body: bytes, samples: int) -> web.Response:
    """A JSON body already serialised; the sample count rides along for the request log."""
    response = web.Response(body=body, content_type="application/json")
    response.headers[SAMPLES_HEADER] = str(samples)
    return response


async def _off_loop(work: Callable[[], T], rows_hint: int) -> T:
    """Run big page builds in a thread (NumPy drops the GIL), small ones inline."""
    if rows_hint < _EXECUTOR_ROWS:
        return work()
    return await asyncio.get_running_loop().run_in_executor(None, work)


def _point_names(request: web.Request) -> list[str] | None:
    """The `point_names` filter: honoured by the idealised API, ignored by the real one."""
    if request.app[SIMULATOR].config.realistic:
        return None
    return [n for n in request.query.get("point_names", "").split(",") if n] or None


# --- handlers ---------------------------------------------------------------------


async def _list_sites(request: web.Request) -> web.Response:
    state = request.app[SIMULATOR]
    token = _token(request)
    page = _int_param(request, "page", 1, 1, 1_000_000)
    per_page = _per_page(request, None)
    items = [
        t.site.to_json() for name, t in state.data.sites.items() if state.may_read(token, name)
    ]
    return web.json_response(_paginated(items, page, per_page))


async def _get_site(request: web.Request) -> web.Response:
    return web.json_response(_site(request).site.to_json())


async def _configured_points(request: web.Request) -> web.Response:
    table = _site(request)
    page = _int_param(request, "page", 1, 1, 1_000_000)
    per_page = _per_page(request, _MAX_PER_PAGE)
    site = table.site
    body = _paginated(list(site.points), page, per_page)
    body["items"] = [p.to_json(site) for p in body["items"]]
    return web.json_response(body)


async def _timeseries_paginated(request: web.Request) -> web.Response:
    state = request.app[SIMULATOR]
    table = _site(request)
    start, end = _time_range(request)
    if state.config.realistic:
        page_size = _choice_param(request, "page_size", 10_000, VALID_PAGE_SIZES)
    else:
        page_size = _int_param(request, "page_size", 10_000, 1, VALID_PAGE_SIZES[-1])
        if page_size not in VALID_PAGE_SIZES:
            sizes = ", ".join(str(s) for s in VALID_PAGE_SIZES)
            raise state.api.bad_param("page_size", f"Must be one of: {sizes}.")
    raw = _bool_param(request, "raw_data", False)
    limit = min(page_size, state.config.max_page_size)
    end_eff = min(end, state.now_ms())
    if state.config.realistic:
        build = _offset_page(request, table, start, end_eff, limit, raw)
    else:
        build = _exact_page(request, table, start, end, end_eff, limit, raw)
    body, count = await _off_loop(build, limit)
    return _json_bytes(body, count)


PageBuild = Callable[[], tuple[bytes, int]]


def _offset_page(
    request: web.Request, table: SiteTable, start: int, end: int, limit: int, raw: bool
) -> PageBuild:
    """A page of the real API: every point, from the cursor's instant on, skipping its offset.

    The next cursor holds the page's last timestamp and the number of the
    page's samples at it, *not* plus the offset this page was asked with: that
    is the API's bug, kept. So when a page lies inside one timestamp (a page
    smaller than a collection run) the cursor comes back unchanged, and a
    client that follows it blindly gets the same page forever.
    """
    state = request.app[SIMULATOR]
    lo, skip = start, 0
    text = request.query.get("cursor")
    if text:
        try:
            cursor = OffsetCursor.decode(text)
        except ValueError:
            raise state.api.unhandled() from None
        lo, skip = max(start, parse_iso_ms(cursor.timestamp)), cursor.offset
    exact = state.config.exact_has_more
    renderer = state.renderers[table.site.name]

    def build() -> tuple[bytes, int]:
        want = skip + limit + (1 if exact else 0)
        rows = table.next_rows(table.all_points, lo, end, None, want, raw)
        rows = rows.take(slice(skip, None))
        has_more = len(rows) > limit if exact else len(rows) >= limit
        page = rows.take(slice(0, limit))
        next_cursor = None
        if has_more:
            last = int(page.t_ms[-1])
            at_last = int(np.count_nonzero(page.t_ms == last))
            stamp = naive_time(last, int(page.sub_us[-1]))
            next_cursor = OffsetCursor(at_last, stamp).encode()
        return page_body(renderer.render(page), next_cursor, has_more), len(page)

    return build


def _exact_page(
    request: web.Request,
    table: SiteTable,
    start: int,
    end: int,
    end_eff: int,
    limit: int,
    raw: bool,
) -> PageBuild:
    """A page of the idealised API: the named points after the cursor's (time, point)."""
    state = request.app[SIMULATOR]
    names = _point_names(request)
    fingerprint = query_fingerprint(table.site.name, start, end, raw, names)
    after: tuple[int, int] | None = None
    sent = 0
    if request.query.get("cursor"):
        try:
            cursor = Cursor.decode(request.query["cursor"], fingerprint)
        except ValueError as exc:
            raise state.api.bad_param("cursor", str(exc)) from None
        after, sent = (cursor.t_ms, cursor.idx), cursor.sent
    exact = state.config.exact_has_more
    sel = table.select(names)
    renderer = state.renderers[table.site.name]

    def build() -> tuple[bytes, int]:
        rows = table.next_rows(sel, start, end_eff, after, limit + 1 if exact else limit, raw)
        has_more = len(rows) > limit if exact else len(rows) == limit
        rows = rows.take(slice(0, limit))
        count = len(rows)
        next_cursor = None
        if has_more:
            last_t, last_idx = int(rows.t_ms[-1]), int(rows.idx[-1])
            next_cursor = Cursor(fingerprint, last_t, last_idx, sent + count).encode()
        return page_body(renderer.render(rows), next_cursor, has_more), count

    return build


def _unpaginated_limit(state: SimulatorState) -> int:
    return max(state.config.max_page_size, _UNPAGINATED_LIMIT_DEFAULT)


def _render_all(
    state: SimulatorState,
    parts: Sequence[tuple[SiteTable, list[str] | None]],
    start: int,
    end: int,
) -> tuple[bytes, int]:
    """Every raw sample of the named points (per site, by time then point) as one body."""
    end_eff = min(end, state.now_ms())
    limit = _unpaginated_limit(state)
    rendered: list[memoryview] = []
    total = 0
    for table, names in parts:
        rows: Rows = table.next_rows(table.select(names), start, end_eff, None, limit + 1)
        total += len(rows)
        if total > limit:
            if state.config.realistic:
                raise state.api.unhandled()
            raise state.api.reject(
                422, f"More than {limit} samples in range; use /sites/{{site}}/timeseries/paginated"
            )
        rendered.append(state.renderers[table.site.name].render(rows))
    return samples_body(rendered), total


async def _site_timeseries(request: web.Request) -> web.Response:
    state = request.app[SIMULATOR]
    table = _site(request)
    start, end = _time_range(request)
    names = _point_names(request)
    body, count = await _off_loop(
        lambda: _render_all(state, [(table, names)], start, end), _EXECUTOR_ROWS
    )
    return _json_bytes(body, count)


async def _points_timeseries(request: web.Request) -> web.Response:
    """`POST /points/get_timeseries`: in the swagger, but the real API answers it 400."""
    state = request.app[SIMULATOR]
    _token(request)
    if state.config.realistic:
        raise state.api.bad_param("points", "'points' is not of type 'array' of point names")
    start, end = _time_range(request)
    try:
        payload = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise state.api.reject(422, 'Body must be JSON: {"points": [{"name": ...}]}') from None
    raw_points = payload.get("points") if isinstance(payload, dict) else None
    if not isinstance(raw_points, list) or not raw_points:
        refusal = {
            "code": 422,
            "status": _REASONS[422],
            "message": "points: a non-empty list is required",
            "errors": {"json": {"points": ["Missing data for required field."]}},
        }
        raise _Reject(web.json_response(refusal, status=422))
    names: list[str] = []
    for item in raw_points:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name:
            raise state.api.reject(422, 'points: each point is a name or {"name": ...}')
        names.append(name)
    by_site: dict[str, list[str]] = {}
    for name in names:
        site = state.data.point_sites.get(name)
        if site is None:
            raise state.api.unknown_point(name)
        by_site.setdefault(site, []).append(name)
    parts = [(_site(request, site), site_names) for site, site_names in by_site.items()]
    body, count = await _off_loop(lambda: _render_all(state, parts, start, end), _EXECUTOR_ROWS)
    return _json_bytes(body, count)


async def _point_timeseries(request: web.Request) -> web.Response:
    """One point's raw samples in [start_time, end_time], unpaginated."""
    state = request.app[SIMULATOR]
    _token(request)
    name = request.match_info["name"]
    site = state.data.point_sites.get(name)
    if site is None:
        raise state.api.unknown_point(name)
    table = _site(request, site)
    start, end = _time_range(request)
    body, count = await _off_loop(
        lambda: _render_all(state, [(table, [name])], start, end), _EXECUTOR_ROWS
    )
    return _json_bytes(body, count)
