//! Hostile inputs: every one must come back as an error (or a bounded value) quickly, never a panic, a
//! hang or a large allocation.

use rtmp_amf::{decode_amf0, decode_amf3, encode_amf0_values, Amf0Value, AmfError};

#[test]
fn every_truncation_of_real_captures_is_an_error_not_a_panic() {
    for capture in [
        &include_bytes!("fixtures/ffmpeg51_connect.bin")[..],
        &include_bytes!("fixtures/ffmpeg51_onmetadata.bin")[..],
    ] {
        for end in 0..capture.len() {
            // A truncated buffer may still hold a shorter sequence of whole values; it must never panic.
            let _ = decode_amf0(&capture[..end]);
        }
    }
    // The connect command ends in an object, which must be terminated: every cut inside it is an error.
    // (ECMA arrays are accepted without their terminator at the end of input, as some writers omit it.)
    let capture = &include_bytes!("fixtures/ffmpeg51_connect.bin")[..];
    {
        let values = decode_amf0(capture).unwrap();
        let last_start = capture.len()
            - encode_amf0_values(&values[values.len() - 1..])
                .unwrap()
                .len();
        for end in last_start + 1..capture.len() {
            assert!(decode_amf0(&capture[..end]).is_err(), "truncated at {end}");
        }
    }
}

