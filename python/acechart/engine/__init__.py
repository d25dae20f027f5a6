"""The query engine: answer from cached tiers, fetch only the gaps from the origin.

`query.py` holds the `Engine` (plan, read tiers, fetch gaps, write back,
aggregate, downsample); `fetch.py` decides how each gap is fetched (per point
or one site-wide pass) and `harvest.py` keeps every point a site-wide pass paid
for. No HTTP here: the server, the jobs and notebooks share this object.
"""

from acechart.engine.fetch import FetchEstimate, FetchPolicy
from acechart.engine.query import Engine, Fit, PartialPolicy, Plan, QueryObserver, now_ms
from acechart.engine.throughput import OriginThroughput

__all__ = [
    "Engine",
    "FetchEstimate",
    "FetchPolicy",
    "Fit",
    "OriginThroughput",
    "PartialPolicy",
    "Plan",
    "QueryObserver",
    "now_ms",
]
