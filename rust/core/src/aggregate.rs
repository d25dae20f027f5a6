//! Fixed-width bucket statistics of one sorted series, and exact roll-ups of them.
//!
//! Each bucket keeps the mergeable state (count, sum, min, max, m2 = sum of squared
//! deviations, first, last) so 1min buckets roll up into 5min and 1hr ones without
//! revisiting raw samples. The
//! variance is two-pass per bucket (mean first, then squared deviations), which is
//! stable for large offsets such as 1e9 + noise; buckets are contiguous in a sorted
//! series and small enough to stay in L1 between the passes.

use crate::error::{CoreError, Result};
use crate::sort::first_descent;

/// Lanes of the inner loops: independent accumulators let the compiler vectorise
/// the NaN-skipping sums without reassociating a single chain.
const LANES: usize = 8;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregates {
    /// Bucket start (ms).
    pub ts: Vec<i64>,
    pub count: Vec<i64>,
    pub sum: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
    pub avg: Vec<f64>,
    /// Sample standard deviation (ddof = 1); NaN when count < 2.
    pub stddev: Vec<f64>,
    pub m2: Vec<f64>,
    /// First and last non-NaN value in the bucket, in time order.
    pub first: Vec<f64>,
    pub last: Vec<f64>,
}

impl Aggregates {
    fn with_capacity(n: usize) -> Self {
        Aggregates {
            ts: Vec::with_capacity(n),
            count: Vec::with_capacity(n),
            sum: Vec::with_capacity(n),
            min: Vec::with_capacity(n),
            max: Vec::with_capacity(n),
            avg: Vec::with_capacity(n),
            stddev: Vec::with_capacity(n),
            m2: Vec::with_capacity(n),
            first: Vec::with_capacity(n),
            last: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Check that every column has the same length and bucket starts increase.
    pub fn validate(&self, what: &str) -> Result<()> {
        let n = self.ts.len();
        let lens = [
            self.count.len(),
            self.sum.len(),
            self.min.len(),
            self.max.len(),
            self.m2.len(),
            self.first.len(),
            self.last.len(),
        ];
        if lens.iter().any(|&l| l != n) {
            return Err(CoreError::Length(format!(
                "{what}: all aggregate columns must have the length of ts ({n})"
            )));
        }
        if self.ts.windows(2).any(|w| w[0] >= w[1]) {
            return Err(CoreError::Argument(format!(
                "{what}: bucket timestamps must be strictly increasing"
            )));
        }
        if self.count.iter().any(|&c| c < 1) {
            return Err(CoreError::Argument(format!(
                "{what}: every bucket must have count >= 1"
            )));
        }
        Ok(())
    }

    /// Buckets from their mergeable state; `avg` and `stddev` are derived (the only
    /// two columns that are not stored).
    #[allow(clippy::too_many_arguments)]
    pub fn from_state(
        ts: Vec<i64>,
        count: Vec<i64>,
        sum: Vec<f64>,
        min: Vec<f64>,
        max: Vec<f64>,
        m2: Vec<f64>,
        first: Vec<f64>,
        last: Vec<f64>,
    ) -> Self {
        let mut a = Aggregates {
            ts,
            count,
            sum,
            min,
            max,
            m2,
            first,
            last,
            ..Aggregates::default()
        };
        a.derive();
        a
    }

    /// Recompute `avg` and `stddev` (ddof = 1, NaN when count < 2) from count, sum, m2.
    pub fn derive(&mut self) {
        let n = self.count.len().min(self.sum.len()).min(self.m2.len());
        self.avg = (0..n).map(|i| self.sum[i] / self.count[i] as f64).collect();
        self.stddev = (0..n)
            .map(|i| stddev_of(self.count[i], self.m2[i]))
            .collect();
    }

    fn push(&mut self, s: State) {
        self.ts.push(s.ts);
        self.count.push(s.count);
        self.sum.push(s.sum);
        self.min.push(s.min);
        self.max.push(s.max);
        self.avg.push(s.sum / s.count as f64);
        self.stddev.push(stddev_of(s.count, s.m2));
        self.m2.push(s.m2);
        self.first.push(s.first);
        self.last.push(s.last);
    }

    fn state(&self, i: usize) -> State {
        State {
            ts: self.ts[i],
            count: self.count[i],
            sum: self.sum[i],
            min: self.min[i],
            max: self.max[i],
            m2: self.m2[i],
            first: self.first[i],
            last: self.last[i],
        }
    }
}

/// Sample standard deviation of a bucket from its count and m2.
#[inline]
fn stddev_of(count: i64, m2: f64) -> f64 {
    if count > 1 {
        (m2 / (count - 1) as f64).sqrt()
    } else {
        f64::NAN
    }
}

#[derive(Clone, Copy)]
struct State {
    ts: i64,
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    m2: f64,
    first: f64,
    last: f64,
}

impl State {
    /// Chan et al.'s pairwise combination; `self` holds the earlier samples.
    fn combine(self, later: State) -> State {
        let n = self.count + later.count;
        let (na, nb) = (self.count as f64, later.count as f64);
        let delta = later.sum / nb - self.sum / na;
        State {
            ts: self.ts,
            count: n,
            sum: self.sum + later.sum,
            min: self.min.min(later.min),
            max: self.max.max(later.max),
            m2: self.m2 + later.m2 + delta * delta * na * nb / n as f64,
            first: self.first,
            last: later.last,
        }
    }
}

/// Start of the bucket holding `t`, or `None` when it does not fit in i64.
#[inline]
fn bucket_start(t: i64, width: i64, origin: i64) -> Option<i64> {
    let (t, w, o) = (i128::from(t), i128::from(width), i128::from(origin));
    i64::try_from(o + (t - o).div_euclid(w) * w).ok()
}

fn check_args(ts: &[i64], values: &[f64], bucket_ms: i64) -> Result<()> {
    if ts.len() != values.len() {
        return Err(CoreError::Length(format!(
            "ts ({}) and values ({}) must have the same length",
            ts.len(),
            values.len()
        )));
    }
    if bucket_ms <= 0 {
        return Err(CoreError::Argument(format!(
            "bucket_ms must be positive, got {bucket_ms}"
        )));
    }
    if let Some(i) = first_descent(ts) {
        return Err(CoreError::Argument(format!(
            "ts must be sorted ascending (ts[{}] = {} > ts[{}] = {})",
            i,
            ts[i],
            i + 1,
            ts[i + 1]
        )));
    }
    Ok(())
}

/// Index of the first element at or after `from` with `ts >= end` (galloping search).
#[inline]
fn bucket_end(ts: &[i64], from: usize, end: i64) -> usize {
    let n = ts.len();
    let mut lo = from;
    let mut step = 1;
    let mut hi = from + step;
    while hi < n && ts[hi] < end {
        lo = hi;
        step *= 2;
        hi = from + step;
    }
    let hi = hi.min(n);
    lo + ts[lo..hi].partition_point(|&t| t < end)
}

/// Sum, min and max of a slice without NaN, in the lanes and order of [`first_pass`]
/// (so the same bits); the sum is NaN when some value is.
#[inline(always)]
fn first_pass_dense(v: &[f64]) -> (f64, f64, f64) {
    let mut sum = [0.0f64; LANES];
    let mut mn = [f64::INFINITY; LANES];
    let mut mx = [f64::NEG_INFINITY; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            let x = c[l];
            sum[l] += x;
            mn[l] = if x < mn[l] { x } else { mn[l] };
            mx[l] = if x > mx[l] { x } else { mx[l] };
        }
    }
    for (l, &x) in tail.iter().enumerate() {
        sum[l] += x;
        mn[l] = if x < mn[l] { x } else { mn[l] };
        mx[l] = if x > mx[l] { x } else { mx[l] };
    }
    (
        pairwise(&sum),
        mn.iter().copied().fold(f64::INFINITY, f64::min),
        mx.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    )
}

/// [`second_pass`] of a slice without NaN (same lanes and order, so the same bits).
#[inline(always)]
fn second_pass_dense(v: &[f64], mean: f64, count: f64) -> f64 {
    let mut m2 = [0.0f64; LANES];
    let mut dev = [0.0f64; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            let d = c[l] - mean;
            m2[l] += d * d;
            dev[l] += d;
        }
    }
    for (l, &x) in tail.iter().enumerate() {
        let d = x - mean;
        m2[l] += d * d;
        dev[l] += d;
    }
    let dev = pairwise(&dev);
    (pairwise(&m2) - dev * dev / count).max(0.0)
}

