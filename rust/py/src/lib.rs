//! `acechart._core`: thin PyO3 bindings over `acechart-core`.
//!
//! Each submodule converts NumPy arrays to slices and calls its kernel through
//! `errors::run`, which releases the GIL and maps `CoreError` to the module's typed
//! exceptions (`BlockDecodeError`, `PageParseError`, else `ValueError`).

use pyo3::prelude::*;

mod ace;
mod aggblock;
mod aggregate;
mod arrow;
mod block;
mod downsample;
mod encode;
mod errors;
mod page;
mod sort;
mod thumbnail;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    page::register(m)?;
    sort::register(m)?;
    aggregate::register(m)?;
    aggblock::register(m)?;
    block::register(m)?;
    downsample::register(m)?;
    encode::register(m)?;
    ace::register(m)?;
    arrow::register(m)?;
    thumbnail::register(m)?;
    Ok(())
}
