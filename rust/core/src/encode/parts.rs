//! A document written in parts: a head, one part per series, a tail.
//!
//! A long export is written series by series, so it never has to be held whole:
//! [`head`] is everything before the first series, [`part`] one series as it appears at
//! position `index` of the document (with the separator that precedes it), [`tail`]
//! everything after the last. Concatenated, they are byte for byte the whole-document
//! encoding of the same series:
//!
//! ```text
//! head(f, meta, n) + part(f, s0, 0) + .. + part(f, s[n-1], n-1) + tail(f)
//!     == json::encode(meta, s) | msgpack::encode(meta, s, layout) | csv::encode(s)
//! ```
//!
//! because each format's whole-document encoder is itself written as these same pieces.
//! The head must know the number of series for MessagePack (the series array header
//! carries it) and the kind of series for CSV (the header line names the columns).
//! Each piece is measured exactly first (`*_len`), then written into a buffer of that
//! size (`*_into`), as the whole-document encoders are.

use std::mem::MaybeUninit;

use super::meta::Meta;
use super::sink::{to_vec, Counter, Out, Sink};
use super::{csv, json, msgpack, Layout, Series};
use crate::error::{CoreError, Result};

/// A wire format of a response or export document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Msgpack,
    Csv,
}

impl Format {
    pub const NAMES: [&'static str; 3] = ["json", "msgpack", "csv"];

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "json" => Ok(Format::Json),
            "msgpack" => Ok(Format::Msgpack),
            "csv" => Ok(Format::Csv),
            other => Err(CoreError::Argument(format!(
                "format must be one of 'json', 'msgpack', 'csv', got {other:?}"
            ))),
        }
    }
}

/// What the head of a document depends on.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    /// The `metadata` member (JSON and MessagePack; not part of CSV).
    pub metadata: &'a Meta,
    /// How many series the document will hold (the MessagePack array header). The
    /// head is the same for both MessagePack layouts.
    pub n_series: usize,
    /// CSV only: whether the series are aggregates (the header line). A document of
    /// no series has the raw header, as [`csv::encode`] of an empty list does.
    pub aggregated: bool,
    /// CSV only: the columns of series of chosen statistics ([`super::Stats`]), whose
    /// header line names them (and `partial`); None for raw and aggregate series.
    pub columns: Option<&'a [&'a str]>,
}

fn write_head<S: Sink>(w: &mut S, format: Format, h: &Head<'_>) -> Result<()> {
    match format {
        Format::Json => json::head(w, h.metadata),
        Format::Msgpack => msgpack::head(w, h.metadata, h.n_series)?,
        Format::Csv => match h.columns {
            Some(names) if h.n_series > 0 => csv::stats_head(w, names.iter().copied()),
            _ => csv::head(w, h.aggregated && h.n_series > 0),
        },
    }
    Ok(())
}

fn check_head(format: Format, h: &Head<'_>) -> Result<()> {
    if format != Format::Csv {
        h.metadata.check_depth()?;
    }
    if let Some(names) = h.columns {
        // The columns a statistics series of these names would pass.
        let stats: Vec<super::Stat<'_>> = names
            .iter()
            .map(|&name| super::Stat {
                name,
                column: super::Column::Float(&[]),
            })
            .collect();
        let probe = Series::Stats {
            name: "",
            stats: super::Stats {
                ts: &[],
                columns: &stats,
                value: 0,
                partial_last: false,
            },
        };
        probe.validate()?;
    }
    Ok(())
}

/// Exact size of the head.
pub fn head_len(format: Format, h: &Head<'_>) -> Result<usize> {
    check_head(format, h)?;
    let mut c = Counter(0);
    write_head(&mut c, format, h)?;
    Ok(c.0)
}

/// Write the head into `out`, which must be exactly [`head_len`] bytes long (it may be
/// uninitialised). `Ok` means every byte of `out` has been written.
pub fn head_into(format: Format, h: &Head<'_>, out: &mut [MaybeUninit<u8>]) -> Result<()> {
    check_head(format, h)?;
    let mut w = Out::uninit(out);
    write_head(&mut w, format, h)?;
    w.finish()
}

/// Everything before the first series.
pub fn head(format: Format, h: &Head<'_>) -> Result<Vec<u8>> {
    // SAFETY: `head_into` writes every byte of its buffer when it returns `Ok`.
    unsafe { to_vec(|| head_len(format, h), |out| head_into(format, h, out)) }
}

fn write_part<S: Sink>(
    w: &mut S,
    format: Format,
    series: &Series<'_>,
    index: usize,
    layout: Layout,
) -> Result<()> {
    match format {
        Format::Json => json::item(w, index, series),
        Format::Msgpack => msgpack::item(w, series, layout)?,
        Format::Csv => csv::item(w, &mut csv::Clock::new(), series),
    }
    Ok(())
}

