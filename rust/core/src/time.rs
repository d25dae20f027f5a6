//! ISO-8601 timestamps to milliseconds since the Unix epoch (UTC, proleptic Gregorian).
//!
//! Hand-written because origin pages carry one timestamp per sample and a general
//! date library would dominate the parse; civil-day arithmetic follows Howard
//! Hinnant's `days_from_civil` / `civil_from_days` derivation (the CSV encoder formats
//! its timestamps with the same `civil_from_days`).

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01, valid for
/// the whole i64 millisecond range.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[inline]
fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    let mut acc = 0u32;
    for &b in part {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        acc = acc * 10 + u32::from(d);
    }
    Some(acc)
}

/// Parse `YYYY-MM-DD[(T| )HH:MM[:SS[.f+]]][Z|z|(+|-)HH[:]MM]` to ms since the epoch.
///
/// A missing zone is UTC; fractional seconds of any length are truncated to ms.
/// Returns a short reason on failure so callers can name the problem.
pub fn parse_iso_ms(s: &[u8]) -> Result<i64, &'static str> {
    let year = digits(s, 0, 4).ok_or("expected a 4-digit year")?;
    if s.get(4) != Some(&b'-') {
        return Err("expected '-' after the year");
    }
    let month = digits(s, 5, 2).ok_or("expected a 2-digit month")?;
    if s.get(7) != Some(&b'-') {
        return Err("expected '-' after the month");
    }
    let day = digits(s, 8, 2).ok_or("expected a 2-digit day")?;
    let year = i64::from(year);
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err("day out of range");
    }
    let mut ms = days_from_civil(year, month, day) * MS_PER_DAY;
    let mut i = 10;
    if i == s.len() {
        return Ok(ms);
    }
    if !matches!(s[i], b'T' | b't' | b' ') {
        return Err("expected 'T' between date and time");
    }
    let hour = digits(s, i + 1, 2).ok_or("expected a 2-digit hour")?;
    if s.get(i + 3) != Some(&b':') {
        return Err("expected ':' after the hour");
    }
    let minute = digits(s, i + 4, 2).ok_or("expected 2-digit minutes")?;
    i += 6;
    let mut second = 0;
    if s.get(i) == Some(&b':') {
        second = digits(s, i + 1, 2).ok_or("expected 2-digit seconds")?;
        i += 3;
        if matches!(s.get(i), Some(b'.') | Some(b',')) {
            i += 1;
            let start = i;
            let mut frac = 0i64;
            while let Some(&b) = s.get(i) {
                if !b.is_ascii_digit() {
                    break;
                }
                if i - start < 3 {
                    frac = frac * 10 + i64::from(b - b'0');
                }
                i += 1;
            }
            let n = i - start;
            if n == 0 {
                return Err("expected digits after the decimal point");
            }
            for _ in n..3 {
                frac *= 10;
            }
            ms += frac;
        }
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("time of day out of range");
    }
    ms += (i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)) * 1000;
    match s.get(i) {
        None => Ok(ms),
        Some(b'Z') | Some(b'z') if i + 1 == s.len() => Ok(ms),
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(s, i + 1, 2).ok_or("expected a 2-digit zone hour")?;
            let mut j = i + 3;
            if s.get(j) == Some(&b':') {
                j += 1;
            }
            let om = digits(s, j, 2).ok_or("expected 2-digit zone minutes")?;
            if j + 2 != s.len() {
                return Err("unexpected characters after the zone offset");
            }
            if oh > 23 || om > 59 {
                return Err("zone offset out of range");
            }
            let offset = (i64::from(oh) * 60 + i64::from(om)) * 60_000;
            Ok(if sign == b'+' {
                ms - offset
            } else {
                ms + offset
            })
        }
        _ => Err("unexpected characters after the time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<i64, &'static str> {
        parse_iso_ms(s.as_bytes())
    }

    #[test]
    fn epoch_and_zones() {
        assert_eq!(p("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(p("1970-01-01T00:00:00"), Ok(0));
        assert_eq!(p("1970-01-01"), Ok(0));
        assert_eq!(p("1970-01-01T01:00:00+01:00"), Ok(0));
        assert_eq!(p("1969-12-31T19:00:00-0500"), Ok(0));
        assert_eq!(p("2024-01-01T00:00Z"), Ok(1_704_067_200_000));
        assert_eq!(p("2024-01-01 00:00:00.5Z"), Ok(1_704_067_200_500));
        assert_eq!(p("2024-01-01T00:00:00.123456789Z"), Ok(1_704_067_200_123));
        assert_eq!(p("1969-12-31T23:59:59.999Z"), Ok(-1));
        // the origin's naive microseconds: UTC, truncated to ms
        assert_eq!(p("2025-10-12T16:30:37.626470"), Ok(1_760_286_637_626));
        assert_eq!(p("2025-10-12T16:30:37.999999"), Ok(1_760_286_637_999));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "2024",
            "2024-13-01",
            "2023-02-29",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00ZZ",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+5",
            "2024-01-01X00:00",
            "２０２４-01-01",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert_eq!(p("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
    }

    #[test]
    fn civil_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn known_instants() {
        for (text, ms) in [
            ("1970-01-01T00:00:00.000Z", 0i64),
            ("1969-12-31T23:59:59.999Z", -1),
            ("2024-01-01T00:00:00.123Z", 1_704_067_200_123),
            ("0001-01-01T00:00:00.000Z", -62_135_596_800_000),
            ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
        ] {
            assert_eq!(p(text), Ok(ms), "{text}");
        }
    }

    #[test]
    fn civil_matches_day_by_day_walk() {
        // Walk forward from 1600-03-01 one day at a time, checking against a naive calendar.
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let mdays = |y: i64, m: u32| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let start = -135_080; // 1600-03-01
        assert_eq!(civil_from_days(start), (1600, 3, 1));
        let (mut y, mut m, mut d) = (1600i64, 3u32, 1u32);
        for day in start..start + 400 * 366 * 2 {
            assert_eq!(civil_from_days(day), (y, m, d), "day {day}");
            d += 1;
            if d > mdays(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
