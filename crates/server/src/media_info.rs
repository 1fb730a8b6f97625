//! What a stream carries, as the API describes it: the video and audio codecs (legacy FLV ids and
//! Enhanced RTMP FourCCs), the frame rate measured from the published timestamps, and the audio sample
//! rate and channels from the audio sequence header (AAC AudioSpecificConfig, OpusHead) or the legacy FLV
//! audio header. Read from the hub's counters and sequence headers when the API asks; every parser takes
//! the publisher's bytes and returns `None` on anything short or unknown.

use rtmp_hub::{SequenceHeaders, StreamStats};
use serde::Serialize;

/// A stream's video, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoInfo {
    /// The FourCC (`avc1`, `hvc1`, `av01`, `vp09`, ...) or the legacy codec's name.
    pub codec: String,
    /// Pixels, from the sequence header (H.264/HEVC SPS, AV1 sequence header; `null` for other codecs
    /// and before one).
    pub width: Option<u32>,
    /// Pixels; see `width`.
    pub height: Option<u32>,
    /// The codec profile by name (`High`, `Main 10`, ...), or its number when it has no common name.
    pub profile: Option<String>,
    /// The codec level as written in the specifications (`4.1`, `5.0`).
    pub level: Option<String>,
    /// Frames per second over the published timestamps (`null` before two frames).
    pub frame_rate: Option<f64>,
}

/// A stream's audio, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AudioInfo {
    /// The FourCC (`mp4a`, `.mp3`, `Opus`, `fLaC`, `ac-3`, `ec-3`) or the legacy codec's name.
    pub codec: String,
    /// Samples per second.
    pub sample_rate: Option<u32>,
    /// Channels.
    pub channels: Option<u8>,
}

/// The stream's video, if it has published any.
pub fn video(stats: &StreamStats, headers: &SequenceHeaders) -> Option<VideoInfo> {
    let codec = stats.video_codec?;
    // Width, height, profile and level from the latest sequence start (H.264 SPS, HEVC SPS, AV1
    // sequence header), parsed on demand here, never on the media path.
    let codec_id = codec;
    let params = headers.video.as_ref().and_then(|header| {
        match rtmp_hls::codec::parse_video(header).ok()? {
            rtmp_hls::codec::VideoTag::Config(config) => {
                rtmp_hls::codec::video_params(&config).ok()
            }
            _ => None,
        }
    });
    Some(VideoInfo {
        codec: fourcc_name(codec),
        width: params.map(|p| p.width),
        height: params.map(|p| p.height),
        profile: params.map(|p| profile_name(&codec_id, p.profile)),
        level: params.map(|p| level_name(&codec_id, p.level)),
        frame_rate: frame_rate(stats.video_frames, stats.video_timestamps),
    })
}

/// A profile number by the name its specification gives it.
fn profile_name(codec: &[u8; 4], profile: u8) -> String {
    let name = match (codec, profile) {
        (b"avc1", 66) => "Constrained Baseline",
        (b"avc1", 77) => "Main",
        (b"avc1", 88) => "Extended",
        (b"avc1", 100) => "High",
        (b"avc1", 110) => "High 10",
        (b"avc1", 122) => "High 4:2:2",
        (b"avc1", 244) => "High 4:4:4 Predictive",
        (b"hvc1", 1) => "Main",
        (b"hvc1", 2) => "Main 10",
        (b"hvc1", 3) => "Main Still Picture",
        (b"hvc1", 4) => "Range Extensions",
        (b"av01", 0) => "Main",
        (b"av01", 1) => "High",
        (b"av01", 2) => "Professional",
        _ => return profile.to_string(),
    };
    name.to_owned()
}

/// A level number as its specification writes it: H.264 `level_idc` 41 is 4.1, HEVC
/// `general_level_idc` 123 is 4.1, AV1 `seq_level_idx` 9 is 4.1.
fn level_name(codec: &[u8; 4], level: u8) -> String {
    match codec {
        b"avc1" => format!("{}.{}", level / 10, level % 10),
        b"hvc1" => format!("{}.{}", level / 30, (level % 30) / 3),
        b"av01" => format!("{}.{}", 2 + (level >> 2), level & 3),
        _ => level.to_string(),
    }
}

