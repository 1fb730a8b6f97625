//! AMF0: the value model, a strict decoder for untrusted bytes (with the AVM+ switch to AMF3), and an
//! encoder that refuses values the format cannot carry.

use bytes::{BufMut, Bytes, BytesMut};

use crate::amf3::{budget_for, check_amf3, Amf3Context, Amf3Encoder, Amf3Value};
use crate::reader::Reader;
use crate::{AmfError, DecodeOptions, EncodeError, DEFAULT_MAX_DEPTH};

/// AMF0 type markers (AMF0 specification §2).
pub mod marker {
    /// `number`: a big-endian f64.
    pub const NUMBER: u8 = 0x00;
    /// `boolean`: one byte, non-zero is true.
    pub const BOOLEAN: u8 = 0x01;
    /// `string`: u16 length and UTF-8.
    pub const STRING: u8 = 0x02;
    /// `object`: key/value pairs up to an empty key and `OBJECT_END`.
    pub const OBJECT: u8 = 0x03;
    /// `movieclip`: reserved, not supported.
    pub const MOVIECLIP: u8 = 0x04;
    /// `null`.
    pub const NULL: u8 = 0x05;
    /// `undefined`.
    pub const UNDEFINED: u8 = 0x06;
    /// `reference`: u16 index of an earlier complex value.
    pub const REFERENCE: u8 = 0x07;
    /// `ecma-array`: a u32 count hint, then properties as in an object.
    pub const ECMA_ARRAY: u8 = 0x08;
    /// `object-end`: closes an object after an empty key.
    pub const OBJECT_END: u8 = 0x09;
    /// `strict-array`: u32 count and that many values.
    pub const STRICT_ARRAY: u8 = 0x0A;
    /// `date`: f64 milliseconds and an i16 time zone.
    pub const DATE: u8 = 0x0B;
    /// `long-string`: u32 length and UTF-8.
    pub const LONG_STRING: u8 = 0x0C;
    /// `unsupported`.
    pub const UNSUPPORTED: u8 = 0x0D;
    /// `recordset`: reserved, not supported.
    pub const RECORDSET: u8 = 0x0E;
    /// `xml-document`: u32 length and UTF-8.
    pub const XML_DOCUMENT: u8 = 0x0F;
    /// `typed-object`: a class name, then properties as in an object.
    pub const TYPED_OBJECT: u8 = 0x10;
    /// `avmplus-object`: one AMF3 value follows.
    pub const AVMPLUS: u8 = 0x11;
}

/// One AMF0 value. Objects keep their properties in wire order.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    /// A double.
    Number(f64),
    /// A boolean.
    Boolean(bool),
    /// A string; encoded as a long string when longer than 65535 bytes.
    String(String),
    /// An anonymous object, properties in wire order.
    Object(Vec<(String, Amf0Value)>),
    /// `null`.
    Null,
    /// `undefined`.
    Undefined,
    /// A reference to the n-th complex value of the same message, kept as written (never expanded).
    Reference(u16),
    /// An associative array, properties in wire order.
    EcmaArray(Vec<(String, Amf0Value)>),
    /// A dense array.
    StrictArray(Vec<Amf0Value>),
    /// Milliseconds since the Unix epoch, and the (reserved, usually 0) time zone field.
    Date {
        /// Milliseconds since the Unix epoch (UTC).
        millis: f64,
        /// The reserved time zone field, in minutes (usually 0).
        time_zone: i16,
    },
    /// A string written with a u32 length.
    LongString(String),
    /// The `unsupported` marker.
    Unsupported,
    /// An XML document, as text.
    XmlDocument(String),
    /// An object of a named class.
    TypedObject {
        /// The class name (u16 length on the wire).
        class_name: String,
        /// Properties in wire order.
        properties: Vec<(String, Amf0Value)>,
    },
    /// The AVM+ switch: an AMF3 value embedded in an AMF0 stream.
    Avmplus(Amf3Value),
}

