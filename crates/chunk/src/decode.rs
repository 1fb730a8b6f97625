//! The chunk stream decoder: per-chunk-stream header state and reassembly, limits, acknowledgement
//! accounting.

use std::collections::HashMap;

use bytes::{Buf, BytesMut};

use crate::header::EXTENDED_TIMESTAMP_MARK;
use crate::{type_id, ChunkError, Message, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE};

/// Limits that keep a hostile or broken peer from exhausting memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Largest message accepted (default 16 MiB).
    pub max_message_len: u32,
    /// Most chunk streams one connection may use (default 64).
    pub max_chunk_streams: usize,
    /// Most bytes held at once: unparsed input plus partially assembled messages (default 64 MiB).
    pub max_buffered: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            max_message_len: 16 * 1024 * 1024,
            max_chunk_streams: 64,
            max_buffered: 64 * 1024 * 1024,
        }
    }
}

/// What the receiver remembers about one chunk stream.
#[derive(Debug, Default)]
struct ChunkStream {
    /// Absolute timestamp of the current (or last) message.
    timestamp: u32,
    /// Raw value of the last fmt 0/1/2 timestamp field (the extended value when it was extended).
    timestamp_field: u32,
    /// Whether that header carried an extended timestamp, so fmt 3 chunks repeat it.
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The message being assembled, if one is in progress.
    partial: Option<BytesMut>,
}

/// A parsed chunk header, before anything is consumed.
struct ChunkHeader {
    csid: u32,
    header_len: usize,
    payload_len: usize,
    starts_message: bool,
    timestamp: u32,
    timestamp_field: u32,
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

/// Push bytes in, pull messages out. See the crate documentation.
#[derive(Debug)]
pub struct ChunkDecoder {
    config: DecoderConfig,
    input: BytesMut,
    chunk_size: u32,
    streams: HashMap<u32, ChunkStream>,
    partial_bytes: usize,
    bytes_received: u64,
    ack_window: u32,
    last_ack: u64,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        Self::new(DecoderConfig::default())
    }
}

impl ChunkDecoder {
    /// A decoder with the given limits, at the default chunk size.
    pub fn new(config: DecoderConfig) -> Self {
        Self {
            config,
            input: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
            partial_bytes: 0,
            bytes_received: 0,
            ack_window: 0,
            last_ack: 0,
        }
    }

    /// Appends received bytes. Nothing is parsed until [`ChunkDecoder::next_message`].
    pub fn push(&mut self, data: &[u8]) {
        self.bytes_received += data.len() as u64;
        self.input.extend_from_slice(data);
    }

