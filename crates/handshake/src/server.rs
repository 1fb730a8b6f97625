//! The server side: C0+C1 in, S0+S1+S2 out at once, then C2 (checked and logged, never required).

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::digest::{
    block_signature, find_digest, fms_key_full, fp_key_full, sign_block, stored_digest,
    FMS_KEY_PARTIAL, FP_KEY_PARTIAL,
};
use crate::{
    dh_offset, CipherPair, HandshakeError, HandshakeMode, HandshakeOutcome, KeyExchangeFactory,
    RandomFill, Scheme, HANDSHAKE_SIZE, PUBLIC_KEY_SIZE,
};

/// The S1 version field: `S1[4] >= 3` tells FFmpeg to check our digests (PROTOCOL.md 1.6.4).
const SERVER_VERSION: [u8; 4] = [4, 5, 0, 1];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingC0C1,
    AwaitingC2,
    Done,
    Failed,
}

/// The server handshake state machine.
pub struct ServerHandshake {
    state: State,
    received: Vec<u8>,
    output: Option<Bytes>,
    mode: HandshakeMode,
    cipher: Option<CipherPair>,
    key_exchange: Option<Arc<dyn KeyExchangeFactory>>,
    random: RandomFill,
    /// What a valid C2 looks like: S1 echoed, or signed with the key from our S1 digest.
    s1: Vec<u8>,
    s1_digest: Option<[u8; 32]>,
    peer_c2_valid: bool,
}

