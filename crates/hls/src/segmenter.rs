//! The segmenter: timestamped media in, parts, segments and the LL-HLS media playlist out.

use std::collections::VecDeque;
use std::fmt::Write as _;

use bytes::{Bytes, BytesMut};
use time::OffsetDateTime;

use crate::codec::{self, AudioConfig, AudioTag, CodecError, VideoConfig, VideoTag};
use crate::mp4::{self, Run, Sample};

/// Segmenter settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsConfig {
    /// Target duration of a part in milliseconds.
    pub part_target_ms: u32,
    /// Target duration of a segment in milliseconds (segments are cut at the first keyframe after it).
    pub segment_target_ms: u32,
    /// Complete segments kept in the playlist.
    pub window: usize,
    /// A segment that reaches this many milliseconds without a keyframe to cut at is closed anyway,
    /// and media is dropped until the next keyframe (a publisher that sends none): memory stays
    /// bounded. `0` means five segment targets.
    pub max_segment_ms: u32,
    /// Put before every URI of the playlist (`{prefix}init.mp4`, `{prefix}seg3.m4s`): a server names
    /// each run of a stream differently, so caches never mix two runs' files.
    pub uri_prefix: String,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            part_target_ms: 333,
            segment_target_ms: 2000,
            window: 6,
            max_segment_ms: 0,
            uri_prefix: String::new(),
        }
    }
}

/// How far back a track's timestamp may step before it counts as a jump (rebased).
const BACKWARD_JUMP_MS: i64 = 500;
/// How far forward a track's timestamp may step before it counts as a jump (rebased).
const FORWARD_JUMP_MS: i64 = 30_000;

/// One track's timeline: FLV's 32-bit millisecond timestamps made monotonic 64-bit decode times. A
/// step back beyond [`BACKWARD_JUMP_MS`] (an encoder that restarts its clock, the 49-day wrap) or
/// forward beyond [`FORWARD_JUMP_MS`] is rebased to follow the previous sample by the last frame
/// duration, so fragments' decode times never go backwards.
#[derive(Debug, Clone, Copy, Default)]
struct Timeline {
    offset: i64,
    last: Option<i64>,
    step: i64,
}

impl Timeline {
    fn map(&mut self, timestamp: u32) -> u64 {
        let mut dts = i64::from(timestamp) + self.offset;
        if let Some(last) = self.last {
            let jump = dts - last;
            if !(-BACKWARD_JUMP_MS..=FORWARD_JUMP_MS).contains(&jump) {
                let rebased = last + self.step;
                self.offset += rebased - dts;
                dts = rebased;
            } else if (1..1000).contains(&jump) {
                self.step = jump;
            }
        }
        let dts = dts.max(0);
        self.last = Some(self.last.map_or(dts, |last| last.max(dts)));
        u64::try_from(dts).unwrap_or(0)
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
    /// The init segment its fragments need (see [`Segmenter::init_number`]).
    init_number: u32,
    /// It starts after a codec change: `EXT-X-DISCONTINUITY` before it.
    discontinuity: bool,
    /// Its first sample's decode time, and the wall clock then (Unix milliseconds) when known.
    start: Option<(u64, Option<u64>)>,
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
    /// The number of the current init segment: 0, then one more per codec change.
    init_number: u32,
    /// Earlier init segments still needed by a segment in the window.
    old_inits: VecDeque<(u32, Bytes)>,
    /// The next segment opened starts after a codec change.
    pending_discontinuity: bool,
    /// `EXT-X-DISCONTINUITY` tags that left the window (`EXT-X-DISCONTINUITY-SEQUENCE`).
    discontinuity_sequence: u64,
    video_run: Run,
    audio_run: Run,
    segments: VecDeque<Segment>,
    fragment_sequence: u32,
    max_segment_ms: u64,
    ended: bool,
    /// Media is dropped until the next video keyframe (after a forced cut).
    awaiting_keyframe: bool,
    /// Audio that arrived while waiting for a video keyframe: what is at most [`EARLY_AUDIO_MS`] older
    /// than the keyframe joins it (encoders often send audio just before the first video frame).
    early_audio: Vec<Sample>,
    /// Bumped whenever the playlist changes (a part or segment closed, the stream ended).
    version: u64,
    video_timeline: Timeline,
    audio_timeline: Timeline,
    /// Unix milliseconds at decode time 0 (`EXT-X-PROGRAM-DATE-TIME`), once anchored.
    wall_clock_origin: Option<u64>,
}

/// Segments behind the growing one that keep their parts listed.
const PART_SEGMENTS: usize = 2;
/// Samples a part holds at most (timestamps that do not advance never reach the part target).
const MAX_PART_SAMPLES: usize = 1024;
/// Parts a segment holds at most; then it is closed as if it had reached the hard limit.
const MAX_SEGMENT_PARTS: usize = 256;
/// Audio frames kept while waiting for a video keyframe.
const MAX_EARLY_AUDIO: usize = 16;
/// How far before the first video keyframe kept audio may start.
const EARLY_AUDIO_MS: u64 = 500;

impl Segmenter {
    /// A segmenter with the given settings.
    pub fn new(config: HlsConfig) -> Self {
        Self {
            config,
            video: None,
            audio: None,
            init: None,
            init_number: 0,
            old_inits: VecDeque::new(),
            pending_discontinuity: false,
            discontinuity_sequence: 0,
            video_run: Run::default(),
            audio_run: Run::default(),
            segments: VecDeque::new(),
            fragment_sequence: 0,
            max_segment_ms: 0,
            ended: false,
            awaiting_keyframe: false,
            early_audio: Vec::new(),
            version: 0,
            video_timeline: Timeline::default(),
            audio_timeline: Timeline::default(),
            wall_clock_origin: None,
        }
    }

