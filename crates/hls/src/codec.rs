//! FLV/RTMP tag payloads (legacy and Enhanced RTMP) read into codec configurations and coded frames.

use bytes::Bytes;

/// Why a tag payload or codec configuration record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The payload ended before a field it must carry.
    #[error("{what} truncated")]
    Truncated {
        /// The structure that was cut short.
        what: &'static str,
    },
    /// A configuration record that does not start the way its format requires.
    #[error("{what} malformed")]
    Malformed {
        /// The structure that was refused.
        what: &'static str,
    },
}

/// The video codecs the segmenter packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 (legacy codec id 7 or FourCC `avc1`), configured by an `avcC` record.
    H264,
    /// HEVC (legacy codec id 12 or FourCC `hvc1`), configured by an `hvcC` record.
    Hevc,
    /// AV1 (FourCC `av01`), configured by an `av1C` record.
    Av1,
}

/// The audio codecs the segmenter packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// AAC, configured by an AudioSpecificConfig.
    Aac,
    /// Opus, configured by an `OpusHead`.
    Opus,
}

/// A video track's configuration: the codec and its decoder configuration record, as carried in the
/// sample entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    /// The codec.
    pub codec: VideoCodec,
    /// The record (`avcC`, `hvcC` or `av1C` body).
    pub record: Bytes,
}

/// An audio track's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioConfig {
    /// The codec.
    pub codec: AudioCodec,
    /// The AudioSpecificConfig or `OpusHead`.
    pub record: Bytes,
    /// Channels.
    pub channels: u16,
    /// Sample rate in Hz.
    pub sample_rate: u32,
}

/// What one video tag payload carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoTag {
    /// A sequence header / sequence start.
    Config(VideoConfig),
    /// A coded frame in MP4 sample format (length-prefixed NAL units or AV1 OBUs).
    Frame {
        /// Whether the frame is a random access point.
        keyframe: bool,
        /// Composition time offset in milliseconds (presentation minus decode time).
        cts: i32,
        /// The sample bytes.
        data: Bytes,
    },
    /// Anything the segmenter does not package (end of sequence, metadata, commands, other codecs).
    Ignored,
}

/// What one audio tag payload carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioTag {
    /// A sequence header / sequence start.
    Config(AudioConfig),
    /// A coded audio frame.
    Frame(Bytes),
    /// Anything the segmenter does not package.
    Ignored,
}

fn byte(data: &[u8], at: usize, what: &'static str) -> Result<u8, CodecError> {
    data.get(at).copied().ok_or(CodecError::Truncated { what })
}

fn si24(data: &[u8], at: usize) -> Result<i32, CodecError> {
    let bytes = data.get(at..at + 3).ok_or(CodecError::Truncated {
        what: "composition time",
    })?;
    let raw = bytes.iter().fold(0i32, |acc, b| (acc << 8) | i32::from(*b));
    Ok((raw << 8) >> 8)
}

/// Reads a video tag payload (the FLV VIDEODATA body, legacy or Enhanced RTMP).
pub fn parse_video(payload: &Bytes) -> Result<VideoTag, CodecError> {
    let head = byte(payload, 0, "video tag header")?;
    if head & 0x80 != 0 {
        let frame_type = (head >> 4) & 0x07;
        let packet_type = head & 0x0f;
        let fourcc = payload.get(1..5).ok_or(CodecError::Truncated {
            what: "video FourCC",
        })?;
        let codec = match fourcc {
            b"avc1" => VideoCodec::H264,
            b"hvc1" => VideoCodec::Hevc,
            b"av01" => VideoCodec::Av1,
            _ => return Ok(VideoTag::Ignored),
        };
        let keyframe = frame_type == 1;
        return match packet_type {
            0 => Ok(VideoTag::Config(video_config(codec, payload.slice(5..))?)),
            1 if codec == VideoCodec::Av1 => frame(keyframe, 0, payload, 5),
            1 => frame(keyframe, si24(payload, 5)?, payload, 8),
            3 => frame(keyframe, 0, payload, 5),
            _ => Ok(VideoTag::Ignored),
        };
    }
    let frame_type = head >> 4;
    let codec = match head & 0x0f {
        7 => VideoCodec::H264,
        12 => VideoCodec::Hevc,
        _ => return Ok(VideoTag::Ignored),
    };
    match byte(payload, 1, "AVC packet type")? {
        0 => Ok(VideoTag::Config(video_config(
            codec,
            payload.slice(5.min(payload.len())..),
        )?)),
        1 => frame(frame_type == 1, si24(payload, 2)?, payload, 5),
        _ => Ok(VideoTag::Ignored),
    }
}

