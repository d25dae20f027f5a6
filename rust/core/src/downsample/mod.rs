//! Chart downsampling: choose which samples of a series are worth drawing.
//!
//! Every method returns the sorted, unique indices of the samples to keep, never more
//! than `n_out` of them, and always the first and the last sample. A series that already
//! fits (`len <= n_out`) is returned whole: `0..len`, NaN samples included.
//!
//! Two methods:
//!
//! - [`Method::M4`]: `n_out / 4` equal-width time bins; per bin the first, minimum,
//!   maximum and last sample (fewer when they coincide or the bin holds fewer samples).
//!   Pixel-exact for line charts that are `n_out / 4` pixels wide.
//! - [`Method::MinMaxLttb`]: when `len / n_out > 4`, a min/max preselection over
//!   `2 * n_out` equal-width time bins of the interior samples, then
//!   Largest-Triangle-Three-Buckets over the preselected points (plus first and last);
//!   otherwise LTTB over the whole series. Keeps the visual shape at `n_out` points.
//!
//! # Compatibility with tsdownsample
//!
//! On inputs without ties (distinct values, no NaN) the result equals
//! `np.unique(tsdownsample.{MinMaxLTTB,M4}Downsampler().downsample(ts, values, n_out=..))`
//! (single-threaded; its parallel mode rounds bin edges differently). Bin edges are
//! computed as tsdownsample 0.1.5 computes them (`ts[0] + width * (i + 1)` in `f64`, in
//! the same operation order, truncated toward zero; a sample equal to an edge closes its
//! bin) and LTTB evaluates the same triangle-area expression in the same order, so
//! near-ties round the same way. Two deliberate differences:
//!
//! - tsdownsample's M4 repeats an index when a bin's minimum or maximum is also its
//!   first or last sample; we return each index once.
//! - When the last M4 edge rounds below `ts[-1]`, tsdownsample drops the samples past
//!   it, the last one included; our last M4 bin always reaches the end of the series.
//!
//! # NaN semantics
//!
//! A NaN value is a missing value: it is never selected, except as the forced first or
//! last sample (and in the `len <= n_out` identity case).
//!
//! - M4: per bin the first and last *non-NaN* samples and the min/max over non-NaN
//!   values; a bin holding only NaN contributes nothing (except a forced endpoint).
//! - MinMaxLTTB: the min/max preselection ignores NaN the same way. LTTB skips NaN
//!   candidates (a bucket of only NaN contributes nothing) and averages the next bucket
//!   over its non-NaN values. When the previous anchor (a NaN first sample) or the next
//!   bucket's average is undefined, the defined one stands in for both (the triangle
//!   degenerates to "farthest from that level"); when both are undefined, the mean of
//!   the current bucket's values does.
//!
//! Infinite values are ordinary values for min/max; an LTTB area that evaluates to NaN
//! (e.g. `inf - inf`) never wins.

use std::fmt;
use std::str::FromStr;

use crate::error::{CoreError, Result};

/// Bins of the MinMaxLTTB preselection per output point (tsdownsample's `minmax_ratio`).
pub const MINMAX_RATIO: usize = 4;

/// tsdownsample's nudge of every bin edge, kept so the edges round the same way.
const EDGE_EPSILON: f64 = 1e-12;

/// A downsampling method, parsed from its Python name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Min/max preselection followed by Largest-Triangle-Three-Buckets.
    MinMaxLttb,
    /// First, min, max and last sample of each equal-width time bin.
    M4,
}

impl Method {
    /// Every method, in the order error messages list them.
    pub const ALL: [Method; 2] = [Method::MinMaxLttb, Method::M4];

    /// The name the Python API uses.
    pub fn name(self) -> &'static str {
        match self {
            Method::MinMaxLttb => "minmaxlttb",
            Method::M4 => "m4",
        }
    }

    /// Check that `n_out` is a valid output size for this method.
    pub fn check_n_out(self, n_out: usize) -> Result<()> {
        let (valid, requirement) = match self {
            Method::MinMaxLttb => (n_out >= 3, "at least 3"),
            // Whole bins of four, at least one.
            Method::M4 => (
                matches!((n_out, n_out % 4), (4.., 0)),
                "a positive multiple of 4",
            ),
        };
        if valid {
            Ok(())
        } else {
            Err(CoreError::Argument(format!(
                "n_out must be {requirement} for {self}, got {n_out}"
            )))
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let allowed: Vec<String> = Method::ALL
                    .iter()
                    .map(|m| format!("'{}'", m.name()))
                    .collect();
                CoreError::Argument(format!(
                    "unknown downsampling method '{s}', expected one of {}",
                    allowed.join(", ")
                ))
            })
    }
}

