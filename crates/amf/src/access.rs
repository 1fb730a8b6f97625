//! The ergonomic side of the value models: accessors, conversions and builders for reading and writing
//! RTMP commands without matching on nested enums.

use crate::{Amf0Value, Amf3Object, Amf3Value};

impl Amf0Value {
    /// An anonymous object with properties in the given order.
    pub fn object<K: Into<String>>(properties: impl IntoIterator<Item = (K, Amf0Value)>) -> Self {
        Amf0Value::Object(properties.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// An ECMA (associative) array, the shape `onMetaData` takes.
    pub fn ecma_array<K: Into<String>>(
        properties: impl IntoIterator<Item = (K, Amf0Value)>,
    ) -> Self {
        Amf0Value::EcmaArray(properties.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The text of a string, long string, or embedded AMF3 string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) | Amf0Value::LongString(s) => Some(s),
            Amf0Value::Avmplus(value) => value.as_str(),
            _ => None,
        }
    }

    /// The value of a number (or embedded AMF3 integer/double).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            Amf0Value::Avmplus(value) => value.as_f64(),
            _ => None,
        }
    }

    /// The boolean, also inside an AVM+ value.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Amf0Value::Boolean(b) => Some(*b),
            Amf0Value::Avmplus(value) => value.as_bool(),
            _ => None,
        }
    }

    /// True for `null` and `undefined` (in either encoding).
    pub fn is_null(&self) -> bool {
        match self {
            Amf0Value::Null | Amf0Value::Undefined => true,
            Amf0Value::Avmplus(value) => value.is_null(),
            _ => false,
        }
    }

    /// The properties of an object, ECMA array or typed object.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => Some(p),
            Amf0Value::TypedObject { properties, .. } => Some(properties),
            _ => None,
        }
    }

    /// A property by name (the first one, should a writer have repeated it). Embedded AMF3 objects are
    /// reached through [`Amf0Value::into_amf0`] first.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Replaces every embedded AMF3 value by its nearest AMF0 equivalent, so that commands sent with AMF3
    /// payloads (message type 17) read the same as AMF0 ones. Lossy only where AMF0 has no such type
    /// (byte arrays and vectors become strict arrays, dictionaries ECMA arrays with stringified keys).
    pub fn into_amf0(self) -> Amf0Value {
        match self {
            Amf0Value::Avmplus(value) => Amf0Value::from(value),
            Amf0Value::Object(p) => Amf0Value::Object(plain_properties(p)),
            Amf0Value::EcmaArray(p) => Amf0Value::EcmaArray(plain_properties(p)),
            Amf0Value::TypedObject {
                class_name,
                properties,
            } => Amf0Value::TypedObject {
                class_name,
                properties: plain_properties(properties),
            },
            Amf0Value::StrictArray(items) => {
                Amf0Value::StrictArray(items.into_iter().map(Self::into_amf0).collect())
            }
            other => other,
        }
    }
}

fn plain_properties(properties: Vec<(String, Amf0Value)>) -> Vec<(String, Amf0Value)> {
    properties
        .into_iter()
        .map(|(k, v)| (k, v.into_amf0()))
        .collect()
}

impl From<Amf3Value> for Amf0Value {
    fn from(value: Amf3Value) -> Self {
        let members = |m: Vec<(String, Amf3Value)>| {
            m.into_iter()
                .map(|(k, v)| (k, Amf0Value::from(v)))
                .collect()
        };
        match value {
            Amf3Value::Undefined => Amf0Value::Undefined,
            Amf3Value::Null => Amf0Value::Null,
            Amf3Value::Boolean(b) => Amf0Value::Boolean(b),
            Amf3Value::Integer(i) => Amf0Value::Number(f64::from(i)),
            Amf3Value::Double(d) => Amf0Value::Number(d),
            Amf3Value::String(s) => Amf0Value::String(s),
            Amf3Value::XmlDocument(s) | Amf3Value::Xml(s) => Amf0Value::XmlDocument(s),
            Amf3Value::Date(millis) => Amf0Value::Date {
                millis,
                time_zone: 0,
            },
            Amf3Value::Array { associative, dense } if associative.is_empty() => {
                Amf0Value::StrictArray(dense.into_iter().map(Amf0Value::from).collect())
            }
            Amf3Value::Array { associative, dense } => {
                let mut properties: Vec<(String, Amf0Value)> = members(associative);
                properties.extend(
                    dense
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (i.to_string(), Amf0Value::from(v))),
                );
                Amf0Value::EcmaArray(properties)
            }
            Amf3Value::Object(Amf3Object {
                class_name,
                sealed,
                dynamic_members,
                ..
            }) => {
                let mut properties: Vec<(String, Amf0Value)> = members(sealed);
                properties.extend(members(dynamic_members));
                if class_name.is_empty() {
                    Amf0Value::Object(properties)
                } else {
                    Amf0Value::TypedObject {
                        class_name,
                        properties,
                    }
                }
            }
            Amf3Value::ByteArray(bytes) => Amf0Value::StrictArray(
                bytes
                    .into_iter()
                    .map(|b| Amf0Value::Number(f64::from(b)))
                    .collect(),
            ),
            Amf3Value::VectorInt { items, .. } => numbers(items.into_iter().map(f64::from)),
            Amf3Value::VectorUint { items, .. } => numbers(items.into_iter().map(f64::from)),
            Amf3Value::VectorDouble { items, .. } => numbers(items.into_iter()),
            Amf3Value::VectorObject { items, .. } => {
                Amf0Value::StrictArray(items.into_iter().map(Amf0Value::from).collect())
            }
            Amf3Value::Dictionary { entries, .. } => Amf0Value::EcmaArray(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| format!("{k:?}")),
                            Amf0Value::from(v),
                        )
                    })
                    .collect(),
            ),
        }
    }
}

fn numbers(items: impl Iterator<Item = f64>) -> Amf0Value {
    Amf0Value::StrictArray(items.map(Amf0Value::Number).collect())
}

impl Amf3Value {
    /// The text of a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf3Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number of an integer or a double.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf3Value::Integer(i) => Some(f64::from(*i)),
            Amf3Value::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// The boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Amf3Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// True for `null` and `undefined`.
    pub fn is_null(&self) -> bool {
        matches!(self, Amf3Value::Null | Amf3Value::Undefined)
    }

    /// A member of an object (sealed or dynamic) or a key of an array's associative part.
    pub fn get(&self, key: &str) -> Option<&Amf3Value> {
        match self {
            Amf3Value::Object(object) => object.members().find(|(k, _)| k == key).map(|(_, v)| v),
            Amf3Value::Array { associative, .. } => {
                associative.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }
}

macro_rules! amf0_from_number {
    ($($t:ty),*) => {$(
        impl From<$t> for Amf0Value {
            fn from(value: $t) -> Self {
                Amf0Value::Number(f64::from(value))
            }
        }
    )*};
}
amf0_from_number!(f64, f32, u32, i32, u16, u8);

impl From<bool> for Amf0Value {
    fn from(value: bool) -> Self {
        Amf0Value::Boolean(value)
    }
}

impl From<&str> for Amf0Value {
    fn from(value: &str) -> Self {
        Amf0Value::String(value.to_owned())
    }
}

impl From<String> for Amf0Value {
    fn from(value: String) -> Self {
        Amf0Value::String(value)
    }
}