/// Exact size of one series' part.
pub fn part_len(
    format: Format,
    series: &Series<'_>,
    index: usize,
    layout: Layout,
) -> Result<usize> {
    series.validate()?;
    let mut c = Counter(0);
    write_part(&mut c, format, series, index, layout)?;
    Ok(c.0)
}

/// Write one series' part into `out`, which must be exactly [`part_len`] bytes long (it
/// may be uninitialised). `Ok` means every byte of `out` has been written.
pub fn part_into(
    format: Format,
    series: &Series<'_>,
    index: usize,
    layout: Layout,
    out: &mut [MaybeUninit<u8>],
) -> Result<()> {
    series.validate()?;
    let mut w = Out::uninit(out);
    write_part(&mut w, format, series, index, layout)?;
    w.finish()
}

/// The series at position `index` of the document, as it appears there: with the
/// separator that precedes it (a JSON comma when `index > 0`). `layout` is MessagePack's.
pub fn part(format: Format, series: &Series<'_>, index: usize, layout: Layout) -> Result<Vec<u8>> {
    // SAFETY: `part_into` writes every byte of its buffer when it returns `Ok`.
    unsafe {
        to_vec(
            || part_len(format, series, index, layout),
            |out| part_into(format, series, index, layout, out),
        )
    }
}

