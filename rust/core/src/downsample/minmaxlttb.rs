//! MinMaxLTTB: a min/max preselection over equal-width time bins, then LTTB over the
//! preselected samples.

use super::bins::Bins;
use super::lttb::lttb;
use super::minmax::minmax_bin;
use super::{check_series, Method};
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
    Ok(minmax_lttb_kernel(ts, values, n_out))
}

dispatch! {
    fn minmax_lttb_kernel(ts: &[i64], values: &[f64], n_out: usize) -> Vec<usize> = minmax_lttb_impl;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::downsample::tests::vector_input;

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
