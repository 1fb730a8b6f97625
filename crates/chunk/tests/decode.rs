//! Decoder behaviour: real captures, every header format, the timestamp traps, limits, acknowledgements.

use bytes::{Bytes, BytesMut};
use rtmp_chunk::{
    type_id, ChunkDecoder, ChunkEncoder, ChunkError, DecoderConfig, Message, RtmpMessage,
    UserControlEvent,
};

fn decode_all(decoder: &mut ChunkDecoder) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some(message) = decoder.next_message().unwrap() {
        out.push(message);
    }
    out
}

fn decode_bytes(bytes: &[u8]) -> Vec<Message> {
    let mut decoder = ChunkDecoder::default();
    decoder.push(bytes);
    decode_all(&mut decoder)
}

fn decode_byte_by_byte(bytes: &[u8]) -> Vec<Message> {
    let mut decoder = ChunkDecoder::default();
    let mut out = Vec::new();
    for byte in bytes {
        decoder.push(std::slice::from_ref(byte));
        out.extend(decode_all(&mut decoder));
    }
    out
}

#[test]
fn ffmpeg_connect_capture_decodes_to_its_command() {
    let capture = include_bytes!("fixtures/ffmpeg51_publish_connect.bin");
    let messages = decode_bytes(capture);
    assert_eq!(messages.len(), 1);
    let connect = &messages[0];
    assert_eq!(
        (connect.type_id, connect.stream_id, connect.timestamp),
        (type_id::COMMAND_AMF0, 0, 0)
    );
    assert_eq!(
        &connect.payload[..],
        &include_bytes!("../../amf/tests/fixtures/ffmpeg51_connect.bin")[..]
    );
    let values = rtmp_amf::decode_amf0(&connect.payload).unwrap();
    assert_eq!(values[0].as_str(), Some("connect"));
    assert_eq!(decode_byte_by_byte(capture), messages);
}

#[test]
fn librtmp_connect_capture_decodes_to_its_command() {
    let capture = include_bytes!("fixtures/rtmpdump24_play_connect.bin");
    let messages = decode_bytes(capture);
    assert_eq!(messages[0].type_id, type_id::COMMAND_AMF0);
    assert_eq!(
        &messages[0].payload[..],
        &include_bytes!("../../amf/tests/fixtures/rtmpdump24_connect.bin")[..]
    );
    assert_eq!(decode_byte_by_byte(capture), messages);
}

