//! The server's configuration: one typed struct with safe defaults, read from TOML and overridden by
//! command-line options; per-application tables (`[app.NAME]`, `[app."*"]`) resolved by name; and what a
//! reload can apply to a running server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde::Deserialize;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines, `key=value` fields.
    #[default]
    Text,
    /// One JSON object per line, with the connection's span fields.
    Json,
}

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
    /// Bearer token the API asks for (`Authorization: Bearer TOKEN`) on every route but `/healthz`
    /// and `/readyz`. Required when `listen_api` has an address other than loopback.
    pub api_token: Option<String>,
    /// An RTMPT session with no request for this long is closed.
    pub rtmpt_idle_timeout_ms: u64,
    /// PEM certificate chain for RTMPS; without it (and `tls_key`) a self-signed certificate for
    /// localhost is generated at start.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, RSA or EC) for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// tracing filter, e.g. `info` or `rtmpx=debug,info`.
    pub log_level: String,
    /// `text` (readable, the default) or `json` (one object per line, for log collectors).
    pub log_format: LogFormat,
    /// What happens when a stream is published while another connection publishes it.
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
    /// Most simultaneous connections from one address (IPv4-mapped IPv6 counting as IPv4); more are
    /// refused at accept. 0: no limit.
    pub max_connections_per_ip: usize,
    /// Connections the kernel completes and queues on each listener before the server accepts them
    /// (capped by `net.core.somaxconn`). A burst beyond it, such as an audience reconnecting at once,
    /// waits for TCP's SYN retries (1 s, then 3 s).
    pub listen_backlog: u32,
    /// How long a peer has to finish the handshake before it is disconnected, in milliseconds.
    pub handshake_timeout_ms: u64,
    /// A peer silent this long is disconnected (pings are sent meanwhile).
    pub idle_timeout_ms: u64,
    /// How often a ping is sent to a quiet peer, in milliseconds.
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
    // Graceful drain (docs/drain.md): SIGTERM or `POST /api/v1/server/drain`.
    /// Seconds a draining server keeps serving its connections before it ends the rest.
    pub drain_timeout_s: u64,
    /// The `tcUrl` (`scheme://host[:port]/app`) a draining server sends in its ReconnectRequest; absent:
    /// none is sent, and clients connect again to the URL they used.
    pub drain_reconnect_url: Option<String>,
    /// Serve the built-in page on the HTTP listeners: `/` (lists the live streams, plays one with the
    /// vendored mpegts.js or hls.js), `/assets/...` and `/streams.json`.
    pub http_page: bool,
    /// The per-application tables as written: `[app.live]` applies to connections to the application
    /// `live`, `[app."*"]` to every application without a table of its own and to the keys a named table
    /// leaves unset. Resolved with [`Config::apps`]; each table's keys are those of [`AppConfig`].
    pub app: BTreeMap<String, toml::Table>,
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
            api_token: None,
            rtmpt_idle_timeout_ms: 30_000,
            tls_cert: None,
            tls_key: None,
            log_level: "info".into(),
            log_format: LogFormat::Text,
            publish_policy: PublishPolicyName::Takeover,
            takeover_after_ms: 1000,
            chunk_size: 4096,
            max_message_size: 16 * 1024 * 1024,
            max_chunk_streams: 64,
            max_connections: 10_000,
            max_connections_per_ip: 0,
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
            drain_timeout_s: 30,
            drain_reconnect_url: None,
            http_page: true,
            app: BTreeMap::new(),
        }
    }
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The configuration file's path.
        path: String,
        /// Why reading it failed.
        source: std::io::Error,
    },
    /// The file is not valid TOML for [`Config`].
    #[error("invalid configuration in {path}: {source}")]
    Parse {
        /// The configuration file's path.
        path: String,
        /// What the TOML parser reported.
        source: toml::de::Error,
    },
    /// A setting is out of range or inconsistent with another one.
    #[error("invalid setting: {0}")]
    Invalid(String),
    /// An `[app.NAME]` table is not valid for [`AppConfig`].
    #[error("invalid [app.{app:?}] table: {source}")]
    App {
        /// The application's name (the table's key).
        app: String,
        /// What the TOML parser reported.
        source: toml::de::Error,
    },
}

