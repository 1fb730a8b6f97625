//! The AMF3 encoder: checks that a value can be written faithfully, then writes strings and traits by
//! reference when they repeat, as Flash Player does.

use std::collections::HashMap;

use bytes::{BufMut, BytesMut};

use super::{marker, Amf3Object, Amf3Value, INTEGER_RANGE};
use crate::{EncodeError, DEFAULT_MAX_DEPTH};

/// The longest inline length a `U29` header can carry (`len << 1 | 1` in 29 bits).
const MAX_INLINE_LEN: usize = 0x0FFF_FFFF;
/// The most sealed members a trait header can carry (`count << 4 | flags` in 29 bits).
const MAX_SEALED: usize = 0x01FF_FFFF;
/// String and trait indexes past these cannot be written as references; such entries are written inline.
const MAX_STRING_REF: usize = 0x0FFF_FFFF;
const MAX_TRAIT_REF: usize = 0x07FF_FFFF;

/// Encodes AMF3 values, keeping the string and trait tables of one encoding context.
#[derive(Debug, Default)]
pub struct Amf3Encoder {
    strings: HashMap<String, usize>,
    traits: HashMap<(String, bool, Vec<String>), usize>,
}

impl Amf3Encoder {
    /// An encoder with empty reference tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the encoding of `value` to `out`, after checking that it can be written so that it reads
    /// back as the same value. On an error nothing is appended and the reference tables are unchanged.
    pub fn encode(&mut self, value: &Amf3Value, out: &mut BytesMut) -> Result<(), EncodeError> {
        check_amf3(value, 0)?;
        self.write(value, out);
        Ok(())
    }

    /// Writes a value [`check_amf3`] accepted.
    pub(crate) fn write(&mut self, value: &Amf3Value, out: &mut BytesMut) {
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
                    self.write(item, out);
                }
                self.string("", out);
                for item in dense {
                    self.write(item, out);
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
                    self.write(item, out);
                }
            }
            Amf3Value::Dictionary { weak_keys, entries } => {
                out.put_u8(marker::DICTIONARY);
                write_inline_len(entries.len(), out);
                out.put_u8(u8::from(*weak_keys));
                for (key, item) in entries {
                    self.write(key, out);
                    self.write(item, out);
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
        if !s.is_empty() && self.strings.len() <= MAX_STRING_REF {
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
            if index <= MAX_TRAIT_REF {
                self.traits.insert(key, index);
            }
        }
        for (_, value) in &object.sealed {
            self.write(value, out);
        }
        if object.dynamic {
            for (name, value) in &object.dynamic_members {
                self.string(name, out);
                self.write(value, out);
            }
            self.string("", out);
        }
    }
}

/// Encodes one value in a fresh context (see [`Amf3Encoder::encode`]).
pub fn encode_amf3(value: &Amf3Value, out: &mut BytesMut) -> Result<(), EncodeError> {
    Amf3Encoder::new().encode(value, out)
}

/// Fails unless `value`, found at nesting level `depth`, can be written so that this crate's decoder (with
/// its default limits) reads back the same value. Levels are counted as the decoder counts them.
pub(crate) fn check_amf3(value: &Amf3Value, depth: usize) -> Result<(), EncodeError> {
    if depth >= DEFAULT_MAX_DEPTH {
        return Err(EncodeError::DepthExceeded {
            max_depth: DEFAULT_MAX_DEPTH,
        });
    }
    let text = |what, s: &str| check_len(what, s.len());
    match value {
        Amf3Value::Undefined
        | Amf3Value::Null
        | Amf3Value::Boolean(_)
        | Amf3Value::Integer(_)
        | Amf3Value::Double(_)
        | Amf3Value::Date(_) => Ok(()),
        Amf3Value::String(s) => text("AMF3 string", s),
        Amf3Value::XmlDocument(s) | Amf3Value::Xml(s) => text("AMF3 XML", s),
        Amf3Value::ByteArray(bytes) => check_count("AMF3 byte array", bytes.len(), MAX_INLINE_LEN),
        Amf3Value::Array { associative, dense } => {
            check_count("AMF3 dense array", dense.len(), MAX_INLINE_LEN)?;
            for (key, item) in associative {
                if key.is_empty() {
                    return Err(EncodeError::EmptyKey { what: "array" });
                }
                text("AMF3 array key", key)?;
                check_amf3(item, depth + 1)?;
            }
            dense
                .iter()
                .try_for_each(|item| check_amf3(item, depth + 1))
        }
        Amf3Value::Object(object) => {
            text("AMF3 class name", &object.class_name)?;
            check_count("AMF3 sealed members", object.sealed.len(), MAX_SEALED)?;
            for (name, item) in &object.sealed {
                text("AMF3 member name", name)?;
                check_amf3(item, depth + 1)?;
            }
            if !object.dynamic && !object.dynamic_members.is_empty() {
                return Err(EncodeError::DynamicMembersOnSealedObject);
            }
            if object.dynamic {
                for (name, item) in &object.dynamic_members {
                    if name.is_empty() {
                        return Err(EncodeError::EmptyKey { what: "object" });
                    }
                    text("AMF3 member name", name)?;
                    check_amf3(item, depth + 1)?;
                }
            }
            Ok(())
        }
        Amf3Value::VectorInt { items, .. } => {
            check_count("AMF3 vector", items.len(), MAX_INLINE_LEN)
        }
        Amf3Value::VectorUint { items, .. } => {
            check_count("AMF3 vector", items.len(), MAX_INLINE_LEN)
        }
        Amf3Value::VectorDouble { items, .. } => {
            check_count("AMF3 vector", items.len(), MAX_INLINE_LEN)
        }
        Amf3Value::VectorObject {
            type_name, items, ..
        } => {
            text("AMF3 vector type name", type_name)?;
            check_count("AMF3 vector", items.len(), MAX_INLINE_LEN)?;
            items
                .iter()
                .try_for_each(|item| check_amf3(item, depth + 1))
        }
        Amf3Value::Dictionary { entries, .. } => {
            check_count("AMF3 dictionary", entries.len(), MAX_INLINE_LEN)?;
            entries.iter().try_for_each(|(key, item)| {
                check_amf3(key, depth + 1)?;
                check_amf3(item, depth + 1)
            })
        }
    }
}

fn check_len(what: &'static str, len: usize) -> Result<(), EncodeError> {
    if len > MAX_INLINE_LEN {
        return Err(EncodeError::StringTooLong {
            what,
            len,
            max: MAX_INLINE_LEN,
        });
    }
    Ok(())
}

fn check_count(what: &'static str, count: usize, max: usize) -> Result<(), EncodeError> {
    if count > max {
        return Err(EncodeError::TooManyItems { what, count, max });
    }
    Ok(())
}

/// Writes the `(len << 1) | 1` header of an inline value whose length [`check_amf3`] accepted.
fn write_inline_len(len: usize, out: &mut BytesMut) {
    let len = u32::try_from(len.min(MAX_INLINE_LEN)).unwrap_or(0);
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
