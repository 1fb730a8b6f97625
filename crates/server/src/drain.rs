//! Graceful drain (docs/drain.md): on SIGTERM or `POST /api/v1/server/drain` the server stops accepting,
//! `/readyz` answers 503, every client that declared `capsEx` Reconnect is sent
//! `NetConnection.Connect.ReconnectRequest`, and the connections are served until they leave or
//! `drain_timeout_s` passes; then publishers are ended (their players get UnpublishNotify), and a moment
//! later everyone else, with the close reason `draining`.
//!
//! [`Drain`] holds the phase and moves it on a timer; each connection's driver watches it and asks
//! [`on_phase`] what to do (the session builds the request; nothing here touches a socket).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::api::ApiState;
use crate::clients::Clients;
use crate::close_reason::CloseReason;
use crate::listener::ConnectionCount;
use crate::router::Router;

/// How long players are given, once their publishers were ended, to receive UnpublishNotify before
/// they are ended too.
const PLAYERS_AFTER_PUBLISHERS: Duration = Duration::from_millis(500);

/// Where the server is in a drain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainPhase {
    /// Not draining.
    Serving,
    /// Draining: clients that declared Reconnect are asked to connect again (to `reconnect_url` when
    /// set); everyone is still served.
    Draining {
        /// The `tcUrl` sent with the request (`drain_reconnect_url`).
        reconnect_url: Option<Arc<str>>,
    },
    /// The drain timeout passed: publishers (and connections with no stream) are ended.
    EndingPublishers,
    /// Everyone left is ended.
    Ending,
}

/// The drain settings, from the configuration (a reload replaces them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainSettings {
    /// How long the connections are served once the drain started (`drain_timeout_s`).
    pub timeout: Duration,
    /// The `tcUrl` of the ReconnectRequest (`drain_reconnect_url`).
    pub reconnect_url: Option<String>,
}

impl DrainSettings {
    /// The drain settings of a configuration.
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            timeout: Duration::from_secs(config.drain_timeout_s),
            reconnect_url: config.drain_reconnect_url.clone(),
        }
    }
}

/// The server's drain: its phase, watched by every connection.
#[derive(Debug)]
pub struct Drain {
    phase: watch::Sender<DrainPhase>,
    settings: Mutex<DrainSettings>,
    clients: Arc<Clients>,
    connections: Arc<ConnectionCount>,
    /// The media listeners' accept loops, stopped when the drain starts.
    listeners: Mutex<Vec<AbortHandle>>,
}

impl Drain {
    /// A server's drain, not started.
    pub fn new(
        settings: DrainSettings,
        clients: Arc<Clients>,
        connections: Arc<ConnectionCount>,
    ) -> Self {
        Self {
            phase: watch::channel(DrainPhase::Serving).0,
            settings: Mutex::new(settings),
            clients,
            connections,
            listeners: Mutex::new(Vec::new()),
        }
    }

    /// The phase, for a connection to watch.
    pub fn watch(&self) -> watch::Receiver<DrainPhase> {
        self.phase.subscribe()
    }

    /// Replaces the settings (a reload); a drain already started keeps its own.
    pub fn configure(&self, settings: DrainSettings) {
        *self.settings.lock().unwrap_or_else(PoisonError::into_inner) = settings;
    }

    /// The accept loops the drain stops.
    pub(crate) fn stop_accepting_on(&self, listeners: impl IntoIterator<Item = AbortHandle>) {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(listeners);
    }

    /// Whether a drain has started.
    pub fn is_draining(&self) -> bool {
        *self.phase.borrow() != DrainPhase::Serving
    }

