//! Property tests: any value encodes and decodes back to itself; any bytes decode without panicking.

use bytes::BytesMut;
use proptest::prelude::*;
use rtmp_amf::{
    decode_amf0, decode_amf3, encode_amf0, Amf0Value, Amf3Encoder, Amf3Object, Amf3Value,
};

fn finite() -> impl Strategy<Value = f64> {
    prop::num::f64::NORMAL | prop::num::f64::ZERO | prop::num::f64::SUBNORMAL
}

fn key() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_ é]{1,12}"
}

fn amf3_value() -> impl Strategy<Value = Amf3Value> {
    let leaf = prop_oneof![
        Just(Amf3Value::Undefined),
        Just(Amf3Value::Null),
        any::<bool>().prop_map(Amf3Value::Boolean),
        (-(1i32 << 28)..(1 << 28)).prop_map(Amf3Value::Integer),
        finite().prop_map(Amf3Value::Double),
        ".{0,20}".prop_map(Amf3Value::String),
        ".{0,20}".prop_map(Amf3Value::Xml),
        finite().prop_map(Amf3Value::Date),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(Amf3Value::ByteArray),
        (any::<bool>(), prop::collection::vec(any::<i32>(), 0..5))
            .prop_map(|(fixed, items)| Amf3Value::VectorInt { fixed, items }),
        (any::<bool>(), prop::collection::vec(finite(), 0..5))
            .prop_map(|(fixed, items)| Amf3Value::VectorDouble { fixed, items }),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            (
                prop::collection::vec((key(), inner.clone()), 0..4),
                prop::collection::vec(inner.clone(), 0..4)
            )
                .prop_map(|(associative, dense)| Amf3Value::Array { associative, dense }),
            (
                "[A-Za-z]{0,6}",
                any::<bool>(),
                prop::collection::vec((key(), inner.clone()), 0..3),
                prop::collection::vec((key(), inner.clone()), 0..3)
            )
                .prop_map(|(class_name, dynamic, sealed, dynamic_members)| {
                    Amf3Value::Object(Amf3Object {
                        class_name,
                        dynamic,
                        sealed,
                        dynamic_members: if dynamic { dynamic_members } else { vec![] },
                    })
                }),
            ("[A-Za-z]{0,6}", prop::collection::vec(inner.clone(), 0..4)).prop_map(
                |(type_name, items)| Amf3Value::VectorObject {
                    fixed: false,
                    type_name,
                    items
                }
            ),
            prop::collection::vec((inner.clone(), inner), 0..3).prop_map(|entries| {
                Amf3Value::Dictionary {
                    weak_keys: false,
                    entries,
                }
            }),
        ]
    })
}

fn amf0_value() -> impl Strategy<Value = Amf0Value> {
    let leaf = prop_oneof![
        finite().prop_map(Amf0Value::Number),
        any::<bool>().prop_map(Amf0Value::Boolean),
        ".{0,20}".prop_map(Amf0Value::String),
        Just(Amf0Value::Null),
        Just(Amf0Value::Undefined),
        any::<u16>().prop_map(Amf0Value::Reference),
        (finite(), any::<i16>())
            .prop_map(|(millis, time_zone)| Amf0Value::Date { millis, time_zone }),
        Just(Amf0Value::Unsupported),
        ".{0,20}".prop_map(Amf0Value::XmlDocument),
        amf3_value().prop_map(Amf0Value::Avmplus),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec((key(), inner.clone()), 0..4).prop_map(Amf0Value::Object),
            prop::collection::vec((key(), inner.clone()), 0..4).prop_map(Amf0Value::EcmaArray),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Amf0Value::StrictArray),
            ("[A-Za-z]{1,6}", prop::collection::vec((key(), inner), 0..4)).prop_map(
                |(class_name, properties)| Amf0Value::TypedObject {
                    class_name,
                    properties
                }
            ),
        ]
    })
}

proptest! {
    #[test]
    fn amf0_round_trips(values in prop::collection::vec(amf0_value(), 1..4)) {
        let mut out = BytesMut::new();
        for value in &values {
            encode_amf0(value, &mut out).unwrap();
        }
        prop_assert_eq!(decode_amf0(&out).unwrap(), values);
    }

    #[test]
    fn amf3_round_trips_with_shared_reference_tables(values in prop::collection::vec(amf3_value(), 1..4)) {
        let mut encoder = Amf3Encoder::new();
        let mut out = BytesMut::new();
        for value in &values {
            encoder.encode(value, &mut out).unwrap();
        }
        prop_assert_eq!(decode_amf3(&out).unwrap(), values);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_amf0(&bytes);
        let _ = decode_amf3(&bytes);
    }
}
