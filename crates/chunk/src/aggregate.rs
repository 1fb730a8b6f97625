//! Aggregate messages (type 22): a run of FLV-style tags carried in one message.
//!
//! Each sub-message: type (1), payload size (3, BE), timestamp (3, BE, low 24 bits), timestamp extension (1,
//! high 8 bits), stream id (3, ignored), payload, back pointer (4). Timestamps are re-based so the first
//! sub-message sits at the aggregate's own timestamp (PROTOCOL.md 5.7); the aggregate's message stream id
//! replaces the sub-messages' own.

use bytes::Bytes;

use crate::decode::be_uint;
use crate::{ChunkError, Message};

/// Iterates the sub-messages of an aggregate. Stops (after yielding an error) at the first malformed tag.
#[derive(Debug, Clone)]
pub struct SubMessages {
    rest: Bytes,
    aggregate_timestamp: u32,
    stream_id: u32,
    offset: Option<u32>,
    failed: bool,
}

impl SubMessages {
    /// The sub-messages of an aggregate message, read lazily.
    pub fn new(aggregate: &Message) -> Self {
        Self {
            rest: aggregate.payload.clone(),
            aggregate_timestamp: aggregate.timestamp,
            stream_id: aggregate.stream_id,
            offset: None,
            failed: false,
        }
    }
}

const TAG_HEADER_LEN: usize = 11;
const BACK_POINTER_LEN: usize = 4;

impl Iterator for SubMessages {
    type Item = Result<Message, ChunkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let malformed = |reason| ChunkError::MalformedMessage {
            kind: "Aggregate",
            reason,
        };
        let Some(header) = self.rest.get(..TAG_HEADER_LEN) else {
            self.failed = true;
            return Some(Err(malformed("truncated sub-message header")));
        };
        let type_id = header.first().copied().unwrap_or_default();
        let size = header.get(1..4).map_or(0, be_uint) as usize;
        let low = header.get(4..7).map_or(0, be_uint);
        let high = u32::from(header.get(7).copied().unwrap_or_default());
        let timestamp = high << 24 | low;
        let end = TAG_HEADER_LEN + size;
        if self.rest.len() < end {
            self.failed = true;
            return Some(Err(malformed("sub-message longer than the aggregate")));
        }
        let payload = self.rest.slice(TAG_HEADER_LEN..end);
        let skip = (end + BACK_POINTER_LEN).min(self.rest.len());
        self.rest = self.rest.slice(skip..);
        let offset = *self
            .offset
            .get_or_insert(self.aggregate_timestamp.wrapping_sub(timestamp));
        Some(Ok(Message {
            timestamp: timestamp.wrapping_add(offset),
            type_id,
            stream_id: self.stream_id,
            payload,
        }))
    }
}
