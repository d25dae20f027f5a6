//! Arrow IPC **streams** (`application/vnd.apache.arrow.stream`), written from the
//! arrays: the messages with `arrow-ipc`, the arrays copied once, straight into the
//! output ([`Stream`]); the bytes are those of `arrow-ipc`'s `StreamWriter`.
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
use std::mem::MaybeUninit;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    new_empty_array, ArrayRef, DictionaryArray, Int32Array, RecordBatch, StringArray,
};
use arrow_buffer::ScalarBuffer;
use arrow_ipc::writer::{
    write_message, DictionaryTracker, EncodedData, IpcDataGenerator, IpcWriteOptions,
};
use arrow_ipc::{
    Buffer as IpcBuffer, FieldNode, MessageBuilder, MessageHeader, MetadataVersion,
    RecordBatchBuilder,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use flatbuffers::FlatBufferBuilder;

use super::ace::first_unsorted;
use super::meta::Meta;
use super::sink::{to_vec, Counter, Out, Sink};
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
    plan(metadata, series, layout, tz)?.to_vec()
}

/// The stream [`encode`] writes, planned but not written: its size is known, and
/// [`Stream::write_into`] writes it into a buffer of that size.
pub fn plan<'a>(
    metadata: &Meta,
    series: &[Series<'a>],
    layout: ArrowLayout,
    tz: &str,
) -> Result<Stream<'a>> {
    validate_all(series)?;
    metadata.check_depth()?;
    check_tz(tz)?;
    let schema_meta = schema_metadata(metadata, series.iter().map(|s| (s.name(), s.len())));
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

