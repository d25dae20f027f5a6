//! The ACE API's own page body, written from our arrays: the compatibility route
//! `GET /api/sites/{site}/timeseries/paginated` answers from the caches in the shape
//! existing clients parse.
//!
//! ```text
//! {"point_samples":[{"name":"p","value":"45.5","time":"2024-01-01T00:00:00Z"},..],
//!  "next_cursor":"..","has_more":true}
//! ```
//!
//! (or the same document as MessagePack). Rows are in the origin's order: by time, then
//! by the series' position in the list (the caller passes series sorted by name). A page
//! is the `limit` rows strictly after a [`Position`], found by a k-way merge (a
//! tournament tree: one comparison per level per row, so 2,000 series cost 11).
//!
//! Text of the fields:
//!
//! - `value`: a string holding the shortest decimal that reads back to the same float64,
//!   spelled as JavaScript's `String(x)` spells it (`"45.5"`, `"72"`, `"-0.001"`,
//!   `"1e+21"`, `"1.5e-7"`), so `parseFloat` and Python's `float` both give the value back
//!   exactly; negative zero keeps its sign (`"-0"`). NaN and ±inf are `null`.
//! - `time`: ISO 8601 UTC with `Z`, milliseconds only when the time is not a whole second
//!   (`2024-01-01T00:00:00Z`, `2024-01-01T00:00:00.250Z`); dates are the CSV encoder's
//!   (JavaScript's expanded years outside 0000..=9999).
//!
//! As the other encoders, a page is measured exactly first and then written once into a
//! buffer of that size; the merge runs once and its order is kept for both passes.

use std::mem::MaybeUninit;

use super::csv::Clock;
use super::num::Short;
use super::sink::{to_vec, Counter, Out, Sink};
use super::{json, msgpack, Series};
use crate::error::{CoreError, Result};

/// Wire format of an ACE page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AceFormat {
    Json,
    Msgpack,
}

impl AceFormat {
    pub const NAMES: [&'static str; 2] = ["json", "msgpack"];

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "json" => Ok(AceFormat::Json),
            "msgpack" => Ok(AceFormat::Msgpack),
            other => Err(CoreError::Argument(format!(
                "format must be one of 'json', 'msgpack', got {other:?}"
            ))),
        }
    }
}

/// A place in the merged order: a row's time and its series' index in the list.
/// Positions order as rows do: by time, then by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub ts: i64,
    pub index: usize,
}

/// Where a page ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageEnd {
    /// Rows on the page (at most the limit).
    pub rows: usize,
    /// The last row of the page (`None` when it has no rows).
    pub last: Option<Position>,
    /// Whether any row follows the page.
    pub has_more: bool,
}

/// One series' arrays, checked.
#[derive(Debug, Clone, Copy)]
struct Raw<'a> {
    name: &'a str,
    ts: &'a [i64],
    values: &'a [f64],
}

/// Index of the first element of `ts` that is not above its predecessor, if any.
/// The sorted case (the only one that matters for speed) is checked in branch-free
/// chunks, which the compiler vectorises.
pub(crate) fn first_unsorted(ts: &[i64]) -> Option<usize> {
    const CHUNK: usize = 4096;
    let mut start = 0;
    while start + 1 < ts.len() {
        let end = (start + CHUNK).min(ts.len() - 1);
        let (a, b) = (&ts[start..end], &ts[start + 1..=end]);
        if !a.iter().zip(b).fold(true, |ok, (x, y)| ok & (x < y)) {
            let j = a.iter().zip(b).position(|(x, y)| x >= y).unwrap_or(0);
            return Some(start + j + 1);
        }
        start = end;
    }
    None
}

/// Check the series (raw, equal lengths, strictly increasing times) and borrow them.
fn check<'a>(series: &[Series<'a>]) -> Result<Vec<Raw<'a>>> {
    if series.len() > u32::MAX as usize {
        return Err(CoreError::Argument(format!(
            "at most {} series, got {}",
            u32::MAX,
            series.len()
        )));
    }
    series
        .iter()
        .map(|s| {
            s.validate()?;
            match *s {
                Series::Raw { name, ts, values } => {
                    if let Some(j) = first_unsorted(ts) {
                        return Err(CoreError::Argument(format!(
                            "series {name:?}: 'ts' must be sorted ascending without \
                             duplicates, but ts[{j}] = {} follows {}",
                            ts[j],
                            ts[j - 1]
                        )));
                    }
                    Ok(Raw { name, ts, values })
                }
                Series::Agg { name, .. } | Series::Stats { name, .. } => Err(CoreError::Argument(
                    format!("series {name:?}: an ACE page holds raw samples, not aggregates"),
                )),
            }
        })
        .collect()
}

