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
"""

from __future__ import annotations

import time

from aiohttp import web

from acechart.server.auth import SiteAccess
from acechart.server.edge_cache import FRESH, EdgeCache
from acechart.server.headers import token_from
from acechart.server.info import RequestInfo, Ticket
from acechart.server.memo import Memo
from acechart.server.metrics import Metrics
from acechart.server.ratelimit import RateLimiter, take
from acechart.server.respond import respond

__all__ = ["Lane"]

_MAX_TARGET = 4096
"""Longest request target given a ticket (as `pipeline` remembers parses up to it)."""

Where = tuple[str, str, str]
"""A ticket's place: the request target (path and query as sent), `Accept`, `Prefer`."""


class Lane:
    """Tickets by request target and representation headers, and the services to answer
    them; answers nothing until `bind` gives it those (when the service has started)."""

    def __init__(self, max_tickets: int) -> None:
        self._tickets: Memo[Where, Ticket] = Memo(max_tickets)
        self._services: tuple[EdgeCache, SiteAccess, RateLimiter, Metrics] | None = None

    def bind(
        self, edge: EdgeCache, access: SiteAccess, limiter: RateLimiter, metrics: Metrics
    ) -> None:
        self._services = (edge, access, limiter, metrics)

    def unbind(self) -> None:
        self._services = None
        self._tickets = Memo(self._tickets.max_entries)

    def __len__(self) -> int:
        return len(self._tickets)

    def file(self, request: web.Request, ticket: Ticket) -> None:
        """Keep `ticket` for GETs like `request` (same target, `Accept` and `Prefer`)."""
        target = request.raw_path
        if request.method == "GET" and len(target) <= _MAX_TARGET:
            headers = request.headers
            self._tickets.put(
                (target, headers.get("Accept", ""), headers.get("Prefer", "")), ticket
            )

    async def answer(self, request: web.Request, info: RequestInfo) -> web.StreamResponse | None:
        """The answer from the edge, or None: the route answers."""
        services = self._services
        if services is None or request.method != "GET":
            return None
        headers = request.headers
        if "Cache-Control" in headers:
            return None
        ticket = self._tickets.get(
            (request.raw_path, headers.get("Accept", ""), headers.get("Prefer", ""))
        )
        if ticket is None:
            return None
        edge, access, limiter, metrics = services
        token = token_from(request)
        fingerprint = access.fingerprint(token)
        if not access.confirmed(fingerprint, ticket.site):
            return None
        started = time.perf_counter()
        found = edge.lookup(ticket.key)
        if found is None or found.freshness is not FRESH:
            return None
        info.client = fingerprint[:12]
        await take(limiter, fingerprint, ticket.endpoint, token)
        metrics.record_edge_hit(time.perf_counter() - started)
        info.site, info.point_count = ticket.site, ticket.point_count
        info.format, info.classification = ticket.format, "cached"
        return await respond(
            request,
            ticket.key,
            found.entry,
            cache_status="HIT",
            cache_source="EDGE",
            size="cached",
            age_s=found.age_s,
        )
