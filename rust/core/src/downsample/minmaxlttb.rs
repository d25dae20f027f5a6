//! MinMaxLTTB: a min/max preselection over equal-width time bins, then LTTB over the
//! preselected samples.

use super::bins::Bins;
use super::lttb::lttb;
use super::minmax::{minmax_bin, minmax_bin_with};
use super::{check_series, scan_bins_parallel, Method, PARALLEL_MIN};
use crate::error::Result;

/// Bins of the MinMaxLTTB preselection per output point (tsdownsample's `minmax_ratio`).
pub const MINMAX_RATIO: usize = 4;

/// MinMaxLTTB with a min/max ratio of 4; `n_out` must be at least 3.
pub fn minmax_lttb(ts: &[i64], values: &[f64], n_out: usize) -> Result<Vec<usize>> {
    Method::MinMaxLttb.check_n_out(n_out)?;
    check_series(ts, values)?;
    if ts.len() <= n_out {
        return Ok((0..ts.len()).collect());
    }
    Ok(run(ts, values, n_out))
}

/// MinMaxLTTB of a checked series longer than `n_out`: one thread below
/// [`PARALLEL_MIN`] samples; above, the preselection bins are found first and scanned
/// in parallel, then LTTB runs over the (few) preselected samples.
pub(super) fn run(ts: &[i64], values: &[f64], n_out: usize) -> Vec<usize> {
    let n = ts.len();
    if n < PARALLEL_MIN || n / n_out <= MINMAX_RATIO {
        return minmax_lttb_kernel(ts, values, n_out);
    }
    let inner_values = &values[1..n - 1];
    let bins: Vec<(usize, usize)> =
        Bins::new(&ts[1..n - 1], n_out * MINMAX_RATIO / 2, false).collect();
    let mut keep = Vec::with_capacity(2 * bins.len() + 2);
    keep.push(0);
    keep.extend(scan_bins_parallel(&bins, |chunk, out| {
        minmax_bins(inner_values, chunk, out)
    }));
    keep.push(n - 1);
    select(ts, values, n_out, &keep)
}

dispatch! {
    fn minmax_lttb_kernel(ts: &[i64], values: &[f64], n_out: usize) -> Vec<usize> = minmax_lttb_impl;
    fn minmax_bins(values: &[f64], bins: &[(usize, usize)], out: &mut Vec<usize>) -> () = minmax_bins_impl;
}

#[inline(always)]
fn minmax_bins_impl(values: &[f64], bins: &[(usize, usize)], out: &mut Vec<usize>) {
    for &(start, end) in bins {
        minmax_bin_with::<true>(values, start, end, 1, out);
    }
}

/// LTTB over the preselected samples `keep`, mapped back to indices of the series.
fn select(ts: &[i64], values: &[f64], n_out: usize, keep: &[usize]) -> Vec<usize> {
    let kept_ts: Vec<i64> = keep.iter().map(|&i| ts[i]).collect();
    let kept_values: Vec<f64> = keep.iter().map(|&i| values[i]).collect();
    let mut chosen = lttb(&kept_ts, &kept_values, n_out);
    for i in &mut chosen {
        *i = keep[*i];
    }
    chosen
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
    select(ts, values, n_out, &keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::downsample::tests::vector_input;

    #[test]
    fn parallel_scan_matches_one_thread() {
        let n = PARALLEL_MIN + 54_321;
        let ts: Vec<i64> = (0..n as i64).map(|i| i * 60_000 + (i % 11) * 997).collect();
        let mut values = crate::downsample::tests::walk(n, 23);
        for i in (0..n).step_by(777) {
            values[i] = f64::NAN;
        }
        for n_out in [3, 100, 2000, 20_000] {
            assert_eq!(
                run(&ts, &values, n_out),
                minmax_lttb_kernel(&ts, &values, n_out)
            );
        }
    }

    #[test]
    fn vectorised_path_matches_portable_path() {
        // The kernel runs compiled for AVX2 when available; the portable build of the
        // same code must agree, NaN and infinities included.
        let (ts, values) = vector_input();
        for n_out in [3, 40, 401, 4000] {
            assert_eq!(
                minmax_lttb_kernel(&ts, &values, n_out),
                minmax_lttb_impl(&ts, &values, n_out)
            );
        }
    }
}