#[test]
fn huge_length_fields_fail_without_allocating() {
    let cases: &[&[u8]] = &[
        &[0x0C, 0xFF, 0xFF, 0xFF, 0xFF, b'a'],
        &[0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x05],
        &[0x0F, 0xFF, 0xFF, 0xFF, 0xFF],
        &[0x02, 0xFF, 0xFF, b'a'],
    ];
    for case in cases {
        assert!(decode_amf0(case).is_err(), "{case:02x?}");
    }
    let amf3_cases: &[&[u8]] = &[
        &[0x06, 0xFF, 0xFF, 0xFF, 0xFF],
        &[0x0C, 0xFF, 0xFF, 0xFF, 0xFF],
        &[0x09, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        &[0x0D, 0xFF, 0xFF, 0xFF, 0xFF, 0x00],
        &[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x01],
        &[0x11, 0xFF, 0xFF, 0xFF, 0xFF, 0x00],
        &[0x0A, 0xFF, 0xFF, 0xFF, 0xFB, 0x01],
    ];
    for case in amf3_cases {
        assert!(decode_amf3(case).is_err(), "{case:02x?}");
    }
}

#[test]
fn deep_nesting_is_capped() {
    let mut amf0 = [0x0A, 0, 0, 0, 1].repeat(100_000);
    amf0.push(0x05);
    assert!(matches!(
        decode_amf0(&amf0),
        Err(AmfError::DepthExceeded { max_depth: 64 })
    ));
    let mut amf3 = [0x09, 0x03, 0x01].repeat(100_000);
    amf3.push(0x01);
    assert!(matches!(
        decode_amf3(&amf3),
        Err(AmfError::DepthExceeded { .. })
    ));
    let mut objects = [0x03, 0x00, 0x01, b'a'].repeat(100_000);
    objects.push(0x05);
    assert!(matches!(
        decode_amf0(&objects),
        Err(AmfError::DepthExceeded { .. })
    ));
}

#[test]
fn self_referencing_amf3_object_is_a_cycle_error() {
    // An array (object 0) whose only item is a reference to object 0.
    assert!(matches!(
        decode_amf3(&[0x09, 0x03, 0x01, 0x09, 0x00]),
        Err(AmfError::CircularReference { index: 0 })
    ));
    // A dynamic object whose member refers to itself.
    let bytes = [0x0A, 0x0B, 0x01, 0x03, b's', 0x0A, 0x00, 0x01];
    assert!(matches!(
        decode_amf3(&bytes),
        Err(AmfError::CircularReference { index: 0 })
    ));
}

#[test]
fn reference_amplification_is_refused() {
    // Object 0: a byte array of 4000 bytes. Then an array of 20000 references to it: 20000 * 4000 bytes
    // (80 MB) if expanded naively from a ~44 KB input.
    let mut bytes = vec![0x0C];
    bytes.extend_from_slice(&[0xBE, 0x41]); // U29 (4000 << 1) | 1 = 8001 = 0x1F41 -> 0xBE 0x41
    bytes.extend(std::iter::repeat_n(0xAB, 4000));
    bytes.push(0x09);
    bytes.extend_from_slice(&[0x82, 0xB8, 0x41]); // U29 (20000 << 1) | 1 = 40001
    bytes.push(0x01);
    for _ in 0..20_000 {
        bytes.extend_from_slice(&[0x0C, 0x00]);
    }
    let started = std::time::Instant::now();
    assert!(matches!(
        decode_amf3(&bytes),
        Err(AmfError::TooLarge { .. })
    ));
    assert!(started.elapsed().as_secs() < 5);
}

#[test]
fn bad_references_and_unknown_markers() {
    assert!(matches!(
        decode_amf3(&[0x06, 0x02]),
        Err(AmfError::BadReference {
            table: "string",
            ..
        })
    ));
    assert!(matches!(
        decode_amf3(&[0x0A, 0x05]),
        Err(AmfError::BadReference { table: "trait", .. })
    ));
    assert!(matches!(
        decode_amf3(&[0x0C, 0x04]),
        Err(AmfError::BadReference {
            table: "object",
            ..
        })
    ));
    assert!(matches!(
        decode_amf3(&[0x12]),
        Err(AmfError::UnknownMarker { marker: 0x12, .. })
    ));
    assert!(matches!(
        decode_amf0(&[0x12]),
        Err(AmfError::UnknownMarker { marker: 0x12, .. })
    ));
    assert!(matches!(
        decode_amf0(&[0x09]),
        Err(AmfError::UnexpectedMarker { marker: 0x09, .. })
    ));
    assert!(matches!(
        decode_amf0(&[0x02, 0x00, 0x01, 0xFF]),
        Err(AmfError::InvalidUtf8 { .. })
    ));
}

#[test]
fn avmplus_switch_consumes_exactly_one_amf3_value() {
    let bytes = [0x11, 0x04, 0x05, 0x05];
    assert_eq!(
        decode_amf0(&bytes).unwrap(),
        vec![
            Amf0Value::Avmplus(rtmp_amf::Amf3Value::Integer(5)),
            Amf0Value::Null
        ]
    );
}

#[test]
fn avmplus_values_share_one_expansion_budget_per_message() {
    // One AVM+ value of 43 bytes whose references expand it to about 800 units: level k is an array of
    // level k - 1 and a reference to it; level 0 holds a byte array and a reference to that.
    const TOP: u8 = 7; // level k has object index TOP - k; the byte array comes last, TOP + 1
    let mut value = vec![0x11];
    for _ in 0..=TOP {
        value.extend_from_slice(&[0x09, 0x05, 0x01]); // array, 2 dense items, no associative part
    }
    value.extend_from_slice(&[0x0C, 0x01, 0x0C, (TOP + 1) << 1]);
    for k in 1..=TOP {
        value.extend_from_slice(&[0x09, (TOP - (k - 1)) << 1]);
    }
    assert_eq!(
        decode_amf0(&value).unwrap().len(),
        1,
        "one value is within the budget"
    );
    // Fifty of them: each alone is within a budget of the whole input, together they are not.
    let message = value.repeat(50);
    assert!(matches!(
        decode_amf0(&message),
        Err(AmfError::TooLarge { .. })
    ));
    let generous = rtmp_amf::DecodeOptions {
        max_expansion: 64,
        ..Default::default()
    };
    let values = rtmp_amf::Amf0Decoder::with_options(&message, generous)
        .decode_all()
        .unwrap();
    assert_eq!(values.len(), 50);
}
