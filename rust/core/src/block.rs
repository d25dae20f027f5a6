//! Serialisation of one cache block: one point's samples for one period, plus the
//! time intervals the block covers.
//!
//! Layout (little endian): `b"ACB"`, version u8, sample count u64, then one zstd
//! frame with its content checksum holding: name length u32, name (UTF-8),
//! interval count u32, intervals as (start, end) i64 pairs, the timestamps as
//! deltas and the values, each column byte-shuffled so that zstd sees runs of equal
//! bytes (regular cadences make every delta identical; nearby readings share their
//! high bytes). Everything but the magic, version and count is under the checksum,
//! so a flipped bit can never turn into a wrong coverage claim or wrong samples.
//!
//! The point name is stored in full and checked by the reader, so a block can never
//! be served for a different point, whatever its storage key.

use crate::error::{CoreError, Result};
use crate::frame::{bad, check_intervals, open, seal, Kind, Reader};

pub const VERSION: u8 = 1;
/// Upper bound of the name and interval list inside the payload.
const MAX_META: usize = 1 << 24;
const KIND: Kind = Kind {
    magic: b"ACB",
    version: VERSION,
    not_this: "not a block (bad magic)",
    unsupported: "unsupported version",
    item: "sample",
    item_bytes: 16,
    meta_max: MAX_META,
};

#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub point: String,
    pub ts: Vec<i64>,
    pub values: Vec<f64>,
    /// Covered `[start, end)` intervals in ms, sorted and disjoint.
    pub covered: Vec<(i64, i64)>,
}

/// Transpose `width`-byte words so byte k of every word is contiguous.
fn shuffle(src: &[u8], width: usize, dst: &mut Vec<u8>) {
    let n = src.len() / width;
    let base = dst.len();
    dst.resize(base + src.len(), 0);
    let out = &mut dst[base..];
    for (i, word) in src.chunks_exact(width).enumerate() {
        for (k, &b) in word.iter().enumerate() {
            out[k * n + i] = b;
        }
    }
}

fn unshuffle(src: &[u8], width: usize) -> Vec<u8> {
    let n = src.len() / width;
    let mut out = vec![0u8; src.len()];
    for (i, word) in out.chunks_exact_mut(width).enumerate() {
        for (k, b) in word.iter_mut().enumerate() {
            *b = src[k * n + i];
        }
    }
    out
}

pub fn encode_block(
    point: &str,
    ts: &[i64],
    values: &[f64],
    covered: &[(i64, i64)],
) -> Result<Vec<u8>> {
    if ts.len() != values.len() {
        return Err(CoreError::Length(format!(
            "ts ({}) and values ({}) must have the same length",
            ts.len(),
            values.len()
        )));
    }
    if let Some(i) = ts.windows(2).position(|w| w[0] >= w[1]) {
        return Err(CoreError::Argument(format!(
            "block ts must be strictly increasing (at index {})",
            i + 1
        )));
    }
    check_intervals(covered)?;
    let name_len = u32::try_from(point.len())
        .map_err(|_| CoreError::Argument("point name too long".into()))?;
    let n_iv = u32::try_from(covered.len())
        .map_err(|_| CoreError::Argument("too many intervals".into()))?;

    let mut raw_ts = Vec::with_capacity(ts.len() * 8);
    let mut prev = 0i64;
    for &t in ts {
        raw_ts.extend_from_slice(&t.wrapping_sub(prev).to_le_bytes());
        prev = t;
    }
    let raw_values: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut payload = Vec::with_capacity(16 + point.len() + covered.len() * 16 + ts.len() * 16);
    payload.extend_from_slice(&name_len.to_le_bytes());
    payload.extend_from_slice(point.as_bytes());
    payload.extend_from_slice(&n_iv.to_le_bytes());
    for &(s, e) in covered {
        payload.extend_from_slice(&s.to_le_bytes());
        payload.extend_from_slice(&e.to_le_bytes());
    }
    shuffle(&raw_ts, 8, &mut payload);
    shuffle(&raw_values, 8, &mut payload);

    seal(&KIND, ts.len(), &payload, 4)
}