/// Frames per second from `frames` video frames published between the two timestamps (ms).
pub fn frame_rate(frames: u64, timestamps: Option<(u32, u32)>) -> Option<f64> {
    let (first, last) = timestamps?;
    let span = last.checked_sub(first).filter(|span| *span > 0)?;
    if frames < 2 {
        return None;
    }
    let rate = (frames - 1) as f64 * 1000.0 / f64::from(span);
    Some((rate * 100.0).round() / 100.0)
}

/// The stream's audio, if it has published any.
pub fn audio(stats: &StreamStats, headers: &SequenceHeaders) -> Option<AudioInfo> {
    let flags = stats.audio_flags?;
    let sound_format = flags >> 4;
    let codec = match stats.audio_codec {
        Some(codec) => fourcc_name(codec),
        None => legacy_audio_name(sound_format).to_owned(),
    };
    let from_header = headers.audio.as_deref().and_then(audio_header_rate);
    let (sample_rate, channels) = match from_header {
        Some((rate, channels)) => (Some(rate), Some(channels)),
        // Enhanced RTMP audio carries no rate in its first byte.
        None if sound_format == 9 => (None, None),
        None => legacy_rate_and_channels(flags),
    };
    Some(AudioInfo {
        codec,
        sample_rate,
        channels,
    })
}

/// A FourCC as text; `?` for bytes that are not printable.
fn fourcc_name(codec: [u8; 4]) -> String {
    codec
        .iter()
        .map(|&byte| {
            if byte.is_ascii_graphic() {
                char::from(byte)
            } else {
                '?'
            }
        })
        .collect()
}

fn legacy_audio_name(sound_format: u8) -> &'static str {
    match sound_format {
        0 | 3 => "pcm",
        1 => "adpcm",
        2 | 14 => ".mp3",
        4..=6 => "nellymoser",
        7 => "alaw",
        8 => "ulaw",
        10 => "mp4a",
        11 => "speex",
        _ => "unknown",
    }
}

/// The rate and channels of a legacy FLV audio header byte (Speex is always 16 kHz mono).
fn legacy_rate_and_channels(flags: u8) -> (Option<u32>, Option<u8>) {
    match flags >> 4 {
        11 => (Some(16_000), Some(1)),
        14 => (Some(8_000), Some(1)),
        9 => (None, None),
        _ => {
            let rate = [5_512, 11_025, 22_050, 44_100][usize::from((flags >> 2) & 3)];
            (Some(rate), Some((flags & 1) + 1))
        }
    }
}

/// The rate and channels an audio sequence header says: legacy AAC (`AF 00` + AudioSpecificConfig) or
/// an Enhanced RTMP single-track sequence start of `mp4a` or `Opus`.
fn audio_header_rate(payload: &[u8]) -> Option<(u32, u8)> {
    let first = *payload.first()?;
    if first >> 4 == 10 {
        return (payload.get(1) == Some(&0))
            .then(|| aac_config(payload.get(2..)?))
            .flatten();
    }
    const SEQUENCE_START: u8 = 0;
    if first >> 4 != 9 || first & 0x0F != SEQUENCE_START {
        return None;
    }
    let body = payload.get(5..)?;
    match payload.get(1..5)? {
        b"mp4a" => aac_config(body),
        b"Opus" => opus_head(body),
        _ => None,
    }
}

/// Sample rate and channels of an AAC AudioSpecificConfig (ISO 14496-3 1.6.2.1).
fn aac_config(config: &[u8]) -> Option<(u32, u8)> {
    const RATES: [u32; 13] = [
        96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025,
        8_000, 7_350,
    ];
    let mut bits = Bits::new(config);
    if bits.read(5)? == 31 {
        bits.read(6)?;
    }
    let index = bits.read(4)?;
    let rate = if index == 15 {
        bits.read(24)?
    } else {
        *RATES.get(index as usize)?
    };
    let channels = u8::try_from(bits.read(4)?).ok()?;
    Some((rate, channels))
}

/// Sample rate and channels of an `OpusHead` (RFC 7845 5.1).
fn opus_head(head: &[u8]) -> Option<(u32, u8)> {
    if head.get(..8)? != b"OpusHead" {
        return None;
    }
    let channels = *head.get(9)?;
    let rate = u32::from_le_bytes(head.get(12..16)?.try_into().ok()?);
    Some((rate, channels))
}

