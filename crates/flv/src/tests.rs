//! Round trips, truncated input, lying sizes and bad back pointers.

use bytes::Bytes;
use rtmp_chunk::Message;

use super::*;

fn tags() -> Vec<Tag> {
    vec![
        Tag {
            tag_type: TAG_SCRIPT,
            timestamp: 0,
            payload: Bytes::from_static(b"\x02\x00\x0aonMetaData"),
        },
        Tag {
            tag_type: TAG_VIDEO,
            timestamp: 40,
            payload: Bytes::from_static(&[0x17, 1, 2]),
        },
        Tag {
            tag_type: TAG_AUDIO,
            timestamp: 0x0123_4567,
            payload: Bytes::from_static(&[0xAF, 1]),
        },
    ]
}

fn file(tags: &[Tag]) -> Vec<u8> {
    let mut writer = TagWriter::new();
    let mut out = writer.file_header(FlvHeader::default()).to_vec();
    for tag in tags {
        out.extend_from_slice(&writer.tag(tag).unwrap());
    }
    assert_eq!(writer.position(), out.len() as u64);
    out
}

fn read_all(bytes: &[u8], step: usize) -> (Vec<Tag>, Result<(), FlvError>) {
    let mut reader = TagReader::default();
    let mut read = Vec::new();
    for chunk in bytes.chunks(step.max(1)) {
        reader.push(chunk);
        loop {
            match reader.next_tag() {
                Ok(Some(tag)) => read.push(tag),
                Ok(None) => break,
                Err(error) => return (read, Err(error)),
            }
        }
    }
    (read, reader.finish())
}

#[test]
fn round_trips_in_any_slicing() {
    let bytes = file(&tags());
    for step in [1, 2, 3, 7, 13, 1000] {
        let (read, end) = read_all(&bytes, step);
        assert_eq!(read, tags(), "step {step}");
        assert_eq!(end, Ok(()));
    }
}

#[test]
fn truncation_yields_whole_tags_then_reports_what_is_missing() {
    let bytes = file(&tags());
    // Only the final back pointer missing: every tag, and a clean end.
    let (read, end) = read_all(&bytes[..bytes.len() - 4], 5);
    assert_eq!(read, tags());
    assert_eq!(end, Ok(()));
    // Cut inside the last payload.
    let (read, end) = read_all(&bytes[..bytes.len() - 5], 5);
    assert_eq!(read, tags()[..2]);
    assert_eq!(end, Err(FlvError::Truncated { missing: 1 }));
    // Cut inside the header.
    assert_eq!(
        read_all(&bytes[..5], 1).1,
        Err(FlvError::Truncated { missing: 4 })
    );
}

#[test]
fn lying_sizes_and_bad_headers_are_typed_errors() {
    let mut bytes = file(&tags());
    // The first tag claims 16 MiB - 1: refused at once, nothing reserved for it.
    bytes[14..17].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    let (_, end) = read_all(&bytes, 64);
    assert!(matches!(
        end,
        Err(FlvError::TagTooLarge {
            size: 0xFF_FFFF,
            ..
        })
    ));

    let mut bytes = file(&tags());
    bytes[12] = 1; // PreviousTagSize0 must be 0
    assert_eq!(
        read_all(&bytes, 64).1,
        Err(FlvError::PreviousTagSizeMismatch {
            expected: 0,
            found: 1
        })
    );
    let mut bytes = file(&tags());
    let first_back_pointer = 13 + 11 + 13;
    bytes[first_back_pointer + 3] ^= 1;
    let (read, end) = read_all(&bytes, 64);
    assert_eq!(read.len(), 1);
    assert!(matches!(end, Err(FlvError::PreviousTagSizeMismatch { .. })));

    assert_eq!(read_all(b"NOT A FLV", 9).1, Err(FlvError::NotFlv));
    assert_eq!(
        read_all(b"FL", 9).1,
        Err(FlvError::Truncated { missing: 7 })
    );
    assert_eq!(
        read_all(b"FLV\x02\x05\0\0\0\x09", 9).1,
        Err(FlvError::UnsupportedVersion(2))
    );
    assert_eq!(
        read_all(b"FLV\x01\x05\0\0\0\x03", 9).1,
        Err(FlvError::BadDataOffset(3))
    );
    assert_eq!(
        read_all(b"FLV\x01\x05\xFF\0\0\0", 9).1,
        Err(FlvError::BadDataOffset(0xFF00_0000))
    );
}

