//! The client side: C0+C1 out, S0+S1+S2 in (checked as FFmpeg checks them), C2 out.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::digest::{
    block_signature, find_digest, fms_key_full, fp_key_full, sign_block, stored_digest,
    FMS_KEY_PARTIAL, FP_KEY_PARTIAL,
};
use crate::{
    dh_offset, CipherPair, ClientKeyExchange, HandshakeError, HandshakeMode, HandshakeOutcome,
    KeyExchangeFactory, RandomFill, Scheme, HANDSHAKE_SIZE, PUBLIC_KEY_SIZE,
};

/// How the client handshakes.
#[derive(Debug, Clone, Default)]
pub enum ClientConfig {
    /// Version 3 with a scheme-0 digest, as FFmpeg does.
    #[default]
    Digest,
    /// Version 3 without a digest, as librtmp and OBS do.
    Simple,
    /// RTMPE with the given version byte (6, 8 or 9), a scheme-1 C1 as FFmpeg and librtmp send.
    Encrypted {
        /// The C0 version byte: 6, 8 or 9.
        version: u8,
        /// The RTMPE implementation (e.g. `rtmp_rtmpe::Rtmpe::factory()`).
        key_exchange: Arc<dyn KeyExchangeFactory>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingS0S1S2,
    Done,
    Failed,
}

/// The client handshake state machine. C0+C1 are ready in `take_output` from the start.
pub struct ClientHandshake {
    state: State,
    config: ClientConfig,
    received: Vec<u8>,
    output: Option<Bytes>,
    c1_digest: Option<[u8; 32]>,
    exchange: Option<Box<dyn ClientKeyExchange>>,
    cipher: Option<CipherPair>,
    mode: HandshakeMode,
    random: RandomFill,
}

impl std::fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("state", &self.state)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl ClientHandshake {
    /// A client handshake; C0+C1 are drawn from `random` and ready in [`ClientHandshake::take_output`].
    pub fn new(config: ClientConfig, mut random: RandomFill) -> Self {
        let mut c1 = [0u8; HANDSHAKE_SIZE];
        random(&mut c1);
        if let Some(time) = c1.get_mut(..4) {
            time.fill(0);
        }
        let (version, c1_version, scheme) = match &config {
            ClientConfig::Simple => (3u8, [0u8, 0, 0, 0], None),
            ClientConfig::Digest => (3, [9, 0, 124, 2], Some(Scheme::Zero)),
            ClientConfig::Encrypted { version, .. } => {
                (*version, [128, 0, 3, 2], Some(Scheme::One))
            }
        };
        if let Some(field) = c1.get_mut(4..8) {
            field.copy_from_slice(&c1_version);
        }
        let mut exchange = None;
        if let ClientConfig::Encrypted { key_exchange, .. } = &config {
            let keys = key_exchange.client_exchange(&mut |buf| random(buf));
            let at = dh_offset(&c1, Scheme::One);
            if let Some(slot) = c1.get_mut(at..at + PUBLIC_KEY_SIZE) {
                slot.copy_from_slice(&keys.public_key());
            }
            exchange = Some(keys);
        }
        let c1_digest = scheme.map(|scheme| sign_block(&mut c1, scheme, FP_KEY_PARTIAL));
        let mut out = BytesMut::with_capacity(1 + HANDSHAKE_SIZE);
        out.put_u8(version);
        out.put_slice(&c1);
        Self {
            state: State::AwaitingS0S1S2,
            config,
            received: Vec::with_capacity(1 + 2 * HANDSHAKE_SIZE),
            output: Some(out.freeze()),
            c1_digest,
            exchange,
            cipher: None,
            mode: HandshakeMode::Simple,
            random,
        }
    }