#[inline(always)]
fn first_pass(v: &[f64]) -> (f64, f64, f64, f64) {
    let mut count = [0.0f64; LANES];
    let mut sum = [0.0f64; LANES];
    let mut mn = [f64::INFINITY; LANES];
    let mut mx = [f64::NEG_INFINITY; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            let x = c[l];
            let ok = !x.is_nan();
            count[l] += if ok { 1.0 } else { 0.0 };
            sum[l] += if ok { x } else { 0.0 };
            mn[l] = if x < mn[l] { x } else { mn[l] };
            mx[l] = if x > mx[l] { x } else { mx[l] };
        }
    }
    for (l, &x) in tail.iter().enumerate() {
        let ok = !x.is_nan();
        count[l] += if ok { 1.0 } else { 0.0 };
        sum[l] += if ok { x } else { 0.0 };
        mn[l] = if x < mn[l] { x } else { mn[l] };
        mx[l] = if x > mx[l] { x } else { mx[l] };
    }
    (
        count.iter().sum(),
        pairwise(&sum),
        mn.iter().copied().fold(f64::INFINITY, f64::min),
        mx.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    )
}

#[inline(always)]
fn pairwise(l: &[f64; LANES]) -> f64 {
    ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

/// Sum of squared deviations from `mean`, corrected for the rounding error of the
/// mean itself (the "corrected two-pass" algorithm: subtract (sum of deviations)^2 / n).
#[inline(always)]
fn second_pass(v: &[f64], mean: f64, count: f64) -> f64 {
    let mut m2 = [0.0f64; LANES];
    let mut dev = [0.0f64; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            let d = c[l] - mean;
            let ok = !d.is_nan();
            m2[l] += if ok { d * d } else { 0.0 };
            dev[l] += if ok { d } else { 0.0 };
        }
    }
    for (l, &x) in tail.iter().enumerate() {
        let d = x - mean;
        let ok = !d.is_nan();
        m2[l] += if ok { d * d } else { 0.0 };
        dev[l] += if ok { d } else { 0.0 };
    }
    let dev = pairwise(&dev);
    (pairwise(&m2) - dev * dev / count).max(0.0)
}