#[test]
fn lenient_reader_skips_back_pointer_checks() {
    let mut bytes = file(&tags());
    bytes[12] = 9;
    let mut reader = TagReader::new(ReaderConfig {
        check_previous_tag_size: false,
        ..ReaderConfig::default()
    });
    reader.push(&bytes);
    let mut count = 0;
    while reader.next_tag().unwrap().is_some() {
        count += 1;
    }
    assert_eq!(count, 3);
}

#[test]
fn oversized_payload_is_refused_by_the_writer() {
    let tag = Tag {
        tag_type: TAG_VIDEO,
        timestamp: 0,
        payload: Bytes::from(vec![0; 1 << 24]),
    };
    assert_eq!(encode_tag(&tag), Err(FlvError::PayloadTooLarge(1 << 24)));
}

#[test]
fn messages_convert_to_tags_and_back() {
    let message = Message {
        timestamp: 7,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from_static(&[0x27, 1]),
    };
    let tag = Tag::from_message(&message).unwrap();
    assert!(!tag.is_keyframe());
    assert_eq!(tag.into_message(1), message);
    let control = Message {
        type_id: 20,
        ..message
    };
    assert_eq!(Tag::from_message(&control), None);
}

#[test]
fn sequence_headers_are_recognised() {
    let tag = |tag_type, payload: &'static [u8]| Tag {
        tag_type,
        timestamp: 0,
        payload: Bytes::from_static(payload),
    };
    assert!(tag(TAG_VIDEO, &[0x17, 0, 0]).is_sequence_header());
    assert!(!tag(TAG_VIDEO, &[0x17, 1, 0]).is_sequence_header());
    assert!(tag(TAG_AUDIO, &[0xAF, 0]).is_sequence_header());
    assert!(tag(TAG_VIDEO, &[0x90, b'h', b'v', b'c', b'1']).is_sequence_header());
    assert!(tag(TAG_VIDEO, &[0x90, b'h', b'v', b'c', b'1']).is_keyframe());
}

#[test]
fn metadata_carries_duration_and_keyframe_index_and_pads_to_size() {
    let source = rtmp_amf::encode_amf0_values(&[
        rtmp_amf::Amf0Value::String("@setDataFrame".into()),
        rtmp_amf::Amf0Value::String("onMetaData".into()),
        rtmp_amf::Amf0Value::ecma_array([
            ("width", rtmp_amf::Amf0Value::Number(640.0)),
            ("duration", rtmp_amf::Amf0Value::Number(0.0)),
        ]),
    ])
    .unwrap();
    let mut builder = MetadataBuilder::from_data_message(&source);
    let reserved = builder.payload_with_room(18 * 4 + 32).unwrap();
    builder.duration(6.5).keyframe(0.0, 13).keyframe(2.0, 9000);
    let payload = builder.payload_of_len(reserved.len()).unwrap().unwrap();
    assert_eq!(payload.len(), reserved.len());
    let values = rtmp_amf::decode_amf0(&payload).unwrap();
    assert_eq!(values[0].as_str(), Some("onMetaData"));
    assert_eq!(
        values[1].get("duration").and_then(|v| v.as_f64()),
        Some(6.5)
    );
    assert_eq!(values[1].get("width").and_then(|v| v.as_f64()), Some(640.0));
    let keyframes = values[1].get("keyframes").unwrap();
    assert_eq!(
        keyframes.get("filepositions"),
        Some(&rtmp_amf::Amf0Value::StrictArray(vec![
            rtmp_amf::Amf0Value::Number(13.0),
            rtmp_amf::Amf0Value::Number(9000.0)
        ]))
    );
    // Too many keyframes for the room left: no in-place rewrite.
    for i in 0..100 {
        builder.keyframe(f64::from(i), 1);
    }
    assert_eq!(builder.payload_of_len(reserved.len()).unwrap(), None);
}
