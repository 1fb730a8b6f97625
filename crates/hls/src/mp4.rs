//! Fragmented MP4 (CMAF) boxes: the init segment (`ftyp` + `moov`) and fragments (`moof` + `mdat`).

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{AudioCodec, AudioConfig, VideoCodec, VideoConfig};

/// The timescale of the video track and of AAC: FLV timestamps are milliseconds.
pub const TIMESCALE: u32 = 1000;
/// The timescale of Opus tracks: 48 kHz, as Opus in ISOBMFF requires.
pub const OPUS_TIMESCALE: u32 = 48_000;

/// The timescale of an audio track.
pub fn audio_timescale(audio: &AudioConfig) -> u32 {
    match audio.codec {
        AudioCodec::Aac => TIMESCALE,
        AudioCodec::Opus => OPUS_TIMESCALE,
    }
}
/// Track id of the video track.
pub const VIDEO_TRACK: u32 = 1;
/// Track id of the audio track.
pub const AUDIO_TRACK: u32 = 2;

/// One sample of a fragment.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Decode time in milliseconds.
    pub dts: u64,
    /// Duration in milliseconds.
    pub duration: u32,
    /// Composition offset in milliseconds.
    pub cts: i32,
    /// Whether this is a sync sample.
    pub keyframe: bool,
    /// The sample bytes.
    pub data: Bytes,
}

/// One track's samples of the fragment being built. Its latest sample is held until the next one (or
/// the end of the stream) gives its duration.
#[derive(Debug, Default)]
pub(crate) struct Run {
    /// The latest sample, its duration not known yet.
    pub(crate) held: Option<Sample>,
    /// The samples with their durations, in decode order.
    pub(crate) samples: Vec<Sample>,
    /// The duration of the last sample completed, for a held one at the end of the stream.
    pub(crate) last_delta: u32,
}

impl Run {
    /// The next sample starts at `next_dts`: the held one (if any) gets its duration and joins the
    /// samples. Whether a sample was held.
    pub(crate) fn complete_held(&mut self, next_dts: u64) -> bool {
        let Some(mut sample) = self.held.take() else {
            return false;
        };
        let delta = u32::try_from(next_dts.saturating_sub(sample.dts)).unwrap_or(0);
        sample.duration = delta;
        self.last_delta = delta;
        self.samples.push(sample);
        true
    }

    /// At the end of the stream, the held sample (if any) takes the last duration seen.
    pub(crate) fn flush_held(&mut self) {
        if let Some(mut sample) = self.held.take() {
            sample.duration = self.last_delta;
            self.samples.push(sample);
        }
    }
}

fn put_box(out: &mut BytesMut, kind: &[u8; 4], body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out);
    patch_u32(out, start, out.len() - start);
}

fn put_full_box(
    out: &mut BytesMut,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut BytesMut),
) {
    put_box(out, kind, |out| {
        out.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(out);
    });
}

fn patch_u32(out: &mut BytesMut, at: usize, value: usize) {
    let value = u32::try_from(value).unwrap_or(u32::MAX).to_be_bytes();
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&value);
    }
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Builds the init segment for the given tracks.
pub fn init_segment(video: Option<&VideoConfig>, audio: Option<&AudioConfig>) -> Bytes {
    let mut out = BytesMut::new();
    put_box(&mut out, b"ftyp", |out| {
        out.put_slice(b"iso6");
        out.put_u32(0);
        for brand in [b"iso6", b"cmfc", b"isom", b"mp41"] {
            out.put_slice(brand);
        }
    });
    put_box(&mut out, b"moov", |out| {
        put_full_box(out, b"mvhd", 0, 0, |out| {
            out.put_u32(0);
            out.put_u32(0);
            out.put_u32(TIMESCALE);
            out.put_u32(0);
            out.put_u32(0x0001_0000);
            out.put_u16(0x0100);
            out.put_bytes(0, 10);
            MATRIX.iter().for_each(|m| out.put_u32(*m));
            out.put_bytes(0, 24);
            out.put_u32(AUDIO_TRACK + 1);
        });
        if let Some(video) = video {
            let dimensions = video_dimensions(video);
            trak(out, VIDEO_TRACK, TIMESCALE, dimensions, |out| {
                video_entry(out, video, dimensions)
            });
        }
        if let Some(audio) = audio {
            trak(out, AUDIO_TRACK, audio_timescale(audio), (0, 0), |out| {
                audio_entry(out, audio)
            });
        }
        put_box(out, b"mvex", |out| {
            let tracks = [video.map(|_| VIDEO_TRACK), audio.map(|_| AUDIO_TRACK)];
            for track in tracks.into_iter().flatten() {
                put_full_box(out, b"trex", 0, 0, |out| {
                    out.put_u32(track);
                    out.put_u32(1);
                    out.put_u32(0);
                    out.put_u32(0);
                    out.put_u32(0);
                });
            }
        });
    });
    out.freeze()
}

