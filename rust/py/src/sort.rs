use acechart_core::sort;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::errors::{run, Gil};

type Columns<'py> = (
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
);

/// Order by (point, time); of equal (point, time) pairs the last in input order wins.
#[pyfunction]
fn sort_dedup<'py>(
    py: Python<'py>,
    point_index: PyReadonlyArray1<'py, i32>,
    ts: PyReadonlyArray1<'py, i64>,
    values: PyReadonlyArray1<'py, f64>,
) -> PyResult<Columns<'py>> {
    let (p, t, v) = (point_index.as_slice()?, ts.as_slice()?, values.as_slice()?);
    let out = run(py, Gil::Release, || sort::sort_dedup(p, t, v))?;
    Ok((
        out.point_index.into_pyarray(py),
        out.ts.into_pyarray(py),
        out.values.into_pyarray(py),
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sort_dedup, m)?)?;
    Ok(())
}
