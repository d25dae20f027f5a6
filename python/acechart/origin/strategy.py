"""Which way to ask the origin for a gap: point by point, or one pass over the whole site.

The real ACE API cannot filter its paginated route by point: every page holds
the whole site. A query for a few points is therefore cheapest through the
per-point route (`/points/{name}/timeseries`), which returns exactly the
samples asked for; a query for most of a site is cheapest as one site-wide
pass, whose every sample is then kept (harvested) for later queries. The
choice is made per gap from the point catalogue's cadences: each way's cost
is the samples it downloads plus a fixed price per request (latency and
per-request overhead expressed in samples), and the cheaper wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["Choice", "Strategy", "choose", "estimate_samples"]

Strategy = Literal["per_point", "site_wide", "filtered"]
"""`per_point`: one request per point and window; `site_wide`: the paginated route over the
whole site, every point harvested; `filtered`: the paginated route with `point_names` (only
for origins that honour the filter; the real API does not)."""

#: Cadence assumed for a point the catalogue does not know (ACE's common one minute).
DEFAULT_CADENCE_MS = 60_000


@dataclass(frozen=True)
class Choice:
    """The strategy for one gap and what each way was estimated to cost (in samples)."""

    strategy: Strategy
    per_point_samples: int
    site_samples: int
    per_point_cost: float
    site_cost: float
    forced: bool = False


def estimate_samples(span_ms: int, cadences_ms: Sequence[int]) -> int:
    """Samples `span_ms` of these points holds at their cadences."""
    return sum(span_ms // max(c, 1) for c in cadences_ms)


def choose(
    points: Sequence[str],
    span_ms: int,
    catalogue: Mapping[str, int],
    *,
    window_ms: int,
    page_size: int,
    request_cost_samples: int,
    forced: Strategy | None = None,
) -> Choice:
    """The cheaper way to fetch `span_ms` of `points` from a site whose points and
    cadences (ms) are `catalogue` (empty when unknown: then per point).

    Per point costs one request per point and window; site-wide costs one
    request per page of the whole site's samples (at least one per window).
    """
    known = [catalogue.get(p, DEFAULT_CADENCE_MS) for p in points]
    per_point = estimate_samples(span_ms, known)
    windows = max(1, math.ceil(span_ms / max(window_ms, 1)))
    per_point_cost = per_point + len(points) * windows * request_cost_samples
    if catalogue:
        site_points = set(catalogue) | set(points)
        site = estimate_samples(
            span_ms, [catalogue.get(p, DEFAULT_CADENCE_MS) for p in site_points]
        )
        pages = max(windows, math.ceil(site / max(page_size, 1)))
        site_cost: float = site + pages * request_cost_samples
    else:
        site = 0
        site_cost = math.inf
    if forced is not None:
        strategy: Strategy = forced
    else:
        strategy = "site_wide" if site_cost < per_point_cost else "per_point"
    return Choice(strategy, per_point, site, per_point_cost, site_cost, forced is not None)
