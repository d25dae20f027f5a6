"""Jobs as data: what was asked, where a job stands, how it failed, and the API bodies.

`JobRequest` is the seed's QueueMessage (section 2.3) as a validated value: it is
stored as the job's `request_json` in that very shape, so a Redis Streams queue
can carry the same message. `Job` is one row of the queue, whatever the backend,
and renders the seed's bodies: the 202 of a submission (section 6.1), the
processing / completed bodies of `GET /api/jobs/:id` and the failed body of
section 6.2. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from acechart.errors import AcechartError, BadRequest
from acechart.query import Query, parse_time
from acechart.times import format_time
from acechart.wire import JOB_FORMATS, JOB_LAYOUTS, Format, Layout, Representation, representation

__all__ = [
    "PRIORITIES",
    "TERMINAL",
    "Job",
    "JobError",
    "JobFormat",
    "JobRequest",
    "JobStatus",
    "Layout",
    "Priority",
    "estimate_samples",
]

JobStatus = Literal["pending", "processing", "completed", "failed", "cancelled"]
#: Statuses a job never leaves.
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})

Priority = Literal["low", "normal", "high"]
#: Priority names and the number stored for ordering (higher runs first).
PRIORITIES: dict[str, int] = {"low": 0, "normal": 1, "high": 2}

JobFormat = Format
JobType = Literal["large_query", "export"]

#: Samples a job fetches per second, for the first duration estimate (measured: about
#: 750 k/s for a cold raw year of 50 one-minute points; rounded down).
_SAMPLES_PER_S = 500_000
#: Cadence assumed for estimates when nothing better is known (ACE's common 1/min).
_ASSUMED_CADENCE_MS = 60_000


def estimate_samples(query: Query) -> int:
    """Raw samples a query reads, assuming one-minute data (the origin fetch is raw whatever
    the interval, so this sizes the work, not the answer)."""
    return len(query.points) * max(0, query.end_ms - query.start_ms) // _ASSUMED_CADENCE_MS


@dataclass(frozen=True)
class JobRequest:
    """What a job computes and how it delivers it: the seed's QueueMessage, validated.

    Build it with `JobRequest.build` (checks every field, naming the bad one) or
    from a POST body with `JobRequest.from_body`.
    """

    query: Query
    format: JobFormat = "json"
    layout: Layout = "rows"
    priority: Priority = "normal"
    notify_url: str | None = None
    job_type: JobType = "large_query"
    estimated_samples: int = 0

    @classmethod
    def build(
        cls,
        query: Query,
        fmt: str = "json",
        *,
        layout: str = "rows",
        priority: str = "normal",
        notify_url: str | None = None,
        job_type: str = "large_query",
        estimated_samples: int | None = None,
        max_points: int,
        max_range_days: int,
    ) -> JobRequest:
        """A checked request; `BadRequest` names the parameter at fault."""
        query.validate(max_points=max_points, max_range_days=max_range_days)
        rep = representation(fmt, layout, formats=JOB_FORMATS, layouts=JOB_LAYOUTS)
        if priority not in PRIORITIES:
            raise BadRequest(
                f"unknown priority {priority!r}; use low, normal or high", parameter="priority"
            )
        if job_type not in ("large_query", "export"):
            raise BadRequest(f"unknown job type {job_type!r}", parameter="jobType")
        if notify_url is not None:
            _check_url(notify_url)
        return cls(
            query,
            rep.format,
            rep.layout,
            cast(Priority, priority),
            notify_url,
            cast(JobType, job_type),
            estimate_samples(query) if estimated_samples is None else int(estimated_samples),
        )

    @classmethod
    def from_body(cls, body: object, *, max_points: int, max_range_days: int) -> JobRequest:
        """A request from a `POST /api/jobs` body with the seed's QueueMessage fields.

        `siteId`, `pointNames` (a list, or one comma-separated string), `startTime`,
        `endTime` (date, ISO-8601 datetime or ms since the epoch) are required;
        `aggregation` (raw, 1min, 5min, 15min, 1hr, 1day, 1week, 1month), `tz` (an IANA
        zone or `site`), `stat`, `resetThreshold`, `format`, `layout`, `priority`,
        `downsample`, `maxPoints` and `metadata.notifyUrl` are optional.
        """
        if not isinstance(body, Mapping):
            raise BadRequest("the body must be a JSON object", parameter="body")
        points = body.get("pointNames")
        if isinstance(points, str):
            points = [p.strip() for p in points.split(",") if p.strip()]
        if not isinstance(points, list) or not all(isinstance(p, str) for p in points):
            raise BadRequest("pointNames must be a list of point names", parameter="pointNames")
        site = body.get("siteId")
        if not isinstance(site, str):
            raise BadRequest("siteId must be a site name", parameter="siteId")
        meta = body.get("metadata") or {}
        if not isinstance(meta, Mapping):
            raise BadRequest("metadata must be an object", parameter="metadata")
        notify = meta.get("notifyUrl")
        if notify is not None and not isinstance(notify, str):
            raise BadRequest("metadata.notifyUrl must be a URL", parameter="metadata.notifyUrl")
        max_pts = _whole(body.get("maxPoints"))
        if max_pts is not None and (isinstance(max_pts, bool) or not isinstance(max_pts, int)):
            raise BadRequest("maxPoints must be an integer", parameter="maxPoints")
        downsample = body.get("downsample")
        if downsample is not None and not isinstance(downsample, str):
            raise BadRequest("downsample must be minmaxlttb or m4", parameter="downsample")
        threshold = body.get("resetThreshold")
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, int | float)
        ):
            raise BadRequest("resetThreshold must be a number", parameter="resetThreshold")
        query = Query(
            site,
            tuple(points),
            _time(body.get("startTime"), "startTime"),
            _time(body.get("endTime"), "endTime"),
            _text(body.get("aggregation", "raw"), "aggregation"),
            downsample,
            max_pts,
            tz=_text(body.get("tz", "UTC"), "tz"),
            stat=_text(body.get("stat", "avg"), "stat"),
            reset_threshold=None if threshold is None else float(threshold),
        )
        return cls.build(
            query,
            _text(body.get("format", "json"), "format"),
            layout=_text(body.get("layout", "rows"), "layout"),
            priority=_text(body.get("priority", "normal"), "priority"),
            notify_url=notify,
            job_type="export",
            max_points=max_points,
            max_range_days=max_range_days,
        )

    def dedup_key(self, token_hmac: str) -> str:
        """Identity of the work for one caller: identical requests share one live job.

        Times are already milliseconds, so `2024-01-01` and `2024-01-01T00:00:00Z`
        agree; point order stays significant because it orders the answer's series.
        The token HMAC is part of it: a job is visible only to its owner, so
        another caller must never be handed it.
        """
        q = self.query
        parts = [
            token_hmac,
            q.site,
            list(q.points),
            q.start_ms,
            q.end_ms,
            q.interval,
            q.downsample,
            q.max_points,
            self.format,
            self.layout,
        ]
        # Only when not the defaults, so a job queued before tz and stat keeps its key.
        if (q.tz, q.stat, q.reset_threshold) != ("UTC", "avg", None):
            parts += [q.tz, q.stat, q.reset_threshold]
        return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()

    def to_message(self, job_id: str, user_id: str, created_at: int) -> dict[str, Any]:
        """The seed's QueueMessage (plus layout, downsample and maxPoints) for this request."""
        q = self.query
        message: dict[str, Any] = {
            "jobId": job_id,
            "userId": user_id,
            "siteId": q.site,
            "pointNames": list(q.points),
            "startTime": format_time(q.start_ms),
            "endTime": format_time(q.end_ms),
            "aggregation": q.interval,
            "format": self.format,
            "layout": self.layout,
            "priority": self.priority,
            "estimatedSamples": self.estimated_samples,
            "createdAt": format_time(created_at * 1000),
            "jobType": self.job_type,
        }
        if q.downsample is not None:
            message["downsample"] = q.downsample
        if q.max_points is not None:
            message["maxPoints"] = q.max_points
        if q.tz != "UTC":
            message["tz"] = q.tz
        if q.stat != "avg":
            message["stat"] = q.stat
        if q.reset_threshold is not None:
            message["resetThreshold"] = q.reset_threshold
        if self.notify_url is not None:
            message["metadata"] = {"notifyUrl": self.notify_url}
        return message

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> JobRequest:
        """The request back from a stored QueueMessage (written by `to_message`)."""
        meta = message.get("metadata") or {}
        query = Query(
            message["siteId"],
            tuple(message["pointNames"]),
            parse_time(message["startTime"], "startTime"),
            parse_time(message["endTime"], "endTime"),
            message.get("aggregation", "raw"),
            message.get("downsample"),
            message.get("maxPoints"),
            tz=message.get("tz", "UTC"),
            stat=message.get("stat", "avg"),
            reset_threshold=message.get("resetThreshold"),
        )
        return cls(
            query,
            message.get("format", "json"),
            message.get("layout", "rows"),
            message.get("priority", "normal"),
            meta.get("notifyUrl"),
            message.get("jobType", "large_query"),
            int(message.get("estimatedSamples", 0)),
        )

    @property
    def representation(self) -> Representation:
        """The format and layout the result is stored in."""
        return Representation(self.format, self.layout)

    @property
    def estimated_duration_s(self) -> int:
        """A first guess of the run time in whole seconds, before any progress is known."""
        return max(1, math.ceil(self.estimated_samples / _SAMPLES_PER_S))


