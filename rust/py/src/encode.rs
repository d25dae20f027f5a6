//! `encode_json`, `encode_msgpack`, `encode_csv`: response bodies written from arrays;
//! `encode_head`, `encode_part`, `encode_tail`: the same documents written in parts.
//!
//! Every Python input is read first, with the GIL held: series into borrowed NumPy
//! arrays, metadata into an owned [`Meta`] tree. The encoders then run over plain slices
//! with the GIL released: one pass measures the exact output size, the `bytes` object is
//! allocated once (uninitialised, not zeroed), and a second pass writes the document
//! straight into it (no intermediate buffer, no copy). Every bad input names the series, key or metadata path:
//! an argument of the wrong type (not a list, not an array of the right dtype, a metadata
//! value of an unsupported type...) raises `TypeError`, a bad value (arrays of different
//! lengths, a missing aggregate key, an integer beyond 64 bits...) `ValueError`.

use acechart_core::encode::{
    self, meta::MAX_DEPTH, parts, Aggregates, Column, Format, Layout, Meta, Series, Stat, Stats,
};
use std::mem::MaybeUninit;

use numpy::{Element, PyReadonlyArray1};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::{run, to_py, type_error, value_error, Gil};

/// Arrays of one series, borrowed from Python for the duration of a call.
pub(crate) enum Held<'py> {
    Raw {
        name: String,
        ts: PyReadonlyArray1<'py, i64>,
        values: PyReadonlyArray1<'py, f64>,
    },
    Agg {
        name: String,
        ts: PyReadonlyArray1<'py, i64>,
        count: PyReadonlyArray1<'py, i64>,
        sum: PyReadonlyArray1<'py, f64>,
        min: PyReadonlyArray1<'py, f64>,
        max: PyReadonlyArray1<'py, f64>,
        avg: PyReadonlyArray1<'py, f64>,
        stddev: PyReadonlyArray1<'py, f64>,
        first_last: Option<(PyReadonlyArray1<'py, f64>, PyReadonlyArray1<'py, f64>)>,
        partial_last: bool,
    },
    /// Chosen statistics: `{"ts", "columns": names, name: array.., "value"?, "partial"?}`.
    Stats {
        name: String,
        ts: PyReadonlyArray1<'py, i64>,
        columns: Vec<(String, HeldColumn<'py>)>,
        value: usize,
        partial_last: bool,
    },
}

/// One column of a statistics series: int64 (counts) or float64.
pub(crate) enum HeldColumn<'py> {
    Int(PyReadonlyArray1<'py, i64>),
    Float(PyReadonlyArray1<'py, f64>),
}

/// The keys of an aggregate dict that are encoded (others, like `m2`, are ignored;
/// `first` and `last` are written when both are present, and a true `partial` marks
/// the last bucket as still running).
const AGG_KEYS: [&str; 7] = ["ts", "count", "sum", "min", "max", "avg", "stddev"];

/// `int`, `numpy.int64`, `datetime.datetime`: the name a user would write.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    let ty = obj.get_type();
    let qualname = ty
        .qualname()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "?".into());
    match ty.module().map(|s| s.to_string()) {
        Ok(module) if module != "builtins" => format!("{module}.{qualname}"),
        _ => qualname,
    }
}

/// What an argument that is not the expected array actually is.
fn describe_array(obj: &Bound<'_, PyAny>) -> String {
    match (obj.getattr("ndim"), obj.getattr("dtype")) {
        (Ok(ndim), Ok(dtype)) => format!(
            "{} of {ndim} dimension(s) and dtype {dtype}",
            type_name(obj)
        ),
        _ => type_name(obj),
    }
}

fn array<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    series: &str,
    key: &str,
    dtype: &str,
) -> PyResult<PyReadonlyArray1<'py, T>> {
    obj.extract::<PyReadonlyArray1<'py, T>>().map_err(|_| {
        type_error(format!(
            "series {series:?}: {key:?} must be a 1-D {dtype} numpy array, got {}",
            describe_array(obj)
        ))
    })
}