    /// Ties media time to the wall clock for `EXT-X-PROGRAM-DATE-TIME`: the last frame pushed arrived
    /// at `unix_ms` (Unix milliseconds). Only the first call after the start (or a
    /// [`discontinuity`](Self::discontinuity)) that follows a frame counts; the caller reads the clock.
    pub fn anchor_wall_clock(&mut self, unix_ms: u64) {
        if self.wall_clock_origin.is_some() {
            return;
        }
        let last = self
            .video_run
            .held
            .as_ref()
            .or(self.audio_run.held.as_ref());
        if let Some(sample) = last {
            self.wall_clock_origin = Some(unix_ms.saturating_sub(sample.dts));
        }
    }

    /// Whether [`anchor_wall_clock`](Self::anchor_wall_clock) has taken effect.
    pub fn is_anchored(&self) -> bool {
        self.wall_clock_origin.is_some()
    }

    /// A counter bumped whenever the playlist changes: render it again when this moves.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether [`finish`](Self::finish) was called.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The settings this segmenter runs with.
    pub fn config(&self) -> &HlsConfig {
        &self.config
    }

    fn hard_limit_ms(&self) -> u64 {
        match self.config.max_segment_ms {
            0 => u64::from(self.config.segment_target_ms).saturating_mul(5),
            limit => u64::from(limit),
        }
        .max(u64::from(self.config.segment_target_ms))
    }

