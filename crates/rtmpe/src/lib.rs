//! RTMPE, Adobe's "encrypted RTMP": the Diffie-Hellman key exchange, the RC4 keystreams and the type 8/9
//! signature transforms, as a sans-IO implementation of `rtmp_handshake::KeyExchangeFactory`.
//!
//! RTMPE gives **no real security**: the keys are public, the exchange is unauthenticated and RC4 is
//! broken. It exists because real players and publishers use it (see docs/security.md).
//!
//! * [`dh`]: the 1024-bit MODP group (RFC 2409 group 2, g = 2), key pairs, public key validation.
//! * [`Rtmpe`]: the factory the server and client plug into the handshake. The server re-draws its
//!   private key until the shared secret has no leading zero byte, because clients disagree on how such
//!   a secret is encoded (PROTOCOL.md §2.2).
//! * RC4 keys: `K_cs = HMAC-SHA256(secret, server public key)[..16]`, `K_sc = HMAC-SHA256(secret, client
//!   public key)[..16]`, each keystream advanced past 1536 bytes before use (PROTOCOL.md §2.4, §2.5).
//! * [`transform_signature`]: the type 8 (XTEA) and type 9 (Blowfish) transforms of handshake signatures.
//!
//! # Example
//!
//! An RTMPE (version 9) handshake between a client and a server, then a message encrypted by one side
//! and decrypted by the other:
//!
//! ```
//! use rtmp_handshake::{ClientConfig, ClientHandshake, HandshakeMode, ServerHandshake};
//! use rtmp_rtmpe::Rtmpe;
//!
//! // A real endpoint passes its RNG; a fixed generator keeps the example deterministic.
//! let seeded = |mut state: u32| -> rtmp_handshake::RandomFill {
//!     Box::new(move |buf: &mut [u8]| {
//!         for byte in buf {
//!             state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
//!             *byte = (state >> 16) as u8;
//!         }
//!     })
//! };
//! let config = ClientConfig::Encrypted { version: 9, key_exchange: Rtmpe::factory() };
//! let mut client = ClientHandshake::new(config, seeded(1));
//! let mut server = ServerHandshake::new(Some(Rtmpe::factory()), seeded(2));
//!
//! server.feed(&client.take_output().unwrap_or_default())?;
//! client.feed(&server.take_output().unwrap_or_default())?;
//! server.feed(&client.take_output().unwrap_or_default())?;
//!
//! let client = client.into_outcome();
//! let server = server.into_outcome();
//! assert!(matches!(server.mode, HandshakeMode::Encrypted { version: 9, .. }));
//! let (mut client_cipher, mut server_cipher) = (client.cipher.unwrap(), server.cipher.unwrap());
//! let mut bytes = *b"chunk stream bytes";
//! client_cipher.encrypt.apply(&mut bytes);
//! assert_ne!(&bytes, b"chunk stream bytes");
//! server_cipher.decrypt.apply(&mut bytes);
//! assert_eq!(&bytes, b"chunk stream bytes");
//! # Ok::<(), rtmp_handshake::HandshakeError>(())
//! ```
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

pub mod dh;
mod tables;
mod transform;

use std::sync::Arc;

use hmac::{KeyInit, Mac};
use rc4::StreamCipher as _;
use rtmp_handshake::{
    CipherPair, ClientKeyExchange, HandshakeError, KeyExchangeFactory, ServerKeys, StreamCipher,
};
use sha2::Sha256;

pub use transform::transform_signature;

use dh::{KeyPair, PUBLIC_KEY_SIZE};

/// Keystream bytes both sides discard after the handshake.
const DISCARDED_KEYSTREAM: usize = 1536;

/// The RTMPE key exchange. Cheap to share: `Arc::new(Rtmpe)` serves every connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rtmpe;

impl Rtmpe {
    /// The factory as the handshake and session configurations take it.
    pub fn factory() -> Arc<dyn KeyExchangeFactory> {
        Arc::new(Rtmpe)
    }
}

/// An RC4 keystream as a handshake [`StreamCipher`].
struct Rc4Stream(rc4::Rc4);

impl StreamCipher for Rc4Stream {
    fn apply(&mut self, data: &mut [u8]) {
        self.0.apply_keystream(data);
    }
}

fn hmac_key(secret: &[u8], public_key: &[u8]) -> [u8; 16] {
    let mut mac =
        <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(public_key);
    let digest: [u8; 32] = mac.finalize().into_bytes().into();
    let mut key = [0u8; 16];
    key.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
    key
}

/// An RC4 keystream for `key`, already advanced past the discarded handshake bytes.
fn keystream(key: &[u8; 16]) -> Box<dyn StreamCipher> {
    // RC4 takes keys of 1..=256 bytes: 16 always fits.
    let mut cipher =
        <rc4::Rc4 as rc4::KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    let mut discard = [0u8; DISCARDED_KEYSTREAM];
    cipher.apply_keystream(&mut discard);
    Box::new(Rc4Stream(cipher))
}

/// The two keystreams from the shared secret and both public keys: `(client to server, server to client)`.
pub fn derive_keys(
    secret: &[u8; PUBLIC_KEY_SIZE],
    client_public: &[u8; PUBLIC_KEY_SIZE],
    server_public: &[u8; PUBLIC_KEY_SIZE],
) -> ([u8; 16], [u8; 16]) {
    (
        hmac_key(secret, server_public),
        hmac_key(secret, client_public),
    )
}

impl KeyExchangeFactory for Rtmpe {
    fn server_keys(
        &self,
        client_public_key: &[u8; PUBLIC_KEY_SIZE],
        random: &mut dyn FnMut(&mut [u8]),
    ) -> Result<ServerKeys, HandshakeError> {
        let client =
            dh::validate_public_key(client_public_key).ok_or(HandshakeError::InvalidPublicKey)?;
        // A secret with a leading zero byte is encoded differently by different clients: draw again.
        let (pair, secret) = loop {
            let pair = KeyPair::generate(random);
            let secret = pair.shared_secret(&client);
            if secret.first().is_some_and(|&b| b != 0) {
                break (pair, secret);
            }
        };
        let (client_to_server, server_to_client) =
            derive_keys(&secret, client_public_key, &pair.public_key);
        Ok(ServerKeys {
            public_key: pair.public_key,
            cipher: CipherPair {
                decrypt: keystream(&client_to_server),
                encrypt: keystream(&server_to_client),
            },
        })
    }

    fn client_exchange(&self, random: &mut dyn FnMut(&mut [u8])) -> Box<dyn ClientKeyExchange> {
        Box::new(ClientExchange(KeyPair::generate(random)))
    }

    fn transform_signature(&self, version: u8, key: &[u8; 32], signature: &mut [u8; 32]) {
        transform_signature(version, key, signature);
    }
}

struct ClientExchange(KeyPair);

impl ClientKeyExchange for ClientExchange {
    fn public_key(&self) -> [u8; PUBLIC_KEY_SIZE] {
        self.0.public_key
    }

    fn finish(
        self: Box<Self>,
        server_public_key: &[u8; PUBLIC_KEY_SIZE],
    ) -> Result<CipherPair, HandshakeError> {
        let server =
            dh::validate_public_key(server_public_key).ok_or(HandshakeError::InvalidPublicKey)?;
        let secret = self.0.shared_secret(&server);
        let (client_to_server, server_to_client) =
            derive_keys(&secret, &self.0.public_key, server_public_key);
        Ok(CipherPair {
            decrypt: keystream(&server_to_client),
            encrypt: keystream(&client_to_server),
        })
    }
}

/// The README examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
