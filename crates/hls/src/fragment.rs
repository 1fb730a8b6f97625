//! A fragmented MP4 file writer's core, apart from the playlist: FLV/RTMP audio and video payloads in,
//! the bytes to append to one CMAF-style file out (the init segment once, then a `moof` + `mdat`
//! fragment per GOP, or per [`FragmenterConfig::max_fragment_ms`] in a long one). Each output is whole:
//! a file cut after any of them reads to its last fragment. Used by recording (`record_format = "mp4"`).

use bytes::{Bytes, BytesMut};

use crate::codec::{self, AudioConfig, AudioTag, CodecError, VideoConfig, VideoTag};
use crate::mp4::{self, Run, Sample};

/// When fragments are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmenterConfig {
    /// A fragment ends before the first keyframe (or audio frame, audio only) after this many
    /// milliseconds.
    pub fragment_ms: u32,
    /// A fragment ends before any frame once it holds this many milliseconds (long GOPs).
    pub max_fragment_ms: u32,
}

impl Default for FragmenterConfig {
    fn default() -> Self {
        Self {
            fragment_ms: 1000,
            max_fragment_ms: 2000,
        }
    }
}

/// Samples a fragment holds at most, whatever the timestamps say (a stream whose time stands still).
const MAX_FRAGMENT_SAMPLES: usize = 4096;

/// Fragmented MP4 out of FLV payloads, for one file: [`push_video`](Self::push_video) and
/// [`push_audio`](Self::push_audio) return what to append, [`finish`](Self::finish) the rest.
#[derive(Debug)]
pub struct Fragmenter {
    config: FragmenterConfig,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// Whether the init segment has been handed out (the tracks are then fixed).
    started: bool,
    video_run: Run,
    audio_run: Run,
    sequence: u32,
}

impl Fragmenter {
    /// A fragmenter for a new file.
    pub fn new(config: FragmenterConfig) -> Self {
        Self {
            config,
            video: None,
            audio: None,
            started: false,
            video_run: Run::default(),
            audio_run: Run::default(),
            sequence: 0,
        }
    }

    /// Whether the init segment has been handed out.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Sample bytes taken but not yet handed out in a fragment (for size limits).
    pub fn pending_bytes(&self) -> u64 {
        let held = [&self.video_run.held, &self.audio_run.held]
            .into_iter()
            .flatten();
        let queued = self.video_run.samples.iter().chain(&self.audio_run.samples);
        held.chain(queued)
            .map(|sample| sample.data.len() as u64)
            .sum()
    }

    /// Takes one video tag payload at `timestamp` milliseconds; returns the bytes to append, if any.
    pub fn push_video(
        &mut self,
        timestamp: u32,
        payload: &Bytes,
    ) -> Result<Option<Bytes>, CodecError> {
        match codec::parse_video(payload)? {
            VideoTag::Config(config) => {
                if !self.started {
                    self.video = Some(config);
                }
                Ok(None)
            }
            VideoTag::Frame {
                keyframe,
                cts,
                data,
            } => {
                let mut out = BytesMut::new();
                self.start(&mut out);
                if self.video.is_none() {
                    return Ok(None);
                }
                let sample = Sample {
                    dts: u64::from(timestamp),
                    duration: 0,
                    cts,
                    keyframe,
                    data,
                };
                self.video_frame(sample, &mut out);
                Ok(non_empty(out))
            }
            VideoTag::Ignored => Ok(None),
        }
    }