fn slice<'a, T: Element>(
    arr: &'a PyReadonlyArray1<'_, T>,
    series: &str,
    key: &str,
) -> PyResult<&'a [T]> {
    arr.as_slice().map_err(|_| {
        type_error(format!(
            "series {series:?}: {key:?} is not a contiguous array (use numpy.ascontiguousarray)"
        ))
    })
}

impl<'py> Held<'py> {
    fn from_item(index: usize, item: &Bound<'py, PyAny>) -> PyResult<Self> {
        let parts: Vec<Bound<'py, PyAny>> = if let Ok(t) = item.cast::<PyTuple>() {
            t.iter().collect()
        } else if let Ok(l) = item.cast::<PyList>() {
            l.iter().collect()
        } else {
            vec![]
        };
        let shape_error = || {
            type_error(format!(
                "series[{index}] must be a tuple (name, ts, values) or (name, aggregates: dict), \
                 got {}",
                type_name(item)
            ))
        };
        if !(parts.len() == 2 || parts.len() == 3) {
            return Err(shape_error());
        }
        let name = match parts[0].cast::<PyString>() {
            Ok(s) => s
                .to_str()
                .map_err(|e| value_error(format!("series[{index}]: name is not valid UTF-8: {e}")))?
                .to_owned(),
            Err(_) => {
                return Err(type_error(format!(
                    "series[{index}]: name must be str, got {}",
                    type_name(&parts[0])
                )))
            }
        };
        if parts.len() == 3 {
            let ts = array(&parts[1], &name, "ts", "int64")?;
            let values = array(&parts[2], &name, "values", "float64")?;
            return Ok(Held::Raw { name, ts, values });
        }
        let Ok(d) = parts[1].cast::<PyDict>() else {
            return Err(shape_error());
        };
        let partial_last = match d.get_item("partial")? {
            Some(flag) => flag.extract::<bool>().map_err(|_| {
                type_error(format!(
                    "series {name:?}: \"partial\" must be a bool, got {}",
                    type_name(&flag)
                ))
            })?,
            None => false,
        };
        if let Some(names) = d.get_item("columns")? {
            return Self::stats(name, d, &names, partial_last);
        }
        let mut missing = Vec::new();
        let mut cols = Vec::with_capacity(AGG_KEYS.len());
        for key in AGG_KEYS {
            match d.get_item(key)? {
                Some(v) => cols.push(v),
                None => missing.push(format!("{key:?}")),
            }
        }
        if !missing.is_empty() {
            return Err(value_error(format!(
                "series {name:?}: aggregates dict is missing key(s) {} (expected the output of \
                 aggregate())",
                missing.join(", ")
            )));
        }
        let f = |i: usize| array::<f64>(&cols[i], &name, AGG_KEYS[i], "float64");
        let first_last = match (d.get_item("first")?, d.get_item("last")?) {
            (Some(first), Some(last)) => Some((
                array::<f64>(&first, &name, "first", "float64")?,
                array::<f64>(&last, &name, "last", "float64")?,
            )),
            _ => None,
        };
        Ok(Held::Agg {
            first_last,
            partial_last,
            ts: array(&cols[0], &name, "ts", "int64")?,
            count: array(&cols[1], &name, "count", "int64")?,
            sum: f(2)?,
            min: f(3)?,
            max: f(4)?,
            avg: f(5)?,
            stddev: f(6)?,
            name,
        })
    }

    /// A statistics series from its dict: `columns` names the arrays to write, in order
    /// (each int64 or float64); `value` names the value column (default: the first).
    fn stats(
        name: String,
        d: &Bound<'py, PyDict>,
        names: &Bound<'py, PyAny>,
        partial_last: bool,
    ) -> PyResult<Self> {
        let names: Vec<String> = if names.cast::<PyString>().is_ok() {
            return Err(type_error(format!(
                "series {name:?}: \"columns\" must be a list or tuple of names, got str"
            )));
        } else {
            names.extract().map_err(|_| {
                type_error(format!(
                    "series {name:?}: \"columns\" must be a list or tuple of names, got {}",
                    type_name(names)
                ))
            })?
        };
        let ts = match d.get_item("ts")? {
            Some(ts) => array(&ts, &name, "ts", "int64")?,
            None => {
                return Err(value_error(format!(
                    "series {name:?}: statistics dict is missing key \"ts\""
                )))
            }
        };
        let mut columns = Vec::with_capacity(names.len());
        for key in names {
            let Some(obj) = d.get_item(&key)? else {
                return Err(value_error(format!(
                    "series {name:?}: statistics dict names column {key:?} but has no such key"
                )));
            };
            let column = if let Ok(ints) = obj.extract::<PyReadonlyArray1<'py, i64>>() {
                HeldColumn::Int(ints)
            } else {
                HeldColumn::Float(obj.extract::<PyReadonlyArray1<'py, f64>>().map_err(|_| {
                    type_error(format!(
                        "series {name:?}: {key:?} must be a 1-D int64 or float64 numpy array, \
                         got {}",
                        describe_array(&obj)
                    ))
                })?)
            };
            columns.push((key, column));
        }
        let value = match d.get_item("value")? {
            None => 0,
            Some(v) => {
                let wanted: String = v.extract().map_err(|_| {
                    type_error(format!(
                        "series {name:?}: \"value\" must be a column name, got {}",
                        type_name(&v)
                    ))
                })?;
                columns
                    .iter()
                    .position(|(k, _)| *k == wanted)
                    .ok_or_else(|| {
                        value_error(format!(
                            "series {name:?}: \"value\" names {wanted:?}, which is not a column"
                        ))
                    })?
            }
        };
        Ok(Held::Stats {
            name,
            ts,
            columns,
            value,
            partial_last,
        })
    }

    /// The column slices of a statistics series (none for the others): what
    /// [`Held::view`] borrows.
    pub(crate) fn stat_columns(&self) -> PyResult<Vec<Stat<'_>>> {
        let Held::Stats { name, columns, .. } = self else {
            return Ok(Vec::new());
        };
        columns
            .iter()
            .map(|(key, col)| {
                Ok(Stat {
                    name: key,
                    column: match col {
                        HeldColumn::Int(a) => Column::Int(slice(a, name, key)?),
                        HeldColumn::Float(a) => Column::Float(slice(a, name, key)?),
                    },
                })
            })
            .collect()
    }

    /// The series over borrowed slices; `stats` is this series' `stat_columns()`.
    pub(crate) fn view<'a>(&'a self, stats: &'a [Stat<'a>]) -> PyResult<Series<'a>> {
        Ok(match self {
            Held::Stats {
                name,
                ts,
                value,
                partial_last,
                ..
            } => Series::Stats {
                name,
                stats: Stats {
                    ts: slice(ts, name, "ts")?,
                    columns: stats,
                    value: *value,
                    partial_last: *partial_last,
                },
            },
            Held::Raw { name, ts, values } => Series::Raw {
                name,
                ts: slice(ts, name, "ts")?,
                values: slice(values, name, "values")?,
            },
            Held::Agg {
                name,
                ts,
                count,
                sum,
                min,
                max,
                avg,
                stddev,
                first_last,
                partial_last,
            } => Series::Agg {
                name,
                aggs: Aggregates {
                    ts: slice(ts, name, "ts")?,
                    count: slice(count, name, "count")?,
                    sum: slice(sum, name, "sum")?,
                    min: slice(min, name, "min")?,
                    max: slice(max, name, "max")?,
                    avg: slice(avg, name, "avg")?,
                    stddev: slice(stddev, name, "stddev")?,
                    first_last: match first_last {
                        Some((first, last)) => {
                            Some((slice(first, name, "first")?, slice(last, name, "last")?))
                        }
                        None => None,
                    },
                    partial_last: *partial_last,
                },
            },
        })
    }
}

