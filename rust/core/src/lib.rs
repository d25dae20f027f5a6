//! Pure kernels of acechart.
//!
//! Everything here takes slices and returns owned vectors or `Result<_, CoreError>`;
//! nothing knows about Python. The binding crate (`rust/py`) converts arrays and errors.

pub mod aggblock;
pub mod aggregate;
pub mod block;
pub mod downsample;
pub mod encode;
pub mod error;
mod frame;
pub mod meter;
pub mod page;
pub mod sort;
pub mod thumbnail;
pub mod time;
pub mod value;

pub use error::CoreError;
