//! Largest-Triangle-Three-Buckets, the second stage of MinMaxLTTB.

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
pub(super) fn lttb(x: &[i64], y: &[f64], n_out: usize) -> Vec<usize> {
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
    use crate::downsample::minmax_lttb;

    #[test]
    fn lttb_matches_tsdownsample_example() {
        // tsdownsample's own unit test: lttb_with_x over 0..10 to 4 points.
        let ts: Vec<i64> = (0..10).collect();
        let values: Vec<f64> = (0..10).map(f64::from).collect();
        assert_eq!(lttb(&ts, &values, 4), vec![0, 1, 5, 9]);
        // Below the preselection ratio MinMaxLTTB is plain LTTB.
        assert_eq!(minmax_lttb(&ts, &values, 4).unwrap(), vec![0, 1, 5, 9]);
    }
}
