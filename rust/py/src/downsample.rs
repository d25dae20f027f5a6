//! `downsample`: indices of the samples worth drawing (MinMaxLTTB or M4).

use acechart_core::downsample::{self as kernel, Method};
use acechart_core::CoreError;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::errors::{run, to_py, Gil};

/// Sorted indices of the samples to keep, at most `n_out`, first and last included.
///
/// `ts` must be sorted ascending (int64 ms), `values` the same length. `method` is
/// `"minmaxlttb"` (`n_out >= 3`) or `"m4"` (`n_out` a positive multiple of 4). NaN values
/// are never selected except as the first or last sample; a series of at most `n_out`
/// samples is returned whole. With `assume_sorted`, `ts` is trusted to be sorted (one
/// pass fewer; unsorted input then gives unspecified indices). Inputs of 2^20 samples
/// or more are scanned on every core, with the same result. Raises `TypeError` for
/// arguments of the wrong type or non-contiguous arrays, `ValueError` for invalid values.
#[pyfunction]
#[pyo3(signature = (ts, values, n_out, method = "minmaxlttb", *, assume_sorted = false))]
fn downsample<'py>(
    py: Python<'py>,
    ts: PyReadonlyArray1<'py, i64>,
    values: PyReadonlyArray1<'py, f64>,
    n_out: i64,
    method: &str,
    assume_sorted: bool,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let method: Method = method.parse().map_err(to_py)?;
    let n_out = usize::try_from(n_out).map_err(|_| {
        to_py(CoreError::Argument(format!(
            "n_out must be a non-negative integer, got {n_out}"
        )))
    })?;
    let ts = ts.as_slice()?;
    let values = values.as_slice()?;
    let kept = run(py, Gil::Release, || {
        kernel::downsample_with(ts, values, n_out, method, assume_sorted)
            .map(|idx| idx.into_iter().map(|i| i as i64).collect::<Vec<i64>>())
    })?;
    Ok(kept.into_pyarray(py))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(downsample, m)?)?;
    Ok(())
}
