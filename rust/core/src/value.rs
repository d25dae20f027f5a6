//! Sample values as the origin sends them (strings, numbers, booleans) -> f64.

/// Read a JSON string's content as a number: decimal text (surrounding whitespace
/// allowed) or one of the boolean words building systems use. `None` means the
/// value is not numeric (the caller stores NaN and counts it).
#[inline]
pub fn parse_value_str(raw: &[u8]) -> Option<f64> {
    let s = raw.trim_ascii();
    if let Some(v) = fast_decimal(s) {
        return Some(v);
    }
    match s.first()? {
        b'0'..=b'9' | b'-' | b'+' | b'.' => slow_decimal(s),
        _ => word(s),
    }
}

fn word(s: &[u8]) -> Option<f64> {
    if s.len() > 8 {
        return None;
    }
    let mut buf = [0u8; 8];
    for (d, c) in buf.iter_mut().zip(s) {
        *d = c.to_ascii_lowercase();
    }
    match &buf[..s.len()] {
        b"true" | b"on" | b"active" => Some(1.0),
        b"false" | b"off" | b"inactive" => Some(0.0),
        _ => None,
    }
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Clinger's fast path: `[-]digits[.digits]` with at most 15 significant digits is
/// exactly `mantissa / 10^k`, one correctly rounded division. Covers nearly every
/// origin value ("72.5"); anything else goes to the standard parser.
#[inline]
fn fast_decimal(s: &[u8]) -> Option<f64> {
    let (neg, body) = match s.first()? {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() || body.len() > 16 {
        return None;
    }
    let mut mant: u64 = 0;
    let mut frac_digits = 0usize;
    let mut seen_dot = false;
    let mut n_digits = 0usize;
    for &b in body {
        match b {
            b'0'..=b'9' => {
                mant = mant * 10 + u64::from(b - b'0');
                n_digits += 1;
                if seen_dot {
                    frac_digits += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => return None,
        }
    }
    if n_digits == 0 || n_digits > 15 || (seen_dot && frac_digits == 0) {
        return None;
    }
    let v = mant as f64 / POW10[frac_digits];
    Some(if neg { -v } else { v })
}

/// The standard parser, restricted to JSON-like decimal syntax so that words such
/// as "inf" or "NaN" stay non-numeric.
fn slow_decimal(s: &[u8]) -> Option<f64> {
    if !s
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let v: f64 = text.parse().ok()?;
    v.is_finite().then_some(v)
}

/// A JSON number literal (already validated by the page scanner).
#[inline]
pub fn parse_json_number(s: &[u8]) -> Option<f64> {
    fast_decimal(s).or_else(|| slow_decimal(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_value_str(b"45.5"), Some(45.5));
        assert_eq!(parse_value_str(b"-1e3"), Some(-1000.0));
        assert_eq!(parse_value_str(b" 7 "), Some(7.0));
        assert_eq!(parse_value_str(b"0.1"), Some(0.1));
        assert_eq!(parse_value_str(b"-0"), Some(-0.0));
        assert_eq!(parse_value_str(b"+3"), Some(3.0));
        assert_eq!(
            parse_value_str(b"12345678901234567890"),
            Some(1.2345678901234567e19)
        );
        assert_eq!(parse_value_str(b".5"), Some(0.5));
        assert_eq!(parse_value_str(b"5."), Some(5.0));
    }

    #[test]
    fn words_and_junk() {
        assert_eq!(parse_value_str(b"true"), Some(1.0));
        assert_eq!(parse_value_str(b"Inactive"), Some(0.0));
        assert_eq!(parse_value_str(b"ON"), Some(1.0));
        for junk in [
            &b""[..],
            b"NaN",
            b"nan",
            b"inf",
            b"-inf",
            b"1e999",
            b"abc",
            b"1.2.3",
            b"--1",
            b" ",
        ] {
            assert_eq!(
                parse_value_str(junk),
                None,
                "{:?}",
                std::str::from_utf8(junk)
            );
        }
    }

    #[test]
    fn fast_path_is_exact() {
        for s in [
            "72.5",
            "0.3",
            "123456.789012",
            "999999999999999",
            "0.000000000000001",
        ] {
            assert_eq!(
                parse_value_str(s.as_bytes()),
                Some(s.parse::<f64>().unwrap()),
                "{s}"
            );
        }
    }
}
