//! The GOP cache of a stream: the latest metadata (`onMetaData`, and the E-RTMP colorInfo `Metadata`
//! packet), the latest sequence start of every (media type, track id), and the frames since the last
//! video keyframe (bounded in bytes), which a joining player receives first so it starts on a keyframe
//! at once with every track's headers.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::frame::{Frame, FrameKind};

/// Orders the sequence starts a joining player gets: video tracks, then audio tracks, each by track id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum HeaderKind {
    Video,
    Audio,
}

#[derive(Debug, Default)]
pub(crate) struct GopCache {
    pub(crate) metadata: Option<Arc<Frame>>,
    color_info: Option<Arc<Frame>>,
    /// One multitrack message may hold the sequence start of several tracks: it is kept under each.
    headers: BTreeMap<(HeaderKind, u8), Arc<Frame>>,
    frames: Vec<Arc<Frame>>,
    bytes: usize,
}

impl GopCache {
    /// What a joining player gets, in order: metadata, colorInfo, every track's sequence start (each
    /// message once), then the GOP from its keyframe.
    pub(crate) fn snapshot(&self) -> impl Iterator<Item = Arc<Frame>> + '_ {
        self.before_frames().chain(&self.frames).cloned()
    }

    /// What comes before the GOP: metadata, colorInfo and every track's sequence start (each message
    /// once, as one multitrack message may be kept under several tracks).
    fn before_frames(&self) -> impl Iterator<Item = &Arc<Frame>> + '_ {
        let mut headers: Vec<&Arc<Frame>> = Vec::with_capacity(self.headers.len());
        for header in self.headers.values() {
            if !headers.iter().any(|kept| Arc::ptr_eq(kept, header)) {
                headers.push(header);
            }
        }
        self.metadata.iter().chain(&self.color_info).chain(headers)
    }

    /// The codecs of the first video and audio tracks whose sequence start is kept.
    pub(crate) fn codecs(&self) -> (Option<[u8; 4]>, Option<[u8; 4]>) {
        let first = |kind: HeaderKind| {
            self.headers
                .iter()
                .find(|((k, _), _)| *k == kind)
                .and_then(|(_, frame)| frame.info.codec)
        };
        (first(HeaderKind::Video), first(HeaderKind::Audio))
    }

    /// Payload bytes held: metadata, colorInfo, sequence starts (each message once) and frames.
    pub(crate) fn bytes_held(&self) -> usize {
        self.before_frames()
            .map(|frame| frame.shared.payload_len())
            .sum::<usize>()
            + self.bytes
    }

    /// The latest video sequence start of the lowest video track.
    pub(crate) fn video_header(&self) -> Option<&Arc<Frame>> {
        self.headers
            .range((HeaderKind::Video, 0)..=(HeaderKind::Video, u8::MAX))
            .map(|(_, frame)| frame)
            .next()
    }

    /// The latest audio sequence start of the lowest audio track.
    pub(crate) fn audio_header(&self) -> Option<&Arc<Frame>> {
        self.headers
            .range((HeaderKind::Audio, 0)..=(HeaderKind::Audio, u8::MAX))
            .map(|(_, frame)| frame)
            .next()
    }

    /// Keeps `frame` if a player joining later needs it; `limit` bounds the bytes of frames kept.
    pub(crate) fn add(&mut self, frame: &Arc<Frame>, limit: usize) {
        match frame.kind {
            FrameKind::Data => {}
            FrameKind::Video if frame.info.metadata => self.color_info = Some(frame.clone()),
            FrameKind::Video if frame.info.sequence_header => {
                self.keep_header(HeaderKind::Video, frame)
            }
            FrameKind::Audio if frame.info.sequence_header => {
                self.keep_header(HeaderKind::Audio, frame)
            }
            _ if frame.is_video_keyframe() => {
                self.frames.clear();
                self.bytes = 0;
                self.push(frame, limit);
            }
            // Until the first keyframe there is nothing a player could start on.
            _ if !self.frames.is_empty() => self.push(frame, limit),
            _ => {}
        }
    }

    fn keep_header(&mut self, kind: HeaderKind, frame: &Arc<Frame>) {
        for track in frame.info.tracks.iter() {
            self.headers.insert((kind, track), frame.clone());
        }
    }

    fn push(&mut self, frame: &Arc<Frame>, limit: usize) {
        self.bytes += frame.shared.payload_len();
        if self.bytes > limit {
            self.frames.clear();
            self.bytes = 0;
            return;
        }
        self.frames.push(frame.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtmp_chunk::{type_id, Message};

    fn frame(type_id: u8, timestamp: u32, payload: &[u8]) -> Arc<Frame> {
        let message = Message {
            timestamp,
            type_id,
            stream_id: 1,
            payload: payload.to_vec().into(),
        };
        Arc::new(Frame::new(&message, 4096))
    }

    fn payloads(cache: &GopCache) -> Vec<Vec<u8>> {
        cache
            .snapshot()
            .map(|frame| frame.message().payload.to_vec())
            .collect()
    }

    const VIDEO_START: &[u8] = b"\x17\x00\x00\x00\x00\x01";
    /// ManyTracks AAC sequence start of tracks 0 and 1.
    const AUDIO_0_1: &[u8] = b"\x95\x10mp4a\x00\x00\x00\x02\x12\x10\x01\x00\x00\x02\x11\x90";
    /// OneTrack AAC sequence start of track 1 alone, replacing track 1's header.
    const AUDIO_1: &[u8] = b"\x95\x00mp4a\x01\x11\x88";
    /// OneTrack AAC sequence start of track 2.
    const AUDIO_2: &[u8] = b"\x95\x00mp4a\x02\x12\x08";
    const COLOR_INFO: &[u8] = b"\x94avc1\x02\x00";
    const KEYFRAME: &[u8] = b"\x17\x01\x00\x00\x00\xAA";
    const AUDIO_FRAMES: &[u8] = b"\x95\x11mp4a\x00\x00\x00\x01\xA0\x01\x00\x00\x01\xA1";

    #[test]
    fn a_late_joiner_gets_every_tracks_latest_header_before_the_first_frame() {
        let mut cache = GopCache::default();
        let limit = 1 << 20;
        cache.metadata = Some(frame(type_id::DATA_AMF0, 0, b"meta"));
        for (kind, payload) in [
            (type_id::VIDEO, VIDEO_START),
            (type_id::AUDIO, AUDIO_0_1),
            (type_id::VIDEO, COLOR_INFO),
            (type_id::AUDIO, AUDIO_2),
            (type_id::VIDEO, KEYFRAME),
            (type_id::AUDIO, AUDIO_FRAMES),
            (type_id::AUDIO, AUDIO_1),
        ] {
            cache.add(&frame(kind, 0, payload), limit);
        }
        assert_eq!(
            payloads(&cache),
            vec![
                b"meta".to_vec(),
                COLOR_INFO.to_vec(),
                VIDEO_START.to_vec(),
                // Track 0 still comes from the two-track message; track 1 from its newer one.
                AUDIO_0_1.to_vec(),
                AUDIO_1.to_vec(),
                AUDIO_2.to_vec(),
                KEYFRAME.to_vec(),
                AUDIO_FRAMES.to_vec(),
            ]
        );
    }

    #[test]
    fn a_message_holding_several_tracks_is_sent_once() {
        let mut cache = GopCache::default();
        cache.add(&frame(type_id::AUDIO, 0, AUDIO_0_1), 1 << 20);
        assert_eq!(payloads(&cache), vec![AUDIO_0_1.to_vec()]);
    }

    #[test]
    fn color_info_neither_starts_nor_joins_the_gop() {
        let mut cache = GopCache::default();
        cache.add(&frame(type_id::VIDEO, 0, KEYFRAME), 1 << 20);
        cache.add(&frame(type_id::VIDEO, 40, COLOR_INFO), 1 << 20);
        cache.add(&frame(type_id::VIDEO, 80, COLOR_INFO), 1 << 20);
        assert_eq!(
            payloads(&cache),
            vec![COLOR_INFO.to_vec(), KEYFRAME.to_vec()]
        );
    }
}
