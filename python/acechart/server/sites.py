"""Each token's site list from the origin (`GET /sites`, every page), kept for a short TTL.

`/api/sites` pages this list itself, so a client walking its pages costs one
origin walk per token and TTL, not one per page. Tokens are keyed by their
MAC fingerprint (never in clear), the number of tokens held is bounded, and
concurrent first requests of one token share one origin walk.

A fresh token costs an attacker nothing and the origin a walk, so a walk for a
token not held is asked only within `SiteAccess`'s bounds on origin token
checks (per client address for tokens the origin never confirmed, and in all;
past them the seed's 429), and a token the origin refused is remembered as
refused for `refusal_ttl_s`: asking again with it is a 401 without an origin
call. A listed token counts as confirmed. Which site a token may *read* is
still `SiteAccess`'s decision: this is only a listing.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from acechart.errors import OriginAuthError, Unauthorized
from acechart.origin.client import OriginClient
from acechart.server.auth import SiteAccess

__all__ = ["SiteDirectory"]

Sites = list[dict[str, Any]]

_MAX_TOKENS = 10_000


class SiteDirectory:
    def __init__(
        self,
        origin: OriginClient,
        access: SiteAccess,
        *,
        ttl_s: float,
        refusal_ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_tokens: int = _MAX_TOKENS,
    ) -> None:
        self.origin = origin
        self.access = access
        self.ttl_s = ttl_s
        self.refusal_ttl_s = refusal_ttl_s
        self.clock = clock
        self.max_tokens = max_tokens
        self._lists: OrderedDict[str, tuple[float, Sites]] = OrderedDict()
        self._refused: OrderedDict[str, float] = OrderedDict()
        """Fingerprints the origin refused, until when."""
        self._asking: dict[str, asyncio.Task[Sites]] = {}
        self.origin_walks = 0
        """Listings asked of the origin so far (coalesced ones count once)."""

    async def list(self, token: str, fingerprint: str, *, client: str | None = None) -> Sites:
        """The sites `token` may list, as the origin's `/sites` items."""
        now = self.clock()
        held = self._lists.get(fingerprint)
        if held is not None and now < held[0]:
            self._lists.move_to_end(fingerprint)
            return held[1]
        refused = self._refused.get(fingerprint)
        if refused is not None and now < refused:
            raise Unauthorized("the origin does not accept this token")
        task = self._asking.get(fingerprint)
        if task is None:
            self.access.admit(fingerprint, client)
            task = asyncio.create_task(self._fetch(token, fingerprint))
            self._asking[fingerprint] = task
            task.add_done_callback(lambda _t: self._asking.pop(fingerprint, None))
        return await asyncio.shield(task)

    async def _fetch(self, token: str, fingerprint: str) -> Sites:
        self.origin_walks += 1
        try:
            sites = await self.origin.list_sites(token=token)
        except OriginAuthError:
            if self.refusal_ttl_s > 0:
                _remember(self._refused, fingerprint, self.clock() + self.refusal_ttl_s)
                self._bound(self._refused)
            raise
        self._refused.pop(fingerprint, None)
        self.access.confirm(fingerprint)
        if self.ttl_s > 0:
            _remember(self._lists, fingerprint, (self.clock() + self.ttl_s, sites))
            self._bound(self._lists)
        return sites

    def _bound(self, held: OrderedDict[str, Any]) -> None:
        while len(held) > self.max_tokens:
            held.popitem(last=False)


def _remember(held: OrderedDict[str, Any], key: str, value: Any) -> None:
    held[key] = value
    held.move_to_end(key)
