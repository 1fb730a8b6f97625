//! An FLV file as the VOD reader uses it: tags read in order through `rtmp_flv::TagReader`, the file's
//! duration (its `onMetaData`, or its last timestamp), an index of the points playback may restart at
//! (video keyframes, or every tag of a file without video), and repositioning at one of them.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use rtmp_amf::Amf0Value;
use rtmp_flv::{FlvError, ReaderConfig, Tag, TagReader, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO};

/// Bytes read from the file at a time.
const READ_LEN: usize = 64 * 1024;
/// The FLV file header's length, and the most bytes of header (with extension) accepted.
const FILE_HEADER_LEN: usize = 9;
const MAX_HEADER_LEN: usize = 1024;
/// Tags at the start of a file searched for metadata and sequence headers.
const PRELUDE_TAGS: usize = 16;

/// Why a file cannot be played (or stopped being playable).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading the file failed.
    #[error("read error: {0}")]
    Io(#[from] io::Error),
    /// The bytes are not FLV as `rtmp-flv` reads it.
    #[error("{error} (at byte {offset})")]
    Flv {
        /// What was wrong.
        error: FlvError,
        /// The file offset reached.
        offset: u64,
    },
}

/// A point playback may restart at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPoint {
    /// The tag's timestamp, ms.
    pub timestamp: u32,
    /// The file offset of the tag's header.
    pub offset: u64,
}

/// An open FLV file.
#[derive(Debug)]
pub struct FlvFile {
    file: BufReader<File>,
    reader: TagReader,
    /// The file header (with its extension) and a zero PreviousTagSize: pushed into a fresh reader
    /// before the bytes of a tag in the middle of the file.
    header: Vec<u8>,
    /// Where the first tag starts.
    data_start: u64,
    /// Bytes of tags read so far.
    pub bytes_read: u64,
}

impl FlvFile {
    /// Opens `path` and checks its header.
    pub fn open(path: &Path) -> Result<Self, FileError> {
        let mut file = File::open(path)?;
        let mut first = [0u8; FILE_HEADER_LEN];
        file.read_exact(&mut first)
            .map_err(|error| match error.kind() {
                io::ErrorKind::UnexpectedEof => FileError::Flv {
                    error: FlvError::Truncated {
                        missing: FILE_HEADER_LEN,
                    },
                    offset: 0,
                },
                _ => FileError::Io(error),
            })?;
        let [_, _, _, _, _, o0, o1, o2, o3] = first;
        let data_offset = u32::from_be_bytes([o0, o1, o2, o3]) as usize;
        let mut header = first.to_vec();
        if (FILE_HEADER_LEN..=MAX_HEADER_LEN).contains(&data_offset) {
            header.resize(data_offset, 0);
            file.read_exact(&mut header[FILE_HEADER_LEN..])?;
        }
        // Let the reader judge the header (signature, version, offset) as it judges any FLV.
        let mut probe = TagReader::new(reader_config());
        probe.push(&header);
        probe.push(&[0; 4]);
        probe
            .next_tag()
            .map_err(|error| FileError::Flv { error, offset: 0 })?;
        header.extend_from_slice(&[0; 4]);
        let data_start = (data_offset + 4) as u64;
        let mut flv = Self {
            file: BufReader::with_capacity(READ_LEN, file),
            reader: TagReader::new(reader_config()),
            header,
            data_start,
            bytes_read: 0,
        };
        flv.seek_to(data_start)?;
        Ok(flv)
    }

    /// Moves to the tag whose header starts at `offset` (a [`SyncPoint`], or the first tag).
    pub fn seek_to(&mut self, offset: u64) -> Result<(), FileError> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.reader = TagReader::new(reader_config());
        self.reader.push(&self.header);
        Ok(())
    }

    /// Moves back to the first tag.
    pub fn rewind(&mut self) -> Result<(), FileError> {
        self.seek_to(self.data_start)
    }

    /// The next whole tag; `Ok(None)` at the end of the file, including a last tag cut short (a
    /// truncated file plays up to its last whole tag; [`FlvFile::truncated`] tells).
    pub fn next_tag(&mut self) -> Result<Option<Tag>, FileError> {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let before = self.reader.position();
            match self.reader.next_tag() {
                Ok(Some(tag)) => {
                    self.bytes_read += self.reader.position().saturating_sub(before);
                    return Ok(Some(tag));
                }
                Ok(None) => {}
                Err(error) => {
                    return Err(FileError::Flv {
                        error,
                        offset: self.reader.position(),
                    })
                }
            }
            let read = self.file.read(&mut buffer)?;
            if read == 0 {
                return Ok(None);
            }
            self.reader.push(buffer.get(..read).unwrap_or_default());
        }
    }

    /// At the end of the file: the bytes a cut-short last tag misses, if it was cut short.
    pub fn truncated(&self) -> Option<usize> {
        match self.reader.finish() {
            Err(FlvError::Truncated { missing }) => Some(missing),
            _ => None,
        }
    }

    /// The tags a player needs before any frame: `onMetaData` and the sequence headers found among the
    /// first tags (before the first frame), and the duration `onMetaData` gives (ms). Leaves the file at
    /// its first tag.
    pub fn prelude(&mut self) -> Result<(Vec<Tag>, Option<f64>), FileError> {
        let mut prelude = Vec::new();
        let mut duration = None;
        for _ in 0..PRELUDE_TAGS {
            let Some(tag) = self.next_tag()? else {
                break;
            };
            if tag.tag_type == TAG_SCRIPT {
                duration = duration.or_else(|| metadata_duration_ms(&tag.payload));
                prelude.push(tag);
            } else if tag.is_sequence_header() {
                prelude.push(tag);
            } else if matches!(tag.tag_type, TAG_AUDIO | TAG_VIDEO) {
                break;
            }
        }
        self.rewind()?;
        self.bytes_read = 0;
        Ok((prelude, duration))
    }
}

