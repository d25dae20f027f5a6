"""Saved charts: the rows of the seed's `chart_configs` table and their SQL.

`ChartTable` is the repository the chart service uses; it speaks only through
the `Database` API (`fetchall`, `fetchone`, `execute`) with `?` parameters and
plain SQL that SQLite and PostgreSQL read alike (no JSON functions, no
`unixepoch()`, no upsert), so the same statements serve either backend. Times
are unix seconds, given by the caller (the service's clock), never a column
default. JSON columns (`point_names`, `config_json`, `query_json`) are text
the service has validated; this module only stores and returns them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from acechart.storage.database import Database

__all__ = ["CHART_SORTS", "ChartRecord", "ChartSort", "ChartTable"]

ChartSort = Literal["recent", "popular"]
#: List orders, each backed by one of the seed's indexes: `recent` by creation time
#: (idx_chart_user), `popular` by views (idx_chart_popular); ties newest first, then id.
CHART_SORTS: dict[str, str] = {
    "recent": "created_at DESC, id",
    "popular": "view_count DESC, created_at DESC, id",
}

_COLUMNS = (
    "id, user_id, site_id, chart_type, title, point_names, config_json, thumbnail_url,"
    " is_public, view_count, created_at, updated_at, query_json"
)
#: Columns `update` may set (the service's names for them).
_UPDATABLE = {
    "chart_type": "chart_type",
    "title": "title",
    "point_names": "point_names",
    "config_json": "config_json",
    "thumbnail_url": "thumbnail_url",
    "is_public": "is_public",
    "query_json": "query_json",
}


@dataclass(frozen=True, slots=True)
class ChartRecord:
    """One `chart_configs` row. `point_names` decoded from its JSON array; `config_json`
    and `query_json` kept as the JSON text stored (the service parses them when asked)."""

    id: str
    user_id: str
    site_id: str
    chart_type: str
    title: str | None
    point_names: tuple[str, ...]
    config_json: str
    thumbnail_url: str | None
    is_public: bool
    view_count: int
    created_at: int
    updated_at: int
    query_json: str | None = None

    @property
    def query(self) -> dict[str, Any]:
        """The chart's query object (empty when none was saved)."""
        if not self.query_json:
            return {}
        value = json.loads(self.query_json)
        return value if isinstance(value, dict) else {}


def _record(row: Mapping[str, Any] | Any) -> ChartRecord:
    names = json.loads(row["point_names"]) if row["point_names"] else []
    return ChartRecord(
        id=row["id"],
        user_id=row["user_id"],
        site_id=row["site_id"],
        chart_type=row["chart_type"],
        title=row["title"],
        point_names=tuple(str(n) for n in names),
        config_json=row["config_json"],
        thumbnail_url=row["thumbnail_url"],
        is_public=bool(row["is_public"]),
        view_count=int(row["view_count"] or 0),
        created_at=int(row["created_at"] or 0),
        updated_at=int(row["updated_at"] or 0),
        query_json=row["query_json"],
    )


class ChartTable:
    """Insert, read, update, count views of and delete saved charts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, chart: ChartRecord) -> None:
        await self.db.execute(
            f"INSERT INTO chart_configs ({_COLUMNS}) VALUES ({', '.join('?' * 13)})",
            (
                chart.id,
                chart.user_id,
                chart.site_id,
                chart.chart_type,
                chart.title,
                json.dumps(list(chart.point_names)),
                chart.config_json,
                chart.thumbnail_url,
                chart.is_public,
                chart.view_count,
                chart.created_at,
                chart.updated_at,
                chart.query_json,
            ),
        )

    async def get(self, chart_id: str) -> ChartRecord | None:
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM chart_configs WHERE id = ?", (chart_id,)
        )
        return None if row is None else _record(row)

    async def count_view(self, chart_id: str) -> int:
        """Add one view; returns the rows changed (0: no such chart)."""
        return await self.db.execute(
            "UPDATE chart_configs SET view_count = view_count + 1 WHERE id = ?", (chart_id,)
        )

    async def update(
        self, chart_id: str, user_id: str, changes: Mapping[str, Any], *, now: int
    ) -> bool:
        """Set `changes` (service names: title, point_names, ...) of the owner's chart and
        `updated_at`; False when no chart of that id belongs to `user_id`."""
        unknown = set(changes) - set(_UPDATABLE)
        if unknown:
            raise ValueError(f"chart columns that cannot be updated: {sorted(unknown)}")
        sets = [f"{_UPDATABLE[name]} = ?" for name in changes]
        values: list[Any] = [
            json.dumps(list(v)) if name == "point_names" else v for name, v in changes.items()
        ]
        sets.append("updated_at = ?")
        values += [now, chart_id, user_id]
        changed = await self.db.execute(
            f"UPDATE chart_configs SET {', '.join(sets)} WHERE id = ? AND user_id = ?", values
        )
        return changed > 0

    async def delete(self, chart_id: str, user_id: str) -> bool:
        """Delete the owner's chart; False when no chart of that id belongs to `user_id`."""
        changed = await self.db.execute(
            "DELETE FROM chart_configs WHERE id = ? AND user_id = ?", (chart_id, user_id)
        )
        return changed > 0

    async def list_owned(
        self,
        user_id: str,
        *,
        site: str | None = None,
        sort: ChartSort = "recent",
        limit: int = 50,
        offset: int = 0,
    ) -> list[ChartRecord]:
        """The charts of `user_id` (of one site if given), in `sort` order."""
        where, params = ["user_id = ?"], [user_id]
        if site is not None:
            where.append("site_id = ?")
            params.append(site)
        return await self._list(" AND ".join(where), params, sort, limit, offset)

    async def list_public(
        self, site: str, *, sort: ChartSort = "recent", limit: int = 50, offset: int = 0
    ) -> list[ChartRecord]:
        """The public charts of `site` (idx_chart_site), in `sort` order."""
        return await self._list("site_id = ? AND is_public = ?", [site, True], sort, limit, offset)

    async def _list(
        self, where: str, params: list[Any], sort: ChartSort, limit: int, offset: int
    ) -> list[ChartRecord]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM chart_configs WHERE {where}"
            f" ORDER BY {CHART_SORTS[sort]} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_record(row) for row in rows]
