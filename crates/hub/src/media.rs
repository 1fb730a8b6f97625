//! Media classification: is a message a video keyframe, a codec sequence header, which codec? Understands
//! the legacy FLV tag headers and the Enhanced RTMP (v1/v2) extended headers (PROTOCOL.md §7).

/// What the hub needs to know about an audio or video message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MediaInfo {
    /// A video key frame (legacy frame type 1, or an enhanced key or generated-key frame). Always false
    /// for audio.
    pub keyframe: bool,
    /// A codec sequence header (AVC/HEVC decoder configuration, AAC AudioSpecificConfig, or an enhanced
    /// `SequenceStart`), which players need before any frame.
    pub sequence_header: bool,
    /// The FourCC (or legacy codec name) when known, e.g. `b"avc1"`, `b"hvc1"`, `b"mp4a"`.
    pub codec: Option<[u8; 4]>,
    /// Whether the payload uses an Enhanced RTMP extended header.
    pub enhanced: bool,
}

fn fourcc(payload: &[u8], at: usize) -> Option<[u8; 4]> {
    payload.get(at..at + 4).and_then(|b| b.try_into().ok())
}

/// Skips E-RTMP v2 ModEx prefixes; returns the position of the byte after the packet type and the final
/// packet type.
fn skip_mod_ex(payload: &[u8], mut packet_type: u8, mut pos: usize) -> Option<(u8, usize)> {
    const MOD_EX: u8 = 7;
    let mut guard = 0;
    while packet_type == MOD_EX {
        guard += 1;
        if guard > 16 {
            return None;
        }
        let mut size = usize::from(*payload.get(pos)?) + 1;
        pos += 1;
        if size == 256 {
            let hi = usize::from(*payload.get(pos)?);
            let lo = usize::from(*payload.get(pos + 1)?);
            size = (hi << 8 | lo) + 1;
            pos += 2;
        }
        pos += size;
        packet_type = *payload.get(pos)? & 0x0F;
        pos += 1;
    }
    Some((packet_type, pos))
}

/// Classifies a video message payload (type 9).
pub fn classify_video(payload: &[u8]) -> MediaInfo {
    let Some(&first) = payload.first() else {
        return MediaInfo::default();
    };
    if first & 0x80 != 0 {
        let frame_type = (first >> 4) & 0x07;
        let Some((mut packet_type, mut pos)) = skip_mod_ex(payload, first & 0x0F, 1) else {
            return MediaInfo {
                enhanced: true,
                ..MediaInfo::default()
            };
        };
        const MULTITRACK: u8 = 6;
        if packet_type == MULTITRACK {
            let Some(&byte) = payload.get(pos) else {
                return MediaInfo {
                    enhanced: true,
                    ..MediaInfo::default()
                };
            };
            packet_type = byte & 0x0F;
            pos += 1;
        }
        let codec = fourcc(payload, pos);
        return MediaInfo {
            keyframe: frame_type == 1 || frame_type == 4,
            sequence_header: packet_type == 0 || packet_type == 5,
            codec,
            enhanced: true,
        };
    }
    let frame_type = first >> 4;
    let codec_id = first & 0x0F;
    let codec = match codec_id {
        7 => Some(*b"avc1"),
        12 => Some(*b"hvc1"),
        2 => Some(*b"h263"),
        4 | 5 => Some(*b"vp6f"),
        _ => None,
    };
    let has_packet_type = matches!(codec_id, 7 | 12);
    MediaInfo {
        keyframe: frame_type == 1,
        sequence_header: has_packet_type && payload.get(1) == Some(&0),
        codec,
        enhanced: false,
    }
}

