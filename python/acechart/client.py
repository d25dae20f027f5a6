"""The notebook and script API: `Client` (blocking) and `AsyncClient`, the engine in-process.

```python
import acechart

with acechart.Client(token="...") as ace:
    result = ace.query("ses_falls_city", "ses/.../VAV-707.points.DaTemp", "-7d", "now")
    frame = result.to_pandas()
```

Both run the same engine, caches and catalogue as `acechart serve`, with the
same rule: cached data is served to a token only after the origin has
confirmed that token for the site, once per (token, site) for the client's
lifetime. `Client` runs its own event loop in a thread, so it works in a plain
script and inside Jupyter (whose loop is already running) alike.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import threading
import time
import warnings
from collections.abc import Coroutine, Iterable, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from acechart.errors import BadRequest, ConfigError, OriginMisconfigured
from acechart.origin.client import Progress
from acechart.query import AGG_STATS, Query, parse_instant
from acechart.result import Result
from acechart.runtime import Runtime
from acechart.settings import Settings
from acechart.times import to_ms

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SITE_ZONE", "AsyncClient", "Client", "When", "connect", "parse_stats", "parse_when"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: What `start` and `end` may be: a datetime or date (naive means UTC), a pandas
#: Timestamp, an ISO-8601 string, epoch milliseconds, or `"now"` / `"-7d"` / `"-2h"`.
When = dt.datetime | dt.date | str | int

#: The notebook API's default `tz`: interval buckets in the site's own zone, so a
#: building engineer gets local days without asking (the HTTP API's default stays UTC).
SITE_ZONE = "site"


def parse_when(value: object, parameter: str, *, now_ms: int) -> int:
    """Any of the `When` forms -> epoch ms; `BadRequest` naming `parameter` otherwise."""
    if isinstance(value, bool):
        raise BadRequest(f"{parameter} must be a time, got {value!r}", parameter=parameter)
    if isinstance(value, int):
        return value
    if isinstance(value, dt.datetime):  # pandas.Timestamp is one
        return to_ms(value)
    if isinstance(value, dt.date):
        return to_ms(dt.datetime(value.year, value.month, value.day))
    if isinstance(value, str):
        return parse_instant(value, parameter, now_ms=now_ms)
    raise BadRequest(
        f"{parameter} must be a datetime, date, ISO-8601 string, epoch ms or a relative time"
        f" like '-7d', got {type(value).__name__}",
        parameter=parameter,
    )


def parse_stats(
    stats: str | Sequence[str] | None, *, interval: str, stat: str = "avg"
) -> tuple[str, ...]:
    """The statistics an interval query's rows carry, in order (`stats=`), checked here so
    a wrong name is a `BadRequest` naming `stats` before any request is sent.

    A string is one name or a comma list, as `/api/aggregations?stat=` takes them;
    names are case-insensitive. None: the default row.
    """
    if stats is None:
        return ()
    raw: list[object]
    try:
        raw = list(stats.split(",") if isinstance(stats, str) else stats)
    except TypeError:  # not a string nor an iterable (a number, say)
        raw = [stats]
    if not all(isinstance(name, str) for name in raw):
        raise BadRequest("stats must be names of statistics (strings)", parameter="stats")
    names = tuple(str(name).strip().lower() for name in raw)
    choices = ", ".join(AGG_STATS)
    if not names or not all(names):
        raise BadRequest(f"stats must name statistics: any of {choices}", parameter="stats")
    unknown = [name for name in names if name not in AGG_STATS]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        raise BadRequest(
            f"unknown statistic {listed} in stats; use any of {choices}",
            parameter="stats",
            unknownStats=unknown,
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise BadRequest(f"stats names {', '.join(repeated)} twice", parameter="stats")
    if interval == "raw":
        raise BadRequest(
            "stats are the statistics of interval buckets: give an interval (1min .. 1month)",
            parameter="stats",
        )
    if stat != "avg":
        raise BadRequest(
            "give stat (the one value of a bucket series) or stats (the statistics of each "
            "row, the first as the value), not both",
            parameter="stats",
        )
    return names


def _points(points: str | Iterable[str]) -> tuple[str, ...]:
    """One name, a comma-separated string, or any iterable of names."""
    if isinstance(points, str):
        return tuple(p.strip() for p in points.split(",") if p.strip())
    names = tuple(points)
    if not all(isinstance(p, str) for p in names):
        raise BadRequest("points must be point names (strings)", parameter="points")
    return names


class AsyncClient:
    """The engine in-process, for notebooks and services that run an event loop."""

    def __init__(self, runtime: Runtime, token: str, *, progress: bool = True) -> None:
        self.runtime = runtime
        self.token = token
        self.progress = progress
        self._confirmed: set[str] = set()

    @classmethod
    async def open(
        cls,
        token: str,
        settings: Settings | None = None,
        *,
        progress: bool = True,
        **overrides: Any,
    ) -> AsyncClient:
        """A client over `settings` (default: from the environment) plus overrides."""
        if not token or not isinstance(token, str):
            raise ConfigError("token is required: the ACE API token to read data with")
        if settings is None:
            settings = Settings.from_env(None, **overrides)
        elif overrides:
            settings = dataclasses.replace(settings, **overrides)
        runtime = await Runtime.open(settings)
        logger.info("acechart cache in %s", settings.data_dir)
        return cls(runtime, token, progress=progress)

    async def query(
        self,
        site: str,
        points: str | Iterable[str],
        start: When,
        end: When,
        *,
        interval: str = "raw",
        downsample: str | None = None,
        max_points: int | None = None,
        progress: bool | None = None,
        tz: str | None = None,
        stat: str = "avg",
        reset_threshold: float | None = None,
        stats: str | Sequence[str] | None = None,
    ) -> Result:
        """The history of `points` of `site` in [start, end); see `When` for the times.

        Interval buckets lie in zone `tz` (an IANA name, or "site" for the site's own
        zone; `1day` starts at local midnight, `1week` on Monday, `1month` on the 1st)
        and carry `stat` (avg, min, max, sum, count, first, last, delta, twa, on_time);
        `Result.to_pandas` indexes them in that zone (`Result.zone`).

        `stats` names the statistics each bucket carries, in order, as
        `/api/aggregations?stat=` does (avg, min, max, sum, count, stddev, first, last,
        delta, twa, on_time): `Result.to_arrow()` and `to_pandas(long=True)` then have
        exactly those columns after `time, point, value` (`value` being the first);
        without it they carry `count, sum, min, max, avg, stddev`. An unknown name is a
        `BadRequest` naming `stats`, raised before anything is fetched.

        By default (`tz=None`) interval buckets lie in the site's zone; should the site
        record have no usable coordinates, they fall back to UTC with a `UserWarning`
        rather than failing a query whose caller never asked for a zone. An explicit
        `tz="site"` on such a site raises `BadRequest` naming `tz`. Raw samples are
        instants: by default they stay in UTC, without a look at the site record.
        """
        s = self.runtime.settings
        names = parse_stats(stats, interval=interval, stat=stat)
        now = self.runtime.engine.clock()
        defaulted = tz is None
        if tz is None:
            tz = "UTC" if interval == "raw" else SITE_ZONE
        query = Query(
            site,
            _points(points),
            parse_when(start, "start", now_ms=now),
            parse_when(end, "end", now_ms=now),
            interval,
            downsample,
            max_points,
            tz=tz,
            stat=stat,
            reset_threshold=reset_threshold,
            stats=names,
        ).validate(max_points=s.max_points_per_query, max_range_days=s.max_range_days)
        await self._confirm(site)
        try:
            query = await self.runtime.engine.resolve(query, token=self.token)
        except BadRequest as exc:
            if not defaulted or exc.parameter != "tz":
                raise
            warnings.warn(f"{exc.message}; buckets are in UTC instead", UserWarning, stacklevel=2)
            query = dataclasses.replace(query, tz="UTC")
        bar = _ProgressBar(query) if (self.progress if progress is None else progress) else None
        try:
            return await self.runtime.engine.query(
                query, token=self.token, progress=bar.update if bar else None
            )
        finally:
            if bar is not None:
                bar.close()

    async def sites(self) -> pd.DataFrame:
        """The sites this token may read, one row each (the origin's fields as columns)."""
        import pandas as pd

        return pd.DataFrame(await self.runtime.origin.list_sites(token=self.token))

    async def points(
        self,
        site: str,
        q: str | None = None,
        *,
        equipment: str | None = None,
        tag: str | None = None,
    ) -> pd.DataFrame:
        """The site's point catalogue, filtered: name, display name, unit, equipment, tags."""
        import pandas as pd

        await self._confirm(site)
        listing = await self.runtime.catalog.list(
            site, token=self.token, q=q, equipment=equipment, tag=tag
        )
        rows = [
            {
                "name": p.name,
                "display_name": p.display_name,
                "unit": p.unit,
                "equipment": p.equipment,
                "point_type": p.point_type,
                "tags": list(p.marker_tags),
                "collect_interval_s": p.collect_interval,
            }
            for p in listing.points
        ]
        columns = [
            "name",
            "display_name",
            "unit",
            "equipment",
            "point_type",
            "tags",
            "collect_interval_s",
        ]
        return pd.DataFrame(rows, columns=columns)

    async def _confirm(self, site: str) -> None:
        """The origin's word that this token may read `site`, before any cached data."""
        if site in self._confirmed:
            return
        try:
            await self.runtime.origin.get_site(site, token=self.token)
        except OriginMisconfigured as exc:
            url = self.runtime.settings.origin_url
            raise ConfigError(
                f"origin_url {url!r} does not answer as the ACE API: {exc.reason}"
            ) from exc
        self._confirmed.add(site)

    async def close(self) -> None:
        await self.runtime.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Client:
    """The blocking client for scripts (and notebooks that prefer it): `AsyncClient`'s
    methods without `await`, on an event loop of its own in a daemon thread."""

    def __init__(
        self,
        token: str,
        settings: Settings | None = None,
        *,
        progress: bool = True,
        **overrides: Any,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="acechart-client", daemon=True
        )
        self._thread.start()
        try:
            self._client = self._run(
                AsyncClient.open(token, settings, progress=progress, **overrides)
            )
        except BaseException:
            self._stop()
            raise

    @property
    def runtime(self) -> Runtime:
        return self._client.runtime

    def query(
        self,
        site: str,
        points: str | Iterable[str],
        start: When,
        end: When,
        *,
        interval: str = "raw",
        downsample: str | None = None,
        max_points: int | None = None,
        progress: bool | None = None,
        tz: str | None = None,
        stat: str = "avg",
        reset_threshold: float | None = None,
        stats: str | Sequence[str] | None = None,
    ) -> Result:
        """See `AsyncClient.query` (by default, interval buckets in the site's zone)."""
        return self._run(
            self._client.query(
                site,
                points,
                start,
                end,
                interval=interval,
                downsample=downsample,
                max_points=max_points,
                progress=progress,
                tz=tz,
                stat=stat,
                reset_threshold=reset_threshold,
                stats=stats,
            )
        )

    def sites(self) -> pd.DataFrame:
        """See `AsyncClient.sites`."""
        return self._run(self._client.sites())

    def points(
        self,
        site: str,
        q: str | None = None,
        *,
        equipment: str | None = None,
        tag: str | None = None,
    ) -> pd.DataFrame:
        """See `AsyncClient.points`."""
        return self._run(self._client.points(site, q, equipment=equipment, tag=tag))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._client.close())
        finally:
            self._stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class _ProgressBar:
    """A tqdm bar (notebook-aware) fed by the origin client's progress, shown only once a
    fetch has lasted a moment, so cached answers draw nothing."""

    _DELAY_S = 0.5

    def __init__(self, query: Query) -> None:
        self.query = query
        self.started = time.monotonic()
        self._bar: Any = None

    def update(self, p: Progress) -> None:
        if self._bar is None:
            if time.monotonic() - self.started < self._DELAY_S:
                return
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self._bar = tqdm(
                total=p.estimated_total or None, unit=" samples", desc=f"{self.query.site}"
            )
        if p.estimated_total:
            self._bar.total = max(p.estimated_total, p.samples)
        self._bar.n = p.samples
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


async def connect(token: str, settings: Settings | None = None, **overrides: Any) -> AsyncClient:
    """An `AsyncClient` (kept for the first notebook API: `await acechart.connect(...)`)."""
    return await AsyncClient.open(token, settings, **overrides)