fn frame(keyframe: bool, cts: i32, payload: &Bytes, at: usize) -> Result<VideoTag, CodecError> {
    if payload.len() < at {
        return Err(CodecError::Truncated {
            what: "video frame",
        });
    }
    Ok(VideoTag::Frame {
        keyframe,
        cts,
        data: payload.slice(at..),
    })
}

/// Checks a video decoder configuration record (`avcC`, `hvcC`, `av1C`).
pub fn video_config(codec: VideoCodec, record: Bytes) -> Result<VideoConfig, CodecError> {
    let (what, minimum, valid) = match codec {
        VideoCodec::H264 => ("avcC", 7, record.first() == Some(&1)),
        VideoCodec::Hevc => ("hvcC", 23, record.first() == Some(&1)),
        VideoCodec::Av1 => ("av1C", 4, record.first() == Some(&0x81)),
    };
    if record.len() < minimum {
        return Err(CodecError::Truncated { what });
    }
    if !valid {
        return Err(CodecError::Malformed { what });
    }
    Ok(VideoConfig { codec, record })
}

/// Reads an audio tag payload (the FLV AUDIODATA body, legacy or Enhanced RTMP).
pub fn parse_audio(payload: &Bytes) -> Result<AudioTag, CodecError> {
    let head = byte(payload, 0, "audio tag header")?;
    match head >> 4 {
        10 => match byte(payload, 1, "AAC packet type")? {
            0 => Ok(AudioTag::Config(aac_config(payload.slice(2..))?)),
            _ => Ok(AudioTag::Frame(payload.slice(2..))),
        },
        9 => {
            let packet_type = head & 0x0f;
            let fourcc = payload.get(1..5).ok_or(CodecError::Truncated {
                what: "audio FourCC",
            })?;
            let body = payload.slice(5..);
            match (fourcc, packet_type) {
                (b"Opus", 0) => Ok(AudioTag::Config(opus_config(body)?)),
                (b"mp4a", 0) => Ok(AudioTag::Config(aac_config(body)?)),
                (b"Opus" | b"mp4a", 1) => Ok(AudioTag::Frame(body)),
                _ => Ok(AudioTag::Ignored),
            }
        }
        _ => Ok(AudioTag::Ignored),
    }
}

const AAC_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Reads an AAC AudioSpecificConfig: sample rate and channels.
pub fn aac_config(record: Bytes) -> Result<AudioConfig, CodecError> {
    let what = "AudioSpecificConfig";
    let first = byte(&record, 0, what)?;
    let second = byte(&record, 1, what)?;
    let object_type = first >> 3;
    let rate_index = ((first & 0x07) << 1) | (second >> 7);
    let channels = (second >> 3) & 0x0f;
    if object_type == 0 || object_type == 31 {
        return Err(CodecError::Malformed { what });
    }
    let sample_rate = match AAC_RATES.get(usize::from(rate_index)) {
        Some(rate) => *rate,
        None if rate_index == 15 => {
            let bytes = record.get(1..5).ok_or(CodecError::Truncated { what })?;
            let raw = bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
            (raw >> 7) & 0x00ff_ffff
        }
        None => return Err(CodecError::Malformed { what }),
    };
    Ok(AudioConfig {
        codec: AudioCodec::Aac,
        record,
        channels: u16::from(channels.max(1)),
        sample_rate,
    })
}

/// Reads an `OpusHead` (RFC 7845 identification header).
pub fn opus_config(record: Bytes) -> Result<AudioConfig, CodecError> {
    let what = "OpusHead";
    if record.len() < 19 {
        return Err(CodecError::Truncated { what });
    }
    if record.get(..8) != Some(b"OpusHead".as_slice()) {
        return Err(CodecError::Malformed { what });
    }
    let channels = byte(&record, 9, what)?;
    let family = byte(&record, 18, what)?;
    if channels == 0 || (family != 0 && record.len() < 21 + usize::from(channels)) {
        return Err(CodecError::Malformed { what });
    }
    Ok(AudioConfig {
        codec: AudioCodec::Opus,
        record,
        channels: u16::from(channels),
        sample_rate: 48000,
    })
}

