//! Arrow IPC **streams** (`application/vnd.apache.arrow.stream`), written from the
//! arrays with the `arrow-ipc` writer.
//!
//! A stream has one schema for all its record batches. Two layouts:
//!
//! - [`ArrowLayout::Series`]: one record batch per series, in list order, with the
//!   columns `point` (dictionary-encoded utf8, int32 keys, one dictionary of every name
//!   sent once), `time` (`timestamp[ms, tz]`) and `value` (float64); aggregate series
//!   add `count` (int64), `sum`, `min`, `max`, `avg`, `stddev` and, when they carry
//!   them, `first` and `last` (float64), and their `value` is `avg`; series of chosen
//!   statistics add their columns (int64 or float64) and `partial` (bool, true on the
//!   running last bucket), their `value` being the chosen value column. Nothing is null:
//!   a NaN value stays NaN. A reader that concatenates the batches keeps each row's point.
//! - [`ArrowLayout::Wide`]: one record batch, `time` (the sorted union of every series'
//!   times: an outer join) and one nullable float64 column per series, named by the
//!   point (aggregates give their `avg`). A series without a sample at a time is null
//!   there (validity bitmap); a NaN sample stays NaN.
//!
//! The schema metadata holds the document's metadata as JSON under
//! [`METADATA_KEY`], and under [`SERIES_KEY`] the series in batch (or column) order as a
//! JSON list of `{"name": .., "rows": ..}`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMillisecondArray,
};
use arrow_buffer::{BooleanBufferBuilder, NullBuffer, ScalarBuffer};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use super::ace::first_unsorted;
use super::meta::Meta;
use super::sink::{Counter, Out};
use super::{json, validate_all, Aggregates, Column, Series, Stats};
use crate::error::{CoreError, Result};

/// Schema metadata key of the document's metadata (JSON).
pub const METADATA_KEY: &str = "acechart:metadata";
/// Schema metadata key of the series list (JSON `[{"name": .., "rows": ..}, ..]`).
pub const SERIES_KEY: &str = "acechart:series";

/// How series become record batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrowLayout {
    /// One batch per series: `point`, `time`, `value` (and the aggregate columns).
    Series,
    /// One batch: `time` and one column per series, outer-joined on time.
    Wide,
}

impl ArrowLayout {
    pub const NAMES: [&'static str; 2] = ["series", "wide"];

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "series" => Ok(ArrowLayout::Series),
            "wide" => Ok(ArrowLayout::Wide),
            other => Err(CoreError::Argument(format!(
                "layout must be one of 'series', 'wide', got {other:?}"
            ))),
        }
    }
}

fn arrow_error(e: ArrowError) -> CoreError {
    CoreError::Encode(format!("Arrow IPC: {e}"))
}

/// Encode series as an Arrow IPC stream, times as `timestamp[ms, tz]`.
///
/// `tz` is written into the type as given (a zone name such as `UTC` or
/// `America/Chicago`, or an offset such as `+05:30`); it is checked for its spelling
/// only, not against a time zone database.
pub fn encode(
    metadata: &Meta,
    series: &[Series<'_>],
    layout: ArrowLayout,
    tz: &str,
) -> Result<Vec<u8>> {
    validate_all(series)?;
    metadata.check_depth()?;
    check_tz(tz)?;
    let schema_meta = schema_metadata(metadata, series);
    match layout {
        ArrowLayout::Series => by_series(series, tz, schema_meta),
        ArrowLayout::Wide => wide(series, tz, schema_meta),
    }
}

fn check_tz(tz: &str) -> Result<()> {
    let ok = !tz.is_empty()
        && tz.len() <= 64
        && tz
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+-:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CoreError::Argument(format!(
            "tz must be a time zone name such as 'UTC' or 'America/Chicago', or an offset \
             such as '+05:30', got {tz:?}"
        )))
    }
}

