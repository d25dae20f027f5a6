"""The ACE origin client: complete, parallel, retrying fetches of raw samples.

`fetch_samples` splits a range into time windows (and long point lists into
groups that fit a URL), pages through each with the API's cursor under one
client-wide concurrency bound, and hands every page's bytes to the Rust
`acechart._core.parse_page`; pages never become Python objects. Samples are trimmed to
their window's half-open interval, so windows neither overlap nor leave holes
whatever the origin does at an edge, and merged with `acechart._core.sort_dedup`.

It never stops early: a page that claims more data without a cursor, a cursor
that repeats, or more pages than `origin_max_pages` is an error, not a silent
truncation (the seed's worker stopped after 100 pages and lost data).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import aiohttp
import numpy as np
from numpy.typing import NDArray

from acechart._core import PageParseError, ParsedPage, parse_page, sort_dedup
from acechart.errors import (
    AcechartError,
    OriginAuthError,
    OriginBadRequest,
    OriginError,
    OriginMisconfigured,
    OriginNotFound,
    OriginTimeout,
    OriginUnavailable,
)
from acechart.origin.address import AddressScrubber, transport_reason
from acechart.settings import Settings
from acechart.times import format_time, to_ms

__all__ = [
    "OriginClient",
    "Progress",
    "ProgressCallback",
    "Samples",
    "ScanPage",
    "ScanStats",
    "repair_cursor",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_PARSE_OFF_LOOP_BYTES = 256 * 1024
_PER_PAGE = 100
#: What the real API answers, with a 500, to a request whose token it does not know.
_INVALID_KEY_MESSAGE = "An unhandled exception occurred."
#: That answer twice in a row is a refused token, not an outage (which gets the retries).
_KEY_REFUSALS = 2


@dataclass(frozen=True, eq=False)
class Samples:
    """Raw samples as columns, sorted by (point, time), one row per (point, time).

    `point_index` indexes `names`; `ts` is ms since the epoch (UTC); `values`
    are float64 with NaN where the origin sent something non-numeric. The
    counters describe the fetch: origin `requests` (retries included), `pages`
    parsed, `samples` received (before trimming to windows and dedup),
    `non_numeric` rows kept as NaN, `retries`, and seconds spent parsing.
    """

    names: tuple[str, ...]
    point_index: NDArray[np.int32]
    ts: NDArray[np.int64]
    values: NDArray[np.float64]
    pages: int = 0
    requests: int = 0
    samples: int = 0
    non_numeric: int = 0
    retries: int = 0
    parse_s: float = 0.0
    elapsed_s: float = 0.0
    bytes: int = 0
    """Body bytes received from the origin (every attempt's)."""

    def __len__(self) -> int:
        return len(self.ts)

    def point(self, name: str) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """(ts, values) of one point, in time order (empty when it had no samples)."""
        try:
            i = self.names.index(name)
        except ValueError:
            raise KeyError(name) from None
        lo, hi = np.searchsorted(self.point_index, [i, i + 1])
        return self.ts[lo:hi], self.values[lo:hi]


@dataclass(frozen=True)
class Progress:
    """How far a fetch is: samples and pages so far, windows done, and a total estimate.

    Pages come in time order, so the time a window's pages have reached tells
    what share of it is done; `estimated_total` extrapolates the samples so far
    over the whole range (None until some time is covered).
    """

    samples: int
    pages: int
    windows_done: int
    windows: int
    estimated_total: int | None


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, eq=False)
class ScanPage:
    """One page of a site-wide pass, trimmed to its window.

    `point_index` indexes this page's `names`. Every sample of the window
    before `complete_ms` has now been delivered; `last` marks the window's
    final page (then `complete_ms` is the window's end).
    """

    window: tuple[int, int]
    names: tuple[str, ...]
    point_index: NDArray[np.int32]
    ts: NDArray[np.int64]
    values: NDArray[np.float64]
    complete_ms: int
    last: bool


@dataclass(frozen=True)
class ScanStats:
    """What a site-wide pass cost: origin requests, pages, samples received and kept, bytes."""

    pages: int
    requests: int
    samples: int
    kept: int
    retries: int
    bytes: int
    parse_s: float
    elapsed_s: float


