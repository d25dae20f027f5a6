//! The metadata value: a small JSON-like tree the binding builds from a Python dict.
//!
//! Metadata is a handful of values per response, so it is owned and simple; the
//! samples never pass through it.

use crate::error::{CoreError, Result};

/// Deepest nesting of containers accepted in metadata; the metadata map itself is level 1.
pub const MAX_DEPTH: usize = 64;

/// One metadata value. Maps keep their insertion order (keys are emitted as given).
#[derive(Debug, Clone, PartialEq)]
pub enum Meta {
    Null,
    Bool(bool),
    /// Any integer that fits in `i64`.
    Int(i64),
    /// Integers above `i64::MAX` (up to `u64::MAX`).
    UInt(u64),
    /// Non-finite floats are written as `null` (JSON) or kept (MessagePack, except NaN -> nil).
    Float(f64),
    Str(String),
    List(Vec<Meta>),
    Map(Vec<(String, Meta)>),
}

impl Meta {
    /// Nesting depth of containers (a scalar has depth 0, `[]` and `{}` have depth 1).
    pub fn depth(&self) -> usize {
        match self {
            Meta::List(items) => 1 + items.iter().map(Meta::depth).max().unwrap_or(0),
            Meta::Map(items) => 1 + items.iter().map(|(_, v)| v.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// Reject trees nested deeper than [`MAX_DEPTH`] before any recursive encoder walks them.
    pub(crate) fn check_depth(&self) -> Result<()> {
        // Walk iteratively-bounded: stop descending as soon as the limit is crossed, so a
        // pathological tree cannot blow the stack here either.
        fn walk(v: &Meta, level: usize) -> bool {
            match v {
                Meta::List(items) => level < MAX_DEPTH && items.iter().all(|x| walk(x, level + 1)),
                Meta::Map(items) => {
                    level < MAX_DEPTH && items.iter().all(|(_, x)| walk(x, level + 1))
                }
                _ => true,
            }
        }
        if walk(self, 0) {
            Ok(())
        } else {
            Err(CoreError::Encode(format!(
                "metadata nested deeper than {MAX_DEPTH} levels"
            )))
        }
    }
}

impl From<&str> for Meta {
    fn from(s: &str) -> Self {
        Meta::Str(s.to_owned())
    }
}

impl From<i64> for Meta {
    fn from(v: i64) -> Self {
        Meta::Int(v)
    }
}

impl From<f64> for Meta {
    fn from(v: f64) -> Self {
        Meta::Float(v)
    }
}

impl From<bool> for Meta {
    fn from(v: bool) -> Self {
        Meta::Bool(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> Meta {
        let mut v = Meta::Int(1);
        for _ in 0..levels {
            v = Meta::List(vec![v]);
        }
        v
    }

    #[test]
    fn depth_counts_containers() {
        assert_eq!(Meta::Null.depth(), 0);
        assert_eq!(Meta::List(vec![]).depth(), 1);
        assert_eq!(Meta::Map(vec![("a".into(), nested(2))]).depth(), 3);
    }

    #[test]
    fn depth_limit() {
        assert!(nested(MAX_DEPTH).check_depth().is_ok());
        let err = nested(MAX_DEPTH + 1).check_depth().unwrap_err();
        assert!(err.to_string().contains("deeper than 64"), "{err}");
    }
}
