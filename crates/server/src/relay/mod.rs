//! Relays: streams sent on to other servers (push) and fetched from them (pull), over every scheme
//! `rtmp-client` speaks.
//!
//! - `push`: a hub subscriber per target (bounded, drops to the next keyframe, starts at one) feeding
//!   an `rtmp-client` publisher task that reconnects with backoff while the stream lives.
//! - `pull`: a hub publisher fed by an `rtmp-client` player, started by the first local player of a
//!   stream nobody publishes here, shared by every player, stopped `pull_idle_ms` after the last left.
//! - `api`: `/api/v1/relays` (list, start, stop).
//! - `mask`: target URLs with their stream keys masked, for logs and the API.
//!
//! Every relay is registered here ([`registry`]) with its live status, for the API and the metrics
//! ([`counters`]). Decisions (whether a publish pushes, whether a play pulls) are the router's; the I/O
//! is the tasks' of this module.

pub mod api;
pub mod mask;
pub mod pull;
pub mod push;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::AppConfig;

/// The default of `pull_idle_ms`.
pub const DEFAULT_PULL_IDLE_MS: u64 = 5_000;
/// The default of `relay_timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// The E-RTMP status a server sends to ask its client to connect again (to the same `tcUrl` here).
const RECONNECT_REQUEST: &str = "NetConnection.Connect.ReconnectRequest";
/// The first wait before a relay connects again.
const BACKOFF_INITIAL: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How relays of an application connect.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Connecting, each answer, and a write to a target: longer is a failure (`relay_timeout_ms`).
    pub timeout: Duration,
    /// For a pull: how long it goes on after its last player left (`pull_idle_ms`).
    pub idle: Duration,
    /// For rtmps/rtmpts: accept any certificate (`relay_insecure_tls`).
    pub insecure_tls: bool,
    /// For rtmps/rtmpts: PEM roots to verify the target against (`relay_ca_file`).
    pub ca_file: Option<PathBuf>,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
            idle: Duration::from_millis(DEFAULT_PULL_IDLE_MS),
            insecure_tls: false,
            ca_file: None,
        }
    }
}

impl RelaySettings {
    /// The relay settings of an application.
    pub fn of(config: &AppConfig) -> Self {
        Self {
            timeout: Duration::from_millis(config.relay_timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
            idle: Duration::from_millis(config.pull_idle_ms.unwrap_or(DEFAULT_PULL_IDLE_MS)),
            insecure_tls: config.relay_insecure_tls,
            ca_file: config.relay_ca_file.clone(),
        }
    }

    /// The client's options, announcing `fourcc_list` (Enhanced RTMP) when it is not empty, and the
    /// E-RTMP capabilities a relay has: multitrack passed through, `ReconnectRequest` honoured.
    pub fn connect_options(&self, fourcc_list: Vec<String>) -> rtmp_client::ConnectOptions {
        let ca_file = match (&self.ca_file, self.insecure_tls) {
            (Some(file), _) => Some(file.clone()),
            (None, true) => None,
            (None, false) => system_roots(),
        };
        rtmp_client::ConnectOptions {
            ca_file,
            insecure: self.insecure_tls,
            fourcc_list,
            caps_ex: rtmp_session::CAPS_EX_MULTITRACK | rtmp_session::CAPS_EX_RECONNECT,
            timeout: self.timeout,
        }
    }
}

/// Where Linux distributions keep the system's trusted roots, as one PEM bundle (Debian and Ubuntu,
/// Fedora and RHEL, Alpine): what an `rtmps` target such as Facebook's or YouTube's is checked against
/// when `relay_ca_file` names no other.
const SYSTEM_ROOTS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The system's root bundle, if this machine has one (read by the relay's task, not the router).
fn system_roots() -> Option<PathBuf> {
    SYSTEM_ROOTS
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

/// A `push`/`pull` template with `{app}` and `{name}` filled in.
pub fn render_url(template: &str, app: &str, name: &str) -> String {
    template.replace("{app}", app).replace("{name}", name)
}

/// Whether `url` is one a relay can use (a scheme the client speaks, a host, an application), with
/// `{app}` and `{name}` standing for any value; the reason otherwise.
pub fn check_url(url: &str) -> Result<(), String> {
    parse_url(&render_url(url, "app", "name")).map(drop)
}

/// `url` parsed; the reason it cannot be, without the URL (its key) otherwise.
pub(crate) fn parse_url(url: &str) -> Result<rtmp_client::RtmpUrl, String> {
    match url.parse::<rtmp_client::RtmpUrl>() {
        Ok(parsed) => Ok(parsed),
        // The client's message repeats the URL, key included: only its reason is kept.
        Err(rtmp_client::ClientError::Url(text)) => Err(text
            .rsplit_once(": ")
            .map_or("not an RTMP URL", |(_, why)| why)
            .to_owned()),
        Err(error) => Err(error.to_string()),
    }
}

/// The waits between attempts: doubling from half a second to 30 s, each drawn between half and all of
/// its step by the jitter the caller gives (so that relays that failed together do not come back
/// together, and tests need no randomness).
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    attempts: u32,
}

