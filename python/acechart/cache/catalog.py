"""The point catalogue of each site: from the origin's configured_points into point_metadata.

A site's catalogue is fetched on first use and again once older than
`points_refresh_s` (the seed kept it in KV for 24 hours); in between every
listing is a SQLite query. Display name and equipment come from the point's
kv_tags (`dis`, `equip`) when the origin has them, else from its BACnet data,
else from its path (`.../AHU-1/AHU-1.points.SaTemp` -> `AHU-1`, `AHU-1 SaTemp`).
A refresh that fails while an older catalogue exists serves the older one.
The site's time zone (`tz=site`) follows from the latitude and longitude of the
origin's site record (`/sites/{site}`), looked up offline (`timezonefinder`) and
kept per catalogue version, so it costs one origin request per refresh.
Each record also keeps the origin's item whole (`PointRecord.origin`), for the
routes that answer in the origin's own shape.

This is the seed's KV tier, below the engine: the server's `/api/points` and a
notebook list and search the same catalogue. It reads the origin through the
`PointSource` protocol (the origin client satisfies it), so the cache layer
does not depend on the origin layer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from acechart.errors import BadRequest, OriginTimeout, OriginUnavailable
from acechart.storage.database import Database
from acechart.storage.records import PointRecord

__all__ = ["Listing", "PointCatalog", "PointSource", "record_from_origin"]

logger = logging.getLogger(__name__)


class PointSource(Protocol):
    """Where a site's configured points come from (the origin's `/configured_points`)."""

    async def list_points(self, site: str, *, token: str) -> Sequence[Mapping[str, Any]]: ...

    async def get_site(self, site: str, *, token: str) -> Mapping[str, Any]: ...


def _coordinate(record: Mapping[str, Any], key: str, limit: float) -> float | None:
    value = record.get(key)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if -limit <= number <= limit else None


def zone_of(record: Mapping[str, Any], finder: Any) -> str | None:
    """The IANA zone at a site record's `latitude`/`longitude` (or `geo_location`
    "lat,long"), or None when it has no usable coordinates."""
    lat, lng = _coordinate(record, "latitude", 90), _coordinate(record, "longitude", 180)
    if lat is None or lng is None:
        geo = record.get("geo_location")
        if isinstance(geo, str) and geo.count(",") == 1:
            a, b = geo.split(",")
            lat = _coordinate({"v": a.strip()}, "v", 90)
            lng = _coordinate({"v": b.strip()}, "v", 180)
    if lat is None or lng is None:
        return None
    found = finder.timezone_at(lat=lat, lng=lng)
    return str(found) if found else None


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def split_path(name: str) -> tuple[str | None, str]:
    """(equipment, short name) from a point path: the part before `.points.` is the device."""
    leaf = name.rstrip("/").rsplit("/", 1)[-1]
    device, sep, short = leaf.partition(".points.")
    if sep:
        return device or None, short or leaf
    parent = name.rstrip("/").rsplit("/", 2)
    return (parent[-2] if len(parent) >= 2 else None), leaf


def record_from_origin(item: Mapping[str, Any]) -> PointRecord:
    """A `point_metadata` row from one `/configured_points` item."""
    name = str(item["name"])
    kv = item.get("kv_tags") if isinstance(item.get("kv_tags"), dict) else {}
    bacnet = item.get("bacnet_data") if isinstance(item.get("bacnet_data"), dict) else {}
    assert isinstance(kv, dict) and isinstance(bacnet, dict)
    path_equipment, short = split_path(name)
    equipment = _text(kv.get("equip")) or _text(bacnet.get("device_name")) or path_equipment
    short = _text(bacnet.get("object_name")) or short
    display = _text(kv.get("dis")) or " ".join(p for p in (equipment, short) if p)
    tags = item.get("marker_tags") or []
    interval = item.get("collect_interval")
    return PointRecord(
        name=name,
        display_name=display.replace("_", " "),
        equipment=equipment,
        equipment_id=_text(bacnet.get("device_id")),
        equipment_name=_text(bacnet.get("device_description")) or equipment,
        point_type=_text(bacnet.get("object_type")) or _text(item.get("point_type")),
        unit=_text(kv.get("unit")),
        marker_tags=tuple(str(t) for t in tags if isinstance(t, str)),
        kv_tags=dict(kv),
        collect_interval=int(interval) if isinstance(interval, int | float) else None,
        origin=dict(item),
    )


@dataclass(frozen=True)
class Listing:
    points: list[PointRecord]
    updated_at: int | None
    """Unix seconds of the catalogue's last refresh."""
    stale: bool
    """True when a due refresh failed and an older catalogue was served."""