/// The column slices of every held series (see [`Held::stat_columns`]).
pub(crate) fn columns_of<'a>(held: &'a [Held<'_>]) -> PyResult<Vec<Vec<Stat<'a>>>> {
    held.iter().map(Held::stat_columns).collect()
}

/// Every held series over borrowed slices; `columns` is [`columns_of`] of `held`.
pub(crate) fn views<'a>(
    held: &'a [Held<'_>],
    columns: &'a [Vec<Stat<'a>>],
) -> PyResult<Vec<Series<'a>>> {
    held.iter().zip(columns).map(|(h, c)| h.view(c)).collect()
}

/// Borrow the arrays of every series.
pub(crate) fn hold<'py>(series: &Bound<'py, PyAny>) -> PyResult<Vec<Held<'py>>> {
    let items: Vec<Bound<'py, PyAny>> = if let Ok(l) = series.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = series.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return Err(type_error(format!(
            "series must be a list of (name, ts, values) or (name, aggregates) tuples, got {}",
            type_name(series)
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| Held::from_item(i, item))
        .collect()
}

/// A metadata conversion failure, with the path collected on the way back up.
struct MetaError {
    /// Innermost segment first.
    path: Vec<String>,
    message: String,
    /// A value of an unsupported type (`TypeError`) rather than a bad value.
    wrong_type: bool,
}

