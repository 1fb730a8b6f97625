//! Session settings, with the defaults real clients are happy with.

use std::sync::Arc;
use std::time::Duration;

use rtmp_chunk::DecoderConfig;
use rtmp_handshake::KeyExchangeFactory;

/// Settings of one session (server or client role).
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Outgoing chunk size, announced with Set Chunk Size (default 4096).
    pub chunk_size: u32,
    /// Window Acknowledgement Size we announce, and our acknowledgement window until the peer sends one.
    pub window_ack_size: u32,
    /// Set Peer Bandwidth window (sent with limit type Dynamic).
    pub peer_bandwidth: u32,
    /// Limits of the incoming chunk stream.
    pub decoder: DecoderConfig,
    /// How often to send a User Control PingRequest once connected.
    pub ping_interval: Duration,
    /// A peer silent for this long is dead: the session closes.
    pub idle_timeout: Duration,
    /// The handshake must complete within this time.
    pub handshake_timeout: Duration,
    /// `fmsVer` in the `connect` answer.
    pub fms_version: String,
    /// Streams (`createStream`) one connection may hold at once; beyond it `createStream` fails. Bounds
    /// what a peer can make the session remember (real clients use one or two).
    pub max_streams: usize,
    /// Enables RTMPE (handshake versions 6, 8, 9) when set.
    pub key_exchange: Option<Arc<dyn KeyExchangeFactory>>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            peer_bandwidth: 2_500_000,
            decoder: DecoderConfig::default(),
            ping_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(20),
            handshake_timeout: Duration::from_secs(10),
            fms_version: "FMS/3,0,1,123".to_owned(),
            max_streams: 64,
            key_exchange: None,
        }
    }
}
