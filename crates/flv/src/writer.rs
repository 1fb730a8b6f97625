//! The FLV writer: the file header and tags, each tag (header, payload, PreviousTagSize) one contiguous
//! buffer, so that a file cut between two writes holds whole tags only.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::FlvError;
use crate::reader::TAG_HEADER_LEN;
use crate::tag::{FlvHeader, Tag};

/// The largest payload FLV's 24-bit size field holds.
const MAX_PAYLOAD: usize = (1 << 24) - 1;

/// Encodes an FLV file as buffers to write in order, tracking the file offset of each tag (for a keyframe
/// index).
#[derive(Debug, Default)]
pub struct TagWriter {
    position: u64,
}

impl TagWriter {
    /// A writer at offset 0; start with [`file_header`](Self::file_header).
    pub fn new() -> Self {
        Self::default()
    }

    /// The 9-byte file header and the zero PreviousTagSize that follows it (13 bytes).
    pub fn file_header(&mut self, header: FlvHeader) -> Bytes {
        let flags = u8::from(header.has_audio) << 2 | u8::from(header.has_video);
        let bytes = Bytes::copy_from_slice(&[b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]);
        self.position += bytes.len() as u64;
        bytes
    }

    /// The file offset the next tag starts at.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// One tag with its trailing PreviousTagSize, as a single buffer. A payload over 16 MiB - 1 is
    /// refused.
    pub fn tag(&mut self, tag: &Tag) -> Result<Bytes, FlvError> {
        let bytes = encode_tag(tag)?;
        self.position += bytes.len() as u64;
        Ok(bytes)
    }
}

/// One tag with its trailing PreviousTagSize, as a single buffer, without tracking a position.
pub fn encode_tag(tag: &Tag) -> Result<Bytes, FlvError> {
    let size = tag.payload.len();
    if size > MAX_PAYLOAD {
        return Err(FlvError::PayloadTooLarge(size));
    }
    let [_, s0, s1, s2] = (size as u32).to_be_bytes();
    let [t0, t1, t2, t3] = tag.timestamp.to_be_bytes();
    let mut out = BytesMut::with_capacity(TAG_HEADER_LEN + size + 4);
    out.put_slice(&[tag.tag_type & 0x1F, s0, s1, s2, t1, t2, t3, t0, 0, 0, 0]);
    out.put_slice(&tag.payload);
    out.put_u32((TAG_HEADER_LEN + size) as u32);
    Ok(out.freeze())
}
