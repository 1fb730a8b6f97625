//! AMF3: the value model, a decoder with its string/object/trait reference tables, and an encoder.

mod decode;
mod encode;

pub(crate) use decode::{budget_for, Amf3Context};
pub use decode::{decode_amf3, Amf3Decoder};
pub(crate) use encode::check_amf3;
pub use encode::{encode_amf3, Amf3Encoder};

/// AMF3 type markers (AMF3 specification §3.1).
pub mod marker {
    /// `undefined`.
    pub const UNDEFINED: u8 = 0x00;
    /// `null`.
    pub const NULL: u8 = 0x01;
    /// `false`.
    pub const FALSE: u8 = 0x02;
    /// `true`.
    pub const TRUE: u8 = 0x03;
    /// `integer`: a U29, sign-extended from 29 bits.
    pub const INTEGER: u8 = 0x04;
    /// `double`: a big-endian f64.
    pub const DOUBLE: u8 = 0x05;
    /// `string`: a U29S string or string reference.
    pub const STRING: u8 = 0x06;
    /// `xml-doc`: legacy XML document text.
    pub const XML_DOC: u8 = 0x07;
    /// `date`: f64 milliseconds since the epoch.
    pub const DATE: u8 = 0x08;
    /// `array`: associative part, then dense part.
    pub const ARRAY: u8 = 0x09;
    /// `object`: traits, then members.
    pub const OBJECT: u8 = 0x0A;
    /// `xml` (E4X) text.
    pub const XML: u8 = 0x0B;
    /// `bytearray`: raw bytes.
    pub const BYTE_ARRAY: u8 = 0x0C;
    /// `Vector.<int>`.
    pub const VECTOR_INT: u8 = 0x0D;
    /// `Vector.<uint>`.
    pub const VECTOR_UINT: u8 = 0x0E;
    /// `Vector.<Number>`.
    pub const VECTOR_DOUBLE: u8 = 0x0F;
    /// `Vector.<Object>` of a named type.
    pub const VECTOR_OBJECT: u8 = 0x10;
    /// `Dictionary`: key/value pairs of any values.
    pub const DICTIONARY: u8 = 0x11;
}

/// The range of integers AMF3 encodes as a 29-bit `integer`; others are written as `double`.
pub const INTEGER_RANGE: std::ops::RangeInclusive<i32> = -(1 << 28)..=(1 << 28) - 1;

/// One AMF3 value. References on the wire are resolved into values on decoding (within a budget).
#[derive(Debug, Clone, PartialEq)]
pub enum Amf3Value {
    /// `undefined`.
    Undefined,
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean(bool),
    /// A 29-bit signed integer; values outside [`INTEGER_RANGE`] are encoded as doubles.
    Integer(i32),
    /// A double.
    Double(f64),
    /// A string.
    String(String),
    /// A legacy XML document, as text.
    XmlDocument(String),
    /// Milliseconds since the Unix epoch (UTC).
    Date(f64),
    /// An array: an associative part (non-empty keys, in wire order) and a dense part.
    Array {
        /// Key/value pairs; keys must not be empty (the empty key ends the part on the wire).
        associative: Vec<(String, Amf3Value)>,
        /// Items by index.
        dense: Vec<Amf3Value>,
    },
    /// An object.
    Object(Amf3Object),
    /// An E4X XML value, as text.
    Xml(String),
    /// Raw bytes.
    ByteArray(Vec<u8>),
    /// A `Vector.<int>`.
    VectorInt {
        /// Whether the vector has a fixed length.
        fixed: bool,
        /// The items.
        items: Vec<i32>,
    },
    /// A `Vector.<uint>`.
    VectorUint {
        /// Whether the vector has a fixed length.
        fixed: bool,
        /// The items.
        items: Vec<u32>,
    },
    /// A `Vector.<Number>`.
    VectorDouble {
        /// Whether the vector has a fixed length.
        fixed: bool,
        /// The items.
        items: Vec<f64>,
    },
    /// A `Vector.<T>` of objects.
    VectorObject {
        /// Whether the vector has a fixed length.
        fixed: bool,
        /// The item type name (empty for `Object`).
        type_name: String,
        /// The items.
        items: Vec<Amf3Value>,
    },
    /// A `Dictionary`.
    Dictionary {
        /// Whether keys are weakly referenced (a hint for ActionScript, kept as read).
        weak_keys: bool,
        /// Key/value pairs in wire order.
        entries: Vec<(Amf3Value, Amf3Value)>,
    },
}

/// An AMF3 object: its class (empty for anonymous objects), sealed members in trait order, and dynamic
/// members when the class is dynamic.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Amf3Object {
    /// The class name; empty for an anonymous object.
    pub class_name: String,
    /// Whether the traits are dynamic (members beyond the sealed ones may follow).
    pub dynamic: bool,
    /// Members the traits name, in trait order.
    pub sealed: Vec<(String, Amf3Value)>,
    /// Members written after the sealed ones; only for dynamic traits, and names must not be empty.
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
