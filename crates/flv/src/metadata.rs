//! `onMetaData`: the script tag at the head of a file, with its duration and the keyframe index
//! (`keyframes: { times: [...], filepositions: [...] }`) that FFmpeg and players seek with.

use bytes::Bytes;
use rtmp_amf::{encode_amf0_values, Amf0Value};

use crate::error::FlvError;
use crate::tag::{Tag, TAG_SCRIPT};

/// The prefix of the properties holding the padding that keeps a rewritten `onMetaData` the size of the
/// one it replaces (`pad000`, `pad001`...): short strings, as FFmpeg reads strings of under 256 bytes only.
const PADDING_PREFIX: &str = "pad";
/// Characters in one padding string.
const PADDING_CHUNK: usize = 200;
/// Bytes of one padding property besides its characters: key length, `padNNN`, marker, string length.
const PADDING_OVERHEAD: usize = 2 + 6 + 1 + 2;

/// Whether a property is padding written by this builder.
fn is_padding(key: &str) -> bool {
    key.strip_prefix(PADDING_PREFIX)
        .is_some_and(|digits| digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Padding properties taking exactly `room` bytes, `None` if no such split exists (under 11 bytes).
fn padding(room: usize) -> Option<Vec<(String, Amf0Value)>> {
    if room == 0 {
        return Some(Vec::new());
    }
    let count = room.div_ceil(PADDING_OVERHEAD + PADDING_CHUNK);
    let mut chars = room.checked_sub(count * PADDING_OVERHEAD)?;
    if count > 1000 {
        return None;
    }
    let mut properties = Vec::with_capacity(count);
    for index in 0..count {
        let take = chars.min(PADDING_CHUNK);
        chars -= take;
        properties.push((
            format!("{PADDING_PREFIX}{index:03}"),
            Amf0Value::String(" ".repeat(take)),
        ));
    }
    Some(properties)
}

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
                !matches!(key.as_str(), "duration" | "keyframes" | "filesize") && !is_padding(key)
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

    fn values(&self, padding: Vec<(String, Amf0Value)>) -> Vec<Amf0Value> {
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
        properties.extend(padding);
        vec![
            Amf0Value::String("onMetaData".to_owned()),
            Amf0Value::EcmaArray(properties),
        ]
    }

    /// The `onMetaData` payload.
    pub fn payload(&self) -> Result<Bytes, FlvError> {
        encode_amf0_values(&self.values(Vec::new()))
            .map_err(|error| FlvError::Metadata(error.to_string()))
    }

    /// The `onMetaData` payload padded to exactly `len` bytes, to overwrite a tag of that size in place;
    /// `None` if the metadata does not fit.
    pub fn payload_of_len(&self, len: usize) -> Result<Option<Bytes>, FlvError> {
        let bare = self.payload()?;
        let Some(properties) = len.checked_sub(bare.len()).and_then(padding) else {
            return Ok(None);
        };
        let padded = encode_amf0_values(&self.values(properties))
            .map_err(|error| FlvError::Metadata(error.to_string()))?;
        Ok((padded.len() == len).then_some(padded))
    }

    /// The `onMetaData` payload with `reserve` bytes of padding, room for the keyframe index a later
    /// [`payload_of_len`](Self::payload_of_len) writes in its place (each keyframe takes 18 bytes).
    pub fn payload_with_room(&self, reserve: usize) -> Result<Bytes, FlvError> {
        let properties = padding(reserve.max(PADDING_OVERHEAD)).unwrap_or_default();
        encode_amf0_values(&self.values(properties))
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
