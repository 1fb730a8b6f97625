//! The RTMP chunk stream: bytes to messages and back, sans-IO.
//!
//! * [`ChunkDecoder`]: push bytes in, pull complete [`Message`]s out. It keeps the per-chunk-stream header
//!   state (all four header formats, extended timestamps including their fmt 3 repetition), reassembles
//!   interleaved chunk streams separately, applies the peer's Set Chunk Size and Abort itself, counts bytes
//!   for acknowledgements, and enforces [`DecoderConfig`] limits with typed errors. Its output does not depend
//!   on how the input was split into reads.
//! * [`ChunkEncoder`]: a message and a chunk stream id in, chunks out, with the least header it may use.
//! * [`SharedMessage`]: a message chunk-encoded once (fmt 0 first chunk) whose bytes every receiver with the
//!   same chunk size sends as they are: the fan-out primitive of the server.
//! * [`RtmpMessage`]: the typed view of a message (protocol control, user control, media, data, commands,
//!   shared objects, aggregates; unknown types kept raw). Command and data payloads stay `Bytes`; decoding
//!   their AMF is the session's job.
//!
//! No async runtime here; the optional `tokio-codec` feature adds a `tokio_util::codec` adapter.
//!
//! # Example
//!
//! A message chunked at the default 128-byte chunk size and read back, fed to the decoder in pieces as
//! a socket would deliver them:
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use rtmp_chunk::{csid, ChunkDecoder, ChunkEncoder, RtmpMessage};
//!
//! let video = RtmpMessage::Video(Bytes::from(vec![0x17; 300])).into_message(40, 1);
//! let mut wire = BytesMut::new();
//! ChunkEncoder::new().encode(csid::VIDEO, &video, &mut wire);
//! assert_eq!(wire.len(), 12 + 300 + 2); // a fmt 0 header, then two 1-byte fmt 3 headers
//!
//! let mut decoder = ChunkDecoder::default();
//! let mut received = Vec::new();
//! for piece in wire.chunks(100) {
//!     decoder.push(piece);
//!     while let Some(message) = decoder.next_message()? {
//!         received.push(message);
//!     }
//! }
//! assert_eq!(received, [video.clone()]);
//! assert!(matches!(RtmpMessage::decode(&received[0])?, RtmpMessage::Video(body) if body.len() == 300));
//! # Ok::<(), rtmp_chunk::ChunkError>(())
//! ```
//!
//! # Features
//!
//! * `tokio-codec` (off by default): `ChunkCodec`, a `tokio_util::codec::{Decoder, Encoder}` for
//!   `Framed`. Without it the crate depends on `bytes` and `thiserror` only.
//!
//! `examples/echo.rs` runs a chunk-stream echo over a blocking `std::net::TcpStream`.
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

pub mod aggregate;
#[cfg(feature = "tokio-codec")]
mod codec;
mod decode;
mod encode;
mod error;
mod header;
mod message;
mod shared;

#[cfg(feature = "tokio-codec")]
pub use codec::{ChunkCodec, CodecError};
pub use decode::{ChunkDecoder, DecoderConfig};
pub use encode::ChunkEncoder;
pub use error::ChunkError;
pub use message::{AmfEncoding, LimitType, Message, RtmpMessage, UserControlEvent};
pub use shared::SharedMessage;

/// The chunk size both directions start with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// The largest chunk size the protocol allows (bit 31 must be clear).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;

/// Chunk stream ids rtmpx writes on (any id 2..=65599 is accepted on input).
pub mod csid {
    /// Protocol control and user control messages (the only id the protocol fixes).
    pub const PROTOCOL_CONTROL: u32 = 2;
    /// Connection-level commands (`connect`, `createStream`, replies).
    pub const COMMAND: u32 = 3;
    /// Audio.
    pub const AUDIO: u32 = 4;
    /// Data messages (metadata).
    pub const DATA: u32 = 5;
    /// Video.
    pub const VIDEO: u32 = 6;
    /// Stream-level commands (`onStatus`, `play`, `publish`), as FFmpeg uses it.
    pub const STREAM_COMMAND: u32 = 8;
}

/// RTMP message type ids.
pub mod type_id {
    /// Set Chunk Size.
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort.
    pub const ABORT: u8 = 2;
    /// Acknowledgement.
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User Control.
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size.
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth.
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio.
    pub const AUDIO: u8 = 8;
    /// Video.
    pub const VIDEO: u8 = 9;
    /// Data, AMF3 framing.
    pub const DATA_AMF3: u8 = 15;
    /// Shared object, AMF3 framing.
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// Command, AMF3 framing.
    pub const COMMAND_AMF3: u8 = 17;
    /// Data, AMF0.
    pub const DATA_AMF0: u8 = 18;
    /// Shared object, AMF0.
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// Command, AMF0.
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate.
    pub const AGGREGATE: u8 = 22;
}

/// The README examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
