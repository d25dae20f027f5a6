//! Core errors as Python exceptions, and the one way a binding calls a kernel.
//!
//! Every call into `acechart-core` goes through [`run`] (as polars' `enter_polars`):
//! it releases the GIL when asked to and maps the [`CoreError`] by its variant, so a
//! caller can catch exactly what it means:
//!
//! - [`CoreError::Block`] -> [`BlockDecodeError`] (a `ValueError`): damaged block bytes.
//! - [`CoreError::Page`] -> [`PageParseError`] (a `ValueError`): a malformed origin page.
//! - every other variant -> `ValueError`: an argument with a bad value.
//!
//! An argument of the wrong type raises `TypeError`, from PyO3's argument extraction or
//! from the binding's own conversions ([`type_error`]), before any kernel runs.

use acechart_core::CoreError;
use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

create_exception!(
    acechart._core,
    BlockDecodeError,
    PyValueError,
    "Bytes that are not a readable cache block: bad magic or version, truncation, a failed \
     checksum or zstd frame, inconsistent lengths. Raised by `decode_block` for every \
     failure to decode."
);

create_exception!(
    acechart._core,
    PageParseError,
    PyValueError,
    "An origin page that is not a valid `timeseries/paginated` document; the message names \
     the problem and its byte offset. Raised by `parse_page` for every failure to parse."
);

/// The Python exception of a core error, chosen by its variant.
pub fn to_py(err: CoreError) -> PyErr {
    let message = err.to_string();
    match err {
        CoreError::Block(_) => BlockDecodeError::new_err(message),
        CoreError::Page { .. } => PageParseError::new_err(message),
        CoreError::Length(_) | CoreError::Argument(_) | CoreError::Encode(_) => {
            PyValueError::new_err(message)
        }
    }
}

/// An argument of the wrong type (not an array, wrong dtype, not a dict...).
pub fn type_error(message: String) -> PyErr {
    PyTypeError::new_err(message)
}

/// An argument of the right type with a bad value.
pub fn value_error(message: String) -> PyErr {
    PyValueError::new_err(message)
}

/// Whether [`run`] releases the GIL around the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gil {
    /// Release it: other Python threads run meanwhile (heavy or unbounded work).
    Release,
    /// Keep it: for small inputs the release costs more than it saves, and handing the
    /// GIL to another thread could make this call wait for a switch interval.
    Keep,
}

impl Gil {
    /// [`Gil::Release`] when `heavy`, else [`Gil::Keep`].
    pub fn release_if(heavy: bool) -> Self {
        if heavy {
            Gil::Release
        } else {
            Gil::Keep
        }
    }
}

/// Run a core kernel, with the GIL released if `gil` says so, and map its error.
pub fn run<T, F>(py: Python<'_>, gil: Gil, f: F) -> PyResult<T>
where
    T: Send,
    F: Send + FnOnce() -> Result<T, CoreError>,
{
    match gil {
        Gil::Release => py.detach(f),
        Gil::Keep => f(),
    }
    .map_err(to_py)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("BlockDecodeError", py.get_type::<BlockDecodeError>())?;
    m.add("PageParseError", py.get_type::<PageParseError>())?;
    Ok(())
}
