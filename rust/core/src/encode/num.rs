//! Decimal numbers for the text formats, with fast paths for the common shapes:
//! 13-digit millisecond timestamps and floats with at most four decimals (sensor
//! readings such as `72.5` or `0.125`). Both give exactly what `itoa` and ryu give.

/// Eight ASCII digits of `hi * 10^4 + lo` (`hi`, `lo` < 10^4), most significant first
/// (Khuong's SWAR, as shown by Lemire).
#[inline(always)]
pub(crate) fn eight_digits(hi: u64, lo: u64) -> [u8; 8] {
    let merged = hi | (lo << 32);
    let top = ((merged * 10486) >> 20) & ((0x7f << 32) | 0x7f);
    let bot = merged - 100 * top;
    let hundreds = (bot << 16) + top;
    let mut tens = (hundreds * 103) >> 10;
    tens &= (0xf << 48) | (0xf << 32) | (0xf << 16) | 0xf;
    tens += (hundreds - 10 * tens) << 8;
    (tens + 0x3030_3030_3030_3030).to_le_bytes()
}

/// `"00" "01" .. "99"`: two ASCII digits per entry.
static PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// The four ASCII digits of `v` < 10^4 (zero-padded) as a little-endian word, most
/// significant digit first.
#[inline(always)]
pub(crate) fn four_digits(v: usize) -> u32 {
    let (hi, lo) = (&PAIRS[2 * (v / 100)..], &PAIRS[2 * (v % 100)..]);
    u32::from_le_bytes([hi[0], hi[1], lo[0], lo[1]])
}

/// 13-digit integers: ms timestamps from 2001-09-09 to 2286-11-20.
pub(crate) const TS13: std::ops::RangeInclusive<i64> = 1_000_000_000_000..=9_999_999_999_999;

/// The 13 digits of a value in [`TS13`] as the low 13 bytes of a little-endian word
/// (most significant digit first), or `None`.
#[inline(always)]
pub(crate) fn thirteen_digit_word(v: i64) -> Option<u128> {
    if !TS13.contains(&v) {
        return None;
    }
    let v = v as u64;
    let (top, bottom) = (v / 100_000_000, v % 100_000_000);
    // "000" + five digits: shift the padding out
    let a = u64::from_le_bytes(eight_digits(top / 10_000, top % 10_000)) >> 24;
    let b = u64::from_le_bytes(eight_digits(bottom / 10_000, bottom % 10_000));
    Some(u128::from(a) | u128::from(b) << 40)
}

/// [`thirteen_digit_word`] for a run of timestamps, which share their top five digits
/// for 10^8 ms (28 hours) at a time: those are converted once per change.
pub(crate) struct Ts13Words {
    top: u64,
    word: u64,
}

impl Ts13Words {
    pub(crate) fn new() -> Self {
        Ts13Words {
            top: u64::MAX,
            word: 0,
        }
    }

    /// Same as [`thirteen_digit_word`].
    #[inline(always)]
    pub(crate) fn get(&mut self, v: i64) -> Option<u128> {
        if !TS13.contains(&v) {
            return None;
        }
        let v = v as u64;
        let (top, bottom) = (v / 100_000_000, v % 100_000_000);
        if top != self.top {
            self.top = top;
            self.word = u64::from_le_bytes(eight_digits(top / 10_000, top % 10_000)) >> 24;
        }
        // Eight digits from four pair-table loads: fewer operations than the SWAR.
        let (hi, lo) = ((bottom / 10_000) as usize, (bottom % 10_000) as usize);
        let b = u64::from(four_digits(hi)) | u64::from(four_digits(lo)) << 32;
        Some(u128::from(self.word) | u128::from(b) << 40)
    }
}

/// The 13 digits of a value in [`TS13`], or `None`.
#[inline(always)]
pub(crate) fn thirteen_digits(v: i64) -> Option<[u8; 13]> {
    let word = thirteen_digit_word(v)?.to_le_bytes();
    let mut out = [0u8; 13];
    out.copy_from_slice(&word[..13]);
    Some(out)
}

