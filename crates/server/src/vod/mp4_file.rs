//! An MP4 file as the VOD reader uses it, demuxed by the `mp4` crate (its sample tables: times, sync
//! samples, composition offsets): H.264 and AAC tracks become the FLV tags RTMP carries (AVC sequence
//! header from `avcC`, AAC AudioSpecificConfig from `esds`, samples as they are), interleaved by time.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use bytes::{BufMut, Bytes, BytesMut};
use mp4::{Mp4Reader, TrackType};
use rtmp_flv::{MetadataBuilder, Tag, TAG_AUDIO, TAG_VIDEO};

/// Samples a track may have: a bound on the time table kept per track (about 4 MiB each).
const MAX_SAMPLES: usize = 512 * 1024;

/// What a track carries, as FLV writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// H.264: tags `0x17`/`0x27`, AVC packet type 1, composition time.
    Avc,
    /// AAC: tags `0xAF`, AAC packet type 1.
    Aac,
}

#[derive(Debug)]
struct Track {
    id: u32,
    kind: Kind,
    timescale: u64,
    /// Each sample's decoding time, in the track's timescale (sample `n` is at index `n - 1`).
    times: Vec<u64>,
    /// Sync sample numbers (1-based), `None` when every sample is one.
    sync: Option<Vec<u32>>,
    /// The next sample to read (1-based).
    next: u32,
}

impl Track {
    fn ms(&self, time: u64) -> u32 {
        (time.saturating_mul(1000) / self.timescale.max(1)).min(u64::from(u32::MAX)) as u32
    }

    /// The time of the next sample, ms; `None` past the last.
    fn next_ms(&self) -> Option<u32> {
        let time = *self.times.get(self.next.checked_sub(1)? as usize)?;
        Some(self.ms(time))
    }
}

/// The AVCDecoderConfigurationRecord (ISO/IEC 14496-15) an `avcC` box holds, as the AVC sequence header
/// of RTMP carries it.
/// `fields`: version, profile, compatibility, level, length size minus one.
fn avc_configuration_record(
    fields: [u8; 5],
    sps: &[&[u8]],
    pps: &[&[u8]],
) -> Result<Vec<u8>, String> {
    if sps.len() > 31 || pps.len() > 255 {
        return Err("avcC holds too many parameter sets".into());
    }
    let [version, profile, compatibility, level, length_size] = fields;
    let mut record = vec![
        version,
        profile,
        compatibility,
        level,
        0xFC | (length_size & 0x03),
        0xE0 | sps.len() as u8,
    ];
    let put_sets = |record: &mut Vec<u8>, sets: &[&[u8]]| -> Result<(), String> {
        for set in sets {
            let len = u16::try_from(set.len()).map_err(|_| "parameter set too long")?;
            record.extend_from_slice(&len.to_be_bytes());
            record.extend_from_slice(set);
        }
        Ok(())
    };
    put_sets(&mut record, sps)?;
    record.push(pps.len() as u8);
    put_sets(&mut record, pps)?;
    Ok(record)
}

/// An open MP4 file.
pub struct Mp4File {
    reader: Mp4Reader<BufReader<File>>,
    tracks: Vec<Track>,
    prelude: Vec<Tag>,
    duration_ms: f64,
}

impl std::fmt::Debug for Mp4File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mp4File")
            .field("tracks", &self.tracks)
            .finish_non_exhaustive()
    }
}