    /// Consumes as many bytes as S0+S1+S2 still need; returns how many.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        if self.state != State::AwaitingS0S1S2 {
            return Err(HandshakeError::Finished);
        }
        let wanted = 1 + 2 * HANDSHAKE_SIZE;
        let take = (wanted - self.received.len()).min(input.len());
        self.received
            .extend_from_slice(input.get(..take).unwrap_or_default());
        if self.received.len() == wanted {
            if let Err(error) = self.answer_s2() {
                self.state = State::Failed;
                return Err(error);
            }
            self.state = State::Done;
        }
        Ok(take)
    }

    /// Bytes to send to the server, if any.
    pub fn take_output(&mut self) -> Option<Bytes> {
        self.output.take()
    }

    /// True once S0+S1+S2 have been read and C2 produced.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The outcome, once [`ClientHandshake::is_done`].
    pub fn into_outcome(self) -> HandshakeOutcome {
        HandshakeOutcome {
            mode: self.mode,
            cipher: self.cipher,
            peer_c2_valid: true,
        }
    }

    fn answer_s2(&mut self) -> Result<(), HandshakeError> {
        let mut s1 = [0u8; HANDSHAKE_SIZE];
        let mut s2 = [0u8; HANDSHAKE_SIZE];
        let version = self.received.first().copied().unwrap_or_default();
        s1.copy_from_slice(
            self.received
                .get(1..1 + HANDSHAKE_SIZE)
                .unwrap_or(&[0; HANDSHAKE_SIZE]),
        );
        s2.copy_from_slice(
            self.received
                .get(1 + HANDSHAKE_SIZE..)
                .unwrap_or(&[0; HANDSHAKE_SIZE]),
        );
        let server_checks = s1.get(4).is_some_and(|&v| v >= 3);
        let server_digest = find_digest(&s1, FMS_KEY_PARTIAL, [Scheme::One, Scheme::Zero]);
        let encrypted = matches!(self.config, ClientConfig::Encrypted { .. });
        if encrypted && !matches!(version, 6 | 8 | 9) {
            return Err(HandshakeError::UnsupportedVersion(version));
        }
        if !encrypted && version != 3 {
            return Err(HandshakeError::UnsupportedVersion(version));
        }
        let (Some(c1_digest), Some((scheme, s1_digest))) = (self.c1_digest, server_digest) else {
            if encrypted || (self.c1_digest.is_some() && server_checks) {
                return Err(HandshakeError::ServerDigestInvalid);
            }
            // Simple handshake: C2 echoes S1.
            self.output = Some(Bytes::copy_from_slice(&s1));
            self.mode = HandshakeMode::Simple;
            return Ok(());
        };
        let factory = match &self.config {
            ClientConfig::Encrypted { key_exchange, .. } => Some(key_exchange.clone()),
            _ => None,
        };
        let (signing_key, mut expected) = block_signature(&s2, &fms_key_full(), &c1_digest);
        if let Some(factory) = &factory {
            factory.transform_signature(version, &signing_key, &mut expected);
        }
        if stored_digest(&s2, HANDSHAKE_SIZE - 32) != expected {
            return Err(HandshakeError::ServerSignatureInvalid);
        }
        if let Some(exchange) = self.exchange.take() {
            let at = dh_offset(&s1, scheme);
            let mut server_key = [0u8; PUBLIC_KEY_SIZE];
            server_key.copy_from_slice(
                s1.get(at..at + PUBLIC_KEY_SIZE)
                    .unwrap_or(&[0; PUBLIC_KEY_SIZE]),
            );
            self.cipher = Some(exchange.finish(&server_key)?);
            self.mode = HandshakeMode::Encrypted {
                version,
                scheme: Scheme::One,
            };
        } else {
            self.mode = HandshakeMode::Digest {
                scheme: Scheme::Zero,
            };
        }
        let mut c2 = [0u8; HANDSHAKE_SIZE];
        (self.random)(&mut c2);
        let (signing_key, mut signature) = block_signature(&c2, &fp_key_full(), &s1_digest);
        if let Some(factory) = &factory {
            factory.transform_signature(version, &signing_key, &mut signature);
        }
        if let Some(slot) = c2.get_mut(HANDSHAKE_SIZE - 32..) {
            slot.copy_from_slice(&signature);
        }
        self.output = Some(Bytes::copy_from_slice(&c2));
        Ok(())
    }
}
