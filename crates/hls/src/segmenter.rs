//! The segmenter: timestamped media in, parts, segments and the LL-HLS media playlist out.

use std::collections::VecDeque;
use std::fmt::Write as _;

use bytes::{Bytes, BytesMut};

use crate::codec::{self, AudioConfig, AudioTag, CodecError, VideoConfig, VideoTag};
use crate::mp4::{self, Sample};

/// Segmenter settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsConfig {
    /// Target duration of a part in milliseconds.
    pub part_target_ms: u32,
    /// Target duration of a segment in milliseconds (segments are cut at the first keyframe after it).
    pub segment_target_ms: u32,
    /// Complete segments kept in the playlist.
    pub window: usize,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            part_target_ms: 333,
            segment_target_ms: 2000,
            window: 6,
        }
    }
}

/// One part of a segment.
#[derive(Debug, Clone)]
pub struct Part {
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Whether it starts with a keyframe (or carries audio only).
    pub independent: bool,
    /// The fragment bytes (`moof` + `mdat`).
    pub data: Bytes,
}

/// One segment, complete or still growing.
#[derive(Debug, Clone)]
struct Segment {
    msn: u64,
    parts: Vec<Part>,
    /// The whole segment once complete; parts are then dropped when the segment leaves the
    /// part-carrying tail.
    data: Option<Bytes>,
    duration_ms: u64,
}

/// Where a blocking playlist request stands (RFC 8216bis 6.2.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockingRequest {
    /// The playlist already holds the requested segment or part: answer now.
    Ready,
    /// Not yet: hold the request until it is.
    Wait,
    /// More than two segments beyond the playlist's last: answer 400.
    TooFar,
}

/// The sans-IO LL-HLS segmenter.
#[derive(Debug)]
pub struct Segmenter {
    config: HlsConfig,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    init: Option<Bytes>,
    held_video: Option<Sample>,
    held_audio: Option<Sample>,
    video_samples: Vec<Sample>,
    audio_samples: Vec<Sample>,
    last_video_delta: u32,
    last_audio_delta: u32,
    segments: VecDeque<Segment>,
    fragment_sequence: u32,
    max_segment_ms: u64,
    ended: bool,
}

/// Segments behind the growing one that keep their parts listed.
const PART_SEGMENTS: usize = 2;

impl Segmenter {
    /// A segmenter with the given settings.
    pub fn new(config: HlsConfig) -> Self {
        Self {
            config,
            video: None,
            audio: None,
            init: None,
            held_video: None,
            held_audio: None,
            video_samples: Vec::new(),
            audio_samples: Vec::new(),
            last_video_delta: 0,
            last_audio_delta: 0,
            segments: VecDeque::new(),
            fragment_sequence: 0,
            max_segment_ms: 0,
            ended: false,
        }
    }

    /// Takes one video tag payload with its timestamp in milliseconds.
    pub fn push_video(&mut self, timestamp: u32, payload: &Bytes) -> Result<(), CodecError> {
        match codec::parse_video(payload)? {
            VideoTag::Config(config) => {
                if self.init.is_none() {
                    self.video = Some(config);
                }
            }
            VideoTag::Frame {
                keyframe,
                cts,
                data,
            } => {
                self.ensure_init();
                if self.video.is_some() && self.init.is_some() {
                    self.video_frame(Sample {
                        dts: u64::from(timestamp),
                        duration: 0,
                        cts,
                        keyframe,
                        data,
                    });
                }
            }
            VideoTag::Ignored => {}
        }
        Ok(())
    }

    /// Takes one audio tag payload with its timestamp in milliseconds.
    pub fn push_audio(&mut self, timestamp: u32, payload: &Bytes) -> Result<(), CodecError> {
        match codec::parse_audio(payload)? {
            AudioTag::Config(config) => {
                if self.init.is_none() {
                    self.audio = Some(config);
                }
            }
            AudioTag::Frame(data) => {
                self.ensure_init();
                if self.audio.is_some() && self.init.is_some() {
                    self.audio_frame(Sample {
                        dts: u64::from(timestamp),
                        duration: 0,
                        cts: 0,
                        keyframe: true,
                        data,
                    });
                }
            }
            AudioTag::Ignored => {}
        }
        Ok(())
    }

    fn ensure_init(&mut self) {
        if self.init.is_none() && (self.video.is_some() || self.audio.is_some()) {
            self.init = Some(mp4::init_segment(self.video.as_ref(), self.audio.as_ref()));
        }
    }

    fn video_frame(&mut self, mut sample: Sample) {
        if let Some(mut held) = self.held_video.take() {
            let delta = u32::try_from(sample.dts.saturating_sub(held.dts)).unwrap_or(0);
            held.duration = delta;
            self.last_video_delta = delta;
            self.video_samples.push(held);
        } else if !sample.keyframe && self.segments.is_empty() {
            return; // wait for the first keyframe
        }
        self.cut_before(sample.dts, sample.keyframe, self.last_video_delta);
        sample.duration = 0;
        self.held_video = Some(sample);
    }