impl Config {
    /// Reads and validates the configuration file at `path`; keys it does not set keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let parse_error = |source| ConfigError::Parse {
            path: path.display().to_string(),
            source,
        };
        let config: Config = toml::from_str(&text).map_err(parse_error)?;
        // The app tables again, typed this time, so that an unknown key is reported at its line.
        toml::from_str::<AppTablesAsWritten>(&text).map_err(parse_error)?;
        Ok(config)
    }

    /// The per-application settings: each `[app.NAME]` table over `[app."*"]` over the defaults.
    pub fn apps(&self) -> Result<Apps, ConfigError> {
        Apps::resolve(&self.app)
    }

    /// Checks the settings that types alone cannot (ranges, keys that go together, the `app` tables).
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
        if self.api_token.as_deref() == Some("") {
            return Err(ConfigError::Invalid("api_token must not be empty".into()));
        }
        if let Some(open) = self.listen_api.iter().find(|a| !a.ip().is_loopback()) {
            if self.api_token.is_none() {
                return Err(ConfigError::Invalid(format!(
                    "listen_api {open} is not a loopback address: set api_token"
                )));
            }
        }
        if let Some(url) = &self.drain_reconnect_url {
            let schemes = ["rtmp", "rtmps", "rtmpt", "rtmpts", "rtmpe", "rtmpte"];
            let host = url
                .split_once("://")
                .filter(|(scheme, _)| schemes.contains(scheme))
                .map(|(_, rest)| rest);
            if host.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
                return Err(ConfigError::Invalid(format!(
                    "drain_reconnect_url {url:?} is not an RTMP URL (rtmp://host[:port]/app)"
                )));
            }
        }
        self.apps()?;
        Ok(())
    }

    /// The session settings every connection starts with (chunking limits, timers, RTMPE).
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

    /// The RTMPS certificate and key, or `None` for a generated self-signed one.
    pub fn tls_settings(&self) -> rtmp_rtmps::TlsSettings {
        rtmp_rtmps::TlsSettings {
            cert_and_key: self.tls_cert.clone().zip(self.tls_key.clone()),
        }
    }

    /// The RTMPT tunnel's settings (idle timeout, number of sessions).
    pub fn rtmpt_config(&self) -> rtmp_rtmpt::server::RtmptConfig {
        rtmp_rtmpt::server::RtmptConfig {
            idle_timeout: Duration::from_millis(self.rtmpt_idle_timeout_ms),
            max_sessions: self.max_connections,
            ..rtmp_rtmpt::server::RtmptConfig::default()
        }
    }

    /// The hub's settings (chunk size, player queue, GOP cache, batching).
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