/// The schema metadata: the document's metadata and the series listing, `(name, rows)`
/// each in order.
fn schema_metadata<'n>(
    metadata: &Meta,
    listing: impl Iterator<Item = (&'n str, usize)>,
) -> HashMap<String, String> {
    let list = Meta::List(
        listing
            .map(|(name, rows)| {
                Meta::Map(vec![
                    ("name".into(), Meta::Str(name.to_owned())),
                    ("rows".into(), Meta::UInt(rows as u64)),
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

/// The IPC options of every stream: arrow-rs's defaults (metadata V5, 64-byte
/// alignment, no compression).
fn options() -> IpcWriteOptions {
    IpcWriteOptions::default()
}

/// Body buffers are padded to this many bytes (the options' alignment).
const ALIGN: usize = 64;

/// What precedes each message's length, and with a zero length ends the stream.
const CONTINUATION: [u8; 4] = [0xff; 4];

fn padding(len: usize) -> usize {
    len.next_multiple_of(ALIGN) - len
}

/// An Arrow IPC stream, planned: its pieces in order, the arrays borrowed from the
/// series where they are written as they are. [`Stream::write_into`] then copies each
/// array once, straight into the final buffer.
///
/// The bytes are exactly what arrow-rs's `StreamWriter` writes for the same record
/// batches (the tests compare the two): arrow-rs still writes the schema and the
/// dictionary messages, and the record batch messages are built with its flatbuffer
/// types the way its writer builds them. Only the bodies are not copied through it
/// (it copies every array into a per-batch body, then into the output).
pub struct Stream<'a> {
    parts: Vec<Part<'a>>,
    len: usize,
}

enum Part<'a> {
    /// Messages (schema, dictionary, a batch's header), the end-of-stream marker and
    /// bit-packed boolean values.
    Bytes(Vec<u8>),
    I64s(Cow<'a, [i64]>),
    F64s(Cow<'a, [f64]>),
    /// A dictionary key column: one key, repeated.
    Keys(i32, usize),
    /// `n` copies of one byte: the all-valid bitmaps arrow-rs writes for columns
    /// without nulls (0xff), and padding (0).
    Fill(u8, usize),
}

impl Part<'_> {
    fn len(&self) -> usize {
        match self {
            Part::Bytes(b) => b.len(),
            Part::I64s(v) => 8 * v.len(),
            Part::F64s(v) => 8 * v.len(),
            Part::Keys(_, n) => 4 * n,
            Part::Fill(_, n) => *n,
        }
    }
}

impl<'a> Stream<'a> {
    fn new() -> Self {
        Stream {
            parts: Vec::new(),
            len: 0,
        }
    }

    fn push(&mut self, part: Part<'a>) {
        self.len += part.len();
        self.parts.push(part);
    }

    /// An encoded message (with its body, if any) as arrow-rs frames it.
    fn message(&mut self, encoded: EncodedData) -> Result<()> {
        let mut framed = Vec::new();
        write_message(&mut framed, encoded, &options()).map_err(arrow_error)?;
        self.push(Part::Bytes(framed));
        Ok(())
    }

    /// One record batch of `rows` rows: its message, then each column's validity
    /// bitmap and values, each padded to the alignment (the buffers arrow-rs writes for
    /// non-nested columns under metadata V5: validity, then values).
    fn batch(&mut self, rows: usize, columns: Vec<BatchColumn<'a>>) -> Result<()> {
        let mut nodes = Vec::with_capacity(columns.len());
        let mut buffers = Vec::with_capacity(2 * columns.len());
        let mut offset = 0usize;
        let mut body = Vec::with_capacity(4 * columns.len());
        for c in columns {
            nodes.push(FieldNode::new(rows as i64, c.null_count as i64));
            let validity = match c.validity {
                Some(bits) => Part::Bytes(bits),
                None => Part::Fill(0xff, rows.div_ceil(8)),
            };
            for part in [validity, c.values] {
                let len = part.len();
                buffers.push(IpcBuffer::new(offset as i64, len as i64));
                offset += len + padding(len);
                body.push(part);
                body.push(Part::Fill(0, padding(len)));
            }
        }
        let mut fbb = FlatBufferBuilder::new();
        let buffers = fbb.create_vector(&buffers);
        let nodes = fbb.create_vector(&nodes);
        let header = {
            let mut b = RecordBatchBuilder::new(&mut fbb);
            b.add_length(rows as i64);
            b.add_nodes(nodes);
            b.add_buffers(buffers);
            b.finish().as_union_value()
        };
        let mut message = MessageBuilder::new(&mut fbb);
        message.add_version(MetadataVersion::V5);
        message.add_header_type(MessageHeader::RecordBatch);
        message.add_bodyLength(offset as i64);
        message.add_header(header);
        let root = message.finish();
        fbb.finish(root, None);
        // The header framed by arrow-rs (its body, empty here, follows as parts).
        self.message(EncodedData {
            ipc_message: fbb.finished_data().to_vec(),
            arrow_data: Vec::new(),
        })?;
        for part in body {
            if part.len() > 0 {
                self.push(part);
            }
        }
        Ok(())
    }

    /// The end-of-stream marker.
    fn end(&mut self) {
        let mut eos = CONTINUATION.to_vec();
        eos.extend_from_slice(&0i32.to_le_bytes());
        self.push(Part::Bytes(eos));
    }

    /// Size of the stream in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Write the stream into `out`, which must be exactly [`Stream::len`] bytes long (it
    /// may be uninitialised). `Ok` means every byte of `out` has been written.
    pub fn write_into(&self, out: &mut [MaybeUninit<u8>]) -> Result<()> {
        let mut w = Out::uninit(out);
        for part in &self.parts {
            match part {
                Part::Bytes(b) => w.bytes(b),
                Part::I64s(v) => w.i64_le(v),
                Part::F64s(v) => w.f64_le(v),
                Part::Keys(key, n) => w.repeat(key.to_le_bytes(), *n),
                Part::Fill(byte, n) => w.repeat([*byte], *n),
            }
        }
        w.finish()
    }

    /// The stream in a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        // SAFETY: `write_into` writes every byte of its buffer when it returns `Ok`.
        unsafe { to_vec(|| Ok(self.len), |out| self.write_into(out)) }
    }
}

/// One column of a record batch.
struct BatchColumn<'a> {
    null_count: usize,
    /// The validity bitmap; `None` when every row is valid.
    validity: Option<Vec<u8>>,
    values: Part<'a>,
}

impl<'a> BatchColumn<'a> {
    fn of(values: Part<'a>) -> Self {
        BatchColumn {
            null_count: 0,
            validity: None,
            values,
        }
    }

    fn f64s(values: &'a [f64]) -> Self {
        BatchColumn::of(Part::F64s(Cow::Borrowed(values)))
    }

    fn i64s(values: &'a [i64]) -> Self {
        BatchColumn::of(Part::I64s(Cow::Borrowed(values)))
    }
}

/// The schema message, and the dictionary messages arrow-rs sends before the first
/// batch (`dictionary` holds the dictionary column's values; there is nothing to send
/// when no batch follows).
fn head(stream: &mut Stream<'_>, schema: &SchemaRef, dictionary: Option<ArrayRef>) -> Result<()> {
    let generator = IpcDataGenerator::default();
    let mut tracker = DictionaryTracker::new(false);
    let encoded =
        generator.schema_to_bytes_with_dictionary_tracker(schema, &mut tracker, &options());
    stream.message(encoded)?;
    let Some(names) = dictionary else {
        return Ok(());
    };
    // An empty batch of the schema carrying the dictionary: arrow-rs encodes it the way
    // it encodes a first batch's, whatever the keys.
    let columns = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Dictionary(..) => {
                let keys = Int32Array::new(ScalarBuffer::from(Vec::<i32>::new()), None);
                DictionaryArray::<Int32Type>::try_new(keys, Arc::clone(&names))
                    .map(|a| Arc::new(a) as ArrayRef)
                    .map_err(arrow_error)
            }
            other => Ok(new_empty_array(other)),
        })
        .collect::<Result<Vec<_>>>()?;
    let empty = RecordBatch::try_new(Arc::clone(schema), columns).map_err(arrow_error)?;
    let (dictionaries, _) = generator
        .encoded_batch(&empty, &mut tracker, &options())
        .map_err(arrow_error)?;
    for d in dictionaries {
        stream.message(d)?;
    }
    Ok(())
}

fn by_series<'a>(
    series: &[Series<'a>],
    tz: &str,
    meta: HashMap<String, String>,
) -> Result<Stream<'a>> {
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
    }
    let schema = series_schema(tz, series.first(), meta);
    // one dictionary of every name, shared by all batches: sent once
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        series.iter().map(Series::name),
    ));
    let mut stream = Stream::new();
    head(&mut stream, &schema, (!series.is_empty()).then_some(names))?;
    for (i, s) in series.iter().enumerate() {
        let point = BatchColumn::of(Part::Keys(i as i32, s.len()));
        let columns = match *s {
            Series::Raw { ts, values, .. } => {
                vec![point, BatchColumn::i64s(ts), BatchColumn::f64s(values)]
            }
            Series::Agg { aggs, .. } => agg_columns(point, &aggs),
            Series::Stats { stats, .. } => stats_columns(point, &stats),
        };
        stream.batch(s.len(), columns)?;
    }
    stream.end();
    Ok(stream)
}

