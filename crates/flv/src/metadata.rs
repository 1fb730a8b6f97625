//! `onMetaData`: the script tag at the head of a file, with its duration and the keyframe index
//! (`keyframes: { times: [...], filepositions: [...] }`) that FFmpeg and players seek with.

use bytes::Bytes;
use rtmp_amf::{encode_amf0_values, Amf0Value};

use crate::error::FlvError;
use crate::tag::{Tag, TAG_SCRIPT};

/// The property holding the padding that keeps a rewritten `onMetaData` the size of the one it replaces.
const PADDING_KEY: &str = "padding";

/// Builds an `onMetaData` tag from the stream's own metadata (codec, size, rate...) plus a duration and a
/// keyframe index.
#[derive(Debug, Clone, Default)]
pub struct MetadataBuilder {
    properties: Vec<(String, Amf0Value)>,
    duration_s: f64,
    keyframe_times_s: Vec<f64>,
    keyframe_positions: Vec<u64>,
}

impl MetadataBuilder {
    /// An empty builder (no properties, duration 0, no keyframes).
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts from the properties of a stream's data message (`@setDataFrame`, `onMetaData`, props):
    /// the last object or ECMA array in it. Properties this builder writes itself are dropped.
    pub fn from_data_message(payload: &[u8]) -> Self {
        let values = rtmp_amf::decode_amf0(payload).unwrap_or_default();
        let properties = values
            .into_iter()
            .rev()
            .find_map(|value| match value {
                Amf0Value::EcmaArray(properties) | Amf0Value::Object(properties) => {
                    Some(properties)
                }
                _ => None,
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|(key, _)| {
                !matches!(
                    key.as_str(),
                    "duration" | "keyframes" | "filesize" | PADDING_KEY
                )
            })
            .collect();
        Self {
            properties,
            ..Self::default()
        }
    }

    /// Sets the duration, in seconds.
    pub fn duration(&mut self, seconds: f64) -> &mut Self {
        self.duration_s = seconds;
        self
    }

    /// Adds a keyframe at `time_s` seconds whose tag starts at byte `file_position`.
    pub fn keyframe(&mut self, time_s: f64, file_position: u64) -> &mut Self {
        self.keyframe_times_s.push(time_s);
        self.keyframe_positions.push(file_position);
        self
    }

    /// The number of keyframes indexed.
    pub fn keyframe_count(&self) -> usize {
        self.keyframe_times_s.len()
    }

    fn values(&self, padding: Option<usize>) -> Vec<Amf0Value> {
        let mut properties = vec![("duration".to_owned(), Amf0Value::Number(self.duration_s))];
        properties.extend(self.properties.iter().cloned());
        let numbers = |values: &[f64]| {
            Amf0Value::StrictArray(values.iter().copied().map(Amf0Value::Number).collect())
        };
        let positions: Vec<f64> = self.keyframe_positions.iter().map(|p| *p as f64).collect();
        properties.push((
            "keyframes".to_owned(),
            Amf0Value::object([
                ("times", numbers(&self.keyframe_times_s)),
                ("filepositions", numbers(&positions)),
            ]),
        ));
        if let Some(len) = padding {
            properties.push((PADDING_KEY.to_owned(), Amf0Value::String(" ".repeat(len))));
        }
        vec![
            Amf0Value::String("onMetaData".to_owned()),
            Amf0Value::EcmaArray(properties),
        ]
    }

    /// The `onMetaData` payload.
    pub fn payload(&self) -> Result<Bytes, FlvError> {
        encode_amf0_values(&self.values(None))
            .map_err(|error| FlvError::Metadata(error.to_string()))
    }

    /// The `onMetaData` payload padded to exactly `len` bytes, to overwrite a tag of that size in place;
    /// `None` if the metadata does not fit.
    pub fn payload_of_len(&self, len: usize) -> Result<Option<Bytes>, FlvError> {
        let bare = encode_amf0_values(&self.values(Some(0)))
            .map_err(|error| FlvError::Metadata(error.to_string()))?;
        let Some(room) = len.checked_sub(bare.len()) else {
            return Ok(None);
        };
        // A short string property grows by one byte per character up to 65535.
        if room > u16::MAX as usize {
            return Ok(None);
        }
        let padded = encode_amf0_values(&self.values(Some(room)))
            .map_err(|error| FlvError::Metadata(error.to_string()))?;
        Ok((padded.len() == len).then_some(padded))
    }

    /// The `onMetaData` payload with `reserve` bytes of padding, room for the keyframe index a later
    /// [`payload_of_len`](Self::payload_of_len) writes in its place (each keyframe takes 18 bytes).
    pub fn payload_with_room(&self, reserve: usize) -> Result<Bytes, FlvError> {
        encode_amf0_values(&self.values(Some(reserve.min(u16::MAX as usize))))
            .map_err(|error| FlvError::Metadata(error.to_string()))
    }

    /// The `onMetaData` script tag at timestamp 0.
    pub fn tag(&self) -> Result<Tag, FlvError> {
        Ok(Tag {
            tag_type: TAG_SCRIPT,
            timestamp: 0,
            payload: self.payload()?,
        })
    }
}
