//! The byte plumbing both roles share: the handshake, the RTMPE keystreams, the chunk codec, the queue of
//! wire bytes to send, and the liveness clock (ping, idle and handshake timeouts).

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rtmp_chunk::{
    csid, ChunkDecoder, ChunkEncoder, Message, RtmpMessage, SharedMessage, UserControlEvent,
};
use rtmp_handshake::{CipherPair, ClientHandshake, HandshakeMode, RandomFill, ServerHandshake};

use crate::{SessionConfig, SessionError};

enum Handshake {
    Server(Box<ServerHandshake>),
    Client(Box<ClientHandshake>),
    Done,
}

/// Queued wire pieces whose room the transport keeps once they are sent: a burst (a new player's GOP,
/// hundreds of pieces) must not hold its memory for the connection's life.
const RETAINED_TRANSMIT_PIECES: usize = 16;

pub(crate) struct Transport {
    pub(crate) config: SessionConfig,
    handshake: Handshake,
    pub(crate) mode: Option<HandshakeMode>,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    cipher: Option<CipherPair>,
    transmit: VecDeque<Bytes>,
    /// Reused for the pieces of each shared message (one allocation per connection, not per frame).
    shared_pieces: Vec<Bytes>,
    pending_bytes: usize,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    started: Instant,
    last_input: Instant,
    next_ping: Option<Instant>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("mode", &self.mode)
            .field("bytes_in", &self.bytes_in)
            .field("bytes_out", &self.bytes_out)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub(crate) fn server(config: SessionConfig, random: RandomFill, now: Instant) -> Self {
        let handshake = ServerHandshake::new(config.key_exchange.clone(), random);
        Self::new(config, Handshake::Server(Box::new(handshake)), now)
    }

    pub(crate) fn client(
        config: SessionConfig,
        handshake: rtmp_handshake::ClientConfig,
        random: RandomFill,
        now: Instant,
    ) -> Self {
        let mut handshake = ClientHandshake::new(handshake, random);
        let c0c1 = handshake.take_output();
        let mut transport = Self::new(config, Handshake::Client(Box::new(handshake)), now);
        if let Some(bytes) = c0c1 {
            transport.queue(bytes);
        }
        transport
    }

    fn new(config: SessionConfig, handshake: Handshake, now: Instant) -> Self {
        let mut decoder = ChunkDecoder::new(config.decoder);
        decoder.set_ack_window(config.window_ack_size);
        Self {
            config,
            handshake,
            mode: None,
            decoder,
            encoder: ChunkEncoder::new(),
            cipher: None,
            transmit: VecDeque::new(),
            shared_pieces: Vec::new(),
            pending_bytes: 0,
            bytes_in: 0,
            bytes_out: 0,
            started: now,
            last_input: now,
            next_ping: None,
        }
    }

    pub(crate) fn handshake_done(&self) -> bool {
        matches!(self.handshake, Handshake::Done)
    }

    pub(crate) fn is_encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// Feeds received bytes; returns true when this call completed the handshake.
    pub(crate) fn handle_input(
        &mut self,
        mut data: &[u8],
        now: Instant,
    ) -> Result<bool, SessionError> {
        self.bytes_in += data.len() as u64;
        self.last_input = now;
        let mut completed = false;
        let output;
        let consumed = match &mut self.handshake {
            Handshake::Done => 0,
            Handshake::Server(handshake) => {
                let consumed = handshake.feed(data)?;
                output = handshake.take_output();
                if let Some(bytes) = output {
                    self.queue(bytes);
                }
                consumed
            }
            Handshake::Client(handshake) => {
                let consumed = handshake.feed(data)?;
                output = handshake.take_output();
                if let Some(bytes) = output {
                    self.queue(bytes);
                }
                consumed
            }
        };
        let finished = match &self.handshake {
            Handshake::Server(h) => h.is_done(),
            Handshake::Client(h) => h.is_done(),
            Handshake::Done => false,
        };
        if finished {
            let outcome = match std::mem::replace(&mut self.handshake, Handshake::Done) {
                Handshake::Server(h) => h.into_outcome(),
                Handshake::Client(h) => h.into_outcome(),
                Handshake::Done => return Err(SessionError::Closed),
            };
            tracing::debug!(mode = ?outcome.mode, peer_c2_valid = outcome.peer_c2_valid, "handshake complete");
            self.mode = Some(outcome.mode);
            self.cipher = outcome.cipher;
            self.next_ping = Some(now + self.config.ping_interval);
            completed = true;
        }
        data = data.get(consumed..).unwrap_or_default();
        if self.handshake_done() && !data.is_empty() {
            match &mut self.cipher {
                Some(cipher) => {
                    let mut plain = data.to_vec();
                    cipher.decrypt.apply(&mut plain);
                    self.decoder.push(&plain);
                }
                None => self.decoder.push(data),
            }
        }
        Ok(completed)
    }