/// The `series` layout's schema: `point`, `time`, `value`, then the columns of the
/// series' kind, read from the first series (all are of its kind and columns, checked
/// before).
fn series_schema(tz: &str, first: Option<&Series<'_>>, meta: HashMap<String, String>) -> SchemaRef {
    let mut fields = vec![
        Field::new(
            "point",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("time", time_type(tz), false),
        Field::new("value", DataType::Float64, false),
    ];
    match first {
        Some(Series::Agg { aggs, .. }) => {
            fields.push(Field::new("count", DataType::Int64, false));
            for name in &AGG_COLUMNS[1..] {
                fields.push(Field::new(*name, DataType::Float64, false));
            }
            if aggs.first_last.is_some() {
                fields.push(Field::new("first", DataType::Float64, false));
                fields.push(Field::new("last", DataType::Float64, false));
            }
        }
        Some(Series::Stats { stats, .. }) => {
            for stat in stats.columns {
                let kind = match stat.column {
                    Column::Int(_) => DataType::Int64,
                    Column::Float(_) => DataType::Float64,
                };
                fields.push(Field::new(stat.name, kind, false));
            }
            fields.push(Field::new("partial", DataType::Boolean, false));
        }
        Some(Series::Raw { .. }) | None => {}
    }
    Arc::new(Schema::new_with_metadata(fields, meta))
}

fn agg_columns<'a>(point: BatchColumn<'a>, a: &Aggregates<'a>) -> Vec<BatchColumn<'a>> {
    let mut columns = vec![
        point,
        BatchColumn::i64s(a.ts),
        BatchColumn::f64s(a.avg),
        BatchColumn::i64s(a.count),
        BatchColumn::f64s(a.sum),
        BatchColumn::f64s(a.min),
        BatchColumn::f64s(a.max),
        BatchColumn::f64s(a.avg),
        BatchColumn::f64s(a.stddev),
    ];
    if let Some((first, last)) = a.first_last {
        columns.push(BatchColumn::f64s(first));
        columns.push(BatchColumn::f64s(last));
    }
    columns
}

fn stats_columns<'a>(point: BatchColumn<'a>, a: &Stats<'a>) -> Vec<BatchColumn<'a>> {
    let mut columns = vec![
        point,
        BatchColumn::i64s(a.ts),
        BatchColumn::of(Part::F64s(value_column(a))),
    ];
    for stat in a.columns {
        columns.push(match stat.column {
            Column::Int(c) => BatchColumn::i64s(c),
            Column::Float(c) => BatchColumn::f64s(c),
        });
    }
    columns.push(BatchColumn::of(Part::Bytes(bits(a.ts.len(), |i| {
        a.partial(i)
    }))));
    columns
}

/// `n` booleans bit-packed the way Arrow (and arrow-rs's writer) stores them: row `i`
/// in bit `i % 8` of byte `i / 8`, the unused bits of the last byte zero.
fn bits(n: usize, bit: impl Fn(usize) -> bool) -> Vec<u8> {
    let mut out = vec![0u8; n.div_ceil(8)];
    for i in (0..n).filter(|&i| bit(i)) {
        out[i / 8] |= 1 << (i % 8);
    }
    out
}

/// The sorted union of sorted, duplicate-free time arrays. Merging into the running
/// union one series at a time costs `O(union)` per series, the size of the table that
/// is written anyway; series with the union's very times (the usual case: one
/// collection run) cost a comparison, and when all have them the union is borrowed.
fn union_times<'a>(all: &[&'a [i64]]) -> Cow<'a, [i64]> {
    let mut acc: Cow<'a, [i64]> = Cow::Borrowed(&[]);
    let mut next: Vec<i64> = Vec::new();
    for &ts in all {
        if ts == acc.as_ref() || ts.is_empty() {
            continue;
        }
        if acc.is_empty() {
            acc = Cow::Borrowed(ts);
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
        match &mut acc {
            Cow::Owned(v) => std::mem::swap(v, &mut next),
            Cow::Borrowed(_) => acc = Cow::Owned(std::mem::take(&mut next)),
        }
    }
    acc
}

