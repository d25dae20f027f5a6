//! Heat map thumbnails: a grid of values, each cell filled with its colour on one scale.
//!
//! A building engineer's heat map of a point is hour of day (rows) by date (columns):
//! a schedule shows as bands, a night-time fault as a stripe. The caller lays the grid
//! out (it knows the zone's calendar); this draws it: the cells tile the padded plot in
//! whole pixels, the lowest finite value takes the scale's first colour and the highest
//! its last, linearly in between, and a NaN cell (no data) stays background.

use tiny_skia::{Paint, Pixmap, Rect, Transform};

use super::{canvas, encode_rgb_png, PAD};
use crate::error::{CoreError, Result};

/// The colour scale, low to high: the blue-to-red ramp of ECharts' heat map examples
/// (ColorBrewer RdYlBu, reversed). The dashboard's `visualMap` uses the same stops.
pub const COLOURS: [[u8; 3]; 11] = [
    [0x31, 0x36, 0x95],
    [0x45, 0x75, 0xb4],
    [0x74, 0xad, 0xd1],
    [0xab, 0xd9, 0xe9],
    [0xe0, 0xf3, 0xf8],
    [0xff, 0xff, 0xbf],
    [0xfe, 0xe0, 0x90],
    [0xfd, 0xae, 0x61],
    [0xf4, 0x6d, 0x43],
    [0xd7, 0x30, 0x27],
    [0xa5, 0x00, 0x26],
];

/// A heat map's cells, row by row: `values[row * columns + column]`.
#[derive(Debug, Clone, Copy)]
pub struct Grid<'a> {
    pub values: &'a [f64],
    pub rows: usize,
    pub columns: usize,
}

/// The colour of a value at `fraction` (0 = the lowest, 1 = the highest) of the scale:
/// linear between [`COLOURS`]' neighbouring stops, each channel rounded.
pub fn colour(fraction: f64) -> [u8; 3] {
    let at = fraction.clamp(0.0, 1.0) * (COLOURS.len() - 1) as f64;
    let i = (at.floor() as usize).min(COLOURS.len() - 2);
    let t = at - i as f64;
    let (a, b) = (COLOURS[i], COLOURS[i + 1]);
    std::array::from_fn(|c| (a[c] as f64 + (b[c] as f64 - a[c] as f64) * t).round() as u8)
}

/// A PNG of `grid`, `width` x `height` pixels.
pub fn render_heatmap_png(grid: &Grid<'_>, width: u32, height: u32) -> Result<Vec<u8>> {
    encode_rgb_png(&render_heatmap(grid, width, height)?)
}

/// [`render_heatmap_png`] before encoding. Row 0 is at the top, column 0 on the left.
/// Errors: a side of 0 or above [`super::MAX_SIDE`], or `values` not `rows * columns`
/// long. A grid without a finite value is the blank background.
pub fn render_heatmap(grid: &Grid<'_>, width: u32, height: u32) -> Result<Pixmap> {
    let mut pixmap = canvas(width, height)?;
    if grid.rows.checked_mul(grid.columns) != Some(grid.values.len()) {
        return Err(CoreError::Length(format!(
            "a {} x {} grid needs {} values, got {}",
            grid.rows,
            grid.columns,
            grid.rows.saturating_mul(grid.columns),
            grid.values.len()
        )));
    }
    let finite = || grid.values.iter().copied().filter(|v| v.is_finite());
    let (Some(low), Some(high)) = (finite().reduce(f64::min), finite().reduce(f64::max)) else {
        return Ok(pixmap);
    };
    let range = high - low;
    // Whole-pixel cell edges, so neighbouring cells neither overlap nor leave seams.
    let edges = |count: usize, side: u32| -> Vec<f32> {
        let length = (side as f32 - 2.0 * PAD).max(1.0);
        (0..=count)
            .map(|k| (PAD + k as f32 * length / count as f32).round())
            .collect()
    };
    let (xs, ys) = (edges(grid.columns, width), edges(grid.rows, height));
    let mut paint = Paint {
        anti_alias: false,
        ..Paint::default()
    };
    for (row, cells) in grid.values.chunks_exact(grid.columns).enumerate() {
        for (column, &v) in cells.iter().enumerate() {
            if !v.is_finite() {
                continue;
            }
            // A flat grid (one value everywhere) takes the scale's middle colour.
            let fraction = if range > 0.0 { (v - low) / range } else { 0.5 };
            let [r, g, b] = colour(fraction);
            paint.set_color_rgba8(r, g, b, 255);
            let (x0, x1, y0, y1) = (xs[column], xs[column + 1], ys[row], ys[row + 1]);
            if let Some(rect) = Rect::from_ltrb(x0, y0, x1.max(x0 + 1.0), y1.max(y0 + 1.0)) {
                pixmap.fill_rect(rect, &paint, Transform::identity(), None);
            }
        }
    }
    Ok(pixmap)
}

