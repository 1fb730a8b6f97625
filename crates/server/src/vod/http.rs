//! A file as a paced FLV byte stream, for serving VOD over HTTP (`/vod/NAME.flv`, with HTTP-FLV): the
//! same reader, path checks and pacing as RTMP players get, written back as FLV with `rtmp-flv`.
//!
//! ```ignore
//! let mut flv = FlvBytes::open(request).await?;            // Err: 404 (refused) or 500 (unplayable)
//! while let Some(chunk) = flv.next_chunk().await { send(chunk) }   // the FLV header, then tags
//! ```

use bytes::Bytes;
use rtmp_flv::{FlvHeader, Tag, TagWriter};

use super::path::PathRefusal;
use super::{Playback, Request, VodEvent};

/// Why a file cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No file of that name may be played (HTTP 404).
    #[error(transparent)]
    NotFound(#[from] PathRefusal),
    /// The file exists but cannot be played (HTTP 500, or 415 for an unsupported container).
    #[error("{0}")]
    Unplayable(String),
}

/// An open file, read as paced FLV bytes.
#[derive(Debug)]
pub struct FlvBytes {
    playback: Playback,
    writer: TagWriter,
    header: Option<Bytes>,
}

impl FlvBytes {
    /// Opens the file of `request` (its name checked against its root as for RTMP); the reader paces
    /// with `request.buffer_ms` of read-ahead.
    pub async fn open(request: Request) -> Result<Self, OpenError> {
        let mut playback = Playback::start(request);
        match playback.events.recv().await {
            Some(VodEvent::Opened { .. }) => {}
            Some(VodEvent::Refused(refusal)) => return Err(OpenError::NotFound(refusal)),
            Some(VodEvent::Unplayable(reason)) => return Err(OpenError::Unplayable(reason)),
            _ => return Err(OpenError::Unplayable("the file reader ended".into())),
        }
        let mut writer = TagWriter::new();
        let header = writer.file_header(FlvHeader::default());
        Ok(Self {
            playback,
            writer,
            header: Some(header),
        })
    }

    /// The next bytes: the FLV file header first, then one tag (with its PreviousTagSize) at a time, as
    /// the clock allows; `None` at the end of the file or where it turned out corrupt.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(header) = self.header.take() {
            return Some(header);
        }
        loop {
            match self.playback.events.recv().await? {
                VodEvent::Frame { message, .. } => {
                    let tag = Tag::from_message(&message)?;
                    match self.writer.tag(&tag) {
                        Ok(bytes) => return Some(bytes),
                        Err(error) => {
                            tracing::warn!(%error, "vod over HTTP: a tag could not be written");
                            return None;
                        }
                    }
                }
                VodEvent::Ended { .. } | VodEvent::Failed { .. } => return None,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_comes_back_as_the_same_flv_and_a_bad_name_as_not_found() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut writer = TagWriter::new();
        let mut file = writer.file_header(FlvHeader::default()).to_vec();
        for timestamp in [0, 40, 80] {
            let tag = Tag {
                tag_type: rtmp_flv::TAG_VIDEO,
                timestamp,
                payload: Bytes::from_static(&[0x17, 1, 0, 0, 0, 7]),
            };
            file.extend_from_slice(&writer.tag(&tag).unwrap());
        }
        std::fs::write(dir.path().join("clip.flv"), &file).unwrap();
        let request = |name: &str| Request {
            root: dir.path().to_owned(),
            name: name.into(),
            start_ms: 0.0,
            duration_ms: -1.0,
            buffer_ms: u32::MAX,
        };
        runtime.block_on(async {
            let mut flv = FlvBytes::open(request("clip")).await.unwrap();
            let mut served = Vec::new();
            while let Some(chunk) = flv.next_chunk().await {
                served.extend_from_slice(&chunk);
            }
            assert_eq!(served, file);
            assert!(matches!(
                FlvBytes::open(request("../clip")).await,
                Err(OpenError::NotFound(_))
            ));
        });
    }
}
