//! The server's configuration: one typed struct with safe defaults, read from TOML and overridden by
//! command-line options.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// What a second publisher to a live stream name gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PublishPolicyName {
    /// Take over a stream whose publisher has gone quiet (see `takeover_after_ms`); refuse otherwise.
    Takeover,
    /// Always refuse (`NetStream.Publish.BadName`).
    Reject,
}

/// Every setting of `rtmpx serve`. Each key can be set in the TOML file given with `--config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Addresses to listen on: RTMP and RTMPE, and RTMPS when the first byte is a TLS ClientHello.
    pub listen: Vec<SocketAddr>,
    /// TLS-only addresses (RTMPS; conventionally port 443).
    pub listen_tls: Vec<SocketAddr>,
    /// HTTP-only addresses (RTMPT; conventionally port 80). The shared listeners serve RTMPT too.
    pub listen_http: Vec<SocketAddr>,
    /// API addresses (`GET /healthz`; plain HTTP, keep it private). An empty list disables the API.
    pub listen_api: Vec<SocketAddr>,
    /// An RTMPT session with no request for this long is closed.
    pub rtmpt_idle_timeout_ms: u64,
    /// PEM certificate chain for RTMPS; without it (and `tls_key`) a self-signed certificate for
    /// localhost is generated at start.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, RSA or EC) for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// tracing filter, e.g. `info` or `rtmpx=debug,info`.
    pub log_level: String,
    pub publish_policy: PublishPolicyName,
    /// With the take-over policy: how long a publisher must have been silent before a new one replaces it.
    pub takeover_after_ms: u64,
    /// Outgoing chunk size for every connection.
    pub chunk_size: u32,
    /// Largest RTMP message accepted from a peer.
    pub max_message_size: u32,
    /// Most chunk streams one peer may use at once.
    pub max_chunk_streams: usize,
    /// Most simultaneous connections; more are refused.
    pub max_connections: usize,
    /// Connections the kernel completes and queues on each listener before the server accepts them
    /// (capped by `net.core.somaxconn`). A burst beyond it, such as an audience reconnecting at once,
    /// waits for TCP's SYN retries (1 s, then 3 s).
    pub listen_backlog: u32,
    pub handshake_timeout_ms: u64,
    /// A peer silent this long is disconnected (pings are sent meanwhile).
    pub idle_timeout_ms: u64,
    pub ping_interval_ms: u64,
    /// Frames a player may fall behind before it skips to the next keyframe.
    pub player_queue_frames: usize,
    /// Bytes of the current GOP kept so new players start at once on a keyframe (0 disables).
    pub gop_cache_bytes: usize,
    /// Players of a stream are written to at most once per this many milliseconds, each write carrying
    /// every frame published since: far fewer socket writes (the main cost of fan-out) for at most this
    /// much added latency. 0 writes every frame to every player as it arrives.
    pub batch_window_ms: u64,
    /// The number of players, over every stream of the server, at which the whole batch window applies;
    /// fewer get a proportionally shorter window (the CPU a window saves grows with the players; its
    /// latency does not), and under half of it none. 0: always the whole window.
    pub batch_full_players: usize,
    /// Runtime worker threads (absent: one per CPU).
    pub workers: Option<usize>,
    /// Accept RTMPE (handshake versions 6, 8, 9) on the RTMP listeners. It is obfuscation, not security.
    pub rtmpe: bool,
}

/// Chosen from `cargo xtask bench` (docs/benchmarks.md): the window that keeps p99 latency in bounds
/// while cutting the writes per player.
pub const DEFAULT_BATCH_WINDOW_MS: u64 = 30;

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 1935))],
            listen_tls: vec![SocketAddr::from(([0, 0, 0, 0], 4443))],
            listen_http: vec![SocketAddr::from(([0, 0, 0, 0], 8080))],
            listen_api: vec![SocketAddr::from(([127, 0, 0, 1], 1985))],
            rtmpt_idle_timeout_ms: 30_000,
            tls_cert: None,
            tls_key: None,
            log_level: "info".into(),
            publish_policy: PublishPolicyName::Takeover,
            takeover_after_ms: 1000,
            chunk_size: 4096,
            max_message_size: 16 * 1024 * 1024,
            max_chunk_streams: 64,
            max_connections: 10_000,
            listen_backlog: 1024,
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 20_000,
            ping_interval_ms: 5_000,
            player_queue_frames: 256,
            gop_cache_bytes: 16 * 1024 * 1024,
            batch_window_ms: DEFAULT_BATCH_WINDOW_MS,
            batch_full_players: 500,
            workers: None,
            rtmpe: true,
        }
    }
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid configuration in {path}: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=0x7FFF_FFFF).contains(&self.chunk_size) {
            return Err(ConfigError::Invalid(format!(
                "chunk_size {} is outside 1..=2147483647",
                self.chunk_size
            )));
        }
        if self.listen.is_empty() && self.listen_tls.is_empty() && self.listen_http.is_empty() {
            return Err(ConfigError::Invalid("no listen address".into()));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "tls_cert and tls_key go together".into(),
            ));
        }
        if self.batch_window_ms > 1000 {
            return Err(ConfigError::Invalid(format!(
                "batch_window_ms {} is over 1000 (a live stream would stutter)",
                self.batch_window_ms
            )));
        }
        if self.workers == Some(0) {
            return Err(ConfigError::Invalid("workers must be at least 1".into()));
        }
        if self.listen_backlog == 0 {
            return Err(ConfigError::Invalid(
                "listen_backlog must be at least 1".into(),
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "max_connections must be at least 1".into(),
            ));
        }
        Ok(())
    }

    pub fn session_config(&self) -> rtmp_session::SessionConfig {
        rtmp_session::SessionConfig {
            chunk_size: self.chunk_size,
            decoder: rtmp_chunk::DecoderConfig {
                max_message_len: self.max_message_size,
                max_chunk_streams: self.max_chunk_streams,
                max_buffered: (self.max_message_size as usize).saturating_mul(4),
            },
            ping_interval: Duration::from_millis(self.ping_interval_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            handshake_timeout: Duration::from_millis(self.handshake_timeout_ms),
            key_exchange: self.rtmpe.then(rtmp_rtmpe::Rtmpe::factory),
            ..rtmp_session::SessionConfig::default()
        }
    }

    pub fn tls_settings(&self) -> rtmp_rtmps::TlsSettings {
        rtmp_rtmps::TlsSettings {
            cert_and_key: self.tls_cert.clone().zip(self.tls_key.clone()),
        }
    }

    pub fn rtmpt_config(&self) -> rtmp_rtmpt::server::RtmptConfig {
        rtmp_rtmpt::server::RtmptConfig {
            idle_timeout: Duration::from_millis(self.rtmpt_idle_timeout_ms),
            max_sessions: self.max_connections,
            ..rtmp_rtmpt::server::RtmptConfig::default()
        }
    }

    pub fn hub_config(&self) -> rtmp_hub::HubConfig {
        rtmp_hub::HubConfig {
            chunk_size: self.chunk_size,
            player_queue_frames: self.player_queue_frames,
            gop_cache_bytes: self.gop_cache_bytes,
            batch_window: Duration::from_millis(self.batch_window_ms),
            batch_full_players: self.batch_full_players,
            publish_policy: match self.publish_policy {
                PublishPolicyName::Takeover => rtmp_hub::PublishPolicy::TakeOver {
                    quiet_after: Duration::from_millis(self.takeover_after_ms),
                },
                PublishPolicyName::Reject => rtmp_hub::PublishPolicy::Reject,
            },
        }
    }
}