    fn audio_frame(&mut self, sample: Sample) {
        if self.video.is_some() && self.segments.is_empty() && self.held_video.is_none() {
            return; // audio starts with the first video keyframe
        }
        if let Some(mut held) = self.held_audio.take() {
            let delta = u32::try_from(sample.dts.saturating_sub(held.dts)).unwrap_or(0);
            held.duration = delta;
            self.last_audio_delta = delta;
            self.audio_samples.push(held);
        }
        if self.video.is_none() {
            self.cut_before(sample.dts, true, self.last_audio_delta);
        }
        self.held_audio = Some(sample);
    }

    /// Cuts parts and segments before a lead-track sample at `dts`.
    fn cut_before(&mut self, dts: u64, keyframe: bool, frame_ms: u32) {
        let lead = if self.video.is_some() {
            &self.video_samples
        } else {
            &self.audio_samples
        };
        let Some(start) = lead.first().map(|s| s.dts) else {
            if self.segments.is_empty() {
                self.open_segment();
            }
            return;
        };
        let segment_ms = self.open_segment_ms() + dts.saturating_sub(start);
        if keyframe && segment_ms >= u64::from(self.config.segment_target_ms) {
            self.flush_part();
            self.close_segment();
            self.open_segment();
        } else if dts.saturating_sub(start) + u64::from(frame_ms)
            >= u64::from(self.config.part_target_ms)
        {
            self.flush_part();
        }
    }

    fn open_segment_ms(&self) -> u64 {
        self.segments
            .back()
            .filter(|s| s.data.is_none())
            .map_or(0, |s| s.duration_ms)
    }

    fn open_segment(&mut self) {
        let msn = self.segments.back().map_or(0, |s| s.msn + 1);
        self.segments.push_back(Segment {
            msn,
            parts: Vec::new(),
            data: None,
            duration_ms: 0,
        });
    }

    fn flush_part(&mut self) {
        let video = std::mem::take(&mut self.video_samples);
        let audio = std::mem::take(&mut self.audio_samples);
        if video.is_empty() && audio.is_empty() {
            return;
        }
        let lead = if self.video.is_some() { &video } else { &audio };
        let duration_ms: u64 = lead.iter().map(|s| u64::from(s.duration)).sum();
        let independent = lead.first().is_some_and(|s| s.keyframe);
        self.fragment_sequence = self.fragment_sequence.wrapping_add(1);
        let data = mp4::fragment(self.fragment_sequence, &video, &audio);
        if let Some(segment) = self.segments.back_mut() {
            segment.duration_ms += duration_ms;
            segment.parts.push(Part {
                duration_ms,
                independent,
                data,
            });
        }
    }

    fn close_segment(&mut self) {
        let Some(segment) = self.segments.back_mut() else {
            return;
        };
        let mut whole = BytesMut::new();
        segment
            .parts
            .iter()
            .for_each(|p| whole.extend_from_slice(&p.data));
        segment.data = Some(whole.freeze());
        self.max_segment_ms = self.max_segment_ms.max(segment.duration_ms);
        let complete = self.segments.iter().filter(|s| s.data.is_some()).count();
        if complete > self.config.window {
            self.segments.pop_front();
        }
        let keep_parts_from = self.segments.len().saturating_sub(PART_SEGMENTS);
        for (index, segment) in self.segments.iter_mut().enumerate() {
            if index < keep_parts_from {
                segment.parts = Vec::new();
            }
        }
    }

    /// Ends the stream (the playlist then carries `EXT-X-ENDLIST`): the held samples get the last seen frame duration, the open part and
    /// segment are closed.
    pub fn finish(&mut self) {
        self.ended = true;
        if let Some(mut held) = self.held_video.take() {
            held.duration = self.last_video_delta;
            self.video_samples.push(held);
        }
        if let Some(mut held) = self.held_audio.take() {
            held.duration = self.last_audio_delta;
            self.audio_samples.push(held);
        }
        self.flush_part();
        if self
            .segments
            .back()
            .is_some_and(|s| s.data.is_none() && !s.parts.is_empty())
        {
            self.close_segment();
        }
    }

    /// The init segment (`init.mp4`), once the first frame fixed the tracks.
    pub fn init(&self) -> Option<Bytes> {
        self.init.clone()
    }

    /// A complete segment (`seg{msn}.m4s`) still in the window.
    pub fn segment(&self, msn: u64) -> Option<Bytes> {
        self.segments.iter().find(|s| s.msn == msn)?.data.clone()
    }