/// What a video configuration record says about the picture: for the visual sample entry, the API's
/// stream details and codec strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoParams {
    /// Width in pixels (after cropping).
    pub width: u32,
    /// Height in pixels (after cropping).
    pub height: u32,
    /// H.264 `profile_idc`, HEVC `general_profile_idc`, AV1 `seq_profile`.
    pub profile: u8,
    /// H.264 `level_idc`, HEVC `general_level_idc`, AV1 `seq_level_idx[0]`.
    pub level: u8,
}

/// Reads width, height, profile and level from a video configuration record: the first SPS of an
/// `avcC` or `hvcC`, the sequence header OBU of an `av1C`. Typed errors, never a panic, on any input.
pub fn video_params(config: &VideoConfig) -> Result<VideoParams, CodecError> {
    match config.codec {
        VideoCodec::H264 => h264_params(&config.record),
        VideoCodec::Hevc => hevc_params(&config.record),
        VideoCodec::Av1 => av1_params(&config.record),
    }
}

/// A big-endian bit reader over a byte slice, with Exp-Golomb codes.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
    what: &'static str,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { data, at: 0, what }
    }

    fn bit(&mut self) -> Result<u32, CodecError> {
        let byte = byte(self.data, self.at / 8, self.what)?;
        let bit = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Ok(u32::from(bit))
    }

    fn bits(&mut self, count: u32) -> Result<u32, CodecError> {
        (0..count.min(32)).try_fold(0u32, |acc, _| Ok((acc << 1) | self.bit()?))
    }

    fn skip(&mut self, count: usize) -> Result<(), CodecError> {
        self.at += count;
        if self.at > self.data.len() * 8 {
            return Err(CodecError::Truncated { what: self.what });
        }
        Ok(())
    }

    fn flag(&mut self) -> Result<bool, CodecError> {
        Ok(self.bit()? == 1)
    }

    /// `ue(v)`.
    fn ue(&mut self) -> Result<u32, CodecError> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(CodecError::Malformed { what: self.what });
            }
        }
        Ok(((1u64 << zeros) - 1 + u64::from(self.bits(zeros)?)) as u32)
    }

    /// `se(v)`.
    fn se(&mut self) -> Result<i64, CodecError> {
        let code = i64::from(self.ue()?);
        Ok(if code % 2 == 1 {
            (code + 1) / 2
        } else {
            -(code / 2)
        })
    }
}

/// The RBSP of a NAL unit: emulation-prevention bytes (`00 00 03`) removed.
fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

fn u16_at(data: &[u8], at: usize, what: &'static str) -> Result<usize, CodecError> {
    Ok(usize::from(byte(data, at, what)?) << 8 | usize::from(byte(data, at + 1, what)?))
}

fn slice_at<'a>(
    data: &'a [u8],
    at: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], CodecError> {
    data.get(at..at.saturating_add(len))
        .ok_or(CodecError::Truncated { what })
}

fn cropped(full: u32, unit: u32, crop: (u32, u32), what: &'static str) -> Result<u32, CodecError> {
    let cut = unit
        .checked_mul(crop.0.saturating_add(crop.1))
        .ok_or(CodecError::Malformed { what })?;
    full.checked_sub(cut).ok_or(CodecError::Malformed { what })
}