/// Decodes AMF0 values one by one from a buffer (one message body).
///
/// Each AVM+ value (marker `0x11`) is first decoded with fresh AMF3 reference tables. When that fails
/// on a reference past the end of a fresh table, the value is decoded again with one AMF3 context shared
/// by every AVM+ value of the buffer so far, the convention some writers (Py3AMF) follow. See the crate
/// documentation for why.
#[derive(Debug)]
pub struct Amf0Decoder<'a> {
    reader: Reader<'a>,
    options: DecodeOptions,
    /// Start offsets and levels of the AVM+ values decoded fresh and not yet replayed into `shared`.
    avmplus_pending: Vec<(usize, usize)>,
    /// The message-wide AMF3 context, built on the first reference a fresh context could not resolve.
    shared: Option<Amf3Context>,
    /// What the AVM+ values decoded with fresh contexts may still spend, together: one budget for the
    /// message, so many small values cannot each expand to a multiple of the whole input.
    fresh_budget: usize,
}

impl<'a> Amf0Decoder<'a> {
    /// A decoder with the default [`DecodeOptions`].
    pub fn new(input: &'a [u8]) -> Self {
        Self::with_options(input, DecodeOptions::default())
    }

    /// A decoder with the given limits.
    pub fn with_options(input: &'a [u8], options: DecodeOptions) -> Self {
        Self {
            reader: Reader::new(input),
            options,
            avmplus_pending: Vec::new(),
            shared: None,
            fresh_budget: budget_for(options, input.len()),
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.reader.position()
    }

    /// True when every byte has been decoded.
    pub fn is_empty(&self) -> bool {
        self.reader.is_empty()
    }

    /// The next value, or `None` at the end of the input.
    pub fn next_value(&mut self) -> Result<Option<Amf0Value>, AmfError> {
        if self.reader.is_empty() {
            return Ok(None);
        }
        self.value(0).map(Some)
    }

    /// Every remaining value.
    pub fn decode_all(mut self) -> Result<Vec<Amf0Value>, AmfError> {
        let mut values = Vec::new();
        while let Some(value) = self.next_value()? {
            values.push(value);
        }
        Ok(values)
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, AmfError> {
        if depth >= self.options.max_depth {
            return Err(AmfError::DepthExceeded {
                max_depth: self.options.max_depth,
            });
        }
        let offset = self.reader.position();
        let marker = self.reader.u8()?;
        Ok(match marker {
            marker::NUMBER => Amf0Value::Number(self.reader.f64()?),
            marker::BOOLEAN => Amf0Value::Boolean(self.reader.u8()? != 0),
            marker::STRING => Amf0Value::String(self.short_string()?),
            marker::OBJECT => Amf0Value::Object(self.properties(depth, false)?),
            marker::NULL => Amf0Value::Null,
            marker::UNDEFINED => Amf0Value::Undefined,
            marker::REFERENCE => Amf0Value::Reference(self.reader.u16()?),
            marker::ECMA_ARRAY => {
                let _count_hint = self.reader.u32()?;
                Amf0Value::EcmaArray(self.properties(depth, true)?)
            }
            marker::STRICT_ARRAY => {
                let count = self.reader.u32()?;
                self.reader
                    .check_count("strict array", u64::from(count), 1)?;
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Amf0Value::StrictArray(items)
            }
            marker::DATE => {
                let millis = self.reader.f64()?;
                let time_zone = self.reader.i16()?;
                Amf0Value::Date { millis, time_zone }
            }
            marker::LONG_STRING => Amf0Value::LongString(self.long_string()?),
            marker::UNSUPPORTED => Amf0Value::Unsupported,
            marker::XML_DOCUMENT => Amf0Value::XmlDocument(self.long_string()?),
            marker::TYPED_OBJECT => {
                let class_name = self.short_string()?;
                Amf0Value::TypedObject {
                    class_name,
                    properties: self.properties(depth, false)?,
                }
            }
            marker::AVMPLUS => Amf0Value::Avmplus(self.avmplus(depth + 1)?),
            marker::OBJECT_END | marker::MOVIECLIP | marker::RECORDSET => {
                return Err(AmfError::UnexpectedMarker { marker, offset })
            }
            _ => return Err(AmfError::UnknownMarker { marker, offset }),
        })
    }

    /// One AVM+ value: self-contained if it reads so, else in the message-wide context.
    fn avmplus(&mut self, depth: usize) -> Result<Amf3Value, AmfError> {
        let start = self.reader.position();
        let mut attempt = self.reader.clone();
        let mut fresh = Amf3Context::with_budget(self.options, self.fresh_budget);
        match fresh.value(&mut attempt, depth) {
            Ok(value) => {
                self.reader = attempt;
                self.fresh_budget = self.fresh_budget.saturating_sub(fresh.spent());
                self.avmplus_pending.push((start, depth));
                Ok(value)
            }
            Err(AmfError::BadReference { .. }) => {
                let (options, input_len) = (self.options, self.reader.input_len());
                let shared = self
                    .shared
                    .get_or_insert_with(|| Amf3Context::new(options, input_len));
                for (offset, level) in self.avmplus_pending.drain(..) {
                    shared.value(&mut self.reader.at(offset), level)?;
                }
                shared.value(&mut self.reader, depth)
            }
            Err(error) => Err(error),
        }
    }

    fn short_string(&mut self) -> Result<String, AmfError> {
        let len = self.reader.u16()?;
        self.reader.utf8(usize::from(len))
    }

    fn long_string(&mut self) -> Result<String, AmfError> {
        let len = self.reader.u32()?;
        self.reader.check_count("long string", u64::from(len), 1)?;
        self.reader.utf8(len as usize)
    }

    /// Key/value pairs up to the empty key and object-end marker. ECMA arrays may also end at the end of the
    /// input, as some writers omit the terminator after the last property.
    fn properties(
        &mut self,
        depth: usize,
        lenient_end: bool,
    ) -> Result<Vec<(String, Amf0Value)>, AmfError> {
        let mut properties = Vec::new();
        loop {
            if lenient_end && self.reader.is_empty() {
                return Ok(properties);
            }
            let key = self.short_string()?;
            if key.is_empty() && self.reader.peek_u8() == Some(marker::OBJECT_END) {
                self.reader.u8()?;
                return Ok(properties);
            }
            let value = self.value(depth + 1)?;
            properties.push((key, value));
        }
    }
}

/// Decodes every AMF0 value in `input` with the default limits.
pub fn decode_amf0(input: &[u8]) -> Result<Vec<Amf0Value>, AmfError> {
    Amf0Decoder::new(input).decode_all()
}

/// Appends the AMF0 encoding of `value` to `out`, after checking that it can be written so that it reads
/// back as the same value: object keys and class names fit their u16 length, strings their u32 length,
/// nesting stays within the decoder's default [`DecodeOptions::max_depth`], and embedded AMF3 values pass
/// [`Amf3Encoder::encode`]'s checks. On an error nothing is appended.
///
/// Each [`Amf0Value::Avmplus`] value is written with fresh AMF3 reference tables (no reference reaches
/// into another AVM+ value), so readers of either convention read the same values.
pub fn encode_amf0(value: &Amf0Value, out: &mut BytesMut) -> Result<(), EncodeError> {
    check_amf0(value, 0)?;
    write_amf0(value, out);
    Ok(())
}

/// Writes a value [`check_amf0`] accepted.
fn write_amf0(value: &Amf0Value, out: &mut BytesMut) {
    match value {
        Amf0Value::Number(n) => {
            out.put_u8(marker::NUMBER);
            out.put_f64(*n);
        }
        Amf0Value::Boolean(b) => {
            out.put_u8(marker::BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Amf0Value::String(s) if s.len() <= usize::from(u16::MAX) => {
            out.put_u8(marker::STRING);
            put_short_string(s, out);
        }
        Amf0Value::String(s) | Amf0Value::LongString(s) => {
            out.put_u8(marker::LONG_STRING);
            put_long_string(s, out);
        }
        Amf0Value::Object(properties) => {
            out.put_u8(marker::OBJECT);
            put_properties(properties, out);
        }
        Amf0Value::Null => out.put_u8(marker::NULL),
        Amf0Value::Undefined => out.put_u8(marker::UNDEFINED),
        Amf0Value::Reference(index) => {
            out.put_u8(marker::REFERENCE);
            out.put_u16(*index);
        }
        Amf0Value::EcmaArray(properties) => {
            out.put_u8(marker::ECMA_ARRAY);
            out.put_u32(u32::try_from(properties.len()).unwrap_or(u32::MAX));
            put_properties(properties, out);
        }
        Amf0Value::StrictArray(items) => {
            out.put_u8(marker::STRICT_ARRAY);
            out.put_u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
            for item in items {
                write_amf0(item, out);
            }
        }
        Amf0Value::Date { millis, time_zone } => {
            out.put_u8(marker::DATE);
            out.put_f64(*millis);
            out.put_i16(*time_zone);
        }
        Amf0Value::Unsupported => out.put_u8(marker::UNSUPPORTED),
        Amf0Value::XmlDocument(s) => {
            out.put_u8(marker::XML_DOCUMENT);
            put_long_string(s, out);
        }
        Amf0Value::TypedObject {
            class_name,
            properties,
        } => {
            out.put_u8(marker::TYPED_OBJECT);
            put_short_string(class_name, out);
            put_properties(properties, out);
        }
        Amf0Value::Avmplus(value) => {
            out.put_u8(marker::AVMPLUS);
            Amf3Encoder::new().write(value, out);
        }
    }
}

/// Encodes a sequence of values (a command or a data message body); fails as [`encode_amf0`] does.
pub fn encode_amf0_values(values: &[Amf0Value]) -> Result<Bytes, EncodeError> {
    values.iter().try_for_each(|value| check_amf0(value, 0))?;
    let mut out = BytesMut::new();
    for value in values {
        write_amf0(value, &mut out);
    }
    Ok(out.freeze())
}

const MAX_SHORT_STRING: usize = u16::MAX as usize;
const MAX_LONG_STRING: usize = u32::MAX as usize;

/// Fails unless `value`, found at nesting level `depth`, can be written so that this crate's decoder (with
/// its default limits) reads back the same value. Levels are counted as the decoder counts them.
fn check_amf0(value: &Amf0Value, depth: usize) -> Result<(), EncodeError> {
    if depth >= DEFAULT_MAX_DEPTH {
        return Err(EncodeError::DepthExceeded {
            max_depth: DEFAULT_MAX_DEPTH,
        });
    }
    match value {
        Amf0Value::Number(_)
        | Amf0Value::Boolean(_)
        | Amf0Value::Null
        | Amf0Value::Undefined
        | Amf0Value::Reference(_)
        | Amf0Value::Date { .. }
        | Amf0Value::Unsupported => Ok(()),
        Amf0Value::String(s) | Amf0Value::LongString(s) => {
            check_len("AMF0 string", s, MAX_LONG_STRING)
        }
        Amf0Value::XmlDocument(s) => check_len("AMF0 XML document", s, MAX_LONG_STRING),
        Amf0Value::Object(properties) | Amf0Value::EcmaArray(properties) => {
            check_properties(properties, depth)
        }
        Amf0Value::TypedObject {
            class_name,
            properties,
        } => {
            check_len("AMF0 class name", class_name, MAX_SHORT_STRING)?;
            check_properties(properties, depth)
        }
        Amf0Value::StrictArray(items) => {
            if items.len() > MAX_LONG_STRING {
                return Err(EncodeError::TooManyItems {
                    what: "AMF0 strict array",
                    count: items.len(),
                    max: MAX_LONG_STRING,
                });
            }
            items
                .iter()
                .try_for_each(|item| check_amf0(item, depth + 1))
        }
        Amf0Value::Avmplus(value) => check_amf3(value, depth + 1),
    }
}

fn check_properties(properties: &[(String, Amf0Value)], depth: usize) -> Result<(), EncodeError> {
    properties.iter().try_for_each(|(key, value)| {
        check_len("AMF0 object key", key, MAX_SHORT_STRING)?;
        check_amf0(value, depth + 1)
    })
}

fn check_len(what: &'static str, s: &str, max: usize) -> Result<(), EncodeError> {
    if s.len() > max {
        return Err(EncodeError::StringTooLong {
            what,
            len: s.len(),
            max,
        });
    }
    Ok(())
}

/// Writes a u16-length-prefixed string [`check_amf0`] accepted.
fn put_short_string(s: &str, out: &mut BytesMut) {
    out.put_u16(u16::try_from(s.len()).unwrap_or(0));
    out.put_slice(s.as_bytes());
}

/// Writes a u32-length-prefixed string [`check_amf0`] accepted.
fn put_long_string(s: &str, out: &mut BytesMut) {
    out.put_u32(u32::try_from(s.len()).unwrap_or(0));
    out.put_slice(s.as_bytes());
}

fn put_properties(properties: &[(String, Amf0Value)], out: &mut BytesMut) {
    for (key, value) in properties {
        put_short_string(key, out);
        write_amf0(value, out);
    }
    out.put_u16(0);
    out.put_u8(marker::OBJECT_END);
}