impl std::fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandshake")
            .field("state", &self.state)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl ServerHandshake {
    /// A server handshake; `key_exchange` enables RTMPE (versions 6, 8, 9).
    pub fn new(key_exchange: Option<Arc<dyn KeyExchangeFactory>>, random: RandomFill) -> Self {
        Self {
            state: State::AwaitingC0C1,
            received: Vec::with_capacity(1 + HANDSHAKE_SIZE),
            output: None,
            mode: HandshakeMode::Simple,
            cipher: None,
            key_exchange,
            random,
            s1: Vec::new(),
            s1_digest: None,
            peer_c2_valid: false,
        }
    }

    /// Consumes as many of `input`'s bytes as the handshake still needs; returns how many.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        let wanted = match self.state {
            State::AwaitingC0C1 => 1 + HANDSHAKE_SIZE,
            State::AwaitingC2 => HANDSHAKE_SIZE,
            State::Done | State::Failed => return Err(HandshakeError::Finished),
        };
        if let Some(&version) = input
            .first()
            .filter(|_| self.state == State::AwaitingC0C1 && self.received.is_empty())
        {
            // Fail on the version byte alone rather than waiting for 1536 more bytes.
            if !matches!(version, 3 | 6 | 8 | 9) {
                self.state = State::Failed;
                return Err(HandshakeError::UnsupportedVersion(version));
            }
        }
        let take = (wanted - self.received.len()).min(input.len());
        self.received
            .extend_from_slice(input.get(..take).unwrap_or_default());
        if self.received.len() == wanted {
            let result = match self.state {
                State::AwaitingC0C1 => self.answer_c1(),
                _ => {
                    self.check_c2();
                    self.state = State::Done;
                    Ok(())
                }
            };
            if result.is_err() {
                self.state = State::Failed;
            }
            result?;
            self.received.clear();
        }
        Ok(take)
    }

    /// Bytes to send to the client, if any.
    pub fn take_output(&mut self) -> Option<Bytes> {
        self.output.take()
    }

    /// True once C2 has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The negotiated mode, known once C1 has been read.
    pub fn mode(&self) -> HandshakeMode {
        self.mode
    }

    /// The outcome, once [`ServerHandshake::is_done`].
    pub fn into_outcome(self) -> HandshakeOutcome {
        HandshakeOutcome {
            mode: self.mode,
            cipher: self.cipher,
            peer_c2_valid: self.peer_c2_valid,
        }
    }

    fn random_block(&mut self) -> [u8; HANDSHAKE_SIZE] {
        let mut block = [0u8; HANDSHAKE_SIZE];
        (self.random)(&mut block);
        block
    }

    fn answer_c1(&mut self) -> Result<(), HandshakeError> {
        let (version, c1) = match self.received.split_first() {
            Some((&version, rest)) => (version, rest),
            None => return Err(HandshakeError::Finished),
        };
        let mut c1_block = [0u8; HANDSHAKE_SIZE];
        c1_block.copy_from_slice(c1);
        let encrypted = version != 3;
        let factory = match (&self.key_exchange, encrypted) {
            (None, true) => return Err(HandshakeError::EncryptionUnsupported(version)),
            (factory, _) => factory.clone(),
        };
        let c1_has_version = c1_block.get(4..8).is_some_and(|v| v != [0, 0, 0, 0]);
        let client_digest = if c1_has_version || encrypted {
            find_digest(&c1_block, FP_KEY_PARTIAL, [Scheme::Zero, Scheme::One])
        } else {
            None
        };
        let mut out = BytesMut::with_capacity(1 + 2 * HANDSHAKE_SIZE);
        out.put_u8(version);
        match (client_digest, factory) {
            (None, _) if encrypted => return Err(HandshakeError::MissingDigest),
            (None, _) => {
                // Simple handshake: S1 = zero time and version + random, S2 = C1 exactly.
                let mut s1 = self.random_block();
                if let Some(header) = s1.get_mut(..8) {
                    header.fill(0);
                }
                out.put_slice(&s1);
                out.put_slice(&c1_block);
                self.s1 = s1.to_vec();
                self.mode = HandshakeMode::Simple;
            }
            (Some((scheme, c1_digest)), factory) => {
                let mut s1 = self.random_block();
                if let Some(header) = s1.get_mut(..8) {
                    header.fill(0);
                }
                if let Some(version_field) = s1.get_mut(4..8) {
                    version_field.copy_from_slice(&SERVER_VERSION);
                }
                let mut transform = None;
                if let (true, Some(factory)) = (encrypted, factory) {
                    let mut client_key = [0u8; PUBLIC_KEY_SIZE];
                    let at = dh_offset(&c1_block, scheme);
                    client_key.copy_from_slice(
                        c1_block
                            .get(at..at + PUBLIC_KEY_SIZE)
                            .unwrap_or(&[0; PUBLIC_KEY_SIZE]),
                    );
                    let keys = factory.server_keys(&client_key, &mut |buf| (self.random)(buf))?;
                    // Scheme 0 for S1 in RTMPE: every client finds the key there (PROTOCOL.md 2.3).
                    let at = dh_offset(&s1, Scheme::Zero);
                    if let Some(slot) = s1.get_mut(at..at + PUBLIC_KEY_SIZE) {
                        slot.copy_from_slice(&keys.public_key);
                    }
                    self.cipher = Some(keys.cipher);
                    transform = Some(factory);
                    self.mode = HandshakeMode::Encrypted { version, scheme };
                } else {
                    self.mode = HandshakeMode::Digest { scheme };
                }
                let s1_digest = sign_block(&mut s1, Scheme::Zero, FMS_KEY_PARTIAL);
                let mut s2 = self.random_block();
                let (signing_key, mut signature) =
                    block_signature(&s2, &fms_key_full(), &c1_digest);
                if let Some(factory) = &transform {
                    factory.transform_signature(version, &signing_key, &mut signature);
                }
                if let Some(slot) = s2.get_mut(HANDSHAKE_SIZE - 32..) {
                    slot.copy_from_slice(&signature);
                }
                out.put_slice(&s1);
                out.put_slice(&s2);
                self.s1 = s1.to_vec();
                self.s1_digest = Some(s1_digest);
                self.key_exchange = transform;
            }
        }
        self.output = Some(out.freeze());
        self.state = State::AwaitingC2;
        Ok(())
    }

    /// Records whether C2 is an echo of S1 or correctly signed. Only for logs: FFmpeg publishers echo S1.
    fn check_c2(&mut self) {
        if self.received == self.s1 {
            self.peer_c2_valid = true;
            return;
        }
        let Some(s1_digest) = self.s1_digest else {
            return;
        };
        let mut c2 = [0u8; HANDSHAKE_SIZE];
        c2.copy_from_slice(&self.received);
        let (signing_key, mut expected) = block_signature(&c2, &fp_key_full(), &s1_digest);
        if let (HandshakeMode::Encrypted { version, .. }, Some(factory)) =
            (self.mode, &self.key_exchange)
        {
            factory.transform_signature(version, &signing_key, &mut expected);
        }
        self.peer_c2_valid = stored_digest(&c2, HANDSHAKE_SIZE - 32) == expected;
    }
}