    /// Starts the drain (on a tokio runtime): stops accepting, clears `/readyz`, asks the clients that
    /// can to reconnect, and ends the rest after the timeout. False when it had started already.
    pub fn start(&self) -> bool {
        let settings = self
            .settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let started = self.phase.send_if_modified(|phase| {
            if *phase != DrainPhase::Serving {
                return false;
            }
            *phase = DrainPhase::Draining {
                reconnect_url: settings.reconnect_url.as_deref().map(Arc::from),
            };
            true
        });
        if !started {
            return false;
        }
        self.clients.set_ready(false);
        for listener in self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            listener.abort();
        }
        tracing::info!(
            timeout_s = settings.timeout.as_secs(),
            reconnect_url = settings.reconnect_url.as_deref().unwrap_or(""),
            connections = self.connections.current(),
            "draining: no longer accepting, clients that declared Reconnect are asked to reconnect"
        );
        let phase = self.phase.clone();
        tokio::spawn(async move {
            tokio::time::sleep(settings.timeout).await;
            tracing::info!("drain timeout: ending publishers, then every connection left");
            phase.send_replace(DrainPhase::EndingPublishers);
            tokio::time::sleep(PLAYERS_AFTER_PUBLISHERS).await;
            phase.send_replace(DrainPhase::Ending);
        });
        true
    }

    /// Resolves once a started drain is over: every connection left, or every one was told to end
    /// (give them a moment to go, e.g. `Server::shutdown`'s grace). Pending while not draining.
    pub async fn finished(&self) {
        let mut phase = self.watch();
        loop {
            let ending = match &*phase.borrow_and_update() {
                DrainPhase::Serving => None,
                DrainPhase::Ending => Some(true),
                _ => Some(false),
            };
            match ending {
                Some(true) => return,
                Some(false) if self.connections.current() == 0 => return,
                Some(false) => {
                    // Connections leave without telling the drain: look again now and then.
                    let _ = tokio::time::timeout(Duration::from_millis(100), phase.changed()).await;
                }
                None => {
                    if phase.changed().await.is_err() {
                        return std::future::pending().await;
                    }
                }
            }
        }
    }
}

/// Resolves with the first phase other than `seen` (at once when it already differs); never when the
/// drain is gone.
pub async fn next_phase(mut phase: watch::Receiver<DrainPhase>, seen: DrainPhase) -> DrainPhase {
    loop {
        let current = phase.borrow_and_update().clone();
        if current != seen {
            return current;
        }
        if phase.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// What one connection does in a drain phase: the ReconnectRequest queued on its session (once,
/// `asked`; only when its `connect` declared Reconnect), or the reason to end it.
pub fn on_phase(
    phase: &DrainPhase,
    session: &mut rtmp_session::ServerSession,
    router: &Router,
    asked: &mut bool,
) -> Option<CloseReason> {
    match phase {
        DrainPhase::Serving => None,
        DrainPhase::Draining { reconnect_url } => {
            let declares = router
                .connect_request()
                .is_some_and(|connect| connect.declares_reconnect());
            if declares
                && !*asked
                && session.request_reconnect(
                    reconnect_url.as_deref(),
                    "The server is shutting down: connect again.",
                )
            {
                *asked = true;
                tracing::debug!(
                    reconnect_url = reconnect_url.as_deref().unwrap_or(""),
                    "asked to reconnect"
                );
            }
            None
        }
        DrainPhase::EndingPublishers => {
            let streams = router.streams();
            let publishing = streams.iter().any(|(publishing, _)| *publishing);
            (publishing || streams.is_empty()).then_some(CloseReason::Draining)
        }
        DrainPhase::Ending => Some(CloseReason::Draining),
    }
}

/// `POST /api/v1/server/drain`: starts the drain; 202 with the drain's settings, or 409 when a drain
/// is already under way.
pub async fn start_from_api(State(state): State<Arc<ApiState>>) -> Response {
    let drain = &state.drain;
    let settings = drain
        .settings
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let body = serde_json::json!({
        "status": "draining",
        "timeout_s": settings.timeout.as_secs(),
        "reconnect_url": settings.reconnect_url,
    });
    if drain.start() {
        json(StatusCode::ACCEPTED, &body)
    } else {
        let body = serde_json::json!({ "error": "the server is already draining" });
        json(StatusCode::CONFLICT, &body)
    }
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
