//! Serialisation of one aggregate block: the sealed bucket statistics of one point at
//! one level for one UTC period (a month), plus the time intervals they cover.
//!
//! Layout (little endian): `b"ACG"`, version u8, bucket count u64, then one zstd frame
//! with its content checksum holding: the identity (site, point, level, period: each a
//! u32 length and UTF-8 bytes), interval count u32, intervals as (start, end) i64 pairs,
//! then eight columns of `count` 8-byte words, each byte-shuffled (byte k of every word
//! together) so zstd sees runs of equal bytes: bucket starts as deltas (all equal for a
//! gap-free month), counts, then sum, min, max, m2, first, last as f64. `avg` and
//! `stddev` are derived on decoding, never stored.
//!
//! Everything but the magic, version and count is under the checksum, so a flipped bit
//! cannot become a wrong coverage claim, wrong statistics or another point's data; and
//! the reader checks the identity, so a block is never served for another site, point,
//! level or period whatever its database key says. Every decoding failure is
//! [`CoreError::Block`].
//!
//! [`decode_many`] turns the blocks of one query (many points, many months) into one
//! set of contiguous columns plus per-point bounds, in one call: the serving path of the
//! aggregate tier builds no per-bucket (or per-block) Python object.

use crate::aggregate::Aggregates;
use crate::error::{CoreError, Result};
use crate::frame::{bad, check_intervals, open, seal, Kind, Reader};

pub const VERSION: u8 = 1;
/// Upper bound of the identity and interval list inside the payload.
const MAX_META: usize = 1 << 24;
/// Stored columns: ts, count, sum, min, max, m2, first, last.
const COLUMNS: usize = 8;
const KIND: Kind = Kind {
    magic: b"ACG",
    version: VERSION,
    not_this: "not an aggregate block (bad magic)",
    unsupported: "unsupported aggregate block version",
    item: "bucket",
    item_bytes: 8 * COLUMNS,
    meta_max: MAX_META,
};

/// Which series a block belongs to; all four are stored under the checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub site: String,
    pub point: String,
    pub level: String,
    pub period: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AggBlock {
    pub identity: Identity,
    /// Bucket statistics, avg and stddev derived.
    pub aggs: Aggregates,
    /// Covered `[start, end)` intervals in ms, sorted and disjoint.
    pub covered: Vec<(i64, i64)>,
}

/// Index of the first bucket start outside every covered interval (both sorted).
fn first_uncovered(ts: &[i64], covered: &[(i64, i64)]) -> Option<usize> {
    let mut k = 0;
    for (i, &t) in ts.iter().enumerate() {
        while k < covered.len() && covered[k].1 <= t {
            k += 1;
        }
        if k == covered.len() || covered[k].0 > t {
            return Some(i);
        }
    }
    None
}

/// Whether every interval of `inner` lies inside one interval of `outer` (both sorted).
fn contains_all(outer: &[(i64, i64)], inner: &[(i64, i64)]) -> bool {
    let mut k = 0;
    inner.iter().all(|&(s, e)| {
        while k < outer.len() && outer[k].1 < e {
            k += 1;
        }
        k < outer.len() && outer[k].0 <= s && e <= outer[k].1
    })
}

/// Transpose an 8x8 byte matrix held as eight little-endian rows: byte j of row k
/// becomes byte k of row j. Three rounds of block swaps (4, 2, then 1 byte wide).
#[inline(always)]
fn transpose8(m: &mut [u64; 8]) {
    const MASKS: [(u32, u64); 3] = [
        (4, 0x0000_0000_ffff_ffff),
        (2, 0x0000_ffff_0000_ffff),
        (1, 0x00ff_00ff_00ff_00ff),
    ];
    for (s, mask) in MASKS {
        let shift = 8 * s;
        for k in 0..8usize {
            if k & s as usize == 0 {
                let j = k + s as usize;
                let t = ((m[k] >> shift) ^ m[j]) & mask;
                m[j] ^= t;
                m[k] ^= t << shift;
            }
        }
    }
}

