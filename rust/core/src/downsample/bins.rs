//! The equal-width time bins that M4 and the MinMaxLTTB preselection walk.

/// tsdownsample's nudge of every bin edge, kept so the edges round the same way.
const EDGE_EPSILON: f64 = 1e-12;

/// The non-empty equal-width time bins of a sorted `ts`, as `start..end` index ranges.
///
/// Bin `i` ends at the edge `ts[0] + width * (i + 1)`, computed in `f64` and truncated
/// toward zero, exactly as tsdownsample (0.1.5) computes it; the bin takes the samples
/// before the edge plus the first sample equal to it. With `close_last` the last bin
/// also takes whatever samples the rounding of the last edge would leave out.
pub(super) struct Bins<'a> {
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
    pub(super) fn new(ts: &'a [i64], n_bins: usize, close_last: bool) -> Self {
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
