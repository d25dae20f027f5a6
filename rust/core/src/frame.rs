//! The envelope both cache block formats share (`block`, `aggblock`): a magic, a
//! version byte, an item count u64, then one zstd frame with its content size and
//! checksum holding the payload; and the reader their payloads are parsed with.
//!
//! Opening an envelope checks the magic and version, bounds the payload by what the
//! item count allows before anything is allocated, and decompresses incrementally
//! (a damaged header claiming terabytes is an error, not an allocation).

use crate::error::{CoreError, Result};

const LEVEL: i32 = 3;

/// What tells one block format from the other, and how its errors name it.
pub(crate) struct Kind {
    pub magic: &'static [u8; 3],
    pub version: u8,
    /// The error for another magic, e.g. "not a block (bad magic)".
    pub not_this: &'static str,
    /// Said before an unknown version number, e.g. "unsupported version".
    pub unsupported: &'static str,
    /// "sample", "bucket": what the count counts.
    pub item: &'static str,
    /// Payload bytes per item, beyond `meta_max`.
    pub item_bytes: usize,
    /// Upper bound of the payload's non-column part (names, intervals).
    pub meta_max: usize,
}

/// A decoding failure: the only error the block decoders return.
pub(crate) fn bad(message: impl Into<String>) -> CoreError {
    CoreError::Block(message.into())
}

/// Covered `[start, end)` intervals must be non-empty, sorted and disjoint.
pub(crate) fn check_intervals(covered: &[(i64, i64)]) -> Result<()> {
    for (k, &(s, e)) in covered.iter().enumerate() {
        if s >= e {
            return Err(CoreError::Argument(format!(
                "covered interval {k} is empty or reversed ({s} >= {e})"
            )));
        }
        if k > 0 && covered[k - 1].1 > s {
            return Err(CoreError::Argument(format!(
                "covered intervals must be sorted and disjoint (at {k})"
            )));
        }
    }
    Ok(())
}

/// `payload` of `count` items in its envelope. `ratio`: the expected compression, for
/// the output's first reservation.
pub(crate) fn seal(kind: &Kind, count: usize, payload: &[u8], ratio: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(12 + payload.len() / ratio.max(1));
    out.extend_from_slice(kind.magic);
    out.push(kind.version);
    out.extend_from_slice(&(count as u64).to_le_bytes());
    let mut encoder =
        zstd::bulk::Compressor::new(LEVEL).map_err(|e| CoreError::Encode(e.to_string()))?;
    encoder
        .include_checksum(true)
        .and_then(|_| encoder.include_contentsize(true))
        .map_err(|e| CoreError::Encode(e.to_string()))?;
    let compressed = encoder
        .compress(payload)
        .map_err(|e| CoreError::Encode(e.to_string()))?;
    out.extend_from_slice(&compressed);
    Ok(out)
}

/// The item count and decompressed payload of an envelope of `kind`.
pub(crate) fn open(kind: &Kind, data: &[u8]) -> Result<(usize, Vec<u8>)> {
    let mut r = Reader::new(data);
    if r.take(3, "magic")? != kind.magic {
        return Err(bad(kind.not_this));
    }
    let version = r.take(1, "version")?[0];
    if version != kind.version {
        return Err(bad(format!("{} {version}", kind.unsupported)));
    }
    let what = format!("{} count", kind.item);
    let n = usize::try_from(r.u64(&what)?).map_err(|_| bad(format!("implausible {what}")))?;
    let frame = r.rest();
    let content = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) => usize::try_from(size).map_err(|_| bad("implausible payload size"))?,
        _ => return Err(bad("payload frame header unreadable")),
    };
    // One frame and nothing after it: bytes appended to a block are damage too.
    match zstd::zstd_safe::find_frame_compressed_size(frame) {
        Ok(size) if size == frame.len() => {}
        Ok(_) => return Err(bad("bytes after the payload frame")),
        Err(_) => return Err(bad("payload frame truncated")),
    }
    let limit = n
        .checked_mul(kind.item_bytes)
        .and_then(|b| b.checked_add(kind.meta_max));
    if limit.is_none_or(|limit| content > limit) {
        return Err(bad(format!(
            "payload larger than its {} count allows",
            kind.item
        )));
    }
    let payload = decompress_exact(frame, content).map_err(|e| bad(format!("payload: {e}")))?;
    Ok((n, payload))
}