/// Indices of the samples to keep, by `method`. See the module documentation.
pub fn downsample(ts: &[i64], values: &[f64], n_out: usize, method: Method) -> Result<Vec<usize>> {
    match method {
        Method::MinMaxLttb => minmax_lttb(ts, values, n_out),
        Method::M4 => m4(ts, values, n_out),
    }
}

/// M4 over `n_out / 4` equal-width time bins; `n_out` must be a positive multiple of 4.
pub fn m4(ts: &[i64], values: &[f64], n_out: usize) -> Result<Vec<usize>> {
    Method::M4.check_n_out(n_out)?;
    check_series(ts, values)?;
    if ts.len() <= n_out {
        return Ok((0..ts.len()).collect());
    }
    Ok(m4_kernel(ts, values, n_out))
}

/// MinMaxLTTB with a min/max ratio of 4; `n_out` must be at least 3.
pub fn minmax_lttb(ts: &[i64], values: &[f64], n_out: usize) -> Result<Vec<usize>> {
    Method::MinMaxLttb.check_n_out(n_out)?;
    check_series(ts, values)?;
    if ts.len() <= n_out {
        return Ok((0..ts.len()).collect());
    }
    Ok(minmax_lttb_kernel(ts, values, n_out))
}

/// Run `$imp` compiled for AVX2 when the CPU has it (the release build targets baseline
/// x86-64), else as is. Same arithmetic either way: Rust never fuses a multiply and an
/// add on its own, so results do not depend on the path taken.
macro_rules! dispatch {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $imp:ident;)*) => {$(
        fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                /// # Safety
                /// Only on a CPU with AVX2.
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) -> $ret {
                    $imp($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $imp($($arg),*)
        }
    )*};
}

dispatch! {
    fn m4_kernel(ts: &[i64], values: &[f64], n_out: usize) -> Vec<usize> = m4_impl;
    fn minmax_lttb_kernel(ts: &[i64], values: &[f64], n_out: usize) -> Vec<usize> = minmax_lttb_impl;
    fn first_descent(ts: &[i64]) -> Option<usize> = first_descent_impl;
}

#[inline(always)]
fn m4_impl(ts: &[i64], values: &[f64], n_out: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(n_out);
    for (start, end) in Bins::new(ts, n_out / 4, true) {
        m4_bin(values, start, end, &mut out);
    }
    out
}

#[inline(always)]
fn minmax_lttb_impl(ts: &[i64], values: &[f64], n_out: usize) -> Vec<usize> {
    let n = ts.len();
    if n / n_out <= MINMAX_RATIO {
        return lttb(ts, values, n_out);
    }
    // Preselect the min and max of each bin of the interior samples; the endpoints
    // are kept regardless and must not steal a bin from their neighbours.
    let inner_ts = &ts[1..n - 1];
    let inner_values = &values[1..n - 1];
    let n_bins = n_out * MINMAX_RATIO / 2;
    let mut keep = Vec::with_capacity(2 * n_bins + 2);
    keep.push(0);
    for (start, end) in Bins::new(inner_ts, n_bins, false) {
        minmax_bin(inner_values, start, end, 1, &mut keep);
    }
    keep.push(n - 1);
    let kept_ts: Vec<i64> = keep.iter().map(|&i| ts[i]).collect();
    let kept_values: Vec<f64> = keep.iter().map(|&i| values[i]).collect();
    let mut chosen = lttb(&kept_ts, &kept_values, n_out);
    for i in &mut chosen {
        *i = keep[*i];
    }
    chosen
}

/// Equal lengths and ascending (non-strictly) timestamps.
fn check_series(ts: &[i64], values: &[f64]) -> Result<()> {
    if ts.len() != values.len() {
        return Err(CoreError::Length(format!(
            "ts ({}) and values ({}) must have the same length",
            ts.len(),
            values.len()
        )));
    }
    if let Some(i) = first_descent(ts) {
        return Err(CoreError::Argument(format!(
            "ts must be sorted ascending, but ts[{}] = {} > ts[{}] = {}",
            i,
            ts[i],
            i + 1,
            ts[i + 1]
        )));
    }
    Ok(())
}

