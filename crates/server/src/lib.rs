//! rtmpx: an RTMP media server. RTMP, RTMPE, RTMPS, RTMPT (and RTMPTS, RTMPTE) on the same listeners
//! and the same per-connection driver, as duplex streams.
//!
//! * [`config`]: one typed configuration with safe defaults (TOML + command line).
//! * [`listener`]: accept, sniff the first byte, spawn the driver.
//! * [`http`]: the HTTP front (one router for every HTTP listener: the RTMPT tunnel, then media routes).
//! * [`api`]: the API listener's router (health, JSON API, `/metrics`), apart from the media ports.
//! * [`clients`]: the registry of open connections (the API's view, kicks).
//! * [`metrics`]: the Prometheus exposition.
//! * [`socket`]: the accepted TCP stream, written with `sendmsg(2)`.
//! * [`limits`]: the open-file limit, raised so the configured connections fit.
//! * [`connection`]: runs an `rtmp_session::ServerSession` over any `AsyncRead + AsyncWrite` and routes
//!   publishers and players through the `rtmp_hub::Hub`.
//! * [`relay`]: pushes to other servers and pulls from them.
//! * [`router`]: every decision about a connection (connect, publish, play), with no I/O.
//! * [`close_reason`]: why a connection ended.
//! * [`drain`]: the graceful drain (SIGTERM, `POST /api/v1/server/drain`): reconnect requests, then an end.
//! * [`Server`]: binds everything, reloads what can change at run time, and shuts down gracefully.
//!
//! A server on an ephemeral loopback port, a client connecting to it, a graceful shutdown:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! let config = rtmpx::Config {
//!     listen: vec!["127.0.0.1:0".parse()?],
//!     listen_tls: Vec::new(),
//!     listen_http: Vec::new(),
//!     listen_api: Vec::new(),
//!     ..rtmpx::Config::default()
//! };
//! let server = rtmpx::Server::start(&config).await?;
//! let address = server.local_addresses()[0];
//!
//! let url: rtmp_client::RtmpUrl = format!("rtmp://{address}/live/cam").parse()?;
//! let mut client = rtmp_client::Client::connect(&url, &Default::default()).await?;
//! let stream_id = client.publish(&url.stream).await?;
//! println!("publishing on stream {stream_id}");
//! let key = rtmp_hub::StreamKey::new("live", "cam");
//! assert!(server.hub().stats(&key).is_some());
//!
//! server.shutdown(Duration::from_secs(1)).await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod api;
pub mod clients;
pub mod close_reason;
pub mod config;
pub mod connection;
pub mod drain;
pub mod hooks;
pub mod http;
pub mod limits;
pub mod listener;
pub mod media_info;
pub mod metrics;
pub mod outputs;
pub mod policy;
pub mod relay;
pub mod router;
pub mod socket;
pub mod vod;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

pub use config::Config;
use config::{ReloadPlan, SharedApps};
use connection::ServerContext;
use listener::ConnectionCount;

/// A bound, running server.
#[derive(Debug)]
pub struct Server {
    addresses: Vec<SocketAddr>,
    api_addresses: Vec<SocketAddr>,
    shutdown: watch::Sender<bool>,
    connections: Arc<ConnectionCount>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
    hub: rtmp_hub::Hub,
    tls: rtmp_rtmps::TlsAcceptor,
    /// The configuration in force: what `start` was given, with what reloads applied since.
    config: Mutex<Config>,
    apps: Arc<SharedApps>,
    clients: Arc<clients::Clients>,
    drain: Arc<drain::Drain>,
}

