//! The typed errors of reading and writing FLV.

use thiserror::Error;

/// Why FLV bytes could not be read or a tag could not be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FlvError {
    /// The input does not start with the `FLV` signature.
    #[error("not an FLV file (no FLV signature)")]
    NotFlv,
    /// The FLV header names a version other than 1.
    #[error("unsupported FLV version {0}")]
    UnsupportedVersion(u8),
    /// The header's data offset points inside the header or beyond the reader's cap.
    #[error("FLV data offset {0} is invalid")]
    BadDataOffset(u32),
    /// A tag claims a payload larger than the reader accepts.
    #[error("FLV tag of {size} bytes exceeds the {max}-byte cap")]
    TagTooLarge {
        /// The size the tag header claims.
        size: u32,
        /// The reader's cap.
        max: u32,
    },
    /// A PreviousTagSize field does not match the tag before it.
    #[error("PreviousTagSize {found} does not match the {expected} bytes of the tag before it")]
    PreviousTagSizeMismatch {
        /// The size of the previous tag (header and payload), or 0 before the first tag.
        expected: u32,
        /// The value in the file.
        found: u32,
    },
    /// The input ended inside the header or a tag.
    #[error("FLV input truncated: {missing} more bytes were expected")]
    Truncated {
        /// Bytes still missing to complete the header or tag in progress.
        missing: usize,
    },
    /// A payload over FLV's 24-bit size field was given to the writer.
    #[error("a payload of {0} bytes does not fit an FLV tag (max 16777215)")]
    PayloadTooLarge(usize),
    /// Metadata could not be encoded as AMF0.
    #[error("onMetaData could not be encoded: {0}")]
    Metadata(String),
}
