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
//! * Encoders never fail on a value that can be built.
//! * Reading a command needs no matching on nested enums:
//!
//! ```
//! use rtmp_amf::{decode_amf0, encode_amf0_values, Amf0Value};
//!
//! let connect = encode_amf0_values(&[
//!     "connect".into(),
//!     1.0.into(),
//!     Amf0Value::object([("app", "live".into()), ("objectEncoding", 0.0.into())]),
//! ]);
//! let values = decode_amf0(&connect).unwrap();
//! assert_eq!(values[0].as_str(), Some("connect"));
//! assert_eq!(values[2].get("app").and_then(Amf0Value::as_str), Some("live"));
//! ```
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
pub use error::AmfError;

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
            max_depth: 64,
            max_expansion: 4,
        }
    }
}
