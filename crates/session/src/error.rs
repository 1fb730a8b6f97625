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
    Handshake(#[from] HandshakeError),
    #[error("chunk stream broken: {0}")]
    Chunk(#[from] ChunkError),
    #[error("undecodable AMF in a {context}: {source}")]
    Amf {
        context: &'static str,
        source: AmfError,
    },
    #[error("handshake did not complete within {0:?}")]
    HandshakeTimeout(std::time::Duration),
    #[error("peer silent for {0:?}")]
    IdleTimeout(std::time::Duration),
    #[error("session already closed")]
    Closed,
}
