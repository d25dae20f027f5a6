"""Request classes of the seed's section 4.1, decided on the real cost after planning.

The seed guessed a query's cost from its points and days. Here the engine's
plan says what the caches lack, so only samples that must come from the origin
count: whatever is cached is served synchronously however big, an origin cost
up to `small_max_samples` is `small`, one of at least `large_min_samples`
spanning at least `large_min_days` of origin data is `large`, and the rest
`medium` (fetched within the request and cached). A large request is refused
with 413 and the seed's body unless the client opted in to asynchronous
processing, in which case the pipeline queues a background job (202).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from acechart.cache import intervals as iv
from acechart.engine import Plan
from acechart.errors import RequestTooLarge
from acechart.settings import Settings

__all__ = ["Classification", "Size", "classify", "too_large"]

Size = Literal["cached", "small", "medium", "large"]
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Classification:
    size: Size
    estimated_samples: int
    """Samples (at the seed's one per minute) that must come from the origin."""
    origin_days: float
    """Longest span of origin data one point needs, in days."""

    @property
    def large(self) -> bool:
        return self.size == "large"


def classify(plan: Plan, settings: Settings) -> Classification:
    if plan.cached:
        return Classification("cached", 0, 0.0)
    samples = plan.estimated_samples()
    days = max((iv.total(g) for g in plan.gaps.values()), default=0) / DAY_MS
    size: Size
    if samples <= settings.small_max_samples:
        size = "small"
    elif samples >= settings.large_min_samples and days >= settings.large_min_days:
        size = "large"
    else:
        size = "medium"
    return Classification(size, samples, round(days, 2))


def too_large(
    c: Classification, settings: Settings, *, points: int, wants_async: bool
) -> RequestTooLarge:
    """The seed's 413 body, with suggestions that actually lower the origin cost."""
    suggestions = [
        "Use async mode: ?async=true (or Prefer: respond-async) for a background job",
        "Reduce time range or point count",
        f"Fetch the range in pieces shorter than {settings.large_min_days:g} days: "
        "each piece is cached, and cached data is always served synchronously",
    ]
    if points > 1:
        suggestions.append("Request fewer points per query")
    message = (
        f"Query too large for synchronous processing: about {c.estimated_samples} samples "
        f"over {c.origin_days:g} days must come from the origin."
    )
    return RequestTooLarge(
        message,
        estimated_samples=c.estimated_samples,
        suggestions=suggestions,
        classification=c.size,
    )
