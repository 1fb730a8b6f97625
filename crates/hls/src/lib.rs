//! A sans-IO LL-HLS segmenter: RTMP/FLV audio and video payloads in (legacy and Enhanced RTMP: H.264,
//! HEVC, AV1, AAC, Opus), fragmented MP4 (CMAF) init segment, parts and segments and the RFC 8216bis
//! low-latency media playlist out. No I/O, no clock: media timestamps drive every cut.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use rtmp_hls::{HlsConfig, Segmenter};
//!
//! # fn main() -> Result<(), rtmp_hls::CodecError> {
//! let mut hls = Segmenter::new(HlsConfig::default());
//! // AVC sequence header: keyframe + codec id 7, packet type 0, cts 0, then an avcC record.
//! hls.push_video(0, &Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]))?;
//! for frame in 0..90u32 {
//!     let key = if frame % 30 == 0 { 0x17 } else { 0x27 };
//!     hls.push_video(frame * 33, &Bytes::from(vec![key, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]))?;
//! }
//! hls.finish();
//! assert!(hls.init().is_some());
//! assert!(hls.playlist().contains("#EXTINF:"));
//! assert!(hls.segment(0).is_some());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod codec;
pub mod fragment;
pub mod mp4;
mod segmenter;

pub use codec::CodecError;
pub use fragment::{Fragmenter, FragmenterConfig};
pub use segmenter::{BlockingRequest, HlsConfig, Part, Segmenter};
