"""What a handler learns about its request, read by the request log and the timing header."""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["RequestInfo"]


@dataclass(slots=True)
class RequestInfo:
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

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0
