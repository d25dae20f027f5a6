"""The hit lane: a data GET a caller repeats, answered from the edge in the front middleware.

Dashboards and notebooks repeat the same URLs. When the pipeline answers one
from the edge cache (`pipeline.answer`), it leaves a `Ticket` on the request:
the edge key of its answer and what the request log says of it. The front
middleware files the ticket under the request's target and the `Accept` and
`Prefer` headers that picked its representation (all that `data_request`
parses), and the next identical GET is answered from the edge without its
route: the route's handler, parse and pipeline layers cost a cached answer as
much as the rest of it (`benches/bench_http.py`).

The lane checks what `pipeline.answer` checks, in an order where it can still
step aside before anything is counted: the token (a missing or malformed one
is the route's 401 or 400), the origin's confirmed word on the token and site,
a fresh entry; then the rate limit (its 429 is the route's) and `respond`
answers, with the same headers, ETag and compression. Anything else goes to
the route: a request with `Cache-Control`, a stale or evicted entry, a token
not confirmed for the site, a target or header the lane has no ticket for.

`answer_bytes` is the same lane for `server.connection`, which reads requests
off the connection before aiohttp does: it answers only a plain keep-alive GET
it can answer whole without an await (the in-process rate limit, a content
coding already made), with the bytes the route would write, and records the
same metrics and log line. It steps aside for a request that carries
`If-None-Match`, `Origin`, `Expect` or `Connection` other than keep-alive, or
any header twice: aiohttp's path answers those.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from aiohttp import web

from acechart.errors import BadRequest, RateLimited, Unauthorized
from acechart.server.auth import SiteAccess
from acechart.server.edge_cache import FRESH, EdgeCache, Lookup
from acechart.server.headers import token_from, token_of
from acechart.server.info import RequestInfo, Ticket
from acechart.server.memo import Memo
from acechart.server.metrics import Metrics
from acechart.server.prepared import STATUS_LINE, date_and_server
from acechart.server.ratelimit import RateLimiter, take
from acechart.server.requestlog import endpoint_of, log_line, request_id
from acechart.server.respond import answer_block, cached_coding, respond

__all__ = ["LANE", "Lane"]

_MAX_TARGET = 4096
"""Longest request target given a ticket (as `pipeline` remembers parses up to it)."""

Where = tuple[str, str, str]
"""A ticket's place: the request target (path and query as sent), `Accept`, `Prefer`."""

_ASIDE = ("cache-control", "if-none-match", "origin", "expect")
"""Headers whose request `answer_bytes` leaves to aiohttp's path."""


