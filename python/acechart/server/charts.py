"""Saved charts (the seed's `chart_configs`): who may do what, their objects, thumbnails.

A chart belongs to the token that saved it, recorded as that token's stable
fingerprint (an HMAC under the deployment's job token key, so ownership holds
across restarts and instances; never the token). The rules:

- only the owner may change or delete a chart;
- a public chart is readable by any token the origin confirms for the
  chart's site (the same (token, site) check as every data route), and by no
  other;
- a private chart is invisible to every other token: the same 404 as an
  unknown id, so an id reveals nothing.

Each chart's config is also kept as `charts/{id}/config.json` in the object
store (the seed's bucket layout), and its thumbnail as
`charts/{id}/thumbnail.png`: a PNG of what the dashboard draws for its saved
query (its chart type, interval, statistic and zone), drawn by the Rust core
from the engine's answer downsampled to the thumbnail's width (MinMaxLTTB). A
stored thumbnail is served until the data's TTL (the seed's table, by how old
the range's end is) has passed or the chart changed, then drawn again.

A chart's query always names its zone (`tz`, `site` unless given); rows saved
before it did read as `site`, the dashboard's default, which it left out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from acechart._core import render_heatmap, render_thumbnail
from acechart.buckets import SITE, check_zone, wall_clock
from acechart.cache.catalog import PointCatalog
from acechart.cache.policy import retention
from acechart.engine import Engine
from acechart.errors import BadRequest, DeadlineExceeded, Forbidden, NotFound, OriginAuthError
from acechart.query import (
    DOWNSAMPLERS,
    INTERVALS,
    STATS,
    Query,
    check_point_name,
    check_site,
    parse_instant,
)
from acechart.server.auth import SiteAccess
from acechart.storage.charts import CHART_SORTS, ChartRecord, ChartSort, ChartTable
from acechart.storage.keys import chart_key, chart_prefix
from acechart.storage.objects import ObjectStore
from acechart.times import format_time

__all__ = [
    "CHART_SORTS",
    "CHART_TYPES",
    "MAX_CONFIG_BYTES",
    "THUMBNAIL_HEIGHT",
    "THUMBNAIL_WIDTH",
    "ChartNotFound",
    "ChartService",
    "Thumbnail",
    "auto_interval",
    "chart_json",
    "heat_grid",
    "saved_query",
]

logger = logging.getLogger(__name__)

CHART_TYPES = ("line", "bar", "scatter", "heatmap")
#: Largest `configJson`, as compact JSON: ECharts options with a few dozen series fit
#: in a few kilobytes; the data is never part of them.
MAX_CONFIG_BYTES = 256 * 1024
MAX_TITLE_CHARS = 200
THUMBNAIL_WIDTH = 400
THUMBNAIL_HEIGHT = 200
#: Keys of a chart's `query` object.
QUERY_KEYS = frozenset({"start", "end", "interval", "stat", "tz", "downsample"})
#: `query.interval` may also be `auto` (or be left out): the dashboard's choice by the
#: range and the plot's width (`auto_interval`).
AUTO = "auto"
#: The intervals `auto` picks from, finest first, and the longest range drawn as raw
#: samples: the dashboard's rule (dashboard.js `autoInterval`).
AUTO_INTERVALS = ("1min", "5min", "1hr", "1day")
AUTO_RAW_MAX_MS = 3 * 86_400_000
#: At most this many buckets per pixel: two for lines and dots, a quarter for bars (each
#: bar at least four pixels wide).
AUTO_PER_PIXEL = {"line": 2.0, "scatter": 2.0, "bar": 0.25}
_ID = re.compile(r"^[0-9a-f]{32}$")


class ChartNotFound(NotFound):
    """No such chart for this caller: unknown, deleted, private to another token, or on a
    site this token may not read. All read alike."""


def chart_json(chart: ChartRecord, viewer: str) -> dict[str, Any]:
    """The API's form of a chart; `owned` says whether `viewer` (a fingerprint) owns it."""
    return {
        "id": chart.id,
        "userId": chart.user_id,
        "siteId": chart.site_id,
        "chartType": chart.chart_type,
        "title": chart.title,
        "pointNames": list(chart.point_names),
        "configJson": json.loads(chart.config_json),
        "query": saved_query(chart),
        "thumbnailUrl": chart.thumbnail_url,
        "isPublic": chart.is_public,
        "viewCount": chart.view_count,
        "createdAt": format_time(chart.created_at * 1000),
        "updatedAt": format_time(chart.updated_at * 1000),
        "owned": chart.user_id == viewer,
    }


