//! The hook through which RTMPE (handshake versions 6, 8, 9) plugs into the handshake.
//!
//! The handshake crate places keys and digests; an implementation (the `rtmp-rtmpe` crate) does the
//! Diffie-Hellman arithmetic, derives the RC4 keystreams and applies the type 8/9 signature transforms.

use std::fmt;

use crate::{HandshakeError, PUBLIC_KEY_SIZE};

/// A keystream cipher applied in place to every byte after the handshake, in order.
pub trait StreamCipher: Send {
    /// Encrypts or decrypts `data` in place, advancing the keystream.
    fn apply(&mut self, data: &mut [u8]);
}

/// The two keystreams of an RTMPE connection, already advanced past the 1536 discarded bytes.
pub struct CipherPair {
    /// For bytes from the peer.
    pub decrypt: Box<dyn StreamCipher>,
    /// For bytes to the peer.
    pub encrypt: Box<dyn StreamCipher>,
}

impl fmt::Debug for CipherPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CipherPair { .. }")
    }
}

/// The server's half of a key exchange: its public key and the ciphers agreed with the client.
#[derive(Debug)]
pub struct ServerKeys {
    /// The server's public key, for S1.
    pub public_key: [u8; PUBLIC_KEY_SIZE],
    /// The keystreams for the rest of the connection.
    pub cipher: CipherPair,
}

/// The client's half: a public key to place in C1, finished when the server's key arrives in S1.
pub trait ClientKeyExchange: Send {
    /// The client's public key, for C1.
    fn public_key(&self) -> [u8; PUBLIC_KEY_SIZE];
    /// Derives the keystreams from the server's public key in S1.
    fn finish(
        self: Box<Self>,
        server_public_key: &[u8; PUBLIC_KEY_SIZE],
    ) -> Result<CipherPair, HandshakeError>;
}

/// Creates key exchanges; one factory serves every connection of an endpoint.
pub trait KeyExchangeFactory: Send + Sync + fmt::Debug {
    /// Server side: validates the client's public key and answers with ours and the ciphers.
    fn server_keys(
        &self,
        client_public_key: &[u8; PUBLIC_KEY_SIZE],
        random: &mut dyn FnMut(&mut [u8]),
    ) -> Result<ServerKeys, HandshakeError>;

    /// Client side: a fresh key pair.
    fn client_exchange(&self, random: &mut dyn FnMut(&mut [u8])) -> Box<dyn ClientKeyExchange>;

    /// The type 8 (XTEA) / type 9 (Blowfish) transform of a handshake signature computed with `key`.
    /// Version 6 leaves the signature as it is.
    fn transform_signature(&self, version: u8, key: &[u8; 32], signature: &mut [u8; 32]);
}