/// Index `i` of the first `ts[i] > ts[i + 1]`, if any.
#[inline(always)]
fn first_descent_impl(ts: &[i64]) -> Option<usize> {
    const CHUNK: usize = 1024;
    let n = ts.len();
    let mut start = 0;
    while start + 1 < n {
        let end = (start + CHUNK).min(n - 1);
        // Branch-free over the chunk so it vectorises; locate the culprit only on failure.
        let descends = ts[start..end]
            .iter()
            .zip(&ts[start + 1..end + 1])
            .fold(false, |acc, (a, b)| acc | (a > b));
        if descends {
            return (start..end).find(|&i| ts[i] > ts[i + 1]);
        }
        start = end;
    }
    None
}

/// The non-empty equal-width time bins of a sorted `ts`, as `start..end` index ranges.
///
/// Bin `i` ends at the edge `ts[0] + width * (i + 1)`, computed in `f64` and truncated
/// toward zero, exactly as tsdownsample (0.1.5) computes it; the bin takes the samples
/// before the edge plus the first sample equal to it. With `close_last` the last bin
/// also takes whatever samples the rounding of the last edge would leave out.
struct Bins<'a> {
    ts: &'a [i64],
    t0: f64,
    width: f64,
    n_bins: usize,
    close_last: bool,
    /// Index of the next bin.
    bin: usize,
    /// First sample not yet in a bin.
    start: usize,
    /// Samples per unit of time, on average: guides the search for each bin end.
    density: f64,
}

impl<'a> Bins<'a> {
    #[inline(always)]
    fn new(ts: &'a [i64], n_bins: usize, close_last: bool) -> Self {
        let (first, last) = match (ts.first(), ts.last()) {
            (Some(&f), Some(&l)) => (f as f64, l as f64),
            _ => (0.0, 0.0),
        };
        let nb = n_bins as f64;
        Bins {
            ts,
            t0: first,
            // Divide before subtracting, as tsdownsample does (and so it cannot overflow).
            width: last / nb - first / nb,
            n_bins,
            close_last,
            bin: 0,
            start: 0,
            density: ts.len().saturating_sub(1) as f64 / (last - first),
        }
    }

    /// The `k`-th bin edge, `ts[0] + k * width`, evaluated as tsdownsample evaluates
    /// it (two half steps, then a 1e-12 nudge) and truncated toward zero.
    #[inline(always)]
    fn edge(&self, k: usize) -> i64 {
        let half = k as f64 / 2.0;
        (self.t0 + self.width * half + self.width * half + EDGE_EPSILON) as i64
    }

    /// Where in `start + 1..n` the first sample at or after `edge` should be, assuming
    /// the average sampling density from `ts[start]` on.
    #[inline(always)]
    fn guess(&self, start: usize, edge: i64) -> usize {
        // Not finite when the series is flat: the saturating cast copes.
        let ahead = (edge as f64 - self.ts[start] as f64) * self.density;
        start
            .saturating_add(ahead as usize)
            .clamp(start + 1, self.ts.len() - 1)
    }

    /// Index one past the bin ending at `edge` (which is > `ts[self.start]`): the first
    /// sample at or after the edge, plus one if it equals the edge.
    ///
    /// The guess comes from linear interpolation (exact for regular sampling); galloping
    /// outwards from it brackets the answer in a few probes near the bin end, which the
    /// next bin reads anyway, instead of a cache-missing bisection of the whole series.
    #[inline(always)]
    fn end_of(&self, edge: i64) -> usize {
        let ts = self.ts;
        let n = ts.len();
        let first = self.start + 1;
        if first >= n {
            return n;
        }
        let guess = self.guess(self.start, edge);
        // Bracket: ts[lo - 1] < edge, and ts[hi] >= edge unless hi == n.
        let (mut lo, mut hi);
        if ts[guess] < edge {
            lo = guess + 1;
            hi = lo;
            let mut step = 1usize;
            while hi < n && ts[hi] < edge {
                lo = hi + 1;
                hi = lo.saturating_add(step);
                step = step.saturating_mul(2);
            }
            hi = hi.min(n);
        } else {
            hi = guess;
            lo = first;
            let mut step = 1usize;
            while hi - first > step {
                let probe = hi - step;
                if ts[probe] < edge {
                    lo = probe + 1;
                    break;
                }
                hi = probe;
                step = step.saturating_mul(2);
            }
        }
        let lb = lo + ts[lo..hi].partition_point(|&t| t < edge);
        if lb < n && ts[lb] == edge {
            lb + 1
        } else {
            lb
        }
    }
}

