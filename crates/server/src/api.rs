//! The API listener (`listen_api`, default 127.0.0.1:1985): its own axum router, apart from the media
//! ports, for operators and orchestration (docs/api.md).
//!
//! - `GET /healthz` (liveness), `GET /readyz` (200 while the server takes new work): no token.
//! - `GET /api/v1/server`, `GET /api/v1/clients`, `DELETE /api/v1/clients/{id}`, `GET /api/v1/streams`,
//!   `GET /api/v1/streams/{app}/{name}`, `DELETE /api/v1/streams/{app}/{name}`: JSON.
//! - `GET /api/v1/relays`, `POST /api/v1/relays`, `DELETE /api/v1/relays/{id}`: [`crate::relay::api`].
//! - `GET /metrics`: Prometheus text exposition ([`crate::metrics`]).
//! - `POST /api/v1/server/drain`: starts the graceful drain ([`crate::drain`]).
//!
//! With `api_token` set, every route but the probes asks for `Authorization: Bearer TOKEN`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clients::{ClientInfo, Clients, Role};
use crate::media_info;
use crate::outputs::recorder_api;

/// What the API reads.
#[derive(Debug)]
pub struct ApiState {
    /// The registry of open connections, listed and kicked through the API.
    pub clients: Arc<Clients>,
    /// When the server started, for the uptime it reports.
    pub started: Instant,
    /// The media listeners: address and what each serves.
    pub listeners: Vec<(SocketAddr, &'static str)>,
    /// The bearer token every route but the probes asks for (`api_token`); `None`: no token needed.
    pub token: Option<String>,
    /// The hub, for each stream's counters.
    pub hub: rtmp_hub::Hub,
    /// The recordable streams, for the recording routes.
    pub recordings: Arc<crate::outputs::recordings::Recordings>,
    /// The server's drain, started by `POST /api/v1/server/drain`.
    pub drain: Arc<crate::drain::Drain>,
}

/// The API's routes; anything else is a JSON 404.
pub fn router(state: Arc<ApiState>) -> Router {
    let guarded = Router::new()
        .route("/api/v1/server", get(server))
        .route("/api/v1/clients", get(clients))
        .route("/api/v1/clients/{id}", get(client).delete(kick_client))
        .route("/api/v1/streams", get(streams))
        .route(
            "/api/v1/streams/{app}/{name}",
            get(stream).delete(stop_stream),
        )
        .route(
            "/api/v1/streams/{app}/{name}/record",
            get(recorder_api::status)
                .post(recorder_api::start)
                .delete(recorder_api::stop),
        )
        .route(
            "/api/v1/relays",
            get(crate::relay::api::list).post(crate::relay::api::create),
        )
        .route(
            "/api/v1/relays/{id}",
            axum::routing::delete(crate::relay::api::remove),
        )
        .route("/metrics", get(metrics))
        .route("/api/v1/server/drain", post(crate::drain::start_from_api))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state.clone());
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
        .merge(guarded)
}

/// An error answer: `{"error": "..."}`.
fn error(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}

/// A JSON answer.
fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn authorize(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        if given.map(str::as_bytes) != Some(token.as_bytes()) {
            let mut response = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    }
    next.run(request).await
}

/// Liveness: the process is up and serving.
async fn healthz() -> Response {
    json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}

/// Readiness: 200 while the server takes new work, 503 while it drains.
async fn readyz(State(state): State<Arc<ApiState>>) -> Response {
    if state.clients.is_ready() {
        json(StatusCode::OK, &serde_json::json!({ "status": "ready" }))
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "status": "draining" }),
        )
    }
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

#[derive(Serialize)]
struct ListenerInfo {
    address: String,
    serves: &'static str,
}

#[derive(Serialize)]
struct ServerInfo {
    version: &'static str,
    uptime_seconds: u64,
    listeners: Vec<ListenerInfo>,
    connections: BTreeMap<&'static str, u64>,
}

async fn server(State(state): State<Arc<ApiState>>) -> Response {
    let mut connections = BTreeMap::new();
    for client in state.clients.list() {
        *connections.entry(client.variant).or_default() += 1;
    }
    json(
        StatusCode::OK,
        &ServerInfo {
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: state.started.elapsed().as_secs(),
            listeners: state
                .listeners
                .iter()
                .map(|(address, serves)| ListenerInfo {
                    address: address.to_string(),
                    serves,
                })
                .collect(),
            connections,
        },
    )
}

async fn clients(State(state): State<Arc<ApiState>>) -> Response {
    json(
        StatusCode::OK,
        &serde_json::json!({ "clients": state.clients.list() }),
    )
}

/// A client id from the path; `None` when it is not a number.
fn parse_id(id: &str) -> Option<u64> {
    id.parse().ok()
}

fn bad_id() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "client id must be a positive integer",
    )
}

async fn client(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return bad_id();
    };
    match state.clients.get(id) {
        Some(client) => json(StatusCode::OK, &client),
        None => error(StatusCode::NOT_FOUND, "no such client"),
    }
}

