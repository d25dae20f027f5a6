"""`_core.render_thumbnail` and `_core.render_heatmap` against references, decoded with
Pillow: every sample a line or scatter keeps is drawn where the chart's scales put it,
bars fill their columns from zero to their value, a heat map's every pixel has its
cell's colour on the scale; and their errors."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from acechart import _core
from tests.reference import heat_colours

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
    own = pixels(_core.render_thumbnail([(ts, up, 0, "line"), (ts, far, 1, "line")], W, H, 0, 100))
    shared = pixels(
        _core.render_thumbnail([(ts, up, 0, "line"), (ts, far, 0, "line")], W, H, 0, 100)
    )
    # Own scales: both lines run corner to corner, so the image's middle row has ink.
    assert ink(own)[H // 2 - 3 : H // 2 + 3].any()
    # One scale: the lines lie along the top and the bottom edges only.
    assert not ink(shared)[H // 2 - 10 : H // 2 + 10].any()
    binary = np.array([0.0, 1.0, 1.0, 0.0])
    steps = ink(pixels(_core.render_thumbnail(
        [(np.array([0, 25, 50, 75], dtype=np.int64), binary, 0, "step")], W, H, 0, 100
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
        (([(np.arange(2), np.zeros(2), 3, "line")], 10, 10, 0, 5), ValueError),
        (([(np.arange(2), np.zeros(2), 0, "pie")], 10, 10, 0, 5), ValueError),
        (([(np.arange(2), np.zeros(2), 0, True)], 10, 10, 0, 5), TypeError),
        (([(np.arange(2), np.zeros(2), 0)], 10, 10, 0, 5), TypeError),
        (([(np.arange(2).astype(np.int32), np.zeros(2))], 10, 10, 0, 5), TypeError),
        (([(np.arange(4)[::2], np.zeros(2))], 10, 10, 0, 5), TypeError),
        (([np.arange(2)], 10, 10, 0, 5), TypeError),
    ],
)
def test_bad_arguments(args: tuple[Any, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        _core.render_thumbnail(*args)


BLUE = np.array([0x54, 0x70, 0xC6])


def _round(x: Any) -> Any:
    """Rust's `round` (half away from zero) for the non-negative pixel positions here."""
    return np.floor(np.asarray(x) + 0.5).astype(np.int64)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=48),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    offset=st.sampled_from([0.0, 50.0, -50.0]),
)
def test_bars_fill_their_columns_from_zero_and_nothing_else(
    n: int, seed: int, offset: float
) -> None:
    rng = np.random.default_rng(seed)
    bucket = 3_600_000
    ts = (1_700_000_000_000 + bucket * np.arange(n)).astype(np.int64)
    values = rng.normal(offset, 10.0, n)
    values[rng.random(n) < 0.15] = np.nan
    start, end = int(ts[0]), int(ts[0]) + n * bucket
    rgb = pixels(_core.render_thumbnail([(ts, values, 0, "bar")], W, H, start, end))
    blue = (rgb == BLUE).all(axis=2)

    finite = np.isfinite(values)
    # The scale: the finite values and zero, where bars stand (all zero: centred on it).
    low, high = (
        float(np.append(values[finite], 0.0).min()),
        float(np.append(values[finite], 0.0).max()),
    )
    if high - low <= 1e-12:
        low, high = -0.5, 0.5
    slot = (W - 2 * PAD) / n
    expected = np.zeros_like(blue)
    base = _round(PAD + high / (high - low) * (H - 2 * PAD))
    for k in np.flatnonzero(finite):
        left = PAD + k * slot + slot * 0.1
        x0 = int(_round(left))
        x1 = max(int(_round(left + slot * 0.8)), x0 + 1)
        top = int(_round(PAD + (high - values[k]) / (high - low) * (H - 2 * PAD)))
        y0, y1 = min(top, base), max(top, base)
        y1 = max(y1, y0 + 1)
        # The column's inside is the series' colour, every pixel of it.
        assert blue[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1].all(), (k, x0, x1, y0, y1)
        expected[max(0, y0 - 1) : y1 + 1, max(0, x0 - 1) : x1 + 1] = True
    # And nothing is coloured beyond the columns (a pixel of rounding aside).
    assert not blue[~expected].any()


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=5000),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_scatter_dots_stand_where_the_samples_are_and_nowhere_else(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.integers(1, 120_000, n)).astype(np.int64)
    values = rng.normal(0, 1, n)
    start, end = int(ts[0]), int(ts[-1]) + 1
    drawn = ink(pixels(_core.render_thumbnail([(ts, values, 0, "scatter")], W, H, start, end)))
    centres = np.array(expected_positions(ts, values, start, end), dtype=np.float64)
    for x, y in centres.astype(int):
        assert drawn[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2].any(), (x, y)
    # Every coloured pixel lies within a dot's radius (1.75 px) plus anti-aliasing.
    ys, xs = np.nonzero(drawn)
    near = np.hypot(
        xs[:, None] + 0.5 - (centres[:, 0] + 0.5), ys[:, None] + 0.5 - (centres[:, 1] + 0.5)
    )
    assert (near.min(axis=1) <= 3.5).all()
    # Dots, not a line: far fewer pixels than a line through the same samples.
    line = ink(pixels(_core.render_thumbnail([(ts, values)], W, H, start, end)))
    if n > 200:
        assert drawn.sum() < line.sum()