    /// The next complete message, with protocol housekeeping (acks, pings, ack window) done here.
    pub(crate) fn next_message(&mut self) -> Result<Option<Message>, SessionError> {
        while let Some(message) = self.decoder.next_message()? {
            if let Some(sequence_number) = self.decoder.ack_due() {
                self.send_control(RtmpMessage::Acknowledgement { sequence_number });
            }
            match RtmpMessage::decode(&message) {
                Ok(RtmpMessage::WindowAckSize(window)) => self.decoder.set_ack_window(window),
                // The client's buffer length is the application's (a recorded stream's read-ahead).
                Ok(RtmpMessage::UserControl(UserControlEvent::SetBufferLength { .. })) => {
                    return Ok(Some(message))
                }
                Ok(RtmpMessage::UserControl(UserControlEvent::PingRequest(timestamp))) => {
                    self.send_control(RtmpMessage::UserControl(UserControlEvent::PingResponse(
                        timestamp,
                    )));
                }
                Ok(
                    RtmpMessage::SetChunkSize(_)
                    | RtmpMessage::Abort { .. }
                    | RtmpMessage::Acknowledgement { .. }
                    | RtmpMessage::SetPeerBandwidth { .. }
                    | RtmpMessage::UserControl(_),
                ) => {}
                _ => return Ok(Some(message)),
            }
        }
        if let Some(sequence_number) = self.decoder.ack_due() {
            self.send_control(RtmpMessage::Acknowledgement { sequence_number });
        }
        Ok(None)
    }

    fn queue(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        self.pending_bytes += bytes.len();
        self.bytes_out += bytes.len() as u64;
        self.transmit.push_back(bytes);
    }

    fn queue_encoded(&mut self, mut encoded: BytesMut) {
        if let Some(cipher) = &mut self.cipher {
            cipher.encrypt.apply(&mut encoded);
        }
        self.queue(encoded.freeze());
    }

    pub(crate) fn send(&mut self, csid: u32, message: &Message) {
        let mut out = BytesMut::with_capacity(message.payload.len() + 16);
        self.encoder.encode(csid, message, &mut out);
        self.queue_encoded(out);
    }

    pub(crate) fn send_control(&mut self, message: RtmpMessage) {
        self.send(csid::PROTOCOL_CONTROL, &message.into_message(0, 0));
    }

    /// Announces and switches to a new outgoing chunk size.
    pub(crate) fn set_chunk_size(&mut self, size: u32) {
        self.send_control(RtmpMessage::SetChunkSize(size));
        if self.encoder.set_chunk_size(size).is_err() {
            tracing::warn!(size, "invalid chunk size in configuration ignored");
        }
    }

    pub(crate) fn chunk_size(&self) -> u32 {
        self.encoder.chunk_size()
    }

    /// Queues a message encoded once for many receivers: zero-copy unless the connection is encrypted.
    pub(crate) fn send_shared(&mut self, shared: &SharedMessage, stream_id: u32) {
        let mut pieces = std::mem::take(&mut self.shared_pieces);
        self.encoder.encode_shared(shared, stream_id, &mut pieces);
        if self.cipher.is_some() {
            let mut copy = BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
            pieces.drain(..).for_each(|p| copy.extend_from_slice(&p));
            self.queue_encoded(copy);
        } else {
            pieces.drain(..).for_each(|p| self.queue(p));
        }
        self.shared_pieces = pieces;
    }

    pub(crate) fn poll_transmit(&mut self, out: &mut Vec<Bytes>) {
        out.extend(self.transmit.drain(..));
        self.transmit.shrink_to(RETAINED_TRANSMIT_PIECES);
        self.pending_bytes = 0;
    }

    pub(crate) fn pending_transmit_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Pings and timeouts. Returns an error when the peer is considered gone.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        if !self.handshake_done() {
            if now.duration_since(self.started) >= self.config.handshake_timeout {
                return Err(SessionError::HandshakeTimeout(
                    self.config.handshake_timeout,
                ));
            }
            return Ok(());
        }
        if now.duration_since(self.last_input) >= self.config.idle_timeout {
            return Err(SessionError::IdleTimeout(self.config.idle_timeout));
        }
        if let Some(at) = self.next_ping {
            if now >= at {
                let timestamp = now.duration_since(self.started).as_millis() as u32;
                self.send_control(RtmpMessage::UserControl(UserControlEvent::PingRequest(
                    timestamp,
                )));
                self.next_ping = Some(now + self.config.ping_interval);
            }
        }
        Ok(())
    }

    pub(crate) fn poll_timeout(&self) -> Instant {
        if !self.handshake_done() {
            return self.started + self.config.handshake_timeout;
        }
        let idle = self.last_input + self.config.idle_timeout;
        self.next_ping.map_or(idle, |ping| ping.min(idle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_pieces_does_not_keep_its_room_once_sent() {
        let mut transport = Transport::server(
            SessionConfig::default(),
            Box::new(|bytes: &mut [u8]| bytes.fill(0)),
            Instant::now(),
        );
        for _ in 0..1000 {
            transport.queue(Bytes::from_static(b"piece"));
        }
        let mut out = Vec::new();
        transport.poll_transmit(&mut out);
        assert_eq!(out.len(), 1000);
        assert!(transport.transmit.is_empty());
        assert!(transport.transmit.capacity() <= RETAINED_TRANSMIT_PIECES);
    }
}
