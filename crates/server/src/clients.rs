//! The connection registry: every open connection's id, peer, kick handle and [`ConnectionStats`], the
//! API's and `/metrics`' view of it. A connection publishes its counters into its `ConnectionStats` with
//! relaxed atomic stores and its identity (variant, role, app, stream) when that changes, so reading the
//! registry never takes a lock a connection's media path holds. Bitrates come from a once-a-second
//! sample of each connection's byte counts ([`Clients::sample`]), kept in a small [`RateWindow`].

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::Notify;

use crate::metrics::Counters;

/// The span bitrates are measured over.
pub const BITRATE_WINDOW: Duration = Duration::from_secs(5);

/// What a connection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Connected, neither publishing nor playing.
    Idle,
    /// Publishing a stream.
    Publisher,
    /// Playing a stream.
    Player,
}

impl Role {
    /// `idle`, `publisher` or `player`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Idle => "idle",
            Role::Publisher => "publisher",
            Role::Player => "player",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            1 => Role::Publisher,
            2 => Role::Player,
            _ => Role::Idle,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Role::Idle => 0,
            Role::Publisher => 1,
            Role::Player => 2,
        }
    }
}

/// Who a connection is: written by the connection when it changes (connect, publish, play, the
/// handshake turning out encrypted), read by the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// rtmp, rtmps, rtmpt, rtmpts, rtmpe, rtmpte (with `+rtmpe` when encrypted inside TLS); `http-flv`
    /// and `ws-flv` for HTTP-FLV and WebSocket-FLV players, `hls` for LL-HLS viewers.
    pub variant: &'static str,
    /// The application the connection connected to.
    pub app: String,
    /// The stream it publishes or plays (empty when idle).
    pub stream: String,
    /// The `flashVer` the client sent in `connect`.
    pub flash_ver: String,
}

/// Bytes each way at one instant, for [`RateWindow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    at: Instant,
    bytes_in: u64,
    bytes_out: u64,
}

/// The byte counts of the last [`BITRATE_WINDOW`], one sample a second: the bitrate is the bytes since
/// the oldest sample over the time since it.
#[derive(Debug, Clone, Default)]
pub struct RateWindow {
    samples: VecDeque<Sample>,
}

impl RateWindow {
    /// Records the byte counts at `at`, forgetting samples older than the window.
    pub fn record(&mut self, at: Instant, bytes_in: u64, bytes_out: u64) {
        while self
            .samples
            .front()
            .is_some_and(|oldest| at.saturating_duration_since(oldest.at) > BITRATE_WINDOW)
        {
            self.samples.pop_front();
        }
        // At most one sample a second plus the one the window starts at.
        if self.samples.len() > BITRATE_WINDOW.as_secs() as usize + 1 {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            at,
            bytes_in,
            bytes_out,
        });
    }

    /// Bits per second in and out between the oldest sample and `(now, bytes_in, bytes_out)`; `None`
    /// without a sample at least 100 ms older.
    pub fn bitrate(&self, now: Instant, bytes_in: u64, bytes_out: u64) -> Option<(u64, u64)> {
        let oldest = self.samples.front()?;
        let seconds = now.saturating_duration_since(oldest.at).as_secs_f64();
        if seconds < 0.1 {
            return None;
        }
        let rate = |now: u64, then: u64| (now.saturating_sub(then) as f64 * 8.0 / seconds) as u64;
        Some((
            rate(bytes_in, oldest.bytes_in),
            rate(bytes_out, oldest.bytes_out),
        ))
    }
}

/// One connection's live counters and identity, shared by the connection (writer) and the registry
/// (reader). The connection's media path only stores into atomics here.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    dropped_frames: AtomicU64,
    role: AtomicU8,
    identity: Mutex<Identity>,
    /// Touched only by the once-a-second sampler and the API.
    window: Mutex<RateWindow>,
}

impl ConnectionStats {
    /// Publishes the connection's totals: bytes received and sent, frames dropped for its players.
    pub fn set_counts(&self, bytes_in: u64, bytes_out: u64, dropped_frames: u64) {
        self.bytes_in.store(bytes_in, Ordering::Relaxed);
        self.bytes_out.store(bytes_out, Ordering::Relaxed);
        self.dropped_frames.store(dropped_frames, Ordering::Relaxed);
    }

