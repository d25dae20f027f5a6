//! Chart thumbnails: series downsampled to the image's width, drawn anti-aliased, as PNG.
//!
//! A saved chart's thumbnail is a small picture of its data over its time range, drawn
//! on the server so a list of charts shows them without running a chart library. Each
//! series is first thinned to one sample per pixel column with MinMaxLTTB (a year of
//! one-minute data is 525,600 samples; a 400 px thumbnail shows 400), then drawn with
//! tiny-skia, the pure-Rust port of Skia's rasteriser, and encoded as RGB PNG.
//!
//! A series is drawn with its [`Mark`]: a line, steps (a binary point holds its value
//! until the next sample), bars (one column per bucket from zero, the series of one
//! chart side by side in each bucket, as ECharts places them) or dots. Series share a y
//! scale within their `group` (the caller groups them by unit), so two temperatures stay
//! comparable while a damper position beside them keeps its own range; a group holding
//! bars includes zero, where bars stand. NaN breaks a line (a gap) and draws no bar or
//! dot. Heat maps (a grid of values, one colour scale) are [`heatmap`]'s.

use tiny_skia::{
    Color, FillRule, LineCap, LineJoin, Paint, Path, PathBuilder, Pixmap, Rect, Stroke, Transform,
};

use crate::downsample::{self, Method};
use crate::error::{CoreError, Result};

pub mod heatmap;

/// Largest width or height of a thumbnail, in pixels.
pub const MAX_SIDE: u32 = 4096;

/// ECharts' default palette, so a thumbnail's colours match the dashboard's series.
const PALETTE: [[u8; 3]; 9] = [
    [0x54, 0x70, 0xc6],
    [0x91, 0xcc, 0x75],
    [0xfa, 0xc8, 0x58],
    [0xee, 0x66, 0x66],
    [0x73, 0xc0, 0xde],
    [0x3b, 0xa2, 0x72],
    [0xfc, 0x84, 0x52],
    [0x9a, 0x60, 0xb4],
    [0xea, 0x7c, 0xcc],
];

/// Inner margin, so a line on the range's edge is not cut in half.
const PAD: f32 = 4.0;
const LINE_WIDTH: f32 = 1.5;
/// A scatter dot's radius: 3.5 px across, ECharts' small symbols at thumbnail size.
const DOT_RADIUS: f32 = 1.75;
/// The share of a bucket's width its bars fill together; the rest separates buckets.
const BAR_FILL: f64 = 0.8;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Straight segments between samples.
    Line,
    /// Each value held until the next sample (binary points).
    Step,
    /// A column from zero for each sample, as wide as the closest samples' spacing (the
    /// bucket width of an interval series).
    Bar,
    /// A dot at each sample.
    Scatter,
}

impl Mark {
    /// The names [`Mark::from_name`] takes.
    pub const NAMES: [&'static str; 4] = ["line", "step", "bar", "scatter"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "line" => Some(Self::Line),
            "step" => Some(Self::Step),
            "bar" => Some(Self::Bar),
            "scatter" => Some(Self::Scatter),
            _ => None,
        }
    }
}

/// One series of a thumbnail: samples sorted by time, its y-scale group and its mark.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub ts: &'a [i64],
    pub values: &'a [f64],
    pub group: usize,
    pub mark: Mark,
}