/// The settings of one application, as resolved for it: the keys of its `[app.NAME]` table, then those
/// of `[app."*"]`, then these defaults. Keys are added here as per-application features arrive (access
/// rules, hooks, recording, HLS, relays); a new field with a serde default is all a key needs, the
/// inheritance being done on the tables.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppConfig {
    /// Which table the settings came from, for logs: the application's name, `*`, or `None` when no
    /// table applies and every key has its default.
    #[serde(skip)]
    pub table: Option<String>,

    // HTTP callbacks, nginx-rtmp compatible (crate::hooks). Each is an `http://` URL that gets a form
    // POST. `on_connect`, `on_publish` and `on_play` decide: 2xx allows, 3xx with a bare name in
    // `Location` renames the stream, anything else refuses. The others are told and never wait.
    /// Asked whether a client may `connect` to the application.
    pub on_connect: Option<String>,
    /// Asked whether a stream may be published.
    pub on_publish: Option<String>,
    /// Asked whether a stream may be played.
    pub on_play: Option<String>,
    /// Told when a publisher stops publishing.
    pub on_publish_done: Option<String>,
    /// Told when a player stops playing.
    pub on_play_done: Option<String>,
    /// Told when a stream stops being published or played, after the more specific callback.
    pub on_done: Option<String>,
    /// Told every `on_update_interval` seconds while a stream is published or played.
    pub on_update: Option<String>,
    /// Seconds between two `on_update` calls of a publishing or playing stream (default 30).
    pub on_update_interval: Option<u64>,
    /// Told when a recording file is finished.
    pub on_record_done: Option<String>,
    /// How long a hook may take, connect to answer, in milliseconds (default 3000).
    pub hook_timeout_ms: Option<u64>,
    /// What a hook that times out, is down or answers garbage means: `deny` (default) or `allow`.
    pub hook_failure: crate::hooks::HookFailure,

    // Recording (docs/recording.md).
    /// `off`, `all`, `video`, `audio` or `manual` (started and stopped on request only).
    pub record: crate::outputs::recorder::RecordMode,
    /// The file name template: `{app}`, `{name}`, `{start}` (UTC, `20261203-114500`), `{n}`, `{ext}`.
    pub record_path: crate::outputs::recorder::RecordPath,
    /// The container: `flv` or `mp4` (fragmented MP4).
    pub record_format: crate::outputs::recorder::RecordFormat,
    /// A new file starts at the next keyframe once a file spans this many seconds.
    pub record_max_duration_s: Option<u64>,
    /// A new file starts at the next keyframe once a file holds this many bytes.
    pub record_max_bytes: Option<u64>,

    // Video on demand (docs/vod.md).
    /// A directory whose files `play NAME` plays (FLV: `NAME`, `NAME.flv`, `flv:NAME`; MP4:
    /// `mp4:NAME.mp4`): with
    /// `start >= 0`, or `-2` when no one publishes `NAME` live. Names never leave it (`..`, absolute
    /// names and symbolic links out are refused with `NetStream.Play.StreamNotFound`).
    pub vod_path: Option<PathBuf>,

    // Access control (see docs/security.md and `crate::policy`).
    /// Addresses or CIDR networks (or "all") allowed to publish; tried before `deny_publish`, the first
    /// match deciding and a peer matching none being allowed, as nginx-rtmp's `allow publish`.
    pub allow_publish: Vec<crate::policy::IpMatch>,
    /// Addresses or CIDR networks (or "all") refused publishing (nginx-rtmp's `deny publish`).
    pub deny_publish: Vec<crate::policy::IpMatch>,
    /// As `allow_publish`, for play.
    pub allow_play: Vec<crate::policy::IpMatch>,
    /// As `deny_publish`, for play.
    pub deny_play: Vec<crate::policy::IpMatch>,
    /// With a secret, every publish and play must carry a signed name (`NAME?expires=UNIX&sign=SIG`,
    /// made by `rtmpx sign`).
    pub secret: Option<String>,
    /// Most streams published at once in the application, over the whole server.
    pub max_publishers: Option<usize>,
    /// Most players at once in the application, over the whole server.
    pub max_players: Option<usize>,
    /// Most players at once of one stream of the application.
    pub max_players_per_stream: Option<usize>,
    /// Names and passwords for `auth`.
    pub users: BTreeMap<String, String>,
    /// `"adobe"`: publishers must log in with a name and password of `users` through the Adobe
    /// challenge/response (FFmpeg's `rtmp://user:password@host/app/stream`).
    pub auth: Option<AuthMode>,
    /// With `auth`, players must log in too.
    pub auth_play: bool,

    // E-RTMP v2 multitrack (docs/hub.md).
    /// Players that declared E-RTMP codecs (`fourCcList`) but not `capsEx` Multitrack also get every
    /// track of a multitrack stream. FFmpeg 8 and 9 read multitrack FLV but do not send `capsEx`;
    /// older E-RTMP players do not read it, so the default (`false`) gives them the default track only.
    pub multitrack_to_enhanced_players: bool,
    // HTTP-FLV and WS-FLV playback (docs/http-flv.md, crate::outputs::http_flv).
    /// Serve Enhanced FLV (E-RTMP codecs: HEVC, AV1, VP9, Opus) to every HTTP-FLV and WS-FLV player,
    /// not only to those asking with `?enhanced=1`.
    pub http_flv_enhanced: bool,
    /// How long a request for a stream not yet published waits for its publisher before it is answered
    /// 404, in milliseconds (default 10000; 0 answers at once).
    pub http_flv_wait_ms: Option<u64>,
    /// `Access-Control-Allow-Origin` of the media answers (default `*`; an empty string sends none).
    pub http_cors_origin: Option<String>,

    // LL-HLS (docs/hls.md, crate::outputs::hls).
    /// Segment every stream of the application for LL-HLS from the moment it is published, served on
    /// every HTTP listener at `/APP/NAME/index.m3u8`.
    pub hls: bool,
    /// Target duration of a part in milliseconds (default 333; at least 100).
    pub hls_part_ms: Option<u32>,
    /// Target duration of a segment in milliseconds; segments are cut at the first keyframe after it
    /// (default 2000).
    pub hls_segment_ms: Option<u32>,
    /// Complete segments kept in memory and listed in the playlist (default 6; at least 2).
    pub hls_window: Option<usize>,
    /// How long a blocking playlist request (`_HLS_msn`) waits at most, in milliseconds (default:
    /// three segment targets, as RFC 8216bis allows).
    pub hls_block_ms: Option<u64>,

    // Relays (docs/relay.md, crate::relay).
    /// Targets every stream published to the application is sent on to (`rtmp[s|t|ts|e|te]://` URLs;
    /// `{app}` and `{name}` are filled in).
    pub push: Vec<String>,
    /// Where a play of a stream nobody publishes here pulls it from (`{app}`, `{name}` filled in).
    pub pull: Option<String>,
    /// How long a pull goes on after its last player left, in milliseconds (default 5000).
    pub pull_idle_ms: Option<u64>,
    /// A relay's connect, each answer and each write to a target must take less than this, in
    /// milliseconds (default 5000).
    pub relay_timeout_ms: Option<u64>,
    /// For rtmps/rtmpts relay targets: accept any certificate (a self-signed server you control).
    pub relay_insecure_tls: bool,
    /// For rtmps/rtmpts relay targets: PEM roots to verify them against (default: the system bundle).
    pub relay_ca_file: Option<PathBuf>,
}

