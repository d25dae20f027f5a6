//! Response encoders that write bytes straight from columnar arrays.
//!
//! A response is a metadata tree ([`meta::Meta`]) plus a list of [`Series`], each
//! borrowing its arrays. Three wire formats:
//!
//! - JSON ([`json::encode`]),
//!   `{"metadata":{..},"series":[{"name":..,"data":[[ts,v],..]},..]}`; aggregate series
//!   carry `"aggregations":[{"timestamp":..,"avg":..,..},..]` instead of `"data"`.
//! - MessagePack ([`msgpack::encode`]), the same document ([`Layout::Rows`]), or with
//!   each array as a little-endian float64 `bin` field ([`Layout::Columns`]).
//! - CSV ([`csv::encode`]), long format, for exports.
//! - The ACE API's own page body ([`ace`]), for the compatibility route, as JSON or
//!   MessagePack.
//! - Arrow IPC streams ([`arrow::encode`]), per-series batches or one wide table.
//!
//! A document can also be written in parts, a head, one part per series and a tail
//! ([`parts`]), whose concatenation is byte for byte the whole document.
//!
//! Each encoder is one generic function over a sink, run twice: once to count the exact
//! output size, once to write into a buffer of that size (`encoded_len` / `encode_into`,
//! or `encode` for a `Vec`). A caller can thus write straight into its final buffer (the
//! binding writes into the Python `bytes` object), and nothing is allocated per sample.
//! `encode_into` takes the buffer as `&mut [MaybeUninit<u8>]` and returns `Ok` only
//! once every byte is written, so a fresh buffer need not be zeroed first.

pub mod ace;
pub mod arrow;
pub mod csv;
pub mod json;
pub mod meta;
pub mod msgpack;
mod num;
pub mod parts;
mod sink;

use crate::error::{CoreError, Result};

pub use meta::Meta;
pub use parts::Format;

/// The aggregate columns emitted for one series (the output of the aggregate kernel,
/// without its internal `m2`; `first` and `last` when given).
#[derive(Debug, Clone, Copy)]
pub struct Aggregates<'a> {
    /// Bucket start, ms since the epoch.
    pub ts: &'a [i64],
    pub count: &'a [i64],
    pub sum: &'a [f64],
    pub min: &'a [f64],
    pub max: &'a [f64],
    pub avg: &'a [f64],
    pub stddev: &'a [f64],
    /// Each bucket's first and last value (JSON and MessagePack write them when given).
    pub first_last: Option<(&'a [f64], &'a [f64])>,
    /// Whether the last bucket is still running (JSON and MessagePack rows mark it
    /// `"partial": true`).
    pub partial_last: bool,
}

impl Aggregates<'_> {
    /// Whether bucket `i` is the running last one.
    #[inline]
    pub fn partial(&self, i: usize) -> bool {
        self.partial_last && i + 1 == self.ts.len()
    }
}

/// One series of a response.
#[derive(Debug, Clone, Copy)]
pub enum Series<'a> {
    /// Raw samples: `ts` in ms since the epoch and `values` of the same length.
    Raw {
        name: &'a str,
        ts: &'a [i64],
        values: &'a [f64],
    },
    /// Bucketed aggregates.
    Agg { name: &'a str, aggs: Aggregates<'a> },
}

impl<'a> Series<'a> {
    pub fn name(&self) -> &'a str {
        match self {
            Series::Raw { name, .. } | Series::Agg { name, .. } => name,
        }
    }

    /// Number of rows (samples or buckets).
    pub fn len(&self) -> usize {
        match self {
            Series::Raw { ts, .. } => ts.len(),
            Series::Agg { aggs, .. } => aggs.ts.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Check that every array of the series has the same length.
    pub fn validate(&self) -> Result<()> {
        let mismatch = |what: &str, n: usize| {
            Err(CoreError::Length(format!(
                "series {:?}: 'ts' has {} elements but '{}' has {}",
                self.name(),
                self.len(),
                what,
                n
            )))
        };
        match self {
            Series::Raw { ts, values, .. } => {
                if values.len() != ts.len() {
                    return mismatch("values", values.len());
                }
            }
            Series::Agg { aggs, .. } => {
                let n = aggs.ts.len();
                if aggs.count.len() != n {
                    return mismatch("count", aggs.count.len());
                }
                for (what, col) in [
                    ("sum", aggs.sum),
                    ("min", aggs.min),
                    ("max", aggs.max),
                    ("avg", aggs.avg),
                    ("stddev", aggs.stddev),
                ] {
                    if col.len() != n {
                        return mismatch(what, col.len());
                    }
                }
                if let Some((first, last)) = aggs.first_last {
                    for (what, col) in [("first", first), ("last", last)] {
                        if col.len() != n {
                            return mismatch(what, col.len());
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Validate every series of a response.
pub(crate) fn validate_all(series: &[Series<'_>]) -> Result<()> {
    series.iter().try_for_each(Series::validate)
}

/// MessagePack document layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The JSON document shape, MessagePack-encoded.
    Rows,
    /// Each array as a little-endian float64 `bin` field.
    Columns,
}

impl Layout {
    pub const NAMES: [&'static str; 2] = ["rows", "columns"];

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "rows" => Ok(Layout::Rows),
            "columns" => Ok(Layout::Columns),
            other => Err(CoreError::Argument(format!(
                "layout must be one of 'rows', 'columns', got {other:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_parse() {
        assert_eq!(Layout::parse("rows").unwrap(), Layout::Rows);
        assert_eq!(Layout::parse("columns").unwrap(), Layout::Columns);
        let err = Layout::parse("cols").unwrap_err().to_string();
        assert!(
            err.contains("'rows', 'columns'") && err.contains("\"cols\""),
            "{err}"
        );
    }

    #[test]
    fn validate_names_series_and_column() {
        let s = Series::Raw {
            name: "p1",
            ts: &[1, 2],
            values: &[1.0],
        };
        let err = s.validate().unwrap_err().to_string();
        assert!(
            err.contains("\"p1\"") && err.contains("'values' has 1"),
            "{err}"
        );

        let aggs = Aggregates {
            ts: &[1],
            count: &[1],
            sum: &[1.0],
            min: &[1.0],
            max: &[1.0],
            avg: &[1.0],
            stddev: &[],
            first_last: None,
            partial_last: false,
        };
        let err = Series::Agg { name: "a", aggs }
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("'stddev' has 0"), "{err}");
    }
}
