//! The crate's two error types: [`AmfError`] says what was wrong with bytes being decoded, and where;
//! [`EncodeError`] says why a value cannot be written.

/// Why a buffer could not be decoded as AMF.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmfError {
    /// The input ended in the middle of a value.
    #[error("input ends in the middle of a value: {needed} more bytes needed at offset {offset}")]
    UnexpectedEof {
        /// Where the missing bytes were expected.
        offset: usize,
        /// How many more bytes the value needed.
        needed: usize,
    },
    /// A type marker this decoder does not know.
    #[error("unknown type marker 0x{marker:02x} at offset {offset}")]
    UnknownMarker {
        /// The marker byte.
        marker: u8,
        /// Where it was read.
        offset: usize,
    },
    /// A marker that is known but not allowed here (object end outside an object, AMF0 record set).
    #[error("type marker 0x{marker:02x} is not allowed at offset {offset}")]
    UnexpectedMarker {
        /// The marker byte.
        marker: u8,
        /// Where it was read.
        offset: usize,
    },
    /// Nesting deeper than [`crate::DecodeOptions::max_depth`].
    #[error("values nested deeper than {max_depth} levels")]
    DepthExceeded {
        /// The limit in force.
        max_depth: usize,
    },
    /// A string, object or trait reference to an index not (yet) in the reference table.
    #[error("{table} reference {index} is out of range (table holds {len})")]
    BadReference {
        /// Which table: `"string"`, `"object"` or `"trait"`.
        table: &'static str,
        /// The index the input referred to.
        index: usize,
        /// How many entries the table held.
        len: usize,
    },
    /// A reference to an object that is still being decoded (a cycle).
    #[error("object reference {index} points to an object that is still being decoded (a cycle)")]
    CircularReference {
        /// The object table index referred to.
        index: usize,
    },
    /// Text that is not UTF-8.
    #[error("string at offset {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Where the string's bytes start.
        offset: usize,
    },
    /// A count or length that cannot fit in the bytes that remain.
    #[error("{what} claims {claimed} items but only {available} bytes remain at offset {offset}")]
    LengthExceedsInput {
        /// What was being counted (`"strict array"`, `"vector"`, ...).
        what: &'static str,
        /// The count the input claimed.
        claimed: u64,
        /// Bytes left in the input.
        available: usize,
        /// Where the count was read.
        offset: usize,
    },
    /// Decoding would expand references into more than a small multiple of the input.
    #[error("decoded value would exceed the budget of {budget} units (reference amplification)")]
    TooLarge {
        /// The budget, in value units.
        budget: usize,
    },
    /// An AMF3 externalizable object: its body format is known only to its class.
    #[error("externalizable AMF3 object of class {class_name:?} cannot be decoded")]
    Externalizable {
        /// The class the traits name.
        class_name: String,
    },
}

/// Why a value cannot be encoded: the value model can hold it, but the wire format cannot express it, or
/// the bytes would read back as a different value. Encoders check the whole value before writing, so on
/// an error nothing has been appended to the output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// An AMF3 associative-array key or dynamic member name that is empty: on the wire the empty string
    /// ends the associative part or the dynamic members, so the value would read back truncated.
    #[error("AMF3 {what} has an empty key, which the format reserves as its terminator")]
    EmptyKey {
        /// `"array"` or `"object"`.
        what: &'static str,
    },
    /// A string longer than its length field can express (65535 bytes for AMF0 keys and class names,
    /// 2^28 - 1 bytes for AMF3 strings, 2^32 - 1 for AMF0 long strings).
    #[error("{what} of {len} bytes is longer than the {max} bytes its length field can express")]
    StringTooLong {
        /// Which kind of string (`"AMF0 object key"`, `"AMF0 class name"`, `"AMF3 string"`, ...).
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The longest the format allows.
        max: usize,
    },
    /// A collection with more items than its count field can express.
    #[error("{what} of {count} items is more than the {max} its count field can express")]
    TooManyItems {
        /// Which kind of collection.
        what: &'static str,
        /// Its item count.
        count: usize,
        /// The most the format allows.
        max: usize,
    },
    /// An AMF3 object whose traits are not dynamic but which holds dynamic members: the traits say no
    /// dynamic members follow, so they cannot be written.
    #[error("AMF3 object is not dynamic but has dynamic members")]
    DynamicMembersOnSealedObject,
    /// Nesting deeper than this crate's decoder accepts by default ([`crate::DecodeOptions::max_depth`]),
    /// so the crate could not read its own output.
    #[error("value nested deeper than {max_depth} levels, which the decoder refuses")]
    DepthExceeded {
        /// The limit: the default [`crate::DecodeOptions::max_depth`].
        max_depth: usize,
    },
}
