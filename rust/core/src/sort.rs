//! Order samples by (point, time) and drop duplicate (point, time) pairs.
//!
//! Windows fetched in parallel overlap at their edges and arrive in any order;
//! merging them must neither drop nor duplicate a sample. The last sample in input
//! order wins, so a later (fresher) fetch overrides an earlier one.

use crate::error::{CoreError, Result};

pub struct Sorted {
    pub point_index: Vec<i32>,
    pub ts: Vec<i64>,
    pub values: Vec<f64>,
}

pub fn sort_dedup(point_index: &[i32], ts: &[i64], values: &[f64]) -> Result<Sorted> {
    let n = ts.len();
    if point_index.len() != n || values.len() != n {
        return Err(CoreError::Length(format!(
            "point_index ({}), ts ({}) and values ({}) must have the same length",
            point_index.len(),
            n,
            values.len()
        )));
    }
    let key = |i: usize| (point_index[i], ts[i]);
    if (1..n).all(|i| key(i - 1) < key(i)) {
        return Ok(Sorted {
            point_index: point_index.to_vec(),
            ts: ts.to_vec(),
            values: values.to_vec(),
        });
    }
    let mut order: Vec<u32> = match u32::try_from(n) {
        Ok(_) => (0..n as u32).collect(),
        Err(_) => {
            return Err(CoreError::Argument(
                "more than 4,294,967,295 samples".into(),
            ))
        }
    };
    // Stable sort: equal keys stay in input order, so the last of a run is the winner.
    order.sort_by_key(|&i| key(i as usize));
    let mut out = Sorted {
        point_index: Vec::with_capacity(n),
        ts: Vec::with_capacity(n),
        values: Vec::with_capacity(n),
    };
    for (pos, &i) in order.iter().enumerate() {
        let i = i as usize;
        if let Some(&next) = order.get(pos + 1) {
            if key(next as usize) == key(i) {
                continue;
            }
        }
        out.point_index.push(point_index[i]);
        out.ts.push(ts[i]);
        out.values.push(values[i]);
    }
    Ok(out)
}

/// Index `i` of the first `ts[i] > ts[i + 1]`, if any: branch-free over chunks so it
/// vectorises, the culprit located only on failure. Inlined into its callers, so each
/// compiles it for its own target features (`downsample`'s dispatch).
#[inline(always)]
pub(crate) fn first_descent(ts: &[i64]) -> Option<usize> {
    const CHUNK: usize = 1024;
    let n = ts.len();
    let mut start = 0;
    while start + 1 < n {
        let end = (start + CHUNK).min(n - 1);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_and_keeps_last_duplicate() {
        let s = sort_dedup(
            &[1, 0, 1, 0, 1],
            &[5, 9, 5, 1, 2],
            &[1.0, 2.0, 3.0, 4.0, 5.0],
        )
        .unwrap();
        assert_eq!(s.point_index, vec![0, 0, 1, 1]);
        assert_eq!(s.ts, vec![1, 9, 2, 5]);
        assert_eq!(s.values, vec![4.0, 2.0, 5.0, 3.0]);
    }

    #[test]
    fn edge_cases() {
        let s = sort_dedup(&[], &[], &[]).unwrap();
        assert!(s.ts.is_empty());
        let s = sort_dedup(&[3], &[-7], &[f64::NAN]).unwrap();
        assert_eq!((s.point_index, s.ts), (vec![3], vec![-7]));
        assert!(sort_dedup(&[0], &[1, 2], &[0.0]).is_err());
    }
}
