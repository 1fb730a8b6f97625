//! The session's error type: what ended a session.

use rtmp_amf::AmfError;
use rtmp_chunk::ChunkError;
use rtmp_handshake::HandshakeError;

/// Why a session cannot go on. Protocol-level refusals (a stream name taken, an unknown command) are
/// answers on the wire (`_error`, `onStatus`), never errors here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error("handshake failed: {0}")]
    /// The handshake failed.
    Handshake(#[from] HandshakeError),
    #[error("chunk stream broken: {0}")]
    /// The chunk stream is broken (a malformed or oversized chunk).
    Chunk(#[from] ChunkError),
    #[error("undecodable AMF in a {context}: {source}")]
    /// A message that must be AMF could not be decoded.
    Amf {
        /// What was being decoded.
        context: &'static str,
        /// The AMF error.
        source: AmfError,
    },
    #[error("handshake did not complete within {0:?}")]
    /// The handshake did not complete within the configured time.
    HandshakeTimeout(std::time::Duration),
    #[error("peer silent for {0:?}")]
    /// The peer sent nothing for the configured idle time.
    IdleTimeout(std::time::Duration),
    #[error("session already closed")]
    /// The session was closed before this call.
    Closed,
}
