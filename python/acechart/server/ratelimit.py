"""Token-bucket rate limits per caller and endpoint (the seed's 100 requests a minute).

A bucket holds up to `per_minute` requests and refills continuously, so a
dashboard may burst its panels at once and then keeps a steady rate. Buckets
are keyed by the token's MAC, never the token. Idle buckets that have refilled
are forgotten, so memory follows the number of active callers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from acechart.errors import RateLimited

__all__ = ["RateLimiter", "TokenBucket"]

_PRUNE_AT = 10_000


class RateLimiter:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def check(self, caller: str, endpoint: str) -> None:
        """Take one request from the caller's bucket, or raise `RateLimited` with the wait."""
        if not self.enabled:
            return
        capacity = float(self.per_minute)
        rate = capacity / 60.0
        now = self.clock()
        key = (caller, endpoint)
        tokens, last = self._buckets.get(key, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / rate
            raise RateLimited(
                f"Too many requests. Please try again in {math.ceil(wait)} seconds.",
                retry_after=wait,
            )
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > _PRUNE_AT:
            self._prune(now, capacity, rate)

    def _prune(self, now: float, capacity: float, rate: float) -> None:
        """Forget buckets that are full again: they behave exactly like new ones."""
        full = [k for k, (t, last) in self._buckets.items() if t + (now - last) * rate >= capacity]
        for key in full:
            del self._buckets[key]


class TokenBucket:
    """One shared bucket: `rate` takes a second, bursts up to `capacity`; `rate` 0 is no limit.

    Bounds work done for all callers together (the origin checks of tokens it has
    not seen), where `RateLimiter` bounds each caller.
    """

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate if capacity is None else capacity)
        self.clock = clock
        self._tokens = self.capacity
        self._last = clock()

    def take(self) -> float:
        """Take one; 0.0 when it was there, else the seconds until one is (nothing taken)."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1.0:
            return (1.0 - self._tokens) / self.rate
        self._tokens -= 1.0
        return 0.0