impl Backoff {
    /// The wait before the next attempt; `jitter` in `0.0..=1.0` (drawn by the caller).
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let step = BACKOFF_INITIAL
            .saturating_mul(1u32 << self.attempts.min(16))
            .min(BACKOFF_MAX);
        self.attempts = self.attempts.saturating_add(1);
        step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// A connection that worked: the next failure starts from the first step again.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

/// The next backoff wait, with jitter drawn here, in the I/O layer.
pub(crate) fn backoff_delay(backoff: &mut Backoff) -> Duration {
    backoff.next_delay(rand::random::<f64>())
}

/// Push or pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A local stream sent to a target.
    Push,
    /// A remote stream fetched and published here.
    Pull,
}

/// Where a relay comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `push`/`pull` in the application's settings.
    Config,
    /// `POST /api/v1/relays`.
    Api,
    /// An `on_publish`/`on_play` answer redirecting to an `rtmp://` URL.
    Hook,
}

/// Where a relay stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for the stream (a push before its first frame).
    Waiting,
    /// Connecting to the target or upstream.
    Connecting,
    /// Media flows.
    Relaying,
    /// Waiting before the next attempt.
    Retrying,
    /// Gave up (a pull whose upstream failed).
    Failed,
    /// Ended.
    Stopped,
}

#[derive(Debug)]
struct Live {
    state: State,
    last_error: Option<String>,
}

/// One relay's live status, shared by its task and the registry.
#[derive(Debug)]
pub struct RelayStatus {
    /// The relay's id in the API.
    pub id: u64,
    /// Push or pull.
    pub kind: Kind,
    /// Where it comes from.
    pub origin: Origin,
    /// The local stream's application.
    pub app: String,
    /// The local stream's name.
    pub name: String,
    /// The target (or upstream), masked.
    pub target: String,
    live: Mutex<Live>,
    bytes: AtomicU64,
    reconnects: AtomicU64,
    stop: Mutex<Option<tokio::task::AbortHandle>>,
}

impl RelayStatus {
    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the state.
    pub fn set_state(&self, state: State) {
        self.live().state = state;
    }

