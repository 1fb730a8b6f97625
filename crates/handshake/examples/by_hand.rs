//! A handshake driven by hand: a client and a server state machine wired together in memory, the bytes
//! of each step printed as they would go on the wire.
//!
//! ```text
//! cargo run -p rtmp-handshake --example by_hand
//! ```

use rtmp_handshake::{
    ClientConfig, ClientHandshake, HandshakeError, RandomFill, ServerHandshake, HANDSHAKE_SIZE,
};

/// A deterministic byte source; a real endpoint passes its RNG (e.g. `rand::fill`).
fn not_random(seed: u32) -> RandomFill {
    let mut state = seed;
    Box::new(move |buf: &mut [u8]| {
        for byte in buf {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *byte = (state >> 16) as u8;
        }
    })
}

fn main() -> Result<(), HandshakeError> {
    for (name, config) in [
        ("digest (FFmpeg style)", ClientConfig::Digest),
        ("simple (librtmp style)", ClientConfig::Simple),
    ] {
        println!("{name}:");
        let mut client = ClientHandshake::new(config, not_random(1));
        // No key exchange: this server refuses RTMPE (versions 6, 8, 9).
        let mut server = ServerHandshake::new(None, not_random(2));

        // C0+C1 are ready from the start.
        let c0c1 = client.take_output().unwrap_or_default();
        println!("  client -> server: C0+C1, {} bytes", c0c1.len());
        assert_eq!(c0c1.len(), 1 + HANDSHAKE_SIZE);

        // The server consumes what it needs and answers S0+S1+S2.
        let consumed = server.feed(&c0c1)?;
        assert_eq!(consumed, c0c1.len());
        let s0s1s2 = server.take_output().unwrap_or_default();
        println!("  server -> client: S0+S1+S2, {} bytes", s0s1s2.len());

        // The client checks S1/S2 and answers C2. Anything past S2 would be chunk stream bytes: `feed`
        // returns how many bytes belonged to the handshake.
        let mut wire = s0s1s2.to_vec();
        wire.extend_from_slice(b"first chunk bytes");
        let consumed = client.feed(&wire)?;
        println!(
            "  client consumed {consumed} bytes, left {:?} for the chunk stream",
            String::from_utf8_lossy(&wire[consumed..])
        );
        let c2 = client.take_output().unwrap_or_default();
        println!("  client -> server: C2, {} bytes", c2.len());
        server.feed(&c2)?;

        assert!(client.is_done() && server.is_done());
        let client = client.into_outcome();
        let server = server.into_outcome();
        println!(
            "  done: client sees {:?}; server sees {:?}, C2 {}",
            client.mode,
            server.mode,
            if server.peer_c2_valid {
                "valid"
            } else {
                "not an echo or signature"
            }
        );
    }
    Ok(())
}
