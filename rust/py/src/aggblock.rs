//! `encode_agg_block`, `decode_agg_block`, `decode_agg_blocks`: the aggregate tier's
//! blocks (one point, level and UTC month of bucket statistics) to and from bytes.

use acechart_core::aggblock::{self, Identity, Item};
use acechart_core::CoreError;
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::aggregate::{from_dict, to_dict};
use crate::errors::{run, value_error, Gil};

type Decoded<'py> = (
    String,
    String,
    String,
    String,
    Bound<'py, PyDict>,
    Bound<'py, PyArray2<i64>>,
);

/// One stored blob as Python passes it: (point index, period, data, claimed intervals).
type Blob<'py> = (usize, String, Bound<'py, PyBytes>, Vec<(i64, i64)>);

type Many<'py> = (
    Bound<'py, PyDict>,
    Bound<'py, PyArray1<i64>>,
    Vec<(usize, String)>,
);

fn intervals(covered: &PyReadonlyArray2<'_, i64>) -> PyResult<Vec<(i64, i64)>> {
    let shape = covered.shape();
    if shape[1] != 2 {
        return Err(value_error(format!(
            "covered must have shape (k, 2), got ({}, {})",
            shape[0], shape[1]
        )));
    }
    Ok(covered
        .as_array()
        .rows()
        .into_iter()
        .map(|r| (r[0], r[1]))
        .collect())
}

/// Serialise the mergeable state of one point's buckets at one level for one period,
/// and the intervals they cover.
#[pyfunction]
fn encode_agg_block<'py>(
    py: Python<'py>,
    site: &str,
    point: &str,
    level: &str,
    period: &str,
    aggregates: &Bound<'py, PyDict>,
    covered: PyReadonlyArray2<'py, i64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let a = from_dict(aggregates, "aggregates")?;
    let covered = intervals(&covered)?;
    let id = Identity {
        site: site.to_owned(),
        point: point.to_owned(),
        level: level.to_owned(),
        period: period.to_owned(),
    };
    let bytes = run(py, Gil::Release, || aggblock::encode(&id, &a, &covered))?;
    Ok(PyBytes::new(py, &bytes))
}

/// Read one aggregate block back: (site, point, level, period, aggregates, covered).
/// Damaged bytes raise `BlockDecodeError`, whatever the damage.
#[pyfunction]
fn decode_agg_block<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Decoded<'py>> {
    let (b, covered) = run(py, Gil::Release, || {
        let b = aggblock::decode(data)?;
        let flat: Vec<i64> = b.covered.iter().flat_map(|&(s, e)| [s, e]).collect();
        let covered = Array2::from_shape_vec((b.covered.len(), 2), flat)
            .map_err(|e| CoreError::Block(format!("covered intervals: {e}")))?;
        Ok((b, covered))
    })?;
    let id = b.identity;
    Ok((
        id.site,
        id.point,
        id.level,
        id.period,
        to_dict(py, b.aggs)?,
        covered.into_pyarray(py),
    ))
}

/// The blocks of one query, decoded together: `(columns, bounds, damaged)`.
///
/// `blocks` holds `(point index, period, data, claimed intervals)` per stored block;
/// point `i` gets rows `bounds[i]:bounds[i+1]` of every column, its buckets with
/// `start_ms <= ts < end_ms` in time order. A block that is damaged, belongs to another
/// site, point, level or period, or does not cover what its row claims contributes
/// nothing and is listed in `damaged` as `(position in blocks, reason)`.
#[pyfunction]
fn decode_agg_blocks<'py>(
    py: Python<'py>,
    site: &str,
    level: &str,
    points: Vec<String>,
    blocks: Vec<Blob<'py>>,
    start_ms: i64,
    end_ms: i64,
) -> PyResult<Many<'py>> {
    let names: Vec<&str> = points.iter().map(String::as_str).collect();
    let items: Vec<Item<'_>> = blocks
        .iter()
        .map(|(point, period, data, claimed)| Item {
            point: *point,
            period,
            data: data.as_bytes(),
            claimed,
        })
        .collect();
    let batch = run(py, Gil::Release, || {
        aggblock::decode_many(site, level, &names, &items, start_ms, end_ms)
    })?;
    Ok((
        to_dict(py, batch.aggs)?,
        batch.bounds.into_pyarray(py),
        batch.damaged,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_agg_block, m)?)?;
    m.add_function(wrap_pyfunction!(decode_agg_block, m)?)?;
    m.add_function(wrap_pyfunction!(decode_agg_blocks, m)?)?;
    Ok(())
}