fn h264_params(avcc: &[u8]) -> Result<VideoParams, CodecError> {
    let what = "H.264 SPS";
    if byte(avcc, 5, what)? & 0x1f == 0 {
        return Err(CodecError::Malformed { what });
    }
    let len = u16_at(avcc, 6, what)?;
    let sps = rbsp(slice_at(avcc, 8, len, what)?);
    let mut bits = Bits::new(&sps, what);
    bits.skip(8)?; // NAL header
    let profile = bits.bits(8)? as u8;
    bits.skip(8)?;
    let level = bits.bits(8)? as u8;
    bits.ue()?;
    let mut chroma_format = 1;
    let mut separate_planes = false;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = bits.ue()?;
        if chroma_format == 3 {
            separate_planes = bits.flag()?;
        }
        bits.ue()?;
        bits.ue()?;
        bits.skip(1)?;
        if bits.flag()? {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for list in 0..lists {
                if bits.flag()? {
                    let size = if list < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + bits.se()? + 256) % 256;
                        }
                        last = if next == 0 { last } else { next };
                    }
                }
            }
        }
    }
    bits.ue()?; // log2_max_frame_num_minus4
    match bits.ue()? {
        0 => {
            bits.ue()?;
        }
        1 => {
            bits.skip(1)?;
            bits.se()?;
            bits.se()?;
            let cycle = bits.ue()?;
            if cycle > 255 {
                return Err(CodecError::Malformed { what });
            }
            for _ in 0..cycle {
                bits.se()?;
            }
        }
        _ => {}
    }
    bits.ue()?; // max_num_ref_frames
    bits.skip(1)?;
    let width_mbs = bits.ue()?.saturating_add(1);
    let height_units = bits.ue()?.saturating_add(1);
    let frame_mbs_only = bits.flag()?;
    if !frame_mbs_only {
        bits.skip(1)?;
    }
    bits.skip(1)?;
    let mut crop = (0, 0, 0, 0);
    if bits.flag()? {
        crop = (bits.ue()?, bits.ue()?, bits.ue()?, bits.ue()?);
    }
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let (unit_x, unit_y) = match (chroma_format, separate_planes) {
        (0, _) | (3, true) => (1, field_factor),
        (1, _) => (2, 2 * field_factor),
        (2, _) => (2, field_factor),
        _ => (1, field_factor),
    };
    let width = width_mbs.saturating_mul(16);
    let height = height_units.saturating_mul(16 * field_factor);
    Ok(VideoParams {
        width: cropped(width, unit_x, (crop.0, crop.1), what)?,
        height: cropped(height, unit_y, (crop.2, crop.3), what)?,
        profile,
        level,
    })
}

