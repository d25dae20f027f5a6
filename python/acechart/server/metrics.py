"""Prometheus metrics of the seed's section 7.1, on a registry owned by one app.

Each app gets its own `CollectorRegistry`, so two apps in one process (tests,
the demo) never share or collide on counters. Label values come from closed
sets (route names, formats, tiers), never from request input, so the number
of series stays bounded. Queue metrics are read from the job queue (`stats()`) at scrape
time (jobs by status, depth, oldest wait, mean duration of retained jobs), so
they count work done by every worker of the database, not only this process.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    exposition,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from acechart.result import Provenance

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = exposition.CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
)  # fmt: skip


class _Count:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class _Spread:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value


class FastCounter:
    """A labelled Prometheus counter for the per-request path: plain floats, no lock.

    prometheus_client's metrics take a lock per increment (a histogram
    observation cost more than the edge-cache lookup it timed); these are only
    touched on the event loop, so they need none, and they become metric
    families when the registry is scraped. Same names and exposition as
    `Counter` (without `_created`).
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: tuple[str, ...],
        registry: CollectorRegistry,
    ) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self._children: dict[tuple[str, ...], _Count] = {}
        registry.register(self)

    def labels(self, *values: str) -> _Count:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = _Count()
        return child

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self._children.items()):
            family.add_metric(list(values), child.value)
        yield family


class FastHistogram:
    """A labelled Prometheus histogram for the per-request path (see `FastCounter`)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: tuple[str, ...],
        buckets: tuple[float, ...],
        registry: CollectorRegistry,
    ) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.buckets = buckets
        self._children: dict[tuple[str, ...], _Spread] = {}
        registry.register(self)

    def labels(self, *values: str) -> _Spread:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = _Spread(self.buckets)
        return child

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self._children.items()):
            running = 0
            buckets = []
            for bound, count in zip((*self.buckets, float("inf")), child.counts, strict=True):
                running += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
            family.add_metric(list(values), buckets, child.sum)
        yield family


class AnswerCounts:
    """The four counters of data answers (by class, format, cache status and source),
    counted as one: each answer adds one to its combination, and the four families
    are sums over the combinations when the registry is scraped."""

    FAMILIES = (
        (
            "acechart_requests_by_size",
            "Data requests by class (seed 4.1 on the planned origin cost)",
            "size",
        ),
        ("acechart_requests_by_format", "Data requests by wire format", "format"),
        ("acechart_requests_by_cache", "Data requests by X-Cache-Status", "status"),
        ("acechart_requests_by_source", "Data requests by X-Cache-Source", "source"),
    )

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counts: dict[tuple[str, str, str, str], int] = {}
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        combined = list(self.counts.items())
        for i, (name, documentation, label) in enumerate(self.FAMILIES):
            totals: dict[str, int] = {}
            for key, n in combined:
                value = key[i] if i < 2 else key[i].lower()
                totals[value] = totals.get(value, 0) + n
            family = CounterMetricFamily(name, documentation, labels=(label,))
            for value, n in totals.items():
                family.add_metric([value], float(n))
            yield family


def error_type(status: int) -> str | None:
    """The seed's `errors.byType` label of a response status (None: not an error)."""
    if status == 429:
        return "rate_limit"
    if status == 504:
        return "timeout"
    if status == 502:
        return "origin"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return None


