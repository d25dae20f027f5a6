use acechart_core::page;
use numpy::{IntoPyArray, PyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::{run, Gil};

/// One parsed origin page as columns.
#[pyclass(frozen, module = "acechart._core", name = "ParsedPage")]
pub struct ParsedPage {
    #[pyo3(get)]
    names: Vec<String>,
    #[pyo3(get)]
    point_index: Py<PyArray1<i32>>,
    #[pyo3(get)]
    ts: Py<PyArray1<i64>>,
    #[pyo3(get)]
    values: Py<PyArray1<f64>>,
    #[pyo3(get)]
    has_more: bool,
    #[pyo3(get)]
    next_cursor: Option<String>,
    #[pyo3(get)]
    non_numeric: u64,
}

#[pymethods]
impl ParsedPage {
    fn __len__(&self, py: Python<'_>) -> usize {
        self.ts.bind(py).len()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "ParsedPage(samples={}, points={}, non_numeric={}, has_more={}, next_cursor={:?})",
            self.ts.bind(py).len(),
            self.names.len(),
            self.non_numeric,
            if self.has_more { "True" } else { "False" },
            self.next_cursor
        )
    }
}

/// Parse one ACE `timeseries/paginated` page (or, with `paged=False`, an unpaginated
/// `points/{name}/timeseries` body) without a Python object per sample.
/// A malformed page raises `PageParseError`, whatever is wrong with it.
#[pyfunction]
#[pyo3(signature = (data, points = None, *, paged = true))]
fn parse_page(
    py: Python<'_>,
    data: &[u8],
    points: Option<Vec<String>>,
    paged: bool,
) -> PyResult<ParsedPage> {
    let paging = if paged {
        page::Paging::Paged
    } else {
        page::Paging::Unpaged
    };
    let parsed = run(py, Gil::Release, || {
        page::parse_body(data, points.as_deref(), paging)
    })?;
    Ok(ParsedPage {
        names: parsed.names,
        point_index: parsed.point_index.into_pyarray(py).unbind(),
        ts: parsed.ts.into_pyarray(py).unbind(),
        values: parsed.values.into_pyarray(py).unbind(),
        has_more: parsed.has_more,
        next_cursor: parsed.next_cursor,
        non_numeric: parsed.non_numeric,
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ParsedPage>()?;
    m.add_function(wrap_pyfunction!(parse_page, m)?)?;
    Ok(())
}
