//! The push-bytes, pull-tags FLV reader: header, tags and PreviousTagSize fields checked, nothing
//! allocated beyond what was pushed, no tag accepted over the cap.

use bytes::{Buf, BytesMut};

use crate::error::FlvError;
use crate::tag::{FlvHeader, Tag};

/// Bytes of the FLV file header as version 1 defines it.
const FILE_HEADER_LEN: usize = 9;
/// Bytes of a tag header.
pub(crate) const TAG_HEADER_LEN: usize = 11;
/// Bytes of a PreviousTagSize field.
const BACK_POINTER_LEN: usize = 4;
/// The largest data offset accepted: header extensions beyond this are not FLV as written today.
const MAX_DATA_OFFSET: u32 = 1024;

/// Limits and strictness of a [`TagReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderConfig {
    /// The largest tag payload accepted, in bytes (FLV allows up to 16 MiB - 1).
    pub max_tag_size: u32,
    /// Whether each PreviousTagSize must match the tag before it (files from some old muxers do not).
    pub check_previous_tag_size: bool,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        Self {
            max_tag_size: 4 * 1024 * 1024,
            check_previous_tag_size: true,
        }
    }
}

/// Where the reader is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the 9-byte header.
    FileHeader,
    /// Skipping header extension bytes up to the data offset.
    SkipHeader(usize),
    /// Waiting for the PreviousTagSize after the header or a tag; `expected` is that tag's size.
    BackPointer { expected: u32 },
    /// Waiting for a tag header and its payload.
    Tag,
    /// An error was returned: the stream cannot be resynchronised.
    Failed,
}

/// Reads FLV from bytes pushed in any slices: [`push`](Self::push) bytes, then call
/// [`next_tag`](Self::next_tag) until it returns `Ok(None)`; at the end of the input
/// [`finish`](Self::finish) says whether the file ended on a tag boundary.
///
/// A file whose last tag lacks only its final PreviousTagSize (a truncated recording) yields that tag.
#[derive(Debug)]
pub struct TagReader {
    config: ReaderConfig,
    buffer: BytesMut,
    state: State,
    header: Option<FlvHeader>,
    /// Bytes consumed so far: the file offset of the first byte in `buffer`.
    offset: u64,
}

impl Default for TagReader {
    fn default() -> Self {
        Self::new(ReaderConfig::default())
    }
}

impl TagReader {
    /// A reader expecting the FLV header first.
    pub fn new(config: ReaderConfig) -> Self {
        Self {
            config,
            buffer: BytesMut::new(),
            state: State::FileHeader,
            header: None,
            offset: 0,
        }
    }

    /// Appends input bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The file header, once read.
    pub fn header(&self) -> Option<FlvHeader> {
        self.header
    }

    /// Bytes pushed and not yet returned: at most one tag (header and payload, within the cap) plus
    /// whatever the caller pushed since the last call to [`next_tag`](Self::next_tag).
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The file offset of the next unread byte.
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// The next whole tag, `Ok(None)` when more bytes are needed. After an error the reader stays failed.
    pub fn next_tag(&mut self) -> Result<Option<Tag>, FlvError> {
        let result = self.advance();
        if result.is_err() {
            self.state = State::Failed;
            self.buffer.clear();
        }
        result
    }

    /// Called at the end of the input: `Ok` if it ended after a whole tag (or only its final
    /// PreviousTagSize is missing), [`FlvError::Truncated`] otherwise.
    pub fn finish(&self) -> Result<(), FlvError> {
        let buffered = self.buffer.len();
        let missing = match self.state {
            State::FileHeader => FILE_HEADER_LEN.saturating_sub(buffered),
            State::SkipHeader(left) => left.saturating_sub(buffered),
            State::BackPointer { .. } if buffered == 0 => 0,
            State::BackPointer { .. } => BACK_POINTER_LEN.saturating_sub(buffered),
            State::Tag if buffered == 0 => 0,
            State::Tag => self.tag_missing(),
            State::Failed => 0,
        };
        match missing {
            0 => Ok(()),
            missing => Err(FlvError::Truncated { missing }),
        }
    }

