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
//!
//! # Layout
//!
//! One file per algorithm with its kernels, as tsdownsample lays out `m4/` and
//! `minmaxlttb/`: `m4.rs` (M4 and its per-bin picks), `minmax.rs` (the vectorised
//! argmin/argmax scan and the min/max picks), `lttb.rs` (Largest-Triangle-Three-Buckets),
//! `minmaxlttb.rs` (the preselection feeding LTTB) and `bins.rs` (the equal-width time
//! bins both methods walk). This file holds the public API, [`Method`], the shared
//! validation and the CPU dispatch.

use std::fmt;
use std::str::FromStr;

use crate::error::{CoreError, Result};
use crate::sort::first_descent as first_descent_impl;

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

mod bins;
mod lttb;
mod m4;
mod minmax;
mod minmaxlttb;

pub use m4::m4;
pub use minmaxlttb::{minmax_lttb, MINMAX_RATIO};

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
    downsample_with(ts, values, n_out, method, false)
}

/// [`downsample`], trusting that `ts` is sorted when `assume_sorted` (the engine's data
/// always is): that skips a pass over the timestamps. On unsorted input the result is
/// then unspecified (valid, increasing indices; no panic). Either way, inputs of at
/// least [`PARALLEL_MIN`] samples are scanned on every core (rayon) with exactly the
/// result of the single-threaded scan.
pub fn downsample_with(
    ts: &[i64],
    values: &[f64],
    n_out: usize,
    method: Method,
    assume_sorted: bool,
) -> Result<Vec<usize>> {
    method.check_n_out(n_out)?;
    check_lengths(ts, values)?;
    if !assume_sorted {
        check_sorted(ts)?;
    }
    if ts.len() <= n_out {
        return Ok((0..ts.len()).collect());
    }
    Ok(match method {
        Method::MinMaxLttb => minmaxlttb::run(ts, values, n_out),
        Method::M4 => m4::run(ts, values, n_out),
    })
}

/// Inputs from this many samples on are scanned in parallel; below it one thread is
/// faster than waking others (and acechart already leads there).
pub const PARALLEL_MIN: usize = 1 << 20;

/// Run `scan` over the bins in contiguous chunks of about equal sample counts, in
/// parallel, and concatenate the picks in bin order (so the result equals one scan).
fn scan_bins_parallel(
    bins: &[(usize, usize)],
    scan: impl Fn(&[(usize, usize)], &mut Vec<usize>) + Sync,
) -> Vec<usize> {
    use rayon::prelude::*;
    let total: usize = bins.iter().map(|(s, e)| e - s).sum();
    let tasks = (rayon::current_num_threads() * 4).max(1);
    let per_task = total.div_ceil(tasks).max(1);
    let mut chunks = Vec::with_capacity(tasks + 1);
    let (mut from, mut acc) = (0, 0);
    for (i, (s, e)) in bins.iter().enumerate() {
        acc += e - s;
        if acc >= per_task {
            chunks.push(&bins[from..=i]);
            from = i + 1;
            acc = 0;
        }
    }
    if from < bins.len() {
        chunks.push(&bins[from..]);
    }
    let parts: Vec<Vec<usize>> = chunks
        .par_iter()
        .map(|chunk| {
            let mut out = Vec::with_capacity(4 * chunk.len());
            scan(chunk, &mut out);
            out
        })
        .collect();
    parts.concat()
}

dispatch! {
    fn first_descent(ts: &[i64]) -> Option<usize> = first_descent_impl;
}

fn check_lengths(ts: &[i64], values: &[f64]) -> Result<()> {
    if ts.len() != values.len() {
        return Err(CoreError::Length(format!(
            "ts ({}) and values ({}) must have the same length",
            ts.len(),
            values.len()
        )));
    }
    Ok(())
}

/// The first descent of `ts`, searched in parallel chunks for large inputs.
fn find_descent(ts: &[i64]) -> Option<usize> {
    if ts.len() < PARALLEL_MIN {
        return first_descent(ts);
    }
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 18;
    // Chunk k checks the pairs starting in [k * CHUNK, (k + 1) * CHUNK).
    (0..ts.len().div_ceil(CHUNK))
        .into_par_iter()
        .filter_map(|k| {
            let start = k * CHUNK;
            let end = ((k + 1) * CHUNK + 1).min(ts.len());
            first_descent(&ts[start..end]).map(|i| start + i)
        })
        .min()
}

/// Equal lengths and ascending (non-strictly) timestamps.
fn check_series(ts: &[i64], values: &[f64]) -> Result<()> {
    check_lengths(ts, values)?;
    check_sorted(ts)
}

fn check_sorted(ts: &[i64]) -> Result<()> {
    if let Some(i) = find_descent(ts) {
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

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const NAN: f64 = f64::NAN;

    pub(super) fn both(ts: &[i64], values: &[f64], n_out: usize) -> [Vec<usize>; 2] {
        let n_m4 = n_out.next_multiple_of(4);
        [
            minmax_lttb(ts, values, n_out).unwrap(),
            m4(ts, values, n_m4).unwrap(),
        ]
    }

    /// A deterministic pseudo-random walk without ties.
    pub(super) fn walk(n: usize, seed: u64) -> Vec<f64> {
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

    pub(super) fn assert_valid(idx: &[usize], n: usize, n_out: usize) {
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

    /// A long irregular series with NaN and infinities, for the vectorised kernels.
    pub(super) fn vector_input() -> (Vec<i64>, Vec<f64>) {
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
        (ts, values)
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
    fn first_descent_vectorised_matches_portable() {
        let (ts, _) = vector_input();
        let mut unsorted = ts.clone();
        unsorted[15_000] = unsorted[14_999] - 1;
        assert_eq!(first_descent(&unsorted), Some(14_999));
        assert_eq!(first_descent_impl(&unsorted), Some(14_999));
        assert_eq!(first_descent(&ts), None);
    }

    #[test]
    fn parallel_descent_search_finds_the_first() {
        let n = PARALLEL_MIN * 2 + 3;
        let ts: Vec<i64> = (0..n as i64).collect();
        assert_eq!(find_descent(&ts), None);
        // Descents right at a chunk boundary and later: the first one is reported.
        for at in [(1 << 18) - 1, 1 << 18, n - 2] {
            let mut bad = ts.clone();
            bad[at + 1] = bad[at] - 1;
            if at + 2 < n {
                bad[n - 1] = 0;
            }
            assert_eq!(find_descent(&bad), Some(at), "{at}");
        }
    }

    #[test]
    fn assume_sorted_skips_the_check_without_panicking() {
        let n = PARALLEL_MIN + 100;
        let mut ts: Vec<i64> = (0..n as i64).map(|i| i * 1000).collect();
        ts.swap(10, n - 10);
        ts[500] = -7;
        let values = walk(n, 3);
        for method in Method::ALL {
            assert!(downsample_with(&ts, &values, 400, method, false).is_err());
            let idx = downsample_with(&ts, &values, 400, method, true).unwrap();
            assert!(idx.windows(2).all(|w| w[0] < w[1]) && idx.iter().all(|&i| i < n));
            let small = downsample_with(&ts[..5000], &values[..5000], 400, method, true).unwrap();
            assert!(small.iter().all(|&i| i < 5000));
        }
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
