//! JSON: the seed's document, compact, written straight from the arrays.
//!
//! ```text
//! {"metadata":{..},"series":[{"name":"p","data":[[1704067200000,72.5],..]},
//!                            {"name":"q","aggregations":[{"timestamp":..,"avg":..,"min":..,
//!                              "max":..,"sum":..,"count":..,"stddev":..},..]}]}
//! ```
//!
//! Timestamps and counts are integers; floats use the shortest representation that
//! round-trips (ryu), and non-finite floats (NaN, ±inf) become `null`. Strings escape `"`,
//! `\` and control characters; other characters are written as UTF-8.

use std::mem::MaybeUninit;

use super::meta::Meta;
use super::num::{int_len, Short, Ts13Words, TS13};
use super::sink::{fill, to_vec, Counter, Out, Sink};
use super::{validate_all, Aggregates, Column, Series, Stats};
use crate::error::{CoreError, Result};

/// Encode a response document as compact JSON.
pub fn encode(metadata: &Meta, series: &[Series<'_>]) -> Result<Vec<u8>> {
    // SAFETY: `encode_into` writes every byte of its buffer when it returns `Ok`.
    unsafe {
        to_vec(
            || encoded_len(metadata, series),
            |out| encode_into(metadata, series, out),
        )
    }
}

/// Exact size of the JSON document.
pub fn encoded_len(metadata: &Meta, series: &[Series<'_>]) -> Result<usize> {
    validate_all(series)?;
    metadata.check_depth()?;
    let mut c = Counter(0);
    head(&mut c, metadata);
    for (i, s) in series.iter().enumerate() {
        match *s {
            // The samples are counted by `pairs_len`, a pass that computes lengths only.
            Series::Raw { name, ts, values } => {
                raw_open(&mut c, i, name);
                c.0 += pairs_len(ts, values);
                c.array(RAW_CLOSE);
            }
            Series::Agg { .. } | Series::Stats { .. } => item(&mut c, i, s),
        }
    }
    c.bytes(TAIL);
    Ok(c.0)
}

/// Write the document into `out`, which must be exactly [`encoded_len`] bytes long (it
/// may be uninitialised). `Ok` means every byte of `out` has been written.
///
/// The samples of raw series are written by [`write_pairs_fast`], one or two fixed-size
/// stores per sample; every other piece through the [`Sink`] like every encoder. Each
/// step writes every byte from the position it is given up to the one it returns, so
/// reaching `out.len()` means the whole buffer is written.
pub fn encode_into(
    metadata: &Meta,
    series: &[Series<'_>],
    out: &mut [MaybeUninit<u8>],
) -> Result<()> {
    validate_all(series)?;
    metadata.check_depth()?;
    let mut pos = put(out, 0, Piece::Head(metadata))?;
    for (i, s) in series.iter().enumerate() {
        match *s {
            Series::Raw { name, ts, values } => {
                pos = put(out, pos, Piece::RawOpen(i, name))?;
                pos = write_pairs_fast(out, pos, ts, values)?;
                pos = put(out, pos, Piece::RawClose)?;
            }
            Series::Agg { .. } | Series::Stats { .. } => pos = put(out, pos, Piece::Item(i, s))?,
        }
    }
    pos = put(out, pos, Piece::Tail)?;
    if pos != out.len() {
        return Err(size_mismatch(out.len()));
    }
    Ok(())
}

fn size_mismatch(len: usize) -> CoreError {
    CoreError::Argument(format!(
        "output buffer of {len} bytes does not match the encoded size"
    ))
}

/// The parts of a document [`encode_into`] writes through a [`Sink`].
enum Piece<'a> {
    Head(&'a Meta),
    RawOpen(usize, &'a str),
    RawClose,
    Item(usize, &'a Series<'a>),
    Tail,
}

impl Piece<'_> {
    fn emit<S: Sink>(&self, w: &mut S) {
        match *self {
            Piece::Head(meta) => head(w, meta),
            Piece::RawOpen(i, name) => raw_open(w, i, name),
            Piece::RawClose => w.array(RAW_CLOSE),
            Piece::Item(i, s) => item(w, i, s),
            Piece::Tail => w.bytes(TAIL),
        }
    }
}

/// Write `piece` at `out[pos..]`, sized by a [`Counter`] first; the position after it
/// (every byte before which is written: [`Out::finish`] checked the piece's range).
fn put(out: &mut [MaybeUninit<u8>], pos: usize, piece: Piece<'_>) -> Result<usize> {
    let mut c = Counter(0);
    piece.emit(&mut c);
    let end = pos
        .checked_add(c.0)
        .filter(|&e| e <= out.len())
        .ok_or_else(|| size_mismatch(out.len()))?;
    let mut w = Out::uninit(&mut out[pos..end]);
    piece.emit(&mut w);
    w.finish()?;
    Ok(end)
}

/// Everything after the last series.
pub(crate) const TAIL: &[u8] = b"]}";

/// The document is [`head`], then [`item`] for each series, then [`TAIL`]; the parts
/// API writes the same pieces one at a time. [`encode_into`] writes the same bytes with
/// a faster path for the samples; this plain composition is the reference its tests
/// compare against.
#[cfg(test)]
fn document<S: Sink>(w: &mut S, metadata: &Meta, series: &[Series<'_>]) {
    head(w, metadata);
    for (i, s) in series.iter().enumerate() {
        item(w, i, s);
    }
    w.bytes(TAIL);
}

/// Everything before the first series (metadata depth already checked).
pub(crate) fn head<S: Sink>(w: &mut S, metadata: &Meta) {
    w.array(*b"{\"metadata\":");
    write_meta(w, metadata);
    w.array(*b",\"series\":[");
}

/// What closes a raw series: the end of its `data` array and of its object.
const RAW_CLOSE: [u8; 2] = *b"]}";

/// A raw series up to its first sample, with the comma that precedes it.
fn raw_open<S: Sink>(w: &mut S, index: usize, name: &str) {
    if index > 0 {
        w.byte(b',');
    }
    w.array(*b"{\"name\":");
    write_str(w, name);
    w.array(*b",\"data\":[");
}

/// The series at position `index` of the list, with the comma that precedes it.
pub(crate) fn item<S: Sink>(w: &mut S, index: usize, s: &Series<'_>) {
    if let Series::Raw { name, ts, values } = *s {
        raw_open(w, index, name);
        write_pairs(w, ts, values);
        w.array(RAW_CLOSE);
        return;
    }
    if index > 0 {
        w.byte(b',');
    }
    w.array(*b"{\"name\":");
    write_str(w, s.name());
    match *s {
        Series::Raw { .. } => {}
        Series::Agg { aggs, .. } => {
            w.array(*b",\"aggregations\":[");
            write_buckets(w, &aggs);
            w.byte(b']');
        }
        Series::Stats { stats, .. } => {
            w.array(*b",\"aggregations\":[");
            write_stats(w, &stats);
            w.byte(b']');
        }
    }
    w.byte(b'}');
}

#[inline(always)]
fn number<S: Sink>(w: &mut S, v: f64) {
    if v.is_finite() {
        w.finite_f64(v);
    } else {
        w.array(*b"null");
    }
}

/// The elements of a `data` array (without the brackets).
fn write_pairs<S: Sink>(w: &mut S, ts: &[i64], values: &[f64]) {
    for (i, (&t, &v)) in ts.iter().zip(values).enumerate() {
        if i > 0 {
            w.byte(b',');
        }
        w.byte(b'[');
        w.int(t);
        w.byte(b',');
        number(w, v);
        w.byte(b']');
    }
}

/// Bytes of the elements of a `data` array (what [`write_pairs`] writes), computed
/// without writing: 3 per pair (`[`, `,`, `]`), the separating commas, and the digits.
fn pairs_len(ts: &[i64], values: &[f64]) -> usize {
    let mut n = (4 * ts.len()).saturating_sub(1);
    for (&t, &v) in ts.iter().zip(values) {
        n += if TS13.contains(&t) { 13 } else { int_len(t) };
        n += if !v.is_finite() {
            4
        } else {
            match Short::len_of(v) {
                Some(len) => len,
                None => ryu::Buffer::new().format_finite(v).len(),
            }
        };
    }
    n
}

/// The elements of a `data` array at `out[pos..]`, byte for byte what [`write_pairs`]
/// writes; returns the position after them, every byte before which is written.
///
/// The common sample (a 13-digit ms timestamp and a value with at most four decimals
/// below 10^8) is built in two registers, `[`, the timestamp and `,` in one, the value,
/// `]` and the next `,` in the other, and stored with two 16-byte stores; bytes past the
/// sample are scratch that the next write overwrites. Other samples, and the last few
/// bytes of the buffer, go through the exact [`Sink`] path.
fn write_pairs_fast(
    out: &mut [MaybeUninit<u8>],
    mut pos: usize,
    ts: &[i64],
    values: &[f64],
) -> Result<usize> {
    let n = ts.len();
    let mut stamps = Ts13Words::new();
    for (i, (&t, &v)) in ts.iter().zip(values).enumerate() {
        let last = i + 1 == n;
        if let (Some(digits), Some(short)) = (stamps.get(t), Short::new(v)) {
            if short.int < 100_000_000 {
                if let Some(dst) = out.get_mut(pos..pos + 32) {
                    let open = u128::from(b'[') | digits << 8 | u128::from(b',') << 112;
                    let (text, len) = short.word();
                    // The word holds all four decimals: keep only the text's bytes.
                    let text = text & ((1u128 << (8 * len)) - 1);
                    let close =
                        text | u128::from(b']') << (8 * len) | u128::from(b',') << (8 * (len + 1));
                    fill(&mut dst[..16], &open.to_le_bytes());
                    fill(&mut dst[15..31], &close.to_le_bytes());
                    // The sample is at most 15 + 14 + 2 of the 31 bytes just stored
                    // (a value's text is at most 14 bytes): none past them is counted.
                    pos += 15 + len + 1 + usize::from(!last);
                    continue;
                }
            }
        }
        let mut c = Counter(0);
        pair(&mut c, t, v, last);
        let end = pos
            .checked_add(c.0)
            .filter(|&e| e <= out.len())
            .ok_or_else(|| size_mismatch(out.len()))?;
        let mut w = Out::uninit(&mut out[pos..end]);
        pair(&mut w, t, v, last);
        w.finish()?;
        pos = end;
    }
    Ok(pos)
}

/// One element of a `data` array and, unless `last`, the comma after it.
#[inline(always)]
fn pair<S: Sink>(w: &mut S, t: i64, v: f64, last: bool) {
    w.byte(b'[');
    w.int(t);
    w.byte(b',');
    number(w, v);
    w.byte(b']');
    if !last {
        w.byte(b',');
    }
}

const K_TIMESTAMP: &[u8; 13] = b"{\"timestamp\":";
const K_AVG: &[u8; 7] = b",\"avg\":";
const K_MIN: &[u8; 7] = b",\"min\":";
const K_MAX: &[u8; 7] = b",\"max\":";
const K_SUM: &[u8; 7] = b",\"sum\":";
const K_COUNT: &[u8; 9] = b",\"count\":";
const K_STDDEV: &[u8; 10] = b",\"stddev\":";
const K_FIRST: &[u8; 9] = b",\"first\":";
const K_LAST: &[u8; 8] = b",\"last\":";
const K_PARTIAL: &[u8; 15] = b",\"partial\":true";

/// The elements of an `aggregations` array (without the brackets).
fn write_buckets<S: Sink>(w: &mut S, a: &Aggregates<'_>) {
    for i in 0..a.ts.len() {
        if i > 0 {
            w.byte(b',');
        }
        w.array(*K_TIMESTAMP);
        w.int(a.ts[i]);
        w.array(*K_AVG);
        number(w, a.avg[i]);
        w.array(*K_MIN);
        number(w, a.min[i]);
        w.array(*K_MAX);
        number(w, a.max[i]);
        w.array(*K_SUM);
        number(w, a.sum[i]);
        w.array(*K_COUNT);
        w.int(a.count[i]);
        w.array(*K_STDDEV);
        number(w, a.stddev[i]);
        if let Some((first, last)) = a.first_last {
            w.array(*K_FIRST);
            number(w, first[i]);
            w.array(*K_LAST);
            number(w, last[i]);
        }
        if a.partial(i) {
            w.array(*K_PARTIAL);
        }
        w.byte(b'}');
    }
}

/// The elements of an `aggregations` array of chosen statistics (without the brackets):
/// `{"timestamp":..` then each column by name, in order (names are plain: validated).
fn write_stats<S: Sink>(w: &mut S, a: &Stats<'_>) {
    let keys: Vec<Vec<u8>> = a
        .columns
        .iter()
        .map(|c| format!(",\"{}\":", c.name).into_bytes())
        .collect();
    for i in 0..a.ts.len() {
        if i > 0 {
            w.byte(b',');
        }
        w.array(*K_TIMESTAMP);
        w.int(a.ts[i]);
        for (key, stat) in keys.iter().zip(a.columns) {
            w.bytes(key);
            match stat.column {
                Column::Int(c) => w.int(c[i]),
                Column::Float(c) => number(w, c[i]),
            }
        }
        if a.partial(i) {
            w.array(*K_PARTIAL);
        }
        w.byte(b'}');
    }
}

/// Metadata (depth already checked by the caller).
pub(crate) fn write_meta<S: Sink>(w: &mut S, v: &Meta) {
    match v {
        Meta::Null => w.array(*b"null"),
        Meta::Bool(true) => w.array(*b"true"),
        Meta::Bool(false) => w.array(*b"false"),
        Meta::Int(i) => w.int(*i),
        Meta::UInt(u) => w.bytes(itoa::Buffer::new().format(*u).as_bytes()),
        Meta::Float(f) => number(w, *f),
        Meta::Str(s) => write_str(w, s),
        Meta::List(items) => {
            w.byte(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    w.byte(b',');
                }
                write_meta(w, item);
            }
            w.byte(b']');
        }
        Meta::Map(items) => {
            w.byte(b'{');
            for (i, (k, item)) in items.iter().enumerate() {
                if i > 0 {
                    w.byte(b',');
                }
                write_str(w, k);
                w.byte(b':');
                write_meta(w, item);
            }
            w.byte(b'}');
        }
    }
}

/// For each byte: 0 if it is written as is, else the letter after the backslash
/// (`u` meaning `\u00XX`).
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// A JSON string literal, quotes included.
pub(crate) fn write_str<S: Sink>(w: &mut S, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    w.byte(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let e = ESCAPE[b as usize];
        if e == 0 {
            continue;
        }
        w.bytes(&bytes[start..i]);
        if e == b'u' {
            w.array([
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]);
        } else {
            w.array([b'\\', e]);
        }
        start = i + 1;
    }
    w.bytes(&bytes[start..]);
    w.byte(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[u8]) -> &str {
        std::str::from_utf8(v).unwrap()
    }

    fn raw<'a>(name: &'a str, ts: &'a [i64], values: &'a [f64]) -> Series<'a> {
        Series::Raw { name, ts, values }
    }

    #[test]
    fn empty_series_list() {
        let out = encode(&Meta::Map(vec![]), &[]).unwrap();
        assert_eq!(s(&out), r#"{"metadata":{},"series":[]}"#);
    }

    #[test]
    fn empty_arrays() {
        let out = encode(&Meta::Map(vec![]), &[raw("a", &[], &[])]).unwrap();
        assert_eq!(
            s(&out),
            r#"{"metadata":{},"series":[{"name":"a","data":[]}]}"#
        );
    }

    #[test]
    fn one_sample() {
        let out = encode(&Meta::Map(vec![]), &[raw("a", &[1704067200000], &[72.5])]).unwrap();
        assert_eq!(
            s(&out),
            r#"{"metadata":{},"series":[{"name":"a","data":[[1704067200000,72.5]]}]}"#
        );
    }

    #[test]
    fn non_finite_negative_and_extremes() {
        let ts = [i64::MIN, -1, 0, i64::MAX, 5];
        let vs = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e300];
        let out = encode(&Meta::Null, &[raw("a", &ts, &vs)]).unwrap();
        assert_eq!(
            s(&out),
            concat!(
                r#"{"metadata":null,"series":[{"name":"a","data":["#,
                r#"[-9223372036854775808,null],[-1,null],[0,null],"#,
                r#"[9223372036854775807,-0.0],[5,1e300]]}]}"#
            )
        );
    }

    #[test]
    fn many_samples_cross_chunks() {
        let n = 10_007;
        let ts: Vec<i64> = (0..n as i64).map(|i| i * 60_000).collect();
        let vs: Vec<f64> = (0..n).map(|i| i as f64 / 4.0).collect();
        let out = encode(&Meta::Map(vec![]), &[raw("a", &ts, &vs)]).unwrap();
        let mut expect = String::from(r#"{"metadata":{},"series":[{"name":"a","data":["#);
        for i in 0..n {
            if i > 0 {
                expect.push(',');
            }
            expect.push_str(&format!("[{},{:?}]", ts[i], vs[i]));
        }
        expect.push_str("]}]}");
        assert_eq!(s(&out), expect);
    }

    #[test]
    fn escapes() {
        let text = "a\"b\\c\n\r\t\x08\x0c\x00\x1f\x7f é ☃ 😀";
        let mut c = Counter(0);
        write_str(&mut c, text);
        let mut out = vec![0; c.0];
        let mut w = Out::new(&mut out);
        write_str(&mut w, text);
        w.finish().unwrap();
        assert_eq!(
            s(&out),
            "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0000\\u001f\x7f é ☃ 😀\""
        );
    }

    #[test]
    fn nested_metadata() {
        let meta = Meta::Map(vec![
            ("siteId".into(), "s\"1".into()),
            (
                "pointNames".into(),
                Meta::List(vec!["a".into(), Meta::List(vec![])]),
            ),
            ("n".into(), Meta::Int(-3)),
            ("big".into(), Meta::UInt(u64::MAX)),
            ("f".into(), Meta::Float(0.1)),
            ("nan".into(), Meta::Float(f64::NAN)),
            ("ok".into(), Meta::Bool(true)),
            ("no".into(), Meta::Bool(false)),
            ("none".into(), Meta::Null),
            (
                "m".into(),
                Meta::Map(vec![("k\n".into(), Meta::Map(vec![]))]),
            ),
        ]);
        let out = encode(&meta, &[]).unwrap();
        assert_eq!(
            s(&out),
            concat!(
                r#"{"metadata":{"siteId":"s\"1","pointNames":["a",[]],"n":-3,"#,
                r#""big":18446744073709551615,"f":0.1,"nan":null,"ok":true,"no":false,"#,
                r#""none":null,"m":{"k\n":{}}},"series":[]}"#
            )
        );
    }

    #[test]
    fn too_deep_metadata() {
        let mut v = Meta::Null;
        for _ in 0..100 {
            v = Meta::List(vec![v]);
        }
        let err = encode(&v, &[]).unwrap_err().to_string();
        assert!(err.contains("nested deeper"), "{err}");
    }

    #[test]
    fn aggregations() {
        let aggs = Aggregates {
            ts: &[0, 3_600_000],
            count: &[60, 0],
            sum: &[4350.0, 0.0],
            min: &[68.25, f64::NAN],
            max: &[76.75, f64::NAN],
            avg: &[72.5, f64::NAN],
            stddev: &[2.5, f64::NAN],
            first_last: None,
            partial_last: false,
        };
        let out = encode(&Meta::Map(vec![]), &[Series::Agg { name: "a", aggs }]).unwrap();
        assert_eq!(
            s(&out),
            concat!(
                r#"{"metadata":{},"series":[{"name":"a","aggregations":["#,
                r#"{"timestamp":0,"avg":72.5,"min":68.25,"max":76.75,"sum":4350.0,"count":60,"stddev":2.5},"#,
                r#"{"timestamp":3600000,"avg":null,"min":null,"max":null,"sum":0.0,"count":0,"stddev":null}"#,
                r#"]}]}"#
            )
        );
    }

    #[test]
    fn aggregations_with_first_last_and_a_partial_bucket() {
        let aggs = Aggregates {
            ts: &[0, 10],
            count: &[2, 1],
            sum: &[3.0, 5.0],
            min: &[1.0, 5.0],
            max: &[2.0, 5.0],
            avg: &[1.5, 5.0],
            stddev: &[0.5, f64::NAN],
            first_last: Some((&[2.0, 5.0], &[1.0, 5.0])),
            partial_last: true,
        };
        let out = encode(&Meta::Map(vec![]), &[Series::Agg { name: "a", aggs }]).unwrap();
        assert_eq!(
            s(&out),
            concat!(
                r#"{"metadata":{},"series":[{"name":"a","aggregations":["#,
                r#"{"timestamp":0,"avg":1.5,"min":1.0,"max":2.0,"sum":3.0,"count":2,"stddev":0.5,"first":2.0,"last":1.0},"#,
                r#"{"timestamp":10,"avg":5.0,"min":5.0,"max":5.0,"sum":5.0,"count":1,"stddev":null,"first":5.0,"last":5.0,"partial":true}"#,
                r#"]}]}"#
            )
        );
        assert_eq!(
            out,
            reference(&Meta::Map(vec![]), &[Series::Agg { name: "a", aggs }])
        );
    }

    /// The document through the plain `Sink` path only.
    fn reference(meta: &Meta, series: &[Series<'_>]) -> Vec<u8> {
        let mut c = Counter(0);
        document(&mut c, meta, series);
        let mut out = vec![0; c.0];
        let mut w = Out::new(&mut out);
        document(&mut w, meta, series);
        w.finish().unwrap();
        out
    }

    #[test]
    fn fast_samples_match_the_sink_path() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let n = 20_000;
        let mut ts = Vec::with_capacity(n);
        let mut vs = Vec::with_capacity(n);
        for i in 0..n {
            let r = next();
            ts.push(match i % 9 {
                0 => (r % 2_000_000_000_000) as i64 - 1_000_000_000_000,
                1 => [0, 7, -3, i64::MIN, i64::MAX, 999_999_999_999][(r % 6) as usize],
                _ => 1_000_000_000_000 + (r % 9_000_000_000_000) as i64,
            });
            vs.push(match i % 11 {
                0 => f64::from_bits(r),
                1 => [f64::NAN, f64::INFINITY, -0.0, 1e8, 99_999_999.5, -1e300][(r % 6) as usize],
                2 => (r % 100_000_000_000) as f64 / 1e4,
                _ => {
                    ((r % 2_000_000) as f64 - 1_000_000.0)
                        / [1.0, 10.0, 100.0, 1e4][(r % 4) as usize]
                }
            });
        }
        let meta = Meta::Map(vec![("k".into(), "v".into())]);
        for len in [0, 1, 2, 3, 17, 1000, n] {
            let series = [
                raw("a", &ts[..len], &vs[..len]),
                Series::Agg {
                    name: "g",
                    aggs: Aggregates {
                        ts: &[0],
                        count: &[1],
                        sum: &[1.5],
                        min: &[1.5],
                        max: &[1.5],
                        avg: &[1.5],
                        stddev: &[f64::NAN],
                        first_last: None,
                        partial_last: false,
                    },
                },
                raw("b\"", &ts[n - len..], &vs[n - len..]),
            ];
            let want = reference(&meta, &series);
            assert_eq!(encoded_len(&meta, &series).unwrap(), want.len(), "{len}");
            let got = encode(&meta, &series).unwrap();
            assert!(got == want, "{len}: {}", s(&got));
            // A buffer of the wrong size is an error, not a panic.
            for extra in [-1i64, 1, 40] {
                let mut out = vec![MaybeUninit::uninit(); (want.len() as i64 + extra) as usize];
                assert!(encode_into(&meta, &series, &mut out).is_err());
            }
        }
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let err = encode(&Meta::Null, &[raw("p", &[1, 2], &[1.0])])
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"p\""), "{err}");
    }
}
