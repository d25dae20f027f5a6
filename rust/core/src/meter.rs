//! Per-bucket values that need the raw samples and the sample before each bucket:
//! meter consumption (`delta`), time-weighted averages (`twa`) and on-time of binary
//! points (`on_time`).
//!
//! Buckets are given by their edges (`[edges[k], edges[k + 1])`, any widths, so local
//! days and calendar months work alike). Samples before `edges[0]` are not bucketed,
//! but the last of them is carried into the first bucket: a meter's consumption in a
//! bucket is measured from the reading before it, and a value reported on change holds
//! from the report before the bucket. Samples at or after the last edge are ignored.
//! Timestamps must ascend (duplicates allowed: the later sample wins).

use crate::aggregate::check_edges;
use crate::error::{CoreError, Result};

fn check(ts: &[i64], values: &[f64], edges: &[i64]) -> Result<()> {
    if ts.len() != values.len() {
        return Err(CoreError::Length(format!(
            "ts ({}) and values ({}) must have the same length",
            ts.len(),
            values.len()
        )));
    }
    if let Some(i) = ts.windows(2).position(|w| w[0] > w[1]) {
        return Err(CoreError::Argument(format!(
            "ts must be sorted ascending (ts[{}] = {} > ts[{}] = {})",
            i,
            ts[i],
            i + 1,
            ts[i + 1]
        )));
    }
    check_edges(edges)
}

/// Consumption of a cumulative meter per bucket: the sum of the increments between
/// consecutive readings (NaN readings skipped), each counted in the bucket of its later
/// reading, the first one measured from the last reading before `edges[0]` when there
/// is one. So a bucket's value is its last reading minus the previous bucket's last
/// reading, exactly, across any bucket edge and any gap.
///
/// A drop larger than `reset_threshold` is a reset or rollover (the meter restarted
/// from zero): that increment is the new reading itself, not a negative consumption.
/// A smaller drop (reading jitter) counts as it is, so sums stay true. Buckets without
/// a reading are omitted. Returns (bucket starts, consumption).
pub fn delta(
    ts: &[i64],
    values: &[f64],
    edges: &[i64],
    reset_threshold: f64,
) -> Result<(Vec<i64>, Vec<f64>)> {
    check(ts, values, edges)?;
    if reset_threshold.is_nan() || reset_threshold < 0.0 {
        return Err(CoreError::Argument(format!(
            "reset_threshold must be a non-negative number, got {reset_threshold}"
        )));
    }
    let (mut out_ts, mut out_v) = (Vec::new(), Vec::new());
    if edges.len() < 2 {
        return Ok((out_ts, out_v));
    }
    let last_edge = edges[edges.len() - 1];
    let mut prev: Option<f64> = None;
    let mut k = 0usize;
    let mut open: Option<usize> = None;
    // Per open bucket: the reading it is measured from, and what its resets add back
    // (a reset's increment is the new reading `v`, not `v - p`: `p` is added back). So
    // a bucket without a reset is exactly `last - base`, one subtraction, however many
    // readings it holds.
    let (mut base, mut added) = (0.0f64, 0.0f64);
    for (&t, &v) in ts.iter().zip(values) {
        if t >= last_edge {
            break;
        }
        if v.is_nan() {
            continue;
        }
        if t < edges[0] {
            prev = Some(v);
            continue;
        }
        if t >= edges[k + 1] {
            k += edges[k + 1..].partition_point(|&e| e <= t);
        }
        if open != Some(k) {
            out_ts.push(edges[k]);
            out_v.push(0.0);
            open = Some(k);
            base = prev.unwrap_or(v);
            added = 0.0;
        }
        if let Some(p) = prev {
            if v - p < -reset_threshold {
                added += p;
            }
        }
        *out_v.last_mut().expect("a bucket was opened") = (v - base) + added;
        prev = Some(v);
    }
    Ok((out_ts, out_v))
}

/// What a series reported on change is worth per bucket, a value holding from its
/// sample until the next one (a NaN sample: unknown until the next one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Held {
    /// Bucket starts of the buckets with any known time.
    pub ts: Vec<i64>,
    /// Time-weighted average over the known time of the bucket.
    pub twa: Vec<f64>,
    /// Seconds the value was on (non-zero) in the bucket.
    pub on_s: Vec<f64>,
    /// Milliseconds of the bucket whose value was known.
    pub known_ms: Vec<i64>,
}

