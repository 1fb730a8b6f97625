//! AMF0 and AMF3, the Action Message Formats RTMP uses for commands, metadata and shared objects.
//!
//! Sans-IO and runtime-free: decoders read from `&[u8]`, encoders append to a `BytesMut`.
//!
//! * [`Amf0Value`] / [`Amf3Value`] are the value models; AMF0 objects keep their properties in wire order.
//! * Decoders take untrusted input: every length is checked against the bytes present before anything is
//!   allocated, nesting is capped ([`DecodeOptions::max_depth`]), reference indexes are bounds-checked, and
//!   AMF3 references (which are resolved into values) are charged against a budget proportional to the
//!   input ([`DecodeOptions::max_expansion`]), so no input makes the decoder allocate more than a small
//!   multiple of its own size. A reference to an object still being decoded (a cycle) is an error.
//! * Encoders refuse, with a typed [`EncodeError`] and before writing anything, the values the model can
//!   hold but the wire cannot carry faithfully: AMF3 array keys and dynamic member names that are empty
//!   (the empty string is the terminator), dynamic members on non-dynamic AMF3 traits, AMF0 keys and class
//!   names over 65535 bytes, strings over their length field, and nesting deeper than the decoder's default [`DecodeOptions::max_depth`]. What the
//!   crate writes, it reads back.
//! * Reading a command needs no matching on nested enums:
//!
//! ```
//! use rtmp_amf::{decode_amf0, encode_amf0_values, Amf0Value};
//!
//! let connect = encode_amf0_values(&[
//!     "connect".into(),
//!     1.0.into(),
//!     Amf0Value::object([("app", "live".into()), ("objectEncoding", 0.0.into())]),
//! ])?;
//! let values = decode_amf0(&connect)?;
//! assert_eq!(values[0].as_str(), Some("connect"));
//! assert_eq!(values[2].get("app").and_then(Amf0Value::as_str), Some("live"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # AMF3 inside AMF0: one reference context per AVM+ value
//!
//! An AMF0 body switches to AMF3 for one value at each AVM+ marker (`0x11`). The specifications leave
//! open whether AMF3 reference tables (strings, objects, traits) start fresh at each marker or last for
//! the whole message. Readers that start fresh (as this crate always has) and writers that keep one set
//! per message (Py3AMF, whose second AVM+ value may refer to strings, traits or objects of the first)
//! disagree. The crate meets both conventions:
//!
//! * **Encoding** writes every AVM+ value self-contained: its references point only into itself, so a
//!   reader of either convention reads the same values.
//! * **Decoding** reads each AVM+ value with fresh tables first. When a reference in it is out of range
//!   of a fresh table, that value is decoded again with one context shared by all the message's AVM+
//!   values so far (earlier values are replayed into it), which is how Py3AMF output reads.
//!
//! The fallback cannot tell the conventions apart when every reference of a later value is in range of
//! its own fresh tables (say it defines a string, then refers to index 0 meaning the first value's
//! string): such bytes read as self-contained, the convention this crate writes. Output whose later
//! values refer back to earlier entries before defining their own reads as the shared convention meant.
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod access;
pub mod amf0;
pub mod amf3;
mod error;
mod reader;

pub use amf0::{decode_amf0, encode_amf0, encode_amf0_values, Amf0Decoder, Amf0Value};
pub use amf3::{decode_amf3, encode_amf3, Amf3Decoder, Amf3Encoder, Amf3Object, Amf3Value};
pub use error::{AmfError, EncodeError};

/// The default [`DecodeOptions::max_depth`], which encoders also enforce so the crate reads its own output.
pub(crate) const DEFAULT_MAX_DEPTH: usize = 64;

/// Limits that protect a decoder from hostile input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Deepest nesting of objects and arrays accepted (default 64).
    pub max_depth: usize,
    /// How many value units per input byte AMF3 reference resolution may produce (default 4). Inline values
    /// cost at most one unit per byte, so only inputs that repeat references to large values hit it.
    pub max_expansion: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_depth: DEFAULT_MAX_DEPTH,
            max_expansion: 4,
        }
    }
}

/// The README examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