#[cfg(test)]
mod tests {
    use super::super::tests::pixel;
    use super::*;

    #[test]
    fn the_scale_runs_through_its_stops() {
        assert_eq!(colour(0.0), COLOURS[0]);
        assert_eq!(colour(1.0), COLOURS[10]);
        assert_eq!(colour(0.5), COLOURS[5]);
        assert_eq!(colour(-3.0), COLOURS[0]);
        assert_eq!(colour(f64::INFINITY), COLOURS[10]);
        // Half way between the first two stops.
        assert_eq!(colour(0.05), [0x3b, 0x56, 0xa5]);
    }

    #[test]
    fn cells_tile_the_plot_in_order_with_their_colours() {
        // 2 rows x 3 columns on a 6 x 4 px plot: each cell 2 x 2 px.
        let values = [0.0, 1.0, 2.0, 3.0, f64::NAN, 10.0];
        let grid = Grid {
            values: &values,
            rows: 2,
            columns: 3,
        };
        let p = render_heatmap(&grid, 14, 12).unwrap();
        let at = |column: u32, row: u32| {
            let c = pixel(&p, 4 + 2 * column, 4 + 2 * row);
            [c[0], c[1], c[2]]
        };
        assert_eq!(at(0, 0), COLOURS[0]);
        assert_eq!(at(1, 0), colour(0.1));
        assert_eq!(at(2, 0), colour(0.2));
        assert_eq!(at(0, 1), colour(0.3));
        assert_eq!(at(1, 1), [255, 255, 255]); // NaN: no data, no colour
        assert_eq!(at(2, 1), COLOURS[10]);
        // Every pixel of a cell has its colour; the padding stays white.
        assert_eq!(pixel(&p, 5, 5), pixel(&p, 4, 4));
        assert_eq!(pixel(&p, 1, 1), [255, 255, 255, 255]);
    }

    #[test]
    fn flat_empty_and_all_nan_grids() {
        let flat = Grid {
            values: &[7.0; 4],
            rows: 2,
            columns: 2,
        };
        let p = render_heatmap(&flat, 20, 20).unwrap();
        let c = pixel(&p, 10, 10);
        assert_eq!([c[0], c[1], c[2]], COLOURS[5]);
        for values in [&[][..], &[f64::NAN; 6][..]] {
            let rows = values.len() / 3;
            let grid = Grid {
                values,
                rows,
                columns: 3,
            };
            let p = render_heatmap(&grid, 20, 20).unwrap();
            assert!(p.pixels().iter().all(|c| c.red() == 255 && c.blue() == 255));
        }
    }

    #[test]
    fn more_columns_than_pixels_still_draws_and_bad_shapes_are_errors() {
        let values: Vec<f64> = (0..24 * 1000).map(|i| (i % 24) as f64).collect();
        let grid = Grid {
            values: &values,
            rows: 24,
            columns: 1000,
        };
        let png = render_heatmap_png(&grid, 400, 200).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let short = Grid {
            values: &values[..10],
            rows: 24,
            columns: 1000,
        };
        assert!(matches!(
            render_heatmap(&short, 10, 10),
            Err(CoreError::Length(_))
        ));
        assert!(matches!(
            render_heatmap(&grid, 0, 10),
            Err(CoreError::Argument(_))
        ));
    }
}
