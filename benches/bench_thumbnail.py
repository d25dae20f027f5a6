"""Chart thumbnails: a year of one-minute data (525,600 samples) as a 400x200 PNG.

Group `thumbnail 525600`, one point's year already in memory:
- `acechart`: `_core.render_thumbnail` (MinMaxLTTB to 400 px, tiny-skia anti-aliased
  stroke, PNG), the kernel the service calls;
- `tsdownsample+Pillow`: the best alternative installed: tsdownsample's MinMaxLTTB to
  the same 400 points, drawn with Pillow's `ImageDraw.line` (no anti-aliasing, so it
  does less work) and saved as PNG.

Group `thumbnail 525600 cached`, the whole route's work once the data is cached: the
chart's year read through the engine from the block store (12 monthly blocks of one
point, decoded and downsampled to 400 points in Rust) and drawn, as
`ChartService._draw` does (less the write of the PNG to the object store). Its
baseline is the same engine read drawn by Pillow. Target: under 50 ms.

Group `heatmap 24x365`, a year of one point's hourly buckets as an hour-by-date grid
(the heat map thumbnail): `acechart` is `_core.render_heatmap` (whole-pixel cells, the
11-stop colour scale interpolated per cell, PNG); `numpy+Pillow` colours the cells with
a vectorised lookup of the same scale, scales the image up with Pillow's nearest
neighbour resize and saves it as PNG.

Run: `pytest benches/bench_thumbnail.py --benchmark-enable --benchmark-only
--benchmark-group-by=group` (or `make bench`).
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw
from tsdownsample import MinMaxLTTBDownsampler

from acechart._core import render_heatmap, render_thumbnail
from acechart.query import Query
from acechart.runtime import Runtime
from acechart.settings import Settings
from acechart.times import parse_iso_ms
from benches.bench_origin import SITE, TOKEN, one_minute_points
from benches.data import MINUTE_MS, START_MS, YEAR_MINUTES, year_series
from tests.reference import heat_colours

W, H = 400, 200
NOW = parse_iso_ms("2025-01-01T00:00:00Z")
DAY = 86_400_000
END = NOW - 7 * DAY
START = END - 365 * DAY


def pillow_png(
    ts: np.ndarray[Any, Any], values: np.ndarray[Any, Any], start: int, end: int
) -> bytes:
    """The baseline: tsdownsample MinMaxLTTB to the width, Pillow's line, PNG."""
    keep = MinMaxLTTBDownsampler().downsample(ts, values, n_out=W)
    t, v = ts[keep], values[keep]
    low, high = float(np.nanmin(v)), float(np.nanmax(v))
    x = 4 + (t - start) / (end - start) * (W - 8)
    y = 4 + (high - v) / max(high - low, 1e-12) * (H - 8)
    image = Image.new("RGB", (W, H), "white")
    ImageDraw.Draw(image).line(
        list(zip(x.tolist(), y.tolist(), strict=True)), fill=(84, 112, 198), width=2
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def ours(ts: np.ndarray[Any, Any], values: np.ndarray[Any, Any], start: int, end: int) -> bytes:
    return render_thumbnail([(ts, values)], W, H, start, end)


IMPLS: dict[str, Callable[..., bytes]] = {"acechart": ours, "tsdownsample+Pillow": pillow_png}


@pytest.mark.parametrize("impl", list(IMPLS))
def test_thumbnail_kernel(benchmark: Any, impl: str) -> None:
    ts, values = year_series(1)[0]
    end = START_MS + YEAR_MINUTES * MINUTE_MS
    benchmark.group = "thumbnail 525600"
    benchmark.extra_info["impl"] = impl
    png = benchmark(IMPLS[impl], ts, values, START_MS, end)
    assert png[1:4] == b"PNG"


@pytest.fixture(scope="module")
def warm(simulator: str) -> Iterator[tuple[Runtime, asyncio.AbstractEventLoop, Query]]:
    """A runtime whose block store holds one one-minute point's year (fetched once)."""
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({}, origin_url=simulator, data_dir=tmp)
        rt = loop.run_until_complete(Runtime.open(settings))
        rt.engine.clock = lambda: NOW
        query = Query(SITE, tuple(one_minute_points(1)), START, END, "raw", "minmaxlttb", W)
        first = loop.run_until_complete(rt.engine.query(query, token=TOKEN))
        assert first.provenance.origin_requests > 0
        try:
            yield rt, loop, query
        finally:
            loop.run_until_complete(rt.close())
            loop.close()


@pytest.mark.parametrize("impl", list(IMPLS))
def test_thumbnail_from_cached_blocks(
    benchmark: Any, warm: tuple[Runtime, asyncio.AbstractEventLoop, Query], impl: str
) -> None:
    rt, loop, query = warm
    draw = IMPLS[impl]

    def run() -> bytes:
        result = loop.run_until_complete(rt.engine.query(query, token=TOKEN))
        assert result.provenance.origin_requests == 0
        s = result.series[0]
        return draw(s.ts, s.values, query.start_ms, query.end_ms)

    benchmark.group = "thumbnail 525600 cached"
    benchmark.extra_info["impl"] = impl
    png = benchmark(run)
    assert png[1:4] == b"PNG"


def pillow_heatmap(cells: np.ndarray[Any, Any]) -> bytes:
    """The baseline: the cells coloured by a vectorised lookup (the tests' reference),
    resized (nearest), PNG."""
    rgb = heat_colours(cells)
    image = Image.new("RGB", (W, H), "white")
    image.paste(Image.fromarray(rgb).resize((W - 8, H - 8), Image.Resampling.NEAREST), (4, 4))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


HEATMAPS: dict[str, Callable[[np.ndarray[Any, Any]], bytes]] = {
    "acechart": lambda cells: render_heatmap(cells, W, H),
    "numpy+Pillow": pillow_heatmap,
}


@pytest.mark.parametrize("impl", list(HEATMAPS))
def test_heatmap_kernel(benchmark: Any, impl: str) -> None:
    rng = np.random.default_rng(7)
    hours = np.arange(24)[:, None]
    cells = 60 + 8 * np.sin(hours / 24 * 2 * np.pi) + rng.normal(0, 1, (24, 365))
    benchmark.group = "heatmap 24x365"
    benchmark.extra_info["impl"] = impl
    png = benchmark(HEATMAPS[impl], np.ascontiguousarray(cells))
    assert png[1:4] == b"PNG"