/// Number of bytes of `v` in decimal, sign included.
#[inline(always)]
pub(crate) fn int_len(v: i64) -> usize {
    let sign = usize::from(v < 0);
    let mut u = v.unsigned_abs();
    if u < 100_000_000 {
        // Branch-free for the common sizes (sensor readings' integer parts).
        return 1
            + usize::from(u >= 10)
            + usize::from(u >= 100)
            + usize::from(u >= 1_000)
            + usize::from(u >= 10_000)
            + usize::from(u >= 100_000)
            + usize::from(u >= 1_000_000)
            + usize::from(u >= 10_000_000)
            + sign;
    }
    let mut n = 1;
    while u >= 10_000 {
        u /= 10_000;
        n += 4;
    }
    n + usize::from(u >= 10) + usize::from(u >= 100) + usize::from(u >= 1000) + sign
}

/// Largest magnitude taken by the four-decimal fast path: below it a double's spacing is
/// under 10^-5, so distinct four-decimal numbers are distinct doubles.
const SHORT_LIMIT: f64 = 1e11;

/// Whether `a` (finite, `0 <= a < 10^11`) is the double nearest to `m / 10^4`, i.e.
/// whether `m as f64 / 1e4 == a` (the correctly rounded quotient), decided with integer
/// arithmetic instead of a division.
///
/// With `a = M * 2^e` (`e < 0` here), `m / 10^4` rounds to `a` when it lies within half
/// an ulp: `|m * 2^-e - M * 10^4| < 5000` (in units of `10^4 * 2^e`), or `< 2500` below a
/// power of two, where the ulp underneath is half as large. Exact ties cannot occur:
/// `m / 10^4` is dyadic only when it is a multiple of 1/16, which is a double itself.
#[inline(always)]
fn nearest_to_decimal(a: f64, m: u64) -> bool {
    if m == 0 {
        return a == 0.0;
    }
    let bits = a.to_bits();
    let biased = (bits >> 52) as i32; // sign is clear
    let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
    let shift = 1075 - biased; // -e
                               // For m >= 1, a >= 5e-5 > 2^-15: shift <= 67, and m * 2^shift ~ M * 10^4 < 2^67.
    if !(1..=100).contains(&shift) {
        return false;
    }
    let lhs = u128::from(m) << shift;
    let rhs = u128::from(mantissa) * 10_000;
    let half_ulp = if mantissa == 1 << 52 && lhs < rhs {
        2_500
    } else {
        5_000
    };
    lhs.abs_diff(rhs) < half_ulp
}

/// A float that is exactly the double nearest to a decimal with at most four decimals:
/// `[-]int.frac`, with `frac_len` (1..=4) digits of `frac` (zero-padded to four, trailing
/// zeros dropped; `frac_len` 1 with `frac` 0 is the `.0` of an integral value).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Short {
    pub negative: bool,
    pub int: u64,
    pub frac: [u8; 4],
    pub frac_len: usize,
}

impl Short {
    /// `Some` when `v` (finite) takes the fast path.
    ///
    /// If `m / 10^4` (correctly rounded division, like parsing the decimal) gives back
    /// `|v|`, that decimal with trailing zeros stripped is the unique shortest
    /// round-trip representation: any other decimal with as few digits lies on the
    /// 10^-4 grid, at least 10^-4 away, which is more than the spacing of doubles below
    /// [`SHORT_LIMIT`]. So ryu would print the same digits, in the same plain notation
    /// (ryu switches to exponents only below 10^-5 or from 10^16).
    #[inline(always)]
    pub(crate) fn new(v: f64) -> Option<Short> {
        let (m, frac_len) = Self::decimal(v)?;
        let (int, frac) = (m / 10_000, (m % 10_000) as usize);
        Some(Short {
            negative: v.is_sign_negative(),
            int,
            frac: four_digits(frac).to_le_bytes(),
            frac_len,
        })
    }