fn check_limit(limit: usize) -> Result<()> {
    if limit == 0 {
        return Err(CoreError::Argument("limit must be at least 1".into()));
    }
    Ok(())
}

/// Key of an exhausted series: above every real key (whose top 32 bits are zero).
const DONE: u128 = u128::MAX;

/// The merge key of row `(ts, index)`: time (order-preserving as unsigned) above index.
#[inline(always)]
fn key(ts: i64, index: usize) -> u128 {
    (u128::from((ts as u64) ^ (1 << 63)) << 32) | index as u128
}

/// A tournament (loser) tree over the series' next rows: the root holds the overall
/// winner, each inner node the loser of its match, so advancing the winner replays one
/// match per level. Leaves sit at `k..2k` of the implicit heap layout, which works for
/// any `k`.
struct Tournament<'r, 'a> {
    raws: &'r [Raw<'a>],
    keys: Vec<u128>,
    /// `losers[0]` is the winner; `losers[1..k]` the inner nodes.
    losers: Vec<u32>,
    cursor: Vec<usize>,
}

impl<'r, 'a> Tournament<'r, 'a> {
    fn new(raws: &'r [Raw<'a>], after: Option<Position>) -> Self {
        let k = raws.len();
        let cursor: Vec<usize> = raws
            .iter()
            .enumerate()
            .map(|(i, r)| match after {
                None => 0,
                // rows of series up to `after.index` start after its time, later series at it
                Some(p) if i <= p.index => r.ts.partition_point(|&t| t <= p.ts),
                Some(p) => r.ts.partition_point(|&t| t < p.ts),
            })
            .collect();
        let keys: Vec<u128> = (0..k)
            .map(|i| match raws[i].ts.get(cursor[i]) {
                Some(&t) => key(t, i),
                None => DONE,
            })
            .collect();
        let mut losers = vec![0u32; k];
        if k > 1 {
            let mut winners = vec![0u32; 2 * k];
            for (i, w) in winners[k..].iter_mut().enumerate() {
                *w = i as u32;
            }
            for p in (1..k).rev() {
                let (a, b) = (winners[2 * p], winners[2 * p + 1]);
                let (win, lose) = if keys[a as usize] < keys[b as usize] {
                    (a, b)
                } else {
                    (b, a)
                };
                winners[p] = win;
                losers[p] = lose;
            }
            losers[0] = winners[1];
        }
        Tournament {
            raws,
            keys,
            losers,
            cursor,
        }
    }

    /// The series holding the next row, if any row is left.
    #[inline(always)]
    fn winner(&self) -> Option<usize> {
        let w = *self.losers.first()? as usize;
        (self.keys[w] != DONE).then_some(w)
    }

    /// Move series `w` (the winner) to its next row and replay its matches.
    #[inline(always)]
    fn advance(&mut self, w: usize) {
        let k = self.keys.len();
        let c = self.cursor[w] + 1;
        self.cursor[w] = c;
        let mut wk = match self.raws[w].ts.get(c) {
            Some(&t) => key(t, w),
            None => DONE,
        };
        self.keys[w] = wk;
        let mut win = w as u32;
        let mut p = (w + k) / 2;
        while p > 0 {
            let l = self.losers[p];
            let lk = self.keys[l as usize];
            if lk < wk {
                self.losers[p] = win;
                win = l;
                wk = lk;
            }
            p /= 2;
        }
        self.losers[0] = win;
    }
}

