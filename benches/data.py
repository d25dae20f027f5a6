"""Synthetic one-minute building data for the benchmarks, generated once per session."""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt
import orjson

MINUTE_MS = 60_000
YEAR_MINUTES = 365 * 24 * 60  # 525,600
START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


@cache
def year_series(n_points: int) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """One year of one-minute samples per point: a daily cycle plus noise, 0.1 resolution."""
    ts = START_MS + np.arange(YEAR_MINUTES, dtype=np.int64) * MINUTE_MS
    day = np.sin(np.arange(YEAR_MINUTES) * (2 * np.pi / 1440))
    out = []
    for p in range(n_points):
        rng = np.random.default_rng(p)
        v = np.round(70 + 5 * day + rng.normal(0, 0.5, YEAR_MINUTES), 1)
        out.append((ts, v))
    return out


NAMES = [
    f"ses/ses_falls_city/192.168.96.3/n4/AHU-{p // 10}/VAV-{700 + p}.points.DaTemp"
    for p in range(50)
]


@cache
def page_bytes(n_samples: int, mixed: bool) -> bytes:
    """An origin page as the API sends it: ordered by time then point, 50 points.

    `mixed` spreads value types the way real sites do: mostly numeric strings, some
    JSON numbers, booleans, status words, nulls and junk strings.
    """
    rng = np.random.default_rng(n_samples)
    vals = np.round(rng.normal(70, 5, n_samples), 1)
    samples = []
    for i in range(n_samples):
        minute = i // 50
        t = START_MS // 1000 + minute * 60
        stamp = np.datetime64(t, "s").astype(str) + "Z"
        value: object = f"{vals[i]}"
        if mixed:
            k = i % 20
            value = {0: float(vals[i]), 1: True, 2: "inactive", 3: None, 4: "fault"}.get(
                k, f"{vals[i]}"
            )
        samples.append({"name": NAMES[i % 50], "value": value, "time": stamp})
    cursor = "eyJ0IjoxNzA0MDY3MjAwLCJwIjo0OX0"
    return orjson.dumps({"point_samples": samples, "next_cursor": cursor, "has_more": True})