    /// A part (`part{msn}.{part}.m4s`) still kept.
    pub fn part(&self, msn: u64, part: usize) -> Option<Bytes> {
        let segment = self.segments.iter().find(|s| s.msn == msn)?;
        segment.parts.get(part).map(|p| p.data.clone())
    }

    /// Whether segment `msn` (with `part`, or complete when `None`) is in the playlist now.
    pub fn has_part(&self, msn: u64, part: Option<usize>) -> bool {
        self.segments.iter().any(|s| {
            s.msn == msn
                && match part {
                    None => s.data.is_some(),
                    Some(part) => part < s.parts.len() || s.data.is_some(),
                }
        }) || self.segments.front().is_some_and(|s| msn < s.msn)
    }

    /// Classifies a blocking reload for `_HLS_msn=msn` (and `_HLS_part=part`).
    pub fn blocking_request(&self, msn: u64, part: Option<usize>) -> BlockingRequest {
        if self.has_part(msn, part) {
            return BlockingRequest::Ready;
        }
        let last = self.segments.back().map_or(0, |s| s.msn);
        if msn > last + 2 {
            BlockingRequest::TooFar
        } else {
            BlockingRequest::Wait
        }
    }

    /// The media sequence number of the first segment in the playlist.
    pub fn media_sequence(&self) -> u64 {
        self.segments.front().map_or(0, |s| s.msn)
    }

    /// Renders the LL-HLS media playlist (`index.m3u8`).
    pub fn playlist(&self) -> String {
        let part_target = f64::from(self.config.part_target_ms) / 1000.0;
        let target = self
            .max_segment_ms
            .max(u64::from(self.config.segment_target_ms))
            .div_ceil(1000)
            .max(1);
        let mut out = String::new();
        let _ = writeln!(out, "#EXTM3U");
        let _ = writeln!(out, "#EXT-X-VERSION:6");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
        let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={part_target:.3}");
        let _ = writeln!(
            out,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3},HOLD-BACK={}",
            part_target * 3.0,
            target * 3
        );
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence());
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"init.mp4\"");
        let mut next_hint = None;
        for segment in &self.segments {
            for (index, part) in segment.parts.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "#EXT-X-PART:DURATION={:.3},URI=\"part{}.{index}.m4s\"{}",
                    part.duration_ms as f64 / 1000.0,
                    segment.msn,
                    if part.independent {
                        ",INDEPENDENT=YES"
                    } else {
                        ""
                    }
                );
            }
            if segment.data.is_some() {
                let _ = writeln!(out, "#EXTINF:{:.3},", segment.duration_ms as f64 / 1000.0);
                let _ = writeln!(out, "seg{}.m4s", segment.msn);
                next_hint = Some((segment.msn + 1, 0));
            } else {
                next_hint = Some((segment.msn, segment.parts.len()));
            }
        }
        if self.ended {
            let _ = writeln!(out, "#EXT-X-ENDLIST");
        } else if let Some((msn, part)) = next_hint {
            let _ = writeln!(
                out,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part{msn}.{part}.m4s\""
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(frames: u32) -> Segmenter {
        let mut hls = Segmenter::new(HlsConfig {
            window: 2,
            ..HlsConfig::default()
        });
        let avcc = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]);
        hls.push_video(0, &avcc).unwrap();
        for frame in 0..frames {
            let key = if frame % 30 == 0 { 0x17 } else { 0x27 };
            let tag = Bytes::from(vec![key, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]);
            hls.push_video(frame * 1000 / 30, &tag).unwrap();
        }
        hls
    }

    #[test]
    fn playlist_rules() {
        let hls = fed(30 * 9);
        let playlist = hls.playlist();
        assert!(playlist.contains("#EXT-X-TARGETDURATION:2\n"));
        assert!(playlist.contains("#EXT-X-PART-INF:PART-TARGET=0.333\n"));
        assert!(playlist.contains("PART-HOLD-BACK=0.999,HOLD-BACK=6"));
        assert!(playlist.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{playlist}");
        assert!(playlist.contains("INDEPENDENT=YES"));
        assert!(playlist.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part4."));
        assert!(hls.segment(1).is_none() && hls.segment(2).is_some());
        assert_eq!(hls.blocking_request(4, Some(0)), BlockingRequest::Ready);
        assert_eq!(hls.blocking_request(5, None), BlockingRequest::Wait);
        assert_eq!(hls.blocking_request(7, None), BlockingRequest::TooFar);
        assert!(hls.has_part(0, None));
    }

    #[test]
    fn truncated_configs_are_refused() {
        assert!(Segmenter::new(HlsConfig::default())
            .push_video(0, &Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]))
            .is_err());
        assert!(codec::opus_config(Bytes::from_static(b"OpusHead")).is_err());
    }
}