    /// Takes one audio tag payload at `timestamp` milliseconds; returns the bytes to append, if any.
    pub fn push_audio(
        &mut self,
        timestamp: u32,
        payload: &Bytes,
    ) -> Result<Option<Bytes>, CodecError> {
        match codec::parse_audio(payload)? {
            AudioTag::Config(config) => {
                if !self.started {
                    self.audio = Some(config);
                }
                Ok(None)
            }
            AudioTag::Frame(data) => {
                let mut out = BytesMut::new();
                self.start(&mut out);
                if self.audio.is_none() {
                    return Ok(None);
                }
                let sample = Sample {
                    dts: u64::from(timestamp),
                    duration: 0,
                    cts: 0,
                    keyframe: true,
                    data,
                };
                self.audio_frame(sample, &mut out);
                Ok(non_empty(out))
            }
            AudioTag::Ignored => Ok(None),
        }
    }

    /// Ends the file: the held samples take the last frame duration seen; returns the last fragment.
    pub fn finish(&mut self) -> Option<Bytes> {
        self.video_run.flush_held();
        self.audio_run.flush_held();
        let mut out = BytesMut::new();
        self.flush(&mut out);
        non_empty(out)
    }

    /// Emits the init segment at the first frame, with the tracks configured by then.
    fn start(&mut self, out: &mut BytesMut) {
        if !self.started && (self.video.is_some() || self.audio.is_some()) {
            self.started = true;
            out.extend_from_slice(&mp4::init_segment(self.video.as_ref(), self.audio.as_ref()));
        }
    }

    fn video_frame(&mut self, sample: Sample, out: &mut BytesMut) {
        let held = self.video_run.complete_held(sample.dts);
        // A file's video starts at a keyframe: what comes before it cannot be decoded.
        if !held && !sample.keyframe && self.video_run.samples.is_empty() {
            return;
        }
        self.cut_before(sample.dts, sample.keyframe, out);
        self.video_run.held = Some(sample);
    }

    fn audio_frame(&mut self, sample: Sample, out: &mut BytesMut) {
        self.audio_run.complete_held(sample.dts);
        if self.video.is_none() {
            self.cut_before(sample.dts, true, out);
        }
        self.audio_run.held = Some(sample);
    }

    /// Cuts a fragment before a lead-track sample at `dts` when the pending one is long enough.
    fn cut_before(&mut self, dts: u64, keyframe: bool, out: &mut BytesMut) {
        let lead = if self.video.is_some() {
            &self.video_run.samples
        } else {
            &self.audio_run.samples
        };
        let Some(start) = lead.first().map(|sample| sample.dts) else {
            return;
        };
        let pending = dts.saturating_sub(start);
        let samples = self.video_run.samples.len() + self.audio_run.samples.len();
        if (keyframe && pending >= u64::from(self.config.fragment_ms))
            || pending >= u64::from(self.config.max_fragment_ms)
            || samples >= MAX_FRAGMENT_SAMPLES
        {
            self.flush(out);
        }
    }

    fn flush(&mut self, out: &mut BytesMut) {
        if self.video_run.samples.is_empty() && self.audio_run.samples.is_empty() {
            return;
        }
        self.sequence = self.sequence.wrapping_add(1);
        let audio_timescale = self
            .audio
            .as_ref()
            .map_or(mp4::TIMESCALE, mp4::audio_timescale);
        let fragment = mp4::fragment(
            self.sequence,
            &self.video_run.samples,
            &self.audio_run.samples,
            (mp4::TIMESCALE, audio_timescale),
        );
        out.extend_from_slice(&fragment);
        self.video_run.samples.clear();
        self.audio_run.samples.clear();
    }
}

