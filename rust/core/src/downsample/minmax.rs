//! The min/max kernels: a vectorisable first-argmin/argmax scan that ignores NaN, and
//! the per-bin picks of the MinMaxLTTB preselection built on it (M4 uses it too).

/// Append `i` unless it is already the last index appended.
#[inline(always)]
pub(super) fn push_once(out: &mut Vec<usize>, i: usize) {
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
pub(super) fn argminmax(v: &[f64]) -> Option<(usize, usize)> {
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

/// Min/max picks of the bin `start..end` of `values`, appended as `offset + index`.
#[inline(always)]
pub(super) fn minmax_bin(
    values: &[f64],
    start: usize,
    end: usize,
    offset: usize,
    out: &mut Vec<usize>,
) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::downsample::tests::NAN;

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
}
