"""notifyUrl calls: `POST {jobId, status}` when a job completes or fails.

The receiver authenticates the call by the `X-Acechart-Signature` header,
`sha256=` + hex HMAC-SHA256 of the exact body under `ACECHART_JOB_WEBHOOK_SECRET`
(the scheme GitHub's webhooks use, so receivers have code for it). Delivery
is best effort: a few tries with backoff in the background, and a receiver
that stays down is logged, never a reason to fail or delay the job.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from urllib.parse import urlsplit

import aiohttp

__all__ = ["SIGNATURE_HEADER", "Notifier", "sign"]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Acechart-Signature"
_FIRST_DELAY_S = 0.5


def sign(secret: str, body: bytes) -> str:
    """The signature header value for `body`: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Notifier:
    """Sends job notifications in background tasks it keeps track of."""

    def __init__(
        self,
        *,
        secret: str | None,
        attempts: int,
        timeout_s: float,
        first_delay_s: float = _FIRST_DELAY_S,
    ) -> None:
        self.secret = secret
        self.attempts = attempts
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.first_delay_s = first_delay_s
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[bool]] = set()

    def send(self, url: str, job_id: str, status: str) -> asyncio.Task[bool]:
        """Start delivering `{jobId, status}` to `url`; the task answers whether it arrived."""
        task = asyncio.create_task(self.deliver(url, job_id, status))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def deliver(self, url: str, job_id: str, status: str) -> bool:
        """POST the notification, retrying on errors and non-2xx answers; never raises."""
        body = json.dumps({"jobId": job_id, "status": status}, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        where = _redacted(url)
        for attempt in range(1, self.attempts + 1):
            try:
                async with self._client().post(
                    url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
                ) as resp:
                    if 200 <= resp.status < 300:
                        logger.info("notified %s: job %s %s", where, job_id, status)
                        return True
                    reason = f"answered {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if attempt < self.attempts:
                delay = self.first_delay_s * 2 ** (attempt - 1)
                logger.warning(
                    "notifying %s of job %s failed (%s), attempt %d of %d; retrying in %.1f s",
                    where,
                    job_id,
                    reason,
                    attempt,
                    self.attempts,
                    delay,
                )
                await asyncio.sleep(delay)
            else:
                logger.error(
                    "notifying %s of job %s failed (%s) after %d attempts; giving up",
                    where,
                    job_id,
                    reason,
                    self.attempts,
                )
        return False

    async def close(self, grace_s: float = 2.0) -> None:
        """Give notifications in flight `grace_s` to finish, cancel the rest, close the session."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session


def _redacted(url: str) -> str:
    """The URL without credentials or query, which may carry secrets, for logs."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(malformed URL)"
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
