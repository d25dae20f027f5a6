//! Where encoders write: every encoder is one generic function run twice, first into a
//! [`Counter`] (exact size, nothing written) and then into an [`Out`] over a buffer of
//! that size. So the final buffer (a Python `bytes` object, or a `Vec`) is allocated once
//! and written once, and the two passes cannot disagree about the size.
//!
//! The buffer may be uninitialised memory (`&mut [MaybeUninit<u8>]`): nothing is read
//! from it, and a successful [`Out::finish`] proves that every byte was written, which
//! is what lets a caller skip zeroing a fresh buffer of hundreds of megabytes.

use std::mem::MaybeUninit;

use super::num::{int_len, thirteen_digits, Short};
use crate::error::{CoreError, Result};

/// Initialise `dst` with a copy of `src`.
///
/// Panics when the lengths differ (a bug in the caller), so a write can never leave
/// part of the range it claims uninitialised. For the fixed-size ranges the encoders
/// use, the check folds away and the copy is one or two stores.
#[inline(always)]
pub(crate) fn fill(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    assert_eq!(dst.len(), src.len());
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(s);
    }
}

/// The 8-byte plain values written as little-endian words (`Out::words`).
pub(crate) trait Word: Copy {
    #[cfg_attr(target_endian = "little", allow(dead_code))] // written whole on little-endian
    fn le_bytes(self) -> [u8; 8];
}

impl Word for i64 {
    fn le_bytes(self) -> [u8; 8] {
        self.to_le_bytes()
    }
}

impl Word for f64 {
    fn le_bytes(self) -> [u8; 8] {
        self.to_le_bytes()
    }
}

pub(crate) trait Sink {
    fn byte(&mut self, b: u8);
    fn array<const N: usize>(&mut self, b: [u8; N]);
    fn bytes(&mut self, b: &[u8]);
    /// Decimal integer.
    fn int(&mut self, v: i64);
    /// Shortest round-trip decimal of a finite float, in ryu's notation.
    fn finite_f64(&mut self, v: f64);
    /// Little-endian float64 copies of `values`.
    fn f64_le(&mut self, values: &[f64]);
    /// Little-endian float64 conversions of `values` (lossy above 2^53).
    fn i64_as_f64_le(&mut self, values: &[i64]);
}

/// Counts the bytes an encoder would write.
pub(crate) struct Counter(pub usize);

impl Sink for Counter {
    #[inline(always)]
    fn byte(&mut self, _: u8) {
        self.0 += 1;
    }
    #[inline(always)]
    fn array<const N: usize>(&mut self, _: [u8; N]) {
        self.0 += N;
    }
    #[inline(always)]
    fn bytes(&mut self, b: &[u8]) {
        self.0 += b.len();
    }
    #[inline(always)]
    fn int(&mut self, v: i64) {
        self.0 += if thirteen_digits(v).is_some() {
            13
        } else {
            int_len(v)
        };
    }
    #[inline(always)]
    fn finite_f64(&mut self, v: f64) {
        self.0 += match Short::new(v) {
            Some(s) => s.len(),
            None => ryu::Buffer::new().format_finite(v).len(),
        };
    }
    fn f64_le(&mut self, values: &[f64]) {
        self.0 += 8 * values.len();
    }
    fn i64_as_f64_le(&mut self, values: &[i64]) {
        self.0 += 8 * values.len();
    }
}

/// A bounds-checked cursor over an output buffer. A write that does not fit is dropped
/// and remembered; [`Out::finish`] then reports it (it cannot happen when the buffer has
/// the size a [`Counter`] measured).
///
/// Invariant: every byte of `buf[..pos]` has been written. Each write stores its bytes
/// at `pos` before moving `pos` past them (never further than it stored), so `pos ==
/// buf.len()` means the whole buffer is initialised.
pub(crate) struct Out<'a> {
    buf: &'a mut [MaybeUninit<u8>],
    pos: usize,
    overflow: bool,
}

impl<'a> Out<'a> {
    /// A cursor over a buffer that may be uninitialised.
    pub(crate) fn uninit(buf: &'a mut [MaybeUninit<u8>]) -> Self {
        Out {
            buf,
            pos: 0,
            overflow: false,
        }
    }

    /// A cursor over an initialised buffer.
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        let len = buf.len();
        // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and the view replaces `buf`
        // for its lifetime. Viewing initialised bytes as possibly uninitialised is sound
        // as long as nothing stores an uninitialised byte through the view: `Out` only
        // ever stores `u8` values (`MaybeUninit::write`, `fill`), so `buf` is still
        // initialised when the borrow ends.
        let buf = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast(), len) };
        Out::uninit(buf)
    }

    /// Check that exactly the whole buffer was written. `Ok` means every byte of it is
    /// initialised (the invariant above, with `pos == buf.len()`).
    pub(crate) fn finish(self) -> Result<()> {
        if self.overflow || self.pos != self.buf.len() {
            return Err(CoreError::Argument(format!(
                "output buffer of {} bytes does not match the encoded size",
                self.buf.len()
            )));
        }
        Ok(())
    }

    /// Write the first `len` bytes of `text`. When all `N` fit, all are stored (one
    /// fixed-size store instead of a variable-length copy) and the cursor moves by `len`:
    /// the tail is scratch that later writes overwrite, or that lies past the end of the
    /// document, which `finish` rejects anyway.
    #[inline(always)]
    fn scratch<const N: usize>(&mut self, text: [u8; N], len: usize) {
        debug_assert!(len <= N);
        match self
            .buf
            .get_mut(self.pos..)
            .and_then(|s| s.first_chunk_mut::<N>())
        {
            Some(d) => {
                fill(d, &text);
                self.pos += len;
            }
            None => self.bytes(&text[..len]),
        }
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Option<&mut [MaybeUninit<u8>]> {
        let end = self.pos.checked_add(n)?;
        let dst = self.buf.get_mut(self.pos..end)?;
        self.pos = end;
        Some(dst)
    }
}