class PointCatalog:
    def __init__(
        self,
        db: Database,
        origin: PointSource,
        *,
        refresh_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.origin = origin
        self.refresh_s = refresh_s
        self.clock = clock
        self._refreshing: dict[str, asyncio.Task[int]] = {}
        self._cadences: dict[str, tuple[int, dict[str, int]]] = {}
        """Per site: the catalogue version (its refresh time) and its cadences."""
        self._names: dict[str, tuple[int, frozenset[str]]] = {}
        self._zones: dict[str, tuple[int, str]] = {}
        """Per site: the catalogue version and the site's time zone."""
        self._finder: Any = None

    async def list(
        self,
        site: str,
        *,
        token: str,
        q: str | None = None,
        equipment: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Listing:
        """The site's points (refreshed first when due), filtered; the caller checked access."""
        updated, stale = await self._fresh(site, token)
        points = await self.db.points(site, q or None, equipment, tag, limit=limit, offset=offset)
        return Listing(points, updated, stale)

    async def names(self, site: str, *, token: str) -> frozenset[str]:
        """Every point name of `site` (refreshed first when due): what a query may name.

        Kept in memory per catalogue version, so checking a query's points costs
        one indexed lookup of the catalogue's age, not a listing.
        """
        updated, _ = await self._fresh(site, token)
        held = self._names.get(site)
        if held is not None and updated is not None and held[0] == updated:
            return held[1]
        names = frozenset(p.name for p in await self.db.points(site))
        if updated is not None:
            self._names[site] = (updated, names)
        return names

    async def site_zone(self, site: str, *, token: str) -> str:
        """The IANA time zone of `site`, from its coordinates; kept per catalogue version.

        A site record without coordinates is a 400 naming `tz`: the caller must then
        name the zone.
        """
        updated, _ = await self._fresh(site, token)
        held = self._zones.get(site)
        if held is not None and updated is not None and held[0] == updated:
            return held[1]
        record = await self.origin.get_site(site, token=token)
        if self._finder is None:
            from timezonefinder import TimezoneFinder

            self._finder = await asyncio.to_thread(TimezoneFinder)
        zone = zone_of(record, self._finder)
        if zone is None:
            raise BadRequest(
                f"tz=site: the record of site {site} has no usable latitude and longitude;"
                " name the zone instead (tz=America/Chicago)",
                parameter="tz",
            )
        if updated is not None:
            self._zones[site] = (updated, zone)
        return zone

    async def _fresh(self, site: str, token: str) -> tuple[int | None, bool]:
        """(when the catalogue was written, whether it is stale), refreshing it when due."""
        updated = await self.db.points_updated_at(site)
        stale = False
        if updated is None or self.clock() - updated >= self.refresh_s:
            try:
                await self.refresh(site, token=token)
            except (OriginUnavailable, OriginTimeout):
                if updated is None:
                    raise
                logger.warning("point catalogue refresh of %s failed; serving the older one", site)
                stale = True
            updated = await self.db.points_updated_at(site)
        return updated, stale

    async def cadences(self, site: str, *, token: str) -> dict[str, int]:
        """Every catalogued point of `site` and its collection interval in ms (a point
        without one is taken at one minute): what the fetch strategy estimates from."""
        updated = await self.db.points_updated_at(site)
        cached = self._cadences.get(site)
        fresh = updated is not None and self.clock() - updated < self.refresh_s
        if cached is not None and fresh and cached[0] == updated:
            return cached[1]  # one cheap lookup per gap fetch, not the whole catalogue
        listing = await self.list(site, token=token)
        found = {p.name: (p.collect_interval or 60) * 1000 for p in listing.points}
        if listing.updated_at is not None:
            self._cadences[site] = (listing.updated_at, found)
        return found

    async def close(self) -> None:
        """Stop catalogue refreshes still running."""
        tasks = list(self._refreshing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def refresh(self, site: str, *, token: str) -> int:
        """Refetch the whole catalogue of `site`; concurrent callers share one fetch."""
        task = self._refreshing.get(site)
        if task is None:
            task = asyncio.create_task(self._refresh(site, token))
            self._refreshing[site] = task
            task.add_done_callback(lambda _t: self._refreshing.pop(site, None))
        return await asyncio.shield(task)

    async def _refresh(self, site: str, token: str) -> int:
        items = await self.origin.list_points(site, token=token)
        records = [record_from_origin(item) for item in items if item.get("name")]
        count = await self.db.upsert_points(site, records, replace=True, now=int(self.clock()))
        self._names.pop(site, None)
        logger.info("point catalogue of %s refreshed: %d points", site, count)
        return count
