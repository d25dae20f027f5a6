//! One ACE timeseries page (`{"point_samples":[...],"next_cursor":..,"has_more":..}`)
//! parsed straight into columns.
//!
//! A generic JSON DOM would allocate a map per sample; this scanner walks the bytes
//! once, interns point names, reuses the previous timestamp when the text repeats
//! (pages are ordered by time, then point), and validates everything it skips so
//! malformed input is an error with a byte offset, never a panic.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::error::{CoreError, Result};
use crate::time::parse_iso_ms;
use crate::value::{parse_json_number, parse_value_str};

/// Nesting limit for values the scanner skips (unknown keys); deeper is an error.
const MAX_DEPTH: usize = 128;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct ParsedPage {
    /// Distinct point names in first-seen order (only kept points).
    pub names: Vec<String>,
    /// Index into `names` per kept sample.
    pub point_index: Vec<i32>,
    /// Milliseconds since the epoch, UTC.
    pub ts: Vec<i64>,
    pub values: Vec<f64>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
    /// Kept samples whose value was not a number (stored as NaN).
    pub non_numeric: u64,
}

/// Whether a body must carry the pagination fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Paging {
    /// `GET /sites/{site}/timeseries/paginated`: `has_more` is required.
    #[default]
    Paged,
    /// `GET /points/{name}/timeseries`: `{"point_samples":[...]}` alone; a missing
    /// `has_more` means false and a missing `next_cursor` none (both are still
    /// validated when present).
    Unpaged,
}

/// Parse one paginated page. With `points`, samples of other points are skipped.
pub fn parse_page(data: &[u8], points: Option<&[String]>) -> Result<ParsedPage> {
    parse_body(data, points, Paging::Paged)
}

/// Parse one page or unpaginated body (see [`Paging`]). With `points`, samples of
/// other points are skipped.
pub fn parse_body(data: &[u8], points: Option<&[String]>, paging: Paging) -> Result<ParsedPage> {
    if let Err(e) = std::str::from_utf8(data) {
        return Err(CoreError::Page {
            offset: e.valid_up_to(),
            message: "invalid UTF-8".into(),
        });
    }
    let mut scanner = Scanner {
        buf: data,
        pos: 0,
        scratch: Vec::new(),
    };
    let mut names = Names::new(points);
    let mut page = ParsedPage::default();
    let capacity_hint = data.len() / 96;
    page.ts.reserve(capacity_hint);
    page.values.reserve(capacity_hint);
    page.point_index.reserve(capacity_hint);

    let (mut seen_samples, mut seen_more) = (false, false);
    scanner.ws();
    scanner.expect(b'{', "expected '{' at the start of the page")?;
    scanner.ws();
    if scanner.peek() == Some(b'}') {
        scanner.pos += 1;
    } else {
        loop {
            scanner.ws();
            let key_at = scanner.pos;
            let key = scanner.string()?.into_owned();
            scanner.colon()?;
            match key.as_slice() {
                b"point_samples" => {
                    if seen_samples {
                        return Err(scanner.err_at(key_at, "duplicate key \"point_samples\""));
                    }
                    seen_samples = true;
                    samples(&mut scanner, &mut names, &mut page)?;
                }
                b"has_more" => {
                    seen_more = true;
                    page.has_more = match scanner.peek() {
                        Some(b't') => scanner.literal(b"true").map(|_| true)?,
                        Some(b'f') => scanner.literal(b"false").map(|_| false)?,
                        _ => return Err(scanner.err("\"has_more\" must be true or false")),
                    };
                }
                b"next_cursor" => {
                    page.next_cursor = match scanner.peek() {
                        Some(b'n') => scanner.literal(b"null").map(|_| None)?,
                        Some(b'"') => {
                            let at = scanner.pos;
                            let raw = scanner.string()?;
                            Some(utf8(&raw).map_err(|m| scanner.err_at(at, m))?.to_owned())
                        }
                        _ => return Err(scanner.err("\"next_cursor\" must be a string or null")),
                    };
                }
                _ => scanner.skip_value(0)?,
            }
            scanner.ws();
            match scanner.next() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => {
                    return Err(scanner.err_at(
                        scanner.pos.saturating_sub(1),
                        "expected ',' or '}' in the page object",
                    ))
                }
            }
        }
    }
    scanner.ws();
    if scanner.pos != data.len() {
        return Err(scanner.err("unexpected data after the page object"));
    }
    if !seen_samples {
        return Err(scanner.err_at(0, "missing field \"point_samples\""));
    }
    if !seen_more && paging == Paging::Paged {
        return Err(scanner.err_at(0, "missing field \"has_more\""));
    }
    page.names = names.kept;
    Ok(page)
}

