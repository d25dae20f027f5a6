//! `render_thumbnail` and `render_heatmap`: PNG thumbnails of a chart (tiny-skia).

use acechart_core::thumbnail::heatmap::{self, Grid};
use acechart_core::thumbnail::{self, Mark, Series};
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{run, type_error, value_error, Gil};

/// The PNG bytes of a `width` x `height` thumbnail of `series` over `[start_ms, end_ms)`.
///
/// Each series is `(ts, values)` or `(ts, values, group, mark)`: `ts` int64 ms sorted
/// ascending, `values` float64 of the same length, `group` the index of the y scale it
/// shares with other series (default 0), `mark` how it is drawn: "line" (the default),
/// "step", "bar" or "scatter". Series longer than the width are downsampled to it with
/// MinMaxLTTB; NaN breaks a line. Releases the GIL. Raises `TypeError` for arguments of
/// the wrong type, `ValueError` for bad values.
#[pyfunction]
#[pyo3(signature = (series, width, height, start_ms, end_ms))]
fn render_thumbnail<'py>(
    py: Python<'py>,
    series: Vec<Bound<'py, PyAny>>,
    width: i64,
    height: i64,
    start_ms: i64,
    end_ms: i64,
) -> PyResult<Bound<'py, PyBytes>> {
    type Held<'py> = (
        PyReadonlyArray1<'py, i64>,
        PyReadonlyArray1<'py, f64>,
        usize,
        Mark,
    );
    let shape = "must be a tuple (ts, values[, group, mark])";
    let mut held: Vec<Held<'py>> = Vec::with_capacity(series.len());
    for (i, item) in series.iter().enumerate() {
        let parts: Vec<Bound<'py, PyAny>> = item
            .extract()
            .map_err(|_| type_error(format!("series {i} {shape}")))?;
        if parts.len() != 2 && parts.len() != 4 {
            return Err(type_error(format!(
                "series {i} {shape}, got {} items",
                parts.len()
            )));
        }
        let ts = parts[0]
            .extract::<PyReadonlyArray1<'py, i64>>()
            .map_err(|_| type_error(format!("series {i}: ts must be a 1-D int64 numpy array")))?;
        let values = parts[1]
            .extract::<PyReadonlyArray1<'py, f64>>()
            .map_err(|_| {
                type_error(format!(
                    "series {i}: values must be a 1-D float64 numpy array"
                ))
            })?;
        let (group, mark) = if parts.len() == 4 {
            let group: i64 = parts[2]
                .extract()
                .map_err(|_| type_error(format!("series {i}: group must be an int")))?;
            let group = usize::try_from(group)
                .ok()
                .filter(|&g| g < series.len())
                .ok_or_else(|| {
                    value_error(format!(
                        "series {i}: group must be between 0 and {}, got {group}",
                        series.len().saturating_sub(1)
                    ))
                })?;
            let name: String = parts[3]
                .extract()
                .map_err(|_| type_error(format!("series {i}: mark must be a str")))?;
            let mark = Mark::from_name(&name).ok_or_else(|| {
                value_error(format!(
                    "series {i}: mark must be one of {}, got {name:?}",
                    Mark::NAMES.join(", ")
                ))
            })?;
            (group, mark)
        } else {
            (0, Mark::Line)
        };
        held.push((ts, values, group, mark));
    }
    let (width, height) = (side("width", width)?, side("height", height)?);
    let mut views: Vec<Series<'_>> = Vec::with_capacity(held.len());
    for (ts, values, group, mark) in &held {
        views.push(Series {
            ts: ts.as_slice()?,
            values: values.as_slice()?,
            group: *group,
            mark: *mark,
        });
    }
    let png = run(py, Gil::Release, || {
        thumbnail::render_png(&views, width, height, start_ms, end_ms)
    })?;
    Ok(PyBytes::new(py, &png))
}

/// The PNG bytes of a `width` x `height` heat map of `cells` (a C-contiguous 2-D float64
/// array: row 0 drawn at the top, column 0 on the left). Each cell is coloured by its
/// value between the grid's lowest and highest finite values; NaN cells stay blank.
/// Releases the GIL. Raises `TypeError` for a wrong array, `ValueError` for bad sides.
#[pyfunction]
fn render_heatmap<'py>(
    py: Python<'py>,
    cells: PyReadonlyArray2<'py, f64>,
    width: i64,
    height: i64,
) -> PyResult<Bound<'py, PyBytes>> {
    let (width, height) = (side("width", width)?, side("height", height)?);
    let shape = cells.shape();
    let (rows, columns) = (shape[0], shape[1]);
    let values = cells
        .as_slice()
        .map_err(|_| type_error("cells must be a C-contiguous 2-D float64 array".into()))?;
    let png = run(py, Gil::Release, || {
        heatmap::render_heatmap_png(
            &Grid {
                values,
                rows,
                columns,
            },
            width,
            height,
        )
    })?;
    Ok(PyBytes::new(py, &png))
}

/// A side in pixels as the core takes it (its range is checked there).
fn side(name: &str, v: i64) -> PyResult<u32> {
    u32::try_from(v)
        .map_err(|_| value_error(format!("{name} must be between 1 and 4096 pixels, got {v}")))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(render_thumbnail, m)?)?;
    m.add_function(wrap_pyfunction!(render_heatmap, m)?)?;
    Ok(())
}