/// Width and height from the configuration record's parameter sets; (0, 0) when unreadable
/// (decoders then take them from the stream).
fn video_dimensions(video: &VideoConfig) -> (u16, u16) {
    crate::codec::video_params(video).map_or((0, 0), |p| {
        (
            u16::try_from(p.width).unwrap_or(0),
            u16::try_from(p.height).unwrap_or(0),
        )
    })
}

fn trak(
    out: &mut BytesMut,
    track: u32,
    timescale: u32,
    (width, height): (u16, u16),
    entry: impl FnOnce(&mut BytesMut),
) {
    let is_video = track == VIDEO_TRACK;
    put_box(out, b"trak", |out| {
        put_full_box(out, b"tkhd", 0, 3, |out| {
            out.put_u32(0);
            out.put_u32(0);
            out.put_u32(track);
            out.put_u32(0);
            out.put_u32(0);
            out.put_bytes(0, 8);
            out.put_u16(0);
            out.put_u16(0);
            out.put_u16(if is_video { 0 } else { 0x0100 });
            out.put_u16(0);
            MATRIX.iter().for_each(|m| out.put_u32(*m));
            out.put_u32(u32::from(width) << 16);
            out.put_u32(u32::from(height) << 16);
        });
        put_box(out, b"mdia", |out| {
            put_full_box(out, b"mdhd", 0, 0, |out| {
                out.put_u32(0);
                out.put_u32(0);
                out.put_u32(timescale);
                out.put_u32(0);
                out.put_u16(0x55c4); // "und"
                out.put_u16(0);
            });
            put_full_box(out, b"hdlr", 0, 0, |out| {
                out.put_u32(0);
                out.put_slice(if is_video { b"vide" } else { b"soun" });
                out.put_bytes(0, 12);
                out.put_slice(if is_video {
                    b"VideoHandler\0"
                } else {
                    b"SoundHandler\0"
                });
            });
            put_box(out, b"minf", |out| {
                if is_video {
                    put_full_box(out, b"vmhd", 0, 1, |out| out.put_bytes(0, 8));
                } else {
                    put_full_box(out, b"smhd", 0, 0, |out| out.put_u32(0));
                }
                put_box(out, b"dinf", |out| {
                    put_full_box(out, b"dref", 0, 0, |out| {
                        out.put_u32(1);
                        put_full_box(out, b"url ", 0, 1, |_| {});
                    });
                });
                put_box(out, b"stbl", |out| {
                    put_full_box(out, b"stsd", 0, 0, |out| {
                        out.put_u32(1);
                        entry(out);
                    });
                    put_full_box(out, b"stts", 0, 0, |out| out.put_u32(0));
                    put_full_box(out, b"stsc", 0, 0, |out| out.put_u32(0));
                    put_full_box(out, b"stsz", 0, 0, |out| out.put_bytes(0, 8));
                    put_full_box(out, b"stco", 0, 0, |out| out.put_u32(0));
                });
            });
        });
    });
}

fn video_entry(out: &mut BytesMut, video: &VideoConfig, (width, height): (u16, u16)) {
    let (kind, config) = match video.codec {
        VideoCodec::H264 => (b"avc1", b"avcC"),
        VideoCodec::Hevc => (b"hvc1", b"hvcC"),
        VideoCodec::Av1 => (b"av01", b"av1C"),
    };
    put_box(out, kind, |out| {
        out.put_bytes(0, 6);
        out.put_u16(1);
        out.put_bytes(0, 16);
        out.put_u16(width);
        out.put_u16(height);
        out.put_u32(0x0048_0000);
        out.put_u32(0x0048_0000);
        out.put_u32(0);
        out.put_u16(1);
        out.put_bytes(0, 32);
        out.put_u16(0x0018);
        out.put_u16(0xffff);
        put_box(out, config, |out| out.put_slice(&video.record));
    });
}

fn audio_entry(out: &mut BytesMut, audio: &AudioConfig) {
    let kind = match audio.codec {
        AudioCodec::Aac => b"mp4a",
        AudioCodec::Opus => b"Opus",
    };
    put_box(out, kind, |out| {
        out.put_bytes(0, 6);
        out.put_u16(1);
        out.put_bytes(0, 8);
        out.put_u16(audio.channels);
        out.put_u16(16);
        out.put_u32(0);
        out.put_u32(audio.sample_rate.min(0xffff) << 16);
        match audio.codec {
            AudioCodec::Aac => esds(out, &audio.record),
            AudioCodec::Opus => dops(out, &audio.record),
        }
    });
}