    /// Publishes who the connection is now (called when it changes, not per frame).
    pub fn set_identity(&self, role: Role, identity: Identity) {
        self.role.store(role.as_u8(), Ordering::Relaxed);
        *lock(&self.identity) = identity;
    }

    /// The role last published.
    pub fn role(&self) -> Role {
        Role::from_u8(self.role.load(Ordering::Relaxed))
    }

    /// Bytes received and sent, last published.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.bytes_in.load(Ordering::Relaxed),
            self.bytes_out.load(Ordering::Relaxed),
        )
    }

    /// The variant last published.
    pub fn variant(&self) -> &'static str {
        lock(&self.identity).variant
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One connection as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ClientInfo {
    /// The connection's id in the registry (the one `DELETE /api/v1/clients/{id}` takes).
    pub id: u64,
    /// The peer's address and port.
    pub address: String,
    /// rtmp, rtmps, rtmpt, rtmpts, rtmpe, rtmpte, http-flv, ws-flv, hls (see [`Identity::variant`]).
    pub variant: &'static str,
    /// `publisher`, `player` or `idle`.
    pub role: Role,
    /// The application the connection connected to.
    pub app: String,
    /// The stream it publishes or plays (empty when idle).
    pub stream: String,
    /// The `flashVer` the client sent in `connect`.
    pub flash_ver: String,
    /// Unix time, in seconds, the connection was accepted.
    pub since: u64,
    /// Bytes received from the peer so far.
    pub bytes_in: u64,
    /// Bytes sent to the peer so far.
    pub bytes_out: u64,
    /// Bits per second received over the last 5 s (since the start for a younger connection).
    pub bitrate_in: u64,
    /// Bits per second sent over the last 5 s (since the start for a younger connection).
    pub bitrate_out: u64,
    /// Frames skipped because the player fell behind.
    pub dropped_frames: u64,
}

struct Entry {
    peer: SocketAddr,
    since: SystemTime,
    started: Instant,
    stats: Arc<ConnectionStats>,
    kick: Arc<Notify>,
}

impl Entry {
    fn info(&self, id: u64, now: Instant) -> ClientInfo {
        let stats = &self.stats;
        let (bytes_in, bytes_out) = stats.bytes();
        let identity = lock(&stats.identity).clone();
        let (bitrate_in, bitrate_out) = lock(&stats.window)
            .bitrate(now, bytes_in, bytes_out)
            .unwrap_or_else(|| {
                let seconds = now
                    .saturating_duration_since(self.started)
                    .as_secs_f64()
                    .max(0.001);
                (
                    (bytes_in as f64 * 8.0 / seconds) as u64,
                    (bytes_out as f64 * 8.0 / seconds) as u64,
                )
            });
        ClientInfo {
            id,
            address: self.peer.to_string(),
            variant: identity.variant,
            role: stats.role(),
            app: identity.app,
            stream: identity.stream,
            flash_ver: identity.flash_ver,
            since: self
                .since
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs()),
            bytes_in,
            bytes_out,
            bitrate_in,
            bitrate_out,
            dropped_frames: stats.dropped_frames.load(Ordering::Relaxed),
        }
    }
}

/// Every open connection, shared by the connections and the API, and the server's counters.
#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Entry>>,
    /// The counters `/metrics` exports (connections started and ended, handshake failures, ...).
    pub counters: Counters,
    /// Cleared while the server should not be sent new work (`/readyz`).
    not_ready: AtomicBool,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("open", &self.lock_open().len())
            .finish()
    }
}