/// Bucket statistics of one series sorted by time. NaN values are skipped; buckets
/// with no numeric value are omitted. Bucket `k` covers
/// `[origin_ms + k*bucket_ms, origin_ms + (k+1)*bucket_ms)`.
pub fn aggregate(ts: &[i64], values: &[f64], bucket_ms: i64, origin_ms: i64) -> Result<Aggregates> {
    check_args(ts, values, bucket_ms)?;
    aggregate_checked(ts, values, bucket_ms, origin_ms)
}

/// [`aggregate`] of many series in one call, spread over every core (rayon); the
/// result is in the order of `series`. The first failing series (by position) is the
/// error, its message prefixed with `series[i]: `.
pub fn aggregate_many(
    series: &[(&[i64], &[f64])],
    bucket_ms: i64,
    origin_ms: i64,
) -> Result<Vec<Aggregates>> {
    use rayon::prelude::*;
    series
        .par_iter()
        .enumerate()
        .map(|(i, (ts, values))| {
            aggregate(ts, values, bucket_ms, origin_ms).map_err(|e| prefixed(e, i))
        })
        .collect()
}

/// `err` with its message prefixed by the series position, same variant.
fn prefixed(err: CoreError, i: usize) -> CoreError {
    let at = |m: String| format!("series[{i}]: {m}");
    match err {
        CoreError::Length(m) => CoreError::Length(at(m)),
        CoreError::Argument(m) => CoreError::Argument(at(m)),
        other => other,
    }
}

