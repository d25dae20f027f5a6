//! CSV exports in long format (RFC 4180: CRLF line ends, minimal quoting).
//!
//! Raw series: `time,point,value`; aggregate series:
//! `time,point,count,sum,min,max,avg,stddev`; series of chosen statistics:
//! `time,point,<their columns>,partial` (`partial` is `true` on a series' running last
//! bucket, else `false`). One list must hold one kind (statistics series: the same
//! columns). Rows come
//! series by series, in the order given. `time` is ISO 8601 UTC with milliseconds
//! (`2024-01-01T00:00:00.000Z`); years outside 0000..=9999 use the expanded form of
//! JavaScript's `toISOString` (`+275760-09-13T00:00:00.000Z`, `-000001-12-31T...`).
//! Floats are shortest round-trip decimals; NaN is an empty field, ±inf `inf`/`-inf`.
//! A point name is quoted (quotes doubled) when it holds a comma, quote, CR or LF.

use std::mem::MaybeUninit;

use super::sink::{to_vec, Counter, Out, Sink};
use super::{validate_all, Aggregates, Column, Series, Stats};
use crate::error::{CoreError, Result};
use crate::time::civil_from_days;

pub const RAW_HEADER: &str = "time,point,value\r\n";
pub const AGG_HEADER: &str = "time,point,count,sum,min,max,avg,stddev\r\n";

