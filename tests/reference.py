"""Plain-Python reference implementations the Rust kernels are checked against."""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_TRUE = {"true", "on", "active"}
_FALSE = {"false", "off", "inactive"}
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def value_of(raw: Any) -> float | None:
    """The numeric reading of one sample value, or None when it is not numeric."""
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        s = raw.strip(" \t\n\r\x0c")
        if _NUMBER.fullmatch(s):
            v = float(s)
            return v if math.isfinite(v) else None
        low = s.lower()
        if low in _TRUE:
            return 1.0
        if low in _FALSE:
            return 0.0
    return None


def time_of(text: str) -> int:
    """Milliseconds since the epoch of an ISO-8601 origin timestamp."""
    m = _ISO.fullmatch(text)
    if not m:
        raise ValueError(text)
    y, mo, d, hh, mi, ss, frac, _z, sign, oh, om = m.groups()
    if hh is None and (sign or _z):
        raise ValueError(text)
    dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), tzinfo=UTC)
    ms = (dt - _EPOCH) // timedelta(milliseconds=1)
    if frac:
        ms += int((frac + "00")[:3])
    if sign:
        off = (int(oh) * 60 + int(om)) * 60_000
        ms += -off if sign == "+" else off
    return ms


@dataclass
class RefPage:
    names: list[str] = field(default_factory=list)
    point_index: list[int] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    has_more: bool = False
    next_cursor: str | None = None
    non_numeric: int = 0


def parse_page(data: bytes, points: list[str] | None = None) -> RefPage:
    doc = json.loads(data)
    keep = None if points is None else set(points)
    out = RefPage(has_more=doc["has_more"], next_cursor=doc.get("next_cursor"))
    index: dict[str, int] = {}
    for s in doc["point_samples"]:
        name = s["name"]
        if keep is not None and name not in keep:
            continue
        if name not in index:
            index[name] = len(out.names)
            out.names.append(name)
        out.point_index.append(index[name])
        out.ts.append(time_of(s["time"]))
        v = value_of(s["value"])
        if v is None:
            out.non_numeric += 1
            v = math.nan
        out.values.append(v)
    return out


def sort_dedup(
    p: npt.NDArray[np.int32], t: npt.NDArray[np.int64], v: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """pandas: stable sort by (point, ts), keep the last of duplicates."""
    import pandas as pd

    df = pd.DataFrame({"p": p, "t": t, "v": v})
    df = df.drop_duplicates(["p", "t"], keep="last").sort_values(["p", "t"], kind="stable")
    return (
        df["p"].to_numpy(np.int32),
        df["t"].to_numpy(np.int64),
        df["v"].to_numpy(np.float64),
    )


def aggregate(
    ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64], bucket_ms: int, origin_ms: int = 0
) -> dict[str, npt.NDArray[Any]]:
    """Per-bucket statistics with pandas groupby (exact integer bucket arithmetic)."""
    import pandas as pd

    starts = [origin_ms + ((int(t) - origin_ms) // bucket_ms) * bucket_ms for t in ts]
    df = pd.DataFrame({"b": np.array(starts, dtype=np.int64), "v": values}).dropna()
    g = df.groupby("b", sort=True)["v"]
    var = g.var(ddof=1)
    count = g.count()
    return {
        "ts": count.index.to_numpy(np.int64),
        "count": count.to_numpy(np.int64),
        "sum": g.sum().to_numpy(),
        "min": g.min().to_numpy(),
        "max": g.max().to_numpy(),
        "avg": g.mean().to_numpy(),
        "stddev": np.sqrt(var.to_numpy()),
        "m2": (var.fillna(0.0) * (count - 1)).to_numpy(),
        "first": g.first().to_numpy(),
        "last": g.last().to_numpy(),
    }


# --- meters and held values (stat=delta, twa, on_time) ------------------------------


def delta_reference(
    ts: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    edges: npt.NDArray[np.int64],
    threshold: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    frame = pd.DataFrame({"t": ts, "v": values}).dropna()
    frame = frame[frame["t"] < edges[-1]]
    step = frame["v"].diff()
    step = step.where(~(step < -threshold), frame["v"]).fillna(0.0)
    frame = frame.assign(step=step)
    frame = frame[frame["t"] >= edges[0]]
    bucket = np.searchsorted(edges, frame["t"].to_numpy(), side="right") - 1
    sums = frame.groupby(bucket)["step"].sum()
    return edges[sums.index.to_numpy()].astype(np.int64), sums.to_numpy()


def held_reference(
    ts: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    edges: npt.NDArray[np.int64],
    until: int,
) -> dict[str, npt.NDArray[Any]]:
    # Intervals [t_i, t_{i+1}) holding v_i; the last to `until`. Duplicates: later wins.
    starts = ts
    ends = np.append(ts[1:], max(until, int(ts[-1]) if len(ts) else until))
    out: dict[str, list[float]] = {"ts": [], "twa": [], "on_time": [], "known_ms": []}
    for a, b in itertools.pairwise(edges):
        b_eff = min(b, until)
        if a >= until:
            break
        lo = np.maximum(starts, a)
        hi = np.minimum(np.minimum(ends, b_eff), until)
        span = np.where(np.isnan(values), 0, np.clip(hi - lo, 0, None))
        known = int(span.sum())
        if known > 0:
            v = np.nan_to_num(values)
            out["ts"].append(a)
            out["twa"].append(float((v * span).sum() / known))
            out["on_time"].append(float(span[v != 0].sum()) / 1000)
            out["known_ms"].append(known)
    return {k: np.asarray(v) for k, v in out.items()}


#: The heat map's colour scale, low to high (ECharts' heat map examples: ColorBrewer
#: RdYlBu reversed), as the dashboard's visualMap and the thumbnails use it.
HEAT_STOPS = np.array(
    [
        [0x31, 0x36, 0x95], [0x45, 0x75, 0xB4], [0x74, 0xAD, 0xD1], [0xAB, 0xD9, 0xE9],
        [0xE0, 0xF3, 0xF8], [0xFF, 0xFF, 0xBF], [0xFE, 0xE0, 0x90], [0xFD, 0xAE, 0x61],
        [0xF4, 0x6D, 0x43], [0xD7, 0x30, 0x27], [0xA5, 0x00, 0x26],
    ],
    dtype=np.float64,
)  # fmt: skip


def heat_colours(cells: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """Each cell's RGB on the scale: its value's place between the grid's lowest and
    highest finite values (a flat grid: the middle), linear between the two stops around
    it, rounded half up; white where the cell is NaN."""
    finite = np.isfinite(cells)
    out = np.full((*cells.shape, 3), 255, dtype=np.uint8)
    if not finite.any():
        return out
    low, high = cells[finite].min(), cells[finite].max()
    fraction = (cells[finite] - low) / (high - low) if high > low else np.full(finite.sum(), 0.5)
    at = fraction * (len(HEAT_STOPS) - 1)
    i = np.minimum(np.floor(at).astype(np.int64), len(HEAT_STOPS) - 2)
    t = (at - i)[:, None]
    rgb = HEAT_STOPS[i] + (HEAT_STOPS[i + 1] - HEAT_STOPS[i]) * t
    out[finite] = np.floor(rgb + 0.5).astype(np.uint8)
    return out