    /// Takes one video tag payload with its timestamp in milliseconds.
    pub fn push_video(&mut self, timestamp: u32, payload: &Bytes) -> Result<(), CodecError> {
        match codec::parse_video(payload)? {
            VideoTag::Config(config) => {
                if self.init.is_none() {
                    self.video = Some(config);
                } else if self.video.as_ref() != Some(&config) {
                    self.reconfigure(Some(config), self.audio.clone());
                }
            }
            VideoTag::Frame {
                keyframe,
                cts,
                data,
            } => {
                self.ensure_init();
                if self.video.is_some() && self.init.is_some() {
                    let dts = self.video_timeline.map(timestamp);
                    self.video_frame(Sample {
                        dts,
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
                } else if self.audio.as_ref() != Some(&config) {
                    self.reconfigure(self.video.clone(), Some(config));
                }
            }
            AudioTag::Frame(data) => {
                self.ensure_init();
                if self.audio.is_some() && self.init.is_some() {
                    let dts = self.audio_timeline.map(timestamp);
                    self.audio_frame(Sample {
                        dts,
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

    /// A codec configuration changed mid-stream: the segment in progress is closed, a new init segment
    /// is made, and the next segment starts (at a keyframe) after `EXT-X-DISCONTINUITY`.
    fn reconfigure(&mut self, video: Option<VideoConfig>, audio: Option<AudioConfig>) {
        self.end_open_segment();
        if let Some(old) = self.init.take() {
            self.old_inits.push_back((self.init_number, old));
        }
        self.video = video;
        self.audio = audio;
        self.init_number += 1;
        self.init = Some(mp4::init_segment(self.video.as_ref(), self.audio.as_ref()));
        self.pending_discontinuity = true;
        self.awaiting_keyframe = self.video.is_some();
        self.version += 1;
    }

    /// A new publisher of the same stream (its timestamps start again, its codecs may differ): the
    /// segment in progress is closed, and what follows starts a new segment after
    /// `EXT-X-DISCONTINUITY`, with a new init segment once the new sequence headers arrive. Media
    /// sequence numbers go on, so players keep their place.
    pub fn discontinuity(&mut self) {
        self.end_open_segment();
        if let Some(old) = self.init.take() {
            self.old_inits.push_back((self.init_number, old));
            self.init_number += 1;
        }
        self.video = None;
        self.audio = None;
        self.video_run.last_delta = 0;
        self.audio_run.last_delta = 0;
        self.video_timeline = Timeline::default();
        self.audio_timeline = Timeline::default();
        self.wall_clock_origin = None;
        self.pending_discontinuity = !self.segments.is_empty();
        self.awaiting_keyframe = true;
        self.ended = false;
        self.version += 1;
    }

    /// Writes out what is held and closes the segment in progress; one that got no part yet is
    /// dropped.
    fn end_open_segment(&mut self) {
        self.flush_held();
        self.flush_part();
        match self.segments.back() {
            Some(open) if open.data.is_none() && open.parts.is_empty() => {
                self.segments.pop_back();
            }
            Some(open) if open.data.is_none() => self.close_segment(),
            _ => {}
        }
    }

    /// The held samples (waiting for their successor to know their duration) get the last delta.
    fn flush_held(&mut self) {
        self.video_run.flush_held();
        self.audio_run.flush_held();
    }

    fn ensure_init(&mut self) {
        if self.init.is_none() && (self.video.is_some() || self.audio.is_some()) {
            self.init = Some(mp4::init_segment(self.video.as_ref(), self.audio.as_ref()));
        }
    }

    fn video_frame(&mut self, mut sample: Sample) {
        if self.awaiting_keyframe {
            if !sample.keyframe {
                return;
            }
            self.awaiting_keyframe = false;
        }
        let held = self.video_run.complete_held(sample.dts);
        if !held && !sample.keyframe && self.segments.is_empty() {
            return; // wait for the first keyframe
        }
        self.cut_before(sample.dts, sample.keyframe, self.video_run.last_delta);
        if self.awaiting_keyframe {
            return;
        }
        sample.duration = 0;
        let starts = sample.dts;
        self.video_run.held = Some(sample);
        self.enforce_bounds();
        if !self.early_audio.is_empty() && self.video_run.held.is_some() {
            for early in std::mem::take(&mut self.early_audio) {
                if early.dts + EARLY_AUDIO_MS >= starts {
                    self.audio_frame(early);
                }
            }
        }
    }

    /// Keeps a part and a segment within their caps whatever the timestamps do.
    fn enforce_bounds(&mut self) {
        if self.video_run.samples.len() + self.audio_run.samples.len() >= MAX_PART_SAMPLES {
            self.flush_part();
        }
        let full = self
            .segments
            .back()
            .is_some_and(|s| s.data.is_none() && s.parts.len() >= MAX_SEGMENT_PARTS);
        if full {
            self.flush_part();
            self.close_segment();
            self.video_run.held = None;
            self.audio_run.held = None;
            self.awaiting_keyframe = self.video.is_some();
        }
    }

    fn audio_frame(&mut self, sample: Sample) {
        let before_video =
            self.video.is_some() && self.segments.is_empty() && self.video_run.held.is_none();
        if before_video || (self.awaiting_keyframe && self.video.is_some()) {
            // Audio starts with the first video keyframe; the last few frames wait for it.
            if self.early_audio.len() >= MAX_EARLY_AUDIO {
                self.early_audio.remove(0);
            }
            self.early_audio.push(sample);
            return;
        }
        self.audio_run.complete_held(sample.dts);
        if self.video.is_none() {
            self.cut_before(sample.dts, true, self.audio_run.last_delta);
        }
        self.audio_run.held = Some(sample);
        self.enforce_bounds();
    }

    /// Cuts parts and segments before a lead-track sample at `dts`.
    fn cut_before(&mut self, dts: u64, keyframe: bool, frame_ms: u32) {
        let lead = if self.video.is_some() {
            &self.video_run.samples
        } else {
            &self.audio_run.samples
        };
        let Some(start) = lead.first().map(|s| s.dts) else {
            if self.segments.back().is_none_or(|s| s.data.is_some()) {
                self.open_segment();
            }
            return;
        };
        let segment_ms = self.open_segment_ms() + dts.saturating_sub(start);
        if !keyframe && segment_ms >= self.hard_limit_ms() {
            // No keyframe to cut at: close what there is and wait for one.
            self.flush_part();
            self.close_segment();
            self.audio_run.held = None;
            self.audio_run.samples.clear();
            self.awaiting_keyframe = true;
        } else if keyframe && segment_ms >= u64::from(self.config.segment_target_ms) {
            self.flush_part();
            self.close_segment();
            self.open_segment();
        } else if dts.saturating_sub(start) + u64::from(frame_ms)
            >= u64::from(self.config.part_target_ms)
        {
            self.flush_part();
        }
    }

    fn audio_timescale(&self) -> u32 {
        self.audio
            .as_ref()
            .map_or(mp4::TIMESCALE, mp4::audio_timescale)
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
            init_number: self.init_number,
            discontinuity: std::mem::take(&mut self.pending_discontinuity),
            start: None,
        });
    }

    fn flush_part(&mut self) {
        let video = std::mem::take(&mut self.video_run.samples);
        let audio = std::mem::take(&mut self.audio_run.samples);
        if video.is_empty() && audio.is_empty() {
            return;
        }
        if self.segments.back().is_none_or(|s| s.data.is_some()) {
            self.open_segment();
        }
        let lead = if self.video.is_some() { &video } else { &audio };
        let duration_ms: u64 = lead.iter().map(|s| u64::from(s.duration)).sum();
        let independent = lead.first().is_some_and(|s| s.keyframe);
        let first_dts = lead
            .first()
            .or(video.first())
            .or(audio.first())
            .map(|s| s.dts);
        let wall_clock = self.wall_clock_origin;
        self.fragment_sequence = self.fragment_sequence.wrapping_add(1);
        let timescales = (mp4::TIMESCALE, self.audio_timescale());
        let data = mp4::fragment(self.fragment_sequence, &video, &audio, timescales);
        self.version += 1;
        if let Some(segment) = self.segments.back_mut() {
            if segment.start.is_none() {
                segment.start = first_dts.map(|dts| (dts, wall_clock.map(|o| o + dts)));
            }
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
        self.version += 1;
        self.max_segment_ms = self.max_segment_ms.max(segment.duration_ms);
        let complete = self.segments.iter().filter(|s| s.data.is_some()).count();
        if complete > self.config.window {
            if self.segments.pop_front().is_some_and(|s| s.discontinuity) {
                self.discontinuity_sequence += 1;
            }
            let oldest = self
                .segments
                .front()
                .map_or(self.init_number, |s| s.init_number);
            self.old_inits.retain(|(number, _)| *number >= oldest);
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
        if self.ended {
            return;
        }
        self.ended = true;
        self.version += 1;
        self.flush_held();
        self.flush_part();
        if self
            .segments
            .back()
            .is_some_and(|s| s.data.is_none() && !s.parts.is_empty())
        {
            self.close_segment();
        }
    }

    /// The current init segment (`init.mp4`, then `init{n}.mp4` after codec changes), once the first
    /// frame fixed the tracks.
    pub fn init(&self) -> Option<Bytes> {
        self.init.clone()
    }

    /// The number of the current init segment (0 until the codecs change mid-stream).
    pub fn init_number(&self) -> u32 {
        self.init_number
    }

    /// Init segment number `number`, if it is the current one or a segment in the window needs it.
    pub fn init_by_number(&self, number: u32) -> Option<Bytes> {
        if number == self.init_number {
            return self.init.clone();
        }
        let (_, init) = self.old_inits.iter().find(|(n, _)| *n == number)?;
        Some(init.clone())
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

    /// Whether segment `msn` (with `part`, or complete when `None`) is in the playlist now. A part
    /// index past the last part of a complete segment stands for part 0 of the next segment
    /// (RFC 8216bis 6.2.5.2).
    pub fn has_part(&self, msn: u64, part: Option<usize>) -> bool {
        if self.segments.front().is_some_and(|s| msn < s.msn) {
            return true;
        }
        let Some(segment) = self.segments.iter().find(|s| s.msn == msn) else {
            return false;
        };
        match part {
            None => segment.data.is_some(),
            Some(part) if part < segment.parts.len() => true,
            // Its parts were dropped: only old segments lose them, and those have successors.
            Some(_) if segment.data.is_some() && segment.parts.is_empty() => true,
            Some(_) if segment.data.is_some() => self.has_part(msn + 1, Some(0)),
            Some(_) => false,
        }
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
        // Every EXTINF, rounded to the nearest second, must not exceed it (RFC 8216bis 4.4.3.1).
        let target = (self.max_segment_ms + 500) / 1000;
        let target = target
            .max(u64::from(self.config.segment_target_ms).div_ceil(1000))
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
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                out,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        let prefix = &self.config.uri_prefix;
        let mut next_hint = None;
        let mut map = None;
        for segment in &self.segments {
            if segment.discontinuity {
                let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
            }
            if map != Some(segment.init_number) {
                let uri = init_uri(segment.init_number);
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{prefix}{uri}\"");
                map = Some(segment.init_number);
            }
            if let Some((_, Some(unix_ms))) = segment.start {
                let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", rfc3339(unix_ms));
            }
            for (index, part) in segment.parts.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "#EXT-X-PART:DURATION={:.3},URI=\"{prefix}part{}.{index}.m4s\"{}",
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
                let _ = writeln!(out, "{prefix}seg{}.m4s", segment.msn);
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
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{prefix}part{msn}.{part}.m4s\""
            );
        }
        out
    }
}

/// `2026-12-03T11:45:00.123Z` for Unix milliseconds (the epoch for a time past year 9999).
fn rfc3339(unix_ms: u64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// The file name of init segment `number`: `init.mp4`, then `init1.mp4`, `init2.mp4`, ...
pub fn init_uri(number: u32) -> String {
    match number {
        0 => "init.mp4".to_owned(),
        n => format!("init{n}.mp4"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// H.264 frame `frame` of a 30 fps stream with a keyframe every second.
    fn frame_tag(frame: u32) -> Bytes {
        let key = if frame % 30 == 0 { 0x17 } else { 0x27 };
        Bytes::from(vec![key, 1, 0, 0, 0, 0, 0, 0, 1, 0x65])
    }

    /// Pushes `frames` of a 30 fps stream (frame n at n / 30 s).
    fn push_frames(hls: &mut Segmenter, frames: std::ops::Range<u32>) {
        for frame in frames {
            hls.push_video(frame * 1000 / 30, &frame_tag(frame))
                .unwrap();
        }
    }

    fn fed(frames: u32) -> Segmenter {
        let mut hls = Segmenter::new(HlsConfig {
            window: 2,
            ..HlsConfig::default()
        });
        let avcc = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]);
        hls.push_video(0, &avcc).unwrap();
        push_frames(&mut hls, 0..frames);
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
        // Past the last part of complete segment 3: part 0 of segment 4, which is there.
        assert_eq!(hls.blocking_request(3, Some(99)), BlockingRequest::Ready);
        assert_eq!(hls.blocking_request(4, Some(99)), BlockingRequest::Wait);
        assert_eq!(hls.blocking_request(5, None), BlockingRequest::Wait);
        assert_eq!(hls.blocking_request(7, None), BlockingRequest::TooFar);
        assert!(hls.has_part(0, None));
    }

    #[test]
    fn a_new_publisher_goes_on_after_a_discontinuity() {
        let mut hls = fed(30 * 5);
        let before = hls.playlist();
        hls.discontinuity();
        let avcc = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]);
        hls.push_video(0, &avcc).unwrap();
        // A non-keyframe first is dropped; timestamps start again.
        hls.push_video(
            0,
            &Bytes::from_static(&[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41]),
        )
        .unwrap();
        push_frames(&mut hls, 0..90);
        let after = hls.playlist();
        assert!(
            after.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\""),
            "{after}"
        );
        let last_msn = |p: &str| {
            let last = p.lines().rfind(|l| l.starts_with("seg")).unwrap();
            last[3..last.len() - 4].parse::<u64>().unwrap()
        };
        assert!(last_msn(&after) > last_msn(&before), "{before}\n{after}");
        assert!(!after.contains("ENDLIST"));
    }

    #[test]
    fn a_codec_change_makes_a_new_init_segment_after_a_discontinuity() {
        let mut hls = fed(30 * 3);
        let first_init = hls.init().unwrap();
        // Another avcC (a different SPS length field): a new configuration mid-stream.
        let avcc = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x4d, 0, 0x1f, 0xff, 0xe0, 0]);
        hls.push_video(3000, &avcc).unwrap();
        push_frames(&mut hls, 90..180);
        let playlist = hls.playlist();
        assert_eq!(hls.init_number(), 1);
        assert!(playlist.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\""));
        assert_eq!(hls.init_by_number(1), hls.init());
        assert_ne!(hls.init(), Some(first_init));
        // The same configuration again is no change.
        hls.push_video(6000, &avcc).unwrap();
        assert_eq!(hls.init_number(), 1);
    }

    #[test]
    fn timestamps_that_jump_or_wrap_are_rebased() {
        for start in [0u32, u32::MAX - 2_000] {
            let mut hls = Segmenter::new(HlsConfig::default());
            let avcc = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]);
            hls.push_video(start, &avcc).unwrap();
            for frame in 0..300u32 {
                let tag = frame_tag(frame);
                // Frame 150 on: the encoder's clock restarts at 0 (or the 32-bit clock wraps).
                let ts = if start == 0 && frame >= 150 {
                    (frame - 150) * 40
                } else {
                    start.wrapping_add(frame * 40)
                };
                hls.push_video(ts, &tag).unwrap();
            }
            let playlist = hls.playlist();
            for line in playlist.lines() {
                if let Some(duration) = line.strip_prefix("#EXTINF:") {
                    let duration: f64 = duration.trim_end_matches(',').parse().unwrap();
                    assert!((1.0..=2.5).contains(&duration), "{line}\n{playlist}");
                }
            }
            assert!(playlist.matches("#EXTINF").count() >= 4, "{playlist}");
        }
    }