impl AppConfig {
    /// `hook_timeout_ms`, defaulted.
    pub fn hook_timeout(&self) -> Duration {
        Duration::from_millis(
            self.hook_timeout_ms
                .unwrap_or(crate::hooks::DEFAULT_TIMEOUT_MS),
        )
    }

    /// `on_update_interval`, defaulted (never below one second).
    pub fn update_interval(&self) -> Duration {
        Duration::from_secs(
            self.on_update_interval
                .unwrap_or(crate::hooks::DEFAULT_UPDATE_INTERVAL_SECS)
                .max(1),
        )
    }

    /// `http_flv_wait_ms`, defaulted.
    pub fn http_flv_wait(&self) -> Duration {
        Duration::from_millis(self.http_flv_wait_ms.unwrap_or(DEFAULT_HTTP_FLV_WAIT_MS))
    }

    /// `http_cors_origin`, defaulted; `None` when set empty (no CORS headers).
    pub fn cors_origin(&self) -> Option<&str> {
        match self.http_cors_origin.as_deref() {
            None => Some("*"),
            Some("") => None,
            Some(origin) => Some(origin),
        }
    }

    /// The segmenter settings of this application, defaulted and kept within sane bounds.
    pub fn hls_settings(&self) -> crate::outputs::hls::HlsSettings {
        crate::outputs::hls::HlsSettings::from_app(self)
    }

    /// Checks the relay URLs (`push`, `pull`).
    pub fn check_relays(&self) -> Result<(), String> {
        for url in self.push.iter().chain(&self.pull) {
            crate::relay::check_url(url)
                .map_err(|why| format!("relay URL {}: {why}", crate::relay::mask::mask_url(url)))?;
        }
        Ok(())
    }

    /// The recording settings of this application.
    pub fn record_settings(&self) -> crate::outputs::recorder::RecordSettings {
        crate::outputs::recorder::RecordSettings {
            mode: self.record,
            path: self.record_path.clone(),
            format: self.record_format,
            max_duration_s: self.record_max_duration_s,
            max_bytes: self.record_max_bytes,
        }
    }
}

/// The default of `http_flv_wait_ms`.
pub const DEFAULT_HTTP_FLV_WAIT_MS: u64 = 10_000;

/// How clients log in (`auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Adobe's challenge-response login (`authmod=adobe`) against the application's users.
    Adobe,
}

/// The `app` tables of a configuration file, read only to report unknown keys at their line.
#[derive(Deserialize)]
struct AppTablesAsWritten {
    #[serde(default)]
    #[allow(dead_code)]
    app: BTreeMap<String, AppConfig>,
}

/// The name of the table every application falls back to.
pub const ANY_APP: &str = "*";

/// The per-application settings of a configuration, resolved once: looking one up is a map lookup.
///
/// Inheritance, as in nginx-rtmp where directives outside an `application {}` block apply inside it
/// unless the block sets them: a named table inherits every key it leaves unset from `[app."*"]`
/// (sub-tables key by key), and `[app."*"]` every key it leaves unset from the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Apps {
    named: BTreeMap<String, Arc<AppConfig>>,
    any: Arc<AppConfig>,
}

