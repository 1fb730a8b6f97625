//! RTMP messages: the raw [`Message`] the chunk layer carries and its typed view [`RtmpMessage`].

use bytes::{BufMut, Bytes, BytesMut};

use crate::decode::be_uint;
use crate::{type_id, ChunkError};

/// One complete RTMP message as it travels on a chunk stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Absolute timestamp in milliseconds (wraps at 2^32).
    pub timestamp: u32,
    /// Message type id (see [`crate::type_id`]).
    pub type_id: u8,
    /// Message stream id: 0 for the connection, otherwise a NetStream created by `createStream`.
    pub stream_id: u32,
    /// The message body.
    pub payload: Bytes,
}

/// Which AMF version a data, command or shared object message uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmfEncoding {
    /// Plain AMF0 values.
    Amf0,
    /// The payload starts with a format selector byte (0 = AMF0 values follow, possibly with AVM+ switches).
    Amf3,
}

/// How a Set Peer Bandwidth limit applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitType {
    /// Limit the output to the window size.
    Hard,
    /// Limit to the window size or the current limit, whichever is smaller.
    Soft,
    /// Hard if the previous limit was hard, else ignored.
    Dynamic,
    /// A value outside 0..=2, kept as sent.
    Other(u8),
}

impl From<u8> for LimitType {
    fn from(value: u8) -> Self {
        match value {
            0 => LimitType::Hard,
            1 => LimitType::Soft,
            2 => LimitType::Dynamic,
            other => LimitType::Other(other),
        }
    }
}

impl From<LimitType> for u8 {
    fn from(value: LimitType) -> Self {
        match value {
            LimitType::Hard => 0,
            LimitType::Soft => 1,
            LimitType::Dynamic => 2,
            LimitType::Other(other) => other,
        }
    }
}

/// User Control events (message type 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserControlEvent {
    /// A stream became functional (event 0); the stream id.
    StreamBegin(u32),
    /// Playback of a stream ended (event 1); the stream id.
    StreamEof(u32),
    /// No more data on a stream for now (event 2); the stream id.
    StreamDry(u32),
    /// The client's buffer length for a stream (event 3).
    SetBufferLength {
        /// The stream id.
        stream_id: u32,
        /// Buffer length in milliseconds.
        buffer_ms: u32,
    },
    /// The stream is a recording (event 4); the stream id.
    StreamIsRecorded(u32),
    /// Ping request (event 6) with the sender's timestamp.
    PingRequest(u32),
    /// Ping response (event 7) echoing the request's timestamp.
    PingResponse(u32),
    /// Any other event (SWF verification, BufferEmpty, BufferReady, ...), kept raw.
    Other {
        /// The event type.
        event_type: u16,
        /// The event data after the type.
        data: Bytes,
    },
}

/// The typed view of a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtmpMessage {
    /// Set Chunk Size (type 1): the sender's new maximum chunk size.
    SetChunkSize(u32),
    /// Abort (type 2): drop the partial message of a chunk stream.
    Abort {
        /// The chunk stream whose partial message is dropped.
        chunk_stream_id: u32,
    },
    /// Acknowledgement (type 3).
    Acknowledgement {
        /// Bytes received so far (wrapping).
        sequence_number: u32,
    },
    /// User Control (type 4).
    UserControl(UserControlEvent),
    /// Window Acknowledgement Size (type 5): bytes between acknowledgements.
    WindowAckSize(u32),
    /// Set Peer Bandwidth (type 6).
    SetPeerBandwidth {
        /// The acknowledgement window the peer should use.
        window_size: u32,
        /// How the limit applies.
        limit_type: LimitType,
    },
    /// Audio (type 8): one FLV audio tag body.
    Audio(Bytes),
    /// Video (type 9): one FLV video tag body.
    Video(Bytes),
    /// Data (types 15 and 18): metadata and other data messages.
    Data {
        /// AMF0 or AMF3 framing.
        encoding: AmfEncoding,
        /// The AMF body, still encoded.
        payload: Bytes,
    },
    /// Shared object (types 16 and 19).
    SharedObject {
        /// AMF0 or AMF3 framing.
        encoding: AmfEncoding,
        /// The AMF body, still encoded.
        payload: Bytes,
    },
    /// Command (types 17 and 20): `connect`, `play`, `_result`, ...
    Command {
        /// AMF0 or AMF3 framing.
        encoding: AmfEncoding,
        /// The AMF body, still encoded.
        payload: Bytes,
    },
    /// Aggregate (type 22): FLV-tag-framed sub-messages (see [`crate::aggregate`]).
    Aggregate(Bytes),
    /// Any other type, kept raw.
    Unknown {
        /// The type id.
        type_id: u8,
        /// The body.
        payload: Bytes,
    },
}

