//! AMF0 known-good byte vectors, one per marker, and real client captures.

use bytes::BytesMut;
use rtmp_amf::{decode_amf0, encode_amf0, encode_amf0_values, Amf0Value, Amf3Value};

fn encoded(value: &Amf0Value) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_amf0(value, &mut out).unwrap();
    out.to_vec()
}

fn check(value: Amf0Value, bytes: &[u8]) {
    assert_eq!(encoded(&value), bytes, "encoding of {value:?}");
    assert_eq!(
        decode_amf0(bytes).unwrap(),
        vec![value],
        "decoding of {bytes:02x?}"
    );
}

#[test]
fn every_marker_has_its_exact_bytes() {
    check(
        Amf0Value::Number(1.0),
        &[0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0],
    );
    check(Amf0Value::Boolean(true), &[0x01, 0x01]);
    check(Amf0Value::Boolean(false), &[0x01, 0x00]);
    check(
        Amf0Value::String("abc".into()),
        &[0x02, 0x00, 0x03, b'a', b'b', b'c'],
    );
    check(
        Amf0Value::object([("a", Amf0Value::Null)]),
        &[0x03, 0x00, 0x01, b'a', 0x05, 0x00, 0x00, 0x09],
    );
    check(Amf0Value::Null, &[0x05]);
    check(Amf0Value::Undefined, &[0x06]);
    check(Amf0Value::Reference(0x0102), &[0x07, 0x01, 0x02]);
    check(
        Amf0Value::ecma_array([("x", Amf0Value::Boolean(true))]),
        &[
            0x08, 0, 0, 0, 1, 0x00, 0x01, b'x', 0x01, 0x01, 0x00, 0x00, 0x09,
        ],
    );
    check(
        Amf0Value::StrictArray(vec![Amf0Value::Null, Amf0Value::Undefined]),
        &[0x0A, 0, 0, 0, 2, 0x05, 0x06],
    );
    check(
        Amf0Value::Date {
            millis: 1.0,
            time_zone: -60,
        },
        &[0x0B, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0, 0xFF, 0xC4],
    );
    check(
        Amf0Value::LongString("hi".into()),
        &[0x0C, 0, 0, 0, 2, b'h', b'i'],
    );
    check(Amf0Value::Unsupported, &[0x0D]);
    check(
        Amf0Value::XmlDocument("<a/>".into()),
        &[0x0F, 0, 0, 0, 4, b'<', b'a', b'/', b'>'],
    );
    check(
        Amf0Value::TypedObject {
            class_name: "C".into(),
            properties: vec![("k".into(), Amf0Value::Number(0.0))],
        },
        &[
            0x10, 0x00, 0x01, b'C', 0x00, 0x01, b'k', 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00,
            0x09,
        ],
    );
    check(
        Amf0Value::Avmplus(Amf3Value::Integer(5)),
        &[0x11, 0x04, 0x05],
    );
}

#[test]
fn long_strings_switch_marker_when_encoding() {
    let text = "x".repeat(70_000);
    let bytes = encoded(&Amf0Value::String(text.clone()));
    assert_eq!(&bytes[..5], &[0x0C, 0x00, 0x01, 0x11, 0x70]);
    assert_eq!(
        decode_amf0(&bytes).unwrap(),
        vec![Amf0Value::LongString(text)]
    );
}