    /// Records a failure: logged by the caller, kept for the API, counted.
    pub fn failed(&self, error: &str) {
        self.live().last_error = Some(error.to_owned());
        COUNTERS.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds bytes moved (sent for a push, received for a pull).
    pub fn add_bytes(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let total = match self.kind {
            Kind::Push => &COUNTERS.bytes_sent,
            Kind::Pull => &COUNTERS.bytes_received,
        };
        total.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts one more connection after the first.
    pub fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
        COUNTERS.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Lets `DELETE /api/v1/relays/{id}` end the relay's task.
    pub fn set_task(&self, task: &tokio::task::JoinHandle<()>) {
        *self.stop.lock().unwrap_or_else(PoisonError::into_inner) = Some(task.abort_handle());
    }

    /// What the API shows.
    pub fn info(&self) -> RelayInfo {
        let live = self.live();
        RelayInfo {
            id: self.id,
            kind: self.kind,
            origin: self.origin,
            app: self.app.clone(),
            name: self.name.clone(),
            target: self.target.clone(),
            state: live.state,
            bytes: self.bytes.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            last_error: live.last_error.clone(),
        }
    }
}

/// A relay as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RelayInfo {
    /// The id to stop it with (`DELETE /api/v1/relays/{id}`).
    pub id: u64,
    /// `push` or `pull`.
    pub kind: Kind,
    /// `config`, `api` or `hook`.
    pub origin: Origin,
    /// The local stream's application.
    pub app: String,
    /// The local stream's name.
    pub name: String,
    /// The target or upstream, its stream key masked.
    pub target: String,
    /// `waiting`, `connecting`, `relaying`, `retrying`, `failed` or `stopped`.
    pub state: State,
    /// Bytes sent (push) or received (pull), over every connection.
    pub bytes: u64,
    /// Connections after the first.
    pub reconnects: u64,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// Every running relay, process-wide (as the access limits are).
#[derive(Debug, Default)]
pub struct Registry {
    next_id: AtomicU64,
    relays: Mutex<BTreeMap<u64, Arc<RelayStatus>>>,
}

/// The relays of this process.
pub fn registry() -> &'static Registry {
    static REGISTRY: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

impl Registry {
    fn relays(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<RelayStatus>>> {
        self.relays.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new relay; it stays listed while the returned guard lives.
    pub fn register(
        &self,
        kind: Kind,
        origin: Origin,
        app: &str,
        name: &str,
        url: &str,
    ) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let status = Arc::new(RelayStatus {
            id,
            kind,
            origin,
            app: app.to_owned(),
            name: name.to_owned(),
            target: mask::mask_url(url),
            live: Mutex::new(Live {
                state: State::Waiting,
                last_error: None,
            }),
            bytes: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            stop: Mutex::new(None),
        });
        self.relays().insert(id, status.clone());
        let started = match kind {
            Kind::Push => &COUNTERS.pushes_started,
            Kind::Pull => &COUNTERS.pulls_started,
        };
        started.fetch_add(1, Ordering::Relaxed);
        Registration(status)
    }

    /// Every relay, by id.
    pub fn list(&self) -> Vec<RelayInfo> {
        self.relays().values().map(|status| status.info()).collect()
    }

    /// Stops the relay `id` (its task ends at once); false when there is none.
    pub fn stop(&self, id: u64) -> bool {
        let Some(status) = self.relays().remove(&id) else {
            return false;
        };
        let handle = status
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            handle.abort();
        }
        true
    }
}

/// A relay's place in the registry: dropping it unlists the relay.
#[derive(Debug)]
pub struct Registration(Arc<RelayStatus>);

impl Registration {
    /// The relay's status.
    pub fn status(&self) -> &Arc<RelayStatus> {
        &self.0
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.0.set_state(State::Stopped);
        let mut relays = registry().relays();
        if relays
            .get(&self.0.id)
            .is_some_and(|listed| Arc::ptr_eq(listed, &self.0))
        {
            relays.remove(&self.0.id);
        }
    }
}

/// Relay counters, plain atomics: counted as relays start, fail and move bytes, read by the metrics.
#[derive(Debug, Default)]
struct Counters {
    pushes_started: AtomicU64,
    pulls_started: AtomicU64,
    reconnects: AtomicU64,
    failures: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

static COUNTERS: Counters = Counters {
    pushes_started: AtomicU64::new(0),
    pulls_started: AtomicU64::new(0),
    reconnects: AtomicU64::new(0),
    failures: AtomicU64::new(0),
    bytes_sent: AtomicU64::new(0),
    bytes_received: AtomicU64::new(0),
};

/// A reading of the relay counters (totals since the process started) and of the relays running now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounters {
    /// Pushes started.
    pub pushes_started: u64,
    /// Pulls started.
    pub pulls_started: u64,
    /// Connections after a relay's first.
    pub reconnects: u64,
    /// Failed attempts (refused, unreachable, timed out, lost).
    pub failures: u64,
    /// Bytes sent to push targets.
    pub bytes_sent: u64,
    /// Bytes received from pull upstreams.
    pub bytes_received: u64,
    /// Relays running now.
    pub running: u64,
}

/// The relay counters now, for `/metrics`.
pub fn counters() -> RelayCounters {
    let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    RelayCounters {
        pushes_started: read(&COUNTERS.pushes_started),
        pulls_started: read(&COUNTERS.pulls_started),
        reconnects: read(&COUNTERS.reconnects),
        failures: read(&COUNTERS.failures),
        bytes_sent: read(&COUNTERS.bytes_sent),
        bytes_received: read(&COUNTERS.bytes_received),
        running: registry().relays().len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_from_half_to_all() {
        let mut backoff = Backoff::default();
        assert_eq!(backoff.next_delay(1.0), Duration::from_millis(500));
        assert_eq!(backoff.next_delay(0.0), Duration::from_millis(500));
        assert_eq!(backoff.next_delay(1.0), Duration::from_secs(2));
        for _ in 0..20 {
            backoff.next_delay(0.5);
        }
        assert_eq!(backoff.next_delay(1.0), BACKOFF_MAX);
        backoff.reset();
        assert_eq!(backoff.next_delay(1.0), Duration::from_millis(500));
    }

    #[test]
    fn templates_fill_app_and_name_and_urls_are_checked() {
        assert_eq!(
            render_url("rtmp://h/{app}/{name}?k=1", "live", "cam"),
            "rtmp://h/live/cam?k=1"
        );
        assert!(check_url("rtmps://b.example:443/rtmp/{name}").is_ok());
        assert!(check_url("http://b.example/x").is_err());
    }

    #[test]
    fn a_relay_url_the_client_cannot_use_is_refused_with_its_key_masked() {
        let tables =
            |text: &str| -> BTreeMap<String, toml::Table> { toml::from_str(text).unwrap() };
        let good =
            tables("[live]\npush = [\"rtmps://h:443/app/{name}\"]\npull = \"rtmp://u/a/{name}\"");
        assert!(crate::config::Apps::resolve(&good).is_ok());
        let bad = tables("[live]\npush = [\"http://h/app/secretkey\"]");
        let error = crate::config::Apps::resolve(&bad).unwrap_err().to_string();
        assert!(error.contains("[app.\"live\"]"), "{error}");
        assert!(!error.contains("secretkey"), "{error}");
    }

    #[test]
    fn registered_relays_are_listed_until_dropped_or_stopped() {
        let first = registry().register(Kind::Push, Origin::Config, "live", "a", "rtmp://h/x/key");
        let id = first.status().id;
        let listed = registry().list();
        let info = listed.iter().find(|r| r.id == id).unwrap();
        assert_eq!(info.target, "rtmp://h/x/ke****");
        first.status().add_bytes(10);
        first.status().reconnected();
        assert_eq!(first.status().info().bytes, 10);
        assert!(registry().stop(id));
        assert!(!registry().stop(id));
        drop(first);
        assert!(registry().list().iter().all(|r| r.id != id));
    }
}
