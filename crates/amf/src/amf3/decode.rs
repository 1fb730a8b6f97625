//! The AMF3 decoder: strict about lengths, depth and references, and bounded in what it allocates.

use super::{marker, Amf3Object, Amf3Value};
use crate::reader::Reader;
use crate::{AmfError, DecodeOptions};

#[derive(Debug, Clone)]
struct Traits {
    class_name: String,
    dynamic: bool,
    externalizable: bool,
    members: Vec<String>,
}

/// The reference tables and allocation budget of one AMF3 decoding context.
#[derive(Debug)]
pub(crate) struct Amf3Context {
    options: DecodeOptions,
    strings: Vec<String>,
    /// `None` while the object is still being decoded: a reference to it is a cycle.
    objects: Vec<Option<(Amf3Value, usize)>>,
    traits: Vec<Traits>,
    budget: usize,
    spent: usize,
}

impl Amf3Context {
    pub(crate) fn new(options: DecodeOptions, input_len: usize) -> Self {
        Self::with_budget(options, budget_for(options, input_len))
    }

    /// A context that may spend at most `budget` units (see [`budget_for`]).
    pub(crate) fn with_budget(options: DecodeOptions, budget: usize) -> Self {
        Self {
            options,
            strings: Vec::new(),
            objects: Vec::new(),
            traits: Vec::new(),
            budget,
            spent: 0,
        }
    }

    /// Units spent so far.
    pub(crate) fn spent(&self) -> usize {
        self.spent
    }

    fn charge(&mut self, units: usize) -> Result<(), AmfError> {
        self.spent = self.spent.saturating_add(units);
        if self.spent > self.budget {
            return Err(AmfError::TooLarge {
                budget: self.budget,
            });
        }
        Ok(())
    }

    pub(crate) fn value(
        &mut self,
        reader: &mut Reader<'_>,
        depth: usize,
    ) -> Result<Amf3Value, AmfError> {
        self.value_inner(reader, depth)
    }