/// Everything after the last series.
pub fn tail(format: Format) -> &'static [u8] {
    match format {
        Format::Json => json::TAIL,
        Format::Msgpack | Format::Csv => b"",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Aggregates;

    const LAYOUTS: [Layout; 2] = [Layout::Rows, Layout::Columns];

    /// head + parts + tail, for `series`.
    fn joined(format: Format, meta: &Meta, series: &[Series<'_>], layout: Layout) -> Vec<u8> {
        let aggregated = matches!(series.first(), Some(Series::Agg { .. }));
        let names: Vec<&str> = match series.first() {
            Some(Series::Stats { stats, .. }) => stats.columns.iter().map(|c| c.name).collect(),
            _ => vec![],
        };
        let h = Head {
            metadata: meta,
            n_series: series.len(),
            aggregated,
            columns: (!names.is_empty()).then_some(&names[..]),
        };
        let mut out = head(format, &h).unwrap();
        assert_eq!(out.len(), head_len(format, &h).unwrap());
        for (i, s) in series.iter().enumerate() {
            let p = part(format, s, i, layout).unwrap();
            assert_eq!(p.len(), part_len(format, s, i, layout).unwrap());
            out.extend_from_slice(&p);
        }
        out.extend_from_slice(tail(format));
        out
    }

    fn whole(format: Format, meta: &Meta, series: &[Series<'_>], layout: Layout) -> Vec<u8> {
        match format {
            Format::Json => json::encode(meta, series).unwrap(),
            Format::Msgpack => msgpack::encode(meta, series, layout).unwrap(),
            Format::Csv => csv::encode(series).unwrap(),
        }
    }

    fn check(meta: &Meta, series: &[Series<'_>]) {
        for format in [Format::Json, Format::Msgpack, Format::Csv] {
            for layout in LAYOUTS {
                assert_eq!(
                    joined(format, meta, series, layout),
                    whole(format, meta, series, layout),
                    "{format:?} {layout:?}, {} series",
                    series.len()
                );
            }
        }
    }

    fn meta() -> Meta {
        Meta::Map(vec![
            ("siteId".into(), "s\"1".into()),
            ("n".into(), Meta::Int(-3)),
            ("nan".into(), Meta::Float(f64::NAN)),
            (
                "list".into(),
                Meta::List(vec![Meta::Null, Meta::Bool(true)]),
            ),
        ])
    }

    #[test]
    fn format_parse() {
        for (i, name) in Format::NAMES.iter().enumerate() {
            let f = Format::parse(name).unwrap();
            assert_eq!(f, [Format::Json, Format::Msgpack, Format::Csv][i]);
        }
        let err = Format::parse("xml").unwrap_err().to_string();
        assert!(
            err.contains("'json', 'msgpack', 'csv'") && err.contains("\"xml\""),
            "{err}"
        );
    }

    #[test]
    fn raw_series_join_to_the_whole_document() {
        let ts: Vec<i64> = (0..40).map(|i| 1_704_067_200_000 + i * 60_000).collect();
        let vs: Vec<f64> = (0..40)
            .map(|i| if i % 7 == 0 { f64::NAN } else { i as f64 / 3.0 })
            .collect();
        let raw = |name, n: usize| Series::Raw {
            name,
            ts: &ts[..n],
            values: &vs[..n],
        };
        check(&meta(), &[]);
        check(&Meta::Map(vec![]), &[raw("a", 0)]);
        check(&meta(), &[raw("a", 1)]);
        check(&meta(), &[raw("a,\"b\"", 40), raw("", 0), raw("c", 3)]);
        let names: Vec<String> = (0..17).map(|i| format!("p{i}")).collect();
        let many: Vec<Series<'_>> = names.iter().map(|n| raw(n, 5)).collect();
        check(&meta(), &many[..15]);
        check(&meta(), &many[..16]);
        check(&meta(), &many);
    }

    #[test]
    fn aggregate_series_join_to_the_whole_document() {
        let ts = [0i64, 3_600_000];
        let count = [3i64, 0];
        let f = [1.5, f64::NAN];
        let aggs = Aggregates {
            ts: &ts,
            count: &count,
            sum: &f,
            min: &f,
            max: &f,
            avg: &f,
            stddev: &f,
            first_last: None,
            partial_last: false,
        };
        let empty = Aggregates {
            ts: &[],
            count: &[],
            sum: &[],
            min: &[],
            max: &[],
            avg: &[],
            stddev: &[],
            first_last: None,
            partial_last: false,
        };
        check(
            &meta(),
            &[
                Series::Agg { name: "g", aggs },
                Series::Agg {
                    name: "h",
                    aggs: empty,
                },
            ],
        );
    }

    #[test]
    fn msgpack_head_carries_the_array_header() {
        let m = Meta::Map(vec![]);
        let expected_tail: [(usize, &[u8]); 6] = [
            (0, &[0x90]),
            (1, &[0x91]),
            (15, &[0x9f]),
            (16, &[0xdc, 0x00, 0x10]),
            (65_535, &[0xdc, 0xff, 0xff]),
            (65_536, &[0xdd, 0x00, 0x01, 0x00, 0x00]),
        ];
        let empty_doc = msgpack::encode(&m, &[], Layout::Rows).unwrap();
        for (n, header) in expected_tail {
            let h = Head {
                metadata: &m,
                n_series: n,
                aggregated: false,
                columns: None,
            };
            let got = head(Format::Msgpack, &h).unwrap();
            let mut want = empty_doc[..empty_doc.len() - 1].to_vec();
            want.extend_from_slice(header);
            assert_eq!(got, want, "{n}");
        }
        let h = Head {
            metadata: &m,
            n_series: u32::MAX as usize + 1,
            aggregated: false,
            columns: None,
        };
        let err = head(Format::Msgpack, &h).unwrap_err();
        assert!(matches!(err, CoreError::Encode(_)), "{err:?}");
    }

    #[test]
    fn csv_head_and_json_separators() {
        let m = Meta::Null;
        let h = |n_series, aggregated| Head {
            metadata: &m,
            n_series,
            aggregated,
            columns: None,
        };
        assert_eq!(
            head(Format::Csv, &h(1, false)).unwrap(),
            csv::RAW_HEADER.as_bytes()
        );
        assert_eq!(
            head(Format::Csv, &h(1, true)).unwrap(),
            csv::AGG_HEADER.as_bytes()
        );
        // No series: the raw header, as csv::encode(&[]) writes.
        assert_eq!(
            head(Format::Csv, &h(0, true)).unwrap(),
            csv::RAW_HEADER.as_bytes()
        );
        assert_eq!(
            head(Format::Json, &h(3, false)).unwrap(),
            b"{\"metadata\":null,\"series\":["
        );
        let s = Series::Raw {
            name: "a",
            ts: &[1],
            values: &[2.0],
        };
        let first = part(Format::Json, &s, 0, Layout::Rows).unwrap();
        let later = part(Format::Json, &s, 7, Layout::Rows).unwrap();
        assert_eq!(first, b"{\"name\":\"a\",\"data\":[[1,2.0]]}");
        assert_eq!(later[0], b',');
        assert_eq!(&later[1..], &first[..]);
        assert_eq!(tail(Format::Json), b"]}");
        assert_eq!(tail(Format::Msgpack), b"");
        assert_eq!(tail(Format::Csv), b"");
    }

    #[test]
    fn bad_input_is_an_error() {
        let bad = Series::Raw {
            name: "p",
            ts: &[1, 2],
            values: &[1.0],
        };
        for format in [Format::Json, Format::Msgpack, Format::Csv] {
            let err = part(format, &bad, 0, Layout::Rows).unwrap_err();
            assert!(matches!(err, CoreError::Length(_)), "{err:?}");
        }
        let mut deep = Meta::Null;
        for _ in 0..70 {
            deep = Meta::List(vec![deep]);
        }
        let h = Head {
            metadata: &deep,
            n_series: 0,
            aggregated: false,
            columns: None,
        };
        for format in [Format::Json, Format::Msgpack] {
            assert!(head(format, &h)
                .unwrap_err()
                .to_string()
                .contains("nested deeper"));
        }
        let s = Series::Raw {
            name: "a",
            ts: &[1],
            values: &[2.0],
        };
        let n = part_len(Format::Json, &s, 1, Layout::Rows).unwrap();
        let mut short = vec![MaybeUninit::uninit(); n - 1];
        assert!(part_into(Format::Json, &s, 1, Layout::Rows, &mut short).is_err());
    }
}
