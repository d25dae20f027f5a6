"""Fault injection and the request log of the simulator.

Faults come two ways: at a rate (settings or `configure`), drawn from a seeded
generator so a run is repeatable, and scripted (`script("429", "drop")`), which
the next matching requests take in order, so a test says exactly which request
fails and how. The request log records what was asked and answered, so tests
can assert how many origin requests a fetch made.
"""

from __future__ import annotations

import dataclasses
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

__all__ = [
    "FAULTS",
    "STATUS_FAULTS",
    "Fault",
    "FaultInjector",
    "FaultPlan",
    "RequestLog",
    "RequestRecord",
]

#: `429`: Too Many Requests with Retry-After; other codes: that error status;
#: `drop`: the connection closes halfway through the body; `corrupt`: half the
#: body arrives, complete by its Content-Length but not valid JSON; `slow`: the
#: body trickles out over `slow_body_s`; `hang`: nothing is sent for `hang_s`.
Fault = Literal[
    "401", "403", "404", "422", "429", "500", "502", "503", "504", "drop", "corrupt", "slow", "hang"
]
FAULTS: frozenset[str] = frozenset(get_args(Fault))
STATUS_FAULTS: frozenset[str] = frozenset(f for f in FAULTS if f.isdigit())


@dataclass
class FaultPlan:
    """Rates and sizes of injected faults; mutable so a test can change them mid-run."""

    latency_s: float = 0.0
    """Fixed delay before every response."""
    jitter_s: float = 0.0
    """Extra uniform random delay, 0..jitter_s, before every response."""
    rate_limit_rate: float = 0.0
    """Share of requests answered 429."""
    retry_after_s: float = 1.0
    """Retry-After sent with a 429 (written as a number of seconds)."""
    error_rate: float = 0.0
    """Share of requests answered 500 or 503 (half each)."""
    drop_rate: float = 0.0
    """Share of responses cut off halfway through the body."""
    slow_body_s: float = 0.0
    """Every body (0: none) trickles out in chunks over this many seconds."""
    hang_s: float = 30.0
    """How long a scripted `hang` stays silent."""
    path_contains: str = ""
    """Only requests whose path contains this are faulted ("" means every request)."""


@dataclass(frozen=True)
class RequestRecord:
    """One request the simulator answered (never the token)."""

    method: str
    path: str
    params: Mapping[str, str]
    status: int
    fault: str | None
    started_s: float
    """`time.perf_counter()` when the request arrived."""
    duration_s: float
    """Until the handler returned, before any slow or cut-off body was sent."""
    samples: int | None = None


class FaultInjector:
    """Decides, per request, whether and how it fails; seeded, so runs repeat."""

    def __init__(self, plan: FaultPlan, seed: int = 0) -> None:
        self._initial = dataclasses.replace(plan)
        self.plan = dataclasses.replace(plan)
        self._seed = seed
        self._rng = random.Random(seed)
        self._script: deque[Fault] = deque()

    def configure(self, **changes: float | str) -> None:
        """Change fault rates or sizes for the following requests (`latency_s=0.05`)."""
        for name, value in changes.items():
            if not hasattr(self.plan, name):
                raise TypeError(f"unknown fault setting {name!r}")
            setattr(self.plan, name, value)

    def script(self, *faults: Fault) -> None:
        """The next matching requests fail as listed, in order, before any random fault."""
        for fault in faults:
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; one of {sorted(FAULTS)}")
            self._script.append(fault)

    @property
    def pending(self) -> int:
        """Scripted faults not yet taken."""
        return len(self._script)

    def reset(self) -> None:
        """Back to the configured plan, an empty script and a fresh random sequence."""
        self.plan = dataclasses.replace(self._initial)
        self._script.clear()
        self._rng = random.Random(self._seed)

    def applies(self, path: str) -> bool:
        return self.plan.path_contains in path

    def decide(self, path: str) -> Fault | None:
        """The fault for one request to `path`, if any."""
        if not self.applies(path):
            return None
        if self._script:
            return self._script.popleft()
        plan = self.plan
        draw = self._rng.random()
        if draw < plan.rate_limit_rate:
            return "429"
        draw -= plan.rate_limit_rate
        if draw < plan.error_rate:
            return "500" if self._rng.random() < 0.5 else "503"
        draw -= plan.error_rate
        if draw < plan.drop_rate:
            return "drop"
        return None

    def delay(self, path: str) -> float:
        """Seconds to wait before answering a request to `path`."""
        if not self.applies(path):
            return 0.0
        jitter = self._rng.random() * self.plan.jitter_s if self.plan.jitter_s else 0.0
        return self.plan.latency_s + jitter


@dataclass
class RequestLog:
    """Every request in arrival order; read by tests, cleared between them."""

    records: list[RequestRecord] = field(default_factory=list)

    def add(self, record: RequestRecord) -> None:
        self.records.append(record)

    def clear(self) -> None:
        self.records.clear()

    def matching(self, path_contains: str = "", status: int | None = None) -> list[RequestRecord]:
        """Records whose path contains `path_contains` (and with `status`, if given)."""
        return [
            r
            for r in self.records
            if path_contains in r.path and (status is None or r.status == status)
        ]

    def __len__(self) -> int:
        return len(self.records)