/// A big-endian bit reader over a byte slice.
struct Bits<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Bits<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    /// The next `count` (at most 32) bits; `None` past the end.
    fn read(&mut self, count: usize) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..count {
            let byte = *self.bytes.get(self.position / 8)?;
            let bit = (byte >> (7 - self.position % 8)) & 1;
            value = value << 1 | u32::from(bit);
            self.position += 1;
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn stats(video: Option<[u8; 4]>, audio: Option<[u8; 4]>, flags: Option<u8>) -> StreamStats {
        StreamStats {
            video_codec: video,
            audio_codec: audio,
            audio_flags: flags,
            video_frames: 51,
            video_timestamps: Some((1000, 3000)),
            ..StreamStats::default()
        }
    }

    #[test]
    fn the_frame_rate_is_measured_from_the_timestamps() {
        assert_eq!(frame_rate(51, Some((1000, 3000))), Some(25.0));
        assert_eq!(frame_rate(31, Some((0, 1001))), Some(29.97));
        assert_eq!(frame_rate(1, Some((0, 0))), None);
        assert_eq!(frame_rate(5, Some((100, 50))), None);
        assert_eq!(frame_rate(5, None), None);
    }

    #[test]
    fn aac_from_its_audio_specific_config() {
        // AAC LC, 44.1 kHz, stereo: 0x12 0x10.
        let headers = SequenceHeaders {
            audio: Some(Bytes::from_static(b"\xaf\x00\x12\x10")),
            video: None,
        };
        let audio = audio(&stats(None, Some(*b"mp4a"), Some(0xaf)), &headers);
        assert_eq!(
            audio,
            Some(AudioInfo {
                codec: "mp4a".into(),
                sample_rate: Some(44_100),
                channels: Some(2)
            })
        );
        // 48 kHz mono, as an Enhanced RTMP sequence start.
        assert_eq!(audio_header_rate(b"\x90mp4a\x11\x88"), Some((48_000, 1)));
        // Truncated: no answer, no panic.
        assert_eq!(audio_header_rate(b"\xaf\x00\x12"), None);
        assert_eq!(audio_header_rate(b"\x90mp4"), None);
    }

    #[test]
    fn opus_and_legacy_headers() {
        let mut opus = b"\x90OpusOpusHead\x01\x02\x38\x01".to_vec();
        opus.extend_from_slice(&48_000u32.to_le_bytes());
        assert_eq!(audio_header_rate(&opus), Some((48_000, 2)));
        // MP3, 22 kHz, mono.
        let mp3 = audio(
            &stats(None, Some(*b".mp3"), Some(0x2a)),
            &SequenceHeaders::default(),
        );
        assert_eq!(
            mp3.map(|a| (a.sample_rate, a.channels)),
            Some((Some(22_050), Some(1)))
        );
        let speex = audio(&stats(None, None, Some(0xb2)), &SequenceHeaders::default());
        assert_eq!(
            speex.map(|a| (a.codec, a.sample_rate)),
            Some(("speex".to_owned(), Some(16_000)))
        );
    }

    #[test]
    fn video_names_enhanced_fourccs_and_has_no_dimensions_without_a_sequence_header() {
        let video = video(
            &stats(Some(*b"hvc1"), None, None),
            &SequenceHeaders::default(),
        )
        .expect("video");
        assert_eq!(video.codec, "hvc1");
        assert_eq!(video.frame_rate, Some(25.0));
        assert_eq!(video.width, None);
        assert!(audio(&stats(None, None, None), &SequenceHeaders::default()).is_none());
    }

    #[test]
    fn profiles_and_levels_read_as_their_specifications_write_them() {
        assert_eq!(profile_name(b"avc1", 100), "High");
        assert_eq!(level_name(b"avc1", 31), "3.1");
        assert_eq!(profile_name(b"hvc1", 2), "Main 10");
        assert_eq!(level_name(b"hvc1", 123), "4.1");
        assert_eq!(level_name(b"hvc1", 150), "5.0");
        assert_eq!(level_name(b"av01", 9), "4.1");
        assert_eq!(profile_name(b"avc1", 7), "7");
    }
}