/// The kernel of [`aggregate`] on checked arguments, compiled for AVX2 when the CPU has
/// it (the release build targets baseline x86-64). Same arithmetic either way: Rust
/// never fuses a multiply and an add on its own, and the lanes are fixed.
fn aggregate_checked(
    ts: &[i64],
    values: &[f64],
    bucket_ms: i64,
    origin_ms: i64,
) -> Result<Aggregates> {
    #[cfg(target_arch = "x86_64")]
    {
        /// # Safety
        /// Only on a CPU with AVX2.
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(ts: &[i64], values: &[f64], w: i64, o: i64) -> Result<Aggregates> {
            aggregate_impl(ts, values, w, o)
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { avx2(ts, values, bucket_ms, origin_ms) };
        }
    }
    aggregate_impl(ts, values, bucket_ms, origin_ms)
}

#[inline(always)]
fn aggregate_impl(
    ts: &[i64],
    values: &[f64],
    bucket_ms: i64,
    origin_ms: i64,
) -> Result<Aggregates> {
    let n = ts.len();
    let mut out = Aggregates::with_capacity(estimate_buckets(ts, bucket_ms));
    let mut i = 0;
    // Regular cadences give buckets of equal length: try the previous length first.
    let mut guess = 0usize;
    // End of the previous bucket: when the next sample falls in the bucket right after
    // it (the common case), its start needs no 128-bit division.
    let mut prev_end: Option<i64> = None;
    while i < n {
        let t = ts[i];
        let start = match prev_end {
            Some(e) if t >= e && t.checked_sub(e).is_some_and(|d| d < bucket_ms) => e,
            _ => bucket_start(t, bucket_ms, origin_ms).ok_or_else(|| {
                CoreError::Argument(format!("bucket of ts {t} does not fit in int64"))
            })?,
        };
        let end = start.checked_add(bucket_ms);
        let j = match end {
            Some(end) => {
                let g = i + guess;
                if guess > 0 && g < n && ts[g - 1] < end && ts[g] >= end {
                    g
                } else {
                    bucket_end(ts, i, end)
                }
            }
            None => n,
        };
        prev_end = end;
        guess = j - i;
        let v = &values[i..j];
        // Most buckets hold no NaN: their sum is then not NaN (inf - inf aside), and the
        // unmasked passes give bit for bit what the masked ones would.
        let (sum, min, max) = first_pass_dense(v);
        let dense = !sum.is_nan();
        let (count, sum, min, max) = if dense {
            (v.len() as f64, sum, min, max)
        } else {
            first_pass(v)
        };
        if count > 0.0 {
            let mean = sum / count;
            let (m2, first, last) = if dense {
                (second_pass_dense(v, mean, count), v[0], v[v.len() - 1])
            } else {
                let first = v.iter().copied().find(|x| !x.is_nan()).unwrap_or(f64::NAN);
                let last = v
                    .iter()
                    .rev()
                    .copied()
                    .find(|x| !x.is_nan())
                    .unwrap_or(f64::NAN);
                (second_pass(v, mean, count), first, last)
            };
            out.push(State {
                ts: start,
                count: count as i64,
                sum,
                min,
                max,
                m2,
                first,
                last,
            });
        }
        i = j;
    }
    Ok(out)
}

fn estimate_buckets(ts: &[i64], bucket_ms: i64) -> usize {
    match (ts.first(), ts.last()) {
        (Some(&a), Some(&b)) => {
            let span = (i128::from(b) - i128::from(a)) / i128::from(bucket_ms) + 1;
            span.min(ts.len() as i128) as usize
        }
        _ => 0,
    }
}

