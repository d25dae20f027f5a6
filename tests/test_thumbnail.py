"""`_core.render_thumbnail` against a reference: every sample it keeps is drawn where the
chart's scales put it, decoded with Pillow; and its errors."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from acechart import _core

W, H, PAD = 200, 100, 4.0


def pixels(png: bytes, size: tuple[int, int] = (W, H)) -> np.ndarray[Any, Any]:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == size
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def ink(rgb: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Pixels of a line's colour (the grid and background are grey or white)."""
    return (rgb.max(axis=2) - rgb.min(axis=2)) > 25


def expected_positions(
    ts: np.ndarray[Any, Any], values: np.ndarray[Any, Any], start: int, end: int
) -> list[tuple[int, int]]:
    """Where the reference puts each kept sample: MinMaxLTTB to the width, then linear
    scales from the time range and the kept values' range to the padded image."""
    keep = _core.downsample(ts, values, W, "minmaxlttb")
    t, v = ts[keep], values[keep]
    finite = np.isfinite(v)
    low, high = float(v[finite].min()), float(v[finite].max())
    if high - low <= 1e-12 * max(abs(low), 1.0):
        half = max(abs(low), 1.0) * 0.5
        low, high = low - half, low + half
    x = PAD + (t - start) / (end - start) * (W - 2 * PAD)
    y = PAD + (high - v) / (high - low) * (H - 2 * PAD)
    return [(int(a), int(b)) for a, b, f in zip(x, y, finite, strict=True) if f]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=20_000),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    nan_share=st.sampled_from([0.0, 0.0, 0.1]),
)
def test_every_kept_sample_is_drawn_where_the_scales_put_it(
    n: int, seed: int, nan_share: float
) -> None:
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.integers(1, 120_000, n)).astype(np.int64)
    values = np.cumsum(rng.normal(0, 1, n))
    values[rng.random(n) < nan_share] = np.nan
    if not np.isfinite(values).any():
        values[0] = 1.0
    start, end = int(ts[0]), int(ts[-1]) + 1
    drawn = ink(pixels(_core.render_thumbnail([(ts, values)], W, H, start, end)))
    for x, y in expected_positions(ts, values, start, end):
        # Anti-aliased 1.5 px strokes: the sample's pixel or a neighbour carries the line.
        window = drawn[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]
        assert window.any(), (x, y)


def test_lines_outside_their_group_scale_and_steps() -> None:
    ts = np.arange(0, 100, dtype=np.int64)
    up = np.linspace(0.0, 1.0, 100)
    far = np.linspace(1000.0, 1001.0, 100)
    own = pixels(_core.render_thumbnail([(ts, up, 0, False), (ts, far, 1, False)], W, H, 0, 100))
    shared = pixels(_core.render_thumbnail([(ts, up, 0, False), (ts, far, 0, False)], W, H, 0, 100))
    # Own scales: both lines run corner to corner, so the image's middle row has ink.
    assert ink(own)[H // 2 - 3 : H // 2 + 3].any()
    # One scale: the lines lie along the top and the bottom edges only.
    assert not ink(shared)[H // 2 - 10 : H // 2 + 10].any()
    binary = np.array([0.0, 1.0, 1.0, 0.0])
    steps = ink(pixels(_core.render_thumbnail(
        [(np.array([0, 25, 50, 75], dtype=np.int64), binary, 0, True)], W, H, 0, 100
    )))  # fmt: skip
    # A step line is horizontal between samples: a diagonal never crosses the middle
    # of the first interval's height at its middle time.
    assert not steps[H // 2, int(PAD + 12.5 / 100 * (W - 2 * PAD))]
    assert steps[int(PAD), int(PAD + 37.5 / 100 * (W - 2 * PAD))]


def test_empty_input_is_the_blank_grid() -> None:
    empty = np.array([], dtype=np.int64), np.array([], dtype=np.float64)
    for lines in ([], [empty]):
        assert not ink(pixels(_core.render_thumbnail(lines, W, H, 0, 1))).any()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (([], 0, 10, 0, 1), ValueError),
        (([], 10, 5000, 0, 1), ValueError),
        (([], 10, -1, 0, 1), ValueError),
        (([], 10, 10, 5, 5), ValueError),
        (([(np.arange(3), np.zeros(2))], 10, 10, 0, 5), ValueError),
        (([(np.array([2, 1]), np.zeros(2))], 10, 10, 0, 5), ValueError),
        (([(np.arange(2), np.zeros(2), 3, False)], 10, 10, 0, 5), ValueError),
        (([(np.arange(2), np.zeros(2), 0)], 10, 10, 0, 5), TypeError),
        (([(np.arange(2).astype(np.int32), np.zeros(2))], 10, 10, 0, 5), TypeError),
        (([(np.arange(4)[::2], np.zeros(2))], 10, 10, 0, 5), TypeError),
        (([np.arange(2)], 10, 10, 0, 5), TypeError),
    ],
)
def test_bad_arguments(args: tuple[Any, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        _core.render_thumbnail(*args)