    fn value_inner(
        &mut self,
        reader: &mut Reader<'_>,
        depth: usize,
    ) -> Result<Amf3Value, AmfError> {
        if depth >= self.options.max_depth {
            return Err(AmfError::DepthExceeded {
                max_depth: self.options.max_depth,
            });
        }
        self.charge(1)?;
        let offset = reader.position();
        let marker = reader.u8()?;
        match marker {
            marker::UNDEFINED => Ok(Amf3Value::Undefined),
            marker::NULL => Ok(Amf3Value::Null),
            marker::FALSE => Ok(Amf3Value::Boolean(false)),
            marker::TRUE => Ok(Amf3Value::Boolean(true)),
            marker::INTEGER => Ok(Amf3Value::Integer(sign_extend_u29(read_u29(reader)?))),
            marker::DOUBLE => Ok(Amf3Value::Double(reader.f64()?)),
            marker::STRING => Ok(Amf3Value::String(self.string(reader)?)),
            marker::XML_DOC | marker::XML => self.complex(reader, |ctx, reader, header| {
                let text = ctx.inline_text(reader, header)?;
                Ok(if marker == marker::XML {
                    Amf3Value::Xml(text)
                } else {
                    Amf3Value::XmlDocument(text)
                })
            }),
            marker::DATE => self.complex(reader, |_, reader, _| Ok(Amf3Value::Date(reader.f64()?))),
            marker::BYTE_ARRAY => self.complex(reader, |ctx, reader, header| {
                let len = (header >> 1) as usize;
                reader.check_count("byte array", len as u64, 1)?;
                ctx.charge(len / 16)?;
                Ok(Amf3Value::ByteArray(reader.take(len)?.to_vec()))
            }),
            marker::ARRAY => self.complex(reader, |ctx, reader, header| {
                ctx.array(reader, header, depth)
            }),
            marker::OBJECT => self.complex(reader, |ctx, reader, header| {
                ctx.object(reader, header, depth)
            }),
            marker::VECTOR_INT => self.complex(reader, |ctx, reader, header| {
                let (fixed, count) = ctx.vector_head(reader, header, 4)?;
                let items = (0..count)
                    .map(|_| reader.u32().map(|v| v as i32))
                    .collect::<Result<_, _>>()?;
                Ok(Amf3Value::VectorInt { fixed, items })
            }),
            marker::VECTOR_UINT => self.complex(reader, |ctx, reader, header| {
                let (fixed, count) = ctx.vector_head(reader, header, 4)?;
                let items = (0..count).map(|_| reader.u32()).collect::<Result<_, _>>()?;
                Ok(Amf3Value::VectorUint { fixed, items })
            }),
            marker::VECTOR_DOUBLE => self.complex(reader, |ctx, reader, header| {
                let (fixed, count) = ctx.vector_head(reader, header, 8)?;
                let items = (0..count).map(|_| reader.f64()).collect::<Result<_, _>>()?;
                Ok(Amf3Value::VectorDouble { fixed, items })
            }),
            marker::VECTOR_OBJECT => self.complex(reader, |ctx, reader, header| {
                let (fixed, count) = ctx.vector_head(reader, header, 1)?;
                let type_name = ctx.string(reader)?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(ctx.value_inner(reader, depth + 1)?);
                }
                Ok(Amf3Value::VectorObject {
                    fixed,
                    type_name,
                    items,
                })
            }),
            marker::DICTIONARY => self.complex(reader, |ctx, reader, header| {
                let count = (header >> 1) as usize;
                let weak_keys = reader.u8()? != 0;
                reader.check_count("dictionary", count as u64, 2)?;
                let mut entries = Vec::with_capacity(count);
                for _ in 0..count {
                    let key = ctx.value_inner(reader, depth + 1)?;
                    let value = ctx.value_inner(reader, depth + 1)?;
                    entries.push((key, value));
                }
                Ok(Amf3Value::Dictionary { weak_keys, entries })
            }),
            _ => Err(AmfError::UnknownMarker { marker, offset }),
        }
    }

    /// A value that lives in the object table: either a reference to an earlier one (cloned, and charged
    /// against the budget) or an inline one, whose table slot is reserved before its body is read.
    fn complex(
        &mut self,
        reader: &mut Reader<'_>,
        body: impl FnOnce(&mut Self, &mut Reader<'_>, u32) -> Result<Amf3Value, AmfError>,
    ) -> Result<Amf3Value, AmfError> {
        let header = read_u29(reader)?;
        if header & 1 == 0 {
            let index = (header >> 1) as usize;
            let len = self.objects.len();
            let (value, cost) = match self.objects.get(index) {
                None => {
                    return Err(AmfError::BadReference {
                        table: "object",
                        index,
                        len,
                    })
                }
                Some(None) => return Err(AmfError::CircularReference { index }),
                Some(Some((value, cost))) => (value.clone(), *cost),
            };
            self.charge(cost)?;
            return Ok(value);
        }
        let slot = self.objects.len();
        self.objects.push(None);
        let spent_before = self.spent;
        let value = body(self, reader, header)?;
        let cost = self.spent.saturating_sub(spent_before).max(1);
        if let Some(entry) = self.objects.get_mut(slot) {
            *entry = Some((value.clone(), cost));
        }
        Ok(value)
    }

    fn inline_text(&mut self, reader: &mut Reader<'_>, header: u32) -> Result<String, AmfError> {
        let len = (header >> 1) as usize;
        self.charge(len / 16)?;
        reader.utf8(len)
    }

    fn vector_head(
        &mut self,
        reader: &mut Reader<'_>,
        header: u32,
        item_len: usize,
    ) -> Result<(bool, usize), AmfError> {
        let count = (header >> 1) as usize;
        let fixed = reader.u8()? != 0;
        reader.check_count("vector", count as u64, item_len)?;
        self.charge(count)?;
        Ok((fixed, count))
    }

    /// A `U29S-ref` string: inline (and remembered unless empty) or a reference to the string table.
    fn string(&mut self, reader: &mut Reader<'_>) -> Result<String, AmfError> {
        let header = read_u29(reader)?;
        if header & 1 == 0 {
            let index = (header >> 1) as usize;
            let len = self.strings.len();
            let text = self.strings.get(index).ok_or(AmfError::BadReference {
                table: "string",
                index,
                len,
            })?;
            let text = text.clone();
            self.charge(1 + text.len() / 16)?;
            return Ok(text);
        }
        let len = (header >> 1) as usize;
        let text = reader.utf8(len)?;
        if !text.is_empty() {
            self.strings.push(text.clone());
        }
        Ok(text)
    }

    fn array(
        &mut self,
        reader: &mut Reader<'_>,
        header: u32,
        depth: usize,
    ) -> Result<Amf3Value, AmfError> {
        let dense_len = (header >> 1) as usize;
        let mut associative = Vec::new();
        loop {
            let key = self.string(reader)?;
            if key.is_empty() {
                break;
            }
            let value = self.value_inner(reader, depth + 1)?;
            associative.push((key, value));
        }
        reader.check_count("dense array", dense_len as u64, 1)?;
        let mut dense = Vec::with_capacity(dense_len);
        for _ in 0..dense_len {
            dense.push(self.value_inner(reader, depth + 1)?);
        }
        Ok(Amf3Value::Array { associative, dense })
    }

    fn object(
        &mut self,
        reader: &mut Reader<'_>,
        header: u32,
        depth: usize,
    ) -> Result<Amf3Value, AmfError> {
        let traits = if header & 0b10 == 0 {
            let index = (header >> 2) as usize;
            let len = self.traits.len();
            self.traits
                .get(index)
                .cloned()
                .ok_or(AmfError::BadReference {
                    table: "trait",
                    index,
                    len,
                })?
        } else {
            let externalizable = header & 0b100 != 0;
            let dynamic = header & 0b1000 != 0;
            let sealed_count = (header >> 4) as usize;
            let class_name = self.string(reader)?;
            reader.check_count("sealed members", sealed_count as u64, 1)?;
            let mut members = Vec::with_capacity(sealed_count);
            for _ in 0..sealed_count {
                members.push(self.string(reader)?);
            }
            let traits = Traits {
                class_name,
                dynamic,
                externalizable,
                members,
            };
            self.traits.push(traits.clone());
            traits
        };
        if traits.externalizable {
            return Err(AmfError::Externalizable {
                class_name: traits.class_name,
            });
        }
        let mut sealed = Vec::with_capacity(traits.members.len());
        for name in &traits.members {
            let value = self.value_inner(reader, depth + 1)?;
            sealed.push((name.clone(), value));
        }
        let mut dynamic_members = Vec::new();
        if traits.dynamic {
            loop {
                let key = self.string(reader)?;
                if key.is_empty() {
                    break;
                }
                let value = self.value_inner(reader, depth + 1)?;
                dynamic_members.push((key, value));
            }
        }
        Ok(Amf3Value::Object(Amf3Object {
            class_name: traits.class_name,
            dynamic: traits.dynamic,
            sealed,
            dynamic_members,
        }))
    }
}