fn hevc_params(hvcc: &[u8]) -> Result<VideoParams, CodecError> {
    let what = "HEVC SPS";
    let arrays = byte(hvcc, 22, what)?;
    let mut at = 23;
    let mut sps = None;
    for _ in 0..arrays {
        let nal_type = byte(hvcc, at, what)? & 0x3f;
        let count = u16_at(hvcc, at + 1, what)?;
        at += 3;
        for _ in 0..count {
            let len = u16_at(hvcc, at, what)?;
            let nal = slice_at(hvcc, at + 2, len, what)?;
            if nal_type == 33 && sps.is_none() {
                sps = Some(nal);
            }
            at += 2 + len;
        }
    }
    let sps = rbsp(sps.ok_or(CodecError::Malformed { what })?);
    let mut bits = Bits::new(&sps, what);
    bits.skip(16 + 4)?; // NAL header, sps_video_parameter_set_id
    let sub_layers = bits.bits(3)? as usize;
    bits.skip(1)?;
    bits.skip(2 + 1)?;
    let profile = bits.bits(5)? as u8;
    bits.skip(32 + 4 + 43 + 1)?;
    let level = bits.bits(8)? as u8;
    let mut present = Vec::with_capacity(sub_layers);
    for _ in 0..sub_layers {
        present.push((bits.flag()?, bits.flag()?));
    }
    if sub_layers > 0 {
        bits.skip(2 * (8 - sub_layers))?;
    }
    for (profile_present, level_present) in present {
        if profile_present {
            bits.skip(88)?;
        }
        if level_present {
            bits.skip(8)?;
        }
    }
    bits.ue()?; // sps_seq_parameter_set_id
    let chroma_format = bits.ue()?;
    if chroma_format == 3 {
        bits.skip(1)?;
    }
    let width = bits.ue()?;
    let height = bits.ue()?;
    let mut crop = (0, 0, 0, 0);
    if bits.flag()? {
        crop = (bits.ue()?, bits.ue()?, bits.ue()?, bits.ue()?);
    }
    let (unit_x, unit_y) = match chroma_format {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    Ok(VideoParams {
        width: cropped(width, unit_x, (crop.0, crop.1), what)?,
        height: cropped(height, unit_y, (crop.2, crop.3), what)?,
        profile,
        level,
    })
}

fn av1_params(av1c: &[u8]) -> Result<VideoParams, CodecError> {
    let what = "AV1 sequence header";
    let mut at = 4;
    loop {
        let header = byte(av1c, at, what)?;
        let obu_type = (header >> 3) & 0x0f;
        let extension = header & 0x04 != 0;
        if header & 0x02 == 0 {
            return Err(CodecError::Malformed { what });
        }
        at += 1 + usize::from(extension);
        let mut size = 0usize;
        for shift in 0..8 {
            let b = byte(av1c, at, what)?;
            at += 1;
            size |= usize::from(b & 0x7f) << (7 * shift);
            if b & 0x80 == 0 {
                break;
            }
        }
        let obu = slice_at(av1c, at, size, what)?;
        if obu_type == 1 {
            return av1_sequence_header(obu);
        }
        at += size;
    }
}

fn av1_sequence_header(obu: &[u8]) -> Result<VideoParams, CodecError> {
    let what = "AV1 sequence header";
    let mut bits = Bits::new(obu, what);
    let profile = bits.bits(3)? as u8;
    bits.skip(1)?;
    let reduced = bits.flag()?;
    let level;
    if reduced {
        level = bits.bits(5)? as u8;
    } else {
        let mut buffer_delay_bits = 0;
        let timing_info = bits.flag()?;
        let mut decoder_model = false;
        if timing_info {
            bits.skip(64)?;
            if bits.flag()? {
                // uvlc num_ticks_per_picture_minus_1
                let mut zeros = 0;
                while !bits.flag()? {
                    zeros += 1;
                    if zeros >= 32 {
                        return Err(CodecError::Malformed { what });
                    }
                }
                bits.skip(zeros)?;
            }
            decoder_model = bits.flag()?;
            if decoder_model {
                buffer_delay_bits = bits.bits(5)? as usize + 1;
                bits.skip(32 + 5 + 5)?;
            }
        }
        let display_delay = bits.flag()?;
        let points = bits.bits(5)? + 1;
        let mut first_level = None;
        for _ in 0..points {
            bits.skip(12)?;
            let point_level = bits.bits(5)? as u8;
            first_level.get_or_insert(point_level);
            if point_level > 7 {
                bits.skip(1)?;
            }
            if decoder_model && bits.flag()? {
                bits.skip(2 * buffer_delay_bits + 1)?;
            }
            if display_delay && bits.flag()? {
                bits.skip(4)?;
            }
        }
        level = first_level.unwrap_or(0);
    }
    let width_bits = bits.bits(4)? + 1;
    let height_bits = bits.bits(4)? + 1;
    let width = bits.bits(width_bits)?.saturating_add(1);
    let height = bits.bits(height_bits)?.saturating_add(1);
    Ok(VideoParams {
        width,
        height,
        profile,
        level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Bytes {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
            .into()
    }

    /// Records FFmpeg wrote for a 320x180 test picture (x264 High, x265 Main, libaom).
    fn records() -> [(VideoCodec, Bytes, u8, u8); 3] {
        [
            (
                VideoCodec::H264,
                hex("0164000cffe1001a6764000cacd941419f9f011000000300100000030320f142996001000668ebe3cb22c0"),
                100,
                12,
            ),
            (
                VideoCodec::Hevc,
                hex("0101600000009000000000003cf000fcfdf8f800000f03200001001840010c01ffff01600000030090000003000003003c959809210001002b42010101600000030090000003000003003ca00a080b9f796566924caf016808000003000800000300c84022000100074401c172b46240"),
                1,
                60,
            ),
            (VideoCodec::Av1, hex("81000c000a0b000000043cfeccdaf90040"), 0, 0),
        ]
    }

    #[test]
    fn dimensions_profile_and_level_from_each_record() {
        for (codec, record, profile, level) in records() {
            let config = video_config(codec, record).unwrap();
            assert_eq!(
                video_params(&config),
                Ok(VideoParams {
                    width: 320,
                    height: 180,
                    profile,
                    level
                }),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn cut_or_corrupted_records_are_errors_not_panics() {
        for (codec, record, ..) in records() {
            for len in 0..record.len() {
                let config = VideoConfig {
                    codec,
                    record: record.slice(..len),
                };
                let _ = video_params(&config);
            }
            for at in 0..record.len() {
                let mut bytes = record.to_vec();
                bytes[at] ^= 0xff;
                let config = VideoConfig {
                    codec,
                    record: bytes.into(),
                };
                let _ = video_params(&config);
            }
        }
    }
}