impl MetaError {
    /// A bad value (`ValueError`).
    fn new(message: String) -> Self {
        MetaError {
            path: Vec::new(),
            message,
            wrong_type: false,
        }
    }

    /// A value of a type metadata cannot hold (`TypeError`).
    fn wrong_type(message: String) -> Self {
        MetaError {
            wrong_type: true,
            ..MetaError::new(message)
        }
    }

    fn at(mut self, segment: String) -> Self {
        self.path.push(segment);
        self
    }

    fn into_py(self) -> PyErr {
        let path: String = self.path.into_iter().rev().collect();
        let message = format!("metadata{path}: {}", self.message);
        if self.wrong_type {
            type_error(message)
        } else {
            value_error(message)
        }
    }
}

/// Convert one metadata value; `level` is the container depth of `obj`'s parent.
fn to_meta(obj: &Bound<'_, PyAny>, level: usize) -> Result<Meta, MetaError> {
    if obj.is_none() {
        return Ok(Meta::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Meta::Bool(b.is_true()));
    }
    if obj.cast::<PyInt>().is_ok() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Meta::Int(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Meta::UInt(u));
        }
        return Err(MetaError::new(format!(
            "integer {obj} does not fit in 64 bits"
        )));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Meta::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return s
            .to_str()
            .map(|s| Meta::Str(s.to_owned()))
            .map_err(|e| MetaError::new(format!("string is not valid UTF-8: {e}")));
    }
    let is_dict = obj.cast::<PyDict>().is_ok();
    let is_seq = obj.cast::<PyList>().is_ok() || obj.cast::<PyTuple>().is_ok();
    if (is_dict || is_seq) && level >= MAX_DEPTH {
        return Err(MetaError::new(format!(
            "nested deeper than {MAX_DEPTH} levels"
        )));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut items = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            let Ok(ks) = k.cast::<PyString>() else {
                return Err(MetaError::wrong_type(format!(
                    "keys must be str, got {} key {}",
                    type_name(&k),
                    k.repr().map(|r| r.to_string()).unwrap_or_default()
                )));
            };
            let key = ks
                .to_str()
                .map_err(|e| MetaError::new(format!("key is not valid UTF-8: {e}")))?
                .to_owned();
            let value = to_meta(&v, level + 1).map_err(|e| e.at(format!("[{key:?}]")))?;
            items.push((key, value));
        }
        return Ok(Meta::Map(items));
    }
    if is_seq {
        let items: Vec<Bound<'_, PyAny>> = match obj.cast::<PyList>() {
            Ok(l) => l.iter().collect(),
            Err(_) => obj
                .cast::<PyTuple>()
                .map(|t| t.iter().collect())
                .unwrap_or_default(),
        };
        return items
            .iter()
            .enumerate()
            .map(|(i, v)| to_meta(v, level + 1).map_err(|e| e.at(format!("[{i}]"))))
            .collect::<Result<Vec<_>, _>>()
            .map(Meta::List);
    }
    Err(MetaError::wrong_type(format!(
        "unsupported type {} (allowed: dict, list, tuple, str, int, float, bool, None)",
        type_name(obj)
    )))
}