def saved_query(chart: ChartRecord) -> dict[str, Any]:
    """The chart's query, naming its zone: a row saved before every chart stored `tz`
    was saved by a dashboard that left out its default, the site's zone."""
    return {**chart.query, "tz": chart.query.get("tz") or SITE}


def auto_interval(chart_type: str, span_ms: int, width: int) -> str:
    """The interval the dashboard's `auto` draws `chart_type` with over `span_ms` on a
    plot `width` pixels wide: heat maps hourly; lines and dots raw samples up to three
    days; otherwise the finest interval within `AUTO_PER_PIXEL` buckets per pixel."""
    if chart_type == "heatmap":
        return "1hr"
    if chart_type != "bar" and span_ms <= AUTO_RAW_MAX_MS:
        return "raw"
    budget = AUTO_PER_PIXEL.get(chart_type, 2.0) * width
    for name in AUTO_INTERVALS:
        width_ms = INTERVALS[name]
        if width_ms is not None and span_ms / width_ms <= budget:
            return name
    return AUTO_INTERVALS[-1]


def heat_grid(
    ts: np.ndarray[Any, np.dtype[np.int64]],
    values: np.ndarray[Any, np.dtype[np.float64]],
    tz: str,
    start_ms: int,
    end_ms: int,
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Hourly buckets as a heat map's cells: 24 rows (the hour on the zone's wall clock,
    midnight first) by one column per local date from `start_ms`'s to `end_ms`'s; NaN
    where no bucket falls. The repeated hour of a night the clocks go back holds its
    second bucket, and the hour they skip stays empty."""
    (first, last), _ = wall_clock(np.array([start_ms, max(start_ms, end_ms - 1)]), tz)
    grid = np.full((24, int(last - first) + 1), np.nan)
    days, hours = wall_clock(ts, tz)
    inside = (days >= first) & (days <= last)
    grid[hours[inside], days[inside] - first] = values[inside]
    return grid


@dataclass(frozen=True)
class Thumbnail:
    png: bytes
    cached: bool
    """True when the stored PNG was served, False when it was drawn for this request."""
    expires_at: int
    """Unix seconds until which it is served without drawing it again."""


class ChartService:
    """Saved charts over the chart table, the object store, the engine and site access."""

    def __init__(
        self,
        table: ChartTable,
        store: ObjectStore,
        engine: Engine,
        access: SiteAccess,
        catalog: PointCatalog,
        *,
        owner_of: Callable[[str], str],
        max_points: int,
        max_range_days: int,
        deadline_s: float = 20.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self.store = store
        self.engine = engine
        self.access = access
        self.catalog = catalog
        self.owner_of = owner_of
        """A token's stable fingerprint: the `userId` of the charts it saves."""
        self.max_points = max_points
        self.max_range_days = max_range_days
        self.deadline_s = deadline_s
        """How long a thumbnail request waits for its drawing (the data routes' deadline)."""
        self.clock = clock
        self._drawing: dict[str, asyncio.Task[Thumbnail]] = {}

    # --- the API's operations ------------------------------------------------------

    async def create(self, body: object, token: str) -> ChartRecord:
        """A new chart of the caller from a POST body (after the token's check for the site)."""
        fields = self._fields(body, partial=False)
        site = fields.pop("site_id")
        await self.access.check(token, site)
        now = int(self.clock())
        chart_id = uuid.uuid4().hex
        chart = ChartRecord(
            id=chart_id,
            user_id=self.owner_of(token),
            site_id=site,
            chart_type=fields.get("chart_type", "line"),
            title=fields.get("title"),
            point_names=tuple(fields["point_names"]),
            config_json=fields.get("config_json", "{}"),
            thumbnail_url=f"/api/charts/{chart_id}/thumbnail.png",
            is_public=bool(fields.get("is_public", False)),
            view_count=0,
            created_at=now,
            updated_at=now,
            query_json=fields.get("query_json"),
        )
        await self.table.insert(chart)
        await self._write_config(chart)
        return chart

    async def view(self, chart_id: str, token: str) -> ChartRecord:
        """The chart, after counting one view; `ChartNotFound` unless the caller may read it."""
        chart = await self.readable(chart_id, token)
        await self.table.count_view(chart.id)
        return _with_views(chart, chart.view_count + 1)

    async def readable(self, chart_id: str, token: str) -> ChartRecord:
        """The chart if `token` owns it, or it is public and the origin confirms `token` for
        its site; `ChartNotFound` otherwise (a refusal reads as absence)."""
        chart = await self._get(chart_id)
        if chart.user_id == self.owner_of(token):
            return chart
        if not chart.is_public:
            raise ChartNotFound(f"no chart {chart_id}", chartId=chart_id)
        try:
            await self.access.check(token, chart.site_id)
        except (Forbidden, NotFound, OriginAuthError):
            raise ChartNotFound(f"no chart {chart_id}", chartId=chart_id) from None
        return chart

    async def update(
        self, chart_id: str, body: object, token: str, *, partial: bool
    ) -> ChartRecord:
        """PUT (`partial=False`: every field as for a new chart) or PATCH (the given ones)."""
        chart = await self._owned(chart_id, token)
        fields = self._fields(body, partial=partial)
        site = fields.pop("site_id", chart.site_id)
        if site != chart.site_id:
            raise BadRequest("a chart's siteId cannot change", parameter="siteId")
        if not partial:
            fields.setdefault("chart_type", "line")
            fields.setdefault("title", None)
            fields.setdefault("config_json", "{}")
            fields.setdefault("is_public", False)
        now = max(int(self.clock()), chart.updated_at + 1)
        if not await self.table.update(chart.id, chart.user_id, fields, now=now):
            raise ChartNotFound(f"no chart {chart_id}", chartId=chart_id)
        updated = await self._get(chart.id)
        await self._write_config(updated)
        # The picture may no longer match: drawn again on its next request.
        await self.store.delete(chart_key(chart.id, "thumbnail.png"))
        return updated

    async def delete(self, chart_id: str, token: str) -> None:
        chart = await self._owned(chart_id, token)
        if not await self.table.delete(chart.id, chart.user_id):
            raise ChartNotFound(f"no chart {chart_id}", chartId=chart_id)
        keys = [info.key async for info in self.store.list(chart_prefix(chart.id))]
        await self.store.delete_many(keys)

    async def list_owned(
        self, token: str, *, site: str | None, sort: ChartSort, limit: int, offset: int
    ) -> list[ChartRecord]:
        return await self.table.list_owned(
            self.owner_of(token), site=site, sort=sort, limit=limit, offset=offset
        )

    async def list_public(
        self, token: str, site: str, *, sort: ChartSort, limit: int, offset: int
    ) -> list[ChartRecord]:
        """A site's public charts, for a token the origin confirms for that site."""
        await self.access.check(token, site)
        return await self.table.list_public(site, sort=sort, limit=limit, offset=offset)

    async def thumbnail(self, chart_id: str, token: str) -> Thumbnail:
        """The chart's PNG: the stored one while fresh, else drawn now (and stored)."""
        chart = await self.readable(chart_id, token)
        # The data is read with the caller's rights, so the caller's word from the origin
        # is needed even for the owner's own chart.
        await self.access.check(token, chart.site_id)
        key = chart_key(chart.id, "thumbnail.png")
        now = int(self.clock())
        info = await self.store.head(key)
        if info is not None and info.metadata is not None:
            expires = _int(info.metadata.get("expires-at"))
            version = _int(info.metadata.get("chart-updated"))
            if expires is not None and expires > now and version == chart.updated_at:
                return Thumbnail(await self.store.get(key), True, expires)
        # Concurrent first requests of one chart share one drawing, which goes on (and
        # stores its PNG for the next request) when a request stops waiting at its deadline.
        task = self._drawing.get(chart.id)
        if task is None:
            task = asyncio.create_task(self._draw(chart, token, key))
            self._drawing[chart.id] = task
            task.add_done_callback(lambda t: self._drawn(chart.id, t))
        try:
            async with asyncio.timeout(self.deadline_s):
                return await asyncio.shield(task)
        except TimeoutError:
            raise DeadlineExceeded(
                f"the thumbnail's data did not arrive within {self.deadline_s:g} s (the origin"
                " is slow); it is still being drawn, ask again shortly",
                retry_after=max(1.0, self.deadline_s),
            ) from None

    def _drawn(self, chart_id: str, task: asyncio.Task[Thumbnail]) -> None:
        self._drawing.pop(chart_id, None)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("thumbnail of chart %s failed: %s", chart_id, task.exception())

    # --- internals -------------------------------------------------------------------

    async def _draw(self, chart: ChartRecord, token: str, key: str) -> Thumbnail:
        now_ms = int(self.clock() * 1000)
        query = await self._resolved(self.query_of(chart, now_ms), token)
        result = await self.engine.query(query, token=token)
        if chart.chart_type == "heatmap":
            first = result.series[0] if result.series else None
            cells = (
                heat_grid(first.ts, first.values, query.tz, query.start_ms, query.end_ms)
                if first is not None
                else np.full((24, 1), np.nan)
            )
            png = await asyncio.to_thread(render_heatmap, cells, THUMBNAIL_WIDTH, THUMBNAIL_HEIGHT)
        else:
            steps, groups = await self._styles(chart, token)
            series = [
                (
                    np.ascontiguousarray(s.ts, dtype=np.int64),
                    np.ascontiguousarray(s.values, dtype=np.float64),
                    groups.get(s.name, 0),
                    _mark(chart.chart_type, s.name in steps),
                )
                for s in result.series
            ]
            png = await asyncio.to_thread(
                render_thumbnail,
                series,
                THUMBNAIL_WIDTH,
                THUMBNAIL_HEIGHT,
                query.start_ms,
                query.end_ms,
            )
        ttl = retention(min(query.end_ms, now_ms), now_ms).edge_s
        expires = now_ms // 1000 + ttl
        await self.store.put(
            key,
            png,
            metadata={"expires-at": str(expires), "chart-updated": str(chart.updated_at)},
            content_type="image/png",
        )
        return Thumbnail(png, False, expires)

    def query_of(self, chart: ChartRecord, now_ms: int) -> Query:
        """The engine query of a chart's thumbnail: what the dashboard asks for the saved
        query (its interval, `auto` picked at the thumbnail's width, its statistic for
        interval series, its zone), downsampled (MinMaxLTTB) to the thumbnail's width;
        for a heat map, the first point's hourly buckets."""
        saved = saved_query(chart)
        start = parse_instant(str(saved.get("start", "-1d")), "query.start", now_ms=now_ms)
        end = parse_instant(str(saved.get("end", "now")), "query.end", now_ms=now_ms)
        interval = str(saved.get("interval") or AUTO)
        if chart.chart_type == "heatmap" or interval == AUTO:
            interval = auto_interval(chart.chart_type, end - start, THUMBNAIL_WIDTH)
        heatmap = chart.chart_type == "heatmap"
        return Query(
            chart.site_id,
            chart.point_names[:1] if heatmap else chart.point_names,
            start,
            end,
            interval,
            None if heatmap else "minmaxlttb",
            None if heatmap else THUMBNAIL_WIDTH,
            tz=str(saved["tz"]),
            # Raw samples carry no statistic: the dashboard draws them whatever `stat` says.
            stat=str(saved.get("stat") or "avg") if interval != "raw" else "avg",
        ).validate(max_points=self.max_points, max_range_days=self.max_range_days)

    async def _resolved(self, query: Query, token: str) -> Query:
        """`query` in the site's zone; in UTC for a site whose record has no coordinates
        (as the dashboard then draws it)."""
        try:
            return await self.engine.resolve(query, token=token)
        except BadRequest as exc:
            if query.tz != SITE or exc.parameter != "tz":
                raise
            return dataclasses.replace(query, tz="UTC")

    async def _styles(self, chart: ChartRecord, token: str) -> tuple[set[str], dict[str, int]]:
        """Which points are binary (drawn as steps) and each point's y-scale group (by unit),
        from the catalogue; without it, lines with one shared scale."""
        try:
            listing = await self.catalog.list(chart.site_id, token=token)
        except Exception as exc:  # the picture is still worth drawing without styles
            logger.warning("catalogue of %s unavailable for a thumbnail: %s", chart.site_id, exc)
            return set(), {}
        wanted = set(chart.point_names)
        records = {p.name: p for p in listing.points if p.name in wanted}
        steps = {n for n, p in records.items() if (p.point_type or "").startswith("binary")}
        units: dict[str, int] = {}
        groups: dict[str, int] = {}
        for name in chart.point_names:
            unit = records[name].unit if name in records else None
            groups[name] = units.setdefault(unit or "", len(units))
        return steps, groups

    async def _get(self, chart_id: str) -> ChartRecord:
        if not _ID.fullmatch(chart_id):
            raise ChartNotFound(f"no chart {chart_id[:64]}", chartId=chart_id[:64])
        chart = await self.table.get(chart_id)
        if chart is None:
            raise ChartNotFound(f"no chart {chart_id}", chartId=chart_id)
        return chart

    async def _owned(self, chart_id: str, token: str) -> ChartRecord:
        """The chart if `token` owns it; 403 if the caller may read but not change it."""
        chart = await self.readable(chart_id, token)
        if chart.user_id != self.owner_of(token):
            raise Forbidden("only the chart's owner may change or delete it", chartId=chart_id)
        return chart

    async def _write_config(self, chart: ChartRecord) -> None:
        document = {
            "id": chart.id,
            "siteId": chart.site_id,
            "chartType": chart.chart_type,
            "title": chart.title,
            "pointNames": list(chart.point_names),
            "query": chart.query,
            "isPublic": chart.is_public,
            "updatedAt": format_time(chart.updated_at * 1000),
            "configJson": json.loads(chart.config_json),
        }
        await self.store.put(
            chart_key(chart.id, "config.json"),
            json.dumps(document, ensure_ascii=False).encode(),
            content_type="application/json",
        )

    def _fields(self, body: object, *, partial: bool) -> dict[str, Any]:
        """A request body's fields, validated, under the table's column names."""
        if not isinstance(body, Mapping):
            raise BadRequest(
                "the body must be a JSON object of the chart's fields", parameter="body"
            )
        known = {
            "siteId", "chartType", "title", "pointNames", "configJson", "isPublic", "query",
            # Read-only fields a client may send back unchanged from a GET.
            "id", "userId", "thumbnailUrl", "viewCount", "createdAt", "updatedAt", "owned",
        }  # fmt: skip
        unknown = sorted(set(body) - known)
        if unknown:
            raise BadRequest(f"unknown chart field(s): {', '.join(unknown)}", parameter=unknown[0])
        out: dict[str, Any] = {}
        if "siteId" in body or not partial:
            out["site_id"] = check_site(body.get("siteId"), "siteId")
        if "chartType" in body:
            kind = body["chartType"]
            if kind not in CHART_TYPES:
                raise BadRequest(
                    f"chartType must be one of {', '.join(CHART_TYPES)}", parameter="chartType"
                )
            out["chart_type"] = kind
        if "title" in body:
            title = body["title"]
            if title is not None and (not isinstance(title, str) or len(title) > MAX_TITLE_CHARS):
                raise BadRequest(
                    f"title must be a string of at most {MAX_TITLE_CHARS} characters",
                    parameter="title",
                )
            out["title"] = (title.strip() or None) if isinstance(title, str) else None
        if "pointNames" in body or not partial:
            out["point_names"] = self._points(body.get("pointNames"))
        if "configJson" in body:
            out["config_json"] = _config(body["configJson"])
        if "isPublic" in body:
            if not isinstance(body["isPublic"], bool):
                raise BadRequest("isPublic must be true or false", parameter="isPublic")
            out["is_public"] = body["isPublic"]
        if "query" in body or not partial:
            out["query_json"] = self._query(body.get("query"))
        return out

    def _points(self, value: object) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise BadRequest(
                "pointNames must be a non-empty list of point names", parameter="pointNames"
            )
        names = tuple(check_point_name(n, "pointNames") for n in value)
        if len(names) > self.max_points:
            raise BadRequest(
                f"too many points: {len(names)} > {self.max_points}", parameter="pointNames"
            )
        if len(set(names)) != len(names):
            raise BadRequest("pointNames must not repeat a name", parameter="pointNames")
        return names

    def _query(self, value: object) -> str:
        """The saved query as compact JSON, after checking it resolves to a valid range;
        none at all is the defaults (the last day, `auto`, the site's zone)."""
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise BadRequest(
                "query must be an object (start, end, interval, ...)", parameter="query"
            )
        unknown = sorted(set(value) - QUERY_KEYS)
        if unknown:
            raise BadRequest(
                f"unknown query field(s): {', '.join(unknown)}", parameter=f"query.{unknown[0]}"
            )
        clean: dict[str, str] = {}
        for name in sorted(value):
            item = value[name]
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise BadRequest(f"query.{name} must be a string", parameter=f"query.{name}")
            clean[name] = str(item).strip()
        now_ms = int(self.clock() * 1000)
        start = parse_instant(clean.get("start", "-1d"), "query.start", now_ms=now_ms)
        end = parse_instant(clean.get("end", "now"), "query.end", now_ms=now_ms)
        interval = clean.get("interval") or AUTO
        if interval != AUTO and interval not in INTERVALS:
            raise BadRequest(
                f"query.interval must be one of {AUTO}, {', '.join(INTERVALS)}",
                parameter="query.interval",
            )
        if "stat" in clean and clean["stat"] not in STATS:
            raise BadRequest(
                f"query.stat must be one of {', '.join(STATS)}", parameter="query.stat"
            )
        # Every saved query names its zone, so a reader never has to guess a default.
        clean["tz"] = clean.get("tz") or SITE
        if clean["tz"] != SITE:
            check_zone(clean["tz"], "query.tz")
        if "downsample" in clean and clean["downsample"] not in DOWNSAMPLERS:
            raise BadRequest(
                f"query.downsample must be one of {', '.join(DOWNSAMPLERS)}",
                parameter="query.downsample",
            )
        if end <= start:
            raise BadRequest("query.end must be after query.start", parameter="query.end")
        if end - start > self.max_range_days * 86_400_000:
            raise BadRequest(
                f"query range too long: at most {self.max_range_days} days",
                parameter="query.end",
            )
        return json.dumps(clean, separators=(",", ":"))


