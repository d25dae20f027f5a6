//! Mapping of core errors to Python exceptions, in one place.

use acechart_core::CoreError;
use pyo3::exceptions::PyValueError;
use pyo3::PyErr;

/// Every core error is bad input from the caller's point of view: `ValueError`.
pub fn to_py(err: CoreError) -> PyErr {
    PyValueError::new_err(err.to_string())
}
