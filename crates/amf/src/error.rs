//! The one error type of the crate: what was wrong with the bytes, and where.

/// Why a buffer could not be decoded as AMF. Encoding never fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmfError {
    /// The input ended in the middle of a value.
    #[error("input ends in the middle of a value: {needed} more bytes needed at offset {offset}")]
    UnexpectedEof { offset: usize, needed: usize },
    /// A type marker this decoder does not know.
    #[error("unknown type marker 0x{marker:02x} at offset {offset}")]
    UnknownMarker { marker: u8, offset: usize },
    /// A marker that is known but not allowed here (object end outside an object, AMF0 record set).
    #[error("type marker 0x{marker:02x} is not allowed at offset {offset}")]
    UnexpectedMarker { marker: u8, offset: usize },
    /// Nesting deeper than [`crate::DecodeOptions::max_depth`].
    #[error("values nested deeper than {max_depth} levels")]
    DepthExceeded { max_depth: usize },
    /// A string, object or trait reference to an index not (yet) in the reference table.
    #[error("{table} reference {index} is out of range (table holds {len})")]
    BadReference {
        table: &'static str,
        index: usize,
        len: usize,
    },
    /// A reference to an object that is still being decoded (a cycle).
    #[error("object reference {index} points to an object that is still being decoded (a cycle)")]
    CircularReference { index: usize },
    /// Text that is not UTF-8.
    #[error("string at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { offset: usize },
    /// A count or length that cannot fit in the bytes that remain.
    #[error("{what} claims {claimed} items but only {available} bytes remain at offset {offset}")]
    LengthExceedsInput {
        what: &'static str,
        claimed: u64,
        available: usize,
        offset: usize,
    },
    /// Decoding would expand references into more than a small multiple of the input.
    #[error("decoded value would exceed the budget of {budget} units (reference amplification)")]
    TooLarge { budget: usize },
    /// An AMF3 externalizable object: its body format is known only to its class.
    #[error("externalizable AMF3 object of class {class_name:?} cannot be decoded")]
    Externalizable { class_name: String },
}
