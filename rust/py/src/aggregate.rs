use acechart_core::aggregate::{self as agg, Aggregates};
use acechart_core::meter;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{run, type_error, value_error, Gil};

/// The aggregate dict the Python side sees: one array per statistic.
pub(crate) fn to_dict(py: Python<'_>, a: Aggregates) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("ts", a.ts.into_pyarray(py))?;
    d.set_item("count", a.count.into_pyarray(py))?;
    d.set_item("sum", a.sum.into_pyarray(py))?;
    d.set_item("min", a.min.into_pyarray(py))?;
    d.set_item("max", a.max.into_pyarray(py))?;
    d.set_item("avg", a.avg.into_pyarray(py))?;
    d.set_item("stddev", a.stddev.into_pyarray(py))?;
    d.set_item("m2", a.m2.into_pyarray(py))?;
    d.set_item("first", a.first.into_pyarray(py))?;
    d.set_item("last", a.last.into_pyarray(py))?;
    Ok(d)
}

/// One column of the aggregate dict passed as `arg`: missing is a `ValueError`, not a
/// 1-D array of `dtype` a `TypeError`.
fn column<'py, T: numpy::Element + Copy>(
    d: &Bound<'py, PyDict>,
    arg: &str,
    key: &str,
    dtype: &str,
) -> PyResult<Vec<T>> {
    let item = d.get_item(key)?.ok_or_else(|| {
        value_error(format!(
            "{arg}: aggregate dict is missing {key:?} (expected the output of aggregate())"
        ))
    })?;
    let arr: PyReadonlyArray1<'py, T> = item.extract().map_err(|_| {
        type_error(format!(
            "{arg}: aggregate column {key:?} must be a 1-D {dtype} numpy array"
        ))
    })?;
    Ok(arr.as_slice()?.to_vec())
}

/// The roll-up state of an aggregate dict (avg and stddev are derived, not read).
pub(crate) fn from_dict(d: &Bound<'_, PyDict>, arg: &str) -> PyResult<Aggregates> {
    let (i, f) = ("int64", "float64");
    let mut a = Aggregates {
        ts: column(d, arg, "ts", i)?,
        count: column(d, arg, "count", i)?,
        sum: column(d, arg, "sum", f)?,
        min: column(d, arg, "min", f)?,
        max: column(d, arg, "max", f)?,
        m2: column(d, arg, "m2", f)?,
        first: column(d, arg, "first", f)?,
        last: column(d, arg, "last", f)?,
        ..Aggregates::default()
    };
    a.avg = vec![0.0; a.ts.len()];
    a.stddev = vec![0.0; a.ts.len()];
    Ok(a)
}

/// Bucket statistics of one time-sorted series: count, sum, min, max, avg,
/// stddev (ddof=1) plus the mergeable state m2, first, last.
#[pyfunction]
#[pyo3(signature = (ts, values, bucket_ms, origin_ms = 0))]
fn aggregate<'py>(
    py: Python<'py>,
    ts: PyReadonlyArray1<'py, i64>,
    values: PyReadonlyArray1<'py, f64>,
    bucket_ms: i64,
    origin_ms: i64,
) -> PyResult<Bound<'py, PyDict>> {
    let (t, v) = (ts.as_slice()?, values.as_slice()?);
    let out = run(py, Gil::Release, || {
        agg::aggregate(t, v, bucket_ms, origin_ms)
    })?;
    to_dict(py, out)
}

