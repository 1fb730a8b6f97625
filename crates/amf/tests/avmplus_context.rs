//! AMF3 reference tables across AVM+ markers: bytes written with one AMF3 context per message (as Py3AMF
//! writes them) and bytes written with one context per marker (as this crate writes them) decode to the
//! same values.

use rtmp_amf::{decode_amf0, encode_amf0_values, Amf0Value, Amf3Object, Amf3Value, AmfError};

fn status(code: &str) -> Amf0Value {
    Amf0Value::Avmplus(Amf3Value::Object(Amf3Object::anonymous([
        ("code", Amf3Value::String(code.into())),
        ("level", Amf3Value::String("status".into())),
    ])))
}

fn point(x: i32, y: i32) -> Amf0Value {
    Amf0Value::Avmplus(Amf3Value::Object(Amf3Object {
        class_name: "Point".into(),
        dynamic: false,
        sealed: vec![
            ("x".into(), Amf3Value::Integer(x)),
            ("y".into(), Amf3Value::Integer(y)),
        ],
        dynamic_members: vec![],
    }))
}

/// `s` as an inline AMF3 `U29S` string (short strings only).
fn inline(s: &str) -> Vec<u8> {
    let mut out = vec![(s.len() as u8) << 1 | 1];
    out.extend_from_slice(s.as_bytes());
    out
}

fn bytes(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Both conventions read the same; this crate's own encoding is self-contained per marker.
fn check_both_conventions(shared_context_bytes: &[u8], expected: &[Amf0Value]) {
    assert_eq!(decode_amf0(shared_context_bytes).unwrap(), expected);
    let own = encode_amf0_values(expected).unwrap();
    assert_eq!(decode_amf0(&own).unwrap(), expected);
    for value in expected {
        let alone = encode_amf0_values(std::slice::from_ref(value)).unwrap();
        assert!(
            own.windows(alone.len()).any(|w| w == &alone[..]),
            "each AVM+ value is written as it would be alone"
        );
    }
}

/// The first object (AVM+ value 1) defines strings 0..=3 ("code", the code, "level", "status") and the
/// anonymous dynamic trait 0.
fn first_status() -> Vec<u8> {
    bytes(&[
        &[0x11, 0x0A, 0x0B, 0x01],
        &inline("code"),
        &[0x06],
        &inline("NetStream.Play.Start"),
        &inline("level"),
        &[0x06],
        &inline("status"),
        &[0x01],
    ])
}

#[test]
fn string_references_into_an_earlier_avmplus_value() {
    let message = bytes(&[
        &[0x02, 0x00, 0x08],
        b"onStatus",
        &[0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x05],
        &first_status(),
        // Same trait inline, keys and "status" by reference to strings 0, 2 and 3 of the first value.
        &[0x11, 0x0A, 0x0B, 0x01, 0x00, 0x06],
        &inline("NetStream.Play.Reset"),
        &[0x04, 0x06, 0x06, 0x01],
    ]);
    check_both_conventions(
        &message,
        &[
            "onStatus".into(),
            0.0.into(),
            Amf0Value::Null,
            status("NetStream.Play.Start"),
            status("NetStream.Play.Reset"),
        ],
    );
}

#[test]
fn trait_and_object_references_into_earlier_avmplus_values() {
    let message = bytes(&[
        &first_status(),
        // Point(1, 2): sealed trait 1 (two members), strings 4..=6.
        &[0x11, 0x0A, 0x23],
        &inline("Point"),
        &inline("x"),
        &inline("y"),
        &[0x04, 0x01, 0x04, 0x02],
        // Point(3, 4) by trait reference 1.
        &[0x11, 0x0A, 0x05, 0x04, 0x03, 0x04, 0x04],
        // Object reference 1: the first Point again (object 0 is the status object).
        &[0x11, 0x0A, 0x02],
        // A self-contained value between shared ones reads as it is.
        &[0x11, 0x06],
        &inline("plain"),
        // String reference 4 ("Point") through the shared context again, after the plain value.
        &[0x11, 0x06, 0x08],
    ]);
    check_both_conventions(
        &message,
        &[
            status("NetStream.Play.Start"),
            point(1, 2),
            point(3, 4),
            point(1, 2),
            Amf0Value::Avmplus(Amf3Value::String("plain".into())),
            Amf0Value::Avmplus(Amf3Value::String("Point".into())),
        ],
    );
}

#[test]
fn avmplus_values_nested_in_amf0_objects_share_the_message_context() {
    let message = bytes(&[
        &[0x03, 0x00, 0x01, b'a'],
        &first_status(),
        &[0x00, 0x01, b'b', 0x11, 0x06, 0x02], // string reference 1: the first value's code
        &[0x00, 0x00, 0x09],
    ]);
    check_both_conventions(
        &message,
        &[Amf0Value::object([
            ("a", status("NetStream.Play.Start")),
            (
                "b",
                Amf0Value::Avmplus(Amf3Value::String("NetStream.Play.Start".into())),
            ),
        ])],
    );
}

#[test]
fn references_out_of_range_in_both_conventions_stay_errors() {
    let message = bytes(&[&first_status(), &[0x11, 0x06, 0x40]]); // string reference 32
    assert!(matches!(
        decode_amf0(&message),
        Err(AmfError::BadReference {
            table: "string",
            index: 32,
            ..
        })
    ));
    // A reference in the first AVM+ value has nothing to fall back on.
    assert!(matches!(
        decode_amf0(&[0x11, 0x06, 0x00]),
        Err(AmfError::BadReference {
            table: "string",
            index: 0,
            len: 0
        })
    ));
}
