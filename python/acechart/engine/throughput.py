"""How fast the origin answers, measured: what a fetch will take before it is made.

A request is answered synchronously when its origin fetch fits the request
budget, so the service needs a time, not a sample count. Each fetch's wall
time is modelled as

    rounds x seconds_per_round + samples / samples_per_second

where a round is one wave of requests under the client's concurrency bound
(`ceil(requests / concurrency)` for independent requests; a site-wide pass
pages each window in sequence, so its rounds are its waves of windows times
the pages per window): per-request latency and the origin's
download rate, the two things that make a few long-range requests and many
short ones cost differently. Both figures are exponentially weighted averages
of what fetches actually took, one record per strategy (a per-point request
and a site-wide page do not cost the same), seeded from settings until the
first measurement. A fetch mostly waiting on latency (the model says its
rounds took longer than its samples) corrects the latency; one mostly
downloading corrects the rate, each after taking the other term's modelled
share out of its wall time.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

__all__ = ["OriginThroughput", "Rate"]

_ALPHA = 0.3
"""Weight of a new measurement: about the last five fetches count."""

_FLOOR = 0.25
"""The share of a fetch's wall time a term keeps however the other term models it, so a
model that is off does not swing a figure to zero or infinity."""


@dataclass
class Rate:
    """One strategy's measured origin speed."""

    samples_per_s: float
    round_s: float
    observations: int = 0


class OriginThroughput:
    """Measured speed of one origin, by strategy; every fetch of its client updates it."""

    def __init__(self, samples_per_s: float, round_s: float, concurrency: int) -> None:
        self.seed = Rate(samples_per_s, round_s)
        self.concurrency = max(1, concurrency)
        self._rates: dict[str, Rate] = {}
        self._lock = threading.Lock()

    def rate(self, strategy: str) -> Rate:
        """The current figures for `strategy` (the seed until it has been measured)."""
        with self._lock:
            r = self._rates.get(strategy, self.seed)
            return Rate(r.samples_per_s, r.round_s, r.observations)

    def rounds(self, requests: int, in_sequence: int = 1) -> int:
        """Waves of `requests` independent request chains of `in_sequence` requests each."""
        return math.ceil(max(requests, 0) / self.concurrency) * max(in_sequence, 1)

    def seconds(self, strategy: str, samples: int, rounds: int) -> float:
        """Estimated wall time of a fetch of `samples` in `rounds` waves of requests."""
        if rounds <= 0 and samples <= 0:
            return 0.0
        r = self.rate(strategy)
        return max(rounds, 1) * r.round_s + samples / r.samples_per_s

    def observe(self, strategy: str, elapsed_s: float, samples: int, rounds: int) -> None:
        """Fold one finished fetch (`rounds` waves of requests) into the record of `strategy`."""
        if elapsed_s <= 0 or rounds <= 0:
            return
        with self._lock:
            current = self._rates.get(strategy) or Rate(self.seed.samples_per_s, self.seed.round_s)
            latency_part = rounds * current.round_s
            download_part = samples / current.samples_per_s
            if samples > 0 and download_part >= latency_part:
                spent = max(elapsed_s - latency_part, _FLOOR * elapsed_s)
                current.samples_per_s = _blend(current.samples_per_s, samples / spent)
            else:
                spent = max(elapsed_s - download_part, _FLOOR * elapsed_s)
                current.round_s = _blend(current.round_s, spent / rounds)
            current.observations += 1
            self._rates[strategy] = current

    def snapshot(self) -> dict[str, Rate]:
        """Every measured strategy's figures (for metrics and tests)."""
        with self._lock:
            return {
                k: Rate(v.samples_per_s, v.round_s, v.observations) for k, v in self._rates.items()
            }


def _blend(old: float, new: float) -> float:
    return (1 - _ALPHA) * old + _ALPHA * new