async fn kick_client(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return bad_id();
    };
    if state.clients.kick(id) {
        tracing::info!(client = id, "client kicked through the API");
        json(StatusCode::OK, &serde_json::json!({ "kicked": id }))
    } else {
        error(StatusCode::NOT_FOUND, "no such client")
    }
}

/// A stream's publisher, as the API shows it.
#[derive(Serialize)]
struct PublisherInfo {
    /// The publishing connection's id (`DELETE /api/v1/clients/{id}` takes it).
    id: u64,
    variant: &'static str,
    address: String,
    /// Unix time, in seconds, its connection was accepted.
    since: u64,
    /// The encoder's `flashVer` from `connect`.
    flash_ver: String,
}

/// One stream as the API shows it, gathered from the connections publishing and playing it and the
/// hub's counters.
#[derive(Serialize)]
struct StreamInfo {
    app: String,
    name: String,
    publisher: Option<PublisherInfo>,
    video: Option<media_info::VideoInfo>,
    audio: Option<media_info::AudioInfo>,
    /// Bits per second received from the publisher over the last 5 s.
    bitrate_in: u64,
    players: BTreeMap<&'static str, u64>,
    /// Frames skipped for this stream's players that fell behind.
    dropped_frames: u64,
    /// Payload bytes the GOP cache holds for joining players.
    gop_cache_bytes: usize,
    /// Audio, video and data messages published, and their payload bytes (the hub's counters).
    frames: u64,
    bytes: u64,
}

fn gather_streams(
    hub: &rtmp_hub::Hub,
    clients: Vec<ClientInfo>,
) -> BTreeMap<(String, String), StreamInfo> {
    let mut streams = BTreeMap::new();
    for client in clients {
        if client.role == Role::Idle {
            continue;
        }
        let key = (client.app.clone(), client.stream.clone());
        let stream = streams.entry(key).or_insert_with(|| StreamInfo {
            app: client.app.clone(),
            name: client.stream.clone(),
            publisher: None,
            video: None,
            audio: None,
            bitrate_in: 0,
            players: BTreeMap::new(),
            dropped_frames: 0,
            gop_cache_bytes: 0,
            frames: 0,
            bytes: 0,
        });
        if client.role == Role::Publisher {
            stream.bitrate_in = client.bitrate_in;
            stream.publisher = Some(PublisherInfo {
                id: client.id,
                variant: client.variant,
                address: client.address,
                since: client.since,
                flash_ver: client.flash_ver,
            });
        } else {
            *stream.players.entry(client.variant).or_default() += 1;
            stream.dropped_frames += client.dropped_frames;
        }
    }
    for stream in streams.values_mut() {
        let key = rtmp_hub::StreamKey {
            app: stream.app.clone(),
            name: stream.name.clone(),
        };
        if let Some(stats) = hub.stats(&key) {
            let headers = hub.sequence_headers(&key).unwrap_or_default();
            stream.video = media_info::video(&stats, &headers);
            stream.audio = media_info::audio(&stats, &headers);
            stream.gop_cache_bytes = stats.gop_cache_bytes;
            stream.frames = stats.frames;
            stream.bytes = stats.bytes;
        }
    }
    streams
}

async fn streams(State(state): State<Arc<ApiState>>) -> Response {
    let streams: Vec<StreamInfo> = gather_streams(&state.hub, state.clients.list())
        .into_values()
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "streams": streams }))
}

async fn stream(
    State(state): State<Arc<ApiState>>,
    Path((app, name)): Path<(String, String)>,
) -> Response {
    match gather_streams(&state.hub, state.clients.list()).remove(&(app, name)) {
        Some(stream) => json(StatusCode::OK, &stream),
        None => error(StatusCode::NOT_FOUND, "no such stream"),
    }
}

async fn stop_stream(
    State(state): State<Arc<ApiState>>,
    Path((app, name)): Path<(String, String)>,
) -> Response {
    let publisher = state
        .clients
        .list()
        .into_iter()
        .find(|c| c.role == Role::Publisher && c.app == app && c.stream == name);
    match publisher {
        Some(publisher) if state.clients.kick(publisher.id) => {
            tracing::info!(client = publisher.id, %app, stream = %name, "publisher stopped through the API");
            json(
                StatusCode::OK,
                &serde_json::json!({ "kicked": publisher.id }),
            )
        }
        _ => error(StatusCode::NOT_FOUND, "no publisher for this stream"),
    }
}

async fn metrics(State(state): State<Arc<ApiState>>, headers: header::HeaderMap) -> Response {
    let openmetrics = crate::metrics::render(&state.clients);
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    if crate::metrics::wants_openmetrics(accept) {
        (
            [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
            openmetrics,
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, crate::metrics::CLASSIC_CONTENT_TYPE)],
            crate::metrics::classic_text(&openmetrics),
        )
            .into_response()
    }
}

/// Accepts API connections on `listener` until shutdown.
pub async fn run(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, address) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "API accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let peer = crate::http::Peer {
            address,
            secure: false,
        };
        tokio::spawn(crate::http::serve_connection(
            stream,
            peer,
            router.clone(),
            crate::http::HttpTimeouts::default(),
            shutdown.clone(),
            None,
        ));
    }
}
