//! AMF3: the value model, a decoder with its string/object/trait reference tables, and an encoder.

mod decode;
mod encode;

pub(crate) use decode::Amf3Context;
pub use decode::{decode_amf3, Amf3Decoder};
pub(crate) use encode::check_amf3;
pub use encode::{encode_amf3, Amf3Encoder};

/// AMF3 type markers.
pub mod marker {
    pub const UNDEFINED: u8 = 0x00;
    pub const NULL: u8 = 0x01;
    pub const FALSE: u8 = 0x02;
    pub const TRUE: u8 = 0x03;
    pub const INTEGER: u8 = 0x04;
    pub const DOUBLE: u8 = 0x05;
    pub const STRING: u8 = 0x06;
    pub const XML_DOC: u8 = 0x07;
    pub const DATE: u8 = 0x08;
    pub const ARRAY: u8 = 0x09;
    pub const OBJECT: u8 = 0x0A;
    pub const XML: u8 = 0x0B;
    pub const BYTE_ARRAY: u8 = 0x0C;
    pub const VECTOR_INT: u8 = 0x0D;
    pub const VECTOR_UINT: u8 = 0x0E;
    pub const VECTOR_DOUBLE: u8 = 0x0F;
    pub const VECTOR_OBJECT: u8 = 0x10;
    pub const DICTIONARY: u8 = 0x11;
}

/// The range of integers AMF3 encodes as a 29-bit `integer`; others are written as `double`.
pub const INTEGER_RANGE: std::ops::RangeInclusive<i32> = -(1 << 28)..=(1 << 28) - 1;

/// One AMF3 value. References on the wire are resolved into values on decoding (within a budget).
#[derive(Debug, Clone, PartialEq)]
pub enum Amf3Value {
    Undefined,
    Null,
    Boolean(bool),
    /// A 29-bit signed integer; values outside [`INTEGER_RANGE`] are encoded as doubles.
    Integer(i32),
    Double(f64),
    String(String),
    XmlDocument(String),
    /// Milliseconds since the Unix epoch (UTC).
    Date(f64),
    Array {
        associative: Vec<(String, Amf3Value)>,
        dense: Vec<Amf3Value>,
    },
    Object(Amf3Object),
    Xml(String),
    ByteArray(Vec<u8>),
    VectorInt {
        fixed: bool,
        items: Vec<i32>,
    },
    VectorUint {
        fixed: bool,
        items: Vec<u32>,
    },
    VectorDouble {
        fixed: bool,
        items: Vec<f64>,
    },
    VectorObject {
        fixed: bool,
        type_name: String,
        items: Vec<Amf3Value>,
    },
    Dictionary {
        weak_keys: bool,
        entries: Vec<(Amf3Value, Amf3Value)>,
    },
}

/// An AMF3 object: its class (empty for anonymous objects), sealed members in trait order, and dynamic
/// members when the class is dynamic.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Amf3Object {
    pub class_name: String,
    pub dynamic: bool,
    pub sealed: Vec<(String, Amf3Value)>,
    pub dynamic_members: Vec<(String, Amf3Value)>,
}

impl Amf3Object {
    /// An anonymous dynamic object, the shape ActionScript's `{a: 1}` takes.
    pub fn anonymous<K: Into<String>>(members: impl IntoIterator<Item = (K, Amf3Value)>) -> Self {
        Self {
            class_name: String::new(),
            dynamic: true,
            sealed: Vec::new(),
            dynamic_members: members.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        }
    }

    /// Every member, sealed first.
    pub fn members(&self) -> impl Iterator<Item = &(String, Amf3Value)> {
        self.sealed.iter().chain(self.dynamic_members.iter())
    }
}