#[test]
fn create_stream_result_matches_the_protocol_reference() {
    // PROTOCOL.md appendix B: `_result` for createStream, transaction 4, stream 1.
    let bytes =
        encode_amf0_values(&["_result".into(), 4.0.into(), Amf0Value::Null, 1.0.into()]).unwrap();
    let expected: &[u8] = &[
        0x02, 0x00, 0x07, 0x5F, 0x72, 0x65, 0x73, 0x75, 0x6C, 0x74, 0x00, 0x40, 0x10, 0, 0, 0, 0,
        0, 0, 0x05, 0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(&bytes[..], expected);
}

#[test]
fn ffmpeg_connect_capture_decodes_and_reencodes_identically() {
    let bytes = include_bytes!("fixtures/ffmpeg51_connect.bin");
    let values = decode_amf0(bytes).unwrap();
    assert_eq!(values.len(), 3);
    assert_eq!(values[0].as_str(), Some("connect"));
    assert_eq!(values[1].as_f64(), Some(1.0));
    let object = &values[2];
    assert_eq!(object.get("app").and_then(Amf0Value::as_str), Some("live"));
    assert_eq!(
        object.get("type").and_then(Amf0Value::as_str),
        Some("nonprivate")
    );
    assert!(object
        .get("flashVer")
        .and_then(Amf0Value::as_str)
        .unwrap()
        .starts_with("FMLE/3.0 (compatible; Lavf"));
    assert!(object
        .get("tcUrl")
        .and_then(Amf0Value::as_str)
        .unwrap()
        .starts_with("rtmp://127.0.0.1:"));
    assert_eq!(&encode_amf0_values(&values).unwrap()[..], &bytes[..]);
}

#[test]
fn librtmp_connect_capture_decodes_and_reencodes_identically() {
    let bytes = include_bytes!("fixtures/rtmpdump24_connect.bin");
    let values = decode_amf0(bytes).unwrap();
    let object = &values[2];
    assert_eq!(
        object.get("flashVer").and_then(Amf0Value::as_str),
        Some("LNX 10,0,32,18")
    );
    assert_eq!(object.get("fpad").and_then(Amf0Value::as_bool), Some(false));
    assert_eq!(
        object.get("capabilities").and_then(Amf0Value::as_f64),
        Some(15.0)
    );
    assert_eq!(
        object.get("audioCodecs").and_then(Amf0Value::as_f64),
        Some(3191.0)
    );
    assert_eq!(
        object.get("videoCodecs").and_then(Amf0Value::as_f64),
        Some(252.0)
    );
    assert_eq!(&encode_amf0_values(&values).unwrap()[..], &bytes[..]);
}

#[test]
fn obs_style_connect_round_trips() {
    // OBS (its librtmp fork) sends these keys, in this order, with objectEncoding 0 when publishing.
    let connect = vec![
        Amf0Value::from("connect"),
        Amf0Value::from(1.0),
        Amf0Value::object([
            ("app", "live".into()),
            ("type", "nonprivate".into()),
            ("flashVer", "FMLE/3.0 (compatible; FMSc/1.0)".into()),
            ("swfUrl", "rtmp://127.0.0.1/live".into()),
            ("tcUrl", "rtmp://127.0.0.1/live".into()),
        ]),
    ];
    let bytes = encode_amf0_values(&connect).unwrap();
    assert_eq!(decode_amf0(&bytes).unwrap(), connect);
}

#[test]
fn ffmpeg_onmetadata_capture_decodes_and_reencodes_identically() {
    let bytes = include_bytes!("fixtures/ffmpeg51_onmetadata.bin");
    let values = decode_amf0(bytes).unwrap();
    assert_eq!(values[0].as_str(), Some("onMetaData"));
    let meta = &values[1];
    assert!(matches!(meta, Amf0Value::EcmaArray(_)));
    assert_eq!(meta.get("width").and_then(Amf0Value::as_f64), Some(320.0));
    assert_eq!(meta.get("height").and_then(Amf0Value::as_f64), Some(240.0));
    assert_eq!(
        meta.get("videocodecid").and_then(Amf0Value::as_f64),
        Some(7.0)
    );
    assert_eq!(
        meta.get("audiocodecid").and_then(Amf0Value::as_f64),
        Some(10.0)
    );
    assert!(meta
        .get("encoder")
        .and_then(Amf0Value::as_str)
        .unwrap()
        .starts_with("Lavf"));
    assert_eq!(&encode_amf0_values(&values).unwrap()[..], &bytes[..]);
}

#[test]
fn ecma_array_without_terminator_at_end_of_input_is_accepted() {
    let bytes = [0x08, 0, 0, 0, 1, 0x00, 0x01, b'a', 0x05];
    assert_eq!(
        decode_amf0(&bytes).unwrap(),
        vec![Amf0Value::ecma_array([("a", Amf0Value::Null)])]
    );
}

#[test]
fn embedded_amf3_objects_read_like_amf0_after_into_amf0() {
    let amf3 = Amf0Value::Avmplus(Amf3Value::Object(rtmp_amf::Amf3Object::anonymous([(
        "app",
        Amf3Value::String("live".into()),
    )])));
    let plain = amf3.into_amf0();
    assert_eq!(plain.get("app").and_then(Amf0Value::as_str), Some("live"));
}
