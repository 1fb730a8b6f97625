//! What the hub carries: a published message encoded once ([`Frame`]), its kind, and the events a
//! subscriber receives ([`SubscriberEvent`]).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use rtmp_chunk::{csid, type_id, Message, SharedMessage};

use crate::media::{classify_audio, classify_video, default_track_payload, MediaInfo};

/// The kind of a frame, which decides its chunk stream and how a lagging player treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// An audio message (RTMP type 8): never skipped by a lagging player.
    Audio,
    /// A video message (RTMP type 9): a lagging player skips it until the next keyframe.
    Video,
    /// `onMetaData` and other data messages.
    Data,
}

/// A published message, encoded once and shared by every player.
///
/// Players receive it as an `Arc<Frame>` in [`SubscriberEvent::Frame`]: the chunk-encoded bytes in
/// [`Frame::shared`] are the same allocation for every player.
#[derive(Debug)]
pub struct Frame {
    /// Audio, video or data.
    pub kind: FrameKind,
    /// The classification of the payload (keyframe, sequence header, codec); default for data.
    pub info: MediaInfo,
    /// The message in its wire form (`shared.message()` rebuilds the original).
    pub shared: SharedMessage,
    /// For an E-RTMP v2 multitrack message: its default track (id 0) as a single-track message (see
    /// [`crate::media::default_track_payload`]), encoded once here for every player that did not declare
    /// multitrack. `None` for other messages, and when the message carries no track 0.
    pub default_track: Option<Box<Frame>>,
    /// The FLV tag form ([`Frame::flv_tag`]), built by the first reader that asks and shared by all.
    flv: OnceLock<Option<Bytes>>,
}

impl Frame {
    pub(crate) fn new(message: &Message, chunk_size: u32) -> Self {
        let (kind, info, chunk_stream) = match message.type_id {
            type_id::AUDIO => (
                FrameKind::Audio,
                classify_audio(&message.payload),
                csid::AUDIO,
            ),
            type_id::VIDEO => (
                FrameKind::Video,
                classify_video(&message.payload),
                csid::VIDEO,
            ),
            _ => (FrameKind::Data, MediaInfo::default(), csid::DATA),
        };
        let default_track = info
            .multitrack
            .then(|| default_track_payload(kind == FrameKind::Video, &message.payload))
            .flatten()
            .map(|payload| {
                let single = Message {
                    payload: payload.into(),
                    ..message.clone()
                };
                Box::new(Self::new(&single, chunk_size))
            });
        Self {
            kind,
            info,
            shared: SharedMessage::encode(chunk_stream, message, chunk_size),
            default_track,
            flv: OnceLock::new(),
        }
    }

    /// The frame as one FLV tag (11-byte header, payload, PreviousTagSize), for HTTP-FLV and WS-FLV
    /// players: built once, by the first player that asks, and the same `Bytes` for every other.
    /// `None` for a message FLV cannot carry (a payload over 16 MiB - 1).
    ///
    /// Built on first use rather than at publish, so a stream nobody reads over HTTP costs nothing.
    pub fn flv_tag(&self) -> Option<&Bytes> {
        self.flv
            .get_or_init(|| {
                let tag = rtmp_flv::Tag::from_message(&self.message())?;
                rtmp_flv::encode_tag(&tag).ok()
            })
            .as_ref()
    }

    /// The message as published (rebuilt from the shared chunks; see [`SharedMessage::message`]).
    pub fn message(&self) -> Message {
        self.shared.message()
    }

    pub(crate) fn is_video_keyframe(&self) -> bool {
        self.kind == FrameKind::Video && self.info.keyframe && !self.info.sequence_header
    }
}

/// What a subscriber receives, in order.
#[derive(Debug, Clone)]
pub enum SubscriberEvent {
    /// A publisher started (or took over); metadata, sequence headers and cached frames follow.
    Published,
    /// A frame of the stream: live, or from the GOP cache right after joining.
    Frame(Arc<Frame>),
    /// The publisher left; the subscriber stays and resumes when a publisher returns.
    Unpublished,
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn the_flv_tag_is_built_once_and_laid_out_as_flv() {
        let message = Message {
            timestamp: 0x0102_0304,
            type_id: type_id::VIDEO,
            stream_id: 1,
            payload: Bytes::from_static(&[0x17, 1, 0, 0, 0, 9]),
        };
        let frame = Frame::new(&message, 4096);
        let tag = frame.flv_tag().expect("a video tag").clone();
        let again = frame.flv_tag().expect("the same tag");
        assert_eq!(tag.as_ptr(), again.as_ptr(), "one buffer for every reader");
        assert_eq!(tag.len(), 11 + 6 + 4);
        assert_eq!(&tag[..11], &[9, 0, 0, 6, 0x02, 0x03, 0x04, 0x01, 0, 0, 0]);
        assert_eq!(&tag[11..17], &message.payload[..]);
        assert_eq!(&tag[17..], &17u32.to_be_bytes());
        let amf3 = Message {
            type_id: type_id::DATA_AMF3,
            ..message
        };
        assert_eq!(
            Frame::new(&amf3, 4096).flv_tag(),
            None,
            "FLV has no AMF3 data"
        );
    }
}