    #[test]
    fn program_date_time_follows_the_anchor() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_298_300_123), "2026-12-03T11:45:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        let mut hls = Segmenter::new(HlsConfig::default());
        let avcc = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]);
        hls.push_video(0, &avcc).unwrap();
        hls.anchor_wall_clock(5); // no frame yet: nothing to anchor
        assert!(!hls.is_anchored());
        for frame in 0..90u32 {
            let tag = frame_tag(frame);
            hls.push_video(1000 + frame * 1000 / 30, &tag).unwrap();
            hls.anchor_wall_clock(1_796_298_300_000 + u64::from(frame) * 33);
        }
        let playlist = hls.playlist();
        assert!(
            playlist.contains("#EXT-X-PROGRAM-DATE-TIME:2026-12-03T11:45:00.000Z\n"),
            "{playlist}"
        );
        assert!(playlist.contains("#EXT-X-PROGRAM-DATE-TIME:2026-12-03T11:45:02.000Z\n"));
    }

    #[test]
    fn opus_runs_at_48_khz() {
        let mut hls = Segmenter::new(HlsConfig::default());
        let mut head = b"\x90Opus".to_vec();
        head.extend_from_slice(b"OpusHead\x01\x02\x38\x01\x80\xbb\0\0\0\0\0");
        hls.push_audio(0, &Bytes::from(head)).unwrap();
        for n in 0..100u32 {
            let mut frame = b"\x91Opus".to_vec();
            frame.extend_from_slice(&[0xfc, 0xff, 0xfe]);
            hls.push_audio(n * 20, &Bytes::from(frame)).unwrap();
        }
        let init = hls.init().unwrap();
        let mdhd = init.windows(4).position(|w| w == b"mdhd").unwrap();
        let timescale = u32::from_be_bytes(init[mdhd + 16..mdhd + 20].try_into().unwrap());
        assert_eq!(timescale, 48_000);
        let part = hls.part(0, 0).unwrap();
        let trun = part.windows(4).position(|w| w == b"trun").unwrap();
        // version/flags, count, data offset, then the first sample's duration: 20 ms at 48 kHz.
        let duration = u32::from_be_bytes(part[trun + 16..trun + 20].try_into().unwrap());
        assert_eq!(duration, 960);
    }

    #[test]
    fn truncated_configs_are_refused() {
        assert!(Segmenter::new(HlsConfig::default())
            .push_video(0, &Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]))
            .is_err());
        assert!(codec::opus_config(Bytes::from_static(b"OpusHead")).is_err());
    }
}
