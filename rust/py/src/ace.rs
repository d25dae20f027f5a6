//! `ace_page_end`, `encode_ace_page`: pages of the ACE API's own
//! `timeseries/paginated` body, written from the series' arrays.
//!
//! Series are borrowed as the other encoders borrow them (`encode::hold`); the merge,
//! the exact size and the write run with the GIL released for large inputs, and the
//! body is written straight into the `bytes` object.

use acechart_core::encode::ace::{self, AceFormat, AcePage, Position};
use acechart_core::encode::Series;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::encode::{bytes_with, hold, Held, DETACH_MIN_ROWS};
use crate::errors::{run, to_py, type_error, value_error, Gil};

/// The series' arrays, which must be raw: an aggregate item is a `TypeError`.
fn raw_series<'py>(series: &Bound<'py, PyAny>) -> PyResult<Vec<Held<'py>>> {
    let held = hold(series)?;
    for (i, h) in held.iter().enumerate() {
        if let Held::Agg { name, .. } | Held::Stats { name, .. } = h {
            return Err(type_error(format!(
                "series[{i}] ({name:?}): an ACE page takes (name, ts, values) tuples, got \
                 an aggregates dict"
            )));
        }
    }
    Ok(held)
}

fn views<'a>(held: &'a [Held<'_>]) -> PyResult<(Vec<Series<'a>>, Gil)> {
    // raw series only (`raw_series`): no statistics columns to borrow
    let views = held
        .iter()
        .map(|h| h.view(&[]))
        .collect::<PyResult<Vec<_>>>()?;
    // the sort check reads every array: release the GIL by the series' size
    let rows: usize = views.iter().map(Series::len).sum();
    Ok((views, Gil::release_if(rows >= DETACH_MIN_ROWS)))
}

fn position(after: Option<(i64, i64)>) -> PyResult<Option<Position>> {
    after
        .map(|(ts, index)| {
            let index = usize::try_from(index).map_err(|_| {
                value_error(format!(
                    "after: the series index must be non-negative, got {index}"
                ))
            })?;
            Ok(Position { ts, index })
        })
        .transpose()
}

fn limit_arg(limit: i64) -> PyResult<usize> {
    match usize::try_from(limit) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(value_error(format!(
            "limit must be at least 1, got {limit}"
        ))),
    }
}

/// Where the page of up to `limit` rows strictly after `after` ends:
/// `(rows, last_ts, last_index, has_more)`.
#[pyfunction]
fn ace_page_end(
    py: Python<'_>,
    series: &Bound<'_, PyAny>,
    after: Option<(i64, i64)>,
    limit: i64,
) -> PyResult<(usize, i64, usize, bool)> {
    let limit = limit_arg(limit)?;
    let after = position(after)?;
    let held = raw_series(series)?;
    let (views, gil) = views(&held)?;
    let end = run(py, gil, || ace::page_end(&views, after, limit))?;
    let last = end.last.or(after).unwrap_or(Position { ts: 0, index: 0 });
    Ok((end.rows, last.ts, last.index, end.has_more))
}

/// The whole body of one ACE page, JSON or MessagePack.
#[pyfunction]
#[pyo3(signature = (series, after, limit, next_cursor, has_more, format = "json"))]
fn encode_ace_page<'py>(
    py: Python<'py>,
    series: &Bound<'py, PyAny>,
    after: Option<(i64, i64)>,
    limit: i64,
    next_cursor: Option<String>,
    has_more: bool,
    format: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let format = AceFormat::parse(format).map_err(to_py)?;
    let limit = limit_arg(limit)?;
    let after = position(after)?;
    let held = raw_series(series)?;
    let (views, gil) = views(&held)?;
    let cursor = next_cursor.as_deref();
    let (page, n) = run(py, gil, || {
        let page = AcePage::new(&views, after, limit, cursor, has_more, format)?;
        let n = page.encoded_len()?;
        Ok((page, n))
    })?;
    let gil = Gil::release_if(page.end().rows >= DETACH_MIN_ROWS);
    // SAFETY: `encode_into` writes every byte of its buffer when it returns `Ok`.
    unsafe { bytes_with(py, n, gil, |out| page.encode_into(out)) }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ace_page_end, m)?)?;
    m.add_function(wrap_pyfunction!(encode_ace_page, m)?)?;
    Ok(())
}