/// Compact JSON of a metadata tree (depth already checked).
fn json_text(v: &Meta) -> String {
    let mut c = Counter(0);
    json::write_meta(&mut c, v);
    let mut buf = vec![0; c.0];
    let mut o = Out::new(&mut buf);
    json::write_meta(&mut o, v);
    let written = o.finish();
    debug_assert!(written.is_ok());
    // the JSON writer emits UTF-8 only (its input is `str`)
    String::from_utf8(buf).unwrap_or_default()
}

fn schema_metadata(metadata: &Meta, series: &[Series<'_>]) -> HashMap<String, String> {
    let list = Meta::List(
        series
            .iter()
            .map(|s| {
                Meta::Map(vec![
                    ("name".into(), Meta::Str(s.name().to_owned())),
                    ("rows".into(), Meta::UInt(s.len() as u64)),
                ])
            })
            .collect(),
    );
    HashMap::from([
        (METADATA_KEY.to_owned(), json_text(metadata)),
        (SERIES_KEY.to_owned(), json_text(&list)),
    ])
}

fn time_type(tz: &str) -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(tz.into()))
}

fn times(ts: &[i64], tz: &str) -> ArrayRef {
    Arc::new(
        TimestampMillisecondArray::new(ScalarBuffer::from(ts.to_vec()), None).with_timezone(tz),
    )
}

fn floats(values: &[f64]) -> ArrayRef {
    Arc::new(Float64Array::new(ScalarBuffer::from(values.to_vec()), None))
}

/// The value column of a series in the wide layout (aggregates: their average;
/// statistics: their value column, as floats).
fn ts_and_values<'a>(s: &Series<'a>) -> (&'a [i64], Cow<'a, [f64]>) {
    match *s {
        Series::Raw { ts, values, .. } => (ts, Cow::Borrowed(values)),
        Series::Agg { aggs, .. } => (aggs.ts, Cow::Borrowed(aggs.avg)),
        Series::Stats { stats, .. } => (stats.ts, value_column(&stats)),
    }
}

/// The value column of a statistics series as floats (an integer column converted).
fn value_column<'a>(a: &Stats<'a>) -> Cow<'a, [f64]> {
    match a.columns[a.value].column {
        Column::Float(c) => Cow::Borrowed(c),
        Column::Int(c) => Cow::Owned(c.iter().map(|&v| v as f64).collect()),
    }
}

const AGG_COLUMNS: [&str; 6] = ["count", "sum", "min", "max", "avg", "stddev"];

