use acechart_core::block;
use acechart_core::CoreError;
use numpy::ndarray::Array2;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{run, value_error, Gil};

type Decoded<'py> = (
    String,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray2<i64>>,
);

/// Serialise one point's samples for one period and the intervals they cover.
#[pyfunction]
fn encode_block<'py>(
    py: Python<'py>,
    point: &str,
    ts: PyReadonlyArray1<'py, i64>,
    values: PyReadonlyArray1<'py, f64>,
    covered: PyReadonlyArray2<'py, i64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let shape = covered.shape();
    if shape[1] != 2 {
        return Err(value_error(format!(
            "covered must have shape (k, 2), got ({}, {})",
            shape[0], shape[1]
        )));
    }
    let intervals: Vec<(i64, i64)> = covered
        .as_array()
        .rows()
        .into_iter()
        .map(|r| (r[0], r[1]))
        .collect();
    let (t, v) = (ts.as_slice()?, values.as_slice()?);
    let bytes = run(py, Gil::Release, || {
        block::encode_block(point, t, v, &intervals)
    })?;
    Ok(PyBytes::new(py, &bytes))
}

/// Read a block back: (point, ts, values, covered). Damaged bytes raise
/// `BlockDecodeError`, whatever the damage.
#[pyfunction]
fn decode_block<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Decoded<'py>> {
    let (b, covered) = run(py, Gil::Release, || {
        let b = block::decode_block(data)?;
        let flat: Vec<i64> = b.covered.iter().flat_map(|&(s, e)| [s, e]).collect();
        let covered = Array2::from_shape_vec((b.covered.len(), 2), flat)
            .map_err(|e| CoreError::Block(format!("covered intervals: {e}")))?;
        Ok((b, covered))
    })?;
    Ok((
        b.point,
        b.ts.into_pyarray(py),
        b.values.into_pyarray(py),
        covered.into_pyarray(py),
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_block, m)?)?;
    m.add_function(wrap_pyfunction!(decode_block, m)?)?;
    Ok(())
}
