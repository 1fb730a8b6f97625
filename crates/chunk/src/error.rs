//! The one error type of the chunk layer.

/// Why the chunk stream or a message could not be decoded. After a `ChunkDecoder` returns one, the
/// connection should be closed: the stream has lost its framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// A message header announced more than the configured maximum message length.
    #[error("message of {length} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge { length: u32, limit: u32 },
    /// More chunk streams in flight than the configured maximum.
    #[error("more than {limit} chunk streams in use")]
    TooManyChunkStreams { limit: usize },
    /// More bytes buffered (partial messages plus unparsed input) than the configured maximum.
    #[error("{buffered} bytes buffered exceeds the limit of {limit} bytes")]
    BufferLimitExceeded { buffered: usize, limit: usize },
    /// A fmt 1, 2 or 3 chunk on a chunk stream that never had a fmt 0 header.
    #[error("chunk stream {csid} starts with a fmt {fmt} header, which needs an earlier header")]
    MissingPreviousHeader { csid: u32, fmt: u8 },
    /// Set Chunk Size outside 1..=0x7FFFFFFF.
    #[error("invalid chunk size {size}")]
    InvalidChunkSize { size: u32 },
    /// A message body too short (or malformed) for its type.
    #[error("{kind} message is malformed: {reason}")]
    MalformedMessage {
        kind: &'static str,
        reason: &'static str,
    },
}