/// `values` placed at their times in `union` (which holds every one of `ts`), null
/// elsewhere; borrowed as they are when `ts` is the whole union.
fn aligned<'a>(union: &[i64], ts: &[i64], values: Cow<'a, [f64]>) -> BatchColumn<'a> {
    if ts.len() == union.len() {
        return BatchColumn::of(Part::F64s(values));
    }
    let mut out = vec![0.0; union.len()];
    let mut valid = vec![0u8; union.len().div_ceil(8)];
    let mut u = 0;
    for (&t, &v) in ts.iter().zip(values.iter()) {
        while union[u] < t {
            u += 1;
        }
        out[u] = v;
        valid[u / 8] |= 1 << (u % 8);
        u += 1;
    }
    BatchColumn {
        null_count: union.len() - ts.len(),
        validity: Some(valid),
        values: Part::F64s(Cow::Owned(out)),
    }
}

/// A `wide` table names a column by each point, beside `time`: each name once.
fn check_wide_names<'n>(names: impl Iterator<Item = &'n str>) -> Result<()> {
    let mut seen = HashSet::from(["time"]);
    for name in names {
        if !seen.insert(name) {
            return Err(CoreError::Argument(format!(
                "the 'wide' layout names a column by its point, but {name:?} {}",
                if name == "time" {
                    "is the time column's name"
                } else {
                    "appears twice"
                }
            )));
        }
    }
    Ok(())
}

/// The schema message of a `wide` stream written in pieces (nothing after it, no
/// end-of-stream marker): the schema [`encode`] writes for series named and sized by
/// `listing`, in order. Record batches of row ranges of the same table may follow it,
/// each the batch of a `wide` [`encode`] of the series' rows in that range.
pub fn wide_head(metadata: &Meta, listing: &[(&str, usize)], tz: &str) -> Result<Vec<u8>> {
    metadata.check_depth()?;
    check_tz(tz)?;
    check_wide_names(listing.iter().map(|&(name, _)| name))?;
    let meta = schema_metadata(metadata, listing.iter().copied());
    let schema = wide_schema(listing.iter().map(|&(name, _)| name), tz, meta);
    let mut stream = Stream::new();
    head(&mut stream, &schema, None)?;
    stream.to_vec()
}

