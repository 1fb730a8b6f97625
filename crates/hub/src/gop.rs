//! The GOP cache of a stream: the latest metadata, the latest sequence headers and the frames since the
//! last video keyframe (bounded in bytes), which a joining player receives first so it starts on a
//! keyframe at once.

use std::sync::Arc;

use crate::frame::{Frame, FrameKind};

#[derive(Debug, Default)]
pub(crate) struct GopCache {
    pub(crate) metadata: Option<Arc<Frame>>,
    video_header: Option<Arc<Frame>>,
    audio_header: Option<Arc<Frame>>,
    frames: Vec<Arc<Frame>>,
    bytes: usize,
}

impl GopCache {
    /// What a joining player gets, in order: metadata, sequence headers, then the GOP from its keyframe.
    pub(crate) fn snapshot(&self) -> impl Iterator<Item = Arc<Frame>> + '_ {
        self.metadata
            .iter()
            .chain(&self.video_header)
            .chain(&self.audio_header)
            .chain(&self.frames)
            .cloned()
    }

    /// Keeps `frame` if a player joining later needs it; `limit` bounds the bytes of frames kept.
    pub(crate) fn add(&mut self, frame: &Arc<Frame>, limit: usize) {
        match frame.kind {
            FrameKind::Data => {}
            FrameKind::Video if frame.info.sequence_header => {
                self.video_header = Some(frame.clone())
            }
            FrameKind::Audio if frame.info.sequence_header => {
                self.audio_header = Some(frame.clone())
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
