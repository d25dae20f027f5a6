//! Chart thumbnails: series downsampled to the image's width, drawn anti-aliased, as PNG.
//!
//! A saved chart's thumbnail is a small picture of its lines over its time range, drawn
//! on the server so a list of charts shows them without running a chart library. Each
//! series is first thinned to one sample per pixel column with MinMaxLTTB (a year of
//! one-minute data is 525,600 samples; a 400 px thumbnail shows 400), then stroked with
//! tiny-skia, the pure-Rust port of Skia's rasteriser, and encoded as RGB PNG.
//!
//! Series share a y scale within their `group` (the caller groups them by unit), so two
//! temperatures stay comparable while a damper position beside them keeps its own
//! range. NaN breaks a line (a gap); step series (binary points) are drawn as steps.

use tiny_skia::{Color, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};

use crate::downsample::{self, Method};
use crate::error::{CoreError, Result};

/// Largest width or height of a thumbnail, in pixels.
pub const MAX_SIDE: u32 = 4096;

/// ECharts' default palette, so a thumbnail's colours match the dashboard's lines.
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

/// One line of a thumbnail: samples sorted by time, its y-scale group, and whether it is
/// drawn as steps (a binary point holds its value until the next sample).
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub ts: &'a [i64],
    pub values: &'a [f64],
    pub group: usize,
    pub step: bool,
}