class Metrics:
    """Every metric of the service; handlers call the `record_*` helpers."""

    def __init__(self, instance_id: str = "") -> None:
        self.instance_id = instance_id
        """Added as the `instance_id` label of every sample, so N instances behind one
        balancer stay apart in the scraper (whatever it calls its own `instance`)."""
        r = self.registry = CollectorRegistry(auto_describe=True)
        # requests
        self.requests = FastCounter(
            "acechart_requests", "Requests by route and status", ("endpoint", "status"), r
        )
        self.answers = AnswerCounts(r)
        self.lane_answers = FastCounter(
            "acechart_hit_lane_answers",
            "Cached GETs the hit lane answered before their route: on the connection, ahead"
            " of aiohttp (`connection`), or in the middleware (`middleware`)",
            ("lane",),
            r,
        )
        # performance
        self.response_time = FastHistogram(
            "acechart_response_seconds",
            "Time to answer, by route",
            ("endpoint",),
            _LATENCY_BUCKETS,
            r,
        )
        self.cache_latency = FastHistogram(
            "acechart_cache_latency_seconds",
            "Time to answer from a cache tier (edge lookup; engine time of full hits by tier)",
            ("tier",),
            _LATENCY_BUCKETS,
            r,
        )
        self.origin_latency = Histogram(
            "acechart_origin_query_seconds",
            "Engine time of queries that fetched from the origin",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        # storage
        self.block_reads = Counter(
            "acechart_block_reads", "Blocks read from the object store (R2)", registry=r
        )
        self.block_writes = Counter(
            "acechart_block_writes", "Blocks written to the object store (R2)", registry=r
        )
        self.block_bytes = Gauge(
            "acechart_block_store_bytes", "Bytes of blocks in the object store (R2)", registry=r
        )
        self.aggregate_reads = Counter(
            "acechart_aggregate_reads",
            "Points answered from the aggregate table (D1)",
            registry=r,
        )
        self.database_bytes = Gauge(
            "acechart_database_bytes", "Size of the SQLite database file (D1)", registry=r
        )
        self.point_reads = Counter(
            "acechart_point_metadata_reads", "Point catalogue reads (KV)", registry=r
        )
        self.edge_bytes = Gauge(
            "acechart_edge_cache_bytes", "Bytes held by the response cache (L1)", registry=r
        )
        self.edge_entries = Gauge(
            "acechart_edge_cache_entries", "Responses held by the response cache (L1)", registry=r
        )
        self.origin_rate = Gauge(
            "acechart_origin_throughput_samples_per_second",
            "Measured origin download rate by fetch strategy (what request budgets assume)",
            ["strategy"],
            registry=r,
        )
        self.origin_round = Gauge(
            "acechart_origin_round_seconds",
            "Measured seconds per wave of concurrent origin requests, by fetch strategy",
            ["strategy"],
            registry=r,
        )
        # origin and errors
        self.origin_requests = Counter(
            "acechart_origin_requests", "Requests sent to the origin for samples", registry=r
        )
        self.origin_fetches = Counter(
            "acechart_origin_fetches",
            "Origin fetches by strategy (per_point, site_wide, filtered)",
            ["strategy"],
            registry=r,
        )
        self.origin_samples = Counter(
            "acechart_origin_samples", "Samples the origin sent (what was paid for)", registry=r
        )
        self.origin_bytes = Counter(
            "acechart_origin_bytes", "Body bytes received from the origin", registry=r
        )
        self.answered_samples = Counter(
            "acechart_answered_samples",
            "Samples answered by queries that went to the origin (the amplification's divisor)",
            registry=r,
        )
        self.harvested_samples = Counter(
            "acechart_harvested_samples",
            "Samples of points not asked for that a site-wide pass stored in blocks",
            registry=r,
        )
        self.errors = FastCounter("acechart_errors", "Error responses by type", ("type",), r)
        self.retries = Counter(
            "acechart_origin_retries", "Origin sample requests that were retries", registry=r
        )
        # queues (seed 7.1 `queues`), set at scrape time from JobQueue.stats()
        self.jobs = Gauge("acechart_jobs", "Retained jobs by status", ["status"], registry=r)
        self.queue_depth = Gauge("acechart_queue_depth", "Jobs waiting to run", registry=r)
        self.queue_wait = Gauge(
            "acechart_queue_oldest_wait_seconds", "Age of the oldest waiting job", registry=r
        )
        self.job_duration = Gauge(
            "acechart_job_duration_seconds_mean",
            "Mean run time of the completed jobs still retained",
            registry=r,
        )
        self.job_converted_series = Counter(
            "acechart_job_converted_series",
            "Series of job results encoded into another representation for a download",
            registry=r,
        )
        # Labelled children by label values: `labels()` costs more than the increment.
        self._response_children: dict[tuple[str, int], tuple[_Count, _Spread, _Count | None]] = {}
        self._edge_latency: _Spread | None = None

    def record_response(self, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, status)
        children = self._response_children.get(key)
        if children is None:
            kind = error_type(status)
            children = (
                self.requests.labels(endpoint, str(status)),
                self.response_time.labels(endpoint),
                None if kind is None else self.errors.labels(kind),
            )
            self._response_children[key] = children
        requests, spread, errors = children
        requests.value += 1
        spread.counts[bisect.bisect_left(spread.bounds, seconds)] += 1
        spread.sum += seconds
        if errors is not None:
            errors.value += 1

    def record_answer(self, size: str, fmt: str, cache_status: str, cache_source: str) -> None:
        """One data answer, by class, format, cache status and source."""
        counts = self.answers.counts
        key = (size, fmt, cache_status, cache_source)
        counts[key] = counts.get(key, 0) + 1

    def record_edge_hit(self, seconds: float) -> None:
        """The edge cache's latency of one hit (its labelled child looked up once)."""
        if self._edge_latency is None:
            self._edge_latency = self.cache_latency.labels("edge")
        self._edge_latency.observe(seconds)

    def record_engine(self, prov: Provenance, seconds: float, answered: int = 0) -> None:
        """Tier counters and latencies of one engine query (`answered`: its samples)."""
        self.block_reads.inc(prov.blocks_read)
        self.block_writes.inc(prov.blocks_written)
        self.aggregate_reads.inc(prov.aggregate_points)
        if "ORIGIN" in prov.sources:
            self.origin_latency.observe(seconds)
            self.origin_requests.inc(prov.origin_requests)
            # A page is one successful request; every attempt beyond it was a retry.
            self.retries.inc(max(0, prov.origin_requests - prov.origin_pages))
            for strategy, count in prov.strategies.items():
                self.origin_fetches.labels(strategy).inc(count)
            self.origin_samples.inc(prov.origin_samples)
            self.origin_bytes.inc(prov.origin_bytes)
            self.answered_samples.inc(answered)
            self.harvested_samples.inc(prov.harvested_samples)
        else:
            self.cache_latency.labels(prov.cache_source.lower()).observe(seconds)

    def render(self) -> bytes:
        text = generate_latest(self.registry)
        if not self.instance_id:
            return text
        return _labelled(text, self.instance_id)


def _labelled(text: bytes, instance_id: str) -> bytes:
    """The exposition with `instance_id="..."` first among every sample's labels."""
    escaped = instance_id.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    label = f'instance_id="{escaped}"'.encode()
    out: list[bytes] = []
    for line in text.split(b"\n"):
        if not line or line.startswith(b"#"):
            out.append(line)
            continue
        brace, space = line.find(b"{"), line.find(b" ")
        if brace != -1 and (space == -1 or brace < space):
            rest = line[brace + 1 :]
            out.append(
                line[: brace + 1] + label + (b"," if not rest.startswith(b"}") else b"") + rest
            )
        else:
            out.append(line[:space] + b"{" + label + b"}" + line[space:])
    return b"\n".join(out)
