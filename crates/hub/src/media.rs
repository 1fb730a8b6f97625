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
    /// An E-RTMP v2 multitrack message (`Multitrack` packet type), which may carry several tracks.
    pub multitrack: bool,
    /// An E-RTMP video `Metadata` packet (colorInfo), which players want before the first frame.
    pub metadata: bool,
    /// The track ids the message carries: track 0 for single-track audio and video, none for data.
    pub tracks: TrackSet,
}

/// A set of E-RTMP v2 track ids (0..=255), small enough to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrackSet([u64; 4]);

impl TrackSet {
    /// The set holding only `track`.
    pub fn single(track: u8) -> Self {
        let mut set = Self::default();
        set.insert(track);
        set
    }

    /// Adds `track` to the set.
    pub fn insert(&mut self, track: u8) {
        if let Some(word) = self.0.get_mut(usize::from(track >> 6)) {
            *word |= 1 << (track & 63);
        }
    }

    /// Whether `track` is in the set.
    pub fn contains(self, track: u8) -> bool {
        self.0
            .get(usize::from(track >> 6))
            .is_some_and(|word| word & (1 << (track & 63)) != 0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == [0; 4]
    }

    /// The track ids in ascending order.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0..=u8::MAX).filter(move |&track| self.contains(track))
    }
}

/// The E-RTMP v2 `AvMultitrackType`: how the tracks of a multitrack message are laid out.
const ONE_TRACK: u8 = 0;
const MANY_TRACKS_MANY_CODECS: u8 = 2;