fn wide<'a>(series: &[Series<'a>], tz: &str, meta: HashMap<String, String>) -> Result<Stream<'a>> {
    check_wide_names(series.iter().map(Series::name))?;
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
    let schema = wide_schema(series.iter().map(Series::name), tz, meta);
    let mut stream = Stream::new();
    head(&mut stream, &schema, None)?;
    let rows = union.len();
    let mut batch = Vec::with_capacity(1 + columns.len());
    batch.extend(columns.into_iter().map(|(ts, vs)| aligned(&union, ts, vs)));
    batch.insert(0, BatchColumn::of(Part::I64s(union)));
    stream.batch(rows, batch)?;
    stream.end();
    Ok(stream)
}

/// The `wide` layout's schema: `time`, then a nullable column per series.
fn wide_schema<'n>(
    names: impl Iterator<Item = &'n str>,
    tz: &str,
    meta: HashMap<String, String>,
) -> SchemaRef {
    let mut fields = vec![Field::new("time", time_type(tz), false)];
    fields.extend(names.map(|name| Field::new(name, DataType::Float64, true)));
    Arc::new(Schema::new_with_metadata(fields, meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Stat;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
    use arrow_array::Array;
    use arrow_ipc::reader::StreamReader;

    use arrow_array::{BooleanArray, Float64Array, Int64Array, TimestampMillisecondArray};
    use arrow_buffer::{BooleanBufferBuilder, NullBuffer};
    use arrow_ipc::writer::StreamWriter;

    /// The same stream through arrow-rs alone: the arrays built as record batches and
    /// written by its `StreamWriter` (how this module wrote streams before it planned
    /// them). `encode` must give these bytes exactly.
    fn reference(metadata: &Meta, series: &[Series<'_>], layout: ArrowLayout, tz: &str) -> Vec<u8> {
        let meta = schema_metadata(metadata, series.iter().map(|s| (s.name(), s.len())));
        let times = |ts: &[i64]| -> ArrayRef {
            Arc::new(
                TimestampMillisecondArray::new(ScalarBuffer::from(ts.to_vec()), None)
                    .with_timezone(tz),
            )
        };
        let floats = |v: &[f64]| -> ArrayRef {
            Arc::new(Float64Array::new(ScalarBuffer::from(v.to_vec()), None))
        };
        let mut batches = Vec::new();
        let schema = match layout {
            ArrowLayout::Series => {
                let schema = series_schema(tz, series.first(), meta);
                let names: ArrayRef = Arc::new(StringArray::from_iter_values(
                    series.iter().map(Series::name),
                ));
                for (i, s) in series.iter().enumerate() {
                    let keys = Int32Array::new(ScalarBuffer::from(vec![i as i32; s.len()]), None);
                    let point: ArrayRef = Arc::new(
                        DictionaryArray::<Int32Type>::try_new(keys, Arc::clone(&names)).unwrap(),
                    );
                    let columns = match *s {
                        Series::Raw { ts, values, .. } => vec![point, times(ts), floats(values)],
                        Series::Agg { aggs: a, .. } => {
                            let mut c = vec![
                                point,
                                times(a.ts),
                                floats(a.avg),
                                Arc::new(Int64Array::new(
                                    ScalarBuffer::from(a.count.to_vec()),
                                    None,
                                )),
                                floats(a.sum),
                                floats(a.min),
                                floats(a.max),
                                floats(a.avg),
                                floats(a.stddev),
                            ];
                            if let Some((first, last)) = a.first_last {
                                c.push(floats(first));
                                c.push(floats(last));
                            }
                            c
                        }
                        Series::Stats { stats: a, .. } => {
                            let mut c = vec![point, times(a.ts), floats(&value_column(&a))];
                            for stat in a.columns {
                                c.push(match stat.column {
                                    Column::Int(v) => Arc::new(Int64Array::new(
                                        ScalarBuffer::from(v.to_vec()),
                                        None,
                                    )),
                                    Column::Float(v) => floats(v),
                                });
                            }
                            let partial: BooleanArray =
                                (0..a.ts.len()).map(|i| Some(a.partial(i))).collect();
                            c.push(Arc::new(partial));
                            c
                        }
                    };
                    batches.push(RecordBatch::try_new(Arc::clone(&schema), columns).unwrap());
                }
                schema
            }
            ArrowLayout::Wide => {
                let schema = wide_schema(series.iter().map(Series::name), tz, meta);
                let columns: Vec<(&[i64], Cow<'_, [f64]>)> =
                    series.iter().map(ts_and_values).collect();
                let all: Vec<&[i64]> = columns.iter().map(|(ts, _)| *ts).collect();
                let union = union_times(&all);
                let mut arrays = vec![times(&union)];
                for (ts, vs) in &columns {
                    if ts.len() == union.len() {
                        arrays.push(floats(vs));
                        continue;
                    }
                    let mut out = vec![0.0; union.len()];
                    let mut valid = BooleanBufferBuilder::new(union.len());
                    valid.append_n(union.len(), false);
                    let mut u = 0;
                    for (&t, &v) in ts.iter().zip(vs.iter()) {
                        while union[u] < t {
                            u += 1;
                        }
                        out[u] = v;
                        valid.set_bit(u, true);
                        u += 1;
                    }
                    arrays.push(Arc::new(Float64Array::new(
                        ScalarBuffer::from(out),
                        Some(NullBuffer::new(valid.finish())),
                    )));
                }
                batches.push(RecordBatch::try_new(Arc::clone(&schema), arrays).unwrap());
                schema
            }
        };
        let mut writer = StreamWriter::try_new(Vec::new(), &schema).unwrap();
        for b in &batches {
            writer.write(b).unwrap();
        }
        writer.finish().unwrap();
        writer.into_inner().unwrap()
    }

    #[test]
    fn the_bytes_of_arrow_rs_stream_writer() {
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        for round in 0..300 {
            let k = (next() % 5) as usize;
            let data: Vec<(Vec<i64>, Vec<f64>)> = (0..k)
                .map(|_| {
                    let mut ts: Vec<i64> =
                        (0..next() % 150).map(|_| (next() % 200) as i64).collect();
                    ts.sort_unstable();
                    ts.dedup();
                    let vs = ts.iter().map(|_| next() as f64 / 7.0).collect();
                    (ts, vs)
                })
                .collect();
            let counts: Vec<Vec<i64>> = data
                .iter()
                .map(|(ts, _)| ts.iter().map(|t| t % 60).collect())
                .collect();
            let names: Vec<String> = (0..k).map(|i| format!("p{i}/ü{round}")).collect();
            let raw_series: Vec<Series<'_>> = data
                .iter()
                .zip(&names)
                .map(|((ts, vs), name)| raw(name, ts, vs))
                .collect();
            let edges = round % 2 == 0;
            let agg_series: Vec<Series<'_>> = data
                .iter()
                .zip(&names)
                .zip(&counts)
                .map(|(((ts, vs), name), count)| Series::Agg {
                    name,
                    aggs: Aggregates {
                        ts,
                        count,
                        sum: vs,
                        min: vs,
                        max: vs,
                        avg: vs,
                        stddev: vs,
                        first_last: edges.then_some((vs.as_slice(), vs.as_slice())),
                        partial_last: false,
                    },
                })
                .collect();
            // statistics: an integer and a float column, the value either one (an
            // integer value column is converted), the last bucket running or not
            let stat_columns: Vec<[Stat<'_>; 2]> = data
                .iter()
                .zip(&counts)
                .map(|((_, vs), count)| {
                    [
                        Stat {
                            name: "on_time",
                            column: Column::Int(count),
                        },
                        Stat {
                            name: "twa",
                            column: Column::Float(vs),
                        },
                    ]
                })
                .collect();
            let stats_series: Vec<Series<'_>> = data
                .iter()
                .zip(&names)
                .zip(&stat_columns)
                .map(|(((ts, _), name), columns)| Series::Stats {
                    name,
                    stats: Stats {
                        ts,
                        columns,
                        value: (next() % 2) as usize,
                        partial_last: next() % 2 == 0,
                    },
                })
                .collect();
            for series in [&raw_series, &agg_series, &stats_series] {
                for layout in [ArrowLayout::Series, ArrowLayout::Wide] {
                    let got = encode(&meta(), series, layout, "Europe/Paris").unwrap();
                    let want = reference(&meta(), series, layout, "Europe/Paris");
                    assert!(got == want, "round {round}, {layout:?}, {k} series");
                    let stream = plan(&meta(), series, layout, "Europe/Paris").unwrap();
                    assert_eq!(stream.len(), want.len());
                    let mut short = vec![MaybeUninit::uninit(); want.len() - 1];
                    assert!(stream.write_into(&mut short).is_err());
                }
            }
        }
    }

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
    fn statistics_and_partial() {
        let columns = [
            Stat {
                name: "on_time",
                column: Column::Int(&[60, 45, 3]),
            },
            Stat {
                name: "twa",
                column: Column::Float(&[1.5, 2.5, f64::NAN]),
            },
        ];
        let stats = |value, partial_last| Series::Stats {
            name: "q",
            stats: Stats {
                ts: &[0, 60_000, 120_000],
                columns: &columns,
                value,
                partial_last,
            },
        };
        let bytes = encode(&Meta::Null, &[stats(0, true)], ArrowLayout::Series, "UTC").unwrap();
        let (schema, batches) = read(&bytes);
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            ["point", "time", "value", "on_time", "twa", "partial"]
        );
        let b = &batches[0];
        // an integer value column becomes float64
        assert_eq!(
            b.column(2).as_primitive::<Float64Type>().values().as_ref(),
            &[60.0, 45.0, 3.0]
        );
        assert_eq!(
            b.column(3).as_primitive::<Int64Type>().values().as_ref(),
            &[60, 45, 3]
        );
        let partial = b.column(5).as_boolean();
        assert_eq!(partial.null_count(), 0);
        assert_eq!(
            partial.iter().collect::<Vec<_>>(),
            [Some(false), Some(false), Some(true)]
        );
        let (_, batches) =
            read(&encode(&Meta::Null, &[stats(1, false)], ArrowLayout::Series, "UTC").unwrap());
        assert_eq!(batches[0].column(5).as_boolean().true_count(), 0);
        // statistics series of different columns do not share a schema
        let other = [columns[0]];
        let s2 = Series::Stats {
            name: "r",
            stats: Stats {
                ts: &[0, 60_000, 120_000],
                columns: &other,
                value: 0,
                partial_last: false,
            },
        };
        let err = encode(
            &Meta::Null,
            &[stats(0, true), s2],
            ArrowLayout::Series,
            "UTC",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("same statistics columns"), "{err}");
        // the wide layout takes the value column
        let (_, batches) =
            read(&encode(&Meta::Null, &[stats(1, true)], ArrowLayout::Wide, "UTC").unwrap());
        let v = batches[0].column(1).as_primitive::<Float64Type>();
        assert_eq!(v.value(1), 2.5);
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
    fn wide_head_is_the_schema_message_of_the_whole_stream() {
        let a = raw("a", &[1, 3, 5], &[1.0, 3.0, f64::NAN]);
        let b = raw("b\"é", &[2, 3], &[20.0, 30.0]);
        let whole = encode(&meta(), &[a, b], ArrowLayout::Wide, "America/Chicago").unwrap();
        let head = wide_head(&meta(), &[("a", 3), ("b\"é", 2)], "America/Chicago").unwrap();
        assert!(
            head.len() < whole.len() && whole.starts_with(&head),
            "{head:?}"
        );
        let empty = encode(&meta(), &[], ArrowLayout::Wide, "UTC").unwrap();
        let mut no_series = wide_head(&meta(), &[], "UTC").unwrap();
        assert!(empty.starts_with(&no_series));
        no_series.extend_from_slice(&CONTINUATION);
        no_series.extend_from_slice(&0i32.to_le_bytes());
        // a stream of no series has an empty batch before its end (the union is empty)
        assert!(no_series.len() < empty.len());
        for bad in [&[("time", 0)][..], &[("a", 0), ("a", 1)][..]] {
            let err = wide_head(&meta(), bad, "UTC").unwrap_err().to_string();
            assert!(err.contains("'wide' layout names a column"), "{err}");
        }
        assert!(wide_head(&meta(), &[], "not a zone!").is_err());
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