@dataclass
class _Task:
    """One (point group, time window) to page through; `covered_ms` grows as pages arrive."""

    points: list[str] | None
    start_ms: int
    end_ms: int
    covered_ms: int = 0
    done: bool = False


@dataclass
class _Fetch:
    """Mutable bookkeeping of one `fetch_samples` call."""

    names: dict[str, int]
    tasks: list[_Task]
    progress: ProgressCallback | None
    pages: int = 0
    requests: int = 0
    received: int = 0
    bytes: int = 0
    kept: int = 0
    retries: int = 0
    parse_s: float = 0.0
    parts: list[tuple[NDArray[np.int32], NDArray[np.int64], NDArray[np.float64]]] = field(
        default_factory=list
    )

    def report(self) -> None:
        if self.progress is None:
            return
        total_ms = sum(t.end_ms - t.start_ms for t in self.tasks)
        covered = sum(t.covered_ms for t in self.tasks)
        estimate = None
        if covered > 0:
            estimate = round(self.kept * total_ms / covered)
        done = sum(t.done for t in self.tasks)
        self.progress(Progress(self.kept, self.pages, done, len(self.tasks), estimate))


class OriginClient:
    """One shared aiohttp session and concurrency bound for every call to the ACE origin.

    The caller's token is passed per call (the proxy forwards each user's own
    token) and sent as `Authorization: Bearer`; it is never logged.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._base = settings.origin_url.rstrip("/")
        self.scrub = AddressScrubber(settings.origin_url)
        """Removes the origin's address from texts: no error message carries it."""
        self.failed_attempts = 0
        """Origin requests that failed so far (each attempt counts): a caller waiting on a
        fetch can tell an origin that is failing and being retried from one that is slow."""
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._slots = asyncio.Semaphore(settings.origin_concurrency)
        self._rng = rng or random.Random()
        self._timeout = aiohttp.ClientTimeout(
            total=settings.origin_timeout_s,
            sock_connect=settings.origin_connect_timeout_s,
            sock_read=settings.origin_read_timeout_s,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client opened it; the client is unusable afterwards."""
        self._closed = True
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled keep-alive session, opened on first use inside the running loop."""
        if self._closed:
            raise OriginUnavailable("the origin client is closed")
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=max(self.settings.origin_concurrency, 1) * 2)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
            self._owns_session = True
        return self._session

    # --- metadata ---------------------------------------------------------------------

    async def list_sites(self, *, token: str) -> list[dict[str, Any]]:
        """Every site the token may read (walks all pages of `/sites`)."""
        return await self._walk_pages("/sites", token)

    async def get_site(self, site: str, *, token: str) -> dict[str, Any]:
        """One site's metadata."""
        return await self._request(f"/sites/{quote(site, safe='')}", {}, token, _json_object)

    async def list_points(self, site: str, *, token: str) -> list[dict[str, Any]]:
        """Every configured point of `site`, walking all `/configured_points` pages."""
        return await self._walk_pages(f"/sites/{quote(site, safe='')}/configured_points", token)

    async def _walk_pages(self, path: str, token: str) -> list[dict[str, Any]]:
        """All items of a page-numbered listing; fails if the pages do not add up to `total`."""
        first = await self._request(path, {"page": 1, "per_page": _PER_PAGE}, token, _listing)
        total = first["total"]
        pages = first["pages"]
        if pages > max(1, -(-total // _PER_PAGE)):
            raise OriginUnavailable(
                f"{path} claims {pages} pages for {total} items of {_PER_PAGE}", origin_status=200
            )
        rest = await _all_or_cancel(
            [
                self._request(path, {"page": p, "per_page": _PER_PAGE}, token, _listing)
                for p in range(2, pages + 1)
            ]
        )
        items: list[dict[str, Any]] = list(first["items"])
        for body in rest:
            items.extend(body["items"])
        if len(items) != total:
            raise OriginUnavailable(
                f"{path} listed {len(items)} items over {pages} pages but reported total {total}",
                origin_status=200,
            )
        return items

    # --- samples -----------------------------------------------------------------------

    async def fetch_samples(
        self,
        site: str,
        points: Sequence[str] | None,
        start: datetime | int,
        end: datetime | int,
        *,
        token: str,
        progress: ProgressCallback | None = None,
    ) -> Samples:
        """Every raw sample of `points` (None: all of the site's) in [start, end).

        `start`/`end` are datetimes (naive means UTC) or ms since the epoch. The
        range is cut into `origin_window_s` windows and the point list into
        groups that fit a URL; each piece is paged through in parallel with the
        others, at most `origin_concurrency` requests in flight per client.
        """
        started = time.perf_counter()
        start_ms, end_ms = to_ms(start), to_ms(end)
        wanted = list(dict.fromkeys(points)) if points is not None else None
        names: dict[str, int] = {n: i for i, n in enumerate(wanted or [])}
        groups: list[list[str] | None] = (
            [None] if wanted is None else _point_groups(wanted, self.settings.origin_max_url_chars)
        )
        windows = _windows(start_ms, end_ms, self.settings.origin_window_s * 1000)
        tasks = [_Task(g, a, b) for g in groups for a, b in windows]
        state = _Fetch(names, tasks, progress)
        if wanted == []:
            tasks.clear()
        path = f"/sites/{quote(site, safe='')}/timeseries/paginated"
        await _all_or_cancel([self._page_through(path, task, token, state) for task in tasks])
        return self._samples(state, sort_names=wanted is None, started=started)

    async def _page_through(self, path: str, task: _Task, token: str, state: _Fetch) -> None:
        """Follow one window's cursor to the end, keeping samples inside [start, end)."""

        async def keep(page: ParsedPage) -> None:
            self._keep(page, task, state)

        await self._follow(path, task, token, state, keep)
        task.done = True
        task.covered_ms = task.end_ms - task.start_ms
        state.report()

    async def _follow(
        self,
        path: str,
        task: _Task,
        token: str,
        state: _Fetch,
        on_page: Callable[[ParsedPage], Awaitable[None]],
    ) -> None:
        """Every page of one window of the paginated route, in order, to `on_page`.

        The real API's cursor (base64 JSON `{"offset", "timestamp"}`) forgets the
        offset it was given when a page starts and ends inside one timestamp, so
        it would hand back the same cursor forever; such a cursor is repaired
        (`repair_cursor`). Any cursor that still repeats, or `has_more` without
        one, is an error: the fetch never loops and never stops short.
        """
        page_size = self.settings.origin_page_size
        if task.points is None:
            page_size = min(page_size, self.settings.origin_site_page_size)
        params: dict[str, str | int] = {
            "start_time": format_time(task.start_ms),
            "end_time": format_time(task.end_ms),
            "page_size": page_size,
            "raw_data": "true",
        }
        if task.points is not None:
            params["point_names"] = ",".join(task.points)
        cursor: str | None = None
        seen: set[str] = set()
        for page_no in range(1, self.settings.origin_max_pages + 1):
            if cursor is not None:
                params["cursor"] = cursor
            page = await self._request(path, params, token, self._parser(None, state), state)
            await on_page(page)
            if not page.has_more:
                return
            if not page.next_cursor:
                raise OriginUnavailable(
                    f"origin reported has_more without a next_cursor (page {page_no})",
                    origin_status=200,
                )
            following = repair_cursor(cursor, page.next_cursor, page.ts)
            if following in seen:
                raise OriginUnavailable(
                    f"origin repeated a cursor on page {page_no}; refusing to loop",
                    origin_status=200,
                )
            seen.add(following)
            cursor = following
            state.report()
        raise OriginUnavailable(
            f"more than {self.settings.origin_max_pages} pages in one window "
            f"({format_time(task.start_ms)}..{format_time(task.end_ms)}); raise "
            "ACECHART_ORIGIN_MAX_PAGES or shorten ACECHART_ORIGIN_WINDOW_S",
            origin_status=200,
        )

    # --- the per-point route ---------------------------------------------------------------

    async def fetch_points(
        self,
        points: Sequence[str],
        start: datetime | int,
        end: datetime | int,
        *,
        token: str,
        progress: ProgressCallback | None = None,
    ) -> Samples:
        """Every raw sample of `points` in [start, end), one point at a time.

        `GET /points/{name}/timeseries` answers exactly one point's samples,
        unpaginated, so this downloads nothing the query does not need. Each
        point's range is cut into `origin_point_window_s` windows, all fetched
        in parallel under the client's concurrency bound.
        """
        started = time.perf_counter()
        start_ms, end_ms = to_ms(start), to_ms(end)
        wanted = list(dict.fromkeys(points))
        names = {n: i for i, n in enumerate(wanted)}
        window = self.settings.origin_point_window_s * 1000
        tasks = [_Task([p], a, b) for p in wanted for a, b in _windows(start_ms, end_ms, window)]
        state = _Fetch(names, tasks, progress)
        await _all_or_cancel([self._point_window(task, token, state) for task in tasks])
        return self._samples(state, sort_names=False, started=started)

    async def _point_window(self, task: _Task, token: str, state: _Fetch) -> None:
        assert task.points is not None
        (name,) = task.points
        params: dict[str, str | int] = {
            "start_time": format_time(task.start_ms),
            "end_time": format_time(task.end_ms),
        }
        path = f"/points/{quote(name, safe='')}/timeseries"
        page = await self._request(
            path, params, token, self._parser(None, state, paged=False), state
        )
        foreign = [n for n in page.names if n != name]
        if foreign:
            raise OriginUnavailable(
                f"the per-point route for one point answered samples of {len(foreign)} other"
                " point(s)",
                origin_status=200,
            )
        self._keep(page, task, state)
        task.done = True
        task.covered_ms = task.end_ms - task.start_ms
        state.report()

    # --- one pass over the whole site ----------------------------------------------------

    async def scan_site(
        self,
        site: str,
        start: datetime | int,
        end: datetime | int,
        *,
        token: str,
        sink: Callable[[ScanPage], Awaitable[None]],
        progress: ProgressCallback | None = None,
    ) -> ScanStats:
        """Every sample of every point of `site` in [start, end), page by page, to `sink`.

        The paginated route without a point filter (the real API has none) in
        `origin_window_s` windows, paged through in parallel. Nothing is kept
        here: each parsed page, trimmed to its window, goes to `sink` with the
        time before which its window is complete, so a caller can store a large
        site's pass in bounded memory.
        """
        started = time.perf_counter()
        start_ms, end_ms = to_ms(start), to_ms(end)
        windows = _windows(start_ms, end_ms, self.settings.origin_window_s * 1000)
        tasks = [_Task(None, a, b) for a, b in windows]
        state = _Fetch({}, tasks, progress)
        path = f"/sites/{quote(site, safe='')}/timeseries/paginated"

        async def window(task: _Task) -> None:
            async def deliver(page: ParsedPage) -> None:
                state.pages += 1
                state.received += len(page)
                ts = page.ts
                inside = (ts >= task.start_ms) & (ts < task.end_ms)
                keep = slice(None) if bool(inside.all()) else np.flatnonzero(inside)
                # Rows of the page's last timestamp may go on in the next page.
                complete = (
                    task.end_ms
                    if not page.has_more
                    else max(
                        task.start_ms, min(int(ts.max()) if len(ts) else task.start_ms, task.end_ms)
                    )
                )
                kept = ScanPage(
                    (task.start_ms, task.end_ms),
                    tuple(page.names),
                    page.point_index[keep],
                    ts[keep],
                    page.values[keep],
                    complete,
                    not page.has_more,
                )
                state.kept += len(kept.ts)
                task.covered_ms = complete - task.start_ms
                await sink(kept)

            await self._follow(path, task, token, state, deliver)
            task.done = True
            task.covered_ms = task.end_ms - task.start_ms
            state.report()

        await _all_or_cancel([window(task) for task in tasks])
        return ScanStats(
            pages=state.pages,
            requests=state.requests,
            samples=state.received,
            kept=state.kept,
            retries=state.retries,
            bytes=state.bytes,
            parse_s=state.parse_s,
            elapsed_s=time.perf_counter() - started,
        )

    def _parser(
        self, points: list[str] | None, state: _Fetch, *, paged: bool = True
    ) -> Callable[[bytes], Awaitable[ParsedPage]]:
        """Parse page bytes in Rust: off the event loop when big (the GIL is released).

        The parse is timed where it runs, so `parse_s` excludes waiting for a thread.
        """

        async def parse(body: bytes) -> ParsedPage:
            if len(body) < _PARSE_OFF_LOOP_BYTES:
                page, seconds = _timed_parse(body, points, paged)
            else:
                loop = asyncio.get_running_loop()
                page, seconds = await loop.run_in_executor(None, _timed_parse, body, points, paged)
            state.parse_s += seconds
            return page

        return parse

    def _keep(self, page: ParsedPage, task: _Task, state: _Fetch) -> None:
        """Map page names to result ids and keep samples in the task's half-open window."""
        state.pages += 1
        state.received += len(page)
        if len(page) == 0:
            return
        ts = page.ts
        inside = (ts >= task.start_ms) & (ts < task.end_ms)
        if task.points is not None and any(n not in state.names for n in page.names):
            # An origin that ignores the point filter sent others' samples too: count
            # them as received (they were paid for), keep only the points asked for.
            wanted = np.array([n in state.names for n in page.names], dtype=bool)
            inside &= wanted[page.point_index]
        keep = None if bool(inside.all()) else np.flatnonzero(inside)
        if task.points is None:
            ids = np.array(
                [state.names.setdefault(n, len(state.names)) for n in page.names], np.int32
            )
        else:
            ids = np.array([state.names.get(n, -1) for n in page.names], np.int32)
        point_index = ids[page.point_index]
        values = page.values
        if keep is not None:
            point_index, ts, values = point_index[keep], ts[keep], values[keep]
        state.parts.append((point_index, ts, values))
        state.kept += len(ts)
        reached = int(page.ts.max()) - task.start_ms
        task.covered_ms = max(task.covered_ms, min(reached, task.end_ms - task.start_ms))

    def _samples(self, state: _Fetch, *, sort_names: bool, started: float) -> Samples:
        """The fetch's kept samples as one `Samples`, with what the fetch cost."""
        names, point_index, ts, values = self._merge(state, sort_names)
        return Samples(
            names=names,
            point_index=point_index,
            ts=ts,
            values=values,
            pages=state.pages,
            requests=state.requests,
            samples=state.received,
            non_numeric=int(np.count_nonzero(np.isnan(values))),
            retries=state.retries,
            parse_s=state.parse_s,
            elapsed_s=time.perf_counter() - started,
            bytes=state.bytes,
        )

    def _merge(
        self, state: _Fetch, sort_names: bool
    ) -> tuple[tuple[str, ...], NDArray[np.int32], NDArray[np.int64], NDArray[np.float64]]:
        """All kept parts as one (point, time)-sorted, deduplicated set of columns."""
        names = list(state.names)
        if not state.parts:
            empty = np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.float64)
            return (tuple(sorted(names) if sort_names else names), *empty)
        point_index = np.concatenate([p[0] for p in state.parts])
        ts = np.concatenate([p[1] for p in state.parts])
        values = np.concatenate([p[2] for p in state.parts])
        if sort_names:
            order = sorted(range(len(names)), key=names.__getitem__)
            rank = np.empty(len(names), np.int32)
            rank[order] = np.arange(len(names), dtype=np.int32)
            point_index = rank[point_index]
            names = [names[i] for i in order]
        point_index, ts, values = sort_dedup(point_index, ts, values)
        return tuple(names), point_index, ts, values

    # --- one request, with retries --------------------------------------------------------

    async def _request(
        self,
        path: str,
        params: dict[str, str | int],
        token: str,
        parse: Callable[[bytes], Awaitable[T]],
        state: _Fetch | None = None,
    ) -> T:
        """GET `path` and parse the body, retrying transient failures with backoff.

        Retried: transport failures (timeouts, refused or dropped connections, a body
        cut off mid-way), 429 (after Retry-After) and 5xx. Not retried: 401/403
        (OriginAuthError), 404 (OriginNotFound), 400/422 and other 4xx
        (OriginBadRequest), and a 200 whose body does not parse (a `PageParseError`
        from `parse_page`, or a malformed listing): that is the origin's answer, not
        a transport failure, so it is OriginUnavailable at once. Past
        `origin_max_attempts` the last failure is raised as OriginTimeout (timeouts)
        or OriginUnavailable. No message names the origin's host or port.
        """
        try:
            return await self._attempts(path, params, token, parse, state)
        except AcechartError as exc:
            self.hide_address(exc)
            raise

    def hide_address(self, exc: AcechartError) -> AcechartError:
        """`exc` with the origin's address scrubbed from its message and body fields."""
        exc.message = self.scrub(exc.message)
        exc.args = (exc.message,)
        if isinstance(exc, OriginError):
            exc.reason = self.scrub(exc.reason)
        for key, value in exc.extra.items():
            if isinstance(value, str):
                exc.extra[key] = self.scrub(value)
        return exc

    async def _attempts(
        self,
        path: str,
        params: dict[str, str | int],
        token: str,
        parse: Callable[[bytes], Awaitable[T]],
        state: _Fetch | None,
    ) -> T:
        settings = self.settings
        url = self._base + path
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        failure: OriginError | None = None
        refusals = 0
        for attempt in range(1, settings.origin_max_attempts + 1):
            retry_after: float | None = None
            if state is not None:
                state.requests += 1
                if attempt > 1:
                    state.retries += 1
            try:
                async with (
                    self._slots,
                    self.session.get(
                        url, params=params, headers=headers, timeout=self._timeout
                    ) as resp,
                ):
                    status = resp.status
                    body = await resp.read()
                    if state is not None:
                        state.bytes += len(body)
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
            except TimeoutError:
                failure = OriginTimeout(f"no answer from origin within the timeout ({path})")
            except aiohttp.ClientPayloadError as exc:
                failure = OriginUnavailable(f"connection dropped mid-body: {transport_reason(exc)}")
            except aiohttp.ClientError as exc:
                failure = OriginUnavailable(f"connection to origin failed: {transport_reason(exc)}")
            else:
                if status == 200:
                    try:
                        return await parse(body)
                    except PageParseError as exc:
                        raise OriginUnavailable(
                            f"origin sent a page that does not parse ({path}): {_short(exc)}",
                            origin_status=200,
                        ) from exc
                    except ValueError as exc:  # the small JSON parsers' documented error
                        raise OriginUnavailable(
                            f"malformed origin response ({path}): {_short(exc)}",
                            origin_status=200,
                        ) from exc
                else:
                    failure = _status_error(status, body, retry_after, path)
                    if _is_key_refusal(status, body):
                        refusals += 1
                        if refusals >= _KEY_REFUSALS:
                            raise OriginAuthError(
                                "the origin does not accept this token (it answered 500"
                                f" {_INVALID_KEY_MESSAGE!r} {refusals} times)",
                                origin_status=401,
                            )
                    if status not in _RETRY_STATUSES and status < 500:
                        raise failure
                    if retry_after is not None and retry_after > settings.origin_retry_after_max_s:
                        raise OriginUnavailable(
                            f"origin asked to retry after {retry_after:g} s, more than "
                            f"ACECHART_ORIGIN_RETRY_AFTER_MAX_S={settings.origin_retry_after_max_s:g}",
                            origin_status=status,
                            retry_after=retry_after,
                        )
            self.failed_attempts += 1
            if attempt == settings.origin_max_attempts:
                break
            delay = self._backoff(attempt, retry_after)
            logger.warning(
                "origin %s failed (%s), attempt %d of %d; retrying in %.2f s",
                path,
                failure.reason,
                attempt,
                settings.origin_max_attempts,
                delay,
            )
            await asyncio.sleep(delay)
        assert failure is not None
        raise type(failure)(
            f"{failure.reason} (gave up after {settings.origin_max_attempts} attempts)",
            origin_status=failure.origin_status,
            retry_after=failure.retry_after,
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter, or the origin's Retry-After (plus a little jitter)."""
        if retry_after is not None:
            return retry_after + self._rng.random() * min(0.1 * retry_after, 1.0)
        s = self.settings
        ceiling = min(s.origin_retry_cap_s, s.origin_retry_base_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._rng.random() * ceiling / 2


def _timed_parse(body: bytes, points: list[str] | None, paged: bool) -> tuple[ParsedPage, float]:
    t0 = time.perf_counter()
    page = parse_page(body, points, paged=paged)
    return page, time.perf_counter() - t0


def repair_cursor(sent: str | None, returned: str, page_ts: NDArray[np.int64]) -> str:
    """The cursor to ask for after a page: `returned`, unless the origin's offset bug hit it.

    The real API's cursor is base64 JSON `{"offset": n, "timestamp": t}`: skip
    `n` rows at timestamp `t`. When a page starts and ends inside one
    timestamp, the API reports only that page's rows at `t` as the offset and
    drops the offset it was sent, so the same cursor comes back. Then the rows
    already delivered at `t` are `sent offset + this page's rows`. A cursor that
    is not of that form (another origin, a fixed API) is used as it is.
    """
    if sent is None:
        return returned
    before, after = _decode_cursor(sent), _decode_cursor(returned)
    if before is None or after is None or before[1] != after[1]:
        return returned
    rows = len(page_ts)
    if after[0] == before[0] + rows:
        return returned  # an origin that adds the offset itself
    if after[0] != rows:
        return returned  # not the known bug: let the repeat check decide
    fixed = {"offset": before[0] + rows, "timestamp": after[1]}
    return base64.b64encode(json.dumps(fixed, separators=(", ", ": ")).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, str] | None:
    """(offset, timestamp) of an ACE cursor, or None when it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.b64decode(padded, validate=False))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(value, dict):
        return None
    offset, stamp = value.get("offset"), value.get("timestamp")
    if isinstance(offset, bool) or not isinstance(offset, int) or not isinstance(stamp, str):
        return None
    return offset, stamp


def _windows(start_ms: int, end_ms: int, window_ms: int) -> list[tuple[int, int]]:
    """[start, end) cut at multiples of `window_ms` (UTC-aligned, so origin caches line up)."""
    if end_ms <= start_ms:
        return []
    edges = [start_ms]
    edge = (start_ms // window_ms + 1) * window_ms
    while edge < end_ms:
        edges.append(edge)
        edge += window_ms
    edges.append(end_ms)
    return list(itertools.pairwise(edges))


def _point_groups(points: list[str], max_chars: int) -> list[list[str] | None]:
    """Split names into groups whose URL-encoded, comma-joined list fits `max_chars`."""
    groups: list[list[str] | None] = []
    current: list[str] = []
    length = 0
    for name in points:
        cost = len(quote(name, safe="")) + 3
        if current and length + cost > max_chars:
            groups.append(current)
            current, length = [], 0
        current.append(name)
        length += cost
    if current:
        groups.append(current)
    return groups


async def _all_or_cancel(coros: Sequence[Awaitable[T]]) -> list[T]:
    """Await all; on the first failure cancel the rest and raise that failure itself."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return []
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            exc = t.exception()
            if exc is not None:
                raise exc
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return [t.result() for t in tasks]


async def _json_object(body: bytes) -> dict[str, Any]:
    """A small JSON object (metadata, not pages); ValueError for anything else."""
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


async def _listing(body: bytes) -> dict[str, Any]:
    """One page of a page-numbered listing, its fields checked (ValueError otherwise), so a
    malformed answer is reported as the origin's fault (not retried), never a crash."""
    value = await _json_object(body)
    items = value.get("items", [])
    pages = value.get("pages", 1)
    total = value.get("total", len(items) if isinstance(items, list) else 0)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError("listing: items must be a list of objects")
    for name, number in (("pages", pages), ("total", total)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ValueError(f"listing: {name} must be a non-negative integer")
    return {"items": items, "pages": max(pages, 1), "total": total}


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _status_error(
    status: int, body: bytes, retry_after: float | None, path: str = ""
) -> OriginError:
    """The typed error for a non-200 origin answer, with a short reason from its body."""
    reason = f"origin answered {status}: {_body_excerpt(body)}"
    if status in (401, 403):
        return OriginAuthError(reason, origin_status=status)
    if status == 404:
        if not _is_json(body):
            return OriginMisconfigured(
                f"the origin answered 404 with a page that is not the ACE API's JSON ({path}):"
                " check ACECHART_ORIGIN_URL, the base URL of the API",
                origin_status=status,
            )
        return OriginNotFound(reason, origin_status=status)
    if status < 500 and status != 429:
        return OriginBadRequest(reason, origin_status=status)
    return OriginUnavailable(reason, origin_status=status, retry_after=retry_after)


def _is_key_refusal(status: int, body: bytes) -> bool:
    """The real API's answer to an unknown token: 500 with exactly this message."""
    if status != 500 or len(body) > 200:
        return False
    try:
        value = json.loads(body)
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("message") == _INVALID_KEY_MESSAGE


def _body_excerpt(body: bytes, limit: int = 200) -> str:
    """The origin's message when it sent one, else the start of its body."""
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    if isinstance(value, dict):
        for key in ("message", "detail", "error"):
            if isinstance(value.get(key), str):
                return _short(value[key], limit)
    return _short(body.decode("utf-8", "replace"), limit)


def _short(value: object, limit: int = 200) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after(header: str | None) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date turned into seconds from now."""
    if header is None:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
