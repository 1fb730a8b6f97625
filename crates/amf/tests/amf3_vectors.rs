//! AMF3 known-good byte vectors (from the AMF3 specification's encoding rules), reference tables, and
//! every marker.

use bytes::BytesMut;
use rtmp_amf::{decode_amf3, Amf3Encoder, Amf3Object, Amf3Value};

fn encoded(values: &[Amf3Value]) -> Vec<u8> {
    let mut encoder = Amf3Encoder::new();
    let mut out = BytesMut::new();
    for value in values {
        encoder.encode(value, &mut out).unwrap();
    }
    out.to_vec()
}

fn check(values: &[Amf3Value], bytes: &[u8]) {
    assert_eq!(encoded(values), bytes, "encoding of {values:?}");
    assert_eq!(
        decode_amf3(bytes).unwrap(),
        values,
        "decoding of {bytes:02x?}"
    );
}

#[test]
fn u29_integers_at_every_length_boundary() {
    let cases: &[(i32, &[u8])] = &[
        (0, &[0x04, 0x00]),
        (0x7F, &[0x04, 0x7F]),
        (0x80, &[0x04, 0x81, 0x00]),
        (0x3FFF, &[0x04, 0xFF, 0x7F]),
        (0x4000, &[0x04, 0x81, 0x80, 0x00]),
        (0x1F_FFFF, &[0x04, 0xFF, 0xFF, 0x7F]),
        (0x20_0000, &[0x04, 0x80, 0xC0, 0x80, 0x00]),
        (0x0FFF_FFFF, &[0x04, 0xBF, 0xFF, 0xFF, 0xFF]),
        (-1, &[0x04, 0xFF, 0xFF, 0xFF, 0xFF]),
        (-(1 << 28), &[0x04, 0xC0, 0x80, 0x80, 0x00]),
    ];
    for (value, bytes) in cases {
        check(&[Amf3Value::Integer(*value)], bytes);
    }
}

#[test]
fn integers_outside_29_bits_are_written_as_doubles() {
    let bytes = encoded(&[Amf3Value::Integer(1 << 28)]);
    assert_eq!(bytes[0], 0x05);
    assert_eq!(
        decode_amf3(&bytes).unwrap(),
        vec![Amf3Value::Double(f64::from(1 << 28))]
    );
}

#[test]
fn simple_markers() {
    check(&[Amf3Value::Undefined], &[0x00]);
    check(&[Amf3Value::Null], &[0x01]);
    check(&[Amf3Value::Boolean(false)], &[0x02]);
    check(&[Amf3Value::Boolean(true)], &[0x03]);
    check(
        &[Amf3Value::Double(0.5)],
        &[0x05, 0x3F, 0xE0, 0, 0, 0, 0, 0, 0],
    );
    check(
        &[Amf3Value::Date(0.0)],
        &[0x08, 0x01, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    check(
        &[Amf3Value::XmlDocument("<a/>".into())],
        &[0x07, 0x09, b'<', b'a', b'/', b'>'],
    );
    check(
        &[Amf3Value::Xml("<b/>".into())],
        &[0x0B, 0x09, b'<', b'b', b'/', b'>'],
    );
    check(&[Amf3Value::ByteArray(vec![1, 2])], &[0x0C, 0x05, 1, 2]);
}

#[test]
fn strings_repeat_by_reference_and_empty_string_is_never_referenced() {
    check(
        &[
            Amf3Value::String("hello".into()),
            Amf3Value::String("hello".into()),
            Amf3Value::String(String::new()),
        ],
        &[
            0x06, 0x0B, b'h', b'e', b'l', b'l', b'o', 0x06, 0x00, 0x06, 0x01,
        ],
    );
}

#[test]
fn arrays_dense_and_associative() {
    check(
        &[Amf3Value::Array {
            associative: vec![("k".into(), Amf3Value::Null)],
            dense: vec![Amf3Value::Integer(1), Amf3Value::Boolean(true)],
        }],
        &[0x09, 0x05, 0x03, b'k', 0x01, 0x01, 0x04, 0x01, 0x03],
    );
}

#[test]
fn objects_sealed_dynamic_and_trait_references() {
    let point = |x: i32| {
        Amf3Value::Object(Amf3Object {
            class_name: "P".into(),
            dynamic: false,
            sealed: vec![("x".into(), Amf3Value::Integer(x))],
            dynamic_members: vec![],
        })
    };
    // First object: inline traits (1 sealed member, not dynamic) = 0b1_0011 = 0x13; the second reuses
    // trait 0 (0b0001) and the class/member names come from the string table.
    check(
        &[point(1), point(2)],
        &[
            0x0A, 0x13, 0x03, b'P', 0x03, b'x', 0x04, 0x01, 0x0A, 0x01, 0x04, 0x02,
        ],
    );
    let anonymous = Amf3Value::Object(Amf3Object::anonymous([("a", Amf3Value::Integer(1))]));
    check(
        &[anonymous],
        &[0x0A, 0x0B, 0x01, 0x03, b'a', 0x04, 0x01, 0x01],
    );
}

#[test]
fn vectors_and_dictionary() {
    check(
        &[Amf3Value::VectorInt {
            fixed: true,
            items: vec![-1],
        }],
        &[0x0D, 0x03, 0x01, 0xFF, 0xFF, 0xFF, 0xFF],
    );
    check(
        &[Amf3Value::VectorUint {
            fixed: false,
            items: vec![7],
        }],
        &[0x0E, 0x03, 0x00, 0, 0, 0, 7],
    );
    check(
        &[Amf3Value::VectorDouble {
            fixed: false,
            items: vec![1.0],
        }],
        &[0x0F, 0x03, 0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0],
    );
    check(
        &[Amf3Value::VectorObject {
            fixed: false,
            type_name: "T".into(),
            items: vec![Amf3Value::Null],
        }],
        &[0x10, 0x03, 0x00, 0x03, b'T', 0x01],
    );
    check(
        &[Amf3Value::Dictionary {
            weak_keys: false,
            entries: vec![(Amf3Value::Integer(1), Amf3Value::Null)],
        }],
        &[0x11, 0x03, 0x00, 0x04, 0x01, 0x01],
    );
}

#[test]
fn object_references_resolve_to_the_earlier_value() {
    // An array whose two dense items are the same ByteArray: the second is object reference 1 (the array
    // itself is object 0).
    let bytes = [0x09, 0x05, 0x01, 0x0C, 0x03, 0xAA, 0x0C, 0x02];
    let bytes_value = Amf3Value::ByteArray(vec![0xAA]);
    assert_eq!(
        decode_amf3(&bytes).unwrap(),
        vec![Amf3Value::Array {
            associative: vec![],
            dense: vec![bytes_value.clone(), bytes_value]
        }]
    );
}

#[test]
fn externalizable_objects_are_a_typed_error() {
    let bytes = [0x0A, 0x07, 0x03, b'E'];
    assert!(matches!(
        decode_amf3(&bytes),
        Err(rtmp_amf::AmfError::Externalizable { .. })
    ));
}