/// Reads the track list of a multitrack message whose body starts at `pos` (right after the byte holding
/// the `AvMultitrackType` and the inner packet type). Returns the first track's FourCC and every track id
/// read before the payload ends; a truncated message yields what could be read.
fn multitrack_tracks(payload: &[u8], layout: u8, mut pos: usize) -> (Option<[u8; 4]>, TrackSet) {
    let mut codec = None;
    let mut tracks = TrackSet::default();
    if layout != MANY_TRACKS_MANY_CODECS {
        codec = fourcc(payload, pos);
        pos += 4;
    }
    // Each track takes at least its id byte, so the loop ends within the payload length.
    while pos < payload.len() {
        if layout == MANY_TRACKS_MANY_CODECS {
            let Some(track_codec) = fourcc(payload, pos) else {
                break;
            };
            codec.get_or_insert(track_codec);
            pos += 4;
        }
        let Some(&track) = payload.get(pos) else {
            break;
        };
        tracks.insert(track);
        pos += 1;
        if layout == ONE_TRACK {
            break;
        }
        let Some(&[high, middle, low]) = payload.get(pos..pos + 3) else {
            break;
        };
        let size = usize::from(high) << 16 | usize::from(middle) << 8 | usize::from(low);
        pos += 3 + size;
    }
    (codec, tracks)
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

/// The default track (id 0) of a multitrack message, rebuilt as a single-track message for a player that
/// did not declare multitrack: legacy FLV where the codec is AVC, AAC or MP3 (every player takes it), an
/// E-RTMP single-track message otherwise. `None` when the payload is no multitrack message, carries no
/// track 0, or is truncated. ModEx prefixes are dropped.
pub fn default_track_payload(video: bool, payload: &[u8]) -> Option<Vec<u8>> {
    let first = *payload.first()?;
    let (multitrack, enhanced) = if video {
        (6, first & 0x80 != 0)
    } else {
        (5, first >> 4 == 9)
    };
    if !enhanced {
        return None;
    }
    let (packet_type, pos) = skip_mod_ex(payload, first & 0x0F, 1)?;
    if packet_type != multitrack {
        return None;
    }
    let byte = *payload.get(pos)?;
    let (layout, inner_type) = (byte >> 4, byte & 0x0F);
    let (codec, body) = default_track_body(payload, layout, pos + 1)?;
    let frame_type = (first >> 4) & 0x07;
    let mut out = Vec::with_capacity(body.len() + 5);
    const SEQUENCE_START: u8 = 0;
    const CODED_FRAMES: u8 = 1;
    const SEQUENCE_END: u8 = 2;
    const CODED_FRAMES_X: u8 = 3;
    match (video, &codec, inner_type) {
        (true, b"avc1", SEQUENCE_START) => out.extend([frame_type << 4 | 7, 0, 0, 0, 0]),
        // CodedFrames carries the composition time first, as the legacy AVC packet does.
        (true, b"avc1", CODED_FRAMES) => out.extend([frame_type << 4 | 7, 1]),
        (true, b"avc1", CODED_FRAMES_X) => out.extend([frame_type << 4 | 7, 1, 0, 0, 0]),
        (true, b"avc1", SEQUENCE_END) => out.extend([frame_type << 4 | 7, 2, 0, 0, 0]),
        (false, b"mp4a", SEQUENCE_START) => out.extend([0xAF, 0]),
        (false, b"mp4a", CODED_FRAMES) => out.extend([0xAF, 1]),
        (false, b".mp3", CODED_FRAMES) => out.push(0x2F),
        (true, _, _) => {
            out.push(0x80 | frame_type << 4 | inner_type);
            out.extend(codec);
        }
        (false, _, _) => {
            out.push(0x90 | inner_type);
            out.extend(codec);
        }
    }
    out.extend_from_slice(body);
    Some(out)
}

/// Finds track 0 in a multitrack body starting at `pos`: its FourCC and its bytes.
fn default_track_body(payload: &[u8], layout: u8, mut pos: usize) -> Option<([u8; 4], &[u8])> {
    let mut codec = [0; 4];
    if layout != MANY_TRACKS_MANY_CODECS {
        codec = fourcc(payload, pos)?;
        pos += 4;
    }
    while pos < payload.len() {
        if layout == MANY_TRACKS_MANY_CODECS {
            codec = fourcc(payload, pos)?;
            pos += 4;
        }
        let track = *payload.get(pos)?;
        pos += 1;
        if layout == ONE_TRACK {
            return (track == 0).then(|| (codec, payload.get(pos..).unwrap_or_default()));
        }
        let &[high, middle, low] = payload.get(pos..pos + 3)? else {
            return None;
        };
        let size = usize::from(high) << 16 | usize::from(middle) << 8 | usize::from(low);
        pos += 3;
        let body = payload.get(pos..pos + size)?;
        if track == 0 {
            return Some((codec, body));
        }
        pos += size;
    }
    None
}

/// Classifies a video message payload (type 9).
pub fn classify_video(payload: &[u8]) -> MediaInfo {
    let Some(&first) = payload.first() else {
        return MediaInfo::default();
    };
    if first & 0x80 != 0 {
        let frame_type = (first >> 4) & 0x07;
        let Some((mut packet_type, pos)) = skip_mod_ex(payload, first & 0x0F, 1) else {
            return MediaInfo {
                enhanced: true,
                ..MediaInfo::default()
            };
        };
        const MULTITRACK: u8 = 6;
        let multitrack = packet_type == MULTITRACK;
        let (codec, tracks) = if multitrack {
            let Some(&byte) = payload.get(pos) else {
                return MediaInfo {
                    enhanced: true,
                    multitrack,
                    ..MediaInfo::default()
                };
            };
            packet_type = byte & 0x0F;
            multitrack_tracks(payload, byte >> 4, pos + 1)
        } else {
            (fourcc(payload, pos), TrackSet::single(0))
        };
        const SEQUENCE_END: u8 = 2;
        const METADATA: u8 = 4;
        // A Metadata or SequenceEnd packet flagged as a key frame starts no GOP.
        let starts_gop = !matches!(packet_type, SEQUENCE_END | METADATA);
        return MediaInfo {
            keyframe: starts_gop && (frame_type == 1 || frame_type == 4),
            sequence_header: packet_type == 0 || packet_type == 5,
            codec,
            enhanced: true,
            multitrack,
            metadata: packet_type == METADATA,
            tracks,
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
        tracks: TrackSet::single(0),
        ..MediaInfo::default()
    }
}

/// Classifies an audio message payload (type 8).
pub fn classify_audio(payload: &[u8]) -> MediaInfo {
    let Some(&first) = payload.first() else {
        return MediaInfo::default();
    };
    let sound_format = first >> 4;
    if sound_format == 9 {
        let Some((mut packet_type, pos)) = skip_mod_ex(payload, first & 0x0F, 1) else {
            return MediaInfo {
                enhanced: true,
                ..MediaInfo::default()
            };
        };
        const MULTITRACK: u8 = 5;
        let multitrack = packet_type == MULTITRACK;
        let (codec, tracks) = if multitrack {
            let Some(&byte) = payload.get(pos) else {
                return MediaInfo {
                    enhanced: true,
                    multitrack,
                    ..MediaInfo::default()
                };
            };
            packet_type = byte & 0x0F;
            multitrack_tracks(payload, byte >> 4, pos + 1)
        } else {
            (fourcc(payload, pos), TrackSet::single(0))
        };
        return MediaInfo {
            keyframe: false,
            sequence_header: packet_type == 0,
            codec,
            enhanced: true,
            multitrack,
            metadata: false,
            tracks,
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
        tracks: TrackSet::single(0),
        ..MediaInfo::default()
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
                enhanced: false,
                tracks: TrackSet::single(0),
                ..MediaInfo::default()
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
    fn multitrack_track_ids() {
        // ManyTracks AAC sequence start: tracks 0 and 1, each with a 2-byte body.
        let many = classify_audio(b"\x95\x10mp4a\x00\x00\x00\x02\x12\x10\x01\x00\x00\x02\x11\x90");
        assert!(many.multitrack && many.sequence_header);
        assert_eq!(many.codec, Some(*b"mp4a"));
        assert_eq!(many.tracks.iter().collect::<Vec<_>>(), vec![0, 1]);
        // ManyTracksManyCodecs video coded frames: avc1 on track 2, hvc1 on track 5.
        let mixed = classify_video(b"\x96\x21avc1\x02\x00\x00\x01\xAAhvc1\x05\x00\x00\x01\xBB");
        assert!(mixed.keyframe && !mixed.sequence_header);
        assert_eq!(mixed.codec, Some(*b"avc1"));
        assert_eq!(mixed.tracks.iter().collect::<Vec<_>>(), vec![2, 5]);
        // OneTrack: the rest of the payload is the track's body.
        let one = classify_video(b"\x96\x00hvc1\x07\x01\x02\x03");
        assert_eq!(one.tracks.iter().collect::<Vec<_>>(), vec![7]);
        // A size running past the end keeps the tracks read so far.
        let cut = classify_audio(b"\x95\x11Opus\x03\xFF\xFF\xFF\x00");
        assert_eq!(cut.tracks.iter().collect::<Vec<_>>(), vec![3]);
        assert_eq!(classify_video(b"\x17\x01").tracks, TrackSet::single(0));
    }

    #[test]
    fn the_default_track_as_a_single_track_message() {
        // Two AAC tracks: track 0 becomes a legacy AAC packet.
        let many = b"\x95\x11mp4a\x01\x00\x00\x01\xB1\x00\x00\x00\x02\xA0\xA1";
        assert_eq!(
            default_track_payload(false, many),
            Some(b"\xAF\x01\xA0\xA1".to_vec())
        );
        let start = b"\x95\x00mp4a\x00\x12\x10";
        assert_eq!(
            default_track_payload(false, start),
            Some(b"\xAF\x00\x12\x10".to_vec())
        );
        // Opus stays enhanced, single-track.
        let opus = b"\x95\x01Opus\x00\x55";
        assert_eq!(
            default_track_payload(false, opus),
            Some(b"\x91Opus\x55".to_vec())
        );
        // AVC key frame (CodedFramesX) and HEVC with many codecs.
        let avc = b"\x96\x03avc1\x00\x00\x00\x00\x05";
        let legacy = default_track_payload(true, avc).expect("track 0");
        assert_eq!(legacy, b"\x17\x01\x00\x00\x00\x00\x00\x00\x05".to_vec());
        assert!(classify_video(&legacy).keyframe);
        let mixed = b"\x96\x21av01\x01\x00\x00\x01\xAAhvc1\x00\x00\x00\x01\xBB";
        assert_eq!(
            default_track_payload(true, mixed),
            Some(b"\x91hvc1\xBB".to_vec())
        );
        // No track 0, single-track and legacy messages, truncation.
        assert_eq!(default_track_payload(false, b"\x95\x01Opus\x02\x55"), None);
        assert_eq!(default_track_payload(true, b"\x91hvc1\x00"), None);
        assert_eq!(default_track_payload(false, b"\xAF\x01"), None);
        assert_eq!(
            default_track_payload(false, b"\x95\x11mp4a\x00\x00\x00\x09\x01"),
            None
        );
    }

    #[test]
    fn color_info_metadata_is_no_keyframe() {
        let info = classify_video(b"\x94avc1\x02\x00");
        assert!(info.metadata && !info.keyframe && !info.sequence_header);
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
