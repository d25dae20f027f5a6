"""Token-bucket rate limits per caller and endpoint (the seed's 100 requests a minute).

A bucket holds up to `per_minute` requests and refills continuously, so a
dashboard may burst its panels at once and then keeps a steady rate. Buckets
are keyed by the token's MAC, never the token. Idle buckets that have refilled
are forgotten, so memory follows the number of active callers.

`RedisRateLimiter` is the same bucket kept in the shared Redis, so N instances
behind a balancer enforce one limit together: the refill, the take and the
wait are one Lua script (atomic in Redis, timed by Redis's own clock, so the
instances' clocks need not agree), and a 429 has the same body and
Retry-After as the in-process one. If Redis does not answer, requests are let
through (logged): a rate limit is protection, not a reason to refuse service.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from acechart.errors import RateLimited
from acechart.storage.redis_client import SharedRedis

__all__ = ["RateLimiter", "RedisRateLimiter", "TokenBucket"]

logger = logging.getLogger(__name__)

_PRUNE_AT = 10_000


async def take(limiter: RateLimiter, caller: str, endpoint: str, token: str) -> None:
    """One request of `caller` to `endpoint`: from the in-process bucket without an await,
    from the shared one through Redis; `RateLimited` past the limit."""
    if limiter.local:
        limiter.check(caller, endpoint)
    else:
        await limiter.acquire(caller, endpoint, token)


class RateLimiter:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    local = True
    """The buckets are this process's: `check` takes from them without an await."""

    async def acquire(self, caller: str, endpoint: str, token: str | None = None) -> None:
        """Take one request from the caller's bucket, or raise `RateLimited` with the wait.

        `caller` is this process's fingerprint of the token; a limiter shared by several
        instances keys by `token` instead (under a secret they share)."""
        self.check(caller, endpoint)

    def check(self, caller: str, endpoint: str) -> None:
        """`acquire` for the in-process bucket, which needs no await."""
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
            raise _limited((1.0 - tokens) / rate)
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > _PRUNE_AT:
            self._prune(now, capacity, rate)

    def _prune(self, now: float, capacity: float, rate: float) -> None:
        """Forget buckets that are full again: they behave exactly like new ones."""
        full = [k for k, (t, last) in self._buckets.items() if t + (now - last) * rate >= capacity]
        for key in full:
            del self._buckets[key]


def _limited(wait: float) -> RateLimited:
    """The seed's 429: its message, and the wait for Retry-After."""
    return RateLimited(
        f"Too many requests. Please try again in {math.ceil(wait)} seconds.", retry_after=wait
    )


# KEYS[1] the bucket (a hash: tokens, last); ARGV[1] capacity; ARGV[2] refill per second.
# Returns the wait in seconds as a string (0 when a token was taken): Lua numbers
# would reach the client truncated to integers.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens = tonumber(state[1]) or capacity
local last = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - last) * rate)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
else
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'last', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter(RateLimiter):
    """`RateLimiter` with its buckets in the shared Redis (one limit for all instances)."""

    def __init__(self, per_minute: int, redis: SharedRedis, secret: str) -> None:
        """`secret` is shared by every instance (the job token key), so each computes the
        same bucket name for a token; the name never holds the token itself."""
        super().__init__(per_minute)
        self.redis = redis
        self._secret = hashlib.sha256(b"acechart rate limit\0" + secret.encode()).digest()
        self._take = redis.script(_TAKE)
        self.unavailable = 0
        """Requests let through because Redis did not answer."""

    local = False

    async def acquire(self, caller: str, endpoint: str, token: str | None = None) -> None:
        if not self.enabled:
            return
        capacity = float(self.per_minute)
        if token is not None:
            caller = hmac.new(self._secret, token.encode(), hashlib.sha256).hexdigest()
        try:
            raw = await self._take(
                keys=[self.redis.key("ratelimit", endpoint, caller)],
                args=[capacity, capacity / 60.0],
            )
        except (RedisError, OSError) as exc:
            self.unavailable += 1
            logger.warning("rate limit not checked, Redis did not answer: %s", type(exc).__name__)
            return
        wait = float(raw.decode() if isinstance(raw, bytes) else raw)
        if wait > 0:
            raise _limited(wait)


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