fn by_series(series: &[Series<'_>], tz: &str, meta: HashMap<String, String>) -> Result<Vec<u8>> {
    let aggregated = series.first().is_some_and(Series::is_bucketed);
    let kind = |s: &Series<'_>| match s {
        Series::Raw { .. } => "raw",
        Series::Agg { .. } => "aggregated",
        Series::Stats { .. } => "statistics",
    };
    if let Some(other) = series.iter().find(|s| kind(s) != kind(&series[0])) {
        return Err(CoreError::Argument(format!(
            "the 'series' layout needs all series raw or all aggregates, but {:?} is {} and \
             {:?} is {}",
            series[0].name(),
            kind(&series[0]),
            other.name(),
            kind(other),
        )));
    }
    if series.len() > i32::MAX as usize {
        return Err(CoreError::Argument(format!(
            "at most {} series, got {}",
            i32::MAX,
            series.len()
        )));
    }
    let mut fields = vec![
        Field::new(
            "point",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("time", time_type(tz), false),
        Field::new("value", DataType::Float64, false),
    ];
    // `first` and `last` are columns when the aggregate series carry them (all or none).
    let edges = match series.first() {
        Some(Series::Agg { aggs, .. }) => aggs.first_last.is_some(),
        _ => false,
    };
    if let Some(other) = series
        .iter()
        .find(|s| matches!(s, Series::Agg { aggs, .. } if aggs.first_last.is_some() != edges))
    {
        return Err(CoreError::Argument(format!(
            "the 'series' layout needs first and last in all aggregate series or in none, \
             but {:?} and {:?} differ",
            series[0].name(),
            other.name(),
        )));
    }
    if let Some(Series::Stats { stats: first, .. }) = series.first() {
        if let Some(other) = series
            .iter()
            .find(|s| !matches!(s, Series::Stats { stats, .. } if stats.same_columns(first)))
        {
            return Err(CoreError::Argument(format!(
                "the 'series' layout needs the same statistics columns in every series, but \
                 {:?} and {:?} differ",
                series[0].name(),
                other.name(),
            )));
        }
        for stat in first.columns {
            let kind = match stat.column {
                Column::Int(_) => DataType::Int64,
                Column::Float(_) => DataType::Float64,
            };
            fields.push(Field::new(stat.name, kind, false));
        }
        fields.push(Field::new("partial", DataType::Boolean, false));
    } else if aggregated {
        fields.push(Field::new("count", DataType::Int64, false));
        for name in &AGG_COLUMNS[1..] {
            fields.push(Field::new(*name, DataType::Float64, false));
        }
        if edges {
            fields.push(Field::new("first", DataType::Float64, false));
            fields.push(Field::new("last", DataType::Float64, false));
        }
    }
    let schema: SchemaRef = Arc::new(Schema::new_with_metadata(fields, meta));
    // one dictionary of every name, shared by all batches: the writer sends it once
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        series.iter().map(Series::name),
    ));
    let rows: usize = series.iter().map(Series::len).sum();
    let row_bytes = if aggregated { 68 } else { 20 };
    let out = Vec::with_capacity(rows * row_bytes + 1024 * series.len() + 4096);
    let mut writer = StreamWriter::try_new(out, &schema).map_err(arrow_error)?;
    for (i, s) in series.iter().enumerate() {
        let keys = Int32Array::new(ScalarBuffer::from(vec![i as i32; s.len()]), None);
        let point: ArrayRef = Arc::new(
            DictionaryArray::<Int32Type>::try_new(keys, Arc::clone(&names)).map_err(arrow_error)?,
        );
        let columns: Vec<ArrayRef> = match *s {
            Series::Raw { ts, values, .. } => vec![point, times(ts, tz), floats(values)],
            Series::Agg { aggs, .. } => agg_columns(point, &aggs, tz),
            Series::Stats { stats, .. } => stats_columns(point, &stats, tz),
        };
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(arrow_error)?;
        writer.write(&batch).map_err(arrow_error)?;
    }
    writer.finish().map_err(arrow_error)?;
    writer.into_inner().map_err(arrow_error)
}

fn agg_columns(point: ArrayRef, a: &Aggregates<'_>, tz: &str) -> Vec<ArrayRef> {
    let mut columns = vec![
        point,
        times(a.ts, tz),
        floats(a.avg),
        Arc::new(Int64Array::new(ScalarBuffer::from(a.count.to_vec()), None)),
        floats(a.sum),
        floats(a.min),
        floats(a.max),
        floats(a.avg),
        floats(a.stddev),
    ];
    if let Some((first, last)) = a.first_last {
        columns.push(floats(first));
        columns.push(floats(last));
    }
    columns
}

fn stats_columns(point: ArrayRef, a: &Stats<'_>, tz: &str) -> Vec<ArrayRef> {
    let mut columns = vec![point, times(a.ts, tz), floats(&value_column(a))];
    for stat in a.columns {
        columns.push(match stat.column {
            Column::Int(c) => Arc::new(Int64Array::new(ScalarBuffer::from(c.to_vec()), None)),
            Column::Float(c) => floats(c),
        });
    }
    let partial: BooleanArray = (0..a.ts.len()).map(|i| Some(a.partial(i))).collect();
    columns.push(Arc::new(partial));
    columns
}

