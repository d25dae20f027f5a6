//! The one error type of the core; the binding maps every variant to `ValueError`.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CoreError {
    /// Malformed origin page: what was wrong and the byte offset where it was found.
    #[error("invalid page at byte {offset}: {message}")]
    Page { offset: usize, message: String },
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
