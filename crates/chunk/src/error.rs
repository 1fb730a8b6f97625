//! The one error type of the chunk layer.

/// Why the chunk stream or a message could not be decoded. After a `ChunkDecoder` returns one, the
/// connection should be closed: the stream has lost its framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// A message header announced more than the configured maximum message length.
    #[error("message of {length} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The announced length.
        length: u32,
        /// The configured maximum.
        limit: u32,
    },
    /// More chunk streams in flight than the configured maximum.
    #[error("more than {limit} chunk streams in use")]
    TooManyChunkStreams {
        /// The configured maximum.
        limit: usize,
    },
    /// More bytes buffered (partial messages plus unparsed input) than the configured maximum.
    #[error("{buffered} bytes buffered exceeds the limit of {limit} bytes")]
    BufferLimitExceeded {
        /// Bytes that would be buffered.
        buffered: usize,
        /// The configured maximum.
        limit: usize,
    },
    /// A fmt 1, 2 or 3 chunk on a chunk stream that never had a fmt 0 header.
    #[error("chunk stream {csid} starts with a fmt {fmt} header, which needs an earlier header")]
    MissingPreviousHeader {
        /// The chunk stream id.
        csid: u32,
        /// The header format (1, 2 or 3).
        fmt: u8,
    },
    /// Set Chunk Size outside 1..=0x7FFFFFFF.
    #[error("invalid chunk size {size}")]
    InvalidChunkSize {
        /// The size received.
        size: u32,
    },
    /// A message body too short (or malformed) for its type.
    #[error("{kind} message is malformed: {reason}")]
    MalformedMessage {
        /// The message type.
        kind: &'static str,
        /// What was wrong with it.
        reason: &'static str,
    },
}
