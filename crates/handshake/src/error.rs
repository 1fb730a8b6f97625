//! The one error type of the handshake.

/// Why a handshake failed. The connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A version byte this implementation does not speak (anything but 3, 6, 8, 9).
    #[error("unsupported RTMP version byte {0} in C0/S0")]
    UnsupportedVersion(u8),
    /// An RTMPE handshake (version 6, 8 or 9) on an endpoint with no key exchange configured.
    #[error("RTMPE handshake (version {0}) requested but encryption is not enabled")]
    EncryptionUnsupported(u8),
    /// RTMPE needs a valid digest in C1; there was none.
    #[error("RTMPE C1 carries no valid digest")]
    MissingDigest,
    /// The peer's Diffie-Hellman public key is out of range.
    #[error("invalid Diffie-Hellman public key from the peer")]
    InvalidPublicKey,
    /// Client side: the server's S1 digest did not validate.
    #[error("server S1 digest did not validate")]
    ServerDigestInvalid,
    /// Client side: the server's S2 signature did not validate.
    #[error("server S2 signature did not validate")]
    ServerSignatureInvalid,
    /// Bytes fed after the handshake completed or failed.
    #[error("handshake already finished")]
    Finished,
}