/// A PNG of `series` over the time range `[start_ms, end_ms)`, `width` x `height` pixels.
///
/// Series longer than the width are downsampled to it (MinMaxLTTB). An empty chart (no
/// finite value anywhere) is the background and its grid only. Errors: a side of 0 or
/// above [`MAX_SIDE`], `end_ms <= start_ms`, arrays of different lengths, or timestamps
/// not sorted ascending.
pub fn render_png(
    series: &[Series<'_>],
    width: u32,
    height: u32,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<u8>> {
    let pixmap = render(series, width, height, start_ms, end_ms)?;
    encode_rgb_png(&pixmap)
}

/// [`render_png`] before encoding: the premultiplied RGBA pixels (for tests and callers
/// that encode themselves).
pub fn render(
    series: &[Series<'_>],
    width: u32,
    height: u32,
    start_ms: i64,
    end_ms: i64,
) -> Result<Pixmap> {
    let mut pixmap = canvas(width, height)?;
    if end_ms <= start_ms {
        return Err(CoreError::Argument(format!(
            "end_ms ({end_ms}) must be after start_ms ({start_ms})"
        )));
    }
    // Thin every series to the pixel columns first: the scales come from what is drawn.
    let n_out = (width as usize).max(3);
    let mut thinned: Vec<(Vec<i64>, Vec<f64>)> = Vec::with_capacity(series.len());
    for (i, s) in series.iter().enumerate() {
        if s.ts.len() != s.values.len() {
            return Err(CoreError::Length(format!(
                "series {i}: {} timestamps but {} values",
                s.ts.len(),
                s.values.len()
            )));
        }
        let keep = downsample::downsample(s.ts, s.values, n_out, Method::MinMaxLttb).map_err(
            |e| match e {
                CoreError::Argument(m) => CoreError::Argument(format!("series {i}: {m}")),
                other => other,
            },
        )?;
        if keep.len() == s.ts.len() {
            thinned.push((s.ts.to_vec(), s.values.to_vec()));
        } else {
            thinned.push((
                keep.iter().map(|&k| s.ts[k]).collect(),
                keep.iter().map(|&k| s.values[k]).collect(),
            ));
        }
    }
    let scales = group_scales(series, &thinned);
    draw_grid(&mut pixmap, width as f32, height as f32);

    let plot = Plot {
        start_ms,
        span_ms: (end_ms - start_ms) as f64,
        width: (width as f32 - 2.0 * PAD).max(1.0),
        height: (height as f32 - 2.0 * PAD).max(1.0),
    };
    let bars = BarLayout::of(series, &thinned, &plot);
    let stroke = Stroke {
        width: LINE_WIDTH,
        line_cap: LineCap::Round,
        // Round joins cost three times as much on dense zigzags, and at 1.5 px look alike.
        line_join: LineJoin::Bevel,
        ..Stroke::default()
    };
    let mut bar_index = 0;
    for (i, (s, (ts, values))) in series.iter().zip(&thinned).enumerate() {
        let Some(scale) = scales[s.group] else {
            continue;
        };
        let [r, g, b] = PALETTE[i % PALETTE.len()];
        let mut paint = Paint::default();
        paint.set_color_rgba8(r, g, b, 255);
        paint.anti_alias = true;
        let path = match s.mark {
            Mark::Line | Mark::Step => trace(ts, values, &plot, scale, s.mark == Mark::Step),
            Mark::Bar => {
                // Whole-pixel columns: crisp edges, and neighbours never blend.
                paint.anti_alias = false;
                bar_index += 1;
                columns(ts, values, &plot, scale, &bars, bar_index - 1)
            }
            Mark::Scatter => dots(ts, values, &plot, scale),
        };
        let Some(path) = path else {
            continue;
        };
        if matches!(s.mark, Mark::Line | Mark::Step) {
            pixmap.stroke_path(&path, &paint, &stroke, Transform::identity(), None);
        } else {
            pixmap.fill_path(
                &path,
                &paint,
                FillRule::Winding,
                Transform::identity(),
                None,
            );
        }
    }
    Ok(pixmap)
}

/// The plotting area: where a time and a value land in pixels.
struct Plot {
    start_ms: i64,
    span_ms: f64,
    width: f32,
    height: f32,
}

impl Plot {
    fn x(&self, t: i64) -> f32 {
        PAD + ((t - self.start_ms) as f64 / self.span_ms * self.width as f64) as f32
    }

    fn y(&self, v: f64, (low, high): (f64, f64)) -> f32 {
        PAD + ((high - v) / (high - low) * self.height as f64) as f32
    }
}

/// The path through a series' finite samples (straight, or as steps), broken at NaN.
fn trace(ts: &[i64], values: &[f64], plot: &Plot, scale: (f64, f64), step: bool) -> Option<Path> {
    let mut pb = PathBuilder::new();
    let mut open = false;
    let mut last_y = 0.0f32;
    for (&t, &v) in ts.iter().zip(values) {
        if !v.is_finite() {
            open = false;
            continue;
        }
        let (x, y) = (plot.x(t), plot.y(v, scale));
        if !open {
            pb.move_to(x, y);
            // A lone sample still shows: a zero-length segment with round caps is a dot.
            pb.line_to(x, y);
            open = true;
        } else {
            if step {
                pb.line_to(x, last_y);
            }
            pb.line_to(x, y);
        }
        last_y = y;
    }
    pb.finish()
}

/// How the bar series of a chart share each bucket: its width (the closest spacing of
/// any bar series' samples) and how many series stand side by side in it.
struct BarLayout {
    slot_ms: f64,
    count: usize,
}

impl BarLayout {
    fn of(series: &[Series<'_>], thinned: &[(Vec<i64>, Vec<f64>)], plot: &Plot) -> Self {
        let mut slot = i64::MAX;
        let mut last = i64::MIN;
        let mut count = 0;
        for (s, (ts, _)) in series.iter().zip(thinned) {
            if s.mark != Mark::Bar {
                continue;
            }
            count += 1;
            last = last.max(ts.last().copied().unwrap_or(i64::MIN));
            for pair in ts.windows(2) {
                if pair[1] > pair[0] {
                    slot = slot.min(pair[1] - pair[0]);
                }
            }
        }
        // No series with two samples to learn the spacing from: the one bucket reaches
        // the range's end (a tenth of the range when it starts at or past the end).
        let end = plot.start_ms as f64 + plot.span_ms;
        let slot_ms = if slot != i64::MAX {
            slot as f64
        } else if (last as f64) < end && last != i64::MIN {
            end - last as f64
        } else {
            plot.span_ms / 10.0
        };
        Self { slot_ms, count }
    }
}

/// The columns of the `index`th bar series: each sample's bucket starts at its time;
/// the series' column is its share of the bucket's filled part, from zero to the value.
fn columns(
    ts: &[i64],
    values: &[f64],
    plot: &Plot,
    scale: (f64, f64),
    layout: &BarLayout,
    index: usize,
) -> Option<Path> {
    let slot_px = layout.slot_ms / plot.span_ms * plot.width as f64;
    let share = slot_px * BAR_FILL / layout.count.max(1) as f64;
    let base = plot.y(0.0f64.clamp(scale.0, scale.1), scale).round();
    let mut pb = PathBuilder::new();
    for (&t, &v) in ts.iter().zip(values) {
        if !v.is_finite() {
            continue;
        }
        let left = plot.x(t) as f64 + slot_px * (1.0 - BAR_FILL) / 2.0 + share * index as f64;
        let x0 = left.round() as f32;
        let x1 = ((left + share).round() as f32).max(x0 + 1.0);
        let top = plot.y(v, scale).round();
        let (y0, y1) = if top < base { (top, base) } else { (base, top) };
        if let Some(rect) = Rect::from_ltrb(x0, y0, x1, y1.max(y0 + 1.0)) {
            pb.push_rect(rect);
        }
    }
    pb.finish()
}

/// A dot at each finite sample.
fn dots(ts: &[i64], values: &[f64], plot: &Plot, scale: (f64, f64)) -> Option<Path> {
    let mut pb = PathBuilder::new();
    for (&t, &v) in ts.iter().zip(values) {
        if v.is_finite() {
            pb.push_circle(plot.x(t), plot.y(v, scale), DOT_RADIUS);
        }
    }
    pb.finish()
}

/// The (low, high) of every group over its series' finite values, zero included where a
/// group holds bars; a flat group is centred.
fn group_scales(
    series: &[Series<'_>],
    thinned: &[(Vec<i64>, Vec<f64>)],
) -> Vec<Option<(f64, f64)>> {
    let groups = series.iter().map(|s| s.group + 1).max().unwrap_or(0);
    let mut scales: Vec<Option<(f64, f64)>> = vec![None; groups];
    for (s, (_, values)) in series.iter().zip(thinned) {
        for &v in values.iter().filter(|v| v.is_finite()) {
            let scale = &mut scales[s.group];
            *scale = Some(match *scale {
                None => (v, v),
                Some((lo, hi)) => (lo.min(v), hi.max(v)),
            });
        }
    }
    for s in series.iter().filter(|s| s.mark == Mark::Bar) {
        if let Some((lo, hi)) = scales[s.group].as_mut() {
            *lo = lo.min(0.0);
            *hi = hi.max(0.0);
        }
    }
    for s in scales.iter_mut().flatten() {
        if s.1 - s.0 <= f64::EPSILON * s.0.abs().max(1.0) {
            let half = s.0.abs().max(1.0) * 0.5;
            *s = (s.0 - half, s.0 + half);
        }
    }
    scales
}

/// A white `width` x `height` pixmap, after checking both sides.
fn canvas(width: u32, height: u32) -> Result<Pixmap> {
    for (name, side) in [("width", width), ("height", height)] {
        if side == 0 || side > MAX_SIDE {
            return Err(CoreError::Argument(format!(
                "{name} must be between 1 and {MAX_SIDE} pixels, got {side}"
            )));
        }
    }
    let mut pixmap = Pixmap::new(width, height)
        .ok_or_else(|| CoreError::Argument("cannot allocate the image".into()))?;
    pixmap.fill(Color::WHITE);
    Ok(pixmap)
}

/// Three faint horizontal rules, at a quarter, half and three quarters of the height.
fn draw_grid(pixmap: &mut Pixmap, width: f32, height: f32) {
    let mut paint = Paint::default();
    paint.set_color_rgba8(0xe6, 0xe8, 0xee, 255);
    for k in 1..4 {
        let y = (height * k as f32 / 4.0).floor();
        if let Some(rect) = Rect::from_xywh(0.0, y, width, 1.0) {
            pixmap.fill_rect(rect, &paint, Transform::identity(), None);
        }
    }
}

/// The pixmap as an 8-bit RGB PNG. Every thumbnail is opaque (a white background under
/// everything), so premultiplied RGBA is plain RGB and the alpha channel can go: a
/// quarter fewer bytes to compress. fdeflate's fast mode with the `Sub` filter keeps
/// encoding a small part of the drawing time (dense lines compress poorly at any level).
fn encode_rgb_png(pixmap: &Pixmap) -> Result<Vec<u8>> {
    let rgb: Vec<u8> = pixmap
        .data()
        .chunks_exact(4)
        .flat_map(|px| [px[0], px[1], px[2]])
        .collect();
    let mut out = Vec::with_capacity(rgb.len() / 2);
    let fail = |e: png::EncodingError| CoreError::Encode(format!("PNG encoding failed: {e}"));
    {
        let mut encoder = png::Encoder::new(&mut out, pixmap.width(), pixmap.height());
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        encoder.set_filter(png::FilterType::Sub);
        let mut writer = encoder.write_header().map_err(fail)?;
        writer.write_image_data(&rgb).map_err(fail)?;
        writer.finish().map_err(fail)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn pixel(p: &Pixmap, x: u32, y: u32) -> [u8; 4] {
        let c = p.pixel(x, y).unwrap();
        [c.red(), c.green(), c.blue(), c.alpha()]
    }

    fn coloured(p: &Pixmap) -> usize {
        p.pixels()
            .iter()
            .filter(|c| {
                let (r, g, b) = (c.red() as i32, c.green() as i32, c.blue() as i32);
                (r - g).abs() > 30 || (g - b).abs() > 30 || (r - b).abs() > 30
            })
            .count()
    }

    fn series<'a>(ts: &'a [i64], values: &'a [f64], group: usize, mark: Mark) -> Series<'a> {
        Series {
            ts,
            values,
            group,
            mark,
        }
    }

    const WHITE: [u8; 4] = [255, 255, 255, 255];
    const BLUE: [u8; 4] = [0x54, 0x70, 0xc6, 255];
    const GREEN: [u8; 4] = [0x91, 0xcc, 0x75, 255];

    #[test]
    fn a_rising_line_goes_from_bottom_left_to_top_right() {
        let ts: Vec<i64> = (0..1000).collect();
        let values: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        let p = render(&[series(&ts, &values, 0, Mark::Line)], 100, 50, 0, 999).unwrap();
        // The line's blue near the bottom-left and top-right corners, white far from it.
        let blue = |c: [u8; 4]| c[2] > 150 && c[0] < 150;
        assert!(blue(pixel(&p, 4, 45)), "{:?}", pixel(&p, 4, 45));
        assert!(blue(pixel(&p, 95, 4)), "{:?}", pixel(&p, 95, 4));
        assert_eq!(pixel(&p, 95, 40), WHITE);
    }

    #[test]
    fn empty_and_all_nan_series_draw_only_the_background() {
        let nan = [f64::NAN; 3];
        let ts = [0i64, 1, 2];
        for mark in [Mark::Line, Mark::Step, Mark::Bar, Mark::Scatter] {
            let all = [series(&[], &[], 0, mark), series(&ts, &nan, 1, mark)];
            let p = render(&all, 40, 20, 0, 10).unwrap();
            assert_eq!(coloured(&p), 0, "{mark:?}");
            assert_eq!(pixel(&p, 1, 1), WHITE);
        }
    }

    #[test]
    fn one_sample_is_a_dot_and_a_flat_line_is_centred() {
        let p = render(&[series(&[5], &[42.0], 0, Mark::Line)], 21, 21, 0, 10).unwrap();
        assert!(coloured(&p) > 0);
        let ts = [0i64, 10];
        let p = render(&[series(&ts, &[3.0, 3.0], 0, Mark::Line)], 21, 21, 0, 10).unwrap();
        assert!(pixel(&p, 10, 10)[2] > 150 && pixel(&p, 10, 10)[0] < 150);
    }

    #[test]
    fn groups_have_their_own_scales() {
        // A line at 0..1 and one at 1000..1001 in separate groups both span the height.
        let ts = [0i64, 100];
        let (low, high) = ([0.0, 1.0], [1000.0, 1001.0]);
        let own = [
            series(&ts, &low, 0, Mark::Line),
            series(&ts, &high, 1, Mark::Line),
        ];
        let p = render(&own, 50, 50, 0, 100).unwrap();
        // Each spans the whole height, so the second (green, drawn last) crosses the middle.
        let c = pixel(&p, 24, 24);
        assert!(c[1] > c[0] && c[1] > c[2], "{c:?}");
        let shared = [
            series(&ts, &low, 0, Mark::Line),
            series(&ts, &high, 0, Mark::Line),
        ];
        let p = render(&shared, 50, 50, 0, 100).unwrap();
        // Sharing one scale, the small line lies flat along the bottom.
        assert_eq!(pixel(&p, 24, 20), WHITE);
    }

    #[test]
    fn steps_hold_their_value_and_lines_do_not() {
        let ts = [0i64, 50, 100];
        let values = [0.0, 1.0, 1.0];
        // Before the second sample a line is rising; a step is still at the bottom.
        let line = render(&[series(&ts, &values, 0, Mark::Line)], 100, 100, 0, 100).unwrap();
        let step = render(&[series(&ts, &values, 0, Mark::Step)], 100, 100, 0, 100).unwrap();
        // At x = 31.5 the line (from (4, 96) to (50, 4)) is at y = 41.
        assert_ne!(pixel(&line, 31, 41), WHITE);
        assert_eq!(pixel(&step, 31, 41), WHITE);
        assert_ne!(pixel(&step, 31, 96), WHITE);
    }

    #[test]
    fn bars_are_filled_columns_from_zero_side_by_side() {
        // Four buckets of 25 ms; two bar series share each bucket, the first on the left.
        let ts = [0i64, 25, 50, 75];
        let (a, b) = ([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]);
        let all = [series(&ts, &a, 0, Mark::Bar), series(&ts, &b, 0, Mark::Bar)];
        let (w, h) = (208u32, 108u32);
        let p = render(&all, w, h, 0, 100).unwrap();
        // Zero is the scale's bottom: every column stands on the bottom edge of the plot.
        let bottom = h - PAD as u32 - 1;
        let slot = 50.0f32; // 25 ms of 100 over 200 px
        for (k, &value) in a.iter().enumerate() {
            let left = PAD + slot * k as f32;
            let (xa, xb) = ((left + 15.0) as u32, (left + 35.0) as u32);
            assert_eq!(pixel(&p, xa, bottom), BLUE, "bucket {k}");
            assert_eq!(pixel(&p, xb, bottom), GREEN, "bucket {k}");
            // Filled from the bottom up to the value (4.0 is the top of the scale).
            let top_a = PAD + (1.0 - value as f32 / 4.0) * 100.0;
            assert_eq!(pixel(&p, xa, (top_a + 2.0) as u32), BLUE);
            assert_ne!(pixel(&p, xa, (top_a - 2.0).max(0.0) as u32), BLUE);
            // The gap between buckets stays empty.
            assert_eq!(pixel(&p, (left + 2.0) as u32, bottom), WHITE);
        }
        // Negative values hang down from zero.
        let neg = [series(&ts, &[-1.0, 1.0, -1.0, 1.0], 0, Mark::Bar)];
        let p = render(&neg, w, h, 0, 100).unwrap();
        let (x0, x1) = ((PAD + 25.0) as u32, (PAD + 75.0) as u32);
        assert_eq!(pixel(&p, x0, h - 8), BLUE);
        assert_eq!(pixel(&p, x0, 8), WHITE);
        assert_eq!(pixel(&p, x1, 8), BLUE);
        assert_eq!(pixel(&p, x1, h - 8), WHITE);
    }

    #[test]
    fn scatter_draws_a_dot_at_each_sample_and_nothing_between() {
        let ts = [0i64, 50, 100];
        let values = [0.0, 1.0, 0.0];
        let p = render(&[series(&ts, &values, 0, Mark::Scatter)], 104, 104, 0, 100).unwrap();
        assert_eq!(pixel(&p, 52, 4), BLUE); // the middle dot's centre, at the top
        assert_eq!(pixel(&p, 29, 50), WHITE); // where a line would run
        assert!(coloured(&p) < 3 * 20, "{}", coloured(&p));
    }

    #[test]
    fn a_long_series_is_downsampled_and_still_drawn_across() {
        let n = 525_600usize;
        let ts: Vec<i64> = (0..n as i64).map(|i| i * 60_000).collect();
        let values: Vec<f64> = (0..n).map(|i| (i as f64 / 5000.0).sin()).collect();
        for mark in [Mark::Step, Mark::Scatter, Mark::Bar] {
            let all = [series(&ts, &values, 0, mark)];
            let png = render_png(&all, 400, 200, 0, n as i64 * 60_000).unwrap();
            assert_eq!(&png[1..4], b"PNG");
        }
    }

    #[test]
    fn mark_names() {
        for name in Mark::NAMES {
            assert!(Mark::from_name(name).is_some(), "{name}");
        }
        assert_eq!(Mark::from_name("Bar"), None);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let ts = [0i64, 1];
        let ok = [series(&ts, &[1.0, 2.0], 0, Mark::Line)];
        for (w, h, start, end) in [(0, 10, 0, 1), (10, MAX_SIDE + 1, 0, 1), (10, 10, 5, 5)] {
            let got = render(&ok, w, h, start, end);
            assert!(
                matches!(got, Err(CoreError::Argument(_))),
                "{w} {h} {start} {end}"
            );
        }
        let short = [series(&ts, &[1.0], 0, Mark::Bar)];
        assert!(matches!(
            render(&short, 10, 10, 0, 1),
            Err(CoreError::Length(_))
        ));
        let unsorted = [series(&[2, 1], &[1.0, 2.0], 0, Mark::Scatter)];
        assert!(matches!(
            render(&unsorted, 10, 10, 0, 3),
            Err(CoreError::Argument(_))
        ));
    }
}
