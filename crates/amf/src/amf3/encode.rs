//! The AMF3 encoder: writes strings and traits by reference when they repeat, as Flash Player does.

use std::collections::HashMap;

use bytes::{BufMut, BytesMut};

use super::{marker, Amf3Object, Amf3Value, INTEGER_RANGE};

/// Encodes AMF3 values, keeping the string and trait tables of one encoding context.
#[derive(Debug, Default)]
pub struct Amf3Encoder {
    strings: HashMap<String, usize>,
    traits: HashMap<(String, bool, Vec<String>), usize>,
}

impl Amf3Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the encoding of `value` to `out`.
    pub fn encode(&mut self, value: &Amf3Value, out: &mut BytesMut) {
        match value {
            Amf3Value::Undefined => out.put_u8(marker::UNDEFINED),
            Amf3Value::Null => out.put_u8(marker::NULL),
            Amf3Value::Boolean(false) => out.put_u8(marker::FALSE),
            Amf3Value::Boolean(true) => out.put_u8(marker::TRUE),
            Amf3Value::Integer(i) if INTEGER_RANGE.contains(i) => {
                out.put_u8(marker::INTEGER);
                write_u29(*i as u32 & 0x1FFF_FFFF, out);
            }
            Amf3Value::Integer(i) => {
                out.put_u8(marker::DOUBLE);
                out.put_f64(f64::from(*i));
            }
            Amf3Value::Double(d) => {
                out.put_u8(marker::DOUBLE);
                out.put_f64(*d);
            }
            Amf3Value::String(s) => {
                out.put_u8(marker::STRING);
                self.string(s, out);
            }
            Amf3Value::XmlDocument(s) | Amf3Value::Xml(s) => {
                out.put_u8(if matches!(value, Amf3Value::Xml(_)) {
                    marker::XML
                } else {
                    marker::XML_DOC
                });
                write_inline_len(s.len(), out);
                out.put_slice(s.as_bytes());
            }
            Amf3Value::Date(millis) => {
                out.put_u8(marker::DATE);
                write_u29(1, out);
                out.put_f64(*millis);
            }
            Amf3Value::Array { associative, dense } => {
                out.put_u8(marker::ARRAY);
                write_inline_len(dense.len(), out);
                for (key, item) in associative {
                    self.string(key, out);
                    self.encode(item, out);
                }
                self.string("", out);
                for item in dense {
                    self.encode(item, out);
                }
            }
            Amf3Value::Object(object) => {
                out.put_u8(marker::OBJECT);
                self.object(object, out);
            }
            Amf3Value::ByteArray(bytes) => {
                out.put_u8(marker::BYTE_ARRAY);
                write_inline_len(bytes.len(), out);
                out.put_slice(bytes);
            }
            Amf3Value::VectorInt { fixed, items } => {
                out.put_u8(marker::VECTOR_INT);
                write_inline_len(items.len(), out);
                out.put_u8(u8::from(*fixed));
                items.iter().for_each(|v| out.put_i32(*v));
            }
            Amf3Value::VectorUint { fixed, items } => {
                out.put_u8(marker::VECTOR_UINT);
                write_inline_len(items.len(), out);
                out.put_u8(u8::from(*fixed));
                items.iter().for_each(|v| out.put_u32(*v));
            }
            Amf3Value::VectorDouble { fixed, items } => {
                out.put_u8(marker::VECTOR_DOUBLE);
                write_inline_len(items.len(), out);
                out.put_u8(u8::from(*fixed));
                items.iter().for_each(|v| out.put_f64(*v));
            }
            Amf3Value::VectorObject {
                fixed,
                type_name,
                items,
            } => {
                out.put_u8(marker::VECTOR_OBJECT);
                write_inline_len(items.len(), out);
                out.put_u8(u8::from(*fixed));
                self.string(type_name, out);
                for item in items {
                    self.encode(item, out);
                }
            }
            Amf3Value::Dictionary { weak_keys, entries } => {
                out.put_u8(marker::DICTIONARY);
                write_inline_len(entries.len(), out);
                out.put_u8(u8::from(*weak_keys));
                for (key, item) in entries {
                    self.encode(key, out);
                    self.encode(item, out);
                }
            }
        }
    }

    fn string(&mut self, s: &str, out: &mut BytesMut) {
        if let Some(&index) = self.strings.get(s) {
            write_u29(((index as u32) << 1) & 0x1FFF_FFFF, out);
            return;
        }
        write_inline_len(s.len(), out);
        out.put_slice(s.as_bytes());
        if !s.is_empty() {
            let index = self.strings.len();
            self.strings.insert(s.to_owned(), index);
        }
    }

    fn object(&mut self, object: &Amf3Object, out: &mut BytesMut) {
        let names: Vec<String> = object.sealed.iter().map(|(name, _)| name.clone()).collect();
        let key = (object.class_name.clone(), object.dynamic, names);
        if let Some(&index) = self.traits.get(&key) {
            write_u29(((index as u32) << 2 | 0b01) & 0x1FFF_FFFF, out);
        } else {
            let header = (object.sealed.len() as u32) << 4 | u32::from(object.dynamic) << 3 | 0b011;
            write_u29(header & 0x1FFF_FFFF, out);
            self.string(&object.class_name, out);
            for (name, _) in &object.sealed {
                self.string(name, out);
            }
            let index = self.traits.len();
            self.traits.insert(key, index);
        }
        for (_, value) in &object.sealed {
            self.encode(value, out);
        }
        if object.dynamic {
            for (name, value) in &object.dynamic_members {
                self.string(name, out);
                self.encode(value, out);
            }
            self.string("", out);
        }
    }
}

/// Encodes one value in a fresh context.
pub fn encode_amf3(value: &Amf3Value, out: &mut BytesMut) {
    Amf3Encoder::new().encode(value, out);
}

/// Writes the `(len << 1) | 1` header of an inline value. Lengths beyond 2^28 cannot be expressed; they
/// cannot occur in practice (the chunk layer caps messages far below), and are clamped rather than failing.
fn write_inline_len(len: usize, out: &mut BytesMut) {
    let len = u32::try_from(len).unwrap_or(u32::MAX).min(0x0FFF_FFFF);
    write_u29(len << 1 | 1, out);
}

/// Writes a 29-bit unsigned integer in 1 to 4 bytes.
pub(crate) fn write_u29(value: u32, out: &mut BytesMut) {
    let value = value & 0x1FFF_FFFF;
    if value < 0x80 {
        out.put_u8(value as u8);
    } else if value < 0x4000 {
        out.put_u8((value >> 7) as u8 | 0x80);
        out.put_u8((value & 0x7F) as u8);
    } else if value < 0x20_0000 {
        out.put_u8((value >> 14) as u8 | 0x80);
        out.put_u8((value >> 7) as u8 & 0x7F | 0x80);
        out.put_u8((value & 0x7F) as u8);
    } else {
        out.put_u8((value >> 22) as u8 | 0x80);
        out.put_u8((value >> 15) as u8 & 0x7F | 0x80);
        out.put_u8((value >> 8) as u8 & 0x7F | 0x80);
        out.put_u8(value as u8);
    }
}
