"""Who may read which site: the token, and the origin's word on each (token, site) pair.

acechart serves cached data to many users, so it must not hand one token's
data to another unless the origin agrees that token may read the site. The
first request of a (token, site) pair asks the origin (`GET /sites/{site}`);
the answer is remembered for `auth_cache_s` (a refusal for
`auth_refusal_cache_s`), a yes with the site record the origin sent, which
`/api/sites/{site}` answers with. Tokens are kept only as an HMAC under a secret made
per process, so neither memory dumps of the caches nor logs hold them in
clear; the clear token lives only for the request that carries it, to be
forwarded to the origin.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from acechart.errors import (
    AcechartError,
    Forbidden,
    NotFound,
    OriginAuthError,
    OriginNotFound,
    OriginTimeout,
    OriginUnavailable,
    Unauthorized,
)
from acechart.origin.client import OriginClient

__all__ = ["SiteAccess"]

logger = logging.getLogger(__name__)

_MAX_PAIRS = 100_000


@dataclass(frozen=True)
class _Verdict:
    allowed: bool
    status: int
    expires: float
    record: dict[str, Any] | None = None
    """The origin's `/sites/{site}` answer when it said yes."""


class SiteAccess:
    """Checks (token, site) pairs against the origin and remembers the answers."""

    def __init__(
        self,
        origin: OriginClient,
        *,
        ttl_s: float,
        refusal_ttl_s: float,
        grace_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.origin = origin
        self.ttl_s = ttl_s
        self.refusal_ttl_s = refusal_ttl_s
        self.grace_s = grace_s
        """How long past its TTL a yes still holds while the origin cannot be reached."""
        self.clock = clock
        self._secret = secrets.token_bytes(32)
        self._verdicts: OrderedDict[tuple[str, str], _Verdict] = OrderedDict()
        self._asking: dict[tuple[str, str], asyncio.Task[_Verdict]] = {}

    def fingerprint(self, token: str) -> str:
        """HMAC-SHA256 of the token under this process's secret: the token's only stored form."""
        return hmac.new(self._secret, token.encode(), hashlib.sha256).hexdigest()

    async def check(self, token: str, site: str, fingerprint: str | None = None) -> None:
        """Return if `token` may read `site`; raise 401, 403 or 404 as the origin decided.

        When the origin cannot be reached, a pair it confirmed within the TTL
        plus `grace_s` is still let through, so stale-if-error can serve it.
        """
        await self.site(token, site, fingerprint)

    async def site(self, token: str, site: str, fingerprint: str | None = None) -> dict[str, Any]:
        """The origin's `/sites/{site}` record for this token, after the same check as
        `check`; remembered with the verdict, so it is as fresh as the check."""
        key = (fingerprint or self.fingerprint(token), site)
        now = self.clock()
        verdict = self._verdicts.get(key)
        if verdict is not None and now < verdict.expires:
            return self._raise_unless_allowed(verdict, site)
        try:
            fresh = await self._ask(key, token, site)
        except (OriginUnavailable, OriginTimeout):
            if verdict is not None and verdict.allowed and now < verdict.expires + self.grace_s:
                logger.warning("origin unreachable; using an earlier confirmation for %s", site)
                return verdict.record or {}
            raise
        return self._raise_unless_allowed(fresh, site)

    async def _ask(self, key: tuple[str, str], token: str, site: str) -> _Verdict:
        """One origin check per pair at a time; concurrent first uses share it."""
        task = self._asking.get(key)
        if task is None:
            task = asyncio.create_task(self._ask_origin(key, token, site))
            self._asking[key] = task
            task.add_done_callback(lambda _t: self._asking.pop(key, None))
        return await asyncio.shield(task)

    async def _ask_origin(self, key: tuple[str, str], token: str, site: str) -> _Verdict:
        try:
            record = await self.origin.get_site(site, token=token)
        except (OriginAuthError, OriginNotFound) as exc:
            now = self.clock()
            verdict = _Verdict(False, exc.status, now + self.refusal_ttl_s)
        else:
            now = self.clock()
            verdict = _Verdict(True, 200, now + self.ttl_s, record)
        self._verdicts[key] = verdict
        self._verdicts.move_to_end(key)
        while len(self._verdicts) > _MAX_PAIRS:
            self._verdicts.popitem(last=False)
        return verdict

    @staticmethod
    def _raise_unless_allowed(verdict: _Verdict, site: str) -> dict[str, Any]:
        if verdict.allowed:
            return verdict.record or {}
        error: AcechartError
        if verdict.status == 403:
            error = Forbidden(f"this token may not read site {site}", siteId=site)
        elif verdict.status == 404:
            error = NotFound(f"unknown site {site}", siteId=site)
        else:
            error = Unauthorized("the origin does not accept this token")
        raise error