class Lane:
    """Tickets by request target and representation headers, and the services to answer
    them; answers nothing until `bind` gives it those (when the service has started)."""

    def __init__(self, max_tickets: int) -> None:
        self._tickets: Memo[Where, tuple[Ticket, str]] = Memo(max_tickets)
        self._services: tuple[EdgeCache, SiteAccess, RateLimiter, Metrics] | None = None
        self._compress_min = 0
        self.connection = False
        """Whether `answer_bytes` answers (bound, with a limiter that needs no await)."""
        self.answered = 0
        """Requests answered by `answer`; `answered_bytes`: by `answer_bytes`."""
        self.answered_bytes = 0

    def bind(
        self,
        edge: EdgeCache,
        access: SiteAccess,
        limiter: RateLimiter,
        metrics: Metrics,
        *,
        compress_min_bytes: int,
        connection: bool,
    ) -> None:
        """Answer from these; `connection`: `answer_bytes` too (the route's responses
        go through no `on_response_prepare` handler, and the limiter is in process)."""
        self._services = (edge, access, limiter, metrics)
        self._compress_min = compress_min_bytes
        self.connection = connection and limiter.local

    def unbind(self) -> None:
        self._services = None
        self.connection = False
        self._tickets = Memo(self._tickets.max_entries)

    def __len__(self) -> int:
        return len(self._tickets)

    def file(self, request: web.Request, ticket: Ticket) -> None:
        """Keep `ticket` for GETs like `request` (same target, `Accept` and `Prefer`)."""
        target = request.raw_path
        if request.method == "GET" and len(target) <= _MAX_TARGET:
            headers = request.headers
            self._tickets.put(
                (target, headers.get("Accept", ""), headers.get("Prefer", "")),
                (ticket, endpoint_of(request)),
            )

    async def answer(self, request: web.Request, info: RequestInfo) -> web.StreamResponse | None:
        """The answer from the edge, or None: the route answers."""
        services = self._services
        if services is None or request.method != "GET":
            return None
        headers = request.headers
        if "Cache-Control" in headers:
            return None
        filed = self._tickets.get(
            (request.raw_path, headers.get("Accept", ""), headers.get("Prefer", ""))
        )
        if filed is None:
            return None
        ticket = filed[0]
        token = token_from(request)
        hit = self._fresh(ticket, token)
        if hit is None:
            return None
        fingerprint, found, looked = hit
        info.client = fingerprint[:12]
        _, _, limiter, metrics = services
        await take(limiter, fingerprint, ticket.endpoint, token)
        metrics.record_edge_hit(time.perf_counter() - looked)
        info.site, info.point_count = ticket.site, ticket.point_count
        info.format, info.classification = ticket.format, "cached"
        self.answered += 1
        return await respond(
            request,
            ticket.key,
            found.entry,
            cache_status="HIT",
            cache_source="EDGE",
            size="cached",
            age_s=found.age_s,
        )

    def _fresh(self, ticket: Ticket, token: str) -> tuple[str, Lookup, float] | None:
        """The token's fingerprint, the ticket's fresh entry and when it was looked up,
        if the origin confirmed the token for the ticket's site; else None."""
        assert self._services is not None
        edge, access, _, _ = self._services
        fingerprint = access.fingerprint(token)
        if not access.confirmed(fingerprint, ticket.site):
            return None
        looked = time.perf_counter()
        found = edge.lookup(ticket.key)
        if found is None or found.freshness is not FRESH:
            return None
        return fingerprint, found, looked

    def answer_bytes(self, target: str, headers: Mapping[str, str], started: float) -> bytes | None:
        """The whole response to a plain keep-alive HTTP/1.1 GET of `target` (`headers`: its
        headers by lower-case name, each once; `started`: its `perf_counter` arrival) from
        the edge, its metrics and log line recorded; None: aiohttp's path answers it.

        Everything that could still step aside comes before the rate limit takes from
        the caller's bucket, so a request is counted once whichever path answers it."""
        services = self._services
        if services is None or not self.connection:
            return None
        for name in _ASIDE:
            if name in headers:
                return None
        filed = self._tickets.get((target, headers.get("accept", ""), headers.get("prefer", "")))
        if filed is None:
            return None
        ticket, route = filed
        try:
            token = token_of(headers.get("x-ace-token", ""), headers.get("authorization", ""))
        except (BadRequest, Unauthorized):
            return None  # the route's 400 or 401
        hit = self._fresh(ticket, token)
        if hit is None:
            return None
        fingerprint, found, looked = hit
        _, _, limiter, metrics = services
        entry = found.entry
        body, coding = cached_coding(entry, headers.get("accept-encoding", ""), self._compress_min)
        if body is None:
            return None  # the route compresses it, once
        age_s = found.age_s
        block = answer_block(
            entry,
            ("HIT", "EDGE", coding, None),
            max(0, int(entry.max_age_s - age_s)),
            int(age_s),
            len(body),
        )
        if block is None:
            return None
        try:
            limiter.check(fingerprint, ticket.endpoint)
        except RateLimited:
            return None  # the route's 429 (the bucket was left as it was)
        metrics.record_edge_hit(time.perf_counter() - looked)
        metrics.record_answer("cached", ticket.format, "HIT", "EDGE")
        info = RequestInfo(request_id(headers.get("x-request-id")), started)
        info.client = fingerprint[:12]
        info.site, info.point_count = ticket.site, ticket.point_count
        info.format, info.classification = ticket.format, "cached"
        info.cache_status, info.cache_source, info.samples = "HIT", "EDGE", entry.samples
        own = f"X-Processing-Time: {info.elapsed_ms():.1f}ms\r\nX-Request-Id: {info.request_id}\r\n"
        written = b"".join((STATUS_LINE, block, own.encode(), date_and_server(), body))
        elapsed = info.elapsed_ms()
        metrics.record_response(route, 200, elapsed / 1000.0)
        log_line("GET", target, info, 200, elapsed, len(body))
        self.answered_bytes += 1
        return written


LANE = web.AppKey("acechart_hit_lane", Lane)
"""The application's lane (for its counts)."""
