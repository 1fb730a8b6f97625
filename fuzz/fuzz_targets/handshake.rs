//! Server handshake on arbitrary bytes, split at arbitrary points: never panics, never consumes more than
//! C0+C1+C2.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmp_handshake::ServerHandshake;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let mut server = ServerHandshake::new(None, Box::new(|buf: &mut [u8]| buf.fill(7)));
    let mut consumed = 0;
    for piece in rest.chunks(usize::from(split).max(1)) {
        match server.feed(piece) {
            Ok(n) => consumed += n,
            Err(_) => return,
        }
        let _ = server.take_output();
        if server.is_done() {
            break;
        }
    }
    assert!(consumed <= 1 + 2 * 1536);
});