#[inline(always)]
fn load(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Append `words` byte-shuffled: byte k of every word, for k = 0..8, each run contiguous.
fn shuffle(words: impl ExactSizeIterator<Item = u64>, dst: &mut Vec<u8>) {
    let n = words.len();
    let base = dst.len();
    dst.resize(base + 8 * n, 0);
    let out = &mut dst[base..];
    let mut block = [0u64; 8];
    let mut fill = 0;
    for (i, w) in words.enumerate() {
        block[fill] = w;
        fill += 1;
        if fill == 8 {
            transpose8(&mut block);
            let at = i + 1 - 8;
            for (k, row) in block.iter().enumerate() {
                out[k * n + at..k * n + at + 8].copy_from_slice(&row.to_le_bytes());
            }
            fill = 0;
        }
    }
    let at = n - fill;
    for (i, w) in block[..fill].iter().enumerate() {
        for (k, b) in w.to_le_bytes().into_iter().enumerate() {
            out[k * n + at + i] = b;
        }
    }
}

/// The words of one shuffled column of `n` words (`src.len() == 8 * n`), mapped by `f`.
fn unshuffle<T>(src: &[u8], n: usize, mut f: impl FnMut(u64) -> T) -> Vec<T> {
    debug_assert_eq!(src.len(), 8 * n);
    let mut out = Vec::with_capacity(n);
    let whole = n / 8 * 8;
    let mut block = [0u64; 8];
    for at in (0..whole).step_by(8) {
        for (k, row) in block.iter_mut().enumerate() {
            *row = load(src, k * n + at);
        }
        transpose8(&mut block);
        out.extend(block.iter().map(|&w| f(w)));
    }
    for i in whole..n {
        let mut w = [0u8; 8];
        for (k, b) in w.iter_mut().enumerate() {
            *b = src[k * n + i];
        }
        out.push(f(u64::from_le_bytes(w)));
    }
    out
}

fn put_str(payload: &mut Vec<u8>, s: &str, what: &str) -> Result<()> {
    let len = u32::try_from(s.len())
        .ok()
        .filter(|&l| (l as usize) < MAX_META / 8)
        .ok_or_else(|| CoreError::Argument(format!("{what} too long")))?;
    payload.extend_from_slice(&len.to_le_bytes());
    payload.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Serialise the mergeable state of `a` (avg and stddev are ignored) for `id`.
/// Bucket starts must increase strictly, every count be >= 1, and every bucket start
/// lie inside `covered` (sorted, disjoint, non-empty intervals).
pub fn encode(id: &Identity, a: &Aggregates, covered: &[(i64, i64)]) -> Result<Vec<u8>> {
    a.validate("aggregates")?;
    check_intervals(covered)?;
    if let Some(i) = first_uncovered(&a.ts, covered) {
        return Err(CoreError::Argument(format!(
            "bucket {} (ts {}) lies outside the covered intervals",
            i, a.ts[i]
        )));
    }
    let n = a.len();
    let n_iv = u32::try_from(covered.len())
        .ok()
        .filter(|&k| (k as usize) < MAX_META / 32)
        .ok_or_else(|| CoreError::Argument("too many intervals".into()))?;
    let mut payload = Vec::with_capacity(64 + covered.len() * 16 + n * 8 * COLUMNS);
    put_str(&mut payload, &id.site, "site")?;
    put_str(&mut payload, &id.point, "point name")?;
    put_str(&mut payload, &id.level, "level")?;
    put_str(&mut payload, &id.period, "period")?;
    payload.extend_from_slice(&n_iv.to_le_bytes());
    for &(s, e) in covered {
        payload.extend_from_slice(&s.to_le_bytes());
        payload.extend_from_slice(&e.to_le_bytes());
    }
    let mut prev = 0i64;
    let deltas = a.ts.iter().map(|&t| {
        let d = t.wrapping_sub(prev);
        prev = t;
        d as u64
    });
    shuffle(deltas, &mut payload);
    shuffle(a.count.iter().map(|&c| c as u64), &mut payload);
    for col in [&a.sum, &a.min, &a.max, &a.m2, &a.first, &a.last] {
        shuffle(col.iter().map(|x| x.to_bits()), &mut payload);
    }

    seal(&KIND, n, &payload, 3)
}

/// Decompress and parse a block; the columns stay shuffled words in the payload.
fn parse(data: &[u8]) -> Result<AggBlock> {
    let (n, payload) = open(&KIND, data)?;
    let mut p = Reader::new(&payload);
    let identity = Identity {
        site: p.str("site")?.to_owned(),
        point: p.str("point name")?.to_owned(),
        level: p.str("level")?.to_owned(),
        period: p.str("period")?.to_owned(),
    };
    let n_iv = p.u32("interval count")? as usize;
    let mut covered = Vec::with_capacity(n_iv.min(payload.len() / 16));
    for _ in 0..n_iv {
        let s = p.u64("intervals")? as i64;
        let e = p.u64("intervals")? as i64;
        covered.push((s, e));
    }
    check_intervals(&covered).map_err(|e| bad(e.to_string()))?;
    let columns = p.rest();
    if columns.len() != n * 8 * COLUMNS {
        return Err(bad(format!(
            "payload holds {} column bytes, expected {}",
            columns.len(),
            n * 8 * COLUMNS
        )));
    }
    let col = |k: usize| &columns[k * 8 * n..(k + 1) * 8 * n];
    let mut acc = 0i64;
    let ts = unshuffle(col(0), n, |d| {
        acc = acc.wrapping_add(d as i64);
        acc
    });
    let f = |k: usize| unshuffle(col(k), n, f64::from_bits);
    let aggs = Aggregates::from_state(
        ts,
        unshuffle(col(1), n, |w| w as i64),
        f(2),
        f(3),
        f(4),
        f(5),
        f(6),
        f(7),
    );
    aggs.validate("block").map_err(|e| bad(e.to_string()))?;
    if first_uncovered(&aggs.ts, &covered).is_some() {
        return Err(bad("a bucket lies outside the covered intervals"));
    }
    Ok(AggBlock {
        identity,
        aggs,
        covered,
    })
}

/// Read a block back, checking its bytes; every failure is [`CoreError::Block`].
pub fn decode(data: &[u8]) -> Result<AggBlock> {
    parse(data)
}

/// One stored block of a query, as [`decode_many`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// Index of the block's point in the `points` list.
    pub point: usize,
    /// The period the block is stored under.
    pub period: &'a str,
    pub data: &'a [u8],
    /// The intervals the block's database row claims (must be inside the block's own).
    pub claimed: &'a [(i64, i64)],
}

/// The decoded blocks of one query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Buckets of every point, point after point (in the order of `points`), each sorted.
    pub aggs: Aggregates,
    /// Point `i` holds rows `bounds[i]..bounds[i + 1]`; `len == points.len() + 1`.
    pub bounds: Vec<i64>,
    /// Position in `items` and reason of every block that could not be used: damaged
    /// bytes, another series' identity, a claim its own coverage does not back, or a
    /// bucket overlapping another block of the same point. They contribute nothing.
    pub damaged: Vec<(usize, String)>,
}