    /// The length [`Short::new(v)`](Short::new)`.len()` would give, without the digits.
    #[inline(always)]
    pub(crate) fn len_of(v: f64) -> Option<usize> {
        let (m, frac_len) = Self::decimal(v)?;
        let int = m / 10_000;
        Some(usize::from(v.is_sign_negative()) + int_len(int as i64) + 1 + frac_len)
    }

    /// `|v| * 10^4` as an integer and the number of decimals to print (1..=4), when `v`
    /// takes the fast path.
    #[inline(always)]
    fn decimal(v: f64) -> Option<(u64, usize)> {
        let a = v.abs();
        if !a.is_finite() || a >= SHORT_LIMIT {
            return None;
        }
        // SAFETY: `a` is finite and in [0, 10^11), so `a * 1e4 + 0.5` is finite and in
        // [0, 2^63): the truncating conversion is exact and needs none of the saturation
        // fix-ups of `as`.
        let m = unsafe { (a * 1e4 + 0.5).to_int_unchecked::<i64>() } as u64;
        if !nearest_to_decimal(a, m) {
            return None;
        }
        let frac = m % 10_000;
        let frac_len = if frac % 10 != 0 {
            4
        } else if frac % 100 != 0 {
            3
        } else if frac % 1000 != 0 {
            2
        } else {
            1
        };
        Some((m, frac_len))
    }