/// `aggregate` of every `(ts, values)` of `series` in one call, on every core with
/// the GIL released; a list of aggregate dicts in the order of `series`.
#[pyfunction]
#[pyo3(signature = (series, bucket_ms, origin_ms = 0))]
fn aggregate_many<'py>(
    py: Python<'py>,
    series: &Bound<'py, PyAny>,
    bucket_ms: i64,
    origin_ms: i64,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    type Pair<'py> = (PyReadonlyArray1<'py, i64>, PyReadonlyArray1<'py, f64>);
    let held = series
        .try_iter()
        .map_err(|_| type_error("series must be a sequence of (ts, values) pairs".into()))?
        .enumerate()
        .map(|(i, item)| {
            item?.extract::<Pair<'py>>().map_err(|_| {
                type_error(format!(
                    "series[{i}] must be a (ts, values) pair of 1-D int64 / float64 numpy arrays"
                ))
            })
        })
        .collect::<PyResult<Vec<Pair<'py>>>>()?;
    let slices = held
        .iter()
        .enumerate()
        .map(|(i, (t, v))| match (t.as_slice(), v.as_slice()) {
            (Ok(t), Ok(v)) => Ok((t, v)),
            _ => Err(type_error(format!(
                "series[{i}]: ts and values must be contiguous arrays (use numpy.ascontiguousarray)"
            ))),
        })
        .collect::<PyResult<Vec<(&[i64], &[f64])>>>()?;
    let out = run(py, Gil::Release, || {
        agg::aggregate_many(&slices, bucket_ms, origin_ms)
    })?;
    out.into_iter().map(|a| to_dict(py, a)).collect()
}

/// Roll aggregates up into coarser buckets (1min -> 5min -> 1hr ...).
#[pyfunction]
#[pyo3(signature = (aggregates, bucket_ms, origin_ms = 0))]
fn rollup_aggregates<'py>(
    py: Python<'py>,
    aggregates: &Bound<'py, PyDict>,
    bucket_ms: i64,
    origin_ms: i64,
) -> PyResult<Bound<'py, PyDict>> {
    let a = from_dict(aggregates, "aggregates")?;
    let out = run(py, Gil::Release, || agg::rollup(&a, bucket_ms, origin_ms))?;
    to_dict(py, out)
}

/// Merge aggregates into the buckets `[edges[k], edges[k + 1])` (local days, weeks,
/// months): exact when every edge lies on the fine grid.
#[pyfunction]
fn rollup_edges<'py>(
    py: Python<'py>,
    aggregates: &Bound<'py, PyDict>,
    edges: PyReadonlyArray1<'py, i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let a = from_dict(aggregates, "aggregates")?;
    let e = edges.as_slice()?;
    let out = run(py, Gil::Release, || agg::rollup_edges(&a, e))?;
    to_dict(py, out)
}

/// Bucket starts and one value per bucket, as NumPy arrays.
type BucketValues<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f64>>);

/// Consumption of a cumulative meter per bucket of `edges`, reset-aware.
#[pyfunction]
fn meter_delta<'py>(
    py: Python<'py>,
    ts: PyReadonlyArray1<'py, i64>,
    values: PyReadonlyArray1<'py, f64>,
    edges: PyReadonlyArray1<'py, i64>,
    reset_threshold: f64,
) -> PyResult<BucketValues<'py>> {
    let (t, v, e) = (ts.as_slice()?, values.as_slice()?, edges.as_slice()?);
    let (bt, bv) = run(py, Gil::Release, || meter::delta(t, v, e, reset_threshold))?;
    Ok((bt.into_pyarray(py), bv.into_pyarray(py)))
}

/// Time-weighted average and on-time per bucket of `edges`, values held until the
/// next sample (the last one until `until_ms`).
#[pyfunction]
fn held_values<'py>(
    py: Python<'py>,
    ts: PyReadonlyArray1<'py, i64>,
    values: PyReadonlyArray1<'py, f64>,
    edges: PyReadonlyArray1<'py, i64>,
    until_ms: i64,
) -> PyResult<Bound<'py, PyDict>> {
    let (t, v, e) = (ts.as_slice()?, values.as_slice()?, edges.as_slice()?);
    let h = run(py, Gil::Release, || meter::held(t, v, e, until_ms))?;
    let d = PyDict::new(py);
    d.set_item("ts", h.ts.into_pyarray(py))?;
    d.set_item("twa", h.twa.into_pyarray(py))?;
    d.set_item("on_time", h.on_s.into_pyarray(py))?;
    d.set_item("known_ms", h.known_ms.into_pyarray(py))?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(rollup_edges, m)?)?;
    m.add_function(wrap_pyfunction!(meter_delta, m)?)?;
    m.add_function(wrap_pyfunction!(held_values, m)?)?;
    m.add_function(wrap_pyfunction!(aggregate, m)?)?;
    m.add_function(wrap_pyfunction!(aggregate_many, m)?)?;
    m.add_function(wrap_pyfunction!(rollup_aggregates, m)?)?;
    Ok(())
}
