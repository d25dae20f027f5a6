//! MessagePack, in two layouts.
//!
//! [`Layout::Rows`] is the JSON document MessagePack-encoded: integers use the smallest
//! encoding (unsigned families for non-negative values, like `msgpack.packb`), floats are
//! float64, and NaN becomes `nil` (±inf stay floats, since MessagePack can carry them).
//! Every header is the one `msgpack.packb(doc)` (with its defaults) picks, so the bytes
//! equal those of the Python-built document.
//!
//! [`Layout::Columns`] replaces every array with a `bin` of little-endian float64:
//! raw series become `{"name":..,"t":bin,"v":bin}` and aggregate series
//! `{"name":..,"t":bin,"avg":bin,"min":bin,"max":bin,"sum":bin,"count":bin,"stddev":bin}`;
//! `t` is ms since the epoch as float64 and NaN stays NaN. Metadata is as in rows.
//!
//! The size is computed exactly first ([`encoded_len`]), so a caller can write the
//! document straight into its final buffer ([`encode_into`]).

use std::mem::MaybeUninit;

use super::meta::Meta;
use super::sink::{to_vec, Counter, Out, Sink};
use super::{validate_all, Aggregates, Column, Layout, Series, Stats};
use crate::error::{CoreError, Result};

/// Encode a response document as MessagePack.
pub fn encode(metadata: &Meta, series: &[Series<'_>], layout: Layout) -> Result<Vec<u8>> {
    // SAFETY: `encode_into` writes every byte of its buffer when it returns `Ok`.
    unsafe {
        to_vec(
            || encoded_len(metadata, series, layout),
            |out| encode_into(metadata, series, layout, out),
        )
    }
}

/// Exact size of the MessagePack document (one cheap pass over the arrays), so the
/// caller can allocate the final buffer once and [`encode_into`] it.
pub fn encoded_len(metadata: &Meta, series: &[Series<'_>], layout: Layout) -> Result<usize> {
    validate_all(series)?;
    metadata.check_depth()?;
    let mut counter = Counter(0);
    document(&mut counter, metadata, series, layout)?;
    Ok(counter.0)
}

/// Write the document into `out`, which must be exactly [`encoded_len`] bytes long (it
/// may be uninitialised). `Ok` means every byte of `out` has been written.
pub fn encode_into(
    metadata: &Meta,
    series: &[Series<'_>],
    layout: Layout,
    out: &mut [MaybeUninit<u8>],
) -> Result<()> {
    validate_all(series)?;
    metadata.check_depth()?;
    let mut w = Out::uninit(out);
    document(&mut w, metadata, series, layout)?;
    w.finish()
}

/// The document is [`head`] (with the series array header), then [`item`] for each
/// series; there is nothing after the last one. The parts API writes the same pieces
/// one at a time.
fn document<S: Sink>(
    w: &mut S,
    metadata: &Meta,
    series: &[Series<'_>],
    layout: Layout,
) -> Result<()> {
    head(w, metadata, series.len())?;
    for s in series {
        item(w, s, layout)?;
    }
    Ok(())
}

/// Everything before the first series, up to the header of an array of `n_series`
/// (metadata depth already checked).
pub(crate) fn head<S: Sink>(w: &mut S, metadata: &Meta, n_series: usize) -> Result<()> {
    map_header(w, 2)?;
    str_(w, "metadata")?;
    write_meta(w, metadata)?;
    str_(w, "series")?;
    array_header(w, n_series)
}

/// One element of the series array.
pub(crate) fn item<S: Sink>(w: &mut S, s: &Series<'_>, layout: Layout) -> Result<()> {
    match (layout, *s) {
        (Layout::Rows, Series::Raw { name, ts, values }) => {
            map_header(w, 2)?;
            str_(w, "name")?;
            str_(w, name)?;
            str_(w, "data")?;
            array_header(w, ts.len())?;
            for (&t, &v) in ts.iter().zip(values) {
                w.byte(0x92);
                int(w, t);
                float(w, v);
            }
        }
        (Layout::Rows, Series::Agg { name, aggs }) => {
            map_header(w, 2)?;
            str_(w, "name")?;
            str_(w, name)?;
            str_(w, "aggregations")?;
            array_header(w, aggs.ts.len())?;
            write_buckets(w, &aggs);
        }
        (Layout::Columns, Series::Raw { name, ts, values }) => {
            map_header(w, 3)?;
            str_(w, "name")?;
            str_(w, name)?;
            str_(w, "t")?;
            bin_header(w, ts.len())?;
            w.i64_as_f64_le(ts);
            str_(w, "v")?;
            bin_header(w, values.len())?;
            w.f64_le(values);
        }
        (Layout::Columns, Series::Agg { name, aggs }) => {
            let extra =
                if aggs.first_last.is_some() { 2 } else { 0 } + usize::from(aggs.partial_last);
            map_header(w, 8 + extra)?;
            str_(w, "name")?;
            str_(w, name)?;
            str_(w, "t")?;
            bin_header(w, aggs.ts.len())?;
            w.i64_as_f64_le(aggs.ts);
            for (key, col) in [
                ("avg", aggs.avg),
                ("min", aggs.min),
                ("max", aggs.max),
                ("sum", aggs.sum),
            ] {
                str_(w, key)?;
                bin_header(w, col.len())?;
                w.f64_le(col);
            }
            str_(w, "count")?;
            bin_header(w, aggs.count.len())?;
            w.i64_as_f64_le(aggs.count);
            str_(w, "stddev")?;
            bin_header(w, aggs.stddev.len())?;
            w.f64_le(aggs.stddev);
            if let Some((first, last)) = aggs.first_last {
                for (key, col) in [("first", first), ("last", last)] {
                    str_(w, key)?;
                    bin_header(w, col.len())?;
                    w.f64_le(col);
                }
            }
            if aggs.partial_last {
                str_(w, "partialLast")?;
                w.byte(0xc3);
            }
        }
        (Layout::Rows, Series::Stats { name, stats }) => {
            map_header(w, 2)?;
            str_(w, "name")?;
            str_(w, name)?;
            str_(w, "aggregations")?;
            array_header(w, stats.ts.len())?;
            write_stats(w, &stats)?;
        }
        (Layout::Columns, Series::Stats { name, stats }) => {
            map_header(w, 2 + stats.columns.len() + usize::from(stats.partial_last))?;
            str_(w, "name")?;
            str_(w, name)?;
            str_(w, "t")?;
            bin_header(w, stats.ts.len())?;
            w.i64_as_f64_le(stats.ts);
            for stat in stats.columns {
                str_(w, stat.name)?;
                bin_header(w, stat.column.len())?;
                match stat.column {
                    Column::Int(c) => w.i64_as_f64_le(c),
                    Column::Float(c) => w.f64_le(c),
                }
            }
            if stats.partial_last {
                str_(w, "partialLast")?;
                w.byte(0xc3);
            }
        }
    }
    Ok(())
}

/// The elements of an `aggregations` array of chosen statistics (its header is already
/// written): `timestamp`, then each column by name, in order.
fn write_stats<S: Sink>(w: &mut S, a: &Stats<'_>) -> Result<()> {
    // Each key once as its MessagePack string (names are short and plain: validated).
    let mut keys: Vec<Vec<u8>> = Vec::with_capacity(a.columns.len());
    for stat in a.columns {
        let mut c = Counter(0);
        str_(&mut c, stat.name)?;
        let mut key = vec![0; c.0];
        let mut o = Out::new(&mut key);
        str_(&mut o, stat.name)?;
        o.finish()?;
        keys.push(key);
    }
    for i in 0..a.ts.len() {
        map_header(w, 1 + a.columns.len() + usize::from(a.partial(i)))?;
        w.array(K_TIMESTAMP);
        int(w, a.ts[i]);
        for (key, stat) in keys.iter().zip(a.columns) {
            w.bytes(key);
            match stat.column {
                Column::Int(c) => int(w, c[i]),
                Column::Float(c) => float(w, c[i]),
            }
        }
        if a.partial(i) {
            w.array(K_PARTIAL);
        }
    }
    Ok(())
}

fn too_long(what: &str, n: usize) -> CoreError {
    CoreError::Encode(format!(
        "{what} of length {n} exceeds the MessagePack limit of 4294967295"
    ))
}

fn len_u32(what: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| too_long(what, n))
}

pub(crate) fn map_header<S: Sink>(w: &mut S, n: usize) -> Result<()> {
    match n {
        0..=15 => w.byte(0x80 | n as u8),
        16..=0xffff => {
            w.byte(0xde);
            w.array((n as u16).to_be_bytes());
        }
        _ => {
            w.byte(0xdf);
            w.array(len_u32("map", n)?.to_be_bytes());
        }
    }
    Ok(())
}

pub(crate) fn array_header<S: Sink>(w: &mut S, n: usize) -> Result<()> {
    match n {
        0..=15 => w.byte(0x90 | n as u8),
        16..=0xffff => {
            w.byte(0xdc);
            w.array((n as u16).to_be_bytes());
        }
        _ => {
            w.byte(0xdd);
            w.array(len_u32("array", n)?.to_be_bytes());
        }
    }
    Ok(())
}

/// Header of a bin holding `count` float64 values.
fn bin_header<S: Sink>(w: &mut S, count: usize) -> Result<()> {
    let n = count
        .checked_mul(8)
        .ok_or_else(|| too_long("bin", usize::MAX))?;
    match n {
        0..=0xff => w.array([0xc4, n as u8]),
        0x100..=0xffff => {
            w.byte(0xc5);
            w.array((n as u16).to_be_bytes());
        }
        _ => {
            w.byte(0xc6);
            w.array(len_u32("bin", n)?.to_be_bytes());
        }
    }
    Ok(())
}

/// A `str` (str8 is used from 32 bytes on, as `msgpack.packb` does with `use_bin_type`).
pub(crate) fn str_<S: Sink>(w: &mut S, s: &str) -> Result<()> {
    let n = s.len();
    match n {
        0..=31 => w.byte(0xa0 | n as u8),
        32..=0xff => w.array([0xd9, n as u8]),
        0x100..=0xffff => {
            w.byte(0xda);
            w.array((n as u16).to_be_bytes());
        }
        _ => {
            w.byte(0xdb);
            w.array(len_u32("str", n)?.to_be_bytes());
        }
    }
    w.bytes(s.as_bytes());
    Ok(())
}

/// The smallest integer encoding, unsigned families for `v >= 0` (as `msgpack.packb`).
#[inline(always)]
fn int<S: Sink>(w: &mut S, v: i64) {
    if v >= 0 {
        if v < 0x80 {
            w.byte(v as u8);
        } else if v <= 0xff {
            w.array([0xcc, v as u8]);
        } else if v <= 0xffff {
            let b = (v as u16).to_be_bytes();
            w.array([0xcd, b[0], b[1]]);
        } else if v <= 0xffff_ffff {
            let b = (v as u32).to_be_bytes();
            w.array([0xce, b[0], b[1], b[2], b[3]]);
        } else {
            let b = (v as u64).to_be_bytes();
            w.array([0xcf, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        }
    } else if v >= -32 {
        w.byte(v as u8); // negative fixint: 0xe0..=0xff
    } else if v >= -0x80 {
        w.array([0xd0, v as u8]);
    } else if v >= -0x8000 {
        let b = (v as i16).to_be_bytes();
        w.array([0xd1, b[0], b[1]]);
    } else if v >= -0x8000_0000 {
        let b = (v as i32).to_be_bytes();
        w.array([0xd2, b[0], b[1], b[2], b[3]]);
    } else {
        let b = v.to_be_bytes();
        w.array([0xd3, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    }
}

/// float64, or nil for NaN.
#[inline(always)]
fn float<S: Sink>(w: &mut S, v: f64) {
    if v.is_nan() {
        w.byte(0xc0);
    } else {
        let b = v.to_be_bytes();
        w.array([0xcb, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    }
}

/// fixstr keys of a bucket map.
const K_TIMESTAMP: [u8; 10] = *b"\xa9timestamp";
const K_AVG: [u8; 4] = *b"\xa3avg";
const K_MIN: [u8; 4] = *b"\xa3min";
const K_MAX: [u8; 4] = *b"\xa3max";
const K_SUM: [u8; 4] = *b"\xa3sum";
const K_COUNT: [u8; 6] = *b"\xa5count";
const K_STDDEV: [u8; 7] = *b"\xa6stddev";
const K_FIRST: [u8; 6] = *b"\xa5first";
const K_LAST: [u8; 5] = *b"\xa4last";
const K_PARTIAL: [u8; 9] = *b"\xa7partial\xc3";

/// The elements of an `aggregations` array (its header is already written).
fn write_buckets<S: Sink>(w: &mut S, a: &Aggregates<'_>) {
    for i in 0..a.ts.len() {
        let keys = 7 + if a.first_last.is_some() { 2 } else { 0 } + u8::from(a.partial(i));
        w.byte(0x80 | keys);
        w.array(K_TIMESTAMP);
        int(w, a.ts[i]);
        w.array(K_AVG);
        float(w, a.avg[i]);
        w.array(K_MIN);
        float(w, a.min[i]);
        w.array(K_MAX);
        float(w, a.max[i]);
        w.array(K_SUM);
        float(w, a.sum[i]);
        w.array(K_COUNT);
        int(w, a.count[i]);
        w.array(K_STDDEV);
        float(w, a.stddev[i]);
        if let Some((first, last)) = a.first_last {
            w.array(K_FIRST);
            float(w, first[i]);
            w.array(K_LAST);
            float(w, last[i]);
        }
        if a.partial(i) {
            w.array(K_PARTIAL);
        }
    }
}

/// Metadata (depth already checked by the caller).
fn write_meta<S: Sink>(w: &mut S, v: &Meta) -> Result<()> {
    match v {
        Meta::Null => w.byte(0xc0),
        Meta::Bool(b) => w.byte(if *b { 0xc3 } else { 0xc2 }),
        Meta::Int(i) => int(w, *i),
        Meta::UInt(u) => match i64::try_from(*u) {
            Ok(i) => int(w, i),
            Err(_) => {
                w.byte(0xcf);
                w.array(u.to_be_bytes());
            }
        },
        Meta::Float(f) => float(w, *f),
        Meta::Str(s) => str_(w, s)?,
        Meta::List(items) => {
            array_header(w, items.len())?;
            for item in items {
                write_meta(w, item)?;
            }
        }
        Meta::Map(items) => {
            map_header(w, items.len())?;
            for (k, item) in items {
                str_(w, k)?;
                write_meta(w, item)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(name: &'a str, ts: &'a [i64], values: &'a [f64]) -> Series<'a> {
        Series::Raw { name, ts, values }
    }

    fn empty() -> Meta {
        Meta::Map(vec![])
    }

    /// `{"metadata":{},"series":` followed by the given array header.
    fn prefix(series_header: u8) -> Vec<u8> {
        let mut v = vec![0x82, 0xa8];
        v.extend_from_slice(b"metadata");
        v.push(0x80);
        v.push(0xa6);
        v.extend_from_slice(b"series");
        v.push(series_header);
        v
    }

    fn int_bytes(v: i64) -> Vec<u8> {
        let mut n = Counter(0);
        int(&mut n, v);
        let mut out = vec![0; n.0];
        let mut w = Out::new(&mut out);
        int(&mut w, v);
        w.finish().unwrap();
        out
    }

    #[test]
    fn empty_series_list() {
        for layout in [Layout::Rows, Layout::Columns] {
            assert_eq!(encode(&empty(), &[], layout).unwrap(), prefix(0x90));
        }
    }

    #[test]
    fn empty_arrays() {
        let rows = encode(&empty(), &[raw("a", &[], &[])], Layout::Rows).unwrap();
        let mut expect = prefix(0x91);
        expect.extend_from_slice(b"\x82\xa4name\xa1a\xa4data\x90");
        assert_eq!(rows, expect);

        let cols = encode(&empty(), &[raw("a", &[], &[])], Layout::Columns).unwrap();
        let mut expect = prefix(0x91);
        expect.extend_from_slice(b"\x83\xa4name\xa1a\xa1t\xc4\x00\xa1v\xc4\x00");
        assert_eq!(cols, expect);
    }

    #[test]
    fn one_sample_rows() {
        let out = encode(
            &empty(),
            &[raw("a", &[1704067200000], &[72.5])],
            Layout::Rows,
        )
        .unwrap();
        let mut expect = prefix(0x91);
        expect.extend_from_slice(b"\x82\xa4name\xa1a\xa4data\x91\x92\xcf");
        expect.extend_from_slice(&1704067200000u64.to_be_bytes());
        expect.push(0xcb);
        expect.extend_from_slice(&72.5f64.to_be_bytes());
        assert_eq!(out, expect);
    }

    #[test]
    fn int_encodings() {
        let cases: &[(i64, &[u8])] = &[
            (0, b"\x00"),
            (127, b"\x7f"),
            (128, b"\xcc\x80"),
            (255, b"\xcc\xff"),
            (256, b"\xcd\x01\x00"),
            (65535, b"\xcd\xff\xff"),
            (65536, b"\xce\x00\x01\x00\x00"),
            (4294967295, b"\xce\xff\xff\xff\xff"),
            (4294967296, b"\xcf\x00\x00\x00\x01\x00\x00\x00\x00"),
            (i64::MAX, b"\xcf\x7f\xff\xff\xff\xff\xff\xff\xff"),
            (-1, b"\xff"),
            (-32, b"\xe0"),
            (-33, b"\xd0\xdf"),
            (-128, b"\xd0\x80"),
            (-129, b"\xd1\xff\x7f"),
            (-32768, b"\xd1\x80\x00"),
            (-32769, b"\xd2\xff\xff\x7f\xff"),
            (-2147483648, b"\xd2\x80\x00\x00\x00"),
            (-2147483649, b"\xd3\xff\xff\xff\xff\x7f\xff\xff\xff"),
            (i64::MIN, b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
        ];
        for &(v, bytes) in cases {
            assert_eq!(int_bytes(v), bytes, "{v}");
        }
    }

    #[test]
    fn nan_is_nil_inf_is_float() {
        let out = encode(
            &empty(),
            &[raw("a", &[-1, 0], &[f64::NAN, f64::NEG_INFINITY])],
            Layout::Rows,
        )
        .unwrap();
        let mut expect = prefix(0x91);
        expect.extend_from_slice(b"\x82\xa4name\xa1a\xa4data\x92\x92\xff\xc0\x92\x00\xcb");
        expect.extend_from_slice(&f64::NEG_INFINITY.to_be_bytes());
        assert_eq!(out, expect);
    }

    #[test]
    fn columns_are_le_float64() {
        let ts = [i64::MIN, -60_000, 0, 1704067200000];
        let vs = [f64::NAN, -0.0, f64::INFINITY, 5e-324];
        let out = encode(&empty(), &[raw("p", &ts, &vs)], Layout::Columns).unwrap();
        let mut expect = prefix(0x91);
        expect.extend_from_slice(b"\x83\xa4name\xa1p\xa1t\xc4\x20");
        for t in ts {
            expect.extend_from_slice(&(t as f64).to_le_bytes());
        }
        expect.extend_from_slice(b"\xa1v\xc4\x20");
        for v in vs {
            expect.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(out, expect);
    }

    #[test]
    fn long_headers() {
        let n = 70_000;
        let ts: Vec<i64> = (0..n).collect();
        let vs = vec![1.0; n as usize];
        let out = encode(&empty(), &[raw("a", &ts, &vs)], Layout::Rows).unwrap();
        let head = prefix(0x91).len() + b"\x82\xa4name\xa1a\xa4data".len();
        assert_eq!(&out[head..head + 5], b"\xdd\x00\x01\x11\x70");
        let out = encode(&empty(), &[raw("a", &ts[..20], &vs[..20])], Layout::Rows).unwrap();
        assert_eq!(&out[head..head + 3], b"\xdc\x00\x14");
        let out = encode(&empty(), &[raw("a", &ts[..40], &vs[..40])], Layout::Columns).unwrap();
        let head = prefix(0x91).len() + b"\x83\xa4name\xa1a\xa1t".len();
        assert_eq!(&out[head..head + 3], b"\xc5\x01\x40");
        let out = encode(&empty(), &[raw("a", &ts, &vs)], Layout::Columns).unwrap();
        assert_eq!(&out[head..head + 5], b"\xc6\x00\x08\x8b\x80");
    }

    #[test]
    fn aggregations_rows_and_columns() {
        let aggs = Aggregates {
            ts: &[0],
            count: &[60],
            sum: &[1.0],
            min: &[2.0],
            max: &[3.0],
            avg: &[4.0],
            stddev: &[f64::NAN],
            first_last: None,
            partial_last: false,
        };
        let s = [Series::Agg { name: "a", aggs }];
        let out = encode(&empty(), &s, Layout::Rows).unwrap();
        let mut expect = prefix(0x91);
        expect.extend_from_slice(b"\x82\xa4name\xa1a\xacaggregations\x91\x87\xa9timestamp\x00");
        for (k, v) in [("avg", 4.0f64), ("min", 2.0), ("max", 3.0), ("sum", 1.0)] {
            expect.push(0xa3);
            expect.extend_from_slice(k.as_bytes());
            expect.push(0xcb);
            expect.extend_from_slice(&v.to_be_bytes());
        }
        expect.extend_from_slice(b"\xa5count\x3c\xa6stddev\xc0");
        assert_eq!(out, expect);

        let out = encode(&empty(), &s, Layout::Columns).unwrap();
        let mut expect = prefix(0x91);
        expect.extend_from_slice(b"\x88\xa4name\xa1a");
        for (k, v) in [
            ("t", 0.0f64),
            ("avg", 4.0),
            ("min", 2.0),
            ("max", 3.0),
            ("sum", 1.0),
            ("count", 60.0),
            ("stddev", f64::NAN),
        ] {
            expect.push(0xa0 | k.len() as u8);
            expect.extend_from_slice(k.as_bytes());
            expect.extend_from_slice(b"\xc4\x08");
            expect.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(out, expect);
    }

    #[test]
    fn nested_metadata() {
        let long = "x".repeat(40);
        let meta = Meta::Map(vec![
            ("s".into(), Meta::Str(long.clone())),
            (
                "l".into(),
                Meta::List(vec![Meta::Null, Meta::Bool(true), Meta::Bool(false)]),
            ),
            ("u".into(), Meta::UInt(u64::MAX)),
            ("v".into(), Meta::UInt(5)),
            ("f".into(), Meta::Float(f64::NAN)),
            ("m".into(), Meta::Map(vec![("k".into(), Meta::Int(-200))])),
        ]);
        let out = encode(&meta, &[], Layout::Rows).unwrap();
        let mut expect = vec![0x82, 0xa8];
        expect.extend_from_slice(b"metadata\x86\xa1s\xd9\x28");
        expect.extend_from_slice(long.as_bytes());
        expect.extend_from_slice(b"\xa1l\x93\xc0\xc3\xc2\xa1u\xcf\xff\xff\xff\xff\xff\xff\xff\xff");
        expect.extend_from_slice(b"\xa1v\x05\xa1f\xc0\xa1m\x81\xa1k\xd1\xff\x38");
        expect.extend_from_slice(b"\xa6series\x90");
        assert_eq!(out, expect);
    }

    #[test]
    fn errors() {
        let err = encode(&empty(), &[raw("p", &[1], &[])], Layout::Rows)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"p\""), "{err}");
        let mut v = Meta::Null;
        for _ in 0..65 {
            v = Meta::Map(vec![("k".into(), v)]);
        }
        assert!(encode(&v, &[], Layout::Columns).is_err());
    }

    #[test]
    fn encode_into_checks_the_buffer_size() {
        let s = [raw("a", &[1, 2], &[1.0, f64::NAN])];
        for layout in [Layout::Rows, Layout::Columns] {
            let n = encoded_len(&empty(), &s, layout).unwrap();
            let mut exact = vec![MaybeUninit::uninit(); n];
            encode_into(&empty(), &s, layout, &mut exact).unwrap();
            let mut short = vec![MaybeUninit::uninit(); n - 1];
            assert!(encode_into(&empty(), &s, layout, &mut short).is_err());
            let mut long = vec![MaybeUninit::uninit(); n + 1];
            assert!(encode_into(&empty(), &s, layout, &mut long).is_err());
        }
    }
}
