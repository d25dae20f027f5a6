"""Who may read which site: the token, and the origin's word on each (token, site) pair.

acechart serves cached data to many users, so it must not hand one token's
data to another unless the origin agrees that token may read the site. The
first request of a (token, site) pair asks the origin (`GET /sites/{site}`);
the answer is remembered for `auth_cache_s` (a refusal for
`auth_refusal_cache_s`), a yes with the site record the origin sent, which
`/api/sites/{site}` answers with. Tokens are kept only as a MAC (keyed BLAKE2b) under a secret made
per process, so neither memory dumps of the caches nor logs hold them in
clear; the clear token lives only for the request that carries it, to be
forwarded to the origin.

Asking the origin costs it a request, and a fresh token costs an attacker
nothing, so the questions are bounded before they are asked: concurrent checks
of one pair share one question; a token the origin has never confirmed may be
checked only `unconfirmed_per_minute` times a minute per client address (the
caller's, from `client_address`); and all checks together at most
`checks_per_s` a second. Past a bound the caller gets the seed's 429 with
Retry-After, except a pair the origin confirmed before, whose earlier yes
still holds within the grace period. Site names are checked before any
question (`query.check_site`): a dot segment would ask the origin about
another path.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import math
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
    RateLimited,
    Unauthorized,
)
from acechart.origin.client import OriginClient
from acechart.query import check_site
from acechart.server.ratelimit import RateLimiter, TokenBucket

__all__ = ["CLIENT", "SiteAccess"]

logger = logging.getLogger(__name__)

_MAX_PAIRS = 100_000
_MAX_CONFIRMED = 100_000

CLIENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("acechart_client", default=None)
"""The calling client's address, set for the request being handled (`pipeline.identify`), so a
check made anywhere in that request is counted against the right client."""


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
        checks_per_s: float = 0.0,
        unconfirmed_per_minute: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.origin = origin
        self.ttl_s = ttl_s
        self.refusal_ttl_s = refusal_ttl_s
        self.grace_s = grace_s
        """How long past its TTL a yes still holds while the origin cannot be reached."""
        self.clock = clock
        self._secret = secrets.token_bytes(32)
        self._keyed = hashlib.blake2b(key=self._secret, digest_size=32)
        """The MAC with its key block already absorbed: each fingerprint copies it."""
        self._verdicts: OrderedDict[tuple[str, str], _Verdict] = OrderedDict()
        self._asking: dict[tuple[str, str], asyncio.Task[_Verdict]] = {}
        self._checks = TokenBucket(checks_per_s, clock=clock)
        """Origin checks of all callers together (0: unbounded)."""
        self._unconfirmed = RateLimiter(unconfirmed_per_minute, clock=clock)
        """Origin checks of never-confirmed tokens, per client address (0: unbounded)."""
        self._confirmed: OrderedDict[str, None] = OrderedDict()
        """Fingerprints of tokens the origin said yes to for some site."""
        self.origin_checks = 0
        """Questions put to the origin so far (coalesced ones count once)."""

    def fingerprint(self, token: str) -> str:
        """The token's MAC under this process's secret (keyed BLAKE2b, a third of
        HMAC-SHA256's time on every request): the token's only stored form."""
        mac = self._keyed.copy()
        mac.update(token.encode())
        return mac.hexdigest()

    def confirmed(self, fingerprint: str, site: str) -> bool:
        """Whether the origin said yes to this (token, site) within the TTL: the check of
        nearly every request, answered without a coroutine or a timer."""
        verdict = self._verdicts.get((fingerprint, site))
        return verdict is not None and verdict.allowed and self.clock() < verdict.expires

    async def check(
        self,
        token: str,
        site: str,
        fingerprint: str | None = None,
        *,
        client: str | None = None,
    ) -> None:
        """Return if `token` may read `site`; raise 401, 403 or 404 as the origin decided.

        When the origin cannot be reached, a pair it confirmed within the TTL
        plus `grace_s` is still let through, so stale-if-error can serve it.
        `client` (default: `CLIENT` of the current request) is the caller's
        address, which the limit on never-confirmed tokens counts by; past a
        bound, `RateLimited`.
        """
        await self.site(token, site, fingerprint, client=client)

    async def site(
        self,
        token: str,
        site: str,
        fingerprint: str | None = None,
        *,
        client: str | None = None,
    ) -> dict[str, Any]:
        """The origin's `/sites/{site}` record for this token, after the same check as
        `check`; remembered with the verdict, so it is as fresh as the check."""
        check_site(site)
        fp = fingerprint or self.fingerprint(token)
        key = (fp, site)
        now = self.clock()
        verdict = self._verdicts.get(key)
        if verdict is not None and now < verdict.expires:
            return self._raise_unless_allowed(verdict, site)
        earlier_yes = (
            verdict is not None and verdict.allowed and now < verdict.expires + self.grace_s
        )
        if key not in self._asking:
            # A new question to the origin: within the bounds, or not asked at all.
            wait = self._admit(fp, CLIENT.get() if client is None else client)
            if wait is not None:
                if earlier_yes:
                    assert verdict is not None
                    return verdict.record or {}
                raise RateLimited(
                    f"Too many requests. Please try again in {math.ceil(wait)} seconds.",
                    retry_after=wait,
                )
        try:
            fresh = await self._ask(key, token, site)
        except (OriginUnavailable, OriginTimeout):
            if earlier_yes:
                assert verdict is not None
                logger.warning("origin unreachable; using an earlier confirmation for %s", site)
                return verdict.record or {}
            raise
        return self._raise_unless_allowed(fresh, site)

    def admit(self, fingerprint: str, client: str | None = None) -> None:
        """Return if a new origin question about this token may be asked now (the bounds of
        `check`, for questions asked elsewhere: the `/api/sites` listing), else
        `RateLimited`."""
        wait = self._admit(fingerprint, CLIENT.get() if client is None else client)
        if wait is not None:
            raise RateLimited(
                f"Too many requests. Please try again in {math.ceil(wait)} seconds.",
                retry_after=wait,
            )

    def confirm(self, fingerprint: str) -> None:
        """Record that the origin accepted this token (for some answer), so it is no longer
        limited as a made-up one."""
        self._confirmed[fingerprint] = None
        self._confirmed.move_to_end(fingerprint)
        while len(self._confirmed) > _MAX_CONFIRMED:
            self._confirmed.popitem(last=False)

    def _admit(self, fingerprint: str, client: str | None) -> float | None:
        """None when a new origin check may go ahead, else the seconds to wait."""
        if fingerprint not in self._confirmed:
            try:
                self._unconfirmed.check(client or "unknown", "auth")
            except RateLimited as exc:
                logger.warning(
                    "client %s: too many checks of unconfirmed tokens; refused", client or "?"
                )
                return exc.retry_after
        wait = self._checks.take()
        if wait > 0:
            logger.warning("origin token checks over their bound; refusing one")
            return wait
        return None

    async def _ask(self, key: tuple[str, str], token: str, site: str) -> _Verdict:
        """One origin check per pair at a time; concurrent first uses share it."""
        task = self._asking.get(key)
        if task is None:
            task = asyncio.create_task(self._ask_origin(key, token, site))
            self._asking[key] = task
            task.add_done_callback(lambda _t: self._asking.pop(key, None))
        return await asyncio.shield(task)

    async def _ask_origin(self, key: tuple[str, str], token: str, site: str) -> _Verdict:
        self.origin_checks += 1
        try:
            record = await self.origin.get_site(site, token=token)
        except (OriginAuthError, OriginNotFound) as exc:
            now = self.clock()
            verdict = _Verdict(False, exc.status, now + self.refusal_ttl_s)
        else:
            now = self.clock()
            verdict = _Verdict(True, 200, now + self.ttl_s, record)
            self.confirm(key[0])
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