/// Roll fine buckets up into coarser ones (e.g. 1min -> 5min -> 1hr). The coarse
/// width must be a multiple of the fine one for the result to equal a direct
/// computation; that is the caller's grid choice, not checked here.
pub fn rollup(a: &Aggregates, bucket_ms: i64, origin_ms: i64) -> Result<Aggregates> {
    a.validate("aggregates")?;
    if bucket_ms <= 0 {
        return Err(CoreError::Argument(format!(
            "bucket_ms must be positive, got {bucket_ms}"
        )));
    }
    let mut out = Aggregates::with_capacity(a.len());
    let mut acc: Option<State> = None;
    for i in 0..a.len() {
        let start = bucket_start(a.ts[i], bucket_ms, origin_ms).ok_or_else(|| {
            CoreError::Argument(format!("bucket of ts {} does not fit in int64", a.ts[i]))
        })?;
        let mut s = a.state(i);
        s.ts = start;
        acc = Some(match acc {
            Some(prev) if prev.ts == start => prev.combine(s),
            Some(prev) => {
                out.push(prev);
                s
            }
            None => s,
        });
    }
    if let Some(prev) = acc {
        out.push(prev);
    }
    Ok(out)
}

/// Check that bucket edges are strictly increasing (the boundaries of consecutive
/// buckets `[edges[k], edges[k + 1])`).
pub fn check_edges(edges: &[i64]) -> Result<()> {
    if let Some(k) = edges.windows(2).position(|w| w[0] >= w[1]) {
        return Err(CoreError::Argument(format!(
            "edges must be strictly increasing (edges[{}] = {} >= edges[{}] = {})",
            k,
            edges[k],
            k + 1,
            edges[k + 1]
        )));
    }
    Ok(())
}

