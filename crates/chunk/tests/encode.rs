//! Encoder choices, shared (encode-once) messages, and round trips of arbitrary message sequences.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rtmp_chunk::{ChunkDecoder, ChunkEncoder, Message, RtmpMessage, SharedMessage};

fn media(timestamp: u32, len: usize) -> Message {
    Message {
        timestamp,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from(vec![0x17; len]),
    }
}

#[test]
fn encoder_uses_the_least_header() {
    let mut encoder = ChunkEncoder::new();
    let mut out = BytesMut::new();
    encoder.encode(6, &media(0, 10), &mut out);
    assert_eq!(out.len(), 12 + 10, "first message: fmt 0");
    out.clear();
    encoder.encode(6, &media(33, 10), &mut out);
    assert_eq!(
        (out[0] >> 6, out.len()),
        (2, 4 + 10),
        "same shape, new delta: fmt 2"
    );
    out.clear();
    encoder.encode(6, &media(66, 10), &mut out);
    assert_eq!((out[0] >> 6, out.len()), (3, 1 + 10), "same delta: fmt 3");
    out.clear();
    encoder.encode(6, &media(99, 20), &mut out);
    assert_eq!((out[0] >> 6, out.len()), (1, 8 + 20), "new length: fmt 1");
    out.clear();
    encoder.encode(6, &media(50, 20), &mut out);
    assert_eq!(out[0] >> 6, 0, "timestamp going backwards: fmt 0");
}

#[test]
fn chunk_sizes_from_1_to_the_maximum_round_trip() {
    for size in [1u32, 128, 4096, 65536, 0x7FFF_FFFF] {
        let mut encoder = ChunkEncoder::new();
        let mut out = BytesMut::new();
        encoder.encode(
            2,
            &RtmpMessage::SetChunkSize(size).into_message(0, 0),
            &mut out,
        );
        encoder.set_chunk_size(size).unwrap();
        let messages: Vec<Message> = (0..5)
            .map(|i| media(i * 40, 300 + i as usize * 1000))
            .collect();
        for message in &messages {
            encoder.encode(6, message, &mut out);
        }
        let mut decoder = ChunkDecoder::default();
        decoder.push(&out);
        let mut decoded = Vec::new();
        while let Some(m) = decoder.next_message().unwrap() {
            decoded.push(m);
        }
        assert_eq!(decoded[1..], messages[..], "chunk size {size}");
    }
}

#[test]
fn shared_message_is_byte_identical_to_a_fmt0_encode_and_zero_copy() {
    for timestamp in [1000u32, 0x0100_0000] {
        let message = media(timestamp, 10_000);
        let shared = SharedMessage::encode(6, &message, 4096);
        let mut reference = BytesMut::new();
        let mut fresh = ChunkEncoder::new();
        fresh.set_chunk_size(4096).unwrap();
        fresh.encode(6, &message, &mut reference);
        assert_eq!(&shared.wire()[..], &reference[..]);

        let mut encoder = ChunkEncoder::new();
        encoder.set_chunk_size(4096).unwrap();
        let mut out = Vec::new();
        encoder.encode_shared(&shared, 1, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].as_ptr(),
            shared.wire().as_ptr(),
            "same allocation, no copy"
        );

        // Another message stream id: patched header, payload still shared.
        let mut other = Vec::new();
        encoder.encode_shared(&shared, 3, &mut other);
        assert_eq!(other.len(), 2);
        assert_eq!(other[1].as_ptr(), shared.wire()[other[0].len()..].as_ptr());
        let mut decoder = ChunkDecoder::default();
        decoder.set_chunk_size(4096).unwrap();
        decoder.push(&other.concat());
        assert_eq!(
            decoder.next_message().unwrap(),
            Some(Message {
                stream_id: 3,
                ..message.clone()
            })
        );

        // After a shared message the encoder's header state stays consistent for the next message.
        let mut next = BytesMut::new();
        encoder.encode(
            6,
            &Message {
                stream_id: 3,
                ..media(timestamp + 40, 10)
            },
            &mut next,
        );
        decoder.push(&next);
        assert_eq!(
            decoder.next_message().unwrap().map(|m| m.timestamp),
            Some(timestamp + 40)
        );
    }
}

#[test]
fn shared_message_with_another_chunk_size_falls_back_to_encoding() {
    let message = media(5, 1000);
    let shared = SharedMessage::encode(6, &message, 4096);
    let mut encoder = ChunkEncoder::new();
    let mut out = Vec::new();
    encoder.encode_shared(&shared, 1, &mut out);
    let mut decoder = ChunkDecoder::default();
    decoder.push(&out.concat());
    assert_eq!(decoder.next_message().unwrap(), Some(message));
}

#[test]
fn shared_message_keeps_one_copy_and_rebuilds_the_original() {
    // Single chunk, several chunks, exact multiples, csid forms and extended timestamps.
    for (csid, timestamp) in [(6, 40), (70, 1_000), (400, 0x00FF_FFFF), (6, 0x1234_5678)] {
        for len in [0, 1, 127, 128, 129, 4096, 4097, 8192, 10_000] {
            for chunk_size in [128, 4096] {
                let message = media(timestamp, len);
                let shared = SharedMessage::encode(csid, &message, chunk_size);
                assert_eq!(
                    shared.message(),
                    message,
                    "csid {csid} ts {timestamp} len {len}"
                );
                assert_eq!(shared.payload_len(), len);
                assert_eq!(shared.timestamp(), timestamp);
            }
        }
    }
}

fn arbitrary_message() -> impl Strategy<Value = (u32, Message)> {
    (
        prop_oneof![Just(3u32), Just(4), Just(6), Just(70), Just(400)],
        prop_oneof![0u32..100_000, 0xFF_FF00u32..0x100_0100, any::<u32>()],
        prop_oneof![Just(8u8), Just(9), Just(18), Just(20)],
        0u32..3,
        prop::collection::vec(any::<u8>(), 0..700),
    )
        .prop_map(|(csid, timestamp, type_id, stream_id, payload)| {
            (
                csid,
                Message {
                    timestamp,
                    type_id,
                    stream_id,
                    payload: Bytes::from(payload),
                },
            )
        })
}

proptest! {
    #[test]
    fn any_message_sequence_round_trips_with_any_chunk_size(
        chunk_size in prop_oneof![1u32..300, Just(4096u32), Just(0x7FFF_FFFF)],
        messages in prop::collection::vec(arbitrary_message(), 1..12),
        split in 1usize..97,
    ) {
        let mut encoder = ChunkEncoder::new();
        let mut out = BytesMut::new();
        encoder.encode(2, &RtmpMessage::SetChunkSize(chunk_size).into_message(0, 0), &mut out);
        encoder.set_chunk_size(chunk_size).unwrap();
        for (csid, message) in &messages {
            encoder.encode(*csid, message, &mut out);
        }
        let mut decoder = ChunkDecoder::default();
        let mut decoded = Vec::new();
        for piece in out.chunks(split) {
            decoder.push(piece);
            while let Some(m) = decoder.next_message().unwrap() {
                decoded.push(m);
            }
        }
        let expected: Vec<Message> = messages.into_iter().map(|(_, m)| m).collect();
        prop_assert_eq!(&decoded[1..], &expected[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut decoder = ChunkDecoder::default();
        decoder.push(&bytes);
        while let Ok(Some(message)) = decoder.next_message() {
            let _ = RtmpMessage::decode(&message);
        }
    }
}