pub(crate) fn metadata(obj: &Bound<'_, PyAny>) -> PyResult<Meta> {
    if obj.cast::<PyDict>().is_err() {
        return Err(type_error(format!(
            "metadata must be a dict, got {}",
            type_name(obj)
        )));
    }
    to_meta(obj, 0).map_err(MetaError::into_py)
}

/// Documents with fewer rows are encoded without releasing the GIL: for them the
/// release costs more than it saves, and handing the GIL to another thread could make
/// this call wait for a switch interval.
pub(crate) const DETACH_MIN_ROWS: usize = 16 * 1024;

/// A new `bytes` object of `len` bytes, filled by `fill` (with the GIL released if
/// `gil` says so).
///
/// The buffer is not zeroed: `fill` gets it as `&mut [MaybeUninit<u8>]`. On `Err` the
/// object is dropped unseen. Skipping the zeroing saves a pass over the whole body
/// (552 MB for a year of 50 points in JSON).
///
/// # Safety
///
/// `fill` must return `Ok` only when it has written every byte of the buffer, as each
/// encoder's `encode_into` does (it checks that its writes ended exactly at the end).
pub(crate) unsafe fn bytes_with<'py, F>(
    py: Python<'py>,
    len: usize,
    gil: Gil,
    fill: F,
) -> PyResult<Bound<'py, PyBytes>>
where
    F: Send + FnOnce(&mut [MaybeUninit<u8>]) -> acechart_core::error::Result<()>,
{
    let size = ffi::Py_ssize_t::try_from(len)
        .map_err(|_| value_error(format!("output of {len} bytes is too large")))?;
    // SAFETY: `PyBytes_FromStringAndSize(NULL, size)` returns a new bytes object with an
    // uninitialised buffer of `size` bytes (or NULL with an exception set, which becomes
    // `Err`). `PyBytes_AsString` on it is its buffer. No other code can reach the object
    // before we return it, so the buffer may be written without the GIL, and the `bytes`
    // handle keeps it alive for the whole call. The slice is `MaybeUninit<u8>`, which
    // holds uninitialised bytes soundly; nothing reads them. The object reaches Python
    // only when `fill` returned `Ok`, which by its contract means every byte is written.
    unsafe {
        let ptr = ffi::PyBytes_FromStringAndSize(std::ptr::null(), size);
        let bytes = Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked::<PyBytes>();
        let addr = ffi::PyBytes_AsString(ptr) as usize;
        run(py, gil, || {
            prefault(addr, len);
            let dst = addr as *mut MaybeUninit<u8>;
            fill(std::slice::from_raw_parts_mut(dst, len))
        })?;
        Ok(bytes)
    }
}

/// Outputs from this size on are pre-faulted ([`prefault`]). Smaller ones usually come
/// from memory the allocator already holds (glibc keeps freed blocks up to 32 MiB).
const PREFAULT_MIN: usize = 8 << 20;

