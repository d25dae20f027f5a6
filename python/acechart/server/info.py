"""What a handler learns about its request, read by the request log and the timing header."""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["RequestInfo", "Ticket"]


@dataclass(frozen=True, slots=True)
class Ticket:
    """What answers a data GET from the edge again (`server.lane`): its edge key, and
    what the request log and the rate limit say of it."""

    key: Hashable
    endpoint: str
    site: str
    point_count: int
    format: str


class RequestInfo:
    """Made on every request: only the id and the start are set then, the rest are
    class defaults until a handler learns them."""

    request_id: str
    started: float
    """`time.perf_counter()` when the request arrived."""
    site: str | None = None
    point_count: int | None = None
    estimated_samples: int | None = None
    format: str | None = None
    classification: str | None = None
    cache_status: str | None = None
    cache_source: str | None = None
    samples: int | None = None
    client: str | None = None
    """First 12 hex digits of the token's MAC: enough to follow a caller, never the token."""
    size: int | None = None
    """Bytes of the body sent, when the answer knows them before it is sent."""
    ticket: Ticket | None = None
    """Set when the answer came fresh from the edge: the hit lane may answer it again."""

    def __init__(self, request_id: str, started: float) -> None:
        self.request_id = request_id
        self.started = started

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0
