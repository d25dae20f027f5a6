"""Each token's site list from the origin (`GET /sites`, every page), kept for a short TTL.

`/api/sites` pages this list itself, so a client walking its pages costs one
origin walk per token and TTL, not one per page. Tokens are keyed by their
MAC fingerprint (never in clear), the number of tokens held is bounded, and
concurrent first requests of one token share one origin walk. Which site a
token may *read* is still `SiteAccess`'s decision: this is only a listing.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from acechart.origin.client import OriginClient

__all__ = ["SiteDirectory"]

Sites = list[dict[str, Any]]

_MAX_TOKENS = 10_000


class SiteDirectory:
    def __init__(
        self,
        origin: OriginClient,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_tokens: int = _MAX_TOKENS,
    ) -> None:
        self.origin = origin
        self.ttl_s = ttl_s
        self.clock = clock
        self.max_tokens = max_tokens
        self._lists: OrderedDict[str, tuple[float, Sites]] = OrderedDict()
        self._asking: dict[str, asyncio.Task[Sites]] = {}

    async def list(self, token: str, fingerprint: str) -> Sites:
        """The sites `token` may list, as the origin's `/sites` items."""
        held = self._lists.get(fingerprint)
        if held is not None and self.clock() < held[0]:
            self._lists.move_to_end(fingerprint)
            return held[1]
        task = self._asking.get(fingerprint)
        if task is None:
            task = asyncio.create_task(self._fetch(token, fingerprint))
            self._asking[fingerprint] = task
            task.add_done_callback(lambda _t: self._asking.pop(fingerprint, None))
        return await asyncio.shield(task)

    async def _fetch(self, token: str, fingerprint: str) -> Sites:
        sites = await self.origin.list_sites(token=token)
        if self.ttl_s > 0:
            self._lists[fingerprint] = (self.clock() + self.ttl_s, sites)
            self._lists.move_to_end(fingerprint)
            while len(self._lists) > self.max_tokens:
                self._lists.popitem(last=False)
        return sites