#[test]
fn protocol_reference_worked_examples() {
    let set_chunk_size = [0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0, 0, 0, 0x10, 0];
    let stream_begin = [0x02, 0, 0, 0, 0, 0, 6, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let window = [
        0x02, 0, 0, 0, 0, 0, 4, 0x05, 0, 0, 0, 0, 0x00, 0x26, 0x25, 0xA0,
    ];
    let bandwidth = [
        0x02, 0, 0, 0, 0, 0, 5, 0x06, 0, 0, 0, 0, 0x00, 0x26, 0x25, 0xA0, 0x02,
    ];
    let all = [&set_chunk_size[..], &stream_begin, &window, &bandwidth].concat();
    let typed: Vec<RtmpMessage> = decode_bytes(&all)
        .iter()
        .map(|m| RtmpMessage::decode(m).unwrap())
        .collect();
    assert_eq!(
        typed,
        vec![
            RtmpMessage::SetChunkSize(4096),
            RtmpMessage::UserControl(UserControlEvent::StreamBegin(1)),
            RtmpMessage::WindowAckSize(2_500_000),
            RtmpMessage::SetPeerBandwidth {
                window_size: 2_500_000,
                limit_type: rtmp_chunk::LimitType::Dynamic
            },
        ]
    );
    // Our encoder writes exactly these bytes.
    let mut encoder = ChunkEncoder::new();
    let mut out = BytesMut::new();
    encoder.encode(
        2,
        &RtmpMessage::SetChunkSize(4096).into_message(0, 0),
        &mut out,
    );
    assert_eq!(&out[..], &set_chunk_size[..]);
}

#[test]
fn fmt3_new_message_after_fmt0_adds_the_previous_timestamp_field() {
    // fmt0 ts=1000, fmt3, fmt2 delta 40, fmt3 -> 1000, 2000, 2040, 2080 (PROTOCOL.md 5.2, verified on clients).
    let mut bytes = vec![0x04, 0x00, 0x03, 0xE8, 0, 0, 1, 8, 1, 0, 0, 0, 0xAA];
    bytes.extend_from_slice(&[0xC4, 0xAB]);
    bytes.extend_from_slice(&[0x84, 0, 0, 40, 0xAC]);
    bytes.extend_from_slice(&[0xC4, 0xAD]);
    let times: Vec<u32> = decode_bytes(&bytes).iter().map(|m| m.timestamp).collect();
    assert_eq!(times, vec![1000, 2000, 2040, 2080]);
}

#[test]
fn basic_header_forms_for_every_csid_boundary() {
    for csid in [2u32, 3, 63, 64, 65, 319, 320, 400, 65599] {
        let message = Message {
            timestamp: 5,
            type_id: 8,
            stream_id: 1,
            payload: Bytes::from_static(&[1, 2, 3]),
        };
        let mut out = BytesMut::new();
        ChunkEncoder::new().encode(csid, &message, &mut out);
        let expected_basic_len = match csid {
            2..=63 => 1,
            64..=319 => 2,
            _ => 3,
        };
        assert_eq!(out.len(), expected_basic_len + 11 + 3, "csid {csid}");
        assert_eq!(decode_bytes(&out), vec![message], "csid {csid}");
    }
    // PROTOCOL.md appendix B: csid 400 fmt 3 basic header is C1 50 01.
    let mut out = BytesMut::new();
    let mut encoder = ChunkEncoder::new();
    let message = Message {
        timestamp: 0,
        type_id: 8,
        stream_id: 1,
        payload: Bytes::from(vec![0u8; 200]),
    };
    encoder.encode(400, &message, &mut out);
    assert_eq!(&out[3 + 11 + 128..3 + 11 + 128 + 3], &[0xC1, 0x50, 0x01]);
}

#[test]
fn extended_timestamps_around_the_boundary_repeat_on_every_chunk() {
    for timestamp in [0xFF_FFFE_u32, 0xFF_FFFF, 0x100_0000, 0xFFFF_FFFF] {
        let message = Message {
            timestamp,
            type_id: 9,
            stream_id: 1,
            payload: Bytes::from(vec![7u8; 300]),
        };
        let mut out = BytesMut::new();
        ChunkEncoder::new().encode(6, &message, &mut out);
        let extended = timestamp >= 0xFF_FFFF;
        // 3 chunks of 128: first header 12 (+4), continuation headers 1 (+4) each.
        let per_extended = if extended { 4 } else { 0 };
        assert_eq!(
            out.len(),
            12 + per_extended + 2 * (1 + per_extended) + 300,
            "ts {timestamp:#x}"
        );
        if extended {
            assert_eq!(&out[1..4], &[0xFF, 0xFF, 0xFF]);
            assert_eq!(
                &out[12 + 4 + 128 + 1..12 + 4 + 128 + 5],
                &timestamp.to_be_bytes()
            );
        }
        assert_eq!(decode_byte_by_byte(&out), vec![message]);
    }
}

#[test]
fn interleaved_chunk_streams_reassemble_separately() {
    let audio = Message {
        timestamp: 10,
        type_id: 8,
        stream_id: 1,
        payload: Bytes::from(vec![0xA; 200]),
    };
    let video = Message {
        timestamp: 11,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from(vec![0xB; 200]),
    };
    let (mut a, mut v) = (BytesMut::new(), BytesMut::new());
    ChunkEncoder::new().encode(4, &audio, &mut a);
    ChunkEncoder::new().encode(6, &video, &mut v);
    // a = 12 + 128 | 1 + 72 ; v likewise. Interleave first chunks, then second chunks.
    let interleaved = [&a[..140], &v[..140], &v[140..], &a[140..]].concat();
    assert_eq!(
        decode_bytes(&interleaved),
        vec![video.clone(), audio.clone()]
    );
    assert_eq!(decode_byte_by_byte(&interleaved), vec![video, audio]);
}

#[test]
fn abort_drops_the_partial_message() {
    let big = Message {
        timestamp: 0,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from(vec![1u8; 200]),
    };
    let mut out = BytesMut::new();
    let mut encoder = ChunkEncoder::new();
    encoder.encode(6, &big, &mut out);
    let first_chunk = out.split_to(12 + 128);
    let mut abort = BytesMut::new();
    encoder.encode(
        2,
        &RtmpMessage::Abort { chunk_stream_id: 6 }.into_message(0, 0),
        &mut abort,
    );
    let small = Message {
        timestamp: 40,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from_static(&[9]),
    };
    let mut next = BytesMut::new();
    ChunkEncoder::new().encode(6, &small, &mut next);
    let mut decoder = ChunkDecoder::default();
    decoder.push(&[&first_chunk[..], &abort[..], &next[..]].concat());
    let messages = decode_all(&mut decoder);
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1], small);
    assert_eq!(decoder.buffered(), 0);
}

