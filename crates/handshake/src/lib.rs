//! The RTMP handshake (C0–C2 / S0–S2) as sans-IO state machines, server and client side.
//!
//! * Version 3, simple: S2 echoes C1; used when C1 carries no valid digest (librtmp's default, OBS).
//! * Version 3, digest ("complex", FP9): the client's HMAC-SHA256 digest is validated in either scheme and
//!   answered with an S1 digest and an S2 signature keyed from the client's digest, as FFmpeg checks them.
//! * Versions 6, 8 and 9 (RTMPE) go through the [`KeyExchangeFactory`] hook: the Diffie-Hellman exchange,
//!   the RC4 keystreams and the type 8/9 signature transforms live in `rtmp-rtmpe`, not here.
//!
//! Feed the peer's bytes with `feed`, send what `take_output` returns, and when `is_done` is true take the
//! [`HandshakeOutcome`]. Bytes after C2 (or after S0S1S2 on the client) are not consumed: they belong to the
//! chunk stream (and are already encrypted in RTMPE). Randomness and the clock are inputs, so tests are
//! deterministic. Wire facts: PROTOCOL.md §1 and §2.
//!
//! # Example
//!
//! A client and a server wired in memory (a real endpoint passes its RNG instead of `fill`):
//!
//! ```
//! use rtmp_handshake::{ClientConfig, ClientHandshake, HandshakeMode, ServerHandshake};
//!
//! let fill = || -> rtmp_handshake::RandomFill { Box::new(|buf: &mut [u8]| buf.fill(0x5A)) };
//! let mut client = ClientHandshake::new(ClientConfig::Digest, fill());
//! let mut server = ServerHandshake::new(None, fill());
//!
//! let c0c1 = client.take_output().unwrap_or_default();
//! server.feed(&c0c1)?;
//! let s0s1s2 = server.take_output().unwrap_or_default();
//! let consumed = client.feed(&s0s1s2)?; // bytes past S2 would belong to the chunk stream
//! assert_eq!(consumed, s0s1s2.len());
//! server.feed(&client.take_output().unwrap_or_default())?;
//!
//! assert!(client.is_done() && server.is_done());
//! assert!(matches!(server.into_outcome().mode, HandshakeMode::Digest { .. }));
//! # Ok::<(), rtmp_handshake::HandshakeError>(())
//! ```
//!
//! `examples/by_hand.rs` walks through each step with the sizes on the wire.
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod client;
mod digest;
mod error;
mod exchange;
mod server;

pub use client::{ClientConfig, ClientHandshake};
pub use digest::{dh_offset, digest_offset, Scheme};
pub use error::HandshakeError;
pub use exchange::{CipherPair, ClientKeyExchange, KeyExchangeFactory, ServerKeys, StreamCipher};
pub use server::ServerHandshake;

/// Size of C1, S1, C2 and S2.
pub const HANDSHAKE_SIZE: usize = 1536;
/// Size of a Diffie-Hellman public key in C1/S1 (RTMPE).
pub const PUBLIC_KEY_SIZE: usize = 128;

/// A source of random bytes (the caller's RNG).
pub type RandomFill = Box<dyn FnMut(&mut [u8]) + Send>;

/// What the handshake agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeMode {
    /// Version 3 without digests.
    Simple,
    /// Version 3 with HMAC digests; `scheme` is the client's.
    Digest {
        /// Where the client placed its digest.
        scheme: Scheme,
    },
    /// RTMPE (version 6, 8 or 9) with the client's digest scheme.
    Encrypted {
        /// The C0 version byte: 6, 8 or 9.
        version: u8,
        /// Where the client placed its digest.
        scheme: Scheme,
    },
}

impl HandshakeMode {
    /// True for RTMPE.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, HandshakeMode::Encrypted { .. })
    }
}

/// The result of a completed handshake.
#[derive(Debug)]
pub struct HandshakeOutcome {
    /// What was agreed.
    pub mode: HandshakeMode,
    /// RTMPE only: the keystreams for everything after the handshake.
    pub cipher: Option<CipherPair>,
    /// Whether the peer's C2 (server side) carried a valid signature or an echo; logged, never required.
    pub peer_c2_valid: bool,
}

/// The README examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