fn samples(sc: &mut Scanner<'_>, names: &mut Names, page: &mut ParsedPage) -> Result<()> {
    sc.expect(b'[', "\"point_samples\" must be an array")?;
    sc.ws();
    if sc.peek() == Some(b']') {
        sc.pos += 1;
        return Ok(());
    }
    let mut last_time: (usize, usize) = (0, 0);
    let mut last_ts = 0i64;
    let mut n = 0usize;
    loop {
        sc.ws();
        let at = sc.pos;
        sc.expect(b'{', "each sample must be an object")?;
        let mut name: Option<(usize, Cow<'_, [u8]>)> = None;
        let mut value: Option<Option<f64>> = None;
        let mut time: Option<i64> = None;
        sc.ws();
        if sc.peek() == Some(b'}') {
            sc.pos += 1;
        } else {
            loop {
                sc.ws();
                let field = sc.sample_key()?;
                sc.colon()?;
                match field {
                    0 => {
                        let name_at = sc.pos;
                        if sc.peek() != Some(b'"') {
                            return Err(sc.err(format!("sample {n}: \"name\" must be a string")));
                        }
                        name = Some((name_at, sc.string()?));
                    }
                    1 => value = Some(sample_value(sc, n)?),
                    2 => {
                        if sc.peek() != Some(b'"') {
                            return Err(sc.err(format!("sample {n}: \"time\" must be a string")));
                        }
                        let start = sc.pos + 1;
                        let raw = sc.string()?;
                        let text: &[u8] = &raw;
                        let same = matches!(raw, Cow::Borrowed(_))
                            && last_time.1 == text.len()
                            && sc.buf[last_time.0..last_time.0 + last_time.1] == *text;
                        if !same {
                            last_ts = parse_iso_ms(text).map_err(|m| {
                                sc.err_at(
                                    start,
                                    format!(
                                        "sample {n}: bad time {:?}: {m}",
                                        String::from_utf8_lossy(text)
                                    ),
                                )
                            })?;
                            if matches!(raw, Cow::Borrowed(_)) {
                                last_time = (start, text.len());
                            } else {
                                last_time = (0, usize::MAX);
                            }
                        }
                        time = Some(last_ts);
                    }
                    _ => sc.skip_value(0)?,
                }
                sc.ws();
                match sc.next() {
                    Some(b',') => continue,
                    Some(b'}') => break,
                    _ => {
                        return Err(sc.err_at(
                            sc.pos.saturating_sub(1),
                            format!("sample {n}: expected ',' or '}}'"),
                        ))
                    }
                }
            }
        }
        let missing = |f: &str| sc.err_at(at, format!("sample {n}: missing field \"{f}\""));
        let (name_at, raw_name) = name.ok_or_else(|| missing("name"))?;
        let value = value.ok_or_else(|| missing("value"))?;
        let ts = time.ok_or_else(|| missing("time"))?;
        let id = names
            .lookup(&raw_name)
            .map_err(|m| sc.err_at(name_at, format!("sample {n}: {m}")))?;
        if id >= 0 {
            page.point_index.push(id);
            page.ts.push(ts);
            match value {
                Some(v) => page.values.push(v),
                None => {
                    page.values.push(f64::NAN);
                    page.non_numeric += 1;
                }
            }
        }
        n += 1;
        sc.ws();
        match sc.next() {
            Some(b',') => continue,
            Some(b']') => return Ok(()),
            _ => {
                return Err(sc.err_at(
                    sc.pos.saturating_sub(1),
                    "expected ',' or ']' after a sample",
                ))
            }
        }
    }
}

/// A sample's value: `Some(x)` for a number, `None` for anything non-numeric.
fn sample_value(sc: &mut Scanner<'_>, n: usize) -> Result<Option<f64>> {
    match sc.peek() {
        Some(b'"') => Ok(parse_value_str(&sc.string()?)),
        Some(b't') => sc.literal(b"true").map(|_| Some(1.0)),
        Some(b'f') => sc.literal(b"false").map(|_| Some(0.0)),
        Some(b'n') => sc.literal(b"null").map(|_| None),
        Some(b'-' | b'0'..=b'9') => {
            let at = sc.pos;
            let lit = sc.number()?;
            match parse_json_number(lit) {
                Some(v) => Ok(Some(v)),
                None => Err(sc.err_at(at, format!("sample {n}: number out of range"))),
            }
        }
        Some(b'[' | b'{') => sc.skip_value(0).map(|_| None),
        _ => Err(sc.err(format!("sample {n}: expected a value"))),
    }
}

/// Point-name interning with the filter applied once per distinct name.
struct Names {
    filter: Option<HashMap<Vec<u8>, ()>>,
    /// Every distinct name seen, with its output index (-1 when filtered out).
    seen: Vec<(Vec<u8>, i32)>,
    index: HashMap<Vec<u8>, usize>,
    kept: Vec<String>,
    last: usize,
}

impl Names {
    fn new(points: Option<&[String]>) -> Self {
        Names {
            filter: points.map(|p| p.iter().map(|s| (s.as_bytes().to_vec(), ())).collect()),
            seen: Vec::new(),
            index: HashMap::new(),
            kept: Vec::new(),
            last: usize::MAX,
        }
    }

    /// Output index of a name, or -1 if filtered out. Pages cycle through the same
    /// points in the same order, so the name after the previous one is tried first.
    #[inline]
    fn lookup(&mut self, raw: &[u8]) -> std::result::Result<i32, String> {
        let guess = self.last.wrapping_add(1);
        for g in [guess, 0] {
            if let Some((name, id)) = self.seen.get(g) {
                if name.as_slice() == raw {
                    self.last = g;
                    return Ok(*id);
                }
            }
        }
        if let Some(&slot) = self.index.get(raw) {
            self.last = slot;
            return Ok(self.seen[slot].1);
        }
        let text = utf8(raw)?;
        let keep = self.filter.as_ref().is_none_or(|f| f.contains_key(raw));
        let id = if keep {
            self.kept.push(text.to_owned());
            (self.kept.len() - 1) as i32
        } else {
            -1
        };
        let slot = self.seen.len();
        self.seen.push((raw.to_vec(), id));
        self.index.insert(raw.to_vec(), slot);
        self.last = slot;
        Ok(id)
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Index of the first byte that ends a plain run of string content: '"', '\\' or
/// a control character (invalid raw in JSON), or `s.len()`. Eight bytes per step
/// (SWAR): strings on a page are short, so this beats a SIMD search's setup cost.
/// The lowest flagged byte of each mask is always a true match (false positives
/// only appear above a true one), so the lowest bit of their union is exact.
#[inline]
fn find_special(s: &[u8]) -> usize {
    let mut chunks = s.chunks_exact(8);
    let mut base = 0;
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
        let quote = zero(w ^ (LO * u64::from(b'"')));
        let slash = zero(w ^ (LO * u64::from(b'\\')));
        let control = w.wrapping_sub(LO * 0x20) & !w & HI;
        let hits = quote | slash | control;
        if hits != 0 {
            return base + (hits.trailing_zeros() / 8) as usize;
        }
        base += 8;
    }
    let tail = chunks.remainder();
    base + tail
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .unwrap_or(tail.len())
}

/// Text of a scanned string. The page was checked to be UTF-8 up front and
/// `Scanner::string` rejects raw control characters, so this cannot fail in
/// practice; it stays fallible rather than unsafe.
fn utf8(raw: &[u8]) -> std::result::Result<&str, String> {
    std::str::from_utf8(raw).map_err(|_| "invalid UTF-8 in string".into())
}

struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
    scratch: Vec<u8>,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let b = self.peek();
        self.pos += 1;
        b
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn err(&self, message: impl Into<String>) -> CoreError {
        self.err_at(self.pos, message)
    }

    fn err_at(&self, offset: usize, message: impl Into<String>) -> CoreError {
        let mut message = message.into();
        if offset >= self.buf.len() {
            message.push_str(" (unexpected end of input)");
        }
        CoreError::Page {
            offset: offset.min(self.buf.len()),
            message,
        }
    }

    #[inline]
    fn expect(&mut self, b: u8, message: &str) -> Result<()> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(message))
        }
    }

    #[inline]
    fn colon(&mut self) -> Result<()> {
        self.ws();
        self.expect(b':', "expected ':' after a key")?;
        self.ws();
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.buf[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    /// A JSON string at `pos` (which must be '"'): borrowed when it has no escapes.
    /// Control characters are only rejected where the content is interpreted.
    #[inline]
    fn string(&mut self) -> Result<Cow<'a, [u8]>> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a string"));
        }
        let start = self.pos + 1;
        let buf = self.buf;
        let rest = &buf[start..];
        let i = find_special(rest);
        match rest.get(i) {
            Some(b'"') => {
                self.pos = start + i + 1;
                Ok(Cow::Borrowed(&rest[..i]))
            }
            Some(b'\\') => {
                self.scratch.clear();
                self.scratch.extend_from_slice(&rest[..i]);
                self.pos = start + i;
                self.escaped_tail()?;
                Ok(Cow::Owned(self.scratch.clone()))
            }
            Some(_) => Err(self.err_at(start + i, "control character in string")),
            None => Err(self.err_at(self.buf.len(), "unterminated string")),
        }
    }

    fn escaped_tail(&mut self) -> Result<()> {
        loop {
            let Some(b) = self.next() else {
                return Err(self.err_at(self.buf.len(), "unterminated string"));
            };
            match b {
                b'"' => return Ok(()),
                b'\\' => {
                    let at = self.pos - 1;
                    let e = self
                        .next()
                        .ok_or_else(|| self.err_at(self.buf.len(), "unterminated string"))?;
                    let c = match e {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let ch = self.unicode_escape(at)?;
                            let mut tmp = [0u8; 4];
                            self.scratch
                                .extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                            continue;
                        }
                        _ => return Err(self.err_at(at, "invalid escape")),
                    };
                    self.scratch.push(c);
                }
                0..=0x1f => return Err(self.err_at(self.pos - 1, "control character in string")),
                _ => self.scratch.push(b),
            }
        }
    }

    fn hex4(&mut self, at: usize) -> Result<u32> {
        let part = self
            .buf
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err_at(at, "truncated \\u escape"))?;
        let text = std::str::from_utf8(part).map_err(|_| self.err_at(at, "invalid \\u escape"))?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.err_at(at, "invalid \\u escape"));
        }
        let v = u32::from_str_radix(text, 16).map_err(|_| self.err_at(at, "invalid \\u escape"))?;
        self.pos += 4;
        Ok(v)
    }

    fn unicode_escape(&mut self, at: usize) -> Result<char> {
        let hi = self.hex4(at)?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if self.buf.get(self.pos..self.pos + 2) != Some(b"\\u") {
                return Err(self.err_at(at, "unpaired surrogate in \\u escape"));
            }
            self.pos += 2;
            let lo = self.hex4(at)?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(self.err_at(at, "unpaired surrogate in \\u escape"));
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| self.err_at(at, "unpaired surrogate in \\u escape"))
    }

    /// Which sample field the next key names (0 name, 1 value, 2 time, 3 other).
    /// The three known keys are matched on the raw bytes first: nearly every key
    /// on a page is one of them, unescaped.
    #[inline]
    fn sample_key(&mut self) -> Result<u8> {
        let rest = &self.buf[self.pos..];
        for (field, key) in [(0u8, &b"\"name\""[..]), (1, b"\"value\""), (2, b"\"time\"")] {
            if rest.starts_with(key) {
                self.pos += key.len();
                return Ok(field);
            }
        }
        Ok(match self.string()?.as_ref() {
            b"name" => 0,
            b"value" => 1,
            b"time" => 2,
            _ => 3,
        })
    }

    /// A JSON number literal per RFC 8259, returned as its text.
    fn number(&mut self) -> Result<&'a [u8]> {
        let buf = self.buf;
        let start = self.pos;
        let mut i = start;
        let digits = |i: &mut usize| {
            let s = *i;
            while buf.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - s
        };
        if buf.get(i) == Some(&b'-') {
            i += 1;
        }
        match buf.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                digits(&mut i);
            }
            _ => return Err(self.err_at(start, "invalid number")),
        }
        if buf.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                return Err(self.err_at(start, "invalid number"));
            }
        }
        if let Some(b'e' | b'E') = buf.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = buf.get(i) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return Err(self.err_at(start, "invalid number"));
            }
        }
        self.pos = i;
        Ok(&buf[start..i])
    }

    /// Validate and skip any JSON value (for keys we do not use).
    fn skip_value(&mut self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.ws();
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number().map(|_| ()),
            Some(b'[') => {
                self.pos += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.next() {
                        Some(b',') => continue,
                        Some(b']') => return Ok(()),
                        _ => {
                            return Err(
                                self.err_at(self.pos.saturating_sub(1), "expected ',' or ']'")
                            )
                        }
                    }
                }
            }
            Some(b'{') => {
                self.pos += 1;
                self.ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    self.string()?;
                    self.colon()?;
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.next() {
                        Some(b',') => continue,
                        Some(b'}') => return Ok(()),
                        _ => {
                            return Err(
                                self.err_at(self.pos.saturating_sub(1), "expected ',' or '}'")
                            )
                        }
                    }
                }
            }
            _ => Err(self.err("expected a value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(samples: &str, tail: &str) -> String {
        format!("{{\"point_samples\":[{samples}]{tail}}}")
    }

    #[test]
    fn basic_page() {
        let body = page(
            r#"{"name":"a","value":"45.5","time":"2024-01-01T00:00:00Z"},
               {"name":"b","value":3,"time":"2024-01-01T00:00:00Z"},
               {"time":"2024-01-01T00:01:00.250+00:00","value":true,"name":"a"},
               {"name":"b","value":"junk","time":"2024-01-01T00:01:00Z","extra":[1,{"x":null}]}"#,
            r#","next_cursor":"abc","has_more":true"#,
        );
        let p = parse_page(body.as_bytes(), None).unwrap();
        assert_eq!(p.names, vec!["a", "b"]);
        assert_eq!(p.point_index, vec![0, 1, 0, 1]);
        assert_eq!(
            p.ts,
            vec![
                1_704_067_200_000,
                1_704_067_200_000,
                1_704_067_260_250,
                1_704_067_260_000
            ]
        );
        assert_eq!(&p.values[..3], &[45.5, 3.0, 1.0]);
        assert!(p.values[3].is_nan());
        assert_eq!(p.non_numeric, 1);
        assert!(p.has_more);
        assert_eq!(p.next_cursor.as_deref(), Some("abc"));
    }

    #[test]
    fn filter_and_escapes() {
        let body = page(
            r#"{"name":"a\/b","value":"1","time":"2024-01-01T00:00:00Z"},
               {"name":"c","value":"2","time":"2024-01-01T00:00:00Z"},
               {"name":"a/b","value":null,"time":"2024-01-01T00:00:00Z"}"#,
            r#","next_cursor":null,"has_more":false"#,
        );
        let p = parse_page(body.as_bytes(), Some(&["a/b".to_string()])).unwrap();
        assert_eq!(p.names, vec!["a/b"]);
        assert_eq!(p.point_index, vec![0, 0]);
        assert_eq!(p.values[0], 1.0);
        assert!(p.values[1].is_nan());
        assert_eq!(p.non_numeric, 1);
        assert_eq!(p.next_cursor, None);
    }

    #[test]
    fn find_special_matches_naive() {
        let alphabet = b"ab\"\\\x00\x1f\x20\x7f\x80\xff~!";
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..40 {
            for _ in 0..200 {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        alphabet[(state % alphabet.len() as u64) as usize]
                    })
                    .collect();
                let naive = s
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                    .unwrap_or(s.len());
                assert_eq!(find_special(&s), naive, "{s:?}");
            }
        }
    }

    #[test]
    fn unpaged_bodies() {
        let body = br#"{"point_samples":[{"name":"p","value":"45.5","time":"2025-10-12T16:30:37.626470"}]}"#;
        assert!(parse_page(body, None)
            .unwrap_err()
            .to_string()
            .contains("missing field \"has_more\""));
        let p = parse_body(body, None, Paging::Unpaged).unwrap();
        assert_eq!(p.ts, vec![1_760_286_637_626]);
        assert_eq!(p.values, vec![45.5]);
        assert!(!p.has_more);
        assert_eq!(p.next_cursor, None);

        // present fields are still read, and still validated
        let p = parse_body(
            br#"{"has_more":true,"next_cursor":"c","point_samples":[]}"#,
            None,
            Paging::Unpaged,
        )
        .unwrap();
        assert!(p.has_more);
        assert_eq!(p.next_cursor.as_deref(), Some("c"));
        for (body, want) in [
            (&br#"{"point_samples":[],"has_more":1}"#[..], "has_more"),
            (br#"{"point_samples":[],"next_cursor":2}"#, "next_cursor"),
            (br#"{"has_more":false}"#, "missing field \"point_samples\""),
        ] {
            let err = parse_body(body, None, Paging::Unpaged).unwrap_err();
            assert!(matches!(err, CoreError::Page { .. }));
            assert!(err.to_string().contains(want), "{err}");
        }
        assert_eq!(
            parse_body(br#"{"point_samples":[]}"#, None, Paging::Unpaged).unwrap(),
            ParsedPage::default()
        );
    }

    #[test]
    fn naive_microsecond_times_shared_by_many_points() {
        // The field's shape: every point of one collection run at one naive timestamp.
        let times = ["2025-10-12T16:30:37.626470", "2025-10-12T16:31:37.000999"];
        let values = [
            r#""45.5""#,
            "72",
            "-0.25",
            "true",
            "false",
            r#""active""#,
            r#""inactive""#,
            "null",
            r#""fault""#,
            r#"" 7 ""#,
        ];
        let mut samples = Vec::new();
        for t in times {
            for (i, v) in values.iter().enumerate() {
                samples.push(format!(r#"{{"name":"p{i}","value":{v},"time":"{t}"}}"#));
            }
        }
        let body = page(&samples.join(","), r#","next_cursor":"x","has_more":true"#);
        let p = parse_page(body.as_bytes(), None).unwrap();
        assert_eq!(p.names.len(), values.len());
        let n = values.len();
        assert_eq!(&p.ts[..n], &vec![1_760_286_637_626; n][..]);
        assert_eq!(&p.ts[n..], &vec![1_760_286_697_000; n][..]);
        let want = [45.5, 72.0, -0.25, 1.0, 0.0, 1.0, 0.0];
        for half in [&p.values[..n], &p.values[n..]] {
            assert_eq!(&half[..7], &want);
            assert!(half[7].is_nan() && half[8].is_nan());
            assert_eq!(half[9], 7.0);
        }
        assert_eq!(p.non_numeric, 4);
        let idx: Vec<i32> = (0..2).flat_map(|_| 0..n as i32).collect();
        assert_eq!(p.point_index, idx);
    }

    #[test]
    fn empty_page() {
        let p = parse_page(br#" {"point_samples": [], "has_more": false} "#, None).unwrap();
        assert!(p.ts.is_empty() && p.names.is_empty() && !p.has_more);
    }

    #[test]
    fn errors_name_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("", "expected '{'"),
            ("{", "unexpected end"),
            (r#"{"has_more":false}"#, "missing field \"point_samples\""),
            (r#"{"point_samples":[]}"#, "missing field \"has_more\""),
            (
                r#"{"point_samples":[{"name":"a","value":1}],"has_more":false}"#,
                "sample 0: missing field \"time\"",
            ),
            (
                r#"{"point_samples":[{"name":"a","value":1,"time":"x"}],"has_more":false}"#,
                "sample 0: bad time",
            ),
            (
                r#"{"point_samples":[{"name":1,"value":1,"time":"x"}],"has_more":false}"#,
                "\"name\" must be a string",
            ),
            (
                r#"{"point_samples":{},"has_more":false}"#,
                "must be an array",
            ),
            (
                r#"{"point_samples":[],"has_more":false} x"#,
                "unexpected data",
            ),
            (r#"{"point_samples":[],"has_more":"yes"}"#, "has_more"),
            (
                r#"{"point_samples":[],"has_more":false,"x":01}"#,
                "expected ','",
            ),
            (
                r#"{"point_samples":[],"has_more":false,"x":"\q"}"#,
                "invalid escape",
            ),
            (
                r#"{"point_samples":[],"has_more":false,"x":"\ud800"}"#,
                "surrogate",
            ),
        ];
        for (body, want) in cases {
            let err = parse_page(body.as_bytes(), None).unwrap_err();
            // Every failure is a page error: the binding raises PageParseError for it.
            assert!(matches!(err, CoreError::Page { .. }), "{body}: {err:?}");
            let err = err.to_string();
            assert!(err.contains(want), "{body}: {err}");
        }
        let deep = format!(
            "{{\"point_samples\":[],\"has_more\":false,\"x\":{}}}",
            "[".repeat(1000)
        );
        assert!(parse_page(deep.as_bytes(), None)
            .unwrap_err()
            .to_string()
            .contains("too deep"));
        assert!(parse_page(
            b"{\"point_samples\":[],\"has_more\":false,\"x\":\"\xff\"}",
            None
        )
        .is_err());
    }
}