@dataclass(frozen=True)
class JobError:
    """Why a job run failed: the seed's failed-job fields (section 6.2)."""

    code: str
    message: str
    retryable: bool
    retry_after: int | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, *, default_retry_after: int) -> JobError:
        """Classify a run's failure: origin, storage and unknown errors may pass with time
        (retryable); a refusal or a bad request will fail the same way again."""
        if isinstance(exc, AcechartError):
            retryable = exc.status >= 500 or exc.status == 429
            hint = exc.extra.get("retryAfter")
            retry_after = int(hint) if isinstance(hint, int | float) else default_retry_after
            return cls(exc.code, exc.message, retryable, retry_after if retryable else None)
        return cls(
            "internal_error",
            f"unexpected {type(exc).__name__} while running the job",
            True,
            default_retry_after,
        )

    def fields(self) -> dict[str, Any]:
        """`error`, `message`, `retryable` and, when retryable, `retryAfter` (seconds)."""
        out: dict[str, Any] = {
            "error": self.code,
            "message": self.message,
            "retryable": self.retryable,
        }
        if self.retryable and self.retry_after is not None:
            out["retryAfter"] = self.retry_after
        return out


#: The public name of each status: the seed's 202 body says "queued" for a waiting job.
_PUBLIC_STATUS: dict[str, str] = {
    "pending": "queued",
    "processing": "processing",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}