impl Default for Apps {
    fn default() -> Self {
        Self {
            named: BTreeMap::new(),
            any: Arc::new(AppConfig::default()),
        }
    }
}

impl Apps {
    /// Resolves the tables of a configuration (`app` as written).
    pub fn resolve(tables: &BTreeMap<String, toml::Table>) -> Result<Apps, ConfigError> {
        let empty = toml::Table::new();
        let any_table = tables.get(ANY_APP);
        let settings = |name: &str, table: toml::Table| {
            let mut config =
                AppConfig::deserialize(toml::Value::Table(table)).map_err(|source| {
                    ConfigError::App {
                        app: name.to_owned(),
                        source,
                    }
                })?;
            config.table = Some(name.to_owned());
            config
                .check_relays()
                .map_err(|why| ConfigError::Invalid(format!("[app.{name:?}]: {why}")))?;
            Ok::<_, ConfigError>(Arc::new(config))
        };
        let any = match any_table {
            Some(table) => settings(ANY_APP, table.clone())?,
            None => Arc::new(AppConfig::default()),
        };
        let mut named = BTreeMap::new();
        for (name, table) in tables.iter().filter(|(name, _)| *name != ANY_APP) {
            let inherited = inherit(table, any_table.unwrap_or(&empty));
            named.insert(name.clone(), settings(name, inherited)?);
        }
        Ok(Apps { named, any })
    }

    /// The settings for the application `name` (as the client's `connect` names it, exactly).
    pub fn app(&self, name: &str) -> Arc<AppConfig> {
        self.named.get(name).unwrap_or(&self.any).clone()
    }

    /// The tables in the configuration: each application's, then `*` when there is one.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let any = self.any.table.as_deref();
        self.named.keys().map(String::as_str).chain(any)
    }
}

/// `table` with every key it leaves unset taken from `base`; where both hold a table under one key, that
/// table inherits the same way.
fn inherit(table: &toml::Table, base: &toml::Table) -> toml::Table {
    let mut merged = base.clone();
    for (key, value) in table {
        let value = match (value, base.get(key)) {
            (toml::Value::Table(own), Some(toml::Value::Table(inherited))) => {
                toml::Value::Table(inherit(own, inherited))
            }
            _ => value.clone(),
        };
        merged.insert(key.clone(), value);
    }
    merged
}

/// The per-application settings in force on a running server, replaced whole on reload. Readers take
/// the current [`Apps`] (an `Arc` clone under a read lock) and keep it for as long as they like.
#[derive(Debug, Default)]
pub struct SharedApps {
    current: RwLock<Arc<Apps>>,
}

impl SharedApps {
    /// Puts `apps` in force.
    pub fn new(apps: Apps) -> Self {
        Self {
            current: RwLock::new(Arc::new(apps)),
        }
    }

    /// The settings in force now.
    pub fn current(&self) -> Arc<Apps> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The settings in force now for the application `name`.
    pub fn app(&self, name: &str) -> Arc<AppConfig> {
        self.current().app(name)
    }

    /// Puts `apps` in force for what reads them from now on.
    pub fn replace(&self, apps: Apps) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(apps);
    }
}

/// What reloading a running server's configuration from `old` to `new` applies, and what it cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadPlan {
    /// The per-application tables differ: they are replaced.
    pub apps_changed: bool,
    /// The certificate files are re-read (same paths, a real certificate: the files may have changed).
    pub reread_certificate: bool,
    /// Keys that differ and only take effect at the next start.
    pub needs_restart: Vec<&'static str>,
}

