"""The wire document of a timeseries answer, shared by `/api/timeseries` and job results.

Both must produce the very same bytes for the same query (a job's result reads
exactly like the synchronous answer), so the metadata block and the series
items the Rust encoders take are built here, once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from acechart.query import Query, format_time
from acechart.result import Series

RawItem = tuple[str, NDArray[np.int64], NDArray[np.float64]]


def document_metadata(query: Query, total_samples: int) -> dict[str, Any]:
    """The seed's metadata block (section 6.1), plus the downsampling when one was asked for."""
    meta: dict[str, Any] = {
        "siteId": query.site,
        "pointNames": list(query.points),
        "startTime": format_time(query.start_ms),
        "endTime": format_time(query.end_ms),
        "aggregation": query.interval,
        "totalSamples": total_samples,
    }
    if query.max_points is not None:
        meta["downsample"] = query.downsample or "minmaxlttb"
        meta["maxPoints"] = query.max_points
    return meta


def series_item(series: Series) -> RawItem:
    """One series as the encoders take it: `[ts, value]` pairs (interval answers carry
    each bucket's average)."""
    return (
        series.name,
        np.ascontiguousarray(series.ts, np.int64),
        np.ascontiguousarray(series.values, np.float64),
    )
