//! The chunk stream encoder: picks the least header per chunk stream and splits messages into chunks.

use bytes::{BufMut, Bytes, BytesMut};

use crate::header::{put_basic_header, put_u24, timestamp_field, EXTENDED_TIMESTAMP_MARK};
use crate::{ChunkError, Message, SharedMessage, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE};

/// What the receiver will remember about a chunk stream after our last header on it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SentHeader {
    pub(crate) timestamp: u32,
    pub(crate) timestamp_field: u32,
    pub(crate) extended: bool,
    pub(crate) length: u32,
    pub(crate) type_id: u8,
    pub(crate) stream_id: u32,
}

/// Encodes messages into chunks for one connection's outgoing direction.
#[derive(Debug)]
pub struct ChunkEncoder {
    chunk_size: u32,
    /// What the receiver remembers per chunk stream; a connection uses a handful, so a vector beats a map.
    streams: Vec<(u32, SentHeader)>,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkEncoder {
    /// An encoder at the default chunk size (128) with no header state.
    pub fn new() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: Vec::new(),
        }
    }

    /// The chunk size in use for outgoing chunks.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Changes the outgoing chunk size. The caller sends the Set Chunk Size message (see
    /// [`crate::RtmpMessage::SetChunkSize`]) before any chunk encoded with the new size.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(ChunkError::InvalidChunkSize { size });
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Appends `message` as chunks on chunk stream `csid` (2..=65599) with the least header it may use:
    /// fmt 0 for the first message of a chunk stream, a new message stream id or a timestamp going
    /// backwards; fmt 3 when only the delta repeats; fmt 2 when only the delta changes; fmt 1 otherwise.
    pub fn encode(&mut self, csid: u32, message: &Message, out: &mut BytesMut) {
        let length = message.payload.len() as u32;
        let header = match self.sent(csid) {
            Some(prev)
                if prev.stream_id == message.stream_id && message.timestamp >= prev.timestamp =>
            {
                let delta = message.timestamp - prev.timestamp;
                let same_shape = prev.length == length && prev.type_id == message.type_id;
                if same_shape && delta == prev.timestamp_field {
                    HeaderChoice::Fmt3 {
                        delta,
                        extended: prev.extended,
                    }
                } else if same_shape {
                    HeaderChoice::Fmt2 { delta }
                } else {
                    HeaderChoice::Fmt1 { delta }
                }
            }
            _ => HeaderChoice::Fmt0,
        };
        let sent = write_message(csid, message, header, self.chunk_size, out);
        self.remember(csid, sent);
    }

    fn sent(&self, csid: u32) -> Option<&SentHeader> {
        self.streams
            .iter()
            .find_map(|(id, sent)| (*id == csid).then_some(sent))
    }

    fn remember(&mut self, csid: u32, sent: SentHeader) {
        match self.streams.iter_mut().find(|(id, _)| *id == csid) {
            Some(entry) => entry.1 = sent,
            None => self.streams.push((csid, sent)),
        }
    }

    /// Queues a [`SharedMessage`] for this connection without copying its payload: the shared bytes as they
    /// are, or, for a different message stream id, a patched copy of the first header followed by a slice
    /// of the rest. Falls back to a normal encoding when the chunk sizes differ.
    pub fn encode_shared(&mut self, shared: &SharedMessage, stream_id: u32, out: &mut Vec<Bytes>) {
        if shared.chunk_size() != self.chunk_size {
            let mut message = shared.message();
            message.stream_id = stream_id;
            let mut buf = BytesMut::with_capacity(message.payload.len() + 64);
            self.encode(shared.csid(), &message, &mut buf);
            out.push(buf.freeze());
            return;
        }
        shared.push_for_stream(stream_id, out);
        self.remember(shared.csid(), shared.sent_header(stream_id));
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum HeaderChoice {
    Fmt0,
    Fmt1 {
        delta: u32,
    },
    Fmt2 {
        delta: u32,
    },
    /// A new message repeating the previous delta (which is the receiver's remembered timestamp field).
    Fmt3 {
        delta: u32,
        extended: bool,
    },
}

/// Writes a whole message; returns what the receiver remembers afterwards.
pub(crate) fn write_message(
    csid: u32,
    message: &Message,
    header: HeaderChoice,
    chunk_size: u32,
    out: &mut BytesMut,
) -> SentHeader {
    let length = message.payload.len() as u32;
    let (fmt, field, extended) = match header {
        HeaderChoice::Fmt0 => (
            0,
            message.timestamp,
            message.timestamp >= EXTENDED_TIMESTAMP_MARK,
        ),
        HeaderChoice::Fmt1 { delta } => (1, delta, delta >= EXTENDED_TIMESTAMP_MARK),
        HeaderChoice::Fmt2 { delta } => (2, delta, delta >= EXTENDED_TIMESTAMP_MARK),
        HeaderChoice::Fmt3 { delta, extended } => (3, delta, extended),
    };
    let chunk_size = chunk_size.max(1) as usize;
    let chunks = message.payload.len().div_ceil(chunk_size).max(1);
    out.reserve(message.payload.len() + 18 + (chunks - 1) * 8);
    put_basic_header(fmt, csid, out);
    if fmt < 3 {
        put_u24(timestamp_field(field), out);
    }
    if fmt < 2 {
        put_u24(length, out);
        out.put_u8(message.type_id);
    }
    if fmt == 0 {
        out.put_u32_le(message.stream_id);
    }
    // Every chunk after an extended header repeats the extended field (PROTOCOL.md 5.3).
    let put_extended = |out: &mut BytesMut| {
        if extended {
            out.put_u32(field);
        }
    };
    put_extended(out);
    for (index, piece) in message.payload.chunks(chunk_size).enumerate() {
        if index > 0 {
            put_basic_header(3, csid, out);
            put_extended(out);
        }
        out.put_slice(piece);
    }
    SentHeader {
        timestamp: message.timestamp,
        timestamp_field: field,
        extended,
        length,
        type_id: message.type_id,
        stream_id: message.stream_id,
    }
}
