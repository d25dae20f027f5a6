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

/// [`argminmax`] for data streaming from memory (the parallel scans of large series),
/// which the one-pass kernel cannot keep up with: carrying an index per lane costs
/// three times the work of the comparisons. Here one pass computes the extremes of each
/// block of [`BLOCK`] values (pure `minpd`/`maxpd`, as fast as memory delivers) and
/// remembers the first block reaching each overall extreme; only those two blocks are
/// then searched for the first index. Same result as [`argminmax`]: an extreme equal to
/// its sentinel (±inf) is searched for over the whole slice, and finding nothing there
/// means every value is NaN.
#[inline(always)]
pub(super) fn argminmax_streaming(v: &[f64]) -> Option<(usize, usize)> {
    let (min, min_block, max, max_block) = block_extremes(v);
    let find = |block: usize, x: f64| {
        if block == usize::MAX {
            v.iter().position(|&y| y == x)
        } else {
            let at = block * BLOCK;
            v[at..(at + BLOCK).min(v.len())]
                .iter()
                .position(|&y| y == x)
                .map(|j| at + j)
        }
    };
    Some((find(min_block, min)?, find(max_block, max)?))
}

/// Values per block of [`argminmax_streaming`]: 4 kB, a small search once found.
const BLOCK: usize = 512;

/// The extremes of `v` and the first block (of [`BLOCK`] values) reaching each
/// (`usize::MAX` while at the sentinel).
#[inline(always)]
fn block_extremes(v: &[f64]) -> (f64, usize, f64, usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { block_extremes_avx2(v) };
    }
    block_extremes_portable(v)
}

#[inline(always)]
fn block_extremes_portable(v: &[f64]) -> (f64, usize, f64, usize) {
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut min_block, mut max_block) = (usize::MAX, usize::MAX);
    for (b, block) in v.chunks(BLOCK).enumerate() {
        let (lo, hi) = extremes(block);
        if lo < min {
            (min, min_block) = (lo, b);
        }
        if hi > max {
            (max, max_block) = (hi, b);
        }
    }
    (min, min_block, max, max_block)
}

/// [`block_extremes_portable`] with explicit AVX2: four independent accumulators of
/// four lanes each way, so the loop is bound by memory, not by the `minpd` latency.
/// `_mm256_min_pd(x, m)` is `x < m ? x : m`, which keeps `m` when `x` is NaN: the same
/// selection as the portable code, so the same result.
///
/// # Safety
/// Only on a CPU with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn block_extremes_avx2(v: &[f64]) -> (f64, usize, f64, usize) {
    use std::arch::x86_64::*;
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut min_block, mut max_block) = (usize::MAX, usize::MAX);
    let horizontal = |a: __m256d, min_not_max: bool| -> f64 {
        let mut lanes = [0.0f64; 4];
        // SAFETY: `lanes` holds four f64; unaligned store.
        unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), a) };
        lanes.iter().fold(lanes[0], |m, &x| {
            if min_not_max {
                if x < m {
                    x
                } else {
                    m
                }
            } else if x > m {
                x
            } else {
                m
            }
        })
    };
    for (b, block) in v.chunks(BLOCK).enumerate() {
        let (lo, hi) = if block.len() == BLOCK {
            let p = block.as_ptr();
            let mut lo = [_mm256_set1_pd(f64::INFINITY); 4];
            let mut hi = [_mm256_set1_pd(f64::NEG_INFINITY); 4];
            for i in (0..BLOCK).step_by(16) {
                for k in 0..4 {
                    // SAFETY: i + 4k + 4 <= BLOCK = block.len(); unaligned load.
                    let x = unsafe { _mm256_loadu_pd(p.add(i + 4 * k)) };
                    lo[k] = _mm256_min_pd(x, lo[k]);
                    hi[k] = _mm256_max_pd(x, hi[k]);
                }
            }
            // Lanes hold no NaN (a NaN x never replaces an accumulator).
            let l = _mm256_min_pd(_mm256_min_pd(lo[0], lo[1]), _mm256_min_pd(lo[2], lo[3]));
            let h = _mm256_max_pd(_mm256_max_pd(hi[0], hi[1]), _mm256_max_pd(hi[2], hi[3]));
            (horizontal(l, true), horizontal(h, false))
        } else {
            extremes(block)
        };
        if lo < min {
            (min, min_block) = (lo, b);
        }
        if hi > max {
            (max, max_block) = (hi, b);
        }
    }
    (min, min_block, max, max_block)
}

/// The minimum and maximum of the non-NaN values (`inf`, `-inf` when there are none).
#[inline(always)]
fn extremes(v: &[f64]) -> (f64, f64) {
    let mut lo = [f64::INFINITY; LANES];
    let mut hi = [f64::NEG_INFINITY; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for j in 0..LANES {
            let x = c[j];
            lo[j] = if x < lo[j] { x } else { lo[j] };
            hi[j] = if x > hi[j] { x } else { hi[j] };
        }
    }
    let mut min = lo
        .iter()
        .fold(f64::INFINITY, |m, &x| if x < m { x } else { m });
    let mut max = hi
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    for &x in tail {
        min = if x < min { x } else { min };
        max = if x > max { x } else { max };
    }
    (min, max)
}

/// [`argminmax_streaming`] when `STREAMING`, else [`argminmax`].
#[inline(always)]
pub(super) fn pick<const STREAMING: bool>(v: &[f64]) -> Option<(usize, usize)> {
    if STREAMING {
        argminmax_streaming(v)
    } else {
        argminmax(v)
    }
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
    minmax_bin_with::<false>(values, start, end, offset, out);
}

/// [`minmax_bin`] with the argmin/argmax kernel given.
#[inline(always)]
pub(super) fn minmax_bin_with<const STREAMING: bool>(
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
    if let Some((lo, hi)) = pick::<STREAMING>(&values[start..end]) {
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

    #[test]
    fn streaming_kernel_agrees() {
        let inf = f64::INFINITY;
        let mut cases: Vec<Vec<f64>> = vec![
            vec![],
            vec![NAN; 20],
            vec![NAN, inf, inf, NAN],
            vec![-0.0, 0.0, 1.0, -0.0],
            (0..37).map(|i| ((i * 7) % 5) as f64).collect(),
        ];
        let mut v = vec![inf; 19];
        v[3] = NAN;
        v[11] = -inf;
        v[17] = -inf;
        cases.push(v);
        let walk = crate::downsample::tests::walk(5000, 4);
        for len in [1, 7, 8, 31, 32, 33, 100, 511, 512, 513, 1500, 4999] {
            cases.push(walk[..len].to_vec());
            let mut with_nan = walk[..len].to_vec();
            with_nan.iter_mut().step_by(3).for_each(|x| *x = NAN);
            cases.push(with_nan);
        }
        for v in &cases {
            assert_eq!(argminmax_streaming(v), argminmax(v), "{v:?}");
            assert_eq!(block_extremes(v), block_extremes_portable(v), "{v:?}");
        }
    }
}