impl Mp4File {
    /// Opens `path` and reads its header: the H.264 and AAC tracks (others are skipped).
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|error| error.to_string())?;
        let size = file.metadata().map_err(|error| error.to_string())?.len();
        let reader = Mp4Reader::read_header(BufReader::new(file), size)
            .map_err(|error| format!("not a playable MP4 file: {error}"))?;
        if reader.is_fragmented() {
            return Err("fragmented MP4 files are not played".into());
        }
        let mut tracks = Vec::new();
        let mut prelude = Vec::new();
        let mut metadata = MetadataBuilder::new();
        let mut ids: Vec<u32> = reader.tracks().keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(track) = reader.tracks().get(&id) else {
                continue;
            };
            let stbl = &track.trak.mdia.minf.stbl;
            let (kind, header) = match track.track_type() {
                Ok(TrackType::Video) => match &stbl.stsd.avc1 {
                    Some(avc1) => {
                        let avcc = &avc1.avcc;
                        let record = avc_configuration_record(
                            [
                                avcc.configuration_version,
                                avcc.avc_profile_indication,
                                avcc.profile_compatibility,
                                avcc.avc_level_indication,
                                avcc.length_size_minus_one,
                            ],
                            &avcc
                                .sequence_parameter_sets
                                .iter()
                                .map(|set| set.bytes.as_slice())
                                .collect::<Vec<_>>(),
                            &avcc
                                .picture_parameter_sets
                                .iter()
                                .map(|set| set.bytes.as_slice())
                                .collect::<Vec<_>>(),
                        )?;
                        (Kind::Avc, [&[0x17, 0, 0, 0, 0][..], &record].concat())
                    }
                    None => continue,
                },
                Ok(TrackType::Audio) => match stbl.stsd.mp4a.as_ref().and_then(|a| a.esds.as_ref())
                {
                    Some(esds) => {
                        let specific = &esds.es_desc.dec_config.dec_specific;
                        // AudioSpecificConfig: 5 bits object type, 4 bits frequency index, 4 bits
                        // channels.
                        let config: u16 = (u16::from(specific.profile) << 11)
                            | (u16::from(specific.freq_index & 0x0F) << 7)
                            | (u16::from(specific.chan_conf & 0x0F) << 3);
                        let [high, low] = config.to_be_bytes();
                        (Kind::Aac, vec![0xAF, 0, high, low])
                    }
                    None => continue,
                },
                _ => continue,
            };
            let count = track.sample_count() as usize;
            if count > MAX_SAMPLES {
                return Err(format!(
                    "track {id} has {count} samples (at most {MAX_SAMPLES})"
                ));
            }
            let mut times = Vec::with_capacity(count);
            let mut time = 0u64;
            'entries: for entry in &stbl.stts.entries {
                for _ in 0..entry.sample_count {
                    if times.len() == count {
                        break 'entries;
                    }
                    times.push(time);
                    time = time.saturating_add(u64::from(entry.sample_delta));
                }
            }
            if kind == Kind::Avc {
                metadata.duration(track.duration().as_secs_f64());
            }
            prelude.push(Tag {
                tag_type: if kind == Kind::Avc {
                    TAG_VIDEO
                } else {
                    TAG_AUDIO
                },
                timestamp: 0,
                payload: Bytes::from(header),
            });
            tracks.push(Track {
                id,
                kind,
                timescale: u64::from(track.timescale()),
                times,
                sync: stbl.stss.as_ref().map(|stss| stss.entries.clone()),
                next: 1,
            });
        }
        if tracks.is_empty() {
            return Err("no H.264 or AAC track".into());
        }
        let duration_ms = reader.duration().as_secs_f64() * 1000.0;
        metadata.duration(duration_ms / 1000.0);
        if let Ok(tag) = metadata.tag() {
            prelude.insert(0, tag);
        }
        Ok(Self {
            reader,
            tracks,
            prelude,
            duration_ms,
        })
    }

    /// `onMetaData` (with the duration) and the sequence headers, and the duration in ms.
    pub fn prelude(&self) -> (Vec<Tag>, f64) {
        (self.prelude.clone(), self.duration_ms)
    }

    /// The next sample of any track, by decoding time, as an FLV tag; `Ok(None)` after the last.
    pub fn next_tag(&mut self) -> Result<Option<Tag>, String> {
        let Some(at) = self
            .tracks
            .iter()
            .enumerate()
            .filter_map(|(at, track)| Some((at, track.next_ms()?)))
            .min_by_key(|(_, ms)| *ms)
            .map(|(at, _)| at)
        else {
            return Ok(None);
        };
        let Some(track) = self.tracks.get_mut(at) else {
            return Ok(None);
        };
        let sample_id = track.next;
        track.next += 1;
        let sample = self
            .reader
            .read_sample(track.id, sample_id)
            .map_err(|error| format!("sample {sample_id} of track {}: {error}", track.id))?;
        let Some(sample) = sample else {
            return Ok(None);
        };
        let timestamp = track.ms(sample.start_time);
        let mut payload = BytesMut::with_capacity(sample.bytes.len() + 5);
        let tag_type = match track.kind {
            Kind::Avc => {
                payload.put_u8(if sample.is_sync { 0x17 } else { 0x27 });
                payload.put_u8(1);
                let offset =
                    i64::from(sample.rendering_offset) * 1000 / track.timescale.max(1) as i64;
                let offset = offset.clamp(-(1 << 23), (1 << 23) - 1) as i32;
                payload.put_slice(&offset.to_be_bytes()[1..]);
                TAG_VIDEO
            }
            Kind::Aac => {
                payload.put_slice(&[0xAF, 1]);
                TAG_AUDIO
            }
        };
        payload.put_slice(&sample.bytes);
        Ok(Some(Tag {
            tag_type,
            timestamp,
            payload: payload.freeze(),
        }))
    }

    /// Moves every track to the video sync sample at or before `position_ms` (the audio to the same
    /// time); returns that time, ms.
    pub fn seek(&mut self, position_ms: f64) -> u32 {
        let target = position_ms.max(0.0);
        let restart = self
            .tracks
            .iter()
            .find(|track| track.kind == Kind::Avc)
            .map(|video| {
                let sync_before = |sample: &u32| {
                    let time = video.times.get(sample.saturating_sub(1) as usize).copied();
                    time.filter(|time| f64::from(video.ms(*time)) <= target)
                };
                let sample = match &video.sync {
                    Some(sync) => sync
                        .iter()
                        .filter(|s| sync_before(s).is_some())
                        .max()
                        .copied(),
                    None => (1..=video.times.len() as u32).rfind(|s| sync_before(s).is_some()),
                };
                let sample = sample.unwrap_or(1);
                video.ms(video.times.get(sample as usize - 1).copied().unwrap_or(0))
            })
            .unwrap_or(target as u32);
        for track in &mut self.tracks {
            let first_at_or_after = track
                .times
                .iter()
                .position(|time| track.ms(*time) >= restart)
                .unwrap_or(track.times.len());
            track.next = first_at_or_after as u32 + 1;
        }
        restart
    }
}