pub fn decode_block(data: &[u8]) -> Result<Block> {
    let (n, payload) = open(&KIND, data)?;
    let mut p = Reader::new(&payload);
    let name_len = p.u32("name length")? as usize;
    let name = std::str::from_utf8(p.take(name_len, "point name")?)
        .map_err(|_| bad("point name is not UTF-8"))?;
    let n_iv = p.u32("interval count")? as usize;
    let mut covered = Vec::with_capacity(n_iv.min(payload.len() / 16));
    for _ in 0..n_iv {
        covered.push((p.i64("intervals")?, p.i64("intervals")?));
    }
    check_intervals(&covered).map_err(|e| bad(e.to_string()))?;
    let columns = p.rest();
    if columns.len() != n * 16 {
        return Err(bad(format!(
            "payload holds {} column bytes, expected {}",
            columns.len(),
            n * 16
        )));
    }
    let raw_ts = unshuffle(&columns[..n * 8], 8);
    let raw_values = unshuffle(&columns[n * 8..], 8);
    let mut ts = Vec::with_capacity(n);
    let mut prev = 0i64;
    for chunk in raw_ts.chunks_exact(8) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        prev = prev.wrapping_add(i64::from_le_bytes(b));
        ts.push(prev);
    }
    if ts.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad("timestamps not strictly increasing"));
    }
    let values = raw_values
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            f64::from_le_bytes(b)
        })
        .collect();
    Ok(Block {
        point: name.to_owned(),
        ts,
        values,
        covered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<i64>, Vec<f64>) {
        let ts: Vec<i64> = (0..10_000).map(|i| -5_000_000 + i * 60_000).collect();
        let values: Vec<f64> = (0..10_000)
            .map(|i| {
                if i % 97 == 0 {
                    f64::NAN
                } else {
                    70.0 + (i % 50) as f64 * 0.1
                }
            })
            .collect();
        (ts, values)
    }

    #[test]
    fn round_trip_and_compresses() {
        let (ts, values) = sample();
        let covered = vec![(-5_000_000, 0), (10, 600_000_000)];
        let bytes = encode_block("ses/x/VAV-1.points.DaTemp", &ts, &values, &covered).unwrap();
        assert!(bytes.len() < ts.len() * 16 / 8, "{} bytes", bytes.len());
        let b = decode_block(&bytes).unwrap();
        assert_eq!(b.point, "ses/x/VAV-1.points.DaTemp");
        assert_eq!(b.ts, ts);
        assert_eq!(b.covered, covered);
        for (a, e) in b.values.iter().zip(&values) {
            assert!(a.to_bits() == e.to_bits());
        }
    }

    #[test]
    fn empty_block() {
        let bytes = encode_block("p", &[], &[], &[(0, 10)]).unwrap();
        let b = decode_block(&bytes).unwrap();
        assert!(b.ts.is_empty() && b.covered == vec![(0, 10)]);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(encode_block("p", &[2, 1], &[0.0, 0.0], &[]).is_err());
        assert!(encode_block("p", &[1], &[], &[]).is_err());
        assert!(encode_block("p", &[], &[], &[(5, 5)]).is_err());
        assert!(encode_block("p", &[], &[], &[(0, 5), (4, 9)]).is_err());
    }

    #[test]
    fn decode_errors_are_block_errors() {
        let good = encode_block("p", &[1, 2], &[1.0, 2.0], &[(0, 10)]).unwrap();
        let mut wrong_count = good.clone();
        wrong_count[4] = 3; // sample count 3, payload holds 2
        let mut torn = good.clone();
        torn.truncate(good.len() - 2);
        for (data, needle) in [
            (&b""[..], "truncated in magic"),
            (b"XYZ\x01", "bad magic"),
            (b"ACB\x09", "unsupported version 9"),
            (&good[..12], "frame header"),
            (&wrong_count[..], "column bytes"),
            (&torn[..], "payload"),
        ] {
            let err = decode_block(data).unwrap_err();
            assert!(matches!(err, CoreError::Block(_)), "{err:?}");
            let text = err.to_string();
            assert!(
                text.starts_with("corrupt block: ") && text.contains(needle),
                "{text}"
            );
        }
    }

    #[test]
    fn a_header_claiming_terabytes_is_an_error_not_an_allocation() {
        // Found by the fuzzer (tests/fuzz): a sample count of 2^40 and a frame header
        // claiming 448 GiB of content made `zstd::bulk::decompress` reserve it and abort.
        let data: [u8; 34] = [
            0x41, 0x43, 0x42, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x28, 0xb5,
            0x2f, 0xfd, 0xe3, 0x09, 0x49, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x70, 0x00, 0x00,
            0x00, 0x00, 0xbc, 0xb6, 0x93, 0xb0,
        ];
        let err = decode_block(&data).unwrap_err();
        assert!(matches!(err, CoreError::Block(_)), "{err:?}");
    }

    #[test]
    fn every_corruption_is_an_error_or_exact() {
        let (ts, values) = sample();
        let good = encode_block(
            "p",
            &ts[..500],
            &values[..500],
            &[(-5_000_000, 100_000_000)],
        )
        .unwrap();
        let original = decode_block(&good).unwrap();
        for cut in 0..good.len() {
            let err = decode_block(&good[..cut]).unwrap_err();
            assert!(
                matches!(err, CoreError::Block(_)),
                "truncated at {cut}: {err:?}"
            );
        }
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad_bytes = good.clone();
                bad_bytes[i] ^= flip;
                // Either detected, or the flip hit bits that do not change the content
                // (the checksum covers the decompressed bytes).
                let decoded = decode_block(&bad_bytes);
                if let Err(err) = &decoded {
                    assert!(matches!(err, CoreError::Block(_)), "flip at {i}: {err:?}");
                }
                if let Ok(b) = decoded {
                    assert_eq!(b.point, original.point, "flip {flip:#x} at byte {i}");
                    assert_eq!(b.ts, original.ts, "flip {flip:#x} at byte {i}");
                    assert_eq!(b.covered, original.covered, "flip {flip:#x} at byte {i}");
                    let same = b
                        .values
                        .iter()
                        .zip(&original.values)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "flip {flip:#x} at byte {i}");
                }
            }
        }
    }
}
