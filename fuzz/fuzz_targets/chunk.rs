//! Chunk decoder on arbitrary bytes split at arbitrary points, with small limits: never panics, never
//! grows past its limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmp_chunk::{aggregate::SubMessages, ChunkDecoder, DecoderConfig, RtmpMessage};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let config = DecoderConfig { max_message_len: 1 << 16, max_chunk_streams: 8, max_buffered: 1 << 18 };
    let mut decoder = ChunkDecoder::new(config);
    for piece in rest.chunks(usize::from(split).max(1)) {
        decoder.push(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    if let Ok(RtmpMessage::Aggregate(_)) = RtmpMessage::decode(&message) {
                        SubMessages::new(&message).for_each(drop);
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(decoder.buffered() <= config.max_buffered + piece.len());
    }
});