impl ReloadPlan {
    /// Compares two configurations: what a reload applies and which changed keys need a restart.
    pub fn between(old: &Config, new: &Config) -> ReloadPlan {
        // Destructured in full so that a new key cannot be left out of this decision.
        let Config {
            listen,
            listen_tls,
            listen_http,
            listen_api,
            api_token,
            rtmpt_idle_timeout_ms,
            tls_cert,
            tls_key,
            log_level,
            log_format,
            publish_policy,
            takeover_after_ms,
            chunk_size,
            max_message_size,
            max_chunk_streams,
            max_connections,
            max_connections_per_ip,
            listen_backlog,
            handshake_timeout_ms,
            idle_timeout_ms,
            ping_interval_ms,
            player_queue_frames,
            gop_cache_bytes,
            batch_window_ms,
            batch_full_players,
            workers,
            rtmpe,
            // Read when a drain starts: a reload applies them (Server::reload).
            drain_timeout_s: _,
            drain_reconnect_url: _,
            http_page,
            app,
        } = new;
        let mut needs_restart = Vec::new();
        let mut restart_if_changed = |changed: bool, key: &'static str| {
            if changed {
                needs_restart.push(key);
            }
        };
        restart_if_changed(*listen != old.listen, "listen");
        restart_if_changed(*listen_tls != old.listen_tls, "listen_tls");
        restart_if_changed(*listen_http != old.listen_http, "listen_http");
        restart_if_changed(*listen_api != old.listen_api, "listen_api");
        restart_if_changed(*api_token != old.api_token, "api_token");
        restart_if_changed(
            *rtmpt_idle_timeout_ms != old.rtmpt_idle_timeout_ms,
            "rtmpt_idle_timeout_ms",
        );
        restart_if_changed(*tls_cert != old.tls_cert, "tls_cert");
        restart_if_changed(*tls_key != old.tls_key, "tls_key");
        restart_if_changed(*log_level != old.log_level, "log_level");
        restart_if_changed(*log_format != old.log_format, "log_format");
        restart_if_changed(*publish_policy != old.publish_policy, "publish_policy");
        restart_if_changed(
            *takeover_after_ms != old.takeover_after_ms,
            "takeover_after_ms",
        );
        restart_if_changed(*chunk_size != old.chunk_size, "chunk_size");
        restart_if_changed(
            *max_message_size != old.max_message_size,
            "max_message_size",
        );
        restart_if_changed(
            *max_chunk_streams != old.max_chunk_streams,
            "max_chunk_streams",
        );
        restart_if_changed(*max_connections != old.max_connections, "max_connections");
        restart_if_changed(
            *max_connections_per_ip != old.max_connections_per_ip,
            "max_connections_per_ip",
        );
        restart_if_changed(*listen_backlog != old.listen_backlog, "listen_backlog");
        restart_if_changed(
            *handshake_timeout_ms != old.handshake_timeout_ms,
            "handshake_timeout_ms",
        );
        restart_if_changed(*idle_timeout_ms != old.idle_timeout_ms, "idle_timeout_ms");
        restart_if_changed(
            *ping_interval_ms != old.ping_interval_ms,
            "ping_interval_ms",
        );
        restart_if_changed(
            *player_queue_frames != old.player_queue_frames,
            "player_queue_frames",
        );
        restart_if_changed(*gop_cache_bytes != old.gop_cache_bytes, "gop_cache_bytes");
        restart_if_changed(*batch_window_ms != old.batch_window_ms, "batch_window_ms");
        restart_if_changed(
            *batch_full_players != old.batch_full_players,
            "batch_full_players",
        );
        restart_if_changed(*workers != old.workers, "workers");
        restart_if_changed(*rtmpe != old.rtmpe, "rtmpe");
        restart_if_changed(*http_page != old.http_page, "http_page");
        let same_certificate_files = *tls_cert == old.tls_cert && *tls_key == old.tls_key;
        ReloadPlan {
            apps_changed: *app != old.app,
            reread_certificate: same_certificate_files && tls_cert.is_some(),
            needs_restart,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        file
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_file(file_with(text).path())
    }

    #[test]
    fn drain_keys_are_read_and_a_reconnect_url_must_be_an_rtmp_url() {
        assert_eq!(Config::default().drain_timeout_s, 30);
        let config =
            parse("drain_timeout_s = 5\ndrain_reconnect_url = \"rtmps://10.0.0.2:4443/live\"\n")
                .unwrap();
        assert_eq!(config.drain_timeout_s, 5);
        config.validate().unwrap();
        for bad in ["http://x/live", "rtmp://", "rtmp:///live", "10.0.0.2/live"] {
            let config = Config {
                drain_reconnect_url: Some(bad.into()),
                ..Config::default()
            };
            assert!(config.validate().is_err(), "{bad}");
        }
    }

    fn tables(text: &str) -> BTreeMap<String, toml::Table> {
        toml::from_str::<toml::Table>(text)
            .unwrap()
            .into_iter()
            .map(|(name, value)| match value {
                toml::Value::Table(table) => (name, table),
                other => panic!("{name} is {other:?}"),
            })
            .collect()
    }