def _config(value: object) -> str:
    """`configJson` (an object, or a string holding one) as compact JSON within the bound."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise BadRequest("configJson is not valid JSON", parameter="configJson") from None
    if not isinstance(value, dict):
        raise BadRequest(
            "configJson must be a JSON object (ECharts options)", parameter="configJson"
        )
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise BadRequest(
            "configJson must not hold NaN or Infinity", parameter="configJson"
        ) from None
    size = len(text.encode())
    if size > MAX_CONFIG_BYTES:
        raise BadRequest(
            f"configJson is {size} bytes, more than {MAX_CONFIG_BYTES}",
            parameter="configJson",
            maxBytes=MAX_CONFIG_BYTES,
        )
    return text


def _mark(chart_type: str, binary: bool) -> Literal["line", "step", "bar", "scatter"]:
    """How a series of a `chart_type` chart is drawn: as bars or dots, or as a line
    (steps for a binary point)."""
    if chart_type == "bar":
        return "bar"
    if chart_type == "scatter":
        return "scatter"
    return "step" if binary else "line"


def _with_views(chart: ChartRecord, views: int) -> ChartRecord:
    return dataclasses.replace(chart, view_count=views)


def _int(text: str | None) -> int | None:
    if text is None or not text.isdigit():
        return None
    return int(text)
