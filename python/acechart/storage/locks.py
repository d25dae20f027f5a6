"""`FetchLocks`: one origin fetch per gap across every instance, by a Redis lock with a lease.

Within one process the engine's fetcher already shares identical fetches in
flight. Across instances, the engine takes `hold(key)` (key: the site and the
gaps a query lacks) around its fetch and the write of the blocks it brought:

- the first instance takes the lock (`SET NX PX lease`) and renews the lease
  while it works (every third of it, only while it is still the owner: a
  compare-and-set in Lua);
- a second instance with the same gaps waits (polling, bounded), then learns
  it waited and re-reads the block store, where the first one's blocks now are
  (the block metadata is in the shared database), so it fetches nothing;
- if the holder dies its lease lapses, the waiter takes the lock, finds the
  blocks missing and fetches them itself.

Release is also a compare-and-delete, so a holder whose lease lapsed (it was
paused past it) cannot free a lock another instance holds now. If Redis does
not answer, the fetch goes ahead unlocked: at worst two instances fetch the
same gap once each, which is what no lock would cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator

from redis.exceptions import RedisError

from acechart.storage.redis_client import SharedRedis

__all__ = ["FetchLocks"]

logger = logging.getLogger(__name__)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class FetchLocks:
    """Cross-instance locks on origin fetches (see the module docstring)."""

    def __init__(
        self,
        redis: SharedRedis,
        owner: str,
        *,
        lease_s: float,
        poll_s: float = 0.05,
        max_wait_s: float | None = None,
    ) -> None:
        self.redis = redis
        self.owner = owner
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.max_wait_s = 10 * lease_s if max_wait_s is None else max_wait_s
        self._renew = redis.script(_RENEW)
        self._release = redis.script(_RELEASE)
        self.waited = 0
        """Holds that found another instance fetching and waited for it."""
        self._stopping: set[asyncio.Task[None]] = set()
        """Renewers told to stop and not ended yet (kept referenced until they end)."""

    @staticmethod
    def key_of(*parts: object) -> str:
        """A short, stable lock name for a fetch described by `parts`."""
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[bool]:
        """Hold the lock `name` for the block; yields whether another holder was waited for."""
        key = self.redis.key("fetch", name)
        token = f"{self.owner}:{uuid.uuid4().hex}"
        lease_ms = max(1, int(self.lease_s * 1000))
        waited = False
        deadline = time.monotonic() + self.max_wait_s
        try:
            while not await self.redis.client.set(key, token, nx=True, px=lease_ms):
                waited = True
                if time.monotonic() > deadline:
                    logger.warning(
                        "fetch lock %s still held after %.0f s; fetching anyway",
                        name,
                        self.max_wait_s,
                    )
                    token = ""
                    break
                await asyncio.sleep(self.poll_s)
        except (RedisError, OSError) as exc:
            logger.warning("fetch lock unavailable (%s); fetching unlocked", type(exc).__name__)
            token = ""
        if waited:
            self.waited += 1
        stop = asyncio.Event()
        renewer = asyncio.create_task(self._keep(key, token, lease_ms, stop)) if token else None
        try:
            yield waited
        finally:
            if renewer is not None:
                # Stopped, not cancelled: redis-py can lose a cancellation that lands in a
                # command (see jobs/redis_queue.py), and a renewer that never ends would
                # hold this block for ever. It ends at its next wake; a renewal in flight
                # is bounded by the client's timeout, and is not waited for past a lease.
                stop.set()
                self._stopping.add(renewer)
                renewer.add_done_callback(self._stopping.discard)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(renewer), max(1.0, self.lease_s))
                with contextlib.suppress(RedisError, OSError):
                    await asyncio.shield(self._release(keys=[key], args=[token]))

    async def _keep(self, key: str, token: str, lease_ms: int, stop: asyncio.Event) -> None:
        """Renew the lease every third of it until `stop` is set."""
        while True:
            try:
                await asyncio.wait_for(stop.wait(), lease_ms / 3000)
                return
            except TimeoutError:
                pass
            try:
                if not await self._renew(keys=[key], args=[token, lease_ms]):
                    logger.warning("fetch lock %s lapsed before its fetch ended", key)
                    return
            except (RedisError, OSError) as exc:
                logger.warning("could not renew fetch lock %s: %s", key, type(exc).__name__)