/// What a scan of every tag header of a file found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// Where playback may restart, in file order.
    pub sync_points: Vec<SyncPoint>,
    /// The largest timestamp, ms.
    pub last_timestamp: u32,
}

impl Index {
    /// The last sync point at or before `position_ms` (the first one when there is none before).
    pub fn at_or_before(&self, position_ms: f64) -> Option<SyncPoint> {
        let before = self
            .sync_points
            .iter()
            .filter(|point| f64::from(point.timestamp) <= position_ms)
            .max_by_key(|point| point.timestamp);
        before.or(self.sync_points.first()).copied()
    }
}

/// Scans the tag headers of the FLV file at `path` (their bodies skipped), up to the first one that is
/// cut short or does not parse.
pub fn scan(path: &Path) -> Result<Index, FileError> {
    let mut file = BufReader::with_capacity(READ_LEN, File::open(path)?);
    let mut first = [0u8; FILE_HEADER_LEN];
    file.read_exact(&mut first)?;
    let [_, _, _, _, _, o0, o1, o2, o3] = first;
    let data_offset = u64::from(u32::from_be_bytes([o0, o1, o2, o3]));
    let mut offset = data_offset + 4;
    file.seek(SeekFrom::Start(offset))?;
    let max_tag = u64::from(reader_config().max_tag_size);
    let (mut keyframes, mut every, mut last_timestamp, mut has_video) =
        (Vec::new(), Vec::new(), 0u32, false);
    loop {
        let mut header = [0u8; 12];
        if file.read_exact(&mut header).is_err() {
            break;
        }
        let [kind, s0, s1, s2, t1, t2, t3, t0, _, _, _, first_byte] = header;
        let size = u64::from(u32::from_be_bytes([0, s0, s1, s2]));
        if size == 0 || size > max_tag {
            break;
        }
        let timestamp = u32::from_be_bytes([t0, t1, t2, t3]);
        let point = SyncPoint { timestamp, offset };
        match kind & 0x1F {
            TAG_VIDEO => {
                has_video = true;
                let keyframe = (first_byte >> 4) & 0x07 == 1;
                // A sequence header is a keyframe by its flags, but frames start after it.
                if keyframe {
                    keyframes.push(point);
                }
                last_timestamp = last_timestamp.max(timestamp);
            }
            TAG_AUDIO => {
                every.push(point);
                last_timestamp = last_timestamp.max(timestamp);
            }
            _ => {}
        }
        // The rest of the body, then the PreviousTagSize.
        let skip = size - 1 + 4;
        if file.seek_relative(skip as i64).is_err() {
            break;
        }
        offset += 11 + size + 4;
    }
    Ok(Index {
        sync_points: if has_video { keyframes } else { every },
        last_timestamp,
    })
}

/// The `duration` of an `onMetaData` payload, in milliseconds.
pub fn metadata_duration_ms(payload: &[u8]) -> Option<f64> {
    let values = rtmp_amf::decode_amf0(payload).ok()?;
    let mut values = values.into_iter().map(Amf0Value::into_amf0);
    if values.next()?.as_str()? != "onMetaData" {
        return None;
    }
    let seconds = values.next()?.get("duration")?.as_f64()?;
    (seconds.is_finite() && seconds > 0.0).then_some(seconds * 1000.0)
}

fn reader_config() -> ReaderConfig {
    ReaderConfig {
        max_tag_size: 8 * 1024 * 1024,
        // A wrong PreviousTagSize is how a corrupt file usually shows first: stop there.
        check_previous_tag_size: true,
    }
}
