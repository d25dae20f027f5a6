"""Request classes of the seed's section 4.1, decided on the estimated origin time.

The seed guessed a query's cost from its points and days, and the first
version here from the samples its plan lacks. What matters to a caller
waiting on a request is time: the engine estimates how long the plan's gaps
take to fetch by the strategy it would choose, from the origin's measured
throughput (`engine.throughput`). Whatever is cached is served synchronously
however big; an origin fetch estimated within `request_budget_s` is `small`
(up to `small_max_samples`) or `medium`, fetched within the request and
cached; a longer one is `large`: refused with 413 and the seed's body, whose
suggestions name a range (and a point count) the engine estimates would fit,
unless the client opted in to asynchronous processing, in which case the
pipeline queues a background job (202).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from acechart.cache import intervals as iv
from acechart.engine import Engine, FetchEstimate, Fit, Plan
from acechart.errors import RequestTooLarge
from acechart.settings import Settings
from acechart.times import format_time

__all__ = ["ASYNC_MODE", "Classification", "Size", "assess", "classify", "refusal", "too_large"]

Size = Literal["cached", "small", "medium", "large"]
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Classification:
    size: Size
    estimated_samples: int
    """Samples of the requested points that must come from the origin."""
    origin_days: float
    """Longest span of origin data one point needs, in days."""
    estimated_s: float = 0.0
    """Estimated origin time of the fetch, in seconds."""

    @property
    def large(self) -> bool:
        return self.size == "large"


def classify(plan: Plan, estimate: FetchEstimate, settings: Settings) -> Classification:
    """The class of `plan` whose fetch is estimated as `estimate`."""
    if plan.cached:
        return Classification("cached", 0, 0.0)
    samples = estimate.point_samples
    days = round(max((iv.total(g) for g in plan.gaps.values()), default=0) / DAY_MS, 2)
    seconds = round(estimate.seconds, 3)
    size: Size
    if seconds > settings.request_budget_s:
        size = "large"
    elif samples <= settings.small_max_samples:
        size = "small"
    else:
        size = "medium"
    return Classification(size, samples, days, seconds)


async def assess(engine: Engine, plan: Plan, settings: Settings, *, token: str) -> Classification:
    """`classify` with the engine's estimate of `plan` (no origin request is made)."""
    if plan.cached:
        return Classification("cached", 0, 0.0)
    return classify(plan, await engine.estimate(plan, token=token), settings)


ASYNC_MODE = ("Use async mode: ?async=true (or Prefer: respond-async) for a background job",)
"""The suggestion of a too-large `/api/timeseries` answer: its job."""


async def refusal(
    engine: Engine,
    plan: Plan,
    c: Classification,
    settings: Settings,
    *,
    token: str,
    start_param: str = "start",
    end_param: str = "end",
    inclusive_end: bool = False,
    alternatives: tuple[str, ...] = ASYNC_MODE,
) -> RequestTooLarge:
    """The 413 for a `large` plan, naming what would fit the budget (`inclusive_end`: the
    route's end parameter is included, as the origin's `end_time` is)."""
    fit = await engine.fitting(plan, settings.request_budget_s, token=token)
    return too_large(
        c,
        fit,
        settings,
        end_ms=plan.query.end_ms - 1 if inclusive_end else plan.query.end_ms,
        points=len(plan.query.points),
        start_param=start_param,
        end_param=end_param,
        alternatives=alternatives,
    )


def too_large(
    c: Classification,
    fit: Fit,
    settings: Settings,
    *,
    end_ms: int,
    points: int,
    start_param: str = "start",
    end_param: str = "end",
    alternatives: tuple[str, ...] = (),
) -> RequestTooLarge:
    """The seed's 413 body, with suggestions the engine estimates would fit."""
    budget = settings.request_budget_s
    suggestions = list(alternatives)
    extra: dict[str, object] = {"estimatedSeconds": c.estimated_s, "budgetSeconds": budget}
    if fit.start_ms is not None:
        start, end = format_time(fit.start_ms), format_time(end_ms)
        suggestions.append(
            f"Request {_span(end_ms - fit.start_ms)} at a time: {start_param}={start}&"
            f"{end_param}={end} fits (about {fit.range_seconds:.1f} s from the origin); each "
            "piece is cached, and cached data is always served synchronously"
        )
        extra["suggestedRange"] = {"start": start, "end": end}
    if points > 1 and fit.points >= 1:
        suggestions.append(
            f"Request at most {fit.points} point{'s' if fit.points > 1 else ''} per query over"
            f" this range (about {fit.points_seconds:.1f} s from the origin)"
        )
        extra["suggestedPoints"] = fit.points
    message = (
        f"Query too large for synchronous processing: about {c.estimated_samples} samples "
        f"over {c.origin_days:g} days must come from the origin, estimated at "
        f"{c.estimated_s:.1f} s against a budget of {budget:g} s."
    )
    return RequestTooLarge(
        message,
        estimated_samples=c.estimated_samples,
        suggestions=suggestions,
        classification=c.size,
        **extra,
    )


def _span(ms: int) -> str:
    """A range length in the unit it was searched in."""
    for unit, width in (("day", DAY_MS), ("hour", 3_600_000), ("minute", 60_000)):
        if (ms >= width and ms % width == 0) or unit == "minute":
            n = max(1, ms // width)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{ms} ms"