impl Clients {
    fn lock_open(&self) -> MutexGuard<'_, BTreeMap<u64, Entry>> {
        lock(&self.open)
    }

    /// Registers a new connection that came in as `transport`; it is removed when the returned
    /// [`Registration`] is dropped. The connection publishes its state through
    /// [`Registration::stats`].
    pub fn register(self: &Arc<Self>, peer: SocketAddr, transport: &'static str) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let kick = Arc::new(Notify::new());
        let stats = Arc::new(ConnectionStats::default());
        stats.set_identity(
            Role::Idle,
            Identity {
                variant: transport,
                ..Identity::default()
            },
        );
        self.lock_open().insert(
            id,
            Entry {
                peer,
                since: SystemTime::now(),
                started: Instant::now(),
                stats: stats.clone(),
                kick: kick.clone(),
            },
        );
        self.counters.connection_started(transport);
        Registration {
            id,
            clients: self.clone(),
            kick,
            stats,
        }
    }

    /// Asks connection `id` to close; false when there is no such connection.
    pub fn kick(&self, id: u64) -> bool {
        match self.lock_open().get(&id) {
            Some(entry) => {
                entry.kick.notify_one();
                true
            }
            None => false,
        }
    }

    /// Every open connection, by id. Reads only the connections' published stats.
    pub fn list(&self) -> Vec<ClientInfo> {
        let now = Instant::now();
        self.lock_open()
            .iter()
            .map(|(id, entry)| entry.info(*id, now))
            .collect()
    }

    /// One open connection.
    pub fn get(&self, id: u64) -> Option<ClientInfo> {
        self.lock_open()
            .get(&id)
            .map(|entry| entry.info(id, Instant::now()))
    }

    /// Records every open connection's byte counts at `now` for its bitrate; the server calls this
    /// once a second.
    pub fn sample(&self, now: Instant) {
        for entry in self.lock_open().values() {
            let (bytes_in, bytes_out) = entry.stats.bytes();
            lock(&entry.stats.window).record(now, bytes_in, bytes_out);
        }
    }

    /// Whether the server takes new work (`/readyz`).
    pub fn is_ready(&self) -> bool {
        !self.not_ready.load(Ordering::Relaxed)
    }

    /// Sets whether the server takes new work: cleared while it drains, so `/readyz` fails first.
    pub fn set_ready(&self, ready: bool) {
        self.not_ready.store(!ready, Ordering::Relaxed);
    }
}

/// A connection's place in the registry: its id, kick handle and stats. Dropping it unregisters.
#[derive(Debug)]
pub struct Registration {
    id: u64,
    clients: Arc<Clients>,
    kick: Arc<Notify>,
    stats: Arc<ConnectionStats>,
}

impl Registration {
    /// The connection's id in the registry.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Where the connection publishes its counters and identity.
    pub fn stats(&self) -> &Arc<ConnectionStats> {
        &self.stats
    }

    /// Resolves when the API asked this connection to close.
    pub async fn kicked(&self) {
        self.kick.notified().await
    }

    /// Counts the connection's end: its close reason, its bytes by variant, and the frames its players
    /// dropped (as last published in its stats).
    pub fn ended(&self, reason: &'static str, variant: &'static str, bytes: (u64, u64)) {
        let dropped = self.stats.dropped_frames.load(Ordering::Relaxed);
        self.clients
            .counters
            .connection_ended(reason, variant, bytes, dropped);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.clients.lock_open().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bitrate_is_measured_over_the_last_five_seconds() {
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let mut window = RateWindow::default();
        assert_eq!(window.bitrate(t0, 0, 0), None);
        // 1,000 bytes a second in for 10 s, then nothing: the window forgets the busy start.
        for elapsed in 0..=10u32 {
            window.record(t0 + second * elapsed, u64::from(elapsed) * 1000, 0);
        }
        assert_eq!(window.bitrate(t0 + second * 10, 10_000, 0), Some((8000, 0)));
        for elapsed in 11..=16u32 {
            window.record(t0 + second * elapsed, 10_000, 500 * u64::from(elapsed));
        }
        assert_eq!(
            window.bitrate(t0 + second * 16, 10_000, 8000),
            Some((0, 4000))
        );
        assert!(window.samples.len() <= 6);
    }

    #[test]
    fn a_registration_lists_what_its_connection_published_and_leaves_when_dropped() {
        let clients = Arc::new(Clients::default());
        let peer: SocketAddr = ([127, 0, 0, 1], 5000).into();
        let registration = clients.register(peer, "rtmp");
        registration.stats().set_identity(
            Role::Player,
            Identity {
                variant: "rtmpe",
                app: "live".into(),
                stream: "cam".into(),
                flash_ver: "LNX 9,0,124,2".into(),
            },
        );
        registration.stats().set_counts(100, 2000, 3);
        let listed = clients.get(registration.id()).expect("listed");
        assert_eq!(
            (listed.variant, listed.role, listed.stream.as_str()),
            ("rtmpe", Role::Player, "cam")
        );
        assert_eq!(
            (listed.bytes_in, listed.bytes_out, listed.dropped_frames),
            (100, 2000, 3)
        );
        let id = registration.id();
        drop(registration);
        assert!(clients.get(id).is_none());
    }
}
