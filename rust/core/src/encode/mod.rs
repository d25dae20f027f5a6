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

/// One statistic column of a [`Stats`] series: integers (counts) or floats.
#[derive(Debug, Clone, Copy)]
pub enum Column<'a> {
    Int(&'a [i64]),
    Float(&'a [f64]),
}

impl Column<'_> {
    pub fn len(&self) -> usize {
        match self {
            Column::Int(c) => c.len(),
            Column::Float(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i` as a float (an integer column converted).
    #[inline(always)]
    pub fn f64_at(&self, i: usize) -> f64 {
        match self {
            Column::Int(c) => c[i] as f64,
            Column::Float(c) => c[i],
        }
    }
}

/// A named statistic column of a [`Stats`] series.
#[derive(Debug, Clone, Copy)]
pub struct Stat<'a> {
    pub name: &'a str,
    pub column: Column<'a>,
}

/// Names a statistic column may not take: the row's own keys in some format (JSON's
/// `timestamp` and `partial`, MessagePack columns' `name`, `t` and `partialLast`, the
/// CSV and Arrow `time`, `point`, `value` and `partial`).
pub const RESERVED_STAT_NAMES: [&str; 8] = [
    "timestamp",
    "partial",
    "partialLast",
    "name",
    "t",
    "time",
    "point",
    "value",
];

/// Bucket statistics chosen by name: the columns a caller selected, in its order.
///
/// Every format writes exactly `columns` per bucket. CSV and Arrow add a `partial`
/// column (true on the running last bucket), JSON and MessagePack rows mark that
/// bucket `"partial": true` as for [`Aggregates`], MessagePack columns say
/// `partialLast`. Arrow's `value` (and the wide layout's column) is `columns[value]`.
#[derive(Debug, Clone, Copy)]
pub struct Stats<'a> {
    /// Bucket start, ms since the epoch.
    pub ts: &'a [i64],
    pub columns: &'a [Stat<'a>],
    /// Index into `columns` of the series' value (Arrow's `value` column).
    pub value: usize,
    /// Whether the last bucket is still running.
    pub partial_last: bool,
}

impl Stats<'_> {
    /// Whether bucket `i` is the running last one.
    #[inline]
    pub fn partial(&self, i: usize) -> bool {
        self.partial_last && i + 1 == self.ts.len()
    }

    /// The value column's row `i` as a float.
    #[inline]
    pub fn value_at(&self, i: usize) -> f64 {
        self.columns[self.value].column.f64_at(i)
    }

    /// Whether `other` has the same column names and kinds (one CSV header, one Arrow
    /// schema).
    pub fn same_columns(&self, other: &Stats<'_>) -> bool {
        self.columns.len() == other.columns.len()
            && self.columns.iter().zip(other.columns).all(|(a, b)| {
                a.name == b.name
                    && matches!(
                        (a.column, b.column),
                        (Column::Int(_), Column::Int(_)) | (Column::Float(_), Column::Float(_))
                    )
            })
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
    /// Bucket statistics chosen by name.
    Stats { name: &'a str, stats: Stats<'a> },
}

impl<'a> Series<'a> {
    pub fn name(&self) -> &'a str {
        match self {
            Series::Raw { name, .. } | Series::Agg { name, .. } | Series::Stats { name, .. } => {
                name
            }
        }
    }

    /// Number of rows (samples or buckets).
    pub fn len(&self) -> usize {
        match self {
            Series::Raw { ts, .. } => ts.len(),
            Series::Agg { aggs, .. } => aggs.ts.len(),
            Series::Stats { stats, .. } => stats.ts.len(),
        }
    }

    /// Whether the series holds buckets (aggregates or chosen statistics).
    pub fn is_bucketed(&self) -> bool {
        !matches!(self, Series::Raw { .. })
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
            Series::Stats { stats, .. } => {
                let bad = |why: String| {
                    Err(CoreError::Argument(format!(
                        "series {:?}: {why}",
                        self.name()
                    )))
                };
                if stats.columns.is_empty() {
                    return bad("a statistics series needs at least one column".into());
                }
                if stats.value >= stats.columns.len() {
                    return bad(format!(
                        "value column {} of {} columns",
                        stats.value,
                        stats.columns.len()
                    ));
                }
                for (i, stat) in stats.columns.iter().enumerate() {
                    let name = stat.name;
                    let plain = !name.is_empty()
                        && name.len() <= 32
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                    if !plain || RESERVED_STAT_NAMES.contains(&name) {
                        return bad(format!(
                            "column name {name:?} must be 1-32 of a-z, 0-9 and _, and none of {}",
                            RESERVED_STAT_NAMES.join(", ")
                        ));
                    }
                    if stats.columns[..i].iter().any(|s| s.name == name) {
                        return bad(format!("column {name:?} appears twice"));
                    }
                    if stat.column.len() != stats.ts.len() {
                        return mismatch(name, stat.column.len());
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

    fn stats<'a>(columns: &'a [Stat<'a>], partial_last: bool) -> Series<'a> {
        Series::Stats {
            name: "p",
            stats: Stats {
                ts: &[0, 60_000],
                columns,
                value: 0,
                partial_last,
            },
        }
    }

    #[test]
    fn stats_columns_are_checked() {
        let ok = [Stat {
            name: "max",
            column: Column::Float(&[1.0, 2.0]),
        }];
        assert!(stats(&ok, false).validate().is_ok());
        for (columns, want) in [
            (vec![], "at least one column"),
            (
                vec![Stat {
                    name: "time",
                    column: Column::Float(&[1.0, 2.0]),
                }],
                "none of",
            ),
            (
                vec![Stat {
                    name: "Max",
                    column: Column::Float(&[1.0, 2.0]),
                }],
                "a-z",
            ),
            (
                vec![
                    Stat {
                        name: "max",
                        column: Column::Float(&[1.0, 2.0]),
                    },
                    Stat {
                        name: "max",
                        column: Column::Int(&[1, 2]),
                    },
                ],
                "appears twice",
            ),
            (
                vec![Stat {
                    name: "count",
                    column: Column::Int(&[1]),
                }],
                "'count' has 1",
            ),
        ] {
            let err = stats(&columns, false).validate().unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn stats_rows_carry_their_columns_in_order() {
        let columns = [
            Stat {
                name: "delta",
                column: Column::Float(&[0.5, f64::NAN]),
            },
            Stat {
                name: "count",
                column: Column::Int(&[3, 0]),
            },
        ];
        let json = json::encode(&Meta::Map(vec![]), &[stats(&columns, true)]).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"metadata":{},"series":[{"name":"p","aggregations":[{"timestamp":0,"delta":0.5,"count":3},{"timestamp":60000,"delta":null,"count":0,"partial":true}]}]}"#
        );
        let text = csv::encode(&[stats(&columns, true)]).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "time,point,delta,count,partial\r\n\
             1970-01-01T00:00:00.000Z,p,0.5,3,false\r\n\
             1970-01-01T00:01:00.000Z,p,,0,true\r\n"
        );
        let other = [Stat {
            name: "delta",
            column: Column::Float(&[0.5, 1.0]),
        }];
        let err = csv::encode(&[stats(&columns, false), stats(&other, false)]).unwrap_err();
        assert!(err.to_string().contains("same columns"), "{err}");
    }
}