/// Encode series as long-format CSV. An empty list gives the raw header alone.
pub fn encode(series: &[Series<'_>]) -> Result<Vec<u8>> {
    // SAFETY: `encode_into` writes every byte of its buffer when it returns `Ok`.
    unsafe { to_vec(|| encoded_len(series), |out| encode_into(series, out)) }
}

/// Exact size of the CSV text.
pub fn encoded_len(series: &[Series<'_>]) -> Result<usize> {
    check(series)?;
    let mut c = Counter(0);
    document(&mut c, series);
    Ok(c.0)
}

/// Write the CSV text into `out`, which must be exactly [`encoded_len`] bytes long (it
/// may be uninitialised). `Ok` means every byte of `out` has been written.
pub fn encode_into(series: &[Series<'_>], out: &mut [MaybeUninit<u8>]) -> Result<()> {
    check(series)?;
    let mut w = Out::uninit(out);
    document(&mut w, series);
    w.finish()
}

/// Equal lengths, and one kind of series (statistics series: one set of columns).
fn check(series: &[Series<'_>]) -> Result<()> {
    validate_all(series)?;
    if let Some(Series::Stats { stats: first, .. }) = series.first() {
        if let Some(other) = series
            .iter()
            .find(|s| !matches!(s, Series::Stats { stats, .. } if stats.same_columns(first)))
        {
            return Err(CoreError::Argument(format!(
                "CSV series of statistics must all have the same columns, but {:?} and {:?} \
                 differ",
                series[0].name(),
                other.name()
            )));
        }
        return Ok(());
    }
    let Some(first) = series.first() else {
        return Ok(());
    };
    let kind_of = std::mem::discriminant::<Series<'_>>;
    match series.iter().find(|s| kind_of(s) != kind_of(first)) {
        Some(other) => Err(CoreError::Argument(format!(
            "CSV series must all be raw or all be aggregates, but {:?} is {} and {:?} is {}",
            series[0].name(),
            kind(&series[0]),
            other.name(),
            kind(other)
        ))),
        None => Ok(()),
    }
}

/// The text is [`head`] (the header line), then [`item`] for each series; there is
/// nothing after the last row. The parts API writes the same pieces one at a time.
fn document<S: Sink>(w: &mut S, series: &[Series<'_>]) {
    match series.first() {
        Some(Series::Stats { stats, .. }) => stats_head(w, stats.columns.iter().map(|c| c.name)),
        first => head(w, matches!(first, Some(Series::Agg { .. }))),
    }
    let mut clock = Clock::new();
    for s in series {
        item(w, &mut clock, s);
    }
}

/// The header line: aggregate columns when `aggregated`, else raw ones.
pub(crate) fn head<S: Sink>(w: &mut S, aggregated: bool) {
    w.bytes(if aggregated { AGG_HEADER } else { RAW_HEADER }.as_bytes());
}

/// The header line of series of chosen statistics: `time,point`, the columns, `partial`.
pub(crate) fn stats_head<'a, S: Sink>(w: &mut S, names: impl Iterator<Item = &'a str>) {
    w.bytes(b"time,point");
    for name in names {
        w.byte(b',');
        w.bytes(name.as_bytes());
    }
    w.bytes(b",partial\r\n");
}

/// The rows of one series. `clock` only caches the date text: a fresh one writes the
/// same bytes.
pub(crate) fn item<S: Sink>(w: &mut S, clock: &mut Clock, s: &Series<'_>) {
    let point = quoted(s.name());
    match *s {
        Series::Raw { ts, values, .. } => write_raw(w, clock, &point, ts, values),
        Series::Agg { aggs, .. } => write_agg(w, clock, &point, &aggs),
        Series::Stats { stats, .. } => write_stats(w, clock, &point, &stats),
    }
}

fn kind(s: &Series<'_>) -> &'static str {
    match s {
        Series::Raw { .. } => "raw",
        Series::Agg { .. } | Series::Stats { .. } => "aggregated",
    }
}

/// The point field as written: quoted when it holds a delimiter, quote or line break.
fn quoted(name: &str) -> Vec<u8> {
    if !name
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
    {
        return name.as_bytes().to_vec();
    }
    let mut q = Vec::with_capacity(name.len() + 8);
    q.push(b'"');
    for b in name.bytes() {
        if b == b'"' {
            q.push(b'"');
        }
        q.push(b);
    }
    q.push(b'"');
    q
}

#[inline(always)]
fn value<S: Sink>(w: &mut S, v: f64) {
    if v.is_finite() {
        w.finite_f64(v);
    } else if v == f64::INFINITY {
        w.array(*b"inf");
    } else if v == f64::NEG_INFINITY {
        w.array(*b"-inf");
    }
}

fn write_raw<S: Sink>(w: &mut S, clock: &mut Clock, point: &[u8], ts: &[i64], values: &[f64]) {
    for (&t, &v) in ts.iter().zip(values) {
        clock.write(w, t);
        w.byte(b',');
        w.bytes(point);
        w.byte(b',');
        value(w, v);
        w.array(*b"\r\n");
    }
}

fn write_agg<S: Sink>(w: &mut S, clock: &mut Clock, point: &[u8], a: &Aggregates<'_>) {
    for i in 0..a.ts.len() {
        clock.write(w, a.ts[i]);
        w.byte(b',');
        w.bytes(point);
        w.byte(b',');
        w.int(a.count[i]);
        for col in [a.sum, a.min, a.max, a.avg, a.stddev] {
            w.byte(b',');
            value(w, col[i]);
        }
        w.array(*b"\r\n");
    }
}

fn write_stats<S: Sink>(w: &mut S, clock: &mut Clock, point: &[u8], a: &Stats<'_>) {
    for i in 0..a.ts.len() {
        clock.write(w, a.ts[i]);
        w.byte(b',');
        w.bytes(point);
        for stat in a.columns {
            w.byte(b',');
            match stat.column {
                Column::Int(c) => w.int(c[i]),
                Column::Float(c) => value(w, c[i]),
            }
        }
        if a.partial(i) {
            w.array(*b",true\r\n");
        } else {
            w.array(*b",false\r\n");
        }
    }
}

const MS_PER_DAY: i64 = 86_400_000;
/// `±YYYYYYYYY-MM-DDT` at its longest (i64 milliseconds reach year ±292 million).
const DATE_MAX: usize = 17;

/// ISO 8601 formatter that reuses the date part while consecutive rows share a day.
pub(crate) struct Clock {
    day: i64,
    date: [u8; DATE_MAX],
    date_len: usize,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let mut c = Clock {
            day: 0,
            date: [0; DATE_MAX],
            date_len: 0,
        };
        c.set_day(0);
        c
    }

    #[cold]
    fn set_day(&mut self, day: i64) {
        let (y, m, d) = civil_from_days(day);
        let year = if (0..=9999).contains(&y) {
            format!("{y:04}")
        } else {
            // JavaScript's expanded years: sign and at least six digits
            let sign = if y < 0 { '-' } else { '+' };
            format!("{sign}{:06}", y.unsigned_abs())
        };
        let text = format!("{year}-{m:02}-{d:02}T");
        self.date[..text.len()].copy_from_slice(text.as_bytes());
        self.date_len = text.len();
        self.day = day;
        debug_assert!(self.date_len <= DATE_MAX);
    }

    #[inline(always)]
    pub(crate) fn write<S: Sink>(&mut self, w: &mut S, t: i64) {
        let day = t.div_euclid(MS_PER_DAY);
        if day != self.day {
            self.set_day(day);
        }
        let ms = t.rem_euclid(MS_PER_DAY) as u32;
        let (s, ms) = (ms / 1000, ms % 1000);
        let (h, s) = (s / 3600, s % 3600);
        let (m, s) = (s / 60, s % 60);
        if self.date_len == 11 {
            let mut d = [0u8; 11];
            d.copy_from_slice(&self.date[..11]);
            w.array(d);
        } else {
            w.bytes(&self.date[..self.date_len]);
        }
        let [h0, h1] = two(h);
        let [m0, m1] = two(m);
        let [s0, s1] = two(s);
        let [f0, f1] = two(ms / 10);
        let f2 = b'0' + (ms % 10) as u8;
        w.array([h0, h1, b':', m0, m1, b':', s0, s1, b'.', f0, f1, f2, b'Z']);
    }
}

/// The two decimal digits of `v < 100`.
#[inline(always)]
fn two(v: u32) -> [u8; 2] {
    [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(series: &[Series<'_>]) -> String {
        String::from_utf8(encode(series).unwrap()).unwrap()
    }

    fn raw<'a>(name: &'a str, ts: &'a [i64], values: &'a [f64]) -> Series<'a> {
        Series::Raw { name, ts, values }
    }

    fn iso(t: i64) -> String {
        let mut c = Counter(0);
        Clock::new().write(&mut c, t);
        let mut out = vec![0; c.0];
        let mut w = Out::new(&mut out);
        Clock::new().write(&mut w, t);
        w.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn empty_series_list_and_arrays() {
        assert_eq!(text(&[]), RAW_HEADER);
        assert_eq!(text(&[raw("a", &[], &[])]), RAW_HEADER);
    }

    #[test]
    fn one_sample() {
        assert_eq!(
            text(&[raw("a", &[1704067200000], &[72.5])]),
            "time,point,value\r\n2024-01-01T00:00:00.000Z,a,72.5\r\n"
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso(1_709_251_199_123), "2024-02-29T23:59:59.123Z");
        assert_eq!(iso(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(iso(253_402_300_800_000), "+010000-01-01T00:00:00.000Z");
        assert_eq!(iso(-62_135_596_800_000), "0001-01-01T00:00:00.000Z");
        assert_eq!(iso(-62_167_219_200_000), "0000-01-01T00:00:00.000Z");
        assert_eq!(iso(-62_167_219_200_001), "-000001-12-31T23:59:59.999Z");
        assert_eq!(iso(8_640_000_000_000_000), "+275760-09-13T00:00:00.000Z");
        assert_eq!(iso(i64::MAX), "+292278994-08-17T07:12:55.807Z");
        assert_eq!(iso(i64::MIN), "-292275055-05-16T16:47:04.192Z");
    }

    #[test]
    fn values_and_quoting() {
        let out = text(&[
            raw("a,b", &[0, 1], &[f64::NAN, f64::INFINITY]),
            raw("say \"hi\"\n", &[-1], &[f64::NEG_INFINITY]),
            raw("plain", &[2], &[-0.0]),
        ]);
        assert_eq!(
            out,
            concat!(
                "time,point,value\r\n",
                "1970-01-01T00:00:00.000Z,\"a,b\",\r\n",
                "1970-01-01T00:00:00.001Z,\"a,b\",inf\r\n",
                "1969-12-31T23:59:59.999Z,\"say \"\"hi\"\"\n\",-inf\r\n",
                "1970-01-01T00:00:00.002Z,plain,-0.0\r\n",
            )
        );
    }

    #[test]
    fn aggregates() {
        let aggs = Aggregates {
            ts: &[3_600_000],
            count: &[60],
            sum: &[1.5],
            min: &[f64::NAN],
            max: &[3.0],
            avg: &[4.0],
            stddev: &[0.1],
            first_last: None,
            partial_last: false,
        };
        assert_eq!(
            text(&[Series::Agg { name: "p", aggs }]),
            concat!(
                "time,point,count,sum,min,max,avg,stddev\r\n",
                "1970-01-01T01:00:00.000Z,p,60,1.5,,3.0,4.0,0.1\r\n"
            )
        );
    }

    #[test]
    fn mixed_kinds_rejected() {
        let aggs = Aggregates {
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
        let err = encode(&[raw("r", &[], &[]), Series::Agg { name: "g", aggs }])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"r\" is raw") && err.contains("\"g\" is aggregated"),
            "{err}"
        );
    }

    #[test]
    fn many_rows_cross_days_and_chunks() {
        let n = 12_288;
        let ts: Vec<i64> = (0..n as i64).map(|i| i * 60_000 - MS_PER_DAY).collect();
        let vs: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let out = text(&[raw("p", &ts, &vs)]);
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(lines.len(), n + 2);
        assert_eq!(lines[1], "1969-12-31T00:00:00.000Z,p,0.0");
        assert_eq!(lines[1441], "1970-01-01T00:00:00.000Z,p,1440.0");
        assert_eq!(
            lines[n],
            format!("1970-01-08T12:47:00.000Z,p,{:?}", (n - 1) as f64)
        );
    }
}