/// Decode the blocks of one query (one site and level, many points and periods) into
/// one set of columns holding, per point, the buckets with `start_ms <= ts < end_ms` in
/// time order. A block that cannot be used is reported in [`Batch::damaged`], never an
/// error: the caller treats it as a miss.
pub fn decode_many(
    site: &str,
    level: &str,
    points: &[&str],
    items: &[Item<'_>],
    start_ms: i64,
    end_ms: i64,
) -> Result<Batch> {
    if let Some(i) = items.iter().position(|it| it.point >= points.len()) {
        return Err(CoreError::Argument(format!(
            "block {i} names point index {} of {} points",
            items[i].point,
            points.len()
        )));
    }
    let decode_one = |it: &Item<'_>| -> Result<Aggregates> {
        let b = parse(it.data)?;
        let want = (site, points[it.point], level, it.period);
        let id = &b.identity;
        let got = (&*id.site, &*id.point, &*id.level, &*id.period);
        if got != want {
            return Err(bad(format!("holds {got:?}, expected {want:?}")));
        }
        let mut claimed = it.claimed.to_vec();
        claimed.sort_unstable();
        if !contains_all(&b.covered, &claimed) {
            return Err(bad("its row claims intervals the block does not cover"));
        }
        let a = b.aggs;
        let lo = a.ts.partition_point(|&t| t < start_ms);
        let hi = a.ts.partition_point(|&t| t < end_ms);
        Ok(if lo == 0 && hi == a.len() {
            a
        } else {
            slice(&a, lo, hi)
        })
    };
    let decoded: Vec<Result<Aggregates>> = {
        use rayon::prelude::*;
        items.par_iter().map(decode_one).collect()
    };
    let mut damaged = Vec::new();
    let mut good: Vec<(usize, Aggregates)> = Vec::with_capacity(items.len());
    for (i, d) in decoded.into_iter().enumerate() {
        match d {
            Ok(a) => good.push((i, a)),
            Err(e) => damaged.push((i, e.to_string())),
        }
    }
    // Point order, then time order; empty blocks sort anywhere within their point.
    good.sort_by_key(|(i, a)| (items[*i].point, a.ts.first().copied().unwrap_or(i64::MIN)));
    let total = good.iter().map(|(_, a)| a.len()).sum();
    let mut out = Aggregates {
        ts: Vec::with_capacity(total),
        count: Vec::with_capacity(total),
        sum: Vec::with_capacity(total),
        min: Vec::with_capacity(total),
        max: Vec::with_capacity(total),
        avg: Vec::with_capacity(total),
        stddev: Vec::with_capacity(total),
        m2: Vec::with_capacity(total),
        first: Vec::with_capacity(total),
        last: Vec::with_capacity(total),
    };
    let mut bounds = vec![0i64; points.len() + 1];
    let mut prev: Option<(usize, i64)> = None;
    for (i, a) in &good {
        let point = items[*i].point;
        if let (Some((p, last)), Some(&first)) = (prev, a.ts.first()) {
            if p == point && first <= last {
                damaged.push((*i, "buckets overlap another block of the point".into()));
                continue;
            }
        }
        if let Some(&last) = a.ts.last() {
            prev = Some((point, last));
        }
        out.ts.extend_from_slice(&a.ts);
        out.count.extend_from_slice(&a.count);
        out.sum.extend_from_slice(&a.sum);
        out.min.extend_from_slice(&a.min);
        out.max.extend_from_slice(&a.max);
        out.avg.extend_from_slice(&a.avg);
        out.stddev.extend_from_slice(&a.stddev);
        out.m2.extend_from_slice(&a.m2);
        out.first.extend_from_slice(&a.first);
        out.last.extend_from_slice(&a.last);
        bounds[point + 1] += a.len() as i64;
    }
    for k in 1..bounds.len() {
        bounds[k] += bounds[k - 1];
    }
    damaged.sort_unstable();
    Ok(Batch {
        aggs: out,
        bounds,
        damaged,
    })
}

