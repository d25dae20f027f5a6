"""The one exception hierarchy of acechart.

Every failure a caller can see is an `AcechartError` carrying the HTTP status and
the error code of the seed's JSON error body (`{"error": code, "message": ..}`),
so the server maps exceptions to responses in one place and the notebook API
raises the very same types without importing aiohttp.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AcechartError",
    "BadRequest",
    "ConfigError",
    "DeadlineExceeded",
    "Forbidden",
    "JobNotFound",
    "JobResultUnavailable",
    "NotFound",
    "OriginAuthError",
    "OriginBadRequest",
    "OriginError",
    "OriginNotFound",
    "OriginTimeout",
    "OriginUnavailable",
    "RateLimited",
    "RequestTooLarge",
    "Unauthorized",
]


class AcechartError(Exception):
    """Base of every acechart error: an HTTP status, an error code and extra body fields.

    `extra` holds the fields the seed's error bodies add beside `error` and
    `message` (for example `retryAfter` or `suggestions`); keys are written as
    they should appear in the JSON body.
    """

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra: dict[str, Any] = extra

    def to_body(self) -> dict[str, Any]:
        """The JSON error body of the seed: `{"error": code, "message": .., **extra}`."""
        return {"error": self.code, "message": self.message, **self.extra}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status})"


class ConfigError(AcechartError, ValueError):
    """Invalid settings, found once at start-up; a `ValueError` so plain callers catch it."""

    status = 500
    code = "config_error"


class BadRequest(AcechartError, ValueError):
    """The caller's input is invalid; the body names the offending parameter."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, parameter: str | None = None, **extra: Any) -> None:
        if parameter is not None:
            extra = {"parameter": parameter, **extra}
        super().__init__(message, **extra)
        self.parameter = parameter


class Unauthorized(AcechartError):
    """No token, or a token the origin does not accept."""

    status = 401
    code = "unauthorized"


class Forbidden(AcechartError):
    """A valid token that may not read the requested site."""

    status = 403
    code = "forbidden"


class NotFound(AcechartError):
    """An unknown site, point, job or route."""

    status = 404
    code = "not_found"


class JobNotFound(NotFound):
    """No such job for this caller: unknown, expired, or created with another token.

    All three read the same, so a job id reveals nothing to anyone but its owner.
    """


class JobResultUnavailable(AcechartError):
    """The job has no result to download (yet): still queued or running, failed or cancelled.

    The body carries the job's `status` so a client knows whether to keep polling.
    """

    status = 409
    code = "result_unavailable"


class RequestTooLarge(AcechartError):
    """A query too large to answer synchronously; the body carries suggestions."""

    status = 413
    code = "request_too_large"

    def __init__(
        self,
        message: str,
        *,
        estimated_samples: int | None = None,
        suggestions: list[str] | None = None,
        **extra: Any,
    ) -> None:
        if estimated_samples is not None:
            extra["estimatedSamples"] = estimated_samples
        if suggestions is not None:
            extra["suggestions"] = list(suggestions)
        super().__init__(message, **extra)
        self.estimated_samples = estimated_samples


class RateLimited(AcechartError):
    """Too many requests from this caller; `retry_after` seconds go in Retry-After."""

    status = 429
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float, **extra: Any) -> None:
        super().__init__(message, retryAfter=_whole_seconds(retry_after), **extra)
        self.retry_after = retry_after


class OriginError(AcechartError):
    """The ACE origin failed us; carries the origin's HTTP status and a short reason.

    `origin_status` is None when no response arrived (connection refused, dropped,
    timed out). `retry_after` is set when the origin asked us to wait.
    """

    status = 502
    code = "origin_unavailable"

    def __init__(
        self,
        reason: str,
        *,
        origin_status: int | None = None,
        retry_after: float | None = None,
        **extra: Any,
    ) -> None:
        extra = {"originStatus": origin_status, **extra}
        if retry_after is not None:
            extra["retryAfter"] = _whole_seconds(retry_after)
        super().__init__(reason, **extra)
        self.reason = reason
        self.origin_status = origin_status
        self.retry_after = retry_after


class OriginUnavailable(OriginError):
    """The origin kept failing (5xx, 429, dropped connections) past the retry budget."""

    status = 502
    code = "origin_unavailable"


class OriginTimeout(OriginError):
    """The origin did not answer in time, on every attempt."""

    status = 504
    code = "origin_timeout"


class DeadlineExceeded(OriginTimeout):
    """A request's whole deadline (`request_deadline_s`) passed before its answer was ready:
    the seed's `timeout` body, 504. An `OriginTimeout` (the origin is what is slow), so a
    stale copy is served instead where one is kept, as for any origin timeout."""

    status = 504
    code = "timeout"


class OriginAuthError(OriginError):
    """The origin refused the token (401) or the site for this token (403).

    Its status is the one the origin sent, so the caller sees the same answer.
    """

    status = 401
    code = "unauthorized"

    def __init__(self, reason: str, *, origin_status: int = 401, **extra: Any) -> None:
        super().__init__(reason, origin_status=origin_status, **extra)
        self.status = 403 if origin_status == 403 else 401
        self.code = "forbidden" if origin_status == 403 else "unauthorized"


class OriginNotFound(OriginError):
    """The origin does not know the site or point."""

    status = 404
    code = "not_found"

    def __init__(self, reason: str, *, origin_status: int = 404, **extra: Any) -> None:
        super().__init__(reason, origin_status=origin_status, **extra)


class OriginMisconfigured(OriginError):
    """The origin URL answers, but not as the ACE API does (a 404 page that is not the
    API's JSON): most likely `origin_url` points at the wrong place."""

    status = 502
    code = "origin_misconfigured"


class OriginBadRequest(OriginError):
    """The origin rejected our request as invalid (422, 400): reported as our 400."""

    status = 400
    code = "bad_request"

    def __init__(self, reason: str, *, origin_status: int = 422, **extra: Any) -> None:
        super().__init__(reason, origin_status=origin_status, **extra)


def _whole_seconds(seconds: float) -> int:
    """Retry-After is whole seconds on the wire; round up so callers never retry early."""
    whole = int(seconds)
    return whole if whole == seconds else whole + 1
