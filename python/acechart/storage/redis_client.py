"""`SharedRedis`: the one Redis connection pool of an instance, and its key names.

Configured by `ACECHART_REDIS_URL`; when it is set, three parts share state
through it at request speed: the job queue (Redis Streams, `jobs/redis_queue.py`),
the rate limits (`server/ratelimit.py`) and the cross-instance lock on origin
fetches (`storage/locks.py`). Every key starts with `ACECHART_REDIS_PREFIX`, so
several deployments (or test runs) can share one Redis without seeing each
other.
"""

from __future__ import annotations

import logging
from typing import Any, Self

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from acechart.storage.objects import StorageError

__all__ = ["RedisUnavailable", "SharedRedis"]

logger = logging.getLogger(__name__)


class RedisUnavailable(StorageError):
    """Redis did not answer (down, refused, timed out)."""

    def __init__(self, message: str, *, operation: str) -> None:
        super().__init__(message, operation=operation, public="the shared Redis is unavailable")


class SharedRedis:
    """A redis-py asyncio client over one pool, with the deployment's key prefix."""

    def __init__(self, client: aioredis.Redis, prefix: str, url: str) -> None:
        """Use `SharedRedis.open`; this only wraps a client."""
        self.client = client
        self.prefix = prefix
        self.url = url

    @classmethod
    async def open(cls, url: str, prefix: str, *, timeout_s: float = 10.0) -> Self:
        """Connect to `url` and check it answers; `RedisUnavailable` if not. Connecting and
        each command's reply wait at most `timeout_s`."""
        client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            # A reply that never comes is an error, not a hang: every caller handles
            # `RedisError` (the job queue's blocking reads stay well under it).
            socket_timeout=timeout_s,
            health_check_interval=30,
            max_connections=256,
        )
        shared = cls(client, prefix, url)
        try:
            await shared.ping()
        except BaseException:
            await client.aclose()
            raise
        return shared

    def key(self, *parts: str) -> str:
        """The full name of one of acechart's keys: the prefix, then `parts` joined by `:`."""
        return self.prefix + ":".join(parts)

    async def ping(self) -> None:
        """One round trip (for `/readyz`); `RedisUnavailable` if Redis does not answer."""
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise RedisUnavailable(
                f"Redis did not answer: {type(exc).__name__}: {exc}", operation="ping"
            ) from exc

    def script(self, source: str) -> Any:
        """A Lua script registered once and run by its SHA (EVALSHA, EVAL on a cache miss)."""
        return self.client.register_script(source)

    async def close(self) -> None:
        await self.client.aclose()

    def __repr__(self) -> str:
        return f"SharedRedis(prefix={self.prefix!r})"
