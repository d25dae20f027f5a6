//! `encode_arrow`: an Arrow IPC stream written from the series' arrays.
//!
//! Series and metadata are read as the other encoders read them (`encode::hold`,
//! `encode::metadata`). The stream is planned (its messages built, its size known), then
//! written straight into an uninitialised `bytes` object of that size, both with the
//! GIL released for large inputs: each array is copied once, into the answer.

use acechart_core::encode::arrow::{self, ArrowLayout};
use acechart_core::encode::Series;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::encode::{bytes_with, columns_of, hold, metadata, views, DETACH_MIN_ROWS};
use crate::errors::{run, to_py, Gil};

/// The series as an Arrow IPC stream: per-series record batches (`layout="series"`)
/// or one table outer-joined on time (`layout="wide"`), times as `timestamp[ms, tz]`.
#[pyfunction]
#[pyo3(signature = (metadata, series, layout = "series", tz = "UTC"))]
fn encode_arrow<'py>(
    py: Python<'py>,
    metadata: &Bound<'py, PyAny>,
    series: &Bound<'py, PyAny>,
    layout: &str,
    tz: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let layout = ArrowLayout::parse(layout).map_err(to_py)?;
    let meta = self::metadata(metadata)?;
    let held = hold(series)?;
    let columns = columns_of(&held)?;
    let views = views(&held, &columns)?;
    let rows: usize = views.iter().map(Series::len).sum();
    let gil = Gil::release_if(rows >= DETACH_MIN_ROWS);
    let stream = run(py, gil, || arrow::plan(&meta, &views, layout, tz))?;
    // SAFETY: `write_into` writes every byte of its buffer when it returns `Ok`.
    unsafe { bytes_with(py, stream.len(), gil, |out| stream.write_into(out)) }
}

/// The schema message of a `wide` stream written in pieces, for series named and sized
/// by `listing` (`(name, rows)` each, in order): the schema `encode_arrow(metadata,
/// series, "wide", tz)` writes, without batches or end-of-stream marker.
#[pyfunction]
#[pyo3(signature = (metadata, listing, tz = "UTC"))]
fn encode_arrow_wide_head<'py>(
    py: Python<'py>,
    metadata: &Bound<'py, PyAny>,
    listing: Vec<(String, usize)>,
    tz: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let meta = self::metadata(metadata)?;
    let refs: Vec<(&str, usize)> = listing.iter().map(|(n, r)| (n.as_str(), *r)).collect();
    // A schema holds metadata and names only: never worth releasing the GIL for.
    let head = run(py, Gil::Keep, || arrow::wide_head(&meta, &refs, tz))?;
    Ok(PyBytes::new(py, &head))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_arrow, m)?)?;
    m.add_function(wrap_pyfunction!(encode_arrow_wide_head, m)?)?;
    Ok(())
}
