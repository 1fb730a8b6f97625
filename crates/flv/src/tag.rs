//! One FLV tag, the FLV file header, and the conversion to and from RTMP messages.

use bytes::Bytes;
use rtmp_chunk::Message;

/// The RTMP message type and FLV tag type of audio.
pub const TAG_AUDIO: u8 = 8;
/// The RTMP message type and FLV tag type of video.
pub const TAG_VIDEO: u8 = 9;
/// The RTMP message type (AMF0 data) and FLV tag type of script data such as `onMetaData`.
pub const TAG_SCRIPT: u8 = 18;

/// The 9-byte FLV file header: which kinds of media the file declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlvHeader {
    /// The audio flag (bit 2 of the flags byte).
    pub has_audio: bool,
    /// The video flag (bit 0 of the flags byte).
    pub has_video: bool,
}

impl Default for FlvHeader {
    fn default() -> Self {
        Self {
            has_audio: true,
            has_video: true,
        }
    }
}

/// One FLV tag: its type, its 32-bit timestamp in milliseconds, and its body (an RTMP message payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// [`TAG_AUDIO`], [`TAG_VIDEO`], [`TAG_SCRIPT`], or another type found in a file.
    pub tag_type: u8,
    /// Milliseconds, extended to 32 bits.
    pub timestamp: u32,
    /// The tag body, byte for byte the RTMP message payload.
    pub payload: Bytes,
}

impl Tag {
    /// The tag carrying an audio, video or AMF0 data message; `None` for any other message type.
    pub fn from_message(message: &Message) -> Option<Tag> {
        matches!(message.type_id, TAG_AUDIO | TAG_VIDEO | TAG_SCRIPT).then(|| Tag {
            tag_type: message.type_id,
            timestamp: message.timestamp,
            payload: message.payload.clone(),
        })
    }

    /// The RTMP message this tag becomes on the given message stream.
    pub fn into_message(self, stream_id: u32) -> Message {
        Message {
            timestamp: self.timestamp,
            type_id: self.tag_type,
            stream_id,
            payload: self.payload,
        }
    }

    /// Whether this is a video tag holding a keyframe (frame type 1, legacy or enhanced RTMP).
    pub fn is_keyframe(&self) -> bool {
        self.tag_type == TAG_VIDEO
            && self
                .payload
                .first()
                .is_some_and(|first| (first >> 4) & 0x07 == 1)
    }

    /// Whether this is a sequence header (AVC/HEVC decoder configuration, AAC AudioSpecificConfig, or an
    /// enhanced-RTMP sequence start) that a decoder needs before any frame.
    pub fn is_sequence_header(&self) -> bool {
        let first = self.payload.first().copied();
        let second = self.payload.get(1).copied();
        match (self.tag_type, first, second) {
            // Enhanced RTMP: the ExHeader bit with packet type 0 (SequenceStart).
            (TAG_VIDEO, Some(byte), _) if byte & 0x80 != 0 => byte & 0x0F == 0,
            // AVC (7) or legacy HEVC (12) with AVCPacketType 0.
            (TAG_VIDEO, Some(byte), Some(0)) => matches!(byte & 0x0F, 7 | 12),
            // AAC (10) with AACPacketType 0.
            (TAG_AUDIO, Some(byte), Some(0)) => byte >> 4 == 10,
            _ => false,
        }
    }
}
