"""The lock-free per-request metrics expose exactly what prometheus_client's own would."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from acechart.server.metrics import FastCounter, FastHistogram

BUCKETS = (0.001, 0.01, 0.1, 1.0)


def exposed(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return sorted(line for line in text.splitlines() if line and "_created" not in line)


def test_fast_metrics_expose_like_prometheus_client() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fc = FastCounter("x_requests", "Requests", ("endpoint", "status"), ours)
    fh = FastHistogram("x_seconds", "Time", ("endpoint",), BUCKETS, ours)
    pc = Counter("x_requests", "Requests", ["endpoint", "status"], registry=theirs)
    ph = Histogram("x_seconds", "Time", ["endpoint"], buckets=BUCKETS, registry=theirs)
    rng = random.Random(1)
    # Values on bucket bounds count in that bucket (`le`), past the last in +Inf.
    values = [0.001, 0.01, 1.0, 5.0, 0.0] + [rng.uniform(0, 2) for _ in range(200)]
    for i, v in enumerate(values):
        endpoint, status = ("a", "b")[i % 2], ("200", "404")[i % 3 == 0]
        fc.labels(endpoint, status).inc()
        pc.labels(endpoint, status).inc()
        fh.labels(endpoint).observe(v)
        ph.labels(endpoint).observe(v)
    assert exposed(ours) == exposed(theirs)
