//! M4: per equal-width time bin, the first, minimum, maximum and last sample.

use super::bins::Bins;
use super::minmax::{pick, push_once};
use super::{check_series, scan_bins_parallel, Method, PARALLEL_MIN};
use crate::error::Result;

/// M4 over `n_out / 4` equal-width time bins; `n_out` must be a positive multiple of 4.
pub fn m4(ts: &[i64], values: &[f64], n_out: usize) -> Result<Vec<usize>> {
    Method::M4.check_n_out(n_out)?;
    check_series(ts, values)?;
    if ts.len() <= n_out {
        return Ok((0..ts.len()).collect());
    }
    Ok(run(ts, values, n_out))
}

/// M4 of a checked series longer than `n_out`: one thread below [`PARALLEL_MIN`]
/// samples; above, the bins are found first (a few probes each) and scanned in parallel.
pub(super) fn run(ts: &[i64], values: &[f64], n_out: usize) -> Vec<usize> {
    if ts.len() < PARALLEL_MIN {
        return m4_kernel(ts, values, n_out);
    }
    let bins: Vec<(usize, usize)> = Bins::new(ts, n_out / 4, true).collect();
    scan_bins_parallel(&bins, |chunk, out| m4_bins(values, chunk, out))
}

dispatch! {
    fn m4_kernel(ts: &[i64], values: &[f64], n_out: usize) -> Vec<usize> = m4_impl;
    fn m4_bins(values: &[f64], bins: &[(usize, usize)], out: &mut Vec<usize>) -> () = m4_bins_impl;
}

#[inline(always)]
fn m4_bins_impl(values: &[f64], bins: &[(usize, usize)], out: &mut Vec<usize>) {
    for &(start, end) in bins {
        m4_bin_with::<true>(values, start, end, out);
    }
}

#[inline(always)]
fn m4_impl(ts: &[i64], values: &[f64], n_out: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(n_out);
    for (start, end) in Bins::new(ts, n_out / 4, true) {
        m4_bin(values, start, end, &mut out);
    }
    out
}

/// M4 picks of the bin `start..end` of the whole series, appended in order.
#[inline(always)]
fn m4_bin(values: &[f64], start: usize, end: usize, out: &mut Vec<usize>) {
    m4_bin_with::<false>(values, start, end, out);
}

/// [`m4_bin`] with the argmin/argmax kernel given.
#[inline(always)]
fn m4_bin_with<const STREAMING: bool>(
    values: &[f64],
    start: usize,
    end: usize,
    out: &mut Vec<usize>,
) {
    let n = values.len();
    let keep = |i: usize| i == 0 || i == n - 1 || !values[i].is_nan();
    if end - start <= 4 {
        for i in (start..end).filter(|&i| keep(i)) {
            push_once(out, i);
        }
        return;
    }
    let bin = &values[start..end];
    let Some((lo, hi)) = pick::<STREAMING>(bin) else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::downsample::minmax_lttb;
    use crate::downsample::tests::{assert_valid, vector_input, walk};

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
    fn parallel_scan_matches_one_thread() {
        let n = PARALLEL_MIN + 12_345;
        let ts: Vec<i64> = (0..n as i64).map(|i| i * 60_000 + (i % 7) * 1000).collect();
        let mut values = walk(n, 17);
        for i in (0..n).step_by(1013) {
            values[i] = f64::NAN;
        }
        for n_out in [4, 400, 4000, 40_000] {
            assert_eq!(run(&ts, &values, n_out), m4_kernel(&ts, &values, n_out));
        }
    }

    #[test]
    fn vectorised_path_matches_portable_path() {
        // The kernel runs compiled for AVX2 when available; the portable build of the
        // same code must agree, NaN and infinities included.
        let (ts, values) = vector_input();
        for n_out in [4, 40, 400, 4000] {
            assert_eq!(m4_kernel(&ts, &values, n_out), m4_impl(&ts, &values, n_out));
        }
    }
}