/// Merge fine buckets into the segments `[edges[k], edges[k + 1])` of any widths (local
/// days of 23, 24 or 25 hours, calendar weeks and months); each output bucket's `ts` is
/// its segment's start, and a segment without a fine bucket is omitted. Fine buckets
/// outside `[edges[0], edges[last])` are ignored.
///
/// Exact when no fine bucket straddles an edge (every edge on the fine grid): that is
/// the caller's choice of level (15min for zones with 30- or 45-minute offsets).
pub fn rollup_edges(a: &Aggregates, edges: &[i64]) -> Result<Aggregates> {
    a.validate("aggregates")?;
    check_edges(edges)?;
    let mut out = Aggregates::with_capacity(edges.len().saturating_sub(1).min(a.len()));
    if edges.len() < 2 {
        return Ok(out);
    }
    let last_edge = edges[edges.len() - 1];
    let mut i = a.ts.partition_point(|&t| t < edges[0]);
    let mut k = 0usize;
    while i < a.len() && a.ts[i] < last_edge {
        // The segment holding bucket i, searched from the previous one (buckets and
        // edges both ascend).
        let t = a.ts[i];
        if t >= edges[k + 1] {
            k += edges[k + 1..].partition_point(|&e| e <= t);
        }
        let end = edges[k + 1];
        let mut acc = a.state(i);
        acc.ts = edges[k];
        i += 1;
        while i < a.len() && a.ts[i] < end {
            acc = acc.combine(a.state(i));
            i += 1;
        }
        out.push(acc);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_std(v: &[f64]) -> f64 {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt()
    }

    #[test]
    fn buckets_skip_nan_and_omit_empty() {
        let ts = [0, 10, 20, 60, 70, 130, 250];
        let v = [1.0, f64::NAN, 3.0, 5.0, 7.0, f64::NAN, 2.0];
        let a = aggregate(&ts, &v, 60, 0).unwrap();
        assert_eq!(a.ts, vec![0, 60, 240]);
        assert_eq!(a.count, vec![2, 2, 1]);
        assert_eq!(a.sum, vec![4.0, 12.0, 2.0]);
        assert_eq!(a.min, vec![1.0, 5.0, 2.0]);
        assert_eq!(a.max, vec![3.0, 7.0, 2.0]);
        assert_eq!(a.avg, vec![2.0, 6.0, 2.0]);
        assert_eq!(a.first, vec![1.0, 5.0, 2.0]);
        assert_eq!(a.last, vec![3.0, 7.0, 2.0]);
        assert!((a.stddev[0] - 2f64.sqrt()).abs() < 1e-15);
        assert!(a.stddev[2].is_nan());
    }

    #[test]
    fn negative_times_and_origin() {
        let a = aggregate(&[-61, -60, -1, 0], &[1.0, 2.0, 3.0, 4.0], 60, 0).unwrap();
        assert_eq!(a.ts, vec![-120, -60, 0]);
        assert_eq!(a.count, vec![1, 2, 1]);
        let b = aggregate(&[0, 5, 10], &[1.0, 2.0, 3.0], 10, 5).unwrap();
        assert_eq!(b.ts, vec![-5, 5]);
        let huge = 4_000_000_000_000_000_000;
        let c = aggregate(&[-huge, huge], &[1.0, 2.0], huge, 0).unwrap();
        assert_eq!(c.ts, vec![-huge, huge]);
        let err = aggregate(&[i64::MIN], &[1.0], i64::MAX, 0).unwrap_err();
        assert!(err.to_string().contains("does not fit"));
    }

    #[test]
    fn stable_for_large_offset() {
        let v: Vec<f64> = (0..1000)
            .map(|i| 1e9 + ((i * 7919) % 13) as f64 * 0.001)
            .collect();
        let ts: Vec<i64> = (0..1000).collect();
        let a = aggregate(&ts, &v, 10_000, 0).unwrap();
        // Shifting by 1e9 is exact (Sterbenz), so the naive formula on the shifted
        // values is an accurate reference.
        let shifted: Vec<f64> = v.iter().map(|x| x - 1e9).collect();
        let want = naive_std(&shifted);
        assert!(
            ((a.stddev[0] - want) / want).abs() < 1e-9,
            "{} vs {}",
            a.stddev[0],
            want
        );
    }

    #[test]
    fn rollup_matches_direct() {
        let ts: Vec<i64> = (0..10_000).map(|i| i * 7).collect();
        let v: Vec<f64> = (0..10_000)
            .map(|i| ((i * 37) % 101) as f64 - 50.0)
            .collect();
        let direct = aggregate(&ts, &v, 3000, 0).unwrap();
        let fine = aggregate(&ts, &v, 600, 0).unwrap();
        let rolled = rollup(&fine, 3000, 0).unwrap();
        assert_eq!(rolled.ts, direct.ts);
        assert_eq!(rolled.count, direct.count);
        assert_eq!(rolled.min, direct.min);
        assert_eq!(rolled.first, direct.first);
        assert_eq!(rolled.last, direct.last);
        for k in 0..direct.len() {
            assert!((rolled.m2[k] - direct.m2[k]).abs() <= 1e-9 * direct.m2[k].abs().max(1.0));
            assert!((rolled.sum[k] - direct.sum[k]).abs() <= 1e-9);
        }
    }

    #[test]
    fn dense_and_masked_passes_agree_bit_for_bit() {
        // Buckets with and without NaN, with inf - inf, and the dense shortcut: every
        // column must equal the masked computation.
        let ts: Vec<i64> = (0..5000).collect();
        let mut v: Vec<f64> = (0..5000)
            .map(|i| ((i * 7919) % 1009) as f64 * 0.37 - 90.0)
            .collect();
        for i in (0..5000).step_by(733) {
            v[i] = f64::NAN;
        }
        v[2001] = f64::INFINITY;
        v[2002] = f64::NEG_INFINITY;
        let a = aggregate(&ts, &v, 97, 0).unwrap();
        let mut k = 0;
        for (i, &start) in a.ts.iter().enumerate() {
            let lo = ts.partition_point(|&t| t < start);
            let hi = ts.partition_point(|&t| t < start + 97);
            let (count, sum, min, max) = first_pass(&v[lo..hi]);
            assert_eq!(a.count[i], count as i64);
            assert_eq!(a.sum[i].to_bits(), sum.to_bits(), "bucket {i}");
            assert_eq!((a.min[i], a.max[i]), (min, max));
            let m2 = second_pass(&v[lo..hi], sum / count, count);
            assert!(a.m2[i].to_bits() == m2.to_bits() || (a.m2[i].is_nan() && m2.is_nan()));
            k += 1;
        }
        assert_eq!(k, a.len());
    }

    #[test]
    fn many_series_in_one_call() {
        let ts: Vec<i64> = (0..1000).map(|i| i * 7).collect();
        let v1: Vec<f64> = (0..1000).map(|i| (i % 13) as f64).collect();
        let v2: Vec<f64> = (0..1000).map(|i| (i % 17) as f64).collect();
        let got = aggregate_many(&[(&ts, &v1), (&ts[..10], &v2[..10]), (&ts, &v2)], 60, 0).unwrap();
        // Debug text compares NaN as equal, unlike `==`.
        let same = |a: &Aggregates, b: Aggregates| assert_eq!(format!("{a:?}"), format!("{b:?}"));
        same(&got[0], aggregate(&ts, &v1, 60, 0).unwrap());
        same(&got[1], aggregate(&ts[..10], &v2[..10], 60, 0).unwrap());
        same(&got[2], aggregate(&ts, &v2, 60, 0).unwrap());
        let err = aggregate_many(&[(&ts, &v1), (&ts, &v1[..3])], 60, 0).unwrap_err();
        assert!(matches!(err, CoreError::Length(_)));
        assert!(err.to_string().contains("series[1]: "), "{err}");
        assert!(aggregate_many(&[], 60, 0).unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(aggregate(&[1, 0], &[1.0, 2.0], 10, 0).is_err());
        assert!(aggregate(&[0], &[1.0, 2.0], 10, 0).is_err());
        assert!(aggregate(&[0], &[1.0], 0, 0).is_err());
        let empty = aggregate(&[], &[], 10, 0).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn rollup_edges_matches_direct_on_uneven_segments() {
        let ts: Vec<i64> = (0..5000).map(|i| i * 13).collect();
        let v: Vec<f64> = (0..5000).map(|i| ((i * 31) % 97) as f64 - 40.0).collect();
        let fine = aggregate(&ts, &v, 100, 0).unwrap();
        let edges = [-300, 2300, 2400, 9900, 40_000, 65_000];
        let got = rollup_edges(&fine, &edges).unwrap();
        let mut want_ts = vec![];
        for w in edges.windows(2) {
            let lo = ts.partition_point(|&t| t < w[0]);
            let hi = ts.partition_point(|&t| t < w[1]);
            if lo == hi {
                continue;
            }
            want_ts.push(w[0]);
            let k = want_ts.len() - 1;
            let seg = &v[lo..hi];
            assert_eq!(got.count[k], seg.len() as i64);
            assert_eq!(got.first[k], seg[0]);
            assert_eq!(got.last[k], seg[seg.len() - 1]);
            assert_eq!(
                got.min[k],
                seg.iter().copied().fold(f64::INFINITY, f64::min)
            );
            let sum: f64 = seg.iter().sum();
            assert!((got.sum[k] - sum).abs() < 1e-9);
        }
        assert_eq!(got.ts, want_ts);
        assert!(rollup_edges(&fine, &[5, 5]).is_err());
        assert!(rollup_edges(&fine, &[5]).unwrap().is_empty());
        assert!(rollup_edges(&fine, &[100_000, 200_000]).unwrap().is_empty());
    }
}
