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