/// A PNG of `lines` over the time range `[start_ms, end_ms)`, `width` x `height` pixels.
///
/// Lines longer than the width are downsampled to it (MinMaxLTTB). An empty chart (no
/// finite value anywhere) is the background and its grid only. Errors: a side of 0 or
/// above [`MAX_SIDE`], `end_ms <= start_ms`, arrays of different lengths, or timestamps
/// not sorted ascending.
pub fn render_png(
    lines: &[Line<'_>],
    width: u32,
    height: u32,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<u8>> {
    let pixmap = render(lines, width, height, start_ms, end_ms)?;
    encode_rgb_png(&pixmap)
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

/// [`render_png`] before encoding: the premultiplied RGBA pixels (for tests and callers
/// that encode themselves).
pub fn render(
    lines: &[Line<'_>],
    width: u32,
    height: u32,
    start_ms: i64,
    end_ms: i64,
) -> Result<Pixmap> {
    for (name, side) in [("width", width), ("height", height)] {
        if side == 0 || side > MAX_SIDE {
            return Err(CoreError::Argument(format!(
                "{name} must be between 1 and {MAX_SIDE} pixels, got {side}"
            )));
        }
    }
    if end_ms <= start_ms {
        return Err(CoreError::Argument(format!(
            "end_ms ({end_ms}) must be after start_ms ({start_ms})"
        )));
    }
    // Thin every line to the pixel columns first: the scales come from what is drawn.
    let n_out = (width as usize).max(3);
    let mut thinned: Vec<(Vec<i64>, Vec<f64>)> = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.ts.len() != line.values.len() {
            return Err(CoreError::Length(format!(
                "line {i}: {} timestamps but {} values",
                line.ts.len(),
                line.values.len()
            )));
        }
        let keep = downsample::downsample(line.ts, line.values, n_out, Method::MinMaxLttb)
            .map_err(|e| match e {
                CoreError::Argument(m) => CoreError::Argument(format!("line {i}: {m}")),
                other => other,
            })?;
        if keep.len() == line.ts.len() {
            thinned.push((line.ts.to_vec(), line.values.to_vec()));
        } else {
            thinned.push((
                keep.iter().map(|&k| line.ts[k]).collect(),
                keep.iter().map(|&k| line.values[k]).collect(),
            ));
        }
    }
    let scales = group_scales(lines, &thinned);

    let mut pixmap = Pixmap::new(width, height)
        .ok_or_else(|| CoreError::Argument("cannot allocate the image".into()))?;
    pixmap.fill(Color::WHITE);
    draw_grid(&mut pixmap, width as f32, height as f32);

    let plot_w = (width as f32 - 2.0 * PAD).max(1.0);
    let plot_h = (height as f32 - 2.0 * PAD).max(1.0);
    let span = (end_ms - start_ms) as f64;
    let stroke = Stroke {
        width: LINE_WIDTH,
        line_cap: LineCap::Round,
        // Round joins cost three times as much on dense zigzags, and at 1.5 px look alike.
        line_join: LineJoin::Bevel,
        ..Stroke::default()
    };
    for (i, (line, (ts, values))) in lines.iter().zip(&thinned).enumerate() {
        let Some((low, high)) = scales[line.group] else {
            continue;
        };
        let x_of = |t: i64| PAD + ((t - start_ms) as f64 / span * plot_w as f64) as f32;
        let y_of = |v: f64| PAD + ((high - v) / (high - low) * plot_h as f64) as f32;
        let mut pb = PathBuilder::new();
        let mut open = false;
        let mut last_y = 0.0f32;
        for (&t, &v) in ts.iter().zip(values) {
            if !v.is_finite() {
                open = false;
                continue;
            }
            let (x, y) = (x_of(t), y_of(v));
            if !open {
                pb.move_to(x, y);
                // A lone sample still shows: a zero-length segment with round caps is a dot.
                pb.line_to(x, y);
                open = true;
            } else {
                if line.step {
                    pb.line_to(x, last_y);
                }
                pb.line_to(x, y);
            }
            last_y = y;
        }
        if let Some(path) = pb.finish() {
            let [r, g, b] = PALETTE[i % PALETTE.len()];
            let mut paint = Paint::default();
            paint.set_color_rgba8(r, g, b, 255);
            paint.anti_alias = true;
            pixmap.stroke_path(&path, &paint, &stroke, Transform::identity(), None);
        }
    }
    Ok(pixmap)
}

/// The (low, high) of every group over its lines' finite values; a flat group is centred.
fn group_scales(lines: &[Line<'_>], thinned: &[(Vec<i64>, Vec<f64>)]) -> Vec<Option<(f64, f64)>> {
    let groups = lines.iter().map(|l| l.group + 1).max().unwrap_or(0);
    let mut scales: Vec<Option<(f64, f64)>> = vec![None; groups];
    for (line, (_, values)) in lines.iter().zip(thinned) {
        for &v in values.iter().filter(|v| v.is_finite()) {
            let s = &mut scales[line.group];
            *s = Some(match *s {
                None => (v, v),
                Some((lo, hi)) => (lo.min(v), hi.max(v)),
            });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(p: &Pixmap, x: u32, y: u32) -> [u8; 4] {
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

    #[test]
    fn a_rising_line_goes_from_bottom_left_to_top_right() {
        let ts: Vec<i64> = (0..1000).collect();
        let values: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        let line = Line {
            ts: &ts,
            values: &values,
            group: 0,
            step: false,
        };
        let p = render(&[line], 100, 50, 0, 999).unwrap();
        // The line's blue near the bottom-left and top-right corners, white far from it.
        let blue = |c: [u8; 4]| c[2] > 150 && c[0] < 150;
        assert!(blue(pixel(&p, 4, 45)), "{:?}", pixel(&p, 4, 45));
        assert!(blue(pixel(&p, 95, 4)), "{:?}", pixel(&p, 95, 4));
        assert_eq!(pixel(&p, 95, 40), [255, 255, 255, 255]);
    }

    #[test]
    fn empty_and_all_nan_lines_draw_only_the_background() {
        let nan = [f64::NAN; 3];
        let ts = [0i64, 1, 2];
        let lines = [
            Line {
                ts: &[],
                values: &[],
                group: 0,
                step: false,
            },
            Line {
                ts: &ts,
                values: &nan,
                group: 1,
                step: true,
            },
        ];
        let p = render(&lines, 40, 20, 0, 10).unwrap();
        assert_eq!(coloured(&p), 0);
        assert_eq!(pixel(&p, 1, 1), [255, 255, 255, 255]);
    }

    #[test]
    fn one_sample_is_a_dot_and_a_flat_line_is_centred() {
        let lines = [Line {
            ts: &[5],
            values: &[42.0],
            group: 0,
            step: false,
        }];
        let p = render(&lines, 21, 21, 0, 10).unwrap();
        assert!(coloured(&p) > 0);
        let ts = [0i64, 10];
        let flat = [Line {
            ts: &ts,
            values: &[3.0, 3.0],
            group: 0,
            step: false,
        }];
        let p = render(&flat, 21, 21, 0, 10).unwrap();
        assert!(pixel(&p, 10, 10)[2] > 150 && pixel(&p, 10, 10)[0] < 150);
    }

    #[test]
    fn groups_have_their_own_scales() {
        // A line at 0..1 and one at 1000..1001 in separate groups both span the height.
        let ts = [0i64, 100];
        let lines = [
            Line {
                ts: &ts,
                values: &[0.0, 1.0],
                group: 0,
                step: false,
            },
            Line {
                ts: &ts,
                values: &[1000.0, 1001.0],
                group: 1,
                step: false,
            },
        ];
        let p = render(&lines, 50, 50, 0, 100).unwrap();
        // Each spans the whole height, so the second (green, drawn last) crosses the middle.
        let c = pixel(&p, 24, 24);
        assert!(c[1] > c[0] && c[1] > c[2], "{c:?}");
        let shared = [
            Line {
                ts: &ts,
                values: &[0.0, 1.0],
                group: 0,
                step: false,
            },
            Line {
                ts: &ts,
                values: &[1000.0, 1001.0],
                group: 0,
                step: false,
            },
        ];
        let p = render(&shared, 50, 50, 0, 100).unwrap();
        // Sharing one scale, the small line lies flat along the bottom.
        assert_eq!(pixel(&p, 24, 20), [255, 255, 255, 255]);
    }

    #[test]
    fn a_long_line_is_downsampled_and_still_drawn_across() {
        let n = 525_600usize;
        let ts: Vec<i64> = (0..n as i64).map(|i| i * 60_000).collect();
        let values: Vec<f64> = (0..n).map(|i| (i as f64 / 5000.0).sin()).collect();
        let lines = [Line {
            ts: &ts,
            values: &values,
            group: 0,
            step: true,
        }];
        let png = render_png(&lines, 400, 200, 0, n as i64 * 60_000).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }

    #[test]
    fn bad_arguments_are_errors() {
        let ts = [0i64, 1];
        let ok = [Line {
            ts: &ts,
            values: &[1.0, 2.0],
            group: 0,
            step: false,
        }];
        assert!(matches!(
            render(&ok, 0, 10, 0, 1),
            Err(CoreError::Argument(_))
        ));
        assert!(matches!(
            render(&ok, 10, MAX_SIDE + 1, 0, 1),
            Err(CoreError::Argument(_))
        ));
        assert!(matches!(
            render(&ok, 10, 10, 5, 5),
            Err(CoreError::Argument(_))
        ));
        let short = [Line {
            ts: &ts,
            values: &[1.0],
            group: 0,
            step: false,
        }];
        assert!(matches!(
            render(&short, 10, 10, 0, 1),
            Err(CoreError::Length(_))
        ));
        let unsorted = [Line {
            ts: &[2, 1],
            values: &[1.0, 2.0],
            group: 0,
            step: false,
        }];
        assert!(matches!(
            render(&unsorted, 10, 10, 0, 3),
            Err(CoreError::Argument(_))
        ));
    }
}
