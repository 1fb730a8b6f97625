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