/// The sorted union of sorted, duplicate-free time arrays. Merging into the running
/// union one series at a time costs `O(union)` per series, the size of the table that
/// is written anyway; series with the union's very times (the usual case: one
/// collection run) cost a comparison.
fn union_times(all: &[&[i64]]) -> Vec<i64> {
    let mut acc: Vec<i64> = Vec::new();
    let mut next: Vec<i64> = Vec::new();
    for &ts in all {
        if ts == acc.as_slice() || ts.is_empty() {
            continue;
        }
        if acc.is_empty() {
            acc.extend_from_slice(ts);
            continue;
        }
        next.clear();
        next.reserve(acc.len() + ts.len());
        let (mut i, mut j) = (0, 0);
        while i < acc.len() && j < ts.len() {
            let (a, b) = (acc[i], ts[j]);
            next.push(a.min(b));
            i += usize::from(a <= b);
            j += usize::from(b <= a);
        }
        next.extend_from_slice(&acc[i..]);
        next.extend_from_slice(&ts[j..]);
        std::mem::swap(&mut acc, &mut next);
    }
    acc
}

/// `values` placed at their times in `union` (which holds every one of `ts`), null
/// elsewhere.
fn aligned(union: &[i64], ts: &[i64], values: &[f64]) -> ArrayRef {
    if ts.len() == union.len() {
        return floats(values);
    }
    let mut out = vec![0.0; union.len()];
    let mut valid = BooleanBufferBuilder::new(union.len());
    valid.append_n(union.len(), false);
    let mut u = 0;
    for (&t, &v) in ts.iter().zip(values) {
        while union[u] < t {
            u += 1;
        }
        out[u] = v;
        valid.set_bit(u, true);
        u += 1;
    }
    Arc::new(Float64Array::new(
        ScalarBuffer::from(out),
        Some(NullBuffer::new(valid.finish())),
    ))
}