/// Map the pages of a fresh output buffer in one call (Linux's `MADV_POPULATE_WRITE`,
/// 5.14+) instead of one page fault per 4 KiB as the encoder first writes them: a
/// year of 50 points in JSON is 552 MB, 135 k faults, whose entry and exit cost about
/// 5% of the encode. The kernel still zeroes each page; that cannot be avoided for
/// fresh memory. Only an optimisation: an older kernel's error is ignored, and the
/// pages then fault in as the encoder writes them.
#[cfg(target_os = "linux")]
fn prefault(addr: usize, len: usize) {
    const PAGE: usize = 4096;
    if len < PREFAULT_MIN {
        return;
    }
    let start = addr.next_multiple_of(PAGE);
    let end = (addr + len) / PAGE * PAGE;
    if end > start {
        // SAFETY: `[start, end)` is page-aligned and lies inside the buffer of `len`
        // bytes at `addr`, which the caller owns and nothing else uses. The advice maps
        // pages writable as a write fault would; it never changes their contents or
        // their mapping, so nothing can observe it but the time it takes.
        unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                end - start,
                libc::MADV_POPULATE_WRITE,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn prefault(_addr: usize, _len: usize) {}

/// Borrow every series, size the output exactly, allocate the `bytes` object once and
/// write the document straight into it (both passes without the GIL for large inputs).
///
/// # Safety
///
/// `write` must return `Ok` only when it has written every byte of its buffer (as the
/// encoders' `encode_into` functions do).
unsafe fn document<'py, L, W>(
    py: Python<'py>,
    series: &Bound<'py, PyAny>,
    len: L,
    write: W,
) -> PyResult<Bound<'py, PyBytes>>
where
    L: Send + FnOnce(&[Series<'_>]) -> acechart_core::error::Result<usize>,
    W: Send + FnOnce(&[Series<'_>], &mut [MaybeUninit<u8>]) -> acechart_core::error::Result<()>,
{
    let held = hold(series)?;
    let columns = columns_of(&held)?;
    let views = views(&held, &columns)?;
    let gil = Gil::release_if(views.iter().map(Series::len).sum::<usize>() >= DETACH_MIN_ROWS);
    let n = run(py, gil, || len(&views))?;
    // SAFETY: `write` writes every byte of its buffer when it returns `Ok` (this
    // function's own contract).
    unsafe { bytes_with(py, n, gil, |dst| write(&views, dst)) }
}

/// The response document as compact JSON:
/// `{"metadata":{..},"series":[{"name":..,"data":[[ts,v],..]} | {"name":..,"aggregations":[..]}]}`.
#[pyfunction]
fn encode_json<'py>(
    py: Python<'py>,
    metadata: &Bound<'py, PyAny>,
    series: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let meta = self::metadata(metadata)?;
    // SAFETY: `encode_into` writes every byte of its buffer when it returns `Ok`.
    unsafe {
        document(
            py,
            series,
            |views| encode::json::encoded_len(&meta, views),
            |views, out| encode::json::encode_into(&meta, views, out),
        )
    }
}

/// The response document as MessagePack, `layout="rows"` (the JSON shape) or
/// `layout="columns"` (little-endian float64 `bin` arrays).
#[pyfunction]
#[pyo3(signature = (metadata, series, layout = "rows"))]
fn encode_msgpack<'py>(
    py: Python<'py>,
    metadata: &Bound<'py, PyAny>,
    series: &Bound<'py, PyAny>,
    layout: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let layout = Layout::parse(layout).map_err(to_py)?;
    let meta = self::metadata(metadata)?;
    // SAFETY: `encode_into` writes every byte of its buffer when it returns `Ok`.
    unsafe {
        document(
            py,
            series,
            |views| encode::msgpack::encoded_len(&meta, views, layout),
            |views, out| encode::msgpack::encode_into(&meta, views, layout, out),
        )
    }
}

/// Long-format CSV: `time,point,value` (raw series) or
/// `time,point,count,sum,min,max,avg,stddev` (aggregate series).
#[pyfunction]
fn encode_csv<'py>(py: Python<'py>, series: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    // SAFETY: `encode_into` writes every byte of its buffer when it returns `Ok`.
    unsafe {
        document(
            py,
            series,
            encode::csv::encoded_len,
            encode::csv::encode_into,
        )
    }
}

fn format_arg(name: &str) -> PyResult<Format> {
    Format::parse(name).map_err(to_py)
}

/// A count or position argument as `usize`; negative is a `ValueError`.
fn non_negative(arg: &str, value: i64) -> PyResult<usize> {
    usize::try_from(value)
        .map_err(|_| value_error(format!("{arg} must be a non-negative integer, got {value}")))
}

/// Everything of a document before its first series: for JSON up to the opening `[` of
/// the series list, for MessagePack up to and including the header of an array of
/// `n_series`, for CSV the header line (aggregate columns when `aggregated` and
/// `n_series > 0`; the named `columns` and `partial` for series of chosen statistics). `layout` is validated for every format; the head is the same for
/// both MessagePack layouts.
#[pyfunction]
#[pyo3(signature = (format, metadata, n_series, layout = "rows", *, aggregated = false, columns = None))]
fn encode_head<'py>(
    py: Python<'py>,
    format: &str,
    metadata: &Bound<'py, PyAny>,
    n_series: i64,
    layout: &str,
    aggregated: bool,
    columns: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let format = format_arg(format)?;
    Layout::parse(layout).map_err(to_py)?;
    let n_series = non_negative("n_series", n_series)?;
    let meta = self::metadata(metadata)?;
    let refs: Option<Vec<&str>> = columns
        .as_ref()
        .map(|n| n.iter().map(String::as_str).collect());
    let head = parts::Head {
        metadata: &meta,
        n_series,
        aggregated: aggregated || refs.is_some(),
        columns: refs.as_deref(),
    };
    // A head holds metadata only: never worth releasing the GIL for.
    let n = run(py, Gil::Keep, || parts::head_len(format, &head))?;
    // SAFETY: `head_into` writes every byte of its buffer when it returns `Ok`.
    unsafe { bytes_with(py, n, Gil::Keep, |out| parts::head_into(format, &head, out)) }
}

/// One series (`(name, ts, values)` or `(name, aggregates)`) as it appears at position
/// `index` of the document, with the separator that precedes it (a JSON comma when
/// `index > 0`). `layout` is MessagePack's.
#[pyfunction]
#[pyo3(signature = (format, item, index, layout = "rows"))]
fn encode_part<'py>(
    py: Python<'py>,
    format: &str,
    item: &Bound<'py, PyAny>,
    index: i64,
    layout: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let format = format_arg(format)?;
    let layout = Layout::parse(layout).map_err(to_py)?;
    let index = non_negative("index", index)?;
    let held = Held::from_item(index, item)?;
    let columns = held.stat_columns()?;
    let view = held.view(&columns)?;
    let gil = Gil::release_if(view.len() >= DETACH_MIN_ROWS);
    let n = run(py, gil, || parts::part_len(format, &view, index, layout))?;
    // SAFETY: `part_into` writes every byte of its buffer when it returns `Ok`.
    unsafe {
        bytes_with(py, n, gil, |out| {
            parts::part_into(format, &view, index, layout, out)
        })
    }
}

/// Everything of a document after its last series (`b"]}"` for JSON, nothing else).
#[pyfunction]
fn encode_tail<'py>(py: Python<'py>, format: &str) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, parts::tail(format_arg(format)?)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_json, m)?)?;
    m.add_function(wrap_pyfunction!(encode_msgpack, m)?)?;
    m.add_function(wrap_pyfunction!(encode_csv, m)?)?;
    m.add_function(wrap_pyfunction!(encode_head, m)?)?;
    m.add_function(wrap_pyfunction!(encode_part, m)?)?;
    m.add_function(wrap_pyfunction!(encode_tail, m)?)?;
    Ok(())
}