fn u32_at(payload: &[u8], at: usize, kind: &'static str) -> Result<u32, ChunkError> {
    payload
        .get(at..at + 4)
        .map(be_uint)
        .ok_or(ChunkError::MalformedMessage {
            kind,
            reason: "too short",
        })
}

impl RtmpMessage {
    /// Interprets a message by its type id. Payloads are shared, not copied.
    pub fn decode(message: &Message) -> Result<RtmpMessage, ChunkError> {
        let p = &message.payload;
        Ok(match message.type_id {
            type_id::SET_CHUNK_SIZE => {
                RtmpMessage::SetChunkSize(u32_at(p, 0, "Set Chunk Size")? & 0x7FFF_FFFF)
            }
            type_id::ABORT => RtmpMessage::Abort {
                chunk_stream_id: u32_at(p, 0, "Abort")?,
            },
            type_id::ACKNOWLEDGEMENT => RtmpMessage::Acknowledgement {
                sequence_number: u32_at(p, 0, "Acknowledgement")?,
            },
            type_id::USER_CONTROL => RtmpMessage::UserControl(decode_user_control(p)?),
            type_id::WINDOW_ACK_SIZE => {
                RtmpMessage::WindowAckSize(u32_at(p, 0, "Window Acknowledgement Size")?)
            }
            type_id::SET_PEER_BANDWIDTH => RtmpMessage::SetPeerBandwidth {
                window_size: u32_at(p, 0, "Set Peer Bandwidth")?,
                // The limit type byte is optional in practice; treat its absence as Dynamic.
                limit_type: p
                    .get(4)
                    .copied()
                    .map_or(LimitType::Dynamic, LimitType::from),
            },
            type_id::AUDIO => RtmpMessage::Audio(p.clone()),
            type_id::VIDEO => RtmpMessage::Video(p.clone()),
            type_id::DATA_AMF0 => RtmpMessage::Data {
                encoding: AmfEncoding::Amf0,
                payload: p.clone(),
            },
            type_id::DATA_AMF3 => RtmpMessage::Data {
                encoding: AmfEncoding::Amf3,
                payload: p.clone(),
            },
            type_id::SHARED_OBJECT_AMF0 => RtmpMessage::SharedObject {
                encoding: AmfEncoding::Amf0,
                payload: p.clone(),
            },
            type_id::SHARED_OBJECT_AMF3 => RtmpMessage::SharedObject {
                encoding: AmfEncoding::Amf3,
                payload: p.clone(),
            },
            type_id::COMMAND_AMF0 => RtmpMessage::Command {
                encoding: AmfEncoding::Amf0,
                payload: p.clone(),
            },
            type_id::COMMAND_AMF3 => RtmpMessage::Command {
                encoding: AmfEncoding::Amf3,
                payload: p.clone(),
            },
            type_id::AGGREGATE => RtmpMessage::Aggregate(p.clone()),
            other => RtmpMessage::Unknown {
                type_id: other,
                payload: p.clone(),
            },
        })
    }

    /// The message type id this variant travels as.
    pub fn type_id(&self) -> u8 {
        match self {
            RtmpMessage::SetChunkSize(_) => type_id::SET_CHUNK_SIZE,
            RtmpMessage::Abort { .. } => type_id::ABORT,
            RtmpMessage::Acknowledgement { .. } => type_id::ACKNOWLEDGEMENT,
            RtmpMessage::UserControl(_) => type_id::USER_CONTROL,
            RtmpMessage::WindowAckSize(_) => type_id::WINDOW_ACK_SIZE,
            RtmpMessage::SetPeerBandwidth { .. } => type_id::SET_PEER_BANDWIDTH,
            RtmpMessage::Audio(_) => type_id::AUDIO,
            RtmpMessage::Video(_) => type_id::VIDEO,
            RtmpMessage::Data {
                encoding: AmfEncoding::Amf0,
                ..
            } => type_id::DATA_AMF0,
            RtmpMessage::Data {
                encoding: AmfEncoding::Amf3,
                ..
            } => type_id::DATA_AMF3,
            RtmpMessage::SharedObject {
                encoding: AmfEncoding::Amf0,
                ..
            } => type_id::SHARED_OBJECT_AMF0,
            RtmpMessage::SharedObject {
                encoding: AmfEncoding::Amf3,
                ..
            } => type_id::SHARED_OBJECT_AMF3,
            RtmpMessage::Command {
                encoding: AmfEncoding::Amf0,
                ..
            } => type_id::COMMAND_AMF0,
            RtmpMessage::Command {
                encoding: AmfEncoding::Amf3,
                ..
            } => type_id::COMMAND_AMF3,
            RtmpMessage::Aggregate(_) => type_id::AGGREGATE,
            RtmpMessage::Unknown { type_id, .. } => *type_id,
        }
    }