fn slice(a: &Aggregates, lo: usize, hi: usize) -> Aggregates {
    Aggregates {
        ts: a.ts[lo..hi].to_vec(),
        count: a.count[lo..hi].to_vec(),
        sum: a.sum[lo..hi].to_vec(),
        min: a.min[lo..hi].to_vec(),
        max: a.max[lo..hi].to_vec(),
        avg: a.avg[lo..hi].to_vec(),
        stddev: a.stddev[lo..hi].to_vec(),
        m2: a.m2[lo..hi].to_vec(),
        first: a.first[lo..hi].to_vec(),
        last: a.last[lo..hi].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::aggregate;

    fn id(point: &str, period: &str) -> Identity {
        Identity {
            site: "site".into(),
            point: point.into(),
            level: "1hr".into(),
            period: period.into(),
        }
    }

    /// A month of hourly buckets from minutely samples, with NaN and a gap.
    fn month(offset: i64, seed: u64) -> (Aggregates, Vec<(i64, i64)>) {
        let n = 31 * 24 * 60;
        let ts: Vec<i64> = (0..n as i64)
            .filter(|i| !(5000..5300).contains(i))
            .map(|i| offset + i * 60_000)
            .collect();
        let v: Vec<f64> = ts
            .iter()
            .enumerate()
            .map(|(i, _)| {
                if (i as u64 + seed) % 101 == 0 {
                    f64::NAN
                } else {
                    70.0 + ((i as u64 * 7919 + seed) % 97) as f64 * 0.1
                }
            })
            .collect();
        let a = aggregate(&ts, &v, 3_600_000, 0).unwrap();
        (a, vec![(offset, offset + n as i64 * 60_000)])
    }

    fn same(a: &Aggregates, b: &Aggregates) {
        assert_eq!(a.ts, b.ts);
        assert_eq!(a.count, b.count);
        for (x, y) in [
            (&a.sum, &b.sum),
            (&a.min, &b.min),
            (&a.max, &b.max),
            (&a.avg, &b.avg),
            (&a.stddev, &b.stddev),
            (&a.m2, &b.m2),
            (&a.first, &b.first),
            (&a.last, &b.last),
        ] {
            assert!(x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()));
            assert_eq!(x.len(), y.len());
        }
    }

    #[test]
    fn shuffle_round_trips_every_length() {
        for n in 0..40usize {
            let words: Vec<u64> = (0..n as u64)
                .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect();
            let mut buf = Vec::new();
            shuffle(words.iter().copied(), &mut buf);
            for (i, w) in words.iter().enumerate() {
                for k in 0..8 {
                    assert_eq!(buf[k * n + i], w.to_le_bytes()[k]);
                }
            }
            assert_eq!(unshuffle(&buf, n, |w| w), words);
        }
    }

    #[test]
    fn round_trip_and_compresses() {
        let (a, covered) = month(1_735_689_600_000, 1);
        let bytes = encode(&id("p", "2025-01"), &a, &covered).unwrap();
        assert!(bytes.len() < a.len() * 64 / 2, "{} bytes", bytes.len());
        let b = decode(&bytes).unwrap();
        assert_eq!(b.identity, id("p", "2025-01"));
        assert_eq!(b.covered, covered);
        same(&b.aggs, &a);
    }

    #[test]
    fn rejects_bad_input() {
        let (a, covered) = month(0, 2);
        let who = id("p", "1970-01");
        assert!(encode(&who, &a, &[]).is_err());
        assert!(encode(&who, &a, &[(0, 10), (5, 20)]).is_err());
        let mut short = a.clone();
        short.sum.pop();
        assert!(encode(&who, &short, &covered).is_err());
        let empty = Aggregates::default();
        let b = decode(&encode(&who, &empty, &[(0, 1)]).unwrap()).unwrap();
        assert!(b.aggs.is_empty() && b.covered == vec![(0, 1)]);
    }

    #[test]
    fn every_corruption_is_an_error_or_exact() {
        let (a, covered) = month(0, 3);
        let small = slice(&a, 0, 40);
        let cover = vec![(0, 40 * 3_600_000)];
        let good = encode(&id("p", "1970-01"), &small, &cover).unwrap();
        for cut in 0..good.len() {
            assert!(matches!(decode(&good[..cut]), Err(CoreError::Block(_))));
        }
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut damaged = good.clone();
                damaged[i] ^= flip;
                match decode(&damaged) {
                    Err(e) => assert!(matches!(e, CoreError::Block(_)), "{e:?}"),
                    Ok(b) => {
                        assert_eq!(b.identity, id("p", "1970-01"));
                        assert_eq!(b.covered, cover);
                        same(&b.aggs, &small);
                    }
                }
            }
        }
        let _ = covered;
    }

    #[test]
    fn decode_errors_name_the_damage() {
        let good = encode(&id("p", "x"), &Aggregates::default(), &[(0, 1)]).unwrap();
        for (data, needle) in [
            (&b""[..], "truncated in magic"),
            (b"ACB\x01", "bad magic"),
            (b"ACG\x07", "version 7"),
            (&good[..12], "frame header"),
        ] {
            let text = decode(data).unwrap_err().to_string();
            assert!(
                text.starts_with("corrupt block: ") && text.contains(needle),
                "{text}"
            );
        }
    }

    #[test]
    fn decode_many_concatenates_filters_and_reports() {
        let jan = 1_735_689_600_000i64; // 2025-01-01
        let feb = jan + 31 * 86_400_000;
        let (a1, c1) = month(jan, 1);
        let (a2, c2) = month(feb, 2);
        let (b1, d1) = month(jan, 3);
        let blobs = [
            encode(&id("a", "2025-02"), &a2, &c2).unwrap(),
            encode(&id("a", "2025-01"), &a1, &c1).unwrap(),
            encode(&id("b", "2025-01"), &b1, &d1).unwrap(),
            encode(&id("a", "2025-01"), &a1, &c1).unwrap(), // stored as b's February
        ];
        let items = [
            Item {
                point: 0,
                period: "2025-02",
                data: &blobs[0],
                claimed: &c2,
            },
            Item {
                point: 0,
                period: "2025-01",
                data: &blobs[1],
                claimed: &c1,
            },
            Item {
                point: 2,
                period: "2025-01",
                data: &blobs[2],
                claimed: &d1,
            },
            Item {
                point: 2,
                period: "2025-02",
                data: &blobs[3],
                claimed: &[],
            },
        ];
        let start = jan + 10 * 86_400_000 + 1;
        let end = feb + 3 * 86_400_000;
        let got = decode_many("site", "1hr", &["a", "none", "b"], &items, start, end).unwrap();
        assert_eq!(got.damaged.len(), 1);
        assert_eq!(got.damaged[0].0, 3);
        assert!(got.damaged[0].1.contains("expected"), "{:?}", got.damaged);
        let keep = |x: &Aggregates| {
            let lo = x.ts.partition_point(|&t| t < start);
            let hi = x.ts.partition_point(|&t| t < end);
            slice(x, lo, hi)
        };
        let (ka1, ka2, kb1) = (keep(&a1), keep(&a2), keep(&b1));
        let na = ka1.len() + ka2.len();
        assert_eq!(
            got.bounds,
            vec![0, na as i64, na as i64, (na + kb1.len()) as i64]
        );
        same(&slice(&got.aggs, 0, ka1.len()), &ka1);
        same(&slice(&got.aggs, ka1.len(), na), &ka2);
        same(&slice(&got.aggs, na, got.aggs.len()), &kb1);

        // A claim the block does not back, and garbage bytes, are damage too.
        let wide = [(jan - 1, jan + 5)];
        let items = [
            Item {
                point: 0,
                period: "2025-01",
                data: &blobs[1],
                claimed: &wide,
            },
            Item {
                point: 0,
                period: "2025-02",
                data: b"junk",
                claimed: &[],
            },
        ];
        let got = decode_many("site", "1hr", &["a"], &items, 0, i64::MAX).unwrap();
        assert_eq!(
            got.damaged.iter().map(|d| d.0).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(got.bounds, vec![0, 0]);
        let bad_index = [Item {
            point: 1,
            period: "x",
            data: b"",
            claimed: &[],
        }];
        assert!(decode_many("s", "1hr", &["a"], &bad_index, 0, 1).is_err());
    }
}