@dataclass(frozen=True)
class Job:
    """One job as the queue holds it. Times are unix seconds unless named `_ms`."""

    id: str
    request: JobRequest
    status: JobStatus
    token_hmac: str
    created_at: int
    progress: int = 0
    attempts: int = 0
    started_at: int | None = None
    completed_at: int | None = None
    updated_at: int | None = None
    estimated_duration: int | None = None
    estimated_remaining: int | None = None
    result_key: str | None = None
    result_size: int | None = None
    error: JobError | None = None
    cancel_requested: bool = False
    expires_at: int | None = None
    not_before_ms: int = 0
    token_sealed: str | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def url(self) -> str:
        """The job's status URL (the 202's `Location` and `statusUrl`)."""
        return f"/api/jobs/{self.id}"

    @property
    def public_status(self) -> str:
        return _PUBLIC_STATUS[self.status]

    def accepted_body(self) -> dict[str, Any]:
        """The seed's 202 body for a submission (section 6.1, large request)."""
        return {
            "jobId": self.id,
            "status": self.public_status,
            "estimatedDuration": self.estimated_duration or self.request.estimated_duration_s,
            "statusUrl": self.url,
            "message": "Large query queued for background processing",
        }

    def body(self, now: float) -> dict[str, Any]:
        """The body of `GET /api/jobs/:id` at unix time `now`, by status (seed 6.1, 6.2)."""
        out: dict[str, Any] = {"jobId": self.id, "status": self.public_status}
        if self.status == "pending":
            out["progress"] = self.progress
            out["estimatedRemaining"] = self.estimated_duration or 0
            if self.attempts:
                out["attempts"] = self.attempts
                out["retryAt"] = format_time(self.not_before_ms)
            if self.error is not None:
                out["lastError"] = {"error": self.error.code, "message": self.error.message}
        elif self.status == "processing":
            out["progress"] = self.progress
            out["estimatedRemaining"] = self._remaining(now)
            if self.cancel_requested:
                out["cancelRequested"] = True
        elif self.status == "completed":
            out["progress"] = 100
            out["resultUrl"] = f"{self.url}/result"
            out["resultFormat"] = self.request.format
            out["resultSize"] = self.result_size
        elif self.status == "failed" and self.error is not None:
            out.update(self.error.fields())
            out["attempts"] = self.attempts
        out["createdAt"] = _iso(self.created_at)
        if self.started_at is not None:
            out["startedAt"] = _iso(self.started_at)
        if self.done and self.completed_at is not None:
            out["completedAt"] = _iso(self.completed_at)
        if self.status == "completed" and self.completed_at is not None:
            out["duration"] = self.completed_at - (self.started_at or self.created_at)
            if self.expires_at is not None:
                out["expiresAt"] = _iso(self.expires_at)
        return out

    def _remaining(self, now: float) -> int:
        """The worker's last estimate, less the time since it was made."""
        if self.estimated_remaining is None:
            return self.estimated_duration or 0
        since = max(0.0, now - (self.updated_at or now))
        return max(0, math.ceil(self.estimated_remaining - since))


def _iso(unix_s: int) -> str:
    return format_time(unix_s * 1000)


def _text(value: object, parameter: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{parameter} must be a string", parameter=parameter)
    return value


def _whole(value: object) -> object:
    """A JSON number with no fraction (`5.0`) as the integer it is: JSON Schema counts it
    as an integer, and so do clients that write every number as a float."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


def _time(value: object, parameter: str) -> int:
    value = _whole(value)
    if isinstance(value, bool) or value is None:
        raise BadRequest(
            f"{parameter} is required (date or ISO-8601 datetime)", parameter=parameter
        )
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return parse_time(value, parameter)
    raise BadRequest(f"{parameter} must be a date or ISO-8601 datetime", parameter=parameter)


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(
            "metadata.notifyUrl must be an absolute http(s) URL", parameter="metadata.notifyUrl"
        )
    if "@" in parts.netloc:
        # user:password@ would be sent on to the receiver and kept in the job table.
        raise BadRequest(
            "metadata.notifyUrl must not carry credentials (user:password@)",
            parameter="metadata.notifyUrl",
        )
    if any(ord(c) < 0x21 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in url):
        raise BadRequest(
            "metadata.notifyUrl must not contain spaces or control characters",
            parameter="metadata.notifyUrl",
        )