fn wide(series: &[Series<'_>], tz: &str, meta: HashMap<String, String>) -> Result<Vec<u8>> {
    let mut seen = HashSet::from(["time"]);
    for s in series {
        if !seen.insert(s.name()) {
            return Err(CoreError::Argument(format!(
                "the 'wide' layout names a column by its point, but {:?} {}",
                s.name(),
                if s.name() == "time" {
                    "is the time column's name"
                } else {
                    "appears twice"
                }
            )));
        }
    }
    let columns: Vec<(&[i64], Cow<'_, [f64]>)> = series.iter().map(ts_and_values).collect();
    for (s, (ts, _)) in series.iter().zip(&columns) {
        if let Some(j) = first_unsorted(ts) {
            return Err(CoreError::Argument(format!(
                "series {:?}: the 'wide' layout needs 'ts' sorted ascending without \
                 duplicates, but ts[{j}] = {} follows {}",
                s.name(),
                ts[j],
                ts[j - 1]
            )));
        }
    }
    let all: Vec<&[i64]> = columns.iter().map(|(ts, _)| *ts).collect();
    let union = union_times(&all);
    let mut fields = vec![Field::new("time", time_type(tz), false)];
    fields.extend(
        series
            .iter()
            .map(|s| Field::new(s.name(), DataType::Float64, true)),
    );
    let schema: SchemaRef = Arc::new(Schema::new_with_metadata(fields, meta));
    let mut arrays = vec![times(&union, tz)];
    arrays.extend(columns.iter().map(|(ts, vs)| aligned(&union, ts, vs)));
    let out = Vec::with_capacity(union.len() * (8 + 8 * series.len()) + 1024);
    let mut writer = StreamWriter::try_new(out, &schema).map_err(arrow_error)?;
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays).map_err(arrow_error)?;
    writer.write(&batch).map_err(arrow_error)?;
    writer.finish().map_err(arrow_error)?;
    writer.into_inner().map_err(arrow_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
    use arrow_array::Array;
    use arrow_ipc::reader::StreamReader;

    fn read(bytes: &[u8]) -> (SchemaRef, Vec<RecordBatch>) {
        let reader = StreamReader::try_new(bytes, None).unwrap();
        let schema = reader.schema();
        let batches = reader.collect::<std::result::Result<Vec<_>, _>>().unwrap();
        (schema, batches)
    }

    fn raw<'a>(name: &'a str, ts: &'a [i64], values: &'a [f64]) -> Series<'a> {
        Series::Raw { name, ts, values }
    }

    fn meta() -> Meta {
        Meta::Map(vec![
            ("siteId".into(), "s1".into()),
            ("interval".into(), Meta::Null),
        ])
    }

    #[test]
    fn series_layout_round_trip() {
        let a = raw("a", &[1, 2, 3], &[1.5, f64::NAN, -0.0]);
        let b = raw("b/ü", &[], &[]);
        let c = raw("c", &[10], &[7.0]);
        let bytes = encode(&meta(), &[a, b, c], ArrowLayout::Series, "America/Chicago").unwrap();
        let (schema, batches) = read(&bytes);
        assert_eq!(
            schema.metadata()[METADATA_KEY],
            r#"{"siteId":"s1","interval":null}"#
        );
        assert_eq!(
            schema.metadata()[SERIES_KEY],
            r#"[{"name":"a","rows":3},{"name":"b/ü","rows":0},{"name":"c","rows":1}]"#
        );
        assert_eq!(
            schema.field(1).data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some("America/Chicago".into()))
        );
        assert_eq!(batches.len(), 3);
        let first = &batches[0];
        let point = first.column(0).as_dictionary::<Int32Type>();
        assert_eq!(point.keys().values().as_ref(), &[0, 0, 0]);
        let dict = point.values().as_string::<i32>();
        assert_eq!(dict.iter().flatten().collect::<Vec<_>>(), ["a", "b/ü", "c"]);
        let time = first.column(1).as_primitive::<TimestampMillisecondType>();
        assert_eq!(time.values().as_ref(), &[1, 2, 3]);
        let value = first.column(2).as_primitive::<Float64Type>();
        assert_eq!(value.value(0), 1.5);
        assert!(value.value(1).is_nan() && value.null_count() == 0);
        assert!(value.value(2).is_sign_negative());
        assert_eq!(batches[1].num_rows(), 0);
        let last = batches[2].column(0).as_dictionary::<Int32Type>();
        assert_eq!(last.keys().values().as_ref(), &[2]);
    }

    #[test]
    fn aggregates() {
        let aggs = Aggregates {
            ts: &[0, 3_600_000],
            count: &[60, 1],
            sum: &[4350.0, 1.0],
            min: &[68.25, 1.0],
            max: &[76.75, 1.0],
            avg: &[72.5, 1.0],
            stddev: &[2.5, f64::NAN],
            first_last: None,
            partial_last: false,
        };
        let s = Series::Agg { name: "q", aggs };
        let (schema, batches) =
            read(&encode(&Meta::Null, &[s], ArrowLayout::Series, "UTC").unwrap());
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            ["point", "time", "value", "count", "sum", "min", "max", "avg", "stddev"]
        );
        let b = &batches[0];
        assert_eq!(
            b.column(3).as_primitive::<Int64Type>().values().as_ref(),
            &[60, 1]
        );
        assert_eq!(
            b.column(2).as_primitive::<Float64Type>().values().as_ref(),
            &[72.5, 1.0]
        );
        let raw_too = raw("r", &[], &[]);
        let err = encode(&Meta::Null, &[s, raw_too], ArrowLayout::Series, "UTC")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"r\" is raw"), "{err}");
        // the wide layout takes both kinds (aggregates by their average)
        let (_, batches) =
            read(&encode(&Meta::Null, &[s, raw_too], ArrowLayout::Wide, "UTC").unwrap());
        assert_eq!(batches[0].num_columns(), 3);
    }

    #[test]
    fn wide_outer_join() {
        let a = raw("a", &[1, 3, 5], &[1.0, 3.0, f64::NAN]);
        let b = raw("b", &[2, 3, 6], &[20.0, 30.0, 60.0]);
        let c = raw("c", &[1, 2, 3, 5, 6], &[0.0; 5]);
        let (schema, batches) =
            read(&encode(&meta(), &[a, b, c], ArrowLayout::Wide, "+05:30").unwrap());
        assert_eq!(schema.fields().len(), 4);
        assert_eq!(batches.len(), 1);
        let t = batches[0]
            .column(0)
            .as_primitive::<TimestampMillisecondType>();
        assert_eq!(t.values().as_ref(), &[1, 2, 3, 5, 6]);
        let a = batches[0].column(1).as_primitive::<Float64Type>();
        let got: Vec<Option<f64>> = a.iter().collect();
        assert_eq!(got[..3], [Some(1.0), None, Some(3.0)]);
        assert!(got[3].is_some_and(f64::is_nan) && got[4].is_none());
        assert_eq!(a.null_count(), 2);
        let b = batches[0].column(2).as_primitive::<Float64Type>();
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            [None, Some(20.0), Some(30.0), None, Some(60.0)]
        );
        assert_eq!(batches[0].column(3).null_count(), 0);
        // NaN is a value, not a null
        let nan = raw("n", &[1], &[f64::NAN]);
        let (_, batches) = read(&encode(&meta(), &[nan], ArrowLayout::Wide, "UTC").unwrap());
        let n = batches[0].column(1).as_primitive::<Float64Type>();
        assert!(n.is_valid(0) && n.value(0).is_nan());
    }

    #[test]
    fn union_matches_sort() {
        let mut state = 1u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        for _ in 0..200 {
            let k = (next() % 6) as usize;
            let arrays: Vec<Vec<i64>> = (0..k)
                .map(|_| {
                    let mut v: Vec<i64> = (0..next() % 20)
                        .map(|_| (next() % 40) as i64 - 20)
                        .collect();
                    v.sort_unstable();
                    v.dedup();
                    v
                })
                .collect();
            let refs: Vec<&[i64]> = arrays.iter().map(Vec::as_slice).collect();
            let mut want: Vec<i64> = arrays.concat();
            want.sort_unstable();
            want.dedup();
            assert_eq!(union_times(&refs), want);
        }
    }

    #[test]
    fn empty_inputs() {
        for layout in [ArrowLayout::Series, ArrowLayout::Wide] {
            let (schema, batches) = read(&encode(&meta(), &[], layout, "UTC").unwrap());
            assert_eq!(schema.metadata()[SERIES_KEY], "[]");
            let n = batches.iter().map(RecordBatch::num_rows).sum::<usize>();
            assert_eq!(n, 0);
        }
    }

    #[test]
    fn errors() {
        let e =
            |s: &[Series<'_>], layout, tz| encode(&meta(), s, layout, tz).unwrap_err().to_string();
        let ok = raw("a", &[1], &[1.0]);
        assert!(e(&[ok], ArrowLayout::Series, "").contains("tz must be"));
        assert!(e(&[ok], ArrowLayout::Series, "Not a zone").contains("tz must be"));
        assert!(e(&[ok, ok], ArrowLayout::Wide, "UTC").contains("appears twice"));
        let time = raw("time", &[1], &[1.0]);
        assert!(e(&[time], ArrowLayout::Wide, "UTC").contains("time column"));
        let unsorted = raw("u", &[2, 1], &[1.0, 1.0]);
        assert!(e(&[unsorted], ArrowLayout::Wide, "UTC").contains("ts[1] = 1 follows 2"));
        assert!(
            e(&[raw("m", &[1, 2], &[1.0])], ArrowLayout::Series, "UTC").contains("length mismatch")
        );
        // the series layout copies the arrays as they are
        assert!(encode(&meta(), &[unsorted], ArrowLayout::Series, "UTC").is_ok());
        assert!(ArrowLayout::parse("long")
            .unwrap_err()
            .to_string()
            .contains("'series', 'wide'"));
    }
}