fn put_descriptor(out: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    let mut inner = BytesMut::new();
    body(&mut inner);
    let len = u32::try_from(inner.len()).unwrap_or(0x0fff_ffff) & 0x0fff_ffff;
    out.put_u8(tag);
    out.put_u8(0x80 | ((len >> 21) & 0x7f) as u8);
    out.put_u8(0x80 | ((len >> 14) & 0x7f) as u8);
    out.put_u8(0x80 | ((len >> 7) & 0x7f) as u8);
    out.put_u8((len & 0x7f) as u8);
    out.put_slice(&inner);
}

fn esds(out: &mut BytesMut, record: &[u8]) {
    put_full_box(out, b"esds", 0, 0, |out| {
        put_descriptor(out, 3, |out| {
            out.put_u16(AUDIO_TRACK as u16);
            out.put_u8(0);
            put_descriptor(out, 4, |out| {
                out.put_u8(0x40);
                out.put_u8(0x15);
                out.put_bytes(0, 3);
                out.put_u32(0);
                out.put_u32(0);
                put_descriptor(out, 5, |out| out.put_slice(record));
            });
            put_descriptor(out, 6, |out| out.put_u8(2));
        });
    });
}

/// `dOps` from an `OpusHead` (checked by [`crate::codec::opus_config`]): the same fields, big-endian.
fn dops(out: &mut BytesMut, head: &[u8]) {
    let at = |i: usize| head.get(i).copied().unwrap_or(0);
    put_box(out, b"dOps", |out| {
        out.put_u8(0);
        out.put_u8(at(9));
        out.put_u16(u16::from_le_bytes([at(10), at(11)]));
        out.put_u32(u32::from_le_bytes([at(12), at(13), at(14), at(15)]));
        out.put_u16(u16::from_le_bytes([at(16), at(17)]));
        out.put_u8(at(18));
        if at(18) != 0 {
            out.put_slice(head.get(19..21 + usize::from(at(9))).unwrap_or_default());
        }
    });
}

/// Builds one fragment (`moof` + `mdat`) from the samples of each track (empty tracks are left out).
/// Sample times are milliseconds; `timescales` (video, audio) are those of the init segment.
pub fn fragment(
    sequence: u32,
    video: &[Sample],
    audio: &[Sample],
    timescales: (u32, u32),
) -> Bytes {
    let tracks = [(VIDEO_TRACK, video), (AUDIO_TRACK, audio)];
    let scale = |track: u32, ms: u64| {
        let timescale = if track == VIDEO_TRACK {
            timescales.0
        } else {
            timescales.1
        };
        ms.saturating_mul(u64::from(timescale)) / u64::from(TIMESCALE)
    };
    let mut out = BytesMut::new();
    let mut offset_slots = Vec::new();
    put_box(&mut out, b"moof", |out| {
        put_full_box(out, b"mfhd", 0, 0, |out| out.put_u32(sequence));
        for (track, samples) in tracks {
            let Some(first) = samples.first() else {
                continue;
            };
            let is_video = track == VIDEO_TRACK;
            put_box(out, b"traf", |out| {
                put_full_box(out, b"tfhd", 0, 0x02_0000, |out| out.put_u32(track));
                put_full_box(out, b"tfdt", 1, 0, |out| {
                    out.put_u64(scale(track, first.dts))
                });
                let flags = 0x1 | 0x100 | 0x200 | 0x400 | if is_video { 0x800 } else { 0 };
                put_full_box(out, b"trun", 1, flags, |out| {
                    out.put_u32(u32::try_from(samples.len()).unwrap_or(u32::MAX));
                    offset_slots.push(out.len());
                    out.put_u32(0);
                    for sample in samples {
                        let duration = scale(track, u64::from(sample.duration));
                        out.put_u32(u32::try_from(duration).unwrap_or(u32::MAX));
                        out.put_u32(u32::try_from(sample.data.len()).unwrap_or(u32::MAX));
                        out.put_u32(if sample.keyframe {
                            0x0200_0000
                        } else {
                            0x0101_0000
                        });
                        if is_video {
                            out.put_i32(sample.cts);
                        }
                    }
                });
            });
        }
    });
    let mut data_at = out.len() + 8;
    let present = tracks.iter().filter(|(_, samples)| !samples.is_empty());
    for (slot, (_, samples)) in offset_slots.iter().zip(present) {
        patch_u32(&mut out, *slot, data_at);
        data_at += samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    put_box(&mut out, b"mdat", |out| {
        for (_, samples) in tracks {
            samples.iter().for_each(|s| out.put_slice(&s.data));
        }
    });
    out.freeze()
}