    /// Bytes of the text: sign, integer digits, point, decimals.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.negative) + int_len(self.int as i64) + 1 + self.frac_len
    }

    /// The text (for `int` < 10^8) in the first `len` bytes of a fixed-size array, built
    /// in a register (bytes stored at variable offsets would stall the final load).
    #[inline(always)]
    pub(crate) fn text(&self) -> ([u8; 16], usize) {
        let (t, len) = self.word();
        (t.to_le_bytes(), len)
    }

    /// [`Short::text`] as the little-endian word it is built in, and the length of the
    /// text (at most 14: a sign, eight digits, the point and four decimals). The bytes
    /// past the length are not zero (all four decimals are always there).
    #[inline(always)]
    pub(crate) fn word(&self) -> (u128, usize) {
        debug_assert!(self.int < 100_000_000);
        let digits = int_len(self.int as i64);
        // eight zero-padded digits with the padding shifted out (little-endian: the first
        // bytes are the most significant digits)
        let word = if self.int < 10_000 {
            // Four digits from the pair table: cheaper than the eight-digit SWAR.
            u64::from(four_digits(self.int as usize)) >> (8 * (4 - digits))
        } else {
            u64::from_le_bytes(eight_digits(self.int / 10_000, self.int % 10_000))
                >> (8 * (8 - digits))
        };
        let mut t = u128::from(word) | (u128::from(b'.') << (8 * digits));
        t |= u128::from(u32::from_le_bytes(self.frac)) << (8 * (digits + 1));
        let mut len = digits + 1 + self.frac_len;
        if self.negative {
            t = (t << 8) | u128::from(b'-');
            len += 1;
        }
        (t, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::sink::{Counter, Out, Sink};

    fn int_text(v: i64) -> String {
        let mut c = Counter(0);
        c.int(v);
        let mut buf = vec![0; c.0];
        let mut o = Out::new(&mut buf);
        o.int(v);
        o.finish().unwrap();
        String::from_utf8(buf).unwrap()
    }

    fn f64_text(v: f64) -> String {
        let mut c = Counter(0);
        c.finite_f64(v);
        let mut buf = vec![0; c.0];
        let mut o = Out::new(&mut buf);
        o.finite_f64(v);
        o.finish().unwrap();
        String::from_utf8(buf).unwrap()
    }

    /// A small deterministic generator (SplitMix64), so the tests need no crates.
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
    fn small_digit_words() {
        for v in 0..10_000usize {
            assert_eq!(four_digits(v).to_le_bytes(), *format!("{v:04}").as_bytes());
        }
        let mut words = Ts13Words::new();
        let mut rng = Rng(9);
        for i in 0..100_000i64 {
            let v = match i % 3 {
                0 => 1_704_067_200_000 + i * 60_000,
                1 => (rng.next() % 10_000_000_000_000) as i64,
                _ => -(i * 1_000_003),
            };
            assert_eq!(words.get(v), thirteen_digit_word(v), "{v}");
        }
    }

    #[test]
    fn eight_digit_words() {
        for v in [
            0u64, 1, 9, 10, 99_999_999, 12_345_678, 10_000_000, 90_000_001,
        ] {
            let d = eight_digits(v / 10_000, v % 10_000);
            assert_eq!(std::str::from_utf8(&d).unwrap(), format!("{v:08}"));
        }
    }

    #[test]
    fn ints_match_itoa() {
        let mut rng = Rng(1);
        let edges = [
            0,
            -1,
            9,
            10,
            -10,
            i64::MIN,
            i64::MAX,
            999_999_999_999,
            1_000_000_000_000,
            9_999_999_999_999,
            10_000_000_000_000,
            1_704_067_200_000,
            -1_704_067_200_000,
        ];
        let randoms = (0..200_000).map(|i| {
            let r = rng.next();
            match i % 4 {
                0 => r as i64,
                1 => (r % 9_000_000_000_000) as i64 + 1_000_000_000_000,
                2 => (r >> (r % 64)) as i64,
                _ => (r % 100_000) as i64 - 50_000,
            }
        });
        for v in edges.into_iter().chain(randoms) {
            assert_eq!(int_text(v), v.to_string());
            assert_eq!(int_len(v), v.to_string().len());
        }
    }

    #[test]
    fn integer_check_matches_division() {
        let mut rng = Rng(3);
        let mut hits = 0;
        for i in 0..2_000_000u64 {
            let r = rng.next();
            let a = match i % 4 {
                0 => (r % 1_000_000_000_000_000) as f64 / 1e4,
                1 => f64::from_bits(r >> 1),
                2 => f64::from_bits(((r % 1_000_000_000) as f64 / 1e4).to_bits() + (r >> 62) - 2),
                _ => 2f64.powi((r % 80) as i32 - 40) * if r & 1 == 0 { 1.0 } else { 1.0 + 1e-4 },
            };
            if !a.is_finite() || a >= SHORT_LIMIT {
                continue;
            }
            let m = (a * 1e4 + 0.5) as u64;
            let expect = m as f64 / 1e4 == a;
            hits += usize::from(expect);
            assert_eq!(nearest_to_decimal(a, m), expect, "{a:?} {m}");
        }
        assert!(hits > 500_000, "{hits}");
    }

    #[test]
    fn floats_match_ryu() {
        let mut rng = Rng(2);
        let check = |v: f64| {
            let expect = ryu::Buffer::new().format_finite(v).to_owned();
            assert_eq!(f64_text(v), expect, "{v:?}");
        };
        for v in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            0.0001,
            0.00005,
            0.00015,
            0.30000000000000004,
            72.5,
            -72.53,
            99_999_999_999.999_9,
            1e11,
            1e11 - 0.0001,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            123_456.789,
            9.999_95,
        ] {
            check(v);
        }
        for i in 0..400_000u64 {
            let r = rng.next();
            let v = match i % 5 {
                // k-decimal numbers of every magnitude up to the limit and a bit past it
                0 => {
                    let k = (r % 7) as i32;
                    let m = (rng.next() % 2_000_000_000_000_000) as f64;
                    m / 10f64.powi(k)
                }
                1 => f64::from_bits(r),
                2 => (r % 1_000_000) as f64 / 10_000.0 - 50.0,
                3 => f64::from_bits(r) / f64::from_bits(rng.next() | 1),
                _ => ((r % 100_000) as f64 * 0.01) * if r & 1 == 0 { 1.0 } else { -1.0 },
            };
            if v.is_finite() {
                check(v);
            }
        }
    }
}