    /// The wire message for this variant.
    pub fn into_message(self, timestamp: u32, stream_id: u32) -> Message {
        let type_id = self.type_id();
        let payload = match self {
            RtmpMessage::SetChunkSize(v) => {
                Bytes::copy_from_slice(&(v & 0x7FFF_FFFF).to_be_bytes())
            }
            RtmpMessage::Abort { chunk_stream_id: v }
            | RtmpMessage::Acknowledgement { sequence_number: v }
            | RtmpMessage::WindowAckSize(v) => Bytes::copy_from_slice(&v.to_be_bytes()),
            RtmpMessage::SetPeerBandwidth {
                window_size,
                limit_type,
            } => {
                let mut b = BytesMut::with_capacity(5);
                b.put_u32(window_size);
                b.put_u8(limit_type.into());
                b.freeze()
            }
            RtmpMessage::UserControl(event) => encode_user_control(&event),
            RtmpMessage::Audio(p)
            | RtmpMessage::Video(p)
            | RtmpMessage::Data { payload: p, .. }
            | RtmpMessage::SharedObject { payload: p, .. }
            | RtmpMessage::Command { payload: p, .. }
            | RtmpMessage::Aggregate(p)
            | RtmpMessage::Unknown { payload: p, .. } => p,
        };
        Message {
            timestamp,
            type_id,
            stream_id,
            payload,
        }
    }
}

fn decode_user_control(p: &Bytes) -> Result<UserControlEvent, ChunkError> {
    const KIND: &str = "User Control";
    let event_type = p
        .get(..2)
        .map(|b| be_uint(b) as u16)
        .ok_or(ChunkError::MalformedMessage {
            kind: KIND,
            reason: "no event type",
        })?;
    let arg = || u32_at(p, 2, KIND);
    Ok(match event_type {
        0 => UserControlEvent::StreamBegin(arg()?),
        1 => UserControlEvent::StreamEof(arg()?),
        2 => UserControlEvent::StreamDry(arg()?),
        3 => UserControlEvent::SetBufferLength {
            stream_id: arg()?,
            buffer_ms: u32_at(p, 6, KIND)?,
        },
        4 => UserControlEvent::StreamIsRecorded(arg()?),
        6 => UserControlEvent::PingRequest(arg()?),
        7 => UserControlEvent::PingResponse(arg()?),
        other => UserControlEvent::Other {
            event_type: other,
            data: p.slice(2..),
        },
    })
}

fn encode_user_control(event: &UserControlEvent) -> Bytes {
    let mut b = BytesMut::with_capacity(10);
    let (event_type, value) = match event {
        UserControlEvent::StreamBegin(v) => (0, *v),
        UserControlEvent::StreamEof(v) => (1, *v),
        UserControlEvent::StreamDry(v) => (2, *v),
        UserControlEvent::SetBufferLength {
            stream_id,
            buffer_ms,
        } => {
            b.put_u16(3);
            b.put_u32(*stream_id);
            b.put_u32(*buffer_ms);
            return b.freeze();
        }
        UserControlEvent::StreamIsRecorded(v) => (4, *v),
        UserControlEvent::PingRequest(v) => (6, *v),
        UserControlEvent::PingResponse(v) => (7, *v),
        UserControlEvent::Other { event_type, data } => {
            b.put_u16(*event_type);
            b.put_slice(data);
            return b.freeze();
        }
    };
    b.put_u16(event_type);
    b.put_u32(value);
    b.freeze()
}