impl Sink for Out<'_> {
    #[inline(always)]
    fn byte(&mut self, b: u8) {
        match self.buf.get_mut(self.pos) {
            Some(d) => {
                d.write(b);
                self.pos += 1;
            }
            None => self.overflow = true,
        }
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self, b: [u8; N]) {
        match self
            .buf
            .get_mut(self.pos..)
            .and_then(|s| s.first_chunk_mut::<N>())
        {
            Some(d) => {
                fill(d, &b);
                self.pos += N;
            }
            None => self.overflow = true,
        }
    }

    #[inline(always)]
    fn bytes(&mut self, b: &[u8]) {
        match self.take(b.len()) {
            Some(d) => fill(d, b),
            None => self.overflow = true,
        }
    }

    #[inline(always)]
    fn int(&mut self, v: i64) {
        if let Some(d) = thirteen_digits(v) {
            self.array(d);
        } else if (0..10).contains(&v) {
            self.byte(b'0' + v as u8);
        } else {
            self.bytes(itoa::Buffer::new().format(v).as_bytes());
        }
    }

    #[inline(always)]
    fn finite_f64(&mut self, v: f64) {
        match Short::new(v) {
            Some(s) if s.int < 100_000_000 => {
                let (text, len) = s.text();
                self.scratch(text, len);
            }
            _ => self.bytes(ryu::Buffer::new().format_finite(v).as_bytes()),
        }
    }

    fn f64_le(&mut self, values: &[f64]) {
        self.words(values);
    }

    fn i64_as_f64_le(&mut self, values: &[i64]) {
        let Some(dst) = self.take(8 * values.len()) else {
            self.overflow = true;
            return;
        };
        for (d, &v) in dst.chunks_exact_mut(8).zip(values) {
            fill(d, &(v as f64).to_le_bytes());
        }
    }
}

impl Out<'_> {
    /// Little-endian copies of `values`.
    pub(crate) fn i64_le(&mut self, values: &[i64]) {
        self.words(values);
    }

    /// Little-endian copies of 8-byte words (`i64`, `f64`).
    fn words<T: Word>(&mut self, values: &[T]) {
        let Some(dst) = self.take(8 * values.len()) else {
            self.overflow = true;
            return;
        };
        #[cfg(target_endian = "little")]
        {
            // SAFETY: a `Word` is 8 bytes without padding (i64, f64), so the slice's memory
            // is a valid `[u8]` view of exactly `8 * len` bytes; on little-endian targets
            // that is the wire format.
            let src =
                unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), dst.len()) };
            fill(dst, src);
        }
        #[cfg(not(target_endian = "little"))]
        for (d, &v) in dst.chunks_exact_mut(8).zip(values) {
            fill(d, &v.le_bytes());
        }
    }

    /// `n` copies of `pattern`.
    pub(crate) fn repeat<const N: usize>(&mut self, pattern: [u8; N], n: usize) {
        let Some(dst) = N.checked_mul(n).and_then(|len| self.take(len)) else {
            self.overflow = true;
            return;
        };
        for d in dst.chunks_exact_mut(N) {
            fill(d, &pattern);
        }
    }
}

/// Run a two-pass encoder into a new vector (not zeroed first).
///
/// # Safety
///
/// `write` must return `Ok` only when it has written every byte of the buffer it is
/// given, as each encoder's `encode_into` does (it ends with [`Out::finish`] or the
/// same position check).
pub(crate) unsafe fn to_vec(
    len: impl FnOnce() -> Result<usize>,
    write: impl FnOnce(&mut [MaybeUninit<u8>]) -> Result<()>,
) -> Result<Vec<u8>> {
    let n = len()?;
    let mut out = Vec::with_capacity(n);
    write(&mut out.spare_capacity_mut()[..n])?;
    // SAFETY: the capacity is at least `n`, and `write` returned `Ok`, so all of the
    // first `n` bytes are initialised (the encoders' contract, see above).
    unsafe { out.set_len(n) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_writes_and_checks_size() {
        let mut buf = [0u8; 8];
        let mut o = Out::new(&mut buf);
        o.byte(b'[');
        o.array(*b"ab");
        o.bytes(b"cd");
        o.int(-5);
        o.byte(b']');
        o.finish().unwrap();
        assert_eq!(&buf, b"[abcd-5]");

        let mut buf = [0u8; 3];
        let mut o = Out::new(&mut buf);
        o.array(*b"abcd");
        assert!(o.finish().is_err());
        let mut o = Out::new(&mut buf);
        o.byte(b'a');
        assert!(o.finish().is_err());
    }

    #[test]
    fn bins() {
        let mut c = Counter(0);
        c.f64_le(&[1.0, 2.0]);
        c.i64_as_f64_le(&[3]);
        assert_eq!(c.0, 24);
        let mut buf = vec![0u8; 24];
        let mut o = Out::new(&mut buf);
        o.f64_le(&[1.0, -0.0]);
        o.i64_as_f64_le(&[-3]);
        o.finish().unwrap();
        let mut expect = Vec::new();
        for v in [1.0f64, -0.0, -3.0] {
            expect.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(buf, expect);
    }
}