impl Iterator for Bins<'_> {
    type Item = (usize, usize);

    #[inline(always)]
    fn next(&mut self) -> Option<(usize, usize)> {
        let n = self.ts.len();
        while self.bin < self.n_bins && self.start < n {
            let i = self.bin;
            self.bin += 1;
            let start = self.start;
            let end = if self.close_last && i + 1 == self.n_bins {
                n
            } else {
                let edge = self.edge(i + 1);
                if self.ts[start] >= edge {
                    continue;
                }
                self.end_of(edge)
            };
            self.start = end;
            if self.bin < self.n_bins && end + 1 < n {
                // The caller now scans this bin's values; meanwhile fetch the memory the
                // next search starts from, which is otherwise a cache miss per bin.
                prefetch(&self.ts[self.guess(end, self.edge(self.bin + 1))]);
            }
            return Some((start, end));
        }
        None
    }
}

/// Hint the CPU to start loading the cache line holding `x`.
#[inline(always)]
fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint with no observable effect; the pointer is valid.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((x as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// Append `i` unless it is already the last index appended.
#[inline(always)]
fn push_once(out: &mut Vec<usize>, i: usize) {
    if out.last() != Some(&i) {
        out.push(i);
    }
}

/// Lanes of the vectorised scan (two AVX2 registers of `f64`).
const LANES: usize = 8;

/// Indices (relative to `v`) of the first minimum and first maximum, ignoring NaN;
/// `None` when every value is NaN.
///
/// One vectorisable pass: each lane keeps its extremes and the chunk where it saw them
/// (`x < m ? x : m` keeps `m` when `x` is NaN); the lanes are then merged, ties going to
/// the lowest index.
#[inline(always)]
fn argminmax(v: &[f64]) -> Option<(usize, usize)> {
    let mut lo = [f64::INFINITY; LANES];
    let mut hi = [f64::NEG_INFINITY; LANES];
    let mut lo_at = [0u64; LANES];
    let mut hi_at = [0u64; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail_at = v.len() - chunks.remainder().len();
    for (k, c) in chunks.enumerate() {
        let k = k as u64;
        for j in 0..LANES {
            let x = c[j];
            let below = x < lo[j];
            lo[j] = if below { x } else { lo[j] };
            lo_at[j] = if below { k } else { lo_at[j] };
            let above = x > hi[j];
            hi[j] = if above { x } else { hi[j] };
            hi_at[j] = if above { k } else { hi_at[j] };
        }
    }
    // Merge the lanes. A lane still at its sentinel never moved; it can only tie with the
    // result when the extreme is itself infinite, which the fallback below handles.
    // Branch-free: the extreme first, then the lowest index holding it.
    let mut min = lo
        .iter()
        .fold(f64::INFINITY, |m, &x| if x < m { x } else { m });
    let mut max = hi
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    let mut imin = (0..LANES)
        .map(|j| {
            if lo[j] == min {
                lo_at[j] as usize * LANES + j
            } else {
                usize::MAX
            }
        })
        .fold(usize::MAX, usize::min);
    let mut imax = (0..LANES)
        .map(|j| {
            if hi[j] == max {
                hi_at[j] as usize * LANES + j
            } else {
                usize::MAX
            }
        })
        .fold(usize::MAX, usize::min);
    for (i, &x) in v.iter().enumerate().skip(tail_at) {
        if x < min {
            (min, imin) = (x, i);
        }
        if x > max {
            (max, imax) = (x, i);
        }
    }
    // An infinite extreme may equal the sentinel and be attributed to an idle lane:
    // look it up directly. Finding nothing means every value is NaN.
    if min == f64::INFINITY {
        imin = v.iter().position(|&x| x == min)?;
    }
    if max == f64::NEG_INFINITY {
        imax = v.iter().position(|&x| x == max)?;
    }
    Some((imin, imax))
}

/// M4 picks of the bin `start..end` of the whole series, appended in order.
#[inline(always)]
fn m4_bin(values: &[f64], start: usize, end: usize, out: &mut Vec<usize>) {
    let n = values.len();
    let keep = |i: usize| i == 0 || i == n - 1 || !values[i].is_nan();
    if end - start <= 4 {
        for i in (start..end).filter(|&i| keep(i)) {
            push_once(out, i);
        }
        return;
    }
    let bin = &values[start..end];
    let Some((lo, hi)) = argminmax(bin) else {
        // Only NaN: nothing but a forced endpoint.
        for i in [start, end - 1].into_iter().filter(|&i| keep(i)) {
            push_once(out, i);
        }
        return;
    };
    // Some value is not NaN, so both searches succeed; endpoints are forced.
    let first = if start == 0 {
        0
    } else {
        start + bin.iter().position(|x| !x.is_nan()).unwrap_or(0)
    };
    let last = if end == n {
        n - 1
    } else {
        start
            + bin
                .iter()
                .rposition(|x| !x.is_nan())
                .unwrap_or(bin.len() - 1)
    };
    push_once(out, first);
    push_once(out, start + lo.min(hi));
    push_once(out, start + lo.max(hi));
    push_once(out, last);
}

/// Min/max picks of the bin `start..end` of `values`, appended as `offset + index`.
#[inline(always)]
fn minmax_bin(values: &[f64], start: usize, end: usize, offset: usize, out: &mut Vec<usize>) {
    if end - start <= 2 {
        for (i, x) in values[start..end].iter().enumerate() {
            if !x.is_nan() {
                out.push(offset + start + i);
            }
        }
        return;
    }
    if let Some((lo, hi)) = argminmax(&values[start..end]) {
        push_once(out, offset + start + lo.min(hi));
        push_once(out, offset + start + lo.max(hi));
    }
}

/// Mean of the non-NaN values of `v`; NaN when there are none.
#[inline(always)]
fn nan_mean(v: &[f64]) -> f64 {
    let (mut sum, mut count) = (0.0, 0usize);
    for &x in v {
        if !x.is_nan() {
            sum += x;
            count += 1;
        }
    }
    sum / count as f64
}

/// Largest-Triangle-Three-Buckets over `(x, y)`, `3 <= n_out < x.len()` (else all).
///
/// Bucket bounds, the next-bucket average point (mean of `y`, midpoint of the bucket's
/// first and last `x`) and the area expression follow tsdownsample's `lttb_with_x`
/// operation for operation; ties go to the earliest sample.
#[inline(always)]
fn lttb(x: &[i64], y: &[f64], n_out: usize) -> Vec<usize> {
    let m = x.len();
    if n_out >= m {
        return (0..m).collect();
    }
    debug_assert!(n_out >= 3);
    let every = (m - 2) as f64 / (n_out - 2) as f64;
    let mut out = Vec::with_capacity(n_out);
    out.push(0);
    let mut a = 0usize;
    for i in 0..n_out - 2 {
        let next_start = (every * (i + 1) as f64) as usize + 1;
        let next_end = ((every * (i + 2) as f64) as usize + 1).min(m);
        let lo = (every * i as f64) as usize + 1;
        let hi = next_start;
        if lo >= hi || next_start >= next_end {
            continue;
        }
        let mut avg_y = nan_mean(&y[next_start..next_end]);
        let avg_x = (x[next_end - 1] as f64 + x[next_start] as f64) / 2.0;
        let ax = x[a] as f64;
        let mut ay = y[a];
        match (ay.is_nan(), avg_y.is_nan()) {
            (false, false) => {}
            (true, false) => ay = avg_y,
            (false, true) => avg_y = ay,
            (true, true) => {
                let level = nan_mean(&y[lo..hi]);
                ay = level;
                avg_y = level;
            }
        }
        let d1 = ax - avg_x;
        let d2 = avg_y - ay;
        let offset = d1 * ay + d2 * ax;
        let mut best_area = -1.0f64;
        let mut best = usize::MAX;
        for (j, (&yj, &xj)) in y[lo..hi].iter().zip(&x[lo..hi]).enumerate() {
            // NaN (a NaN value, or inf - inf) compares false: never selected.
            let area = (d1 * yj + d2 * xj as f64 - offset).abs();
            if area > best_area {
                best_area = area;
                best = j;
            }
        }
        if best != usize::MAX {
            a = lo + best;
            out.push(a);
        }
    }
    out.push(m - 1);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAN: f64 = f64::NAN;

    fn both(ts: &[i64], values: &[f64], n_out: usize) -> [Vec<usize>; 2] {
        let n_m4 = n_out.next_multiple_of(4);
        [
            minmax_lttb(ts, values, n_out).unwrap(),
            m4(ts, values, n_m4).unwrap(),
        ]
    }

    /// A deterministic pseudo-random walk without ties.
    fn walk(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut v = 0.0;
        (0..n)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                v += ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
                v + i as f64 * 1e-9
            })
            .collect()
    }

    fn assert_valid(idx: &[usize], n: usize, n_out: usize) {
        assert!(
            idx.len() <= n_out.max(n.min(n_out)),
            "{} > {n_out}",
            idx.len()
        );
        assert!(
            idx.windows(2).all(|w| w[0] < w[1]),
            "not strictly sorted: {idx:?}"
        );
        assert!(idx.iter().all(|&i| i < n));
        if n > 0 {
            assert_eq!(idx[0], 0);
            assert_eq!(*idx.last().unwrap(), n - 1);
        }
    }

    #[test]
    fn method_parses_and_names() {
        assert_eq!("minmaxlttb".parse::<Method>().unwrap(), Method::MinMaxLttb);
        assert_eq!("m4".parse::<Method>().unwrap(), Method::M4);
        let err = "lttb".parse::<Method>().unwrap_err().to_string();
        assert!(
            err.contains("'lttb'") && err.contains("'minmaxlttb', 'm4'"),
            "{err}"
        );
        assert_eq!(Method::M4.to_string(), "m4");
    }

    #[test]
    fn empty_input_is_empty() {
        for idx in both(&[], &[], 8) {
            assert!(idx.is_empty());
        }
    }

    #[test]
    fn one_sample() {
        for idx in both(&[-5], &[1.0], 8) {
            assert_eq!(idx, vec![0]);
        }
        for idx in both(&[7], &[NAN], 8) {
            assert_eq!(idx, vec![0]);
        }
    }

    #[test]
    fn short_series_returned_whole() {
        let ts: Vec<i64> = (0..8).collect();
        let values = [1.0, NAN, 3.0, 0.0, 2.0, NAN, 5.0, 4.0];
        for idx in both(&ts, &values, 8) {
            assert_eq!(idx, (0..8).collect::<Vec<_>>());
        }
        assert_eq!(minmax_lttb(&ts, &values, 100).unwrap().len(), 8);
    }

    #[test]
    fn validation() {
        let ts = [0, 1, 2];
        let err = m4(&ts, &[0.0, 1.0], 4).unwrap_err();
        assert!(matches!(err, CoreError::Length(_)));
        let err = minmax_lttb(&[0, 2, 1], &[0.0; 3], 3).unwrap_err();
        assert!(err.to_string().contains("sorted"), "{err}");
        assert!(err.to_string().contains("ts[1] = 2 > ts[2] = 1"), "{err}");
        for bad in [0, 2, 5, 6] {
            assert!(m4(&ts, &[0.0; 3], bad)
                .unwrap_err()
                .to_string()
                .contains("n_out"));
        }
        for bad in [0, 1, 2] {
            let err = minmax_lttb(&ts, &[0.0; 3], bad).unwrap_err().to_string();
            assert!(err.contains("n_out"), "{err}");
        }
        // n_out is checked even when there is nothing to downsample.
        assert!(m4(&[], &[], 3).is_err());
        // Equal timestamps are sorted.
        assert!(m4(&[1, 1, 1], &[0.0; 3], 4).is_ok());
    }

    #[test]
    fn all_nan_keeps_only_endpoints() {
        let ts: Vec<i64> = (0..1000).collect();
        let values = vec![NAN; 1000];
        for idx in both(&ts, &values, 20) {
            assert_eq!(idx, vec![0, 999]);
        }
        // Below the preselection ratio too (plain LTTB).
        assert_eq!(
            minmax_lttb(&ts[..50], &values[..50], 20).unwrap(),
            vec![0, 49]
        );
    }

    #[test]
    fn nan_never_selected_except_endpoints() {
        let n = 5000;
        let ts: Vec<i64> = (0..n as i64).map(|i| i * 1000).collect();
        let mut values = walk(n, 1);
        for (i, v) in values.iter_mut().enumerate() {
            // Scattered NaNs, a fully-NaN stretch and NaN endpoints.
            if i % 7 == 3 || (2000..2600).contains(&i) || i == 0 || i == n - 1 {
                *v = NAN;
            }
        }
        for n_out in [3, 4, 20, 100, 1000, 2000] {
            for idx in both(&ts, &values, n_out) {
                assert_valid(&idx, n, n_out.next_multiple_of(4));
                for &i in &idx[1..idx.len() - 1] {
                    assert!(!values[i].is_nan(), "n_out {n_out}: NaN at {i} selected");
                }
            }
        }
    }

    #[test]
    fn nan_in_bins_does_not_poison() {
        // One NaN per bin: the extremes must still be found.
        let ts: Vec<i64> = (0..400).collect();
        let mut values: Vec<f64> = (0..400).map(|i| ((i * 37) % 101) as f64).collect();
        values[150] = 1000.0;
        values[250] = -1000.0;
        for i in (1..400).step_by(10) {
            values[i] = NAN;
        }
        let idx = m4(&ts, &values, 8).unwrap();
        assert!(idx.contains(&150) && idx.contains(&250), "{idx:?}");
        let idx = minmax_lttb(&ts, &values, 10).unwrap();
        assert!(idx.contains(&150) && idx.contains(&250), "{idx:?}");
    }

    #[test]
    fn m4_picks_first_min_max_last_per_bin() {
        let ts: Vec<i64> = (0..100).collect();
        let values: Vec<f64> = (0..100).map(|i| ((i * 7919) % 100) as f64).collect();
        let idx = m4(&ts, &values, 8).unwrap();
        // Bins [0, 50) and [50, 100): edges 49.5 -> 49 (sample 49 closes the first bin).
        let mut expected = Vec::new();
        for (s, e) in [(0usize, 50usize), (50, 100)] {
            let bin = &values[s..e];
            let lo = s
                + (0..bin.len())
                    .min_by(|&a, &b| bin[a].total_cmp(&bin[b]))
                    .unwrap();
            let hi = s
                + (0..bin.len())
                    .max_by(|&a, &b| bin[a].total_cmp(&bin[b]))
                    .unwrap();
            let mut picks = vec![s, lo, hi, e - 1];
            picks.sort_unstable();
            picks.dedup();
            expected.extend(picks);
        }
        assert_eq!(idx, expected);
    }

    #[test]
    fn monotonic_m4_is_deduplicated() {
        let ts: Vec<i64> = (0..100).collect();
        let values: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(m4(&ts, &values, 12).unwrap(), vec![0, 33, 34, 66, 67, 99]);
    }

    #[test]
    fn lttb_matches_tsdownsample_example() {
        // tsdownsample's own unit test: lttb_with_x over 0..10 to 4 points.
        let ts: Vec<i64> = (0..10).collect();
        let values: Vec<f64> = (0..10).map(f64::from).collect();
        assert_eq!(minmax_lttb(&ts, &values, 4).unwrap(), vec![0, 1, 5, 9]);
    }

    #[test]
    fn first_and_last_kept() {
        let n = 10_000;
        let ts: Vec<i64> = (0..n as i64)
            .map(|i| 1_700_000_000_000 + i * 60_000)
            .collect();
        let values = walk(n, 7);
        for n_out in [3, 4, 8, 100, 2000, 9996] {
            for idx in both(&ts, &values, n_out) {
                assert_valid(&idx, n, n_out.next_multiple_of(4));
            }
        }
    }

    #[test]
    fn last_m4_bin_reaches_the_end() {
        // Edges at 1/3 steps of a range of 1: every edge truncates to 0 but the last,
        // which lands exactly on 1; all timestamps equal is the extreme case.
        let ts = [0i64, 0, 0, 0, 0, 1, 1, 1, 1, 1];
        let values = walk(10, 3);
        assert_valid(&m4(&ts, &values, 4).unwrap(), 10, 4);
        let ts = [5i64; 10];
        let idx = m4(&ts, &values, 8).unwrap();
        assert_valid(&idx, 10, 8);
        assert_valid(&minmax_lttb(&ts, &values, 3).unwrap(), 10, 3);
    }

    #[test]
    fn negative_timestamps() {
        // Before 1970, and straddling it: edges truncate toward zero.
        let n = 3000;
        let values = walk(n, 11);
        for base in [-2_000_000_000_000i64, -1_000_000] {
            let ts: Vec<i64> = (0..n as i64).map(|i| base + i * 1000).collect();
            for n_out in [8, 40, 400] {
                for idx in both(&ts, &values, n_out) {
                    assert_valid(&idx, n, n_out);
                }
            }
        }
    }

    #[test]
    fn negative_edges_truncate_toward_zero() {
        // Two bins over -9..=0: the edge -4.5 truncates to -4 (not -5), so sample -4
        // closes the first bin. Expected values checked against tsdownsample.
        let ts: Vec<i64> = (-9..=0).collect();
        let values = [0.0, 9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0];
        assert_eq!(m4(&ts, &values, 8).unwrap(), vec![0, 1, 5, 6, 7, 8, 9]);
        // The same shape after 1970: the edge 5.5 truncates down to 5.
        let ts: Vec<i64> = (1..=10).collect();
        assert_eq!(m4(&ts, &values, 8).unwrap(), vec![0, 1, 4, 5, 6, 9]);
    }

    #[test]
    fn vectorised_path_matches_portable_path() {
        // The kernels run compiled for AVX2 when available; the portable build of the
        // same code must agree, NaN and infinities included.
        let n = 20_011;
        let ts: Vec<i64> = (0..n as i64)
            .map(|i| -5_000_000 + i * 997 + (i % 13) * 31)
            .collect();
        let mut values = walk(n, 21);
        for i in (0..n).step_by(17) {
            values[i] = NAN;
        }
        values[777] = f64::INFINITY;
        values[12_345] = f64::NEG_INFINITY;
        for n_out in [4, 40, 400, 4000] {
            assert_eq!(m4_kernel(&ts, &values, n_out), m4_impl(&ts, &values, n_out));
        }
        for n_out in [3, 40, 401, 4000] {
            assert_eq!(
                minmax_lttb_kernel(&ts, &values, n_out),
                minmax_lttb_impl(&ts, &values, n_out)
            );
        }
        let mut unsorted = ts.clone();
        unsorted[15_000] = unsorted[14_999] - 1;
        assert_eq!(first_descent(&unsorted), Some(14_999));
        assert_eq!(first_descent_impl(&unsorted), Some(14_999));
        assert_eq!(first_descent(&ts), None);
    }

    #[test]
    fn argminmax_edge_cases() {
        assert_eq!(argminmax(&[]), None);
        assert_eq!(argminmax(&[NAN; 20]), None);
        let inf = f64::INFINITY;
        // Extremes equal to the lane sentinels, ties to the first index.
        assert_eq!(argminmax(&[NAN, inf, inf, NAN]), Some((1, 1)));
        let mut v = vec![inf; 19];
        v[3] = NAN;
        v[11] = -inf;
        v[17] = -inf;
        assert_eq!(argminmax(&v), Some((11, 0)));
        let v: Vec<f64> = (0..37).map(|i| ((i * 7) % 5) as f64).collect();
        // Minimum 0 first at 0, maximum 4 first at 2 (7*2 % 5 = 4).
        assert_eq!(argminmax(&v), Some((0, 2)));
    }

    #[test]
    fn extreme_timestamps_and_values_do_not_panic() {
        let mut ts: Vec<i64> = (0..2000).map(|i| i * 1_000_000_007).collect();
        ts[0] = i64::MIN;
        ts[1] = i64::MIN + 1;
        ts[1998] = i64::MAX - 1;
        ts[1999] = i64::MAX;
        let mut values = walk(2000, 13);
        values[5] = f64::MAX;
        values[6] = -f64::MAX;
        values[700] = f64::INFINITY;
        values[701] = f64::NEG_INFINITY;
        for n_out in [3, 4, 8, 64, 1000] {
            for idx in both(&ts, &values, n_out) {
                assert_valid(&idx, 2000, n_out.next_multiple_of(4));
            }
        }
    }

    #[test]
    fn irregular_gaps_leave_empty_bins() {
        // Two dense clusters a long way apart: the bins in between are empty.
        let mut ts: Vec<i64> = (0..500).collect();
        ts.extend((0..500).map(|i| 1_000_000 + i));
        let values = walk(1000, 5);
        let idx = m4(&ts, &values, 400).unwrap();
        assert_valid(&idx, 1000, 400);
        // Only the first and last of the 100 bins are occupied.
        assert!(idx.len() <= 8, "{idx:?}");
        let idx = minmax_lttb(&ts, &values, 50).unwrap();
        assert_valid(&idx, 1000, 50);
        assert!(idx.iter().any(|&i| i < 500) && idx.iter().any(|&i| i >= 500));
    }

    #[test]
    fn downsample_dispatches() {
        let ts: Vec<i64> = (0..1000).collect();
        let values = walk(1000, 9);
        assert_eq!(
            downsample(&ts, &values, 40, Method::M4).unwrap(),
            m4(&ts, &values, 40).unwrap()
        );
        assert_eq!(
            downsample(&ts, &values, 40, Method::MinMaxLttb).unwrap(),
            minmax_lttb(&ts, &values, 40).unwrap()
        );
    }
}