#[test]
fn limits_are_typed_errors() {
    let config = DecoderConfig {
        max_message_len: 1000,
        max_chunk_streams: 2,
        max_buffered: 4096,
    };
    let mut decoder = ChunkDecoder::new(config);
    decoder.push(&[0x04, 0, 0, 0, 0x00, 0x10, 0x00, 8, 1, 0, 0, 0]);
    assert_eq!(
        decoder.next_message(),
        Err(ChunkError::MessageTooLarge {
            length: 4096,
            limit: 1000
        })
    );

    let mut decoder = ChunkDecoder::new(config);
    for csid in 3..=5u8 {
        decoder.push(&[csid, 0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 0xFF]);
    }
    assert!(decoder.next_message().unwrap().is_some());
    assert!(decoder.next_message().unwrap().is_some());
    assert_eq!(
        decoder.next_message(),
        Err(ChunkError::TooManyChunkStreams { limit: 2 })
    );

    let mut decoder = ChunkDecoder::new(config);
    decoder.push(&vec![0u8; 5000]);
    assert!(matches!(
        decoder.next_message(),
        Err(ChunkError::BufferLimitExceeded { .. })
    ));

    let mut decoder = ChunkDecoder::default();
    decoder.push(&[0x44, 0, 0, 0, 0, 0, 1, 8, 0xFF]);
    assert_eq!(
        decoder.next_message(),
        Err(ChunkError::MissingPreviousHeader { csid: 4, fmt: 1 })
    );
}

#[test]
fn huge_chunk_size_is_accepted_without_allocating_it() {
    let mut encoder = ChunkEncoder::new();
    let mut out = BytesMut::new();
    encoder.encode(
        2,
        &RtmpMessage::SetChunkSize(0x7FFF_FFFF).into_message(0, 0),
        &mut out,
    );
    encoder.set_chunk_size(0x7FFF_FFFF).unwrap();
    let message = Message {
        timestamp: 1,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from(vec![3u8; 100_000]),
    };
    encoder.encode(6, &message, &mut out);
    let mut decoder = ChunkDecoder::default();
    decoder.push(&out[..20]);
    assert!(decoder.next_message().unwrap().is_some());
    assert_eq!(decoder.chunk_size(), 0x7FFF_FFFF);
    decoder.push(&out[20..]);
    assert_eq!(decoder.next_message().unwrap(), Some(message));
}

#[test]
fn acknowledgement_becomes_due_after_each_window() {
    let mut decoder = ChunkDecoder::default();
    assert_eq!(decoder.ack_due(), None);
    decoder.set_ack_window(100);
    decoder.push(&[0u8; 99]);
    assert_eq!(decoder.ack_due(), None);
    decoder.push(&[0u8; 1]);
    assert_eq!(decoder.ack_due(), Some(100));
    assert_eq!(decoder.ack_due(), None);
    decoder.push(&[0u8; 150]);
    assert_eq!(decoder.ack_due(), Some(250));
}

#[test]
fn aggregate_sub_messages_are_rebased_on_the_aggregate_timestamp() {
    let mut body = Vec::new();
    for (type_id, ts, payload) in [
        (9u8, 0x0100_0010u32, &[1u8, 2][..]),
        (8, 0x0100_0030, &[3][..]),
    ] {
        body.push(type_id);
        body.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        body.extend_from_slice(&(ts & 0xFF_FFFF).to_be_bytes()[1..]);
        body.push((ts >> 24) as u8);
        body.extend_from_slice(&[0, 0, 0]);
        body.extend_from_slice(payload);
        body.extend_from_slice(&(11 + payload.len() as u32).to_be_bytes());
    }
    let aggregate = Message {
        timestamp: 5000,
        type_id: 22,
        stream_id: 7,
        payload: Bytes::from(body.clone()),
    };
    let subs: Vec<Message> = rtmp_chunk::aggregate::SubMessages::new(&aggregate)
        .map(Result::unwrap)
        .collect();
    assert_eq!(subs.len(), 2);
    assert_eq!(
        (
            subs[0].timestamp,
            subs[0].type_id,
            subs[0].stream_id,
            &subs[0].payload[..]
        ),
        (5000, 9, 7, &[1u8, 2][..])
    );
    assert_eq!(
        (subs[1].timestamp, subs[1].type_id, &subs[1].payload[..]),
        (5032, 8, &[3u8][..])
    );
    let truncated = Message {
        payload: Bytes::from(body[..12].to_vec()),
        ..aggregate
    };
    let results: Vec<_> = rtmp_chunk::aggregate::SubMessages::new(&truncated).collect();
    assert_eq!(results.len(), 1);
    assert!(results[0].is_err());
}