/// Classifies an audio message payload (type 8).
pub fn classify_audio(payload: &[u8]) -> MediaInfo {
    let Some(&first) = payload.first() else {
        return MediaInfo::default();
    };
    let sound_format = first >> 4;
    if sound_format == 9 {
        let Some((mut packet_type, mut pos)) = skip_mod_ex(payload, first & 0x0F, 1) else {
            return MediaInfo {
                enhanced: true,
                ..MediaInfo::default()
            };
        };
        const MULTITRACK: u8 = 5;
        if packet_type == MULTITRACK {
            let Some(&byte) = payload.get(pos) else {
                return MediaInfo {
                    enhanced: true,
                    ..MediaInfo::default()
                };
            };
            packet_type = byte & 0x0F;
            pos += 1;
        }
        return MediaInfo {
            keyframe: false,
            sequence_header: packet_type == 0,
            codec: fourcc(payload, pos),
            enhanced: true,
        };
    }
    let codec = match sound_format {
        10 => Some(*b"mp4a"),
        2 | 14 => Some(*b".mp3"),
        _ => None,
    };
    MediaInfo {
        keyframe: false,
        sequence_header: sound_format == 10 && payload.get(1) == Some(&0),
        codec,
        enhanced: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_avc_and_aac() {
        assert_eq!(
            classify_video(&[0x17, 0x00, 0, 0, 0]),
            MediaInfo {
                keyframe: true,
                sequence_header: true,
                codec: Some(*b"avc1"),
                enhanced: false
            }
        );
        assert!(classify_video(&[0x17, 0x01, 0, 0, 0]).keyframe);
        assert!(!classify_video(&[0x27, 0x01, 0, 0, 0]).keyframe);
        assert!(classify_audio(&[0xAF, 0x00, 0x12, 0x10]).sequence_header);
        assert!(!classify_audio(&[0xAF, 0x01, 0x21]).sequence_header);
    }

    #[test]
    fn legacy_hevc_as_codec_id_12() {
        let info = classify_video(&[0x1C, 0x00, 0, 0, 0]);
        assert_eq!(
            (info.keyframe, info.sequence_header, info.codec),
            (true, true, Some(*b"hvc1"))
        );
    }

    #[test]
    fn enhanced_video_headers() {
        // HEVC sequence start, keyframe with CodedFramesX, inter frame (PROTOCOL.md 7.1 byte examples).
        let seq = classify_video(b"\x90hvc1\x01\x02");
        assert_eq!(
            (seq.keyframe, seq.sequence_header, seq.codec, seq.enhanced),
            (true, true, Some(*b"hvc1"), true)
        );
        let key = classify_video(b"\x93hvc1\x00\x00\x00\x05");
        assert!(key.keyframe && !key.sequence_header);
        let inter = classify_video(b"\xA1av01\x12");
        assert_eq!((inter.keyframe, inter.codec), (false, Some(*b"av01")));
        // Multitrack OneTrack: 0x80|key<<4|6, then 0x00|CodedFrames, FourCC, trackId.
        let track = classify_video(b"\x96\x01vp09\x01\xAA");
        assert_eq!(
            (track.keyframe, track.sequence_header, track.codec),
            (true, false, Some(*b"vp09"))
        );
        // ModEx prefix (TimestampOffsetNano, 3 bytes) before CodedFrames.
        let modex = classify_video(b"\x97\x02\x00\x00\x10\x01hvc1");
        assert_eq!((modex.keyframe, modex.codec), (true, Some(*b"hvc1")));
    }

    #[test]
    fn enhanced_audio_headers() {
        let opus = classify_audio(b"\x90Opus");
        assert_eq!(
            (opus.sequence_header, opus.codec, opus.enhanced),
            (true, Some(*b"Opus"), true)
        );
        assert!(!classify_audio(b"\x91Opus\x00").sequence_header);
        let multitrack = classify_audio(b"\x95\x00fLaC\x01");
        assert_eq!(
            (multitrack.sequence_header, multitrack.codec),
            (true, Some(*b"fLaC"))
        );
    }

    #[test]
    fn truncated_payloads_never_panic() {
        for payload in [
            &b""[..],
            b"\x90",
            b"\x97",
            b"\x97\xFF",
            b"\x96",
            b"\x95",
            b"\x9F\x00",
        ] {
            let _ = classify_video(payload);
            let _ = classify_audio(payload);
        }
    }
}
