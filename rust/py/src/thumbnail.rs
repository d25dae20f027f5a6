//! `render_thumbnail`: a PNG of a chart's lines, downsampled to its width (tiny-skia).

use acechart_core::thumbnail::{self, Line};
use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{run, type_error, value_error, Gil};

/// The PNG bytes of a `width` x `height` thumbnail of `lines` over `[start_ms, end_ms)`.
///
/// Each line is `(ts, values)` or `(ts, values, group, step)`: `ts` int64 ms sorted
/// ascending, `values` float64 of the same length, `group` the index of the y scale it
/// shares with other lines (default 0), `step` whether it is drawn as steps. Lines longer
/// than the width are downsampled to it with MinMaxLTTB; NaN breaks a line. Releases the
/// GIL. Raises `TypeError` for arguments of the wrong type, `ValueError` for bad values.
#[pyfunction]
#[pyo3(signature = (lines, width, height, start_ms, end_ms))]
fn render_thumbnail<'py>(
    py: Python<'py>,
    lines: Vec<Bound<'py, PyAny>>,
    width: i64,
    height: i64,
    start_ms: i64,
    end_ms: i64,
) -> PyResult<Bound<'py, PyBytes>> {
    type Held<'py> = (
        PyReadonlyArray1<'py, i64>,
        PyReadonlyArray1<'py, f64>,
        usize,
        bool,
    );
    let mut held: Vec<Held<'py>> = Vec::with_capacity(lines.len());
    for (i, item) in lines.iter().enumerate() {
        let parts: Vec<Bound<'py, PyAny>> = item.extract().map_err(|_| {
            type_error(format!(
                "line {i} must be a tuple (ts, values[, group, step])"
            ))
        })?;
        if parts.len() != 2 && parts.len() != 4 {
            return Err(type_error(format!(
                "line {i} must be a tuple (ts, values[, group, step]), got {} items",
                parts.len()
            )));
        }
        let ts = parts[0]
            .extract::<PyReadonlyArray1<'py, i64>>()
            .map_err(|_| type_error(format!("line {i}: ts must be a 1-D int64 numpy array")))?;
        let values = parts[1]
            .extract::<PyReadonlyArray1<'py, f64>>()
            .map_err(|_| {
                type_error(format!(
                    "line {i}: values must be a 1-D float64 numpy array"
                ))
            })?;
        let (group, step) = if parts.len() == 4 {
            let group: i64 = parts[2]
                .extract()
                .map_err(|_| type_error(format!("line {i}: group must be an int")))?;
            let group = usize::try_from(group)
                .ok()
                .filter(|&g| g < lines.len())
                .ok_or_else(|| {
                    value_error(format!(
                        "line {i}: group must be between 0 and {}, got {group}",
                        lines.len().saturating_sub(1)
                    ))
                })?;
            let step: bool = parts[3]
                .extract()
                .map_err(|_| type_error(format!("line {i}: step must be a bool")))?;
            (group, step)
        } else {
            (0, false)
        };
        held.push((ts, values, group, step));
    }
    let side = |name: &str, v: i64| {
        u32::try_from(v)
            .map_err(|_| value_error(format!("{name} must be between 1 and 4096 pixels, got {v}")))
    };
    let (width, height) = (side("width", width)?, side("height", height)?);
    let mut views: Vec<Line<'_>> = Vec::with_capacity(held.len());
    for (ts, values, group, step) in &held {
        views.push(Line {
            ts: ts.as_slice()?,
            values: values.as_slice()?,
            group: *group,
            step: *step,
        });
    }
    let png = run(py, Gil::Release, || {
        thumbnail::render_png(&views, width, height, start_ms, end_ms)
    })?;
    Ok(PyBytes::new(py, &png))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(render_thumbnail, m)?)?;
    Ok(())
}
