//! Values the model can hold but the wire cannot carry faithfully are refused with a typed error, and
//! nothing is written; the limits themselves still encode and read back.

use bytes::BytesMut;
use rtmp_amf::{
    decode_amf0, decode_amf3, encode_amf0, encode_amf0_values, encode_amf3, Amf0Value, Amf3Encoder,
    Amf3Object, Amf3Value, DecodeOptions, EncodeError,
};

fn amf0_error(value: Amf0Value) -> EncodeError {
    let mut out = BytesMut::from(&b"kept"[..]);
    let error = encode_amf0(&value, &mut out).unwrap_err();
    assert_eq!(&out[..], b"kept", "nothing appended on error");
    assert_eq!(
        encode_amf0_values(&[Amf0Value::Null, value]),
        Err(error.clone())
    );
    error
}

fn amf3_error(value: Amf3Value) -> EncodeError {
    let mut out = BytesMut::new();
    let error = encode_amf3(&value, &mut out).unwrap_err();
    assert!(out.is_empty(), "nothing appended on error");
    assert_eq!(amf0_error(Amf0Value::Avmplus(value)), error);
    error
}

fn amf0_round_trip(value: Amf0Value) {
    let bytes = encode_amf0_values(std::slice::from_ref(&value)).unwrap();
    assert_eq!(decode_amf0(&bytes).unwrap(), vec![value]);
}

#[test]
fn empty_amf3_array_key_is_refused() {
    let value = Amf3Value::Array {
        associative: vec![
            ("a".into(), Amf3Value::Integer(1)),
            (String::new(), Amf3Value::Integer(2)),
        ],
        dense: vec![Amf3Value::Null],
    };
    assert_eq!(amf3_error(value), EncodeError::EmptyKey { what: "array" });
}

#[test]
fn empty_amf3_dynamic_member_name_is_refused() {
    let value = Amf3Value::Object(Amf3Object::anonymous([("", Amf3Value::Null)]));
    assert_eq!(amf3_error(value), EncodeError::EmptyKey { what: "object" });
}

#[test]
fn dynamic_members_on_a_sealed_amf3_object_are_refused() {
    let value = Amf3Value::Object(Amf3Object {
        class_name: "Point".into(),
        dynamic: false,
        sealed: vec![],
        dynamic_members: vec![("x".into(), Amf3Value::Integer(1))],
    });
    assert_eq!(amf3_error(value), EncodeError::DynamicMembersOnSealedObject);
}

#[test]
fn amf0_keys_over_65535_bytes_are_refused_and_65535_round_trips() {
    let long = "k".repeat(65_536);
    let expected = EncodeError::StringTooLong {
        what: "AMF0 object key",
        len: 65_536,
        max: 65_535,
    };
    let property = vec![(long.clone(), Amf0Value::Null)];
    assert_eq!(amf0_error(Amf0Value::Object(property.clone())), expected);
    assert_eq!(amf0_error(Amf0Value::EcmaArray(property.clone())), expected);
    assert_eq!(
        amf0_error(Amf0Value::TypedObject {
            class_name: "C".into(),
            properties: property,
        }),
        expected
    );
    // A multi-byte character straddling the limit is not cut either.
    let straddling = format!("{}é", "k".repeat(65_534));
    assert!(matches!(
        amf0_error(Amf0Value::Object(vec![(straddling, Amf0Value::Null)])),
        EncodeError::StringTooLong { len: 65_536, .. }
    ));
    amf0_round_trip(Amf0Value::Object(vec![(
        "k".repeat(65_535),
        Amf0Value::Null,
    )]));
}

#[test]
fn amf0_class_names_over_65535_bytes_are_refused() {
    let value = Amf0Value::TypedObject {
        class_name: "C".repeat(65_536),
        properties: vec![],
    };
    assert_eq!(
        amf0_error(value),
        EncodeError::StringTooLong {
            what: "AMF0 class name",
            len: 65_536,
            max: 65_535,
        }
    );
    amf0_round_trip(Amf0Value::TypedObject {
        class_name: "C".repeat(65_535),
        properties: vec![],
    });
}

#[test]
fn long_amf0_string_values_switch_to_long_string_rather_than_fail() {
    let text = "s".repeat(65_536);
    let bytes = encode_amf0_values(&[Amf0Value::String(text.clone())]).unwrap();
    assert_eq!(
        decode_amf0(&bytes).unwrap(),
        vec![Amf0Value::LongString(text)]
    );
}

/// A value whose innermost leaf sits at nesting level `level` (the outermost value is level 0).
fn nested_amf0(level: usize) -> Amf0Value {
    (0..level).fold(Amf0Value::Null, |inner, i| {
        if i % 2 == 0 {
            Amf0Value::StrictArray(vec![inner])
        } else {
            Amf0Value::object([("k", inner)])
        }
    })
}

fn nested_amf3(level: usize) -> Amf3Value {
    (0..level).fold(Amf3Value::Null, |inner, i| match i % 3 {
        0 => Amf3Value::Array {
            associative: vec![],
            dense: vec![inner],
        },
        1 => Amf3Value::Object(Amf3Object::anonymous([("k", inner)])),
        _ => Amf3Value::Dictionary {
            weak_keys: false,
            entries: vec![(Amf3Value::Integer(0), inner)],
        },
    })
}

#[test]
fn nesting_stops_where_the_decoder_stops() {
    let max_depth = DecodeOptions::default().max_depth;
    let deepest = max_depth - 1;
    amf0_round_trip(nested_amf0(deepest));
    assert_eq!(
        amf0_error(nested_amf0(deepest + 1)),
        EncodeError::DepthExceeded { max_depth }
    );

    let mut out = BytesMut::new();
    encode_amf3(&nested_amf3(deepest), &mut out).unwrap();
    assert_eq!(decode_amf3(&out).unwrap(), vec![nested_amf3(deepest)]);
    assert_eq!(
        encode_amf3(&nested_amf3(deepest + 1), &mut BytesMut::new()),
        Err(EncodeError::DepthExceeded { max_depth })
    );

    // Inside AMF0, the AVM+ value is one level below the marker's own level.
    amf0_round_trip(Amf0Value::Avmplus(nested_amf3(deepest - 1)));
    assert_eq!(
        amf0_error(Amf0Value::Avmplus(nested_amf3(deepest))),
        EncodeError::DepthExceeded { max_depth }
    );
}

#[test]
fn a_refused_value_leaves_the_amf3_encoder_tables_untouched() {
    let refused = Amf3Value::Array {
        associative: vec![
            ("first".into(), Amf3Value::String("second".into())),
            (String::new(), Amf3Value::Null),
        ],
        dense: vec![],
    };
    let accepted = Amf3Value::String("second".into());
    let mut encoder = Amf3Encoder::new();
    let mut out = BytesMut::new();
    assert!(encoder.encode(&refused, &mut out).is_err());
    encoder.encode(&accepted, &mut out).unwrap();
    let mut fresh = BytesMut::new();
    encode_amf3(&accepted, &mut fresh).unwrap();
    assert_eq!(out, fresh);
}