/// What decoding `input_len` bytes may spend on values: a small multiple of the input, plus some slack.
pub(crate) fn budget_for(options: DecodeOptions, input_len: usize) -> usize {
    input_len
        .saturating_mul(options.max_expansion)
        .saturating_add(1024)
}

/// Reads a variable-length 29-bit unsigned integer.
pub(crate) fn read_u29(reader: &mut Reader<'_>) -> Result<u32, AmfError> {
    let mut value: u32 = 0;
    for _ in 0..3 {
        let byte = reader.u8()?;
        if byte & 0x80 == 0 {
            return Ok((value << 7) | u32::from(byte));
        }
        value = (value << 7) | u32::from(byte & 0x7F);
    }
    Ok((value << 8) | u32::from(reader.u8()?))
}

fn sign_extend_u29(value: u32) -> i32 {
    if value & 0x1000_0000 != 0 {
        (value | 0xE000_0000) as i32
    } else {
        value as i32
    }
}

/// Decodes AMF3 values one by one, sharing reference tables across the values of one buffer.
#[derive(Debug)]
pub struct Amf3Decoder<'a> {
    reader: Reader<'a>,
    context: Amf3Context,
}

impl<'a> Amf3Decoder<'a> {
    /// A decoder with the default [`DecodeOptions`].
    pub fn new(input: &'a [u8]) -> Self {
        Self::with_options(input, DecodeOptions::default())
    }

    /// A decoder with the given limits.
    pub fn with_options(input: &'a [u8], options: DecodeOptions) -> Self {
        Self {
            reader: Reader::new(input),
            context: Amf3Context::new(options, input.len()),
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.reader.position()
    }

    /// The next value, or `None` at the end of the input.
    pub fn next_value(&mut self) -> Result<Option<Amf3Value>, AmfError> {
        if self.reader.is_empty() {
            return Ok(None);
        }
        self.context.value(&mut self.reader, 0).map(Some)
    }

    /// Every remaining value.
    pub fn decode_all(mut self) -> Result<Vec<Amf3Value>, AmfError> {
        let mut values = Vec::new();
        while let Some(value) = self.next_value()? {
            values.push(value);
        }
        Ok(values)
    }
}

/// Decodes every AMF3 value in `input` with the default limits.
pub fn decode_amf3(input: &[u8]) -> Result<Vec<Amf3Value>, AmfError> {
    Amf3Decoder::new(input).decode_all()
}
