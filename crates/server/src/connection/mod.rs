//! One connection: runs an [`rtmp_session::ServerSession`] over any duplex byte stream and routes its
//! publishers and players through the hub. Generic over the stream, so TCP, TLS and HTTP tunnels all use
//! it unchanged.
//!
//! - `driver`: the connection's task, the only code that touches the stream ([`serve`]).
//! - `delivery`: direct delivery, the waker that writes a player's frames from the flushing task.
//! - [`crate::router`]: every decision about the connection, with no I/O.
//! - [`crate::close_reason`]: why it ended, logged once per connection.

mod delivery;

pub(crate) use delivery::{take_direct_write, TaskWaker};
mod driver;

pub use driver::serve;

/// What every connection shares.
#[derive(Debug)]
pub struct ServerContext {
    /// The hub every publisher and player goes through.
    pub hub: rtmp_hub::Hub,
    /// The session settings each connection starts with.
    pub session: rtmp_session::SessionConfig,
    /// The RTMPS acceptor (its certificate can be reloaded).
    pub tls: Option<rtmp_rtmps::TlsAcceptor>,
    /// The per-application settings in force (a SIGHUP replaces them; a connection reads its
    /// application's table once, at `connect`).
    pub apps: std::sync::Arc<crate::config::SharedApps>,
    /// Every open connection, for the API and `/metrics`.
    pub clients: std::sync::Arc<crate::clients::Clients>,
    /// The recordable streams (manual recording, recording state for the API).
    pub recordings: std::sync::Arc<crate::outputs::recordings::Recordings>,
    /// The server's drain phase (docs/drain.md), watched by every connection.
    pub drain: tokio::sync::watch::Receiver<crate::drain::DrainPhase>,
    /// LL-HLS: publishes of applications with `hls` start a segmenter here.
    pub hls: Option<std::sync::Arc<crate::outputs::hls::Hls>>,
}
