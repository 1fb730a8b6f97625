//! Messages encoded once and sent by many receivers: the zero-copy fan-out primitive.

use bytes::{Bytes, BytesMut};

use crate::encode::{write_message, HeaderChoice, SentHeader};
use crate::Message;

/// A message chunk-encoded once with a fmt 0 first chunk (absolute timestamp) and fmt 3 continuations.
///
/// Every receiver whose outgoing chunk size equals [`SharedMessage::chunk_size`] sends these bytes as they
/// are (see [`crate::ChunkEncoder::encode_shared`]); cloning it is a reference-count increment.
#[derive(Debug, Clone)]
pub struct SharedMessage {
    /// The chunks: the only copy of the payload kept (the original message is rebuilt from it on demand).
    wire: Bytes,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    payload_len: usize,
    csid: u32,
    chunk_size: u32,
    /// Length of the first chunk's headers (basic + message header + extended timestamp).
    first_header_len: usize,
    sent: SentHeader,
}

impl SharedMessage {
    /// Encodes `message` on chunk stream `csid` with chunks of `chunk_size` bytes.
    pub fn encode(csid: u32, message: &Message, chunk_size: u32) -> Self {
        // Empty: `write_message` reserves exactly what the chunks take, once (a guessed capacity below it
        // would be doubled by the reservation, and the ring and GOP cache keep these bytes for seconds).
        let mut out = BytesMut::new();
        let sent = write_message(csid, message, HeaderChoice::Fmt0, chunk_size, &mut out);
        let basic_len = match csid {
            2..=63 => 1,
            64..=319 => 2,
            _ => 3,
        };
        let first_header_len = basic_len + 11 + if sent.extended { 4 } else { 0 };
        Self {
            wire: out.freeze(),
            timestamp: message.timestamp,
            type_id: message.type_id,
            stream_id: message.stream_id,
            payload_len: message.payload.len(),
            csid,
            chunk_size,
            first_header_len,
            sent,
        }
    }

    /// The message as it was published, rebuilt from the chunks: a slice of them when the payload fits in
    /// one chunk, a copy otherwise.
    pub fn message(&self) -> Message {
        Message {
            timestamp: self.timestamp,
            type_id: self.type_id,
            stream_id: self.stream_id,
            payload: self.payload(),
        }
    }

    /// The message timestamp.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// The message type id.
    pub fn type_id(&self) -> u8 {
        self.type_id
    }

    /// The payload length in bytes.
    pub fn payload_len(&self) -> usize {
        self.payload_len
    }

    fn payload(&self) -> Bytes {
        let chunk = self.chunk_size as usize;
        let start = self.first_header_len.min(self.wire.len());
        if self.payload_len <= chunk {
            return self.wire.slice(start..);
        }
        // Continuation chunks are fmt 3: the basic header, then the extended timestamp again if any, which
        // is the first header without its 11-byte message header.
        let continuation = self.first_header_len - 11;
        let mut payload = BytesMut::with_capacity(self.payload_len);
        let mut at = start;
        while payload.len() < self.payload_len {
            let take = chunk.min(self.payload_len - payload.len());
            let Some(piece) = self.wire.get(at..at + take) else {
                break;
            };
            payload.extend_from_slice(piece);
            at += take + continuation;
        }
        payload.freeze()
    }

    /// The encoded chunks for the message stream id the message carried.
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    /// The length of the chunked bytes.
    pub fn wire_len(&self) -> usize {
        self.wire.len()
    }

    /// The chunk stream id the bytes were encoded on.
    pub fn csid(&self) -> u32 {
        self.csid
    }

    /// The chunk size the bytes were encoded with.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Pushes the wire bytes for a receiver whose message stream id is `stream_id`, without copying the
    /// payload: the shared bytes, or a patched copy of the first header plus a slice of the rest.
    pub(crate) fn push_for_stream(&self, stream_id: u32, out: &mut Vec<Bytes>) {
        if stream_id == self.stream_id {
            out.push(self.wire.clone());
            return;
        }
        let header_len = self.first_header_len.min(self.wire.len());
        let mut header = BytesMut::from(self.wire.slice(..header_len).as_ref());
        let msid_at = header_len - 4 - if self.sent.extended { 4 } else { 0 };
        if let Some(field) = header.get_mut(msid_at..msid_at + 4) {
            field.copy_from_slice(&stream_id.to_le_bytes());
        }
        out.push(header.freeze());
        out.push(self.wire.slice(header_len..));
    }

    pub(crate) fn sent_header(&self, stream_id: u32) -> SentHeader {
        SentHeader {
            stream_id,
            ..self.sent
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_message_is_encoded_into_an_allocation_of_its_own_size() {
        let message = Message {
            timestamp: 40,
            type_id: 9,
            stream_id: 1,
            payload: Bytes::from(vec![0x17; 100_000]),
        };
        let shared = SharedMessage::encode(6, &message, 4096);
        let wire_len = shared.wire.len();
        let Ok(allocation) = shared.wire.try_into_mut() else {
            panic!("the wire bytes have one owner");
        };
        assert!(
            allocation.capacity() <= wire_len + wire_len / 100,
            "{} bytes allocated for {wire_len}",
            allocation.capacity()
        );
    }
}