/// Decompress one zstd frame whose header claims `content` bytes, failing unless it
/// yields exactly that many. The output grows only as bytes really come out of the
/// frame: a damaged header (or item count) claiming terabytes cannot make it
/// reserve them, which `zstd::bulk::decompress` would, aborting the process.
fn decompress_exact(frame: &[u8], content: usize) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let decoder = zstd::stream::read::Decoder::with_buffer(frame).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(content.min(frame.len().saturating_mul(8)));
    let wanted = u64::try_from(content).map_err(|e| e.to_string())?;
    decoder
        .single_frame()
        .take(wanted.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() != content {
        return Err(format!(
            "{} bytes where the frame header says {content}",
            out.len()
        ));
    }
    Ok(out)
}

/// Little-endian fields read off a byte slice; running short is a [`bad`] error
/// naming the field.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| bad(format!("truncated in {what}")))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub fn u32(&mut self, what: &str) -> Result<u32> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(b))
    }

    pub fn u64(&mut self, what: &str) -> Result<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(b))
    }

    pub fn i64(&mut self, what: &str) -> Result<i64> {
        Ok(self.u64(what)? as i64)
    }

    /// A u32 length, then that many bytes of UTF-8.
    pub fn str(&mut self, what: &str) -> Result<&'a str> {
        let len = self.u32(what)? as usize;
        std::str::from_utf8(self.take(len, what)?).map_err(|_| bad(format!("{what} is not UTF-8")))
    }

    /// What is left after the fields read so far.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: Kind = Kind {
        magic: b"TST",
        version: 1,
        not_this: "not a test envelope",
        unsupported: "unsupported version",
        item: "item",
        item_bytes: 8,
        meta_max: 16,
    };

    fn sealed(count: usize, payload: &[u8]) -> Vec<u8> {
        seal(&KIND, count, payload, 4).unwrap()
    }

    fn message(data: &[u8]) -> String {
        match open(&KIND, data) {
            Err(CoreError::Block(m)) => m,
            other => panic!("expected a block error, got {other:?}"),
        }
    }

    #[test]
    fn round_trip() {
        let payload: Vec<u8> = (0..40u8).collect();
        assert_eq!(open(&KIND, &sealed(3, &payload)).unwrap(), (3, payload));
        assert_eq!(open(&KIND, &sealed(0, &[])).unwrap(), (0, vec![]));
    }

    #[test]
    fn every_truncation_is_an_error_naming_what_is_short() {
        let data = sealed(3, &[7u8; 40]);
        for cut in 0..data.len() {
            let m = message(&data[..cut]);
            let expected = match cut {
                0..=2 => "truncated in magic",
                3 => "truncated in version",
                4..=11 => "truncated in item count",
                _ => "payload",
            };
            assert!(m.contains(expected), "cut {cut}: {m}");
        }
    }

    #[test]
    fn trailing_bytes_are_damage() {
        let mut data = sealed(3, &[7u8; 40]);
        data.push(0);
        assert_eq!(message(&data), "bytes after the payload frame");
        let mut twice = sealed(3, &[7u8; 40]);
        let frame = twice[12..].to_vec();
        twice.extend_from_slice(&frame);
        assert_eq!(message(&twice), "bytes after the payload frame");
    }

    #[test]
    fn header_fields_are_checked_before_decompressing() {
        let data = sealed(3, &[7u8; 40]);
        let mut other = data.clone();
        other[0] = b'X';
        assert_eq!(message(&other), "not a test envelope");
        let mut version = data.clone();
        version[3] = 9;
        assert_eq!(message(&version), "unsupported version 9");
        // 40 bytes need at least 3 items of 8 plus 16: a count of 2 allows 32.
        let mut fewer = data.clone();
        fewer[4..12].copy_from_slice(&2u64.to_le_bytes());
        assert_eq!(message(&fewer), "payload larger than its item count allows");
        let mut huge = data;
        huge[4..12].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(message(&huge).contains("item count"));
    }

    #[test]
    fn a_flipped_payload_byte_fails_the_checksum() {
        let data = sealed(3, &[7u8; 40]);
        for at in 12..data.len() {
            let mut flipped = data.clone();
            flipped[at] ^= 0x40;
            assert!(
                open(&KIND, &flipped).is_err(),
                "byte {at} flipped went unnoticed"
            );
        }
    }
}
