//! The connection registry: every open connection's id, peer and kick handle, and a way to read its
//! live state (variant, role, app, stream, bytes) on demand, so the API and `/metrics` cost nothing on
//! the frame path. Counters of connections started and ended live here too, updated once per
//! connection.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::Notify;

/// What a connection is doing, read from its session and router when asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveState {
    /// rtmp, rtmps, rtmpt, rtmpts, rtmpe, rtmpte (with `+rtmpe` when encrypted inside TLS); `http-flv`
    /// and `ws-flv` for HTTP-FLV and WebSocket-FLV players.
    pub variant: &'static str,
    /// `publisher`, `player` or `idle`.
    pub role: &'static str,
    /// The application the connection connected to.
    pub app: String,
    /// The stream it publishes or plays (empty when idle).
    pub stream: String,
    /// The `flashVer` the client sent in `connect`.
    pub flash_ver: String,
    /// Bytes received from the peer so far.
    pub bytes_in: u64,
    /// Bytes sent to the peer so far.
    pub bytes_out: u64,
    /// Frames skipped for this connection's players that fell behind.
    pub dropped_frames: u64,
}

/// Reads a connection's [`LiveState`]; `None` once the connection is gone.
pub type Inspect = Box<dyn Fn() -> Option<LiveState> + Send + Sync>;

/// One connection as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ClientInfo {
    /// The connection's id in the registry (the one `DELETE /api/v1/clients/{id}` takes).
    pub id: u64,
    /// The peer's address and port.
    pub address: String,
    /// rtmp, rtmps, rtmpt, rtmpts, rtmpe, rtmpte, http-flv, ws-flv (see [`LiveState::variant`]).
    pub variant: &'static str,
    /// `publisher`, `player` or `idle`.
    pub role: &'static str,
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
    /// Average bits per second received since the connection started.
    pub bitrate_in: u64,
    /// Average bits per second sent since the connection started.
    pub bitrate_out: u64,
    /// Frames skipped because the player fell behind.
    pub dropped_frames: u64,
}

struct Entry {
    peer: SocketAddr,
    since: SystemTime,
    started: Instant,
    inspect: Inspect,
    kick: Arc<Notify>,
}

/// Totals of connections that have ended, by label.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    /// Connections accepted, by the transport they came in on.
    pub started: BTreeMap<&'static str, u64>,
    /// Connections ended, by [`crate::close_reason::CloseReason::as_str`].
    pub ended: BTreeMap<&'static str, u64>,
    /// Bytes received and sent by connections that have ended, by variant.
    pub bytes_in: BTreeMap<&'static str, u64>,
    /// Bytes sent to connections that have ended, by variant.
    pub bytes_out: BTreeMap<&'static str, u64>,
}

/// Every open connection, shared by the connections and the API.
#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Entry>>,
    totals: Mutex<Totals>,
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
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_totals(&self) -> MutexGuard<'_, Totals> {
        self.totals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection; it is removed when the returned [`Registration`] is dropped.
    pub fn register(
        self: &Arc<Self>,
        peer: SocketAddr,
        transport: &'static str,
        inspect: Inspect,
    ) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let kick = Arc::new(Notify::new());
        self.lock_open().insert(
            id,
            Entry {
                peer,
                since: SystemTime::now(),
                started: Instant::now(),
                inspect,
                kick: kick.clone(),
            },
        );
        *self.lock_totals().started.entry(transport).or_default() += 1;
        Registration {
            id,
            clients: self.clone(),
            kick,
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

    /// Every open connection, by id.
    pub fn list(&self) -> Vec<ClientInfo> {
        // Each connection's state is read under the registry's lock; a connection never takes the
        // registry's lock while holding its own.
        let open = self.lock_open();
        open.iter()
            .filter_map(|(id, entry)| {
                let (id, peer, since, started) = (*id, entry.peer, entry.since, entry.started);
                let state = (entry.inspect)()?;
                let seconds = started.elapsed().as_secs_f64().max(0.001);
                Some(ClientInfo {
                    id,
                    address: peer.to_string(),
                    variant: state.variant,
                    role: state.role,
                    app: state.app,
                    stream: state.stream,
                    flash_ver: state.flash_ver,
                    since: since
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |elapsed| elapsed.as_secs()),
                    bytes_in: state.bytes_in,
                    bytes_out: state.bytes_out,
                    bitrate_in: (state.bytes_in as f64 * 8.0 / seconds) as u64,
                    bitrate_out: (state.bytes_out as f64 * 8.0 / seconds) as u64,
                    dropped_frames: state.dropped_frames,
                })
            })
            .collect()
    }

    /// The counters of connections that have ended.
    pub fn totals(&self) -> Totals {
        self.lock_totals().clone()
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

/// A connection's place in the registry: its id and kick handle. Dropping it unregisters.
#[derive(Debug)]
pub struct Registration {
    id: u64,
    clients: Arc<Clients>,
    kick: Arc<Notify>,
}

impl Registration {
    /// The connection's id in the registry.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Resolves when the API asked this connection to close.
    pub async fn kicked(&self) {
        self.kick.notified().await
    }

    /// Counts the connection's end: its close reason and its bytes, by variant.
    pub fn ended(&self, reason: &'static str, variant: &'static str, bytes: (u64, u64)) {
        let mut totals = self.clients.lock_totals();
        *totals.ended.entry(reason).or_default() += 1;
        *totals.bytes_in.entry(variant).or_default() += bytes.0;
        *totals.bytes_out.entry(variant).or_default() += bytes.1;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.clients.lock_open().remove(&self.id);
    }
}