impl Server {
    /// Binds every listen address and starts accepting.
    pub async fn start(config: &Config) -> std::io::Result<Server> {
        if let Some(open) = config.listen_api.iter().find(|a| !a.ip().is_loopback()) {
            if config.api_token.is_none() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("listen_api {open} is not a loopback address: set api_token"),
                ));
            }
        }
        let started = std::time::Instant::now();
        let clients = Arc::new(clients::Clients::default());
        let apps = config.apps().map_err(|error| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, error.to_string())
        })?;
        let apps = Arc::new(SharedApps::new(apps));
        let hub = rtmp_hub::Hub::new(config.hub_config(), std::time::Instant::now());
        let tls = rtmp_rtmps::TlsAcceptor::new(config.tls_settings()).map_err(|error| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, error.to_string())
        })?;
        if tls.is_self_signed() {
            tracing::info!(
                fingerprint = %tls.fingerprint(),
                "RTMPS uses a generated self-signed certificate for localhost (set tls_cert and tls_key for a real one)"
            );
        } else {
            tracing::info!(fingerprint = %tls.fingerprint(), "RTMPS certificate loaded");
        }
        let (rtmpt, mut tunnels) = rtmp_rtmpt::server::RtmptServer::new(config.rtmpt_config());
        let recordings = Arc::new(outputs::recordings::Recordings::new(hub.clone()));
        let connections = Arc::new(ConnectionCount::with_per_ip_limit(
            config.max_connections_per_ip,
        ));
        let drain = Arc::new(drain::Drain::new(
            drain::DrainSettings::from_config(config),
            clients.clone(),
            connections.clone(),
        ));
        let hls = outputs::hls::Hls::new(hub.clone(), apps.clone(), clients.clone());
        let context = Arc::new(ServerContext {
            hub: hub.clone(),
            session: config.session_config(),
            tls: Some(tls.clone()),
            apps: apps.clone(),
            clients: clients.clone(),
            recordings: recordings.clone(),
            drain: drain.watch(),
            hls: Some(hls.clone()),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let flv = Arc::new(outputs::http_flv::HttpFlv {
            hub: hub.clone(),
            apps: apps.clone(),
            clients: clients.clone(),
            shutdown: shutdown_rx.clone(),
        });
        let page = config.http_page.then(|| hub.clone());
        let http = http::router(Some(rtmpt.clone()), Some(flv), Some(hls.clone()), page);
        let mut addresses = Vec::new();
        let mut media_listeners = Vec::new();
        let mut tasks = Vec::new();
        // Background work that lives as long as the server and is stopped, not awaited, at shutdown.
        let mut background = vec![
            tokio::spawn(rtmpt.run_expiry()),
            tokio::spawn(hls.run_expiry()),
        ];
        // Once a second, every connection's byte counts, for the API's bitrates over the last 5 s.
        let sampled = clients.clone();
        background.push(tokio::spawn(async move {
            let mut every_second = tokio::time::interval(std::time::Duration::from_secs(1));
            every_second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every_second.tick().await;
                sampled.sample(std::time::Instant::now());
            }
        }));
        let tunnel_context = context.clone();
        let tunnel_shutdown = shutdown_rx.clone();
        background.push(tokio::spawn(async move {
            // Each RTMPT session is one more duplex stream for the same driver.
            while let Some(tunnel) = tunnels.recv().await {
                let transport = if tunnel.secure { "rtmpts" } else { "rtmpt" };
                let (context, shutdown) = (tunnel_context.clone(), tunnel_shutdown.clone());
                tokio::spawn(connection::serve(
                    tunnel.stream,
                    tunnel.peer,
                    transport,
                    context,
                    shutdown,
                    None,
                ));
            }
        }));
        let listeners = config
            .listen
            .iter()
            .map(|a| (a, listener::ListenerKind::Shared))
            .chain(
                config
                    .listen_tls
                    .iter()
                    .map(|a| (a, listener::ListenerKind::TlsOnly)),
            )
            .chain(
                config
                    .listen_http
                    .iter()
                    .map(|a| (a, listener::ListenerKind::HttpOnly)),
            );
        for (address, kind) in listeners {
            let listener = listener::bind(*address, config.listen_backlog).map_err(|error| {
                std::io::Error::new(error.kind(), format!("cannot listen on {address}: {error}"))
            })?;
            let local = listener.local_addr()?;
            let serves = match kind {
                listener::ListenerKind::Shared => {
                    "rtmp, rtmpe, rtmps, rtmpt, rtmpts, rtmpte, http, https"
                }
                listener::ListenerKind::TlsOnly => "rtmps, rtmpts, https",
                listener::ListenerKind::HttpOnly => "rtmpt, rtmpte, http",
            };
            tracing::info!(address = %local, serves, "listening");
            addresses.push(local);
            media_listeners.push((local, serves));
            let accepting = tokio::spawn(listener::run(
                listener,
                kind,
                context.clone(),
                http.clone(),
                connections.clone(),
                config.max_connections,
                shutdown_rx.clone(),
            ));
            drain.stop_accepting_on([accepting.abort_handle()]);
            tasks.push(accepting);
        }
        let mut api_addresses = Vec::new();
        let api_router = api::router(Arc::new(api::ApiState {
            clients: clients.clone(),
            started,
            listeners: media_listeners,
            token: config.api_token.clone(),
            hub: hub.clone(),
            recordings,
            drain: drain.clone(),
        }));
        for address in &config.listen_api {
            let listener = listener::bind(*address, config.listen_backlog).map_err(|error| {
                std::io::Error::new(error.kind(), format!("cannot listen on {address}: {error}"))
            })?;
            let local = listener.local_addr()?;
            tracing::info!(address = %local, serves = "api", "listening");
            api_addresses.push(local);
            tasks.push(tokio::spawn(api::run(
                listener,
                api_router.clone(),
                shutdown_rx.clone(),
            )));
        }
        Ok(Server {
            addresses,
            api_addresses,
            shutdown,
            connections,
            tasks,
            background,
            hub,
            tls,
            config: Mutex::new(config.clone()),
            apps,
            clients,
            drain,
        })
    }

    /// The addresses actually bound (useful with port 0).
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.addresses
    }

    /// The API listener's addresses actually bound (empty when `listen_api` is).
    pub fn api_addresses(&self) -> &[SocketAddr] {
        &self.api_addresses
    }

    /// Every open connection (the API's view; kicks).
    pub fn clients(&self) -> &Arc<clients::Clients> {
        &self.clients
    }

    /// Whether `/readyz` answers 200 (true from the start): cleared while the server drains.
    pub fn set_ready(&self, ready: bool) {
        self.clients.set_ready(ready);
    }

    /// The server's graceful drain (docs/drain.md): [`drain::Drain::start`] on SIGTERM,
    /// [`drain::Drain::finished`] before [`Server::shutdown`].
    pub fn drain(&self) -> &Arc<drain::Drain> {
        &self.drain
    }

    /// The hub every stream goes through, for its streams' statistics.
    pub fn hub(&self) -> &rtmp_hub::Hub {
        &self.hub
    }

    /// The per-application settings in force, swapped whole by [`Server::reload`]; connections read
    /// them when they learn their application's name.
    pub fn apps(&self) -> &Arc<SharedApps> {
        &self.apps
    }

    /// Re-reads the RTMPS certificate files; open connections keep theirs. The generated self-signed
    /// certificate is kept (there is no file to re-read).
    pub fn reload_tls(&self) {
        if self.tls.is_self_signed() {
            tracing::info!("RTMPS uses the generated self-signed certificate: nothing to reload");
            return;
        }
        match self.tls.reload() {
            Ok(fingerprint) => tracing::info!(%fingerprint, "RTMPS certificate reloaded"),
            Err(error) => {
                tracing::error!(%error, "RTMPS certificate reload failed; keeping the current one")
            }
        }
    }

    /// Applies what a new configuration (re-read on SIGHUP) can change without dropping a connection:
    /// the per-application tables, and the certificate files re-read. Every other changed key is logged
    /// as needing a restart and stays as it was. Returns what was decided.
    pub fn reload(&self, new: &Config) -> ReloadPlan {
        let mut current = self.config.lock().unwrap_or_else(PoisonError::into_inner);
        let plan = ReloadPlan::between(&current, new);
        if plan.apps_changed {
            match new.apps() {
                Ok(apps) => {
                    let tables = apps
                        .names()
                        .map(|name| format!("[app.{name:?}]"))
                        .collect::<Vec<_>>()
                        .join(" ");
                    let tables = if tables.is_empty() {
                        "none".to_owned()
                    } else {
                        tables
                    };
                    self.apps.replace(apps);
                    current.app = new.app.clone();
                    tracing::info!(tables = %tables, "per-application settings reloaded");
                }
                Err(error) => {
                    tracing::error!(%error, "per-application settings not reloaded; keeping the current ones")
                }
            }
        } else {
            tracing::info!("per-application settings unchanged");
        }
        if plan.reread_certificate {
            self.reload_tls();
        }
        self.drain.configure(drain::DrainSettings::from_config(new));
        current.drain_timeout_s = new.drain_timeout_s;
        current.drain_reconnect_url = new.drain_reconnect_url.clone();
        for key in &plan.needs_restart {
            tracing::warn!(key, "changed in the configuration: restart to apply");
        }
        plan
    }

    /// Stops accepting, tells every connection to close, and waits up to `grace` for them.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        for task in &self.background {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.connections.current() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!(remaining = self.connections.current(), "shut down");
    }
}
