"""Retention and freshness by data age: the seed's TTL table (section 3.3).

| tier       | data age   | edge (L1 / Cache-Control) | blocks (R2) | aggregates (D1) |
|------------|------------|---------------------------|-------------|-----------------|
| realtime   | < 1 day    | 5 min                     | 1 hour *    | -               |
| recent     | < 7 days   | 10 min                    | 1 hour      | -               |
| historical | < 90 days  | 1 hour                    | 24 hours    | 7 days          |
| archived   | >= 90 days | 24 hours                  | 30 days     | permanent       |

* The seed does not cache realtime data in R2. Here only sealed samples (older
than the freshness horizon) are ever stored, and they never change, so keeping
them for an hour saves refetching a dashboard's last day on every refresh.
"""

from __future__ import annotations

from dataclasses import dataclass

from acechart.storage.records import Tier

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Retention:
    edge_s: int
    blocks_s: int
    aggregates_s: int | None  # None: never expire; 0: not stored


TABLE: dict[Tier, Retention] = {
    "realtime": Retention(edge_s=300, blocks_s=3600, aggregates_s=0),
    "recent": Retention(edge_s=600, blocks_s=3600, aggregates_s=0),
    "historical": Retention(edge_s=3600, blocks_s=86_400, aggregates_s=604_800),
    "archived": Retention(edge_s=86_400, blocks_s=2_592_000, aggregates_s=None),
}


def tier_of(end_ms: int, now_ms: int) -> Tier:
    """The seed's `determineDataAge`: by how long ago the data ends."""
    days = (now_ms - end_ms) / DAY_MS
    if days < 1:
        return "realtime"
    if days < 7:
        return "recent"
    if days < 90:
        return "historical"
    return "archived"


def retention(end_ms: int, now_ms: int) -> Retention:
    return TABLE[tier_of(end_ms, now_ms)]