    #[test]
    fn an_application_gets_its_own_table_else_the_wildcard_else_the_defaults() {
        let config = parse("chunk_size = 8192\n[app.live]\n[app.\"*\"]\n").unwrap();
        let apps = config.apps().unwrap();
        assert_eq!(apps.app("live").table.as_deref(), Some("live"));
        assert_eq!(apps.app("vod").table.as_deref(), Some("*"));
        assert_eq!(apps.app("Live").table.as_deref(), Some("*"));
        assert_eq!(apps.names().collect::<Vec<_>>(), ["live", "*"]);

        let without_wildcard = parse("[app.live]\n").unwrap().apps().unwrap();
        assert_eq!(without_wildcard.app("live").table.as_deref(), Some("live"));
        assert_eq!(without_wildcard.app("vod").table, None);
        assert_eq!(without_wildcard.names().collect::<Vec<_>>(), ["live"]);
        assert_eq!(
            *Config::default().apps().unwrap().app("live"),
            AppConfig::default()
        );
    }

    #[test]
    fn a_named_table_inherits_the_keys_it_leaves_unset_from_the_wildcard_table() {
        let wildcard = tables("[any]\nrecord = true\nhooks = { on_publish = \"http://a\", on_play = \"http://b\" }\nallow = [\"10.0.0.0/8\"]\n")["any"].clone();
        let named =
            tables("[live]\nrecord = false\nhooks = { on_play = \"http://c\" }\nallow = []\n")
                ["live"]
                .clone();
        let expected = tables("[x]\nrecord = false\nhooks = { on_publish = \"http://a\", on_play = \"http://c\" }\nallow = []\n")["x"].clone();
        assert_eq!(inherit(&named, &wildcard), expected);
        assert_eq!(inherit(&toml::Table::new(), &wildcard), wildcard);
        assert_eq!(inherit(&named, &toml::Table::new()), named);
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key_and_its_line() {
        let top = parse("chunk_size = 4096\nchunk_sise = 4096\n")
            .unwrap_err()
            .to_string();
        assert!(
            top.contains("chunk_sise") && top.contains("line 2"),
            "{top}"
        );

        let in_app = parse("rtmpe = true\n\n[app.\"*\"]\n\n[app.live]\nrecrod = true\n")
            .unwrap_err()
            .to_string();
        assert!(
            in_app.contains("recrod") && in_app.contains("line 6"),
            "{in_app}"
        );

        let not_a_table = parse("app = 3\n").unwrap_err().to_string();
        assert!(not_a_table.contains("line 1"), "{not_a_table}");

        let built = Config {
            app: tables("[live]\nrecrod = true\n"),
            ..Config::default()
        };
        let invalid = built.validate().unwrap_err().to_string();
        assert!(
            invalid.contains("recrod") && invalid.contains("live"),
            "{invalid}"
        );
    }

    #[test]
    fn a_reload_applies_the_app_tables_and_certificate_files_and_names_the_rest() {
        let old = Config {
            tls_cert: Some("cert.pem".into()),
            tls_key: Some("key.pem".into()),
            ..Config::default()
        };
        let same = ReloadPlan::between(&old, &old.clone());
        assert_eq!(
            same,
            ReloadPlan {
                apps_changed: false,
                reread_certificate: true,
                needs_restart: vec![],
            }
        );

        let new = Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 1936))],
            chunk_size: 8192,
            workers: Some(2),
            app: tables("[live]\n"),
            ..old.clone()
        };
        let plan = ReloadPlan::between(&old, &new);
        assert!(plan.apps_changed);
        assert!(plan.reread_certificate);
        assert_eq!(plan.needs_restart, ["listen", "chunk_size", "workers"]);

        let moved = Config {
            tls_cert: Some("other.pem".into()),
            ..old.clone()
        };
        let plan = ReloadPlan::between(&old, &moved);
        assert!(!plan.reread_certificate);
        assert_eq!(plan.needs_restart, ["tls_cert"]);

        let self_signed = Config::default();
        assert!(!ReloadPlan::between(&self_signed, &self_signed).reread_certificate);
    }

    #[test]
    fn shared_apps_are_replaced_whole_and_earlier_readers_keep_theirs() {
        let shared = SharedApps::new(Apps::default());
        let before = shared.current();
        shared.replace(Apps::resolve(&tables("[live]\n")).unwrap());
        assert_eq!(before.app("live").table, None);
        assert_eq!(shared.app("live").table.as_deref(), Some("live"));
    }
}