fn non_empty(out: BytesMut) -> Option<Bytes> {
    (!out.is_empty()).then(|| out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AVCC: &[u8] = &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0];
    const ASC: &[u8] = &[0xaf, 0, 0x12, 0x10];

    fn video(key: bool) -> Bytes {
        Bytes::from(vec![
            if key { 0x17 } else { 0x27 },
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            1,
            0x65,
        ])
    }

    fn boxes(mut data: &[u8]) -> Vec<[u8; 4]> {
        let mut kinds = Vec::new();
        while data.len() >= 8 {
            let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
            kinds.push(data[4..8].try_into().unwrap());
            data = &data[size..];
        }
        kinds
    }

    #[test]
    fn init_once_then_a_fragment_per_gop() {
        let mut fragmenter = Fragmenter::new(FragmenterConfig::default());
        let mut file = BytesMut::new();
        let mut push = |out: Option<Bytes>| {
            if let Some(out) = out {
                file.extend_from_slice(&out);
            }
        };
        push(fragmenter.push_video(0, &Bytes::from_static(AVCC)).unwrap());
        push(fragmenter.push_audio(0, &Bytes::from_static(ASC)).unwrap());
        for frame in 0..90u32 {
            let at = frame * 1000 / 30;
            push(fragmenter.push_video(at, &video(frame % 30 == 0)).unwrap());
            push(
                fragmenter
                    .push_audio(at, &Bytes::from_static(&[0xaf, 1, 0x21]))
                    .unwrap(),
            );
        }
        assert!(fragmenter.pending_bytes() > 0);
        push(fragmenter.finish());
        assert_eq!(fragmenter.pending_bytes(), 0);
        let kinds = boxes(&file);
        assert_eq!(&kinds[..2], &[*b"ftyp", *b"moov"]);
        assert_eq!(kinds.iter().filter(|k| *k == b"moof").count(), 3);
        assert_eq!(kinds.iter().filter(|k| *k == b"mdat").count(), 3);
    }

    #[test]
    fn video_before_a_keyframe_is_left_out_and_audio_only_cuts_on_time() {
        let mut fragmenter = Fragmenter::new(FragmenterConfig::default());
        fragmenter.push_video(0, &Bytes::from_static(AVCC)).unwrap();
        let out = fragmenter.push_video(0, &video(false)).unwrap();
        assert!(out.is_some(), "the init segment");
        assert!(fragmenter.finish().is_none(), "no sample before a keyframe");

        let mut audio_only = Fragmenter::new(FragmenterConfig::default());
        audio_only.push_audio(0, &Bytes::from_static(ASC)).unwrap();
        let fragments = (0..100u32)
            .filter_map(|n| {
                audio_only
                    .push_audio(n * 23, &Bytes::from_static(&[0xaf, 1, 0x21]))
                    .unwrap()
            })
            .count();
        assert_eq!(
            fragments, 3,
            "init with the first frame, then one fragment per second"
        );
    }

    #[test]
    fn arbitrary_payloads_never_panic() {
        // A fixed xorshift sequence: headers of every kind, random bodies, random timestamps.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut fragmenter = Fragmenter::new(FragmenterConfig::default());
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let mut payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(first) = payload.first_mut() {
                *first = [0x17, 0x27, 0x97, 0x90, 0xaf, 0x9f][(next() % 6) as usize];
            }
            let timestamp = (next() % 100_000) as u32;
            let payload = Bytes::from(payload);
            if next() % 2 == 0 {
                let _ = fragmenter.push_video(timestamp, &payload);
            } else {
                let _ = fragmenter.push_audio(timestamp, &payload);
            }
        }
        let _ = fragmenter.finish();
    }

    #[test]
    fn a_stream_whose_time_stands_still_is_still_cut() {
        let mut fragmenter = Fragmenter::new(FragmenterConfig::default());
        fragmenter.push_video(0, &Bytes::from_static(AVCC)).unwrap();
        for frame in 0..10_000u32 {
            fragmenter.push_video(0, &video(frame == 0)).unwrap();
            let pending = fragmenter.pending_bytes();
            assert!(pending <= 4097 * 5, "{frame}: {pending} (5-byte samples)");
        }
    }

    #[test]
    fn truncated_payloads_are_errors() {
        let mut fragmenter = Fragmenter::new(FragmenterConfig::default());
        assert!(fragmenter
            .push_video(0, &Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]))
            .is_err());
        assert!(fragmenter.push_audio(0, &Bytes::new()).is_err());
    }
}