    /// Bytes still missing for the tag being buffered.
    fn tag_missing(&self) -> usize {
        match self.buffer.get(..TAG_HEADER_LEN) {
            Some(header) => {
                let size = payload_size(header);
                (TAG_HEADER_LEN + size as usize).saturating_sub(self.buffer.len())
            }
            None => TAG_HEADER_LEN - self.buffer.len(),
        }
    }

    fn consume(&mut self, count: usize) -> BytesMut {
        self.offset += count as u64;
        self.buffer.split_to(count)
    }

    fn advance(&mut self) -> Result<Option<Tag>, FlvError> {
        loop {
            match self.state {
                State::Failed => return Ok(None),
                State::FileHeader => {
                    let Some(bytes) = self.buffer.get(..FILE_HEADER_LEN) else {
                        let seen = self.buffer.len().min(3);
                        if self.buffer.get(..seen) != b"FLV".get(..seen) {
                            return Err(FlvError::NotFlv);
                        }
                        return Ok(None);
                    };
                    let mut header = [0u8; FILE_HEADER_LEN];
                    header.copy_from_slice(bytes);
                    let [f, l, v, version, flags, o0, o1, o2, o3] = header;
                    if [f, l, v] != *b"FLV" {
                        return Err(FlvError::NotFlv);
                    }
                    if version != 1 {
                        return Err(FlvError::UnsupportedVersion(version));
                    }
                    let data_offset = u32::from_be_bytes([o0, o1, o2, o3]);
                    if !(FILE_HEADER_LEN as u32..=MAX_DATA_OFFSET).contains(&data_offset) {
                        return Err(FlvError::BadDataOffset(data_offset));
                    }
                    self.header = Some(FlvHeader {
                        has_audio: flags & 0x04 != 0,
                        has_video: flags & 0x01 != 0,
                    });
                    self.consume(FILE_HEADER_LEN);
                    self.state = State::SkipHeader(data_offset as usize - FILE_HEADER_LEN);
                }
                State::SkipHeader(left) => {
                    if self.buffer.len() < left {
                        return Ok(None);
                    }
                    self.consume(left);
                    self.state = State::BackPointer { expected: 0 };
                }
                State::BackPointer { expected } => {
                    let Some(&[b0, b1, b2, b3]) = self.buffer.get(..BACK_POINTER_LEN) else {
                        return Ok(None);
                    };
                    let found = u32::from_be_bytes([b0, b1, b2, b3]);
                    if self.config.check_previous_tag_size && found != expected {
                        return Err(FlvError::PreviousTagSizeMismatch { expected, found });
                    }
                    self.consume(BACK_POINTER_LEN);
                    self.state = State::Tag;
                }
                State::Tag => {
                    let Some(header) = self.buffer.get(..TAG_HEADER_LEN) else {
                        return Ok(None);
                    };
                    let size = payload_size(header);
                    if size > self.config.max_tag_size {
                        return Err(FlvError::TagTooLarge {
                            size,
                            max: self.config.max_tag_size,
                        });
                    }
                    let total = TAG_HEADER_LEN + size as usize;
                    if self.buffer.len() < total {
                        // Room for what was claimed is made only as the bytes arrive.
                        return Ok(None);
                    }
                    let mut tag = self.consume(total);
                    let mut header = [0u8; TAG_HEADER_LEN];
                    tag.copy_to_slice(&mut header);
                    let [kind, _, _, _, t1, t2, t3, t0, ..] = header;
                    self.state = State::BackPointer {
                        expected: total as u32,
                    };
                    return Ok(Some(Tag {
                        // The filter bit (encrypted tags) and reserved bits are not part of the type.
                        tag_type: kind & 0x1F,
                        timestamp: u32::from_be_bytes([t0, t1, t2, t3]),
                        payload: tag.freeze(),
                    }));
                }
            }
        }
    }
}

/// The 24-bit payload size of a tag header (at least 4 bytes long).
fn payload_size(header: &[u8]) -> u32 {
    match header {
        [_, s0, s1, s2, ..] => u32::from_be_bytes([0, *s0, *s1, *s2]),
        _ => 0,
    }
}