/// Time-weighted average and on-time per bucket, each value held from its sample until
/// the next one, and the last one until `until_ms` (now, for the bucket still running)
/// or the bucket's end. The value before `edges[0]` (the last earlier sample) holds
/// into the first bucket; without one the first bucket starts at its first sample.
/// Buckets with no known time are omitted.
pub fn held(ts: &[i64], values: &[f64], edges: &[i64], until_ms: i64) -> Result<Held> {
    check(ts, values, edges)?;
    let mut out = Held::default();
    if edges.len() < 2 {
        return Ok(out);
    }
    let first_in = ts.partition_point(|&t| t < edges[0]);
    // The value in force at edges[0]: NaN means none is known.
    let mut value = if first_in > 0 {
        values[first_in - 1]
    } else {
        f64::NAN
    };
    let mut i = first_in;
    for k in 0..edges.len() - 1 {
        let (start, end) = (edges[k], edges[k + 1].min(until_ms));
        if start >= until_ms {
            break;
        }
        // Jump over buckets with neither a sample nor a value in force.
        if value.is_nan() && (i >= ts.len() || ts[i] >= edges[k + 1]) {
            continue;
        }
        let (mut integral, mut known, mut on) = (0.0f64, 0i64, 0i64);
        let mut from = start;
        let mut hold = |from: i64, to: i64, v: f64| {
            let span = to.min(end) - from;
            if span > 0 && !v.is_nan() {
                integral += v * span as f64;
                known += span;
                if v != 0.0 {
                    on += span;
                }
            }
        };
        while i < ts.len() && ts[i] < edges[k + 1] {
            hold(from, ts[i], value);
            from = from.max(ts[i]);
            value = values[i];
            i += 1;
        }
        hold(from, end, value);
        if known > 0 {
            out.ts.push(start);
            out.twa.push(integral / known as f64);
            out.on_s.push(on as f64 / 1000.0);
            out.known_ms.push(known);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_across_edges_resets_and_gaps() {
        let ts = [-5, 0, 4, 10, 15, 30, 41];
        let v = [100.0, 101.0, 103.0, 104.0, 2.0, 6.0, f64::NAN];
        let (t, d) = delta(&ts, &v, &[0, 10, 20, 30, 40], 1.0).unwrap();
        assert_eq!(t, vec![0, 10, 30]);
        // 103 - 100; (104 - 103) + 2 (a reset); 6 - 2.
        assert_eq!(d, vec![3.0, 3.0, 4.0]);
        // A small drop within the threshold counts as negative consumption.
        let (_, d) = delta(&[0, 1], &[10.0, 9.5], &[0, 10], 1.0).unwrap();
        assert_eq!(d, vec![-0.5]);
        let (t, d) = delta(&[], &[], &[0, 10], 0.0).unwrap();
        assert!(t.is_empty() && d.is_empty());
        assert!(delta(&[0], &[1.0], &[0, 10], f64::NAN).is_err());
        assert!(delta(&[1, 0], &[1.0, 2.0], &[0, 10], 0.0).is_err());
        assert!(delta(&[0], &[1.0, 2.0], &[0, 10], 0.0).is_err());
    }

    #[test]
    fn held_values_carry_into_buckets() {
        // On at -10, off at 5, on at 12, unknown from 25, on at 28; now = 35.
        let ts = [-10, 5, 12, 25, 28];
        let v = [1.0, 0.0, 1.0, f64::NAN, 1.0];
        let h = held(&ts, &v, &[0, 10, 20, 30, 40, 50], 35).unwrap();
        assert_eq!(h.ts, vec![0, 10, 20, 30]);
        assert_eq!(h.known_ms, vec![10, 10, 7, 5]);
        assert_eq!(h.on_s, vec![0.005, 0.008, 0.007, 0.005]);
        assert_eq!(h.twa, vec![0.5, 0.8, 1.0, 1.0]);
        // Without an earlier sample the first bucket starts at its first sample.
        let h = held(&[4, 6], &[2.0, 4.0], &[0, 10], 100).unwrap();
        assert_eq!(h.known_ms, vec![6]);
        assert!((h.twa[0] - (2.0 * 2.0 + 4.0 * 4.0) / 6.0).abs() < 1e-12);
        // A value holds through buckets without samples.
        let h = held(&[-1], &[3.0], &[0, 10, 20], 100).unwrap();
        assert_eq!((h.ts, h.twa), (vec![0, 10], vec![3.0, 3.0]));
        assert!(held(&[], &[], &[0, 10], 100).unwrap().ts.is_empty());
        assert!(held(&[0], &[1.0], &[10, 0], 100).is_err());
    }
}