/// Walk up to `limit` rows after `after`, calling `visit` with each row's series.
fn walk(
    raws: &[Raw<'_>],
    after: Option<Position>,
    limit: usize,
    mut visit: impl FnMut(usize),
) -> PageEnd {
    let mut t = Tournament::new(raws, after);
    let mut rows = 0;
    let mut last = None;
    while rows < limit {
        let Some(w) = t.winner() else { break };
        visit(w);
        last = Some(Position {
            ts: raws[w].ts[t.cursor[w]],
            index: w,
        });
        t.advance(w);
        rows += 1;
    }
    PageEnd {
        rows,
        last,
        has_more: t.winner().is_some(),
    }
}

/// Where the page of up to `limit` rows strictly after `after` (from the start when
/// `None`) ends. Each series' `ts` must be sorted ascending without duplicates.
pub fn page_end(series: &[Series<'_>], after: Option<Position>, limit: usize) -> Result<PageEnd> {
    check_limit(limit)?;
    let raws = check(series)?;
    Ok(walk(&raws, after, limit, |_| {}))
}

/// One page, merged and ready to be measured and written.
pub struct AcePage<'a> {
    raws: Vec<Raw<'a>>,
    /// Series of each row, in page order.
    order: Vec<u32>,
    /// Each series' first row on the page.
    starts: Vec<usize>,
    end: PageEnd,
    next_cursor: Option<&'a str>,
    has_more: bool,
    format: AceFormat,
    /// Per series, everything of a row before the value's text.
    prefixes: Vec<Vec<u8>>,
}

impl<'a> AcePage<'a> {
    /// Merge the page of up to `limit` rows strictly after `after`. `next_cursor` and
    /// `has_more` are written as given (the caller makes the cursor from [`Self::end`]).
    pub fn new(
        series: &[Series<'a>],
        after: Option<Position>,
        limit: usize,
        next_cursor: Option<&'a str>,
        has_more: bool,
        format: AceFormat,
    ) -> Result<Self> {
        check_limit(limit)?;
        let raws = check(series)?;
        let starts = Tournament::new(&raws, after).cursor;
        let total: usize = raws.iter().zip(&starts).map(|(r, &s)| r.ts.len() - s).sum();
        let mut order = Vec::with_capacity(total.min(limit));
        let end = walk(&raws, after, limit, |w| order.push(w as u32));
        let prefixes = raws
            .iter()
            .map(|r| row_prefix(format, r.name))
            .collect::<Result<_>>()?;
        Ok(AcePage {
            raws,
            order,
            starts,
            end,
            next_cursor,
            has_more,
            format,
            prefixes,
        })
    }

    /// Where the page ends (as [`page_end`] says).
    pub fn end(&self) -> PageEnd {
        self.end
    }

    /// Exact size of the body.
    pub fn encoded_len(&self) -> Result<usize> {
        let mut c = Counter(0);
        self.document(&mut c)?;
        Ok(c.0)
    }

    /// Write the body into `out`, which must be exactly [`Self::encoded_len`] bytes long
    /// (it may be uninitialised). `Ok` means every byte of `out` has been written.
    pub fn encode_into(&self, out: &mut [MaybeUninit<u8>]) -> Result<()> {
        let mut w = Out::uninit(out);
        self.document(&mut w)?;
        w.finish()
    }

    /// The body in a new vector.
    pub fn encode(&self) -> Result<Vec<u8>> {
        // SAFETY: `encode_into` writes every byte of its buffer when it returns `Ok`.
        unsafe { to_vec(|| self.encoded_len(), |out| self.encode_into(out)) }
    }

    fn document<S: Sink>(&self, w: &mut S) -> Result<()> {
        let mut cursor = self.starts.clone();
        let mut time = TimeText::new();
        match self.format {
            AceFormat::Json => {
                w.array(*b"{\"point_samples\":[");
                for (r, &i) in self.order.iter().enumerate() {
                    let i = i as usize;
                    let j = cursor[i];
                    cursor[i] = j + 1;
                    let raw = &self.raws[i];
                    if r > 0 {
                        w.byte(b',');
                    }
                    w.bytes(&self.prefixes[i]);
                    let v = raw.values[j];
                    if v.is_finite() {
                        let (text, len) = js_number(v);
                        w.byte(b'"');
                        w.bytes(&text[..len]);
                        w.byte(b'"');
                    } else {
                        w.array(*b"null");
                    }
                    w.array(*b",\"time\":\"");
                    w.bytes(time.get(raw.ts[j]));
                    w.array(*b"\"}");
                }
                w.array(*b"],\"next_cursor\":");
                match self.next_cursor {
                    Some(c) => json::write_str(w, c),
                    None => w.array(*b"null"),
                }
                w.array(*b",\"has_more\":");
                if self.has_more {
                    w.array(*b"true}");
                } else {
                    w.array(*b"false}");
                }
            }
            AceFormat::Msgpack => {
                w.byte(0x83);
                msgpack::str_(w, "point_samples")?;
                msgpack::array_header(w, self.order.len())?;
                for &i in &self.order {
                    let i = i as usize;
                    let j = cursor[i];
                    cursor[i] = j + 1;
                    let raw = &self.raws[i];
                    w.bytes(&self.prefixes[i]);
                    let v = raw.values[j];
                    if v.is_finite() {
                        let (text, len) = js_number(v);
                        w.byte(0xa0 | len as u8); // fixstr: at most 25 bytes
                        w.bytes(&text[..len]);
                    } else {
                        w.byte(0xc0);
                    }
                    w.array(*b"\xa4time");
                    let t = time.get(raw.ts[j]);
                    w.byte(0xa0 | t.len() as u8); // fixstr: at most 30 bytes
                    w.bytes(t);
                }
                msgpack::str_(w, "next_cursor")?;
                match self.next_cursor {
                    Some(c) => msgpack::str_(w, c)?,
                    None => w.byte(0xc0),
                }
                msgpack::str_(w, "has_more")?;
                w.byte(if self.has_more { 0xc3 } else { 0xc2 });
            }
        }
        Ok(())
    }
}

/// A row up to its value: `{"name":"..","value":` or the MessagePack map header, the
/// name entry and the `value` key.
fn row_prefix(format: AceFormat, name: &str) -> Result<Vec<u8>> {
    fn write<S: Sink>(w: &mut S, format: AceFormat, name: &str) -> Result<()> {
        match format {
            AceFormat::Json => {
                w.array(*b"{\"name\":");
                json::write_str(w, name);
                w.array(*b",\"value\":");
            }
            AceFormat::Msgpack => {
                w.array(*b"\x83\xa4name");
                msgpack::str_(w, name)?;
                w.array(*b"\xa5value");
            }
        }
        Ok(())
    }
    let mut c = Counter(0);
    write(&mut c, format, name)?;
    let mut out = vec![0; c.0];
    let mut o = Out::new(&mut out);
    write(&mut o, format, name)?;
    o.finish()?;
    Ok(out)
}

/// The text of the last time written, reused while rows share it (on an ACE page, all
/// points of one collection run do).
struct TimeText {
    ts: Option<i64>,
    text: [u8; 32],
    len: usize,
    clock: Clock,
}

impl TimeText {
    fn new() -> Self {
        TimeText {
            ts: None,
            text: [0; 32],
            len: 0,
            clock: Clock::new(),
        }
    }

    #[inline(always)]
    fn get(&mut self, t: i64) -> &[u8] {
        if self.ts != Some(t) {
            self.set(t);
        }
        &self.text[..self.len]
    }

    fn set(&mut self, t: i64) {
        // the CSV encoder's text (`...:SS.mmmZ`, at most 30 bytes), without a zero `.000`
        let mut c = Counter(0);
        self.clock.write(&mut c, t);
        let n = c.0;
        let mut o = Out::new(&mut self.text[..n]);
        self.clock.write(&mut o, t);
        let written = o.finish();
        debug_assert!(written.is_ok());
        self.len = if t.rem_euclid(1000) == 0 {
            self.text[n - 5] = b'Z';
            n - 4
        } else {
            n
        };
        self.ts = Some(t);
    }
}

/// Longest text [`js_number`] writes: `-0.00000` and 17 digits.
const JS_MAX: usize = 25;

/// A finite `v` as JavaScript's `String(v)` writes it (ECMA-262 Number::toString: the
/// shortest round-trip digits, plain from 1e-6 up to below 1e21, else `d.ddde±x`),
/// except that negative zero keeps its sign (`-0`) so the value reads back exactly.
#[inline]
pub(crate) fn js_number(v: f64) -> ([u8; 32], usize) {
    let mut out = [0u8; 32];
    if let Some(s) = Short::new(v) {
        if s.int < 100_000_000 {
            // the shortest digits in plain notation, as ryu's; JS drops a zero fraction
            let (text, len) = s.text();
            out[..16].copy_from_slice(&text);
            let integral = s.frac_len == 1 && s.frac[0] == b'0';
            return (out, if integral { len - 2 } else { len });
        }
    }
    let mut buf = ryu::Buffer::new();
    let len = respell(buf.format_finite(v).as_bytes(), &mut out);
    (out, len)
}

/// Rewrite ryu's text (`123.45`, `0.001`, `1e21`, `1.5e-7`) in JavaScript's spelling.
fn respell(text: &[u8], out: &mut [u8; 32]) -> usize {
    let (negative, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (mantissa, exp) = match body.iter().position(|&b| b == b'e' || b == b'E') {
        Some(e) => {
            let (sign, digits) = match &body[e + 1..] {
                [b'-', rest @ ..] => (-1, rest),
                [b'+', rest @ ..] => (1, rest),
                rest => (1, rest),
            };
            let magnitude = digits
                .iter()
                .fold(0i32, |acc, &d| acc * 10 + i32::from(d - b'0'));
            (&body[..e], sign * magnitude)
        }
        None => (body, 0),
    };
    // the digits, and how many of them stand before the point (`n` of ECMA-262)
    let mut digits = [0u8; 32];
    let mut k = 0;
    let mut point = None;
    for &b in mantissa {
        if b == b'.' {
            point = Some(k);
        } else if k < digits.len() {
            digits[k] = b;
            k += 1;
        }
    }
    let mut n = point.unwrap_or(k) as i32 + exp;
    let lead = digits[..k].iter().take_while(|&&d| d == b'0').count();
    let mut w = Text { out, len: 0 };
    if negative {
        w.put(b'-');
    }
    if lead == k {
        w.put(b'0');
        return w.len;
    }
    n -= lead as i32;
    let digits = &digits[lead..k];
    let k = digits.len() - digits.iter().rev().take_while(|&&d| d == b'0').count();
    let digits = &digits[..k];
    let ki = k as i32;
    if ki <= n && n <= 21 {
        w.all(digits);
        (0..n - ki).for_each(|_| w.put(b'0'));
    } else if 0 < n && n <= 21 {
        let n = n as usize;
        w.all(&digits[..n]);
        w.put(b'.');
        w.all(&digits[n..]);
    } else if -6 < n && n <= 0 {
        w.all(b"0.");
        (0..-n).for_each(|_| w.put(b'0'));
        w.all(digits);
    } else {
        w.put(digits[0]);
        if k > 1 {
            w.put(b'.');
            w.all(&digits[1..]);
        }
        let e = n - 1;
        w.all(if e < 0 { b"e-" } else { b"e+" });
        w.all(itoa::Buffer::new().format(e.unsigned_abs()).as_bytes());
    }
    debug_assert!(w.len <= JS_MAX);
    w.len
}

/// A cursor over [`respell`]'s output.
struct Text<'o> {
    out: &'o mut [u8; 32],
    len: usize,
}

impl Text<'_> {
    fn put(&mut self, b: u8) {
        self.out[self.len] = b;
        self.len += 1;
    }

    fn all(&mut self, bytes: &[u8]) {
        self.out[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(v: f64) -> String {
        let (t, n) = js_number(v);
        String::from_utf8(t[..n].to_vec()).unwrap()
    }

    fn raw<'a>(name: &'a str, ts: &'a [i64], values: &'a [f64]) -> Series<'a> {
        Series::Raw { name, ts, values }
    }

    /// SplitMix64, so the tests need no crates.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    #[test]
    fn javascript_spelling() {
        for (v, want) in [
            (45.5, "45.5"),
            (72.0, "72"),
            (-0.001, "-0.001"),
            (0.0, "0"),
            (-0.0, "-0"),
            (100.0, "100"),
            (1e11, "100000000000"),
            (123_456_789.5, "123456789.5"),
            (1e20, "100000000000000000000"),
            (123_456_789_012_345_680_000.0, "123456789012345680000"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1e-6, "0.000001"),
            (1.2345e-5, "0.000012345"),
            (-1.5e-7, "-1.5e-7"),
            (1e-7, "1e-7"),
            (0.1 + 0.2, "0.30000000000000004"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (1e16, "10000000000000000"),
            (9_007_199_254_740_993.0, "9007199254740992"),
            (0.000_001_234_567_890_123_456_7, "0.0000012345678901234567"),
        ] {
            assert_eq!(js(v), want, "{v:?}");
        }
    }

    #[test]
    fn javascript_spelling_round_trips() {
        let mut rng = Rng(7);
        for i in 0..300_000u64 {
            let r = rng.next();
            let v = match i % 3 {
                0 => f64::from_bits(r),
                1 => (r % 10_000_000) as f64 / 10f64.powi((r >> 60) as i32),
                _ => f64::from_bits(r) / f64::from_bits(rng.next() | 1),
            };
            if !v.is_finite() {
                continue;
            }
            let text = js(v);
            let back: f64 = text.parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v:?} -> {text}");
            assert!(text.len() <= JS_MAX, "{text}");
            // the same digits as ryu, the shortest that round-trip
            let ryu_digits: String = ryu::Buffer::new()
                .format_finite(v)
                .split(['e', 'E'])
                .next()
                .unwrap()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            let ours: String = text
                .split('e')
                .next()
                .unwrap()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            let strip = |s: &str| s.trim_matches('0').to_owned();
            assert_eq!(strip(&ours), strip(&ryu_digits), "{v:?} -> {text}");
        }
    }

    fn body(series: &[Series<'_>], after: Option<Position>, limit: usize) -> String {
        let page = AcePage::new(series, after, limit, Some("c\"x"), true, AceFormat::Json).unwrap();
        String::from_utf8(page.encode().unwrap()).unwrap()
    }

    #[test]
    fn json_page() {
        let a = raw("a", &[0, 1_704_067_200_250], &[45.5, f64::NAN]);
        let b = raw("b\n", &[0, 1000], &[72.0, -0.001]);
        assert_eq!(
            body(&[a, b], None, 10),
            concat!(
                r#"{"point_samples":["#,
                r#"{"name":"a","value":"45.5","time":"1970-01-01T00:00:00Z"},"#,
                r#"{"name":"b\n","value":"72","time":"1970-01-01T00:00:00Z"},"#,
                r#"{"name":"b\n","value":"-0.001","time":"1970-01-01T00:00:01Z"},"#,
                r#"{"name":"a","value":null,"time":"2024-01-01T00:00:00.250Z"}"#,
                r#"],"next_cursor":"c\"x","has_more":true}"#
            )
        );
        assert_eq!(
            body(&[a, b], Some(Position { ts: 0, index: 0 }), 1),
            concat!(
                r#"{"point_samples":[{"name":"b\n","value":"72","time":"1970-01-01T00:00:00Z"}"#,
                r#"],"next_cursor":"c\"x","has_more":true}"#
            )
        );
        let empty = AcePage::new(&[], None, 3, None, false, AceFormat::Json).unwrap();
        assert_eq!(
            String::from_utf8(empty.encode().unwrap()).unwrap(),
            r#"{"point_samples":[],"next_cursor":null,"has_more":false}"#
        );
    }

    #[test]
    fn msgpack_page() {
        let a = raw("a", &[1500], &[f64::INFINITY]);
        let page = AcePage::new(&[a], None, 5, None, false, AceFormat::Msgpack).unwrap();
        let mut want = vec![0x83, 0xad];
        want.extend_from_slice(b"point_samples");
        want.push(0x91);
        want.extend_from_slice(b"\x83\xa4name\xa1a\xa5value\xc0\xa4time\xb8");
        want.extend_from_slice(b"1970-01-01T00:00:01.500Z");
        want.extend_from_slice(b"\xabnext_cursor\xc0\xa8has_more\xc2");
        assert_eq!(page.encode().unwrap(), want);
    }

    /// The naive reference: every row, sorted by (time, index), after `after`.
    fn naive(series: &[(Vec<i64>, Vec<f64>)], after: Option<Position>) -> Vec<Position> {
        let mut all: Vec<Position> = series
            .iter()
            .enumerate()
            .flat_map(|(index, (ts, _))| ts.iter().map(move |&ts| Position { ts, index }))
            .filter(|p| after.is_none_or(|a| *p > a))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn merge_matches_sort_and_pages_cover_every_row_once() {
        let mut rng = Rng(11);
        for case in 0..300 {
            let k = (rng.next() % 12) as usize + usize::from(case % 5 == 0) * 40;
            let shared = rng.next() % 2 == 0;
            let data: Vec<(Vec<i64>, Vec<f64>)> = (0..k)
                .map(|_| {
                    let n = (rng.next() % 30) as usize;
                    let mut ts: Vec<i64> = (0..n)
                        .map(|_| {
                            let t = (rng.next() % 50) as i64 - 25;
                            if shared {
                                t * 60_000
                            } else {
                                t
                            }
                        })
                        .collect();
                    ts.sort_unstable();
                    ts.dedup();
                    let vs = ts.iter().map(|&t| t as f64).collect();
                    (ts, vs)
                })
                .collect();
            let names: Vec<String> = (0..k).map(|i| format!("p{i}")).collect();
            let series: Vec<Series<'_>> = data
                .iter()
                .zip(&names)
                .map(|((ts, vs), name)| raw(name, ts, vs))
                .collect();
            let everything = naive(&data, None);
            for limit in [1, 3, 7, 1000] {
                let mut after = None;
                let mut seen = Vec::new();
                loop {
                    let end = page_end(&series, after, limit).unwrap();
                    let page =
                        AcePage::new(&series, after, limit, None, end.has_more, AceFormat::Json)
                            .unwrap();
                    assert_eq!(page.end(), end);
                    let rows: Vec<Position> = {
                        let mut cursor = page.starts.clone();
                        page.order
                            .iter()
                            .map(|&i| {
                                let i = i as usize;
                                cursor[i] += 1;
                                Position {
                                    ts: data[i].0[cursor[i] - 1],
                                    index: i,
                                }
                            })
                            .collect()
                    };
                    let want: Vec<Position> = naive(&data, after).into_iter().take(limit).collect();
                    assert_eq!(rows, want);
                    assert_eq!(end.rows, rows.len());
                    assert_eq!(end.last, rows.last().copied());
                    seen.extend(rows);
                    if !end.has_more {
                        break;
                    }
                    assert!(end.rows == limit);
                    after = end.last;
                }
                assert_eq!(seen, everything, "case {case} limit {limit}");
            }
            // positions between rows (unknown times, out-of-range indices) work too
            for _ in 0..5 {
                let after = Position {
                    ts: (rng.next() % 60) as i64 * 1000 - 30_000,
                    index: (rng.next() % (k as u64 + 3)) as usize,
                };
                let end = page_end(&series, Some(after), 4).unwrap();
                let want = naive(&data, Some(after));
                assert_eq!(end.rows, want.len().min(4));
                assert_eq!(end.has_more, want.len() > 4);
            }
        }
    }

    #[test]
    fn errors() {
        let ok = raw("a", &[1, 2], &[1.0, 2.0]);
        let err = |s: &[Series<'_>], limit| page_end(s, None, limit).unwrap_err().to_string();
        assert!(err(&[ok], 0).contains("limit must be at least 1"));
        let e = err(&[ok, raw("b", &[1, 3, 3], &[0.0; 3])], 5);
        assert!(
            e.contains("\"b\"") && e.contains("ts[2] = 3 follows 3"),
            "{e}"
        );
        let e = err(&[raw("c", &[5, 4], &[0.0; 2])], 5);
        assert!(e.contains("ts[1] = 4 follows 5"), "{e}");
        let e = err(&[raw("d", &[1, 2], &[0.0])], 5);
        assert!(e.contains("length mismatch"), "{e}");
        let long: Vec<i64> = (0..10_000).chain([20_000, 9_999]).collect();
        let e = err(&[raw("e", &long, &vec![0.0; long.len()])], 5);
        assert!(e.contains("ts[10001] = 9999 follows 20000"), "{e}");
        assert!(AceFormat::parse("csv")
            .unwrap_err()
            .to_string()
            .contains("'json', 'msgpack'"));
    }

    #[test]
    fn times() {
        let mut t = TimeText::new();
        for (ms, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (1, "1970-01-01T00:00:00.001Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (-1000, "1969-12-31T23:59:59Z"),
            (1_760_286_637_626, "2025-10-12T16:30:37.626Z"),
            (253_402_300_800_000, "+010000-01-01T00:00:00Z"),
            (i64::MIN, "-292275055-05-16T16:47:04.192Z"),
        ] {
            assert_eq!(std::str::from_utf8(t.get(ms)).unwrap(), want);
            assert_eq!(std::str::from_utf8(t.get(ms)).unwrap(), want);
        }
    }
}