def heat_reference(cells: np.ndarray[Any, Any], width: int, height: int) -> np.ndarray[Any, Any]:
    """The heat map as the reference draws it: whole-pixel cell edges over the padded
    plot, each cell the linear interpolation of the 11 stops at its value's fraction."""
    rows, columns = cells.shape
    out = np.full((height, width, 3), 255, dtype=np.int16)

    def edges(count: int, side: int) -> np.ndarray[Any, Any]:
        length = np.float32(side - 2 * PAD)
        at = np.float32(PAD) + np.arange(count + 1, dtype=np.float32) * length / np.float32(count)
        return _round(at.astype(np.float32))

    xs, ys = edges(columns, width), edges(rows, height)
    colours = heat_colours(cells)
    for r in range(rows):
        for c in range(columns):
            out[ys[r] : ys[r + 1], xs[c] : xs[c + 1]] = colours[r, c]
    return out


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(min_value=1, max_value=30),
    columns=st.integers(min_value=1, max_value=60),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    nan_share=st.sampled_from([0.0, 0.2, 1.0]),
    flat=st.booleans(),
)
def test_heatmap_pixels_are_their_cells_colours(
    rows: int, columns: int, seed: int, nan_share: float, flat: bool
) -> None:
    rng = np.random.default_rng(seed)
    cells = np.full((rows, columns), 21.5) if flat else rng.normal(20, 5, (rows, columns))
    cells[rng.random((rows, columns)) < nan_share] = np.nan
    got = pixels(_core.render_heatmap(cells, W, H))
    np.testing.assert_array_equal(got, heat_reference(cells, W, H))


def test_a_heatmap_of_a_daily_schedule_has_many_colours_in_bands() -> None:
    hours = np.arange(24, dtype=np.float64)
    day = np.where((hours >= 7) & (hours < 18), 72.0, 62.0) + np.sin(hours / 3.0)
    cells = np.repeat(day[:, None], 30, axis=1) + np.linspace(0, 2, 30)[None, :]
    rgb = pixels(_core.render_heatmap(np.ascontiguousarray(cells), W, H))
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50
    # Occupied hours (rows 7-17) are warmer (redder) than the night's.
    noon, night = (rgb[int(PAD + (h + 0.5) * (H - 2 * PAD) / 24), W // 2] for h in (12, 2))
    assert noon[0] > night[0] and noon[2] < night[2]


@pytest.mark.parametrize(
    ("cells", "error"),
    [
        (np.zeros((2, 3), dtype=np.float32), TypeError),
        (np.zeros(6), TypeError),
        (np.zeros((3, 4))[:, ::2], TypeError),
        ([[1.0, 2.0]], TypeError),
    ],
)
def test_heatmap_bad_arguments(cells: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        _core.render_heatmap(cells, 10, 10)
    with pytest.raises(ValueError):
        _core.render_heatmap(np.zeros((2, 2)), 0, 10)
