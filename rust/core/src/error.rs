//! The one error type of the core.
//!
//! The binding maps each variant to one Python exception (`rust/py/src/errors.rs`):
//! [`CoreError::Page`] to `PageParseError`, [`CoreError::Block`] to `BlockDecodeError`
//! (both subclasses of `ValueError`), every other variant to `ValueError`. So a caller
//! can tell damaged data from bad arguments by the exception class alone.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CoreError {
    /// Malformed origin page: what was wrong and the byte offset where it was found.
    /// Every failure of [`crate::page::parse_page`] is this variant.
    #[error("invalid page at byte {offset}: {message}")]
    Page { offset: usize, message: String },
    /// Bytes that are not a readable cache block (bad magic or version, truncation,
    /// checksum or zstd failure, inconsistent lengths...). Every failure of
    /// [`crate::block::decode_block`] is this variant.
    #[error("corrupt block: {0}")]
    Block(String),
    /// Arrays that must have the same length do not.
    #[error("length mismatch: {0}")]
    Length(String),
    /// An argument outside its domain (bucket width, output size, unsorted input...).
    #[error("invalid argument: {0}")]
    Argument(String),
    /// A value that cannot be encoded (non-finite timestamp, nesting too deep...).
    #[error("cannot encode: {0}")]
    Encode(String),
}

pub type Result<T> = std::result::Result<T, CoreError>;