    /// The incoming chunk size (128 until the peer sends Set Chunk Size).
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Sets the incoming chunk size by hand (the decoder already applies the peer's Set Chunk Size).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(ChunkError::InvalidChunkSize { size });
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Total bytes pushed so far (including any handshake bytes the caller chose to push).
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Bytes pushed but not yet parsed.
    pub fn buffered(&self) -> usize {
        self.input.len() + self.partial_bytes
    }

    /// The acknowledgement window (the peer's Window Acknowledgement Size, or the session's own choice).
    pub fn set_ack_window(&mut self, window: u32) {
        self.ack_window = window;
    }

    /// When a window of bytes has arrived since the last acknowledgement, the sequence number to send in an
    /// Acknowledgement (total bytes received, modulo 2^32); the count restarts from here.
    pub fn ack_due(&mut self) -> Option<u32> {
        if self.ack_window == 0 || self.bytes_received - self.last_ack < u64::from(self.ack_window)
        {
            return None;
        }
        self.last_ack = self.bytes_received;
        Some(self.bytes_received as u32)
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, ChunkError> {
        loop {
            let buffered = self.buffered();
            if buffered > self.config.max_buffered {
                return Err(ChunkError::BufferLimitExceeded {
                    buffered,
                    limit: self.config.max_buffered,
                });
            }
            let Some(header) = self.parse_header()? else {
                return Ok(None);
            };
            if let Some(message) = self.consume_chunk(header)? {
                self.apply_control(&message)?;
                return Ok(Some(message));
            }
        }
    }

    /// Reads the next chunk's header without consuming anything; `None` until the whole chunk is present.
    fn parse_header(&self) -> Result<Option<ChunkHeader>, ChunkError> {
        let input: &[u8] = self.input.as_ref();
        let Some(&first) = input.first() else {
            return Ok(None);
        };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3F {
            0 => match input.get(1) {
                Some(&b) => (u32::from(b) + 64, 2),
                None => return Ok(None),
            },
            1 => match (input.get(1), input.get(2)) {
                (Some(&lo), Some(&hi)) => (u32::from(lo) + 256 * u32::from(hi) + 64, 3),
                _ => return Ok(None),
            },
            id => (u32::from(id), 1),
        };
        let previous = self.streams.get(&csid);
        if previous.is_none() {
            if fmt != 0 {
                return Err(ChunkError::MissingPreviousHeader { csid, fmt });
            }
            if self.streams.len() >= self.config.max_chunk_streams {
                return Err(ChunkError::TooManyChunkStreams {
                    limit: self.config.max_chunk_streams,
                });
            }
        }
        let header_len = match fmt {
            0 => 11,
            1 => 7,
            2 => 3,
            _ => 0,
        };
        let Some(fields) = input.get(pos..pos + header_len) else {
            return Ok(None);
        };
        pos += header_len;
        let u24 = |at: usize| fields.get(at..at + 3).map_or(0, be_uint);
        let prev = previous.map_or((0, 0, false, 0, 0, 0, false), |p| {
            (
                p.timestamp,
                p.timestamp_field,
                p.extended,
                p.length,
                p.type_id,
                p.stream_id,
                p.partial.is_some(),
            )
        });
        let (prev_ts, prev_field, prev_extended, prev_len, prev_type, prev_msid, in_progress) =
            prev;

        let raw_field = if fmt < 3 { Some(u24(0)) } else { None };
        let extended = match raw_field {
            Some(field) => field == EXTENDED_TIMESTAMP_MARK,
            None => prev_extended,
        };
        let extended_value = if extended {
            let Some(b) = input.get(pos..pos + 4) else {
                return Ok(None);
            };
            pos += 4;
            Some(be_uint(b))
        } else {
            None
        };
        let field = match raw_field {
            Some(field) => extended_value
                .filter(|_| field == EXTENDED_TIMESTAMP_MARK)
                .unwrap_or(field),
            None => prev_field,
        };
        let (length, type_id) = if fmt < 2 {
            (u24(3), fields.get(6).copied().unwrap_or_default())
        } else {
            (prev_len, prev_type)
        };
        let stream_id = if fmt == 0 {
            fields.get(7..11).map_or(0, |b| be_uint(b).swap_bytes())
        } else {
            prev_msid
        };
        if length > self.config.max_message_len {
            return Err(ChunkError::MessageTooLarge {
                length,
                limit: self.config.max_message_len,
            });
        }
        let starts_message = fmt < 3 || !in_progress;
        let timestamp = match (fmt, starts_message) {
            (0, _) => field,
            (_, true) => prev_ts.wrapping_add(field),
            (_, false) => prev_ts,
        };
        let collected = if starts_message {
            0
        } else {
            previous
                .and_then(|p| p.partial.as_ref())
                .map_or(0, BytesMut::len)
        };
        let payload_len = (length as usize)
            .saturating_sub(collected)
            .min(self.chunk_size as usize);
        if input.len() < pos + payload_len {
            return Ok(None);
        }
        Ok(Some(ChunkHeader {
            csid,
            header_len: pos,
            payload_len,
            starts_message,
            timestamp,
            timestamp_field: field,
            extended,
            length,
            type_id,
            stream_id,
        }))
    }

    /// Consumes one chunk whose bytes are all present; returns the message it completes, if any.
    fn consume_chunk(&mut self, h: ChunkHeader) -> Result<Option<Message>, ChunkError> {
        self.input.advance(h.header_len);
        let stream = self.streams.entry(h.csid).or_default();
        if h.starts_message {
            if let Some(dropped) = stream.partial.take() {
                // A new header while a message was half-assembled: the peer abandoned it.
                self.partial_bytes -= dropped.len();
            }
            stream.timestamp = h.timestamp;
            stream.timestamp_field = h.timestamp_field;
            stream.extended = h.extended;
            stream.length = h.length;
            stream.type_id = h.type_id;
            stream.stream_id = h.stream_id;
        }
        let complete = |stream: &ChunkStream, payload| Message {
            timestamp: stream.timestamp,
            type_id: stream.type_id,
            stream_id: stream.stream_id,
            payload,
        };
        let chunk = self.input.split_to(h.payload_len);
        match stream.partial.take() {
            None if h.payload_len == h.length as usize => {
                Ok(Some(complete(stream, chunk.freeze())))
            }
            None => {
                self.partial_bytes += chunk.len();
                stream.partial = Some(chunk);
                Ok(None)
            }
            Some(mut partial) => {
                self.partial_bytes += chunk.len();
                partial.unsplit(chunk);
                if partial.len() >= h.length as usize {
                    self.partial_bytes -= partial.len();
                    Ok(Some(complete(stream, partial.freeze())))
                } else {
                    stream.partial = Some(partial);
                    Ok(None)
                }
            }
        }
    }

    /// Set Chunk Size and Abort change how the following chunks are read, so the decoder applies them.
    fn apply_control(&mut self, message: &Message) -> Result<(), ChunkError> {
        let value = || message.payload.get(..4).map(be_uint);
        match message.type_id {
            type_id::SET_CHUNK_SIZE => {
                let size = value().ok_or(ChunkError::MalformedMessage {
                    kind: "Set Chunk Size",
                    reason: "shorter than 4 bytes",
                })?;
                // Bit 31 must be zero; ignore it rather than fail, as the reference clients do not send it.
                self.set_chunk_size(size & MAX_CHUNK_SIZE)?;
            }
            type_id::ABORT => {
                let csid = value().ok_or(ChunkError::MalformedMessage {
                    kind: "Abort",
                    reason: "shorter than 4 bytes",
                })?;
                if let Some(partial) = self.streams.get_mut(&csid).and_then(|s| s.partial.take()) {
                    self.partial_bytes -= partial.len();
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A big-endian unsigned integer of up to 4 bytes.
pub(crate) fn be_uint(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0, |acc, &b| acc << 8 | u32::from(b))
}
