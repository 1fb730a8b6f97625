//! FLV, sans-IO: a push-bytes, pull-tags reader, a writer whose every tag is one contiguous buffer, an
//! `onMetaData` builder with a duration and a keyframe index, and the conversion between FLV tags and
//! RTMP messages (audio 8, video 9, AMF0 data 18).
//!
//! The crate opens no file and reads no clock: the caller moves the bytes.
//!
//! # Example
//!
//! Write a file holding metadata and one keyframe, then read it back:
//!
//! ```
//! use bytes::Bytes;
//! use rtmp_flv::{FlvHeader, MetadataBuilder, Tag, TagReader, TagWriter, TAG_VIDEO};
//!
//! # fn main() -> Result<(), rtmp_flv::FlvError> {
//! let mut writer = TagWriter::new();
//! let mut file = writer.file_header(FlvHeader::default()).to_vec();
//! let mut metadata = MetadataBuilder::new();
//! let keyframe = Tag { tag_type: TAG_VIDEO, timestamp: 0, payload: Bytes::from_static(&[0x17, 1, 0, 0, 0]) };
//! file.extend_from_slice(&writer.tag(&metadata.tag()?)?);
//! metadata.keyframe(0.0, writer.position());
//! file.extend_from_slice(&writer.tag(&keyframe)?);
//!
//! let mut reader = TagReader::default();
//! reader.push(&file);
//! let mut tags = Vec::new();
//! while let Some(tag) = reader.next_tag()? {
//!     tags.push(tag);
//! }
//! reader.finish()?;
//! assert_eq!(tags.len(), 2);
//! assert!(tags[1].is_keyframe());
//! assert_eq!(tags[1].clone().into_message(1).type_id, 9);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod error;
mod metadata;
mod reader;
mod tag;
mod writer;

pub use error::FlvError;
pub use metadata::MetadataBuilder;
pub use reader::{ReaderConfig, TagReader};
pub use tag::{FlvHeader, Tag, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO};
pub use writer::{encode_tag, TagWriter};

#[cfg(test)]
mod tests;
